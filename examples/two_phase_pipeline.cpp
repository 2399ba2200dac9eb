// A two-phase pipeline on the in-memory adapters: "plan" turns a task into steps, "code" carries
// them out. It shows the pieces of the foundation working together: envelopes and their
// correlation, durable topics with consumer groups, redelivery of a retryable failure, once() for
// an effect that must happen exactly once, and JSON logs that follow one message across phases.
//
//   two_phase_pipeline [--tasks N]
//
// The orchestrator (BaseOrchestrator, atomic hand-off) replaces the hand-written phases below.

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/memory/memory_kv.hpp"
#include "baton/core/log.hpp"
#include "baton/core/once.hpp"

namespace {

using namespace std::chrono_literals;
using namespace baton;

constexpr std::string_view plan_topic = "phase.plan.in";
constexpr std::string_view code_topic = "phase.code.in";

struct Options {
  int tasks = 5;
};

std::optional<Options> parse_arguments(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "--tasks" && i + 1 < argc) {
      const std::string_view value = argv[++i];
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), options.tasks);
      if (error != std::errc{} || end != value.data() + value.size() || options.tasks < 1) {
        std::cerr << "two_phase_pipeline: --tasks takes a whole number from 1 up, got \"" << value << "\"\n";
        return std::nullopt;
      }
    } else {
      std::cerr << "usage: two_phase_pipeline [--tasks N]\n";
      return std::nullopt;
    }
  }
  return options;
}

// Lines written by the logger, kept so the demo can show one message's story at the end.
class LogCapture {
 public:
  void add(std::string_view line) {
    std::cerr << line << '\n';
    std::lock_guard lock(mutex_);
    lines_.emplace_back(line);
  }
  std::vector<std::string> for_correlation(const std::string& corr_id) {
    std::lock_guard lock(mutex_);
    std::vector<std::string> story;
    for (const auto& line : lines_) {
      boost::system::error_code error;
      const auto parsed = boost::json::parse(line, error);
      const auto* object = parsed.if_object();
      if (error || !object) continue;
      const auto* corr = object->if_contains("corr_id");
      if (corr && corr->is_string() && corr->get_string() == corr_id) story.push_back(line);
    }
    return story;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse_arguments(argc, argv);
  if (!options) return 2;

  LogCapture capture;
  log::log_to_callback([&](std::string_view line) { capture.add(line); });
  const log::Logger root = log::Logger().child("demo");

  auto bus = adapters::memory::make_memory_bus();
  auto kv = adapters::memory::make_memory_kv();

  ports::SubscribeOptions plan_options;
  plan_options.group = "plan";
  plan_options.concurrency = 2;
  plan_options.redelivery.base_delay = 10ms;

  auto plan = bus->subscribe(plan_topic, [&](const JsonEnvelope& task, const ports::DeliveryInfo&) -> Result<void> {
    const auto logger = root.child("plan").for_message(task);
    logger.info("planning", {{"attempt", task.attempts}, {"task", task.payload.at("task")}});
    boost::json::array steps{"design", "implement", "test"};
    auto next = child_envelope(task, std::string(code_topic), boost::json::value{{"task", task.payload.at("task")}, {"steps", steps}});
    if (auto sent = bus->publish(code_topic, next); !sent) return sent.error();
    logger.info("handed over", {{"to", code_topic}, {"next_msg_id", next.id}});
    return {};
  }, plan_options);

  ports::SubscribeOptions code_options = plan_options;
  code_options.group = "code";

  std::atomic<int> effects{0};
  auto code = bus->subscribe(code_topic, [&](const JsonEnvelope& work, const ports::DeliveryInfo&) -> Result<void> {
    const auto logger = root.child("code").for_message(work);
    logger.info("coding", {{"attempt", work.attempts}, {"steps", work.payload.at("steps").as_array().size()}});
    // The first task's first attempt fails as a flaky dependency would: the bus brings it back.
    if (work.payload.at("task") == "task-1" && work.attempts == 1) {
      logger.warn("flaky dependency, asking for a retry");
      return retryable_failure("the build cache did not answer");
    }
    // The effect (here: counting a finished task) happens once per story, however often delivered.
    auto done = once(*kv, keys::tenant_key(work.tenant_id, "done", work.corr_id), [&]() -> Result<int> {
      ++effects;
      auto total = kv->incr("demo:completed");
      if (!total) return total.error();
      return static_cast<int>(*total);
    });
    if (!done) return done.error();
    logger.info("completed", {{"completed_so_far", done->value}});
    return {};
  }, code_options);

  if (!plan || !code) {
    std::cerr << "two_phase_pipeline: subscribe failed: " << (!plan ? plan.error() : code.error()).message() << '\n';
    return 1;
  }

  std::vector<std::string> submitted;
  for (int n = 1; n <= options->tasks; ++n) {
    auto task = make_envelope("phase.plan.in", boost::json::value{{"task", "task-" + std::to_string(n)}},
                              EnvelopeOptions{.tenant_id = "demo"});
    if (auto sent = bus->publish(plan_topic, task); !sent) {
      std::cerr << "two_phase_pipeline: submit failed: " << sent.error().message() << '\n';
      return 1;
    }
    root.for_message(task).info("submitted");
    submitted.push_back(task.corr_id);
  }

  // Wait for the pipeline to drain: every story completed, or a dead letter, or a deadline.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::size_t completed = 0;
  std::size_t dead = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto count = kv->get("demo:completed");
    completed = count && *count ? std::stoul((*count)->value) : 0;
    dead = bus->dead_letters(plan_topic).value_or({}).size() + bus->dead_letters(code_topic).value_or({}).size();
    if (completed + dead >= submitted.size()) break;
    std::this_thread::sleep_for(5ms);
  }
  plan->stop();
  code->stop();

  std::set<std::string> finished;
  for (const auto& corr_id : submitted) {
    auto mark = kv->get(keys::tenant_key("demo", "done", corr_id));
    if (mark && *mark) finished.insert(corr_id);
  }
  const std::size_t lost = submitted.size() - finished.size() - dead;
  const std::size_t duplicated = static_cast<std::size_t>(effects.load()) - finished.size();

  const auto story = capture.for_correlation(submitted.front());
  log::log_to_stderr();
  std::cout << "The story of one message (corr_id " << submitted.front() << "), across both phases:\n";
  for (const auto& line : story) std::cout << "  " << line << '\n';
  std::cout << "two-phase demo: " << submitted.size() << " submitted, " << finished.size() << " completed, " << dead
            << " dead-lettered, " << lost << " lost, " << duplicated << " duplicated\n";
  return lost == 0 && duplicated == 0 && dead == 0 ? 0 : 1;
}
