#include <gtest/gtest.h>

#include "baton/adapters/process/process_runner.hpp"

namespace baton::adapters::process {
namespace {

using namespace std::chrono_literals;

TEST(ProcessRunner, RunsTheCommandOverTheFilesAndCapturesBothStreams) {
  auto runner = make_process_runner();
  auto outcome = runner->run({"cat a.txt; cat sub/b.txt >&2; exit 4", {{"a.txt", "alpha\n"}, {"sub/b.txt", "beta\n"}}, 5'000ms});
  ASSERT_TRUE(outcome) << outcome.error().message();
  EXPECT_EQ(outcome->exit_code, 4);
  EXPECT_FALSE(outcome->timed_out);
  EXPECT_EQ(outcome->output, "alpha\nbeta\n");
}

TEST(ProcessRunner, ACommandPastItsTimeoutIsKilledWithWhatItStarted) {
  auto runner = make_process_runner();
  const auto started = std::chrono::steady_clock::now();
  auto outcome = runner->run({"echo begun; sleep 30 & sleep 30", {}, 300ms});
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(outcome->timed_out);
  EXPECT_EQ(outcome->exit_code, 128 + 9);
  EXPECT_EQ(outcome->output, "begun\n");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(ProcessRunner, KeepsTheTailOfALongOutput) {
  auto runner = make_process_runner();
  auto outcome = runner->run({"seq 1 100000", {}, 10'000ms, 100});
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(outcome->output_truncated);
  EXPECT_EQ(outcome->output.size(), 100u);
  EXPECT_TRUE(outcome->output.ends_with("100000\n"));
}

TEST(ProcessRunner, RefusesFilesOutsideItsFolder) {
  auto runner = make_process_runner();
  auto outcome = runner->run({"true", {{"../escape.txt", "x"}}, 1'000ms});
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error(), errc::invalid_argument);
  EXPECT_NE(outcome.error().detail.find("../escape.txt"), std::string::npos);
}

}  // namespace
}  // namespace baton::adapters::process
