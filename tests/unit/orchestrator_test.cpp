// BaseOrchestrator and Pipeline on the in-memory bus: typed phases, hand-off, failures, timeouts.

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <map>
#include <set>
#include <mutex>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/memory/memory_kv.hpp"
#include "baton/app/tasks.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"
#include "baton/orchestrator/pipeline.hpp"
#include "support/recorder.hpp"

namespace orchestrator_demo {

struct Task {
  std::string text;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& out, const Task& task) { out = {{"text", task.text}}; }
Task tag_invoke(boost::json::value_to_tag<Task>, const boost::json::value& in) {
  return Task{boost::json::value_to<std::string>(in.at("text"))};
}

struct Plan {
  std::string text;
  int steps = 0;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& out, const Plan& plan) {
  out = {{"text", plan.text}, {"steps", plan.steps}};
}
Plan tag_invoke(boost::json::value_to_tag<Plan>, const boost::json::value& in) {
  return Plan{boost::json::value_to<std::string>(in.at("text")), boost::json::value_to<int>(in.at("steps"))};
}

}  // namespace orchestrator_demo

namespace baton::orchestrator {
namespace {

using namespace std::chrono_literals;

PhaseOptions quick_phase(const Pipeline& pipeline, const std::string& name) {
  auto options = phase_options(pipeline, name).value();
  options.retry.base_delay = 1ms;
  options.retry.max_delay = 5ms;
  options.retry.max_attempts = 3;
  return options;
}

// Records every completed task, in a group of its own.
ports::Subscription record_completions(ports::MessageBus& bus, const Pipeline& pipeline, test::Recorder& completed) {
  ports::SubscribeOptions sink;
  sink.group = "sink";
  return bus.subscribe(pipeline.completed_topic(), [&completed](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    completed.add(e);
    return {};
  }, sink).value();
}

// Plans a task; "flaky" tasks fail their first attempt, "slow" ones outlive the first deadline.
class PlanPhase final : public BaseOrchestrator<orchestrator_demo::Task, orchestrator_demo::Plan> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~PlanPhase() override { stop(); }
  std::atomic<int> calls{0};
  std::atomic<int> saw_deadline_stop{0};

 protected:
  Result<orchestrator_demo::Plan> handle(const orchestrator_demo::Task& task, Context& context) override {
    ++calls;
    if (task.text == "flaky" && context.envelope.attempts == 1) return retryable_failure("flaky dependency");
    if (task.text == "broken") return retryable_failure("always down");
    if (task.text == "forbidden") return permanent_failure("not allowed");
    if (task.text == "slow" && context.envelope.attempts == 1) {
      while (!context.stop.stop_requested()) std::this_thread::sleep_for(1ms);
      ++saw_deadline_stop;
      return orchestrator_demo::Plan{task.text, 0};  // too late: the attempt counts as timed out anyway
    }
    return orchestrator_demo::Plan{task.text, static_cast<int>(task.text.size())};
  }
};

class CountPhase final : public BaseOrchestrator<orchestrator_demo::Plan, orchestrator_demo::Plan> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~CountPhase() override { stop(); }

 protected:
  Result<orchestrator_demo::Plan> handle(const orchestrator_demo::Plan& plan, Context&) override { return orchestrator_demo::Plan{plan.text, plan.steps * 10}; }
};

class OrchestratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus_ = adapters::memory::make_memory_bus();
    kv_ = adapters::memory::make_memory_kv();
    pipeline_.emplace(Pipeline::make({"plan", "count"}).value());
    plan_ = std::make_unique<PlanPhase>(Ports{bus_.get(), kv_.get()}, quick_phase(*pipeline_, "plan"));
    auto count_options = quick_phase(*pipeline_, "count");
    count_ = std::make_unique<CountPhase>(Ports{bus_.get(), kv_.get()}, count_options);
    ASSERT_TRUE(plan_->start());
    ASSERT_TRUE(count_->start());
    ports::SubscribeOptions sink;
    sink.group = "test-sink";
    auto subscription = bus_->subscribe(pipeline_->completed_topic(), [this](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
      completed_.add(e);
      return {};
    }, sink);
    ASSERT_TRUE(subscription);
    sink_ = std::move(*subscription);
  }

  void TearDown() override {
    sink_.stop();
    plan_.reset();
    count_.reset();
  }

  JsonEnvelope submit(const std::string& text) {
    auto task = make_envelope("phase.plan.in", boost::json::value{{"text", text}}, EnvelopeOptions{.tenant_id = "acme"});
    EXPECT_TRUE(bus_->publish(pipeline_->first_topic(), task));
    return task;
  }

  std::vector<ports::DeadLetter> dead_letters_of(const std::string& phase, std::size_t at_least) {
    std::vector<ports::DeadLetter> letters;
    test::eventually([&] {
      letters = bus_->dead_letters(pipeline_->input_topic(phase)).value_or({});
      return letters.size() >= at_least;
    });
    return letters;
  }

  std::vector<std::string> trace_events(const JsonEnvelope& task) {
    auto events = read_trace(*kv_, task.tenant_id, task.corr_id);
    std::vector<std::string> names;
    if (events) {
      for (const auto& event : *events) {
        names.push_back(std::string(event.at("event").as_string()) + ":" + std::string(event.at("phase").as_string()));
      }
    }
    return names;
  }

  std::unique_ptr<ports::MessageBus> bus_;
  std::unique_ptr<ports::KVStore> kv_;
  std::optional<Pipeline> pipeline_;
  std::unique_ptr<PlanPhase> plan_;
  std::unique_ptr<CountPhase> count_;
  ports::Subscription sink_;
  test::Recorder completed_;
};

TEST(Pipeline, NamesTopicsInOneSpace) {
  auto pipeline = Pipeline::make({"plan", "code", "certify", "deploy"});
  ASSERT_TRUE(pipeline);
  EXPECT_EQ(pipeline->first_topic(), "phase.plan.in");
  EXPECT_EQ(pipeline->output_topic("plan"), "phase.code.in");
  EXPECT_EQ(pipeline->output_type("plan"), "phase.code.in");
  EXPECT_EQ(pipeline->output_topic("deploy"), "phase.completed");
  EXPECT_EQ(pipeline->output_type("deploy"), "pipeline.completed");
  EXPECT_FALSE(pipeline->output_topic("unknown"));
  EXPECT_EQ(Pipeline::make({"a"}, "acme-3.phase")->first_topic(), "acme-3.phase.a.in");
}

TEST(Pipeline, RefusesBadPhasesNamingThem) {
  EXPECT_EQ(Pipeline::make({}).error().detail, "pipeline: no phases");
  EXPECT_EQ(Pipeline::make({"plan", "plan"}).error().detail, "pipeline phase \"plan\" appears twice");
  EXPECT_EQ(Pipeline::make({"a.b"}).error().detail, "pipeline phase \"a.b\": a phase name is one segment (no dots)");
  EXPECT_EQ(Pipeline::make({"completed"}).error().detail, "pipeline phase \"completed\": the name is reserved");
}

TEST_F(OrchestratorTest, CarriesATaskThroughEveryPhase) {
  const auto task = submit("hello");
  ASSERT_TRUE(completed_.wait_for_count(1));
  const auto done = completed_.seen().front();
  EXPECT_EQ(done.type, "pipeline.completed");
  EXPECT_EQ(done.corr_id, task.corr_id);
  EXPECT_EQ(done.tenant_id, "acme");
  EXPECT_NE(done.causation_id, task.id) << "caused by the count phase's input, not the task";
  EXPECT_EQ(done.payload.at("steps"), 50);
}

TEST_F(OrchestratorTest, ARetryableFailureComesBackAndHandsOffOnce) {
  const auto task = submit("flaky");
  const auto other = submit("steady");
  ASSERT_TRUE(completed_.wait_for_count(2));
  EXPECT_EQ(plan_->calls.load(), 3);  // flaky twice, steady once
  const auto seen = completed_.seen();
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [&](const auto& e) { return e.corr_id == task.corr_id; }), 1);
}

TEST_F(OrchestratorTest, EveryAttemptIsTracedUnderItsCorrelationId) {
  const auto flaky = submit("flaky");
  const auto broken = submit("broken");
  ASSERT_TRUE(completed_.wait_for_count(1));
  dead_letters_of("plan", 1);
  // Traces are written behind the hand-offs, in batches.
  EXPECT_TRUE(test::eventually([&] { return trace_events(flaky).size() == 3; }));
  EXPECT_EQ(trace_events(flaky), (std::vector<std::string>{"failed:plan", "handled:plan", "handled:count"}));
  EXPECT_TRUE(test::eventually([&] { return trace_events(broken).size() == 3; }));
  EXPECT_EQ(trace_events(broken), (std::vector<std::string>{"failed:plan", "failed:plan", "dead_lettered:plan"}));
  const auto traced = read_trace(*kv_, flaky.tenant_id, flaky.corr_id);
  ASSERT_TRUE(traced) << traced.error().message();
  const auto& events = *traced;
  EXPECT_EQ(events.at(0).at("attempt"), 1);
  EXPECT_EQ(events.at(1).at("attempt"), 2);
  EXPECT_NE(std::string(events.at(0).at("error").as_string()).find("flaky dependency"), std::string::npos);
  EXPECT_EQ(events.at(2).at("to"), "phase.completed");
}

TEST_F(OrchestratorTest, AnUndecodableInputIsADeadLetterAtOnce) {
  const auto wrong = make_envelope("phase.plan.in", boost::json::value{{"not_text", 1}});
  ASSERT_TRUE(bus_->publish(pipeline_->first_topic(), wrong));
  const auto letters = dead_letters_of("plan", 1);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters.front().reason, "permanent_failure");
  EXPECT_NE(letters.front().error.find("envelope field \"payload\""), std::string::npos) << letters.front().error;
  EXPECT_EQ(plan_->calls.load(), 0);
}

TEST_F(OrchestratorTest, PermanentFailuresAndExhaustedRetriesAreDeadLetters) {
  submit("forbidden");
  submit("broken");
  const auto letters = dead_letters_of("plan", 2);
  ASSERT_EQ(letters.size(), 2u);
  std::map<std::string, std::string> reasons;
  for (const auto& letter : letters) reasons[letter.reason] = letter.error;
  EXPECT_NE(reasons["permanent_failure"].find("not allowed"), std::string::npos);
  EXPECT_NE(reasons["attempts_exhausted"].find("always down"), std::string::npos);
  EXPECT_EQ(plan_->calls.load(), 1 + 3);
  EXPECT_EQ(completed_.count(), 0u);
}

TEST(Orchestrator, AHandlerPastItsDeadlineIsStoppedAndTriedAgain) {
  auto bus = adapters::memory::make_memory_bus();
  auto pipeline = Pipeline::make({"plan"}).value();
  auto options = quick_phase(pipeline, "plan");
  options.timeout = 50ms;
  PlanPhase plan(Ports{bus.get()}, options);
  ASSERT_TRUE(plan.start());
  test::Recorder completed;
  auto subscription = record_completions(*bus, pipeline, completed);
  ASSERT_TRUE(bus->publish(pipeline.first_topic(), make_envelope("phase.plan.in", boost::json::value{{"text", "slow"}})));
  ASSERT_TRUE(completed.wait_for_count(1));
  EXPECT_EQ(plan.saw_deadline_stop.load(), 1) << "the stop token was not requested at the deadline";
  EXPECT_EQ(plan.calls.load(), 2);
  EXPECT_EQ(completed.seen().front().payload.at("steps"), 4) << "the late result of the first attempt was handed off";
  EXPECT_EQ(completed.count(), 1u);
}

TEST(Orchestrator, ACrashBetweenHandleAndHandOffLosesNothingAndDoublesNothing) {
  // The process "dies" once in each phase, after handle() returned and before the hand-off committed.
  std::mutex mutex;
  std::set<std::string> crashed_once;
  adapters::memory::MemoryBusOptions options;
  options.crash_before_commit = [&](std::string_view topic, const JsonEnvelope& envelope) {
    if (topic == "phase.completed") return false;  // the test's own ledger below does not crash
    std::lock_guard lock(mutex);
    return crashed_once.insert(std::string(topic) + "/" + envelope.id).second;
  };
  auto bus = adapters::memory::make_memory_bus(options);
  auto pipeline = Pipeline::make({"plan", "count"}).value();
  PlanPhase plan(Ports{bus.get()}, quick_phase(pipeline, "plan"));
  CountPhase count(Ports{bus.get()}, quick_phase(pipeline, "count"));
  ASSERT_TRUE(plan.start());
  ASSERT_TRUE(count.start());
  test::Recorder completed;
  auto subscription = record_completions(*bus, pipeline, completed);
  constexpr int tasks = 20;
  for (int n = 0; n < tasks; ++n) {
    ASSERT_TRUE(bus->publish(pipeline.first_topic(), make_envelope("phase.plan.in", boost::json::value{{"text", "task " + std::to_string(n)}})));
  }
  ASSERT_TRUE(completed.wait_for_count(tasks));
  // Every input crashed once, so plan ran twice per task; yet each task completed exactly once.
  EXPECT_EQ(plan.calls.load(), 2 * tasks);
  std::map<std::string, int> per_story;
  for (const auto& e : completed.seen()) ++per_story[e.corr_id];
  EXPECT_EQ(per_story.size(), static_cast<std::size_t>(tasks)) << "a task was lost";
  for (const auto& [corr_id, times] : per_story) EXPECT_EQ(times, 1) << corr_id << " completed " << times << " times";
}

// A bus that cannot hand off atomically: the orchestrator must refuse it rather than lose outputs.
class NoHandOffBus final : public ports::MessageBus {
 public:
  ports::BusCapabilities capabilities() const override { return {}; }
  Result<void> publish_batch(std::string_view, std::span<const JsonEnvelope>, const ports::PublishOptions&) override { return {}; }
  Result<ports::Subscription> subscribe(std::string_view, ports::Handler, ports::SubscribeOptions) override {
    return Error{errc::invalid_argument, "not expected"};
  }
  Result<std::vector<ports::DeadLetter>> dead_letters(std::string_view, std::size_t) override {
    return std::vector<ports::DeadLetter>{};
  }
  Result<void> replay_dead_letter(std::string_view, std::string_view, const JsonEnvelope&) override { return {}; }
  Result<std::size_t> purge_dead_letters(std::string_view) override { return std::size_t{0}; }
  Result<ports::TopicStats> topic_stats(std::string_view) override { return ports::TopicStats{}; }
  ports::Health health() override { return {true, {}, "test double"}; }
};

TEST(Orchestrator, RefusesABusWithoutAtomicHandOff) {
  NoHandOffBus bus;
  PlanPhase plan(Ports{&bus}, quick_phase(Pipeline::make({"plan"}).value(), "plan"));
  auto started = plan.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().detail, "phase \"plan\": the bus cannot hand off atomically");
}

TEST(Trace, KeepsTheNewestEventsInOrder) {
  auto kv = adapters::memory::make_memory_kv();
  for (std::size_t i = 0; i < max_trace_events + 3; ++i) {
    ASSERT_TRUE(record_trace_event(*kv, "acme", "corr-1", boost::json::object{{"event", "handled"}, {"n", i}}));
  }
  const auto events = read_trace(*kv, "acme", "corr-1");
  ASSERT_TRUE(events) << events.error().message();
  ASSERT_EQ(events->size(), max_trace_events);
  EXPECT_EQ(events->front().at("n"), 3);
  EXPECT_EQ(events->back().at("n"), max_trace_events + 2);
  EXPECT_TRUE(events->front().as_object().contains("at"));
  EXPECT_EQ(read_trace(*kv, "acme", "corr-2").error(), errc::not_found);
}

TEST(Trace, ATraceAnEarlierVersionWroteIsReadAndExtended) {
  auto kv = adapters::memory::make_memory_kv();
  // Before traces were lists, a trace was one value holding a JSON array.
  ASSERT_TRUE(kv->set(trace_key("acme", "old"), R"([{"event":"submitted"},{"event":"handled","phase":"plan"}])"));
  const auto before = read_trace(*kv, "acme", "old");
  ASSERT_TRUE(before) << before.error().message();
  EXPECT_EQ(before->size(), 2u);
  ASSERT_TRUE(record_trace_event(*kv, "acme", "old", boost::json::object{{"event", "handled"}, {"phase", "code"}}));
  const auto after = read_trace(*kv, "acme", "old");
  ASSERT_TRUE(after) << after.error().message();
  ASSERT_EQ(after->size(), 3u);
  EXPECT_EQ(after->at(0).at("event"), "submitted");
  EXPECT_EQ(after->at(2).at("phase"), "code");
}

// Phases write their events in batches, from threads and processes of their own, so a later
// phase's event may be stored first. Reading puts them back in the order they happened, and
// "now" is where the task really is.
TEST(Trace, EventsStoredOutOfOrderAreReadInTheOrderTheyHappened) {
  auto kv = adapters::memory::make_memory_kv();
  const auto pipeline = Pipeline::make({"plan", "code"}).value();
  const std::vector<boost::json::object> stored{
      {{"event", "handled"}, {"phase", "code"}, {"msg_id", "m1"}, {"attempt", 1}, {"next_msg_id", "m2"}, {"to", "phase.completed"}},
      {{"event", "submitted"}, {"msg_id", "m0"}, {"to", "phase.plan.in"}},
      {{"event", "handled"}, {"phase", "plan"}, {"msg_id", "m0"}, {"attempt", 3}, {"next_msg_id", "m1"}, {"to", "phase.code.in"}},
      // A hand-off a crash undid: its message never arrived, the next attempt's did.
      {{"event", "handled"}, {"phase", "plan"}, {"msg_id", "m0"}, {"attempt", 2}, {"next_msg_id", "lost"}, {"to", "phase.code.in"}},
      {{"event", "failed"}, {"phase", "plan"}, {"msg_id", "m0"}, {"attempt", 1}},
  };
  for (const auto& event : stored) ASSERT_TRUE(record_trace_event(*kv, "acme", "late", event));
  const auto events = read_trace(*kv, "acme", "late");
  ASSERT_TRUE(events) << events.error().message();
  std::vector<std::string> order;
  for (const auto& event : *events) {
    order.push_back(std::string(event.at("event").as_string()) + ":" + std::string(event.at("msg_id").as_string()) +
                    (event.as_object().contains("attempt") ? "#" + boost::json::serialize(event.at("attempt")) : ""));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"submitted:m0", "failed:m0#1", "handled:m0#2", "handled:m0#3", "handled:m1#1"}));
  EXPECT_EQ(app::whereabouts(pipeline, *events), "completed");
}

TEST(Trace, AnEventThatIsNotJsonIsNamed) {
  auto kv = adapters::memory::make_memory_kv();
  ASSERT_TRUE(record_trace_event(*kv, "acme", "bad", boost::json::object{{"event", "submitted"}}));
  ASSERT_TRUE(kv->append(trace_key("acme", "bad"), "{not json", 0));
  const auto events = read_trace(*kv, "acme", "bad");
  ASSERT_FALSE(events);
  EXPECT_EQ(events.error(), errc::decode_failed);
  EXPECT_EQ(events.error().detail, "event 2 of the trace of bad is not a JSON object");
}

}  // namespace
}  // namespace baton::orchestrator
