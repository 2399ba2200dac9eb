// Micro-benchmarks of the hot pieces (Google Benchmark). Figures on a shared VM are noisy: compare
// runs made back to back, never against a fixed number.

#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/core/codec.hpp"
#include "baton/core/envelope.hpp"
#include "baton/core/log.hpp"
#include "baton/core/retry.hpp"
#include "baton/core/uuid.hpp"
#include "detail/resp.hpp"

namespace {

using namespace baton;

JsonEnvelope sample_envelope() {
  // A 256-byte payload, as `baton bench` sends.
  return make_envelope("bench.load", boost::json::value{{"i", 12345}, {"t", 1234567890123}, {"pad", std::string(220, 'x')}},
                       EnvelopeOptions{.tenant_id = "acme"});
}

void EnvelopeEncode(benchmark::State& state) {
  const auto envelope = sample_envelope();
  for (auto _ : state) benchmark::DoNotOptimize(encode(envelope));
}
BENCHMARK(EnvelopeEncode);

void EnvelopeDecode(benchmark::State& state) {
  const auto text = encode(sample_envelope());
  for (auto _ : state) benchmark::DoNotOptimize(decode(text));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(EnvelopeDecode);

void RespEncodeXadd(benchmark::State& state) {
  const std::vector<std::string> command{"XADD", "baton:{bench}:bench.load", "*", "e", encode(sample_envelope())};
  std::string out;
  for (auto _ : state) {
    out.clear();
    adapters::redis::detail::encode_command(out, command);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(RespEncodeXadd);

// An XREADGROUP reply with 64 entries of one field each, parsed from bytes.
void RespParseReadReply(benchmark::State& state) {
  const auto body = encode(sample_envelope());
  std::string bytes = "*1\r\n*2\r\n$24\r\nbaton:{bench}:bench.load\r\n*64\r\n";
  for (int i = 0; i < 64; ++i) {
    const std::string id = "1700000000000-" + std::to_string(10 + i);
    bytes += "*2\r\n$" + std::to_string(id.size()) + "\r\n" + id + "\r\n*2\r\n$1\r\ne\r\n$" + std::to_string(body.size()) + "\r\n" +
             body + "\r\n";
  }
  {
    adapters::redis::detail::RespParser check;
    check.feed(bytes);
    auto parsed = check.next();
    if (!parsed || !*parsed || (*parsed)->elements.at(0).elements.at(1).elements.size() != 64) {
      state.SkipWithError("the sample reply does not parse");
      return;
    }
  }
  for (auto _ : state) {
    adapters::redis::detail::RespParser parser;
    parser.feed(bytes);
    benchmark::DoNotOptimize(parser.next());
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(RespParseReadReply);

void LogLine(benchmark::State& state) {
  const auto logger = log::Logger().child("bench").for_message(sample_envelope());
  for (auto _ : state) benchmark::DoNotOptimize(logger.render(log::Level::info, "handled", {{"attempt", 1}, {"elapsed_ms", 3}}));
}
BENCHMARK(LogLine);

void RetryDelay(benchmark::State& state) {
  RetryPolicy policy;
  policy.max_attempts = 10;
  policy.base_delay = std::chrono::milliseconds{100};
  RetrySchedule schedule(policy);
  int retry = 0;
  for (auto _ : state) benchmark::DoNotOptimize(schedule.next_delay(retry++ % 10 + 1));
}
BENCHMARK(RetryDelay);

// Publish one envelope to the in-memory bus and wait until its handler ran and it was acked.
void MemoryBusRoundTrip(benchmark::State& state) {
  auto bus = adapters::memory::make_memory_bus();
  std::mutex mutex;
  std::condition_variable acked_cv;
  std::uint64_t acked = 0;
  ports::SubscribeOptions options;
  options.group = "bench";
  options.on_acked = [&](const JsonEnvelope&) {
    std::lock_guard lock(mutex);
    ++acked;
    acked_cv.notify_one();
  };
  auto subscription = bus->subscribe("bench.load", [](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> { return {}; },
                                     options);
  const auto envelope = sample_envelope();
  std::uint64_t sent = 0;
  for (auto _ : state) {
    auto copy = envelope;
    copy.id = new_uuid_v7();
    (void)bus->publish("bench.load", copy);
    ++sent;
    std::unique_lock lock(mutex);
    acked_cv.wait(lock, [&] { return acked == sent; });
  }
  subscription->stop();
}
BENCHMARK(MemoryBusRoundTrip)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
