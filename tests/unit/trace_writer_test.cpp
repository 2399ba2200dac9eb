#include "baton/orchestrator/trace_writer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/memory/memory_kv.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"
#include "baton/orchestrator/trace.hpp"
#include "support/captured_log.hpp"
#include "support/recorder.hpp"

namespace baton::orchestrator {
namespace {

using namespace std::chrono_literals;

// A test double over the in-memory store: counts the batched writes and can hold them back (a
// store that is slow or away) until released.
class GatedKv final : public ports::KVStore {
 public:
  Result<std::optional<ports::VersionedValue>> get(std::string_view key) override { return inner_->get(key); }
  Result<ports::Version> set(std::string_view key, std::string_view value, std::chrono::milliseconds ttl) override {
    return inner_->set(key, value, ttl);
  }
  Result<bool> del(std::string_view key) override { return inner_->del(key); }
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta, std::chrono::milliseconds ttl) override {
    return inner_->incr(key, delta, ttl);
  }
  Result<ports::Version> cas(std::string_view key, ports::Version expected, std::string_view value,
                             std::chrono::milliseconds ttl) override {
    return inner_->cas(key, expected, value, ttl);
  }
  Result<void> del_if(std::string_view key, ports::Version expected) override { return inner_->del_if(key, expected); }
  Result<void> append(std::string_view key, std::string_view item, std::size_t keep_last, std::chrono::milliseconds ttl) override {
    ++single_appends;
    return inner_->append(key, item, keep_last, ttl);
  }
  std::vector<Result<void>> append_each(std::span<const ports::ListAppend> appends) override {
    {
      std::unique_lock lock(mutex_);
      ++batches_started;
      opened_.wait(lock, [&] { return open_; });
    }
    ++batches;
    largest_batch = std::max(largest_batch.load(), appends.size());
    if (refuse) return std::vector<Result<void>>(appends.size(), Result<void>{Error{errc::unavailable, "store away (test)"}});
    return inner_->append_each(appends);
  }
  Result<std::vector<std::string>> items(std::string_view key) override { return inner_->items(key); }
  ports::Health health() override { return inner_->health(); }

  void hold() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }

  std::atomic<int> batches{0};
  std::atomic<int> batches_started{0};
  std::atomic<std::size_t> largest_batch{0};
  std::atomic<int> single_appends{0};
  std::atomic<bool> refuse{false};

 private:
  std::unique_ptr<ports::KVStore> inner_ = adapters::memory::make_memory_kv();
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = true;
};

std::vector<std::int64_t> numbers_in(ports::KVStore& kv, const std::string& corr_id) {
  std::vector<std::int64_t> numbers;
  if (auto events = read_trace(kv, "acme", corr_id)) {
    for (const auto& event : *events) numbers.push_back(event.at("n").as_int64());
  }
  return numbers;
}

boost::json::object numbered(int n) { return {{"event", "handled"}, {"n", n}}; }

TEST(TraceWriter, WritesEveryEventInOrderOnceFlushed) {
  GatedKv kv;
  TraceWriter writer(kv);
  std::vector<std::int64_t> expected;
  for (int n = 0; n < 600; ++n) {
    writer.record("acme", n % 2 ? "odd" : "even", numbered(n));
  }
  writer.flush();
  std::vector<std::int64_t> even, odd;
  for (int n = 0; n < 600; ++n) (n % 2 ? odd : even).push_back(n);
  // A trace keeps its newest max_trace_events (500); 300 each fit.
  EXPECT_EQ(numbers_in(kv, "even"), even);
  EXPECT_EQ(numbers_in(kv, "odd"), odd);
  const auto events = read_trace(kv, "acme", "odd");
  ASSERT_TRUE(events);
  EXPECT_TRUE(events->front().as_object().contains("at")) << "the time of the event was not added";
  EXPECT_EQ(kv.single_appends.load(), 0);
}

// What gathers while the writer lingers goes in one batch: 100 events recorded at once take a few
// writes, not 100.
TEST(TraceWriter, GathersEventsIntoBatches) {
  GatedKv kv;
  TraceWriter writer(kv, {.linger = 200ms, .max_batch = 64, .capacity = 1000});
  for (int n = 0; n < 100; ++n) writer.record("acme", "corr", numbered(n));
  writer.flush();
  EXPECT_EQ(numbers_in(kv, "corr").size(), 100u);
  EXPECT_LE(kv.batches.load(), 4) << "the events were not gathered";
  EXPECT_EQ(kv.largest_batch.load(), 64u) << "a batch went over max_batch or was never full";
}

// A lone event is written once its linger is over, without anyone flushing.
TEST(TraceWriter, ALoneEventIsWrittenAfterItsLinger) {
  GatedKv kv;
  TraceWriter writer(kv, {.linger = 20ms});
  writer.record("acme", "alone", numbered(7));
  EXPECT_TRUE(test::eventually([&] { return numbers_in(kv, "alone") == std::vector<std::int64_t>{7}; }, 10s));
}

// The handler that records does not wait for the store; the destructor does, and writes all of it.
TEST(TraceWriter, RecordingDoesNotWaitForTheStoreAndTheDestructorWritesWhatIsQueued) {
  GatedKv kv;
  kv.hold();
  {
    TraceWriter writer(kv, {.linger = 1ms});
    writer.record("acme", "held", numbered(1));
    ASSERT_TRUE(test::eventually([&] { return kv.batches_started.load() == 1; }, 10s));
    // The first batch is stuck in the store; more events still go in at once.
    for (int n = 2; n <= 5; ++n) writer.record("acme", "held", numbered(n));
    EXPECT_TRUE(numbers_in(kv, "held").empty());
    kv.release();  // the destructor writes what is still queued
  }
  EXPECT_EQ(numbers_in(kv, "held"), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
}

// Holds the store back, records one event (in flight), then `queued` more, and then one more from
// another thread; answers whether that last recorder was held back (100 ms), then lets the store
// answer and waits for all of it to be written.
bool last_recorder_waited(GatedKv& kv, TraceWriter& writer, const std::string& corr_id, int queued) {
  kv.hold();
  const int started_before = kv.batches_started.load();
  writer.record("acme", corr_id, numbered(0));
  if (!test::eventually([&] { return kv.batches_started.load() == started_before + 1; }, 10s)) {
    kv.release();
    return false;
  }
  for (int n = 1; n <= queued; ++n) writer.record("acme", corr_id, numbered(n));
  std::atomic<bool> recorded{false};
  std::thread late([&] {
    writer.record("acme", corr_id, numbered(queued + 1));
    recorded = true;
  });
  std::this_thread::sleep_for(100ms);
  const bool waited = !recorded.load();
  kv.release();
  late.join();
  return writer.flush(10s) && waited;
}

// With `capacity` events queued behind a store that does not answer, the next recorder waits for
// room instead of the queue growing without end, and goes on once the store answers.
TEST(TraceWriter, AFullQueueHoldsTheRecorderBackUntilThereIsRoom) {
  GatedKv kv;
  TraceWriter writer(kv, {.linger = 1ms, .max_batch = 2, .capacity = 4});
  EXPECT_TRUE(last_recorder_waited(kv, writer, "full", 4)) << "a recorder went past the queue's capacity";
  EXPECT_EQ(numbers_in(kv, "full"), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
}

// The bound RELIABILITY.md promises: behind a store that has fallen behind, a writer queues 1,024
// events by default (besides its batch in flight), and the 1,025th recorder waits.
TEST(TraceWriter, ByDefaultAThousandAndTwentyFourEventsWaitBehindAStoreThatFellBehind) {
  GatedKv kv;
  TraceWriter writer(kv, {.linger = 1ms});
  EXPECT_TRUE(last_recorder_waited(kv, writer, "behind", 1024)) << "more than 1,024 events queued";
  EXPECT_EQ(numbers_in(kv, "behind").size(), max_trace_events) << "a trace keeps its newest events";
}

// A store that is away (its last batch failed as unavailable) must not stall the work a trace
// describes: with the queue full, a recorder drops its event, counts it and goes on. Once the
// store answers again, a full queue holds recorders back again.
TEST(TraceWriter, AStoreThatIsAwayDoesNotHoldTheRecordersBack) {
  test::CapturedLog log;
  GatedKv kv;
  std::atomic<std::uint64_t> unwritten{0};
  TraceWriter writer(kv, {.linger = 1ms, .max_batch = 2, .capacity = 4, .unwritten = &unwritten});
  kv.refuse = true;
  writer.record("acme", "away", numbered(0));
  ASSERT_TRUE(test::eventually([&] { return unwritten.load() == 1; }, 10s));  // the store failed a batch

  kv.hold();
  writer.record("acme", "away", numbered(1));
  ASSERT_TRUE(test::eventually([&] { return kv.batches_started.load() == 2; }, 10s));  // 1 is in flight, held
  for (int n = 2; n <= 5; ++n) writer.record("acme", "away", numbered(n));             // 2-5 fill the queue
  auto late = std::async(std::launch::async, [&] {
    for (int n = 6; n <= 9; ++n) writer.record("acme", "away", numbered(n));
  });
  EXPECT_EQ(late.wait_for(5s), std::future_status::ready) << "a recorder waited for a store that is away";
  EXPECT_EQ(unwritten.load(), 1u + 4u) << "the dropped events were not counted";
  EXPECT_TRUE(log.has_line_with({"trace events dropped while the store is failing", "t:acme:trace:away"})) << log.text();

  kv.refuse = false;
  kv.release();
  ASSERT_TRUE(writer.flush(10s));
  EXPECT_EQ(numbers_in(kv, "away"), (std::vector<std::int64_t>{1, 2, 3, 4, 5})) << "the queued events were lost";
  EXPECT_TRUE(log.has_line_with({"trace store answers again", "\"events_dropped\":4"})) << log.text();
  EXPECT_TRUE(last_recorder_waited(kv, writer, "back", 4)) << "the store answers again, yet a full queue dropped an event";
}

// drain() answers when the events recorded before it were written: after a store that held them
// back answered, not when drain() was called; asked again with nothing new, the same time, not
// the second call's (a benchmark takes it for the end of its run's work). Nothing ever written:
// the clock's epoch. A store that does not answer: nothing, at the deadline.
TEST(TraceWriter, ADrainAnswersWhenTheEventsRecordedBeforeItWereWritten) {
  GatedKv kv;
  TraceWriter writer(kv, {.linger = 1ms});
  EXPECT_EQ(writer.drain(1s), std::chrono::steady_clock::time_point{}) << "nothing was ever written";

  kv.hold();
  for (int n = 1; n <= 3; ++n) writer.record("acme", "drained", numbered(n));
  ASSERT_TRUE(test::eventually([&] { return kv.batches_started.load() >= 1; }, 10s));
  EXPECT_EQ(writer.drain(20ms), std::nullopt) << "the store held the events back, yet the drain said they were written";
  auto drained = std::async(std::launch::async, [&] { return writer.drain(10s); });
  std::this_thread::sleep_for(50ms);  // a drain still waiting when the store answers
  const auto released = std::chrono::steady_clock::now();
  kv.release();
  const auto written_at = drained.get();
  const auto returned = std::chrono::steady_clock::now();
  ASSERT_TRUE(written_at.has_value());
  EXPECT_GE(*written_at, released) << "the drain answered a time before the events were written";
  EXPECT_LE(*written_at, returned);
  EXPECT_EQ(numbers_in(kv, "drained"), (std::vector<std::int64_t>{1, 2, 3}));

  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(writer.drain(1s), written_at) << "a drain with nothing left answered its own time";
}

// A store that does not answer must not hold a stopping worker: a flush gives up at its deadline,
// and the destructor drops (and logs) what is still queued after its own.
TEST(TraceWriter, AFlushGivesUpAtItsDeadlineWhenTheStoreDoesNotAnswer) {
  test::CapturedLog log;
  GatedKv kv;
  kv.hold();
  std::future<void> releaser;
  std::atomic<std::uint64_t> unwritten{0};
  {
    TraceWriter writer(kv, {.linger = 1ms, .max_batch = 1, .flush_within = 50ms, .unwritten = &unwritten});
    writer.record("acme", "stuck", numbered(1));
    ASSERT_TRUE(test::eventually([&] { return kv.batches_started.load() == 1; }, 10s));
    writer.record("acme", "stuck", numbered(2));
    const auto began = std::chrono::steady_clock::now();
    EXPECT_FALSE(writer.flush(50ms));
    EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
    // The store answers the batch in flight only well after the destructor's own wait (50 ms) ran
    // out; there is no hook to see that it has, so the margin is wide.
    releaser = std::async(std::launch::async, [&] {
      std::this_thread::sleep_for(1s);
      kv.release();
    });
  }
  EXPECT_EQ(numbers_in(kv, "stuck"), (std::vector<std::int64_t>{1})) << "the queued event was written after the deadline";
  EXPECT_TRUE(log.has_line_with({"trace events not recorded", "still queued when the writer stopped", "t:acme:trace:stuck"})) << log.text();
  EXPECT_EQ(unwritten.load(), 1u);
}

// A phase records its handlers' events through a writer of its own, and counts in its metrics
// (baton_traces_unwritten_total) those the store refused.
class Echo final : public BaseOrchestrator<int, int> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~Echo() override { stop(); }

 protected:
  Result<int> handle(const int& input, Context&) override { return input; }
};

TEST(TraceWriter, APhaseTracesItsHandlersAndCountsWhatItCouldNotWrite) {
  test::CapturedLog quiet;
  GatedKv kv;
  MetricsRegistry metrics;
  auto bus = adapters::memory::make_memory_bus();
  const auto pipeline = Pipeline::make({"echo"}).value();
  auto options = phase_options(pipeline, "echo").value();
  options.metrics = &metrics;
  Echo echo(Ports{bus.get(), &kv}, options);
  ASSERT_TRUE(echo.start());
  const auto publish = [&](int value) {
    auto envelope = make_envelope("phase.echo.in", boost::json::value(value), EnvelopeOptions{.tenant_id = "acme"});
    EXPECT_TRUE(bus->publish(pipeline.first_topic(), envelope));
    return envelope.corr_id;
  };
  const auto traced = publish(1);
  ASSERT_TRUE(test::eventually([&] { return metrics.phase("echo").handled.load() == 1; }));
  ASSERT_TRUE(test::eventually([&] { return read_trace(kv, "acme", traced).has_value(); }, 10s)) << "the event was never written";
  kv.refuse = true;
  for (int value = 2; value <= 4; ++value) publish(value);
  ASSERT_TRUE(test::eventually([&] { return metrics.phase("echo").handled.load() == 4; }));
  echo.stop();  // writes (here: fails to write) what its handlers recorded
  EXPECT_EQ(metrics.phase("echo").traces_unwritten.load(), 3u);
  EXPECT_NE(metrics.render().find("baton_traces_unwritten_total{phase=\"echo\"} 3"), std::string::npos) << metrics.render();
}

TEST(TraceWriter, AFailedWriteIsLoggedAndDoesNotStopTheNext) {
  test::CapturedLog log;
  GatedKv kv;
  std::atomic<std::uint64_t> unwritten{0};
  TraceWriter writer(kv, {.linger = 1ms, .unwritten = &unwritten});
  kv.refuse = true;
  writer.record("acme", "lost", numbered(1));
  writer.flush();
  EXPECT_TRUE(log.has_line_with({"trace events not recorded", "store away (test)", "t:acme:trace:lost"})) << log.text();
  EXPECT_EQ(unwritten.load(), 1u);
  kv.refuse = false;
  writer.record("acme", "kept", numbered(2));
  writer.flush();
  EXPECT_EQ(numbers_in(kv, "kept"), (std::vector<std::int64_t>{2}));
}

// Before traces were lists, a trace was one value holding a JSON array: the writer extends it too.
TEST(TraceWriter, ExtendsATraceAnEarlierVersionWrote) {
  GatedKv kv;
  ASSERT_TRUE(kv.set(trace_key("acme", "old"), R"([{"event":"submitted","n":0}])", ports::no_ttl));
  TraceWriter writer(kv);
  writer.record("acme", "old", numbered(1));
  writer.flush();
  EXPECT_EQ(numbers_in(kv, "old"), (std::vector<std::int64_t>{0, 1}));
}

}  // namespace
}  // namespace baton::orchestrator
