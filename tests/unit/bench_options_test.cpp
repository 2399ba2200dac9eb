#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "baton/app/bench.hpp"
#include "baton/core/codec.hpp"
#include "support/unique_id.hpp"

namespace baton::app {
namespace {

constexpr std::uint64_t gigabytes = 1024ull * 1024 * 1024;

// The error for `options` on a machine of 24 GB, or "" when there is none.
std::string error_of(const BenchOptions& options) { return bench_options_error(options, 24 * gigabytes).value_or(""); }

TEST(BenchOptions, TheDefaultsAndTheDocumentedRunsAreAccepted) {
  EXPECT_EQ(error_of({}), "");
  EXPECT_EQ(error_of({.messages = 100'000, .rate = 10'000}), "");
  EXPECT_EQ(error_of({.mode = "pipeline", .messages = 3'000}), "");
  EXPECT_EQ(error_of({.mode = "handoff", .messages = 3'000}), "");
  EXPECT_EQ(error_of({.messages = 20, .payload_bytes = CodecLimits{}.max_payload_bytes}), "") << "the largest payload an envelope may carry";
}

TEST(BenchOptions, EachBadOptionIsNamedWithWhatWasGiven) {
  EXPECT_EQ(error_of({.mode = "bsu"}), "--mode must be bus, pipeline or handoff, got \"bsu\"");
  EXPECT_EQ(error_of({.messages = 0}), "--messages must be at least 1");
  EXPECT_EQ(error_of({.producers = 0}), "--producers must be 1-256, got 0");
  EXPECT_EQ(error_of({.producers = 257}), "--producers must be 1-256, got 257");
  EXPECT_EQ(error_of({.consumers = -1}), "--consumers must be 1-1024, got -1");
  EXPECT_EQ(error_of({.consumers = 1025}), "--consumers must be 1-1024, got 1025");
}

TEST(BenchOptions, AScratchFolderMustExist) {
  EXPECT_EQ(error_of({.scratch = "/nonexistent/baton-scratch"}), "--scratch must be an existing folder, got \"/nonexistent/baton-scratch\"");
  const auto file = std::filesystem::temp_directory_path() / test::unique_name("bench-scratch-file");
  std::ofstream(file) << "not a folder";
  EXPECT_EQ(error_of({.scratch = file.string()}), "--scratch must be an existing folder, got \"" + file.string() + "\"");
  std::filesystem::remove(file);
  EXPECT_EQ(error_of({.scratch = std::filesystem::temp_directory_path().string()}), "");
}

TEST(BenchOptions, ASamplesFileMustBeAFileInAnExistingFolder) {
  EXPECT_EQ(error_of({.samples = "/nonexistent/baton-samples.csv"}), "--samples must name a file in an existing folder, got \"/nonexistent/baton-samples.csv\"");
  const auto folder = std::filesystem::temp_directory_path();
  EXPECT_EQ(error_of({.samples = folder.string()}), "--samples must name a file in an existing folder, got \"" + folder.string() + "\"");
  EXPECT_EQ(error_of({.samples = (folder / test::unique_name("bench-samples")).string()}), "");
}

TEST(BenchOptions, ARateMustBeAFiniteNumberOfZeroOrMore) {
  EXPECT_EQ(error_of({.rate = -5}), "--rate must be a number of messages per second, 0 (flat out) or more, got -5");
  EXPECT_EQ(error_of({.rate = std::numeric_limits<double>::quiet_NaN()}),
            "--rate must be a number of messages per second, 0 (flat out) or more, got nan");
  EXPECT_EQ(error_of({.rate = std::numeric_limits<double>::infinity()}),
            "--rate must be a number of messages per second, 0 (flat out) or more, got inf");
  EXPECT_EQ(error_of({.rate = 0}), "");
}

TEST(BenchOptions, APayloadOverTheEnvelopeLimitIsRefusedBeforeAnythingRuns) {
  const auto limit = CodecLimits{}.max_payload_bytes;
  EXPECT_EQ(error_of({.messages = 20, .payload_bytes = limit + 1}),
            "--payload-bytes must be at most " + std::to_string(limit) + " (the largest payload an envelope may carry), got " +
                std::to_string(limit + 1));
}

TEST(BenchOptions, ARunThatWouldFillMoreThanHalfTheMachinesMemoryIsRefused) {
  // 220,000 messages (the default warm-up of a tenth included) of 1 MB, each twice (its stream and
  // the baseline's) with 256 bytes around it, and 64 in the ledger: 220,000 x 2,000,576 B = 419,737 MiB.
  const auto error = error_of({.payload_bytes = 1'000'000});
  EXPECT_NE(error.find("--messages (with the warm-up) times --payload-bytes would hold about 419737 MB"), std::string::npos) << error;
  EXPECT_NE(error.find("over half of this machine's 24576 MB"), std::string::npos) << error;
  // The warm-up counts: 10,000 measured messages of 1 MB fit in 24 GB, not with 100,000 more before them.
  EXPECT_EQ(error_of({.messages = 10'000, .payload_bytes = 500'000}), "");
  EXPECT_NE(error_of({.messages = 10'000, .warm_up = 100'000, .payload_bytes = 500'000}), "");
  // A server elsewhere (memory 0: not this machine's to judge) has its own limits.
  EXPECT_EQ(bench_options_error({.bus = "redis://127.0.0.1:6379", .payload_bytes = 1'000'000}, 0), std::nullopt);
}

}  // namespace
}  // namespace baton::app
