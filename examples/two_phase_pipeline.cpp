// A two-phase pipeline on the in-memory adapters: "plan" turns a task into steps, "code" carries
// them out. It shows the pieces working together: typed phases (BaseOrchestrator), the atomic
// hand-off from one phase to the next, redelivery of a retryable failure, once() for an effect that
// must happen exactly once, the trace of every attempt, and JSON logs that follow one message across
// phases by its correlation id.
//
//   two_phase_pipeline [--tasks N]

#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <charconv>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/memory/memory_kv.hpp"
#include "baton/core/log.hpp"
#include "baton/core/once.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"
#include "baton/orchestrator/pipeline.hpp"

namespace demo {

struct Task {
  std::string text;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& out, const Task& task) { out = {{"task", task.text}}; }
Task tag_invoke(boost::json::value_to_tag<Task>, const boost::json::value& in) {
  return Task{boost::json::value_to<std::string>(in.at("task"))};
}

struct Plan {
  std::string task;
  std::vector<std::string> steps;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& out, const Plan& plan) {
  out = {{"task", plan.task}, {"steps", boost::json::value_from(plan.steps)}};
}
Plan tag_invoke(boost::json::value_to_tag<Plan>, const boost::json::value& in) {
  return Plan{boost::json::value_to<std::string>(in.at("task")), boost::json::value_to<std::vector<std::string>>(in.at("steps"))};
}

struct Done {
  std::string task;
  int completed_so_far = 0;
};
void tag_invoke(boost::json::value_from_tag, boost::json::value& out, const Done& done) {
  out = {{"task", done.task}, {"completed_so_far", done.completed_so_far}};
}

}  // namespace demo

namespace {

using namespace std::chrono_literals;
using namespace baton;

class PlanPhase final : public orchestrator::BaseOrchestrator<demo::Task, demo::Plan> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~PlanPhase() override { stop(); }

 protected:
  Result<demo::Plan> handle(const demo::Task& task, orchestrator::Context& context) override {
    context.logger.info("planning", {{"task", task.text}});
    return demo::Plan{task.text, {"design", "implement", "test"}};
  }
};

class CodePhase final : public orchestrator::BaseOrchestrator<demo::Plan, demo::Done> {
 public:
  CodePhase(orchestrator::Ports ports, orchestrator::PhaseOptions options, std::atomic<int>& effects)
      : BaseOrchestrator(ports, std::move(options)), effects_(effects) {}
  ~CodePhase() override { stop(); }

 protected:
  Result<demo::Done> handle(const demo::Plan& plan, orchestrator::Context& context) override {
    context.logger.info("coding", {{"steps", plan.steps.size()}});
    // The first task's first attempt fails as a flaky dependency would: the bus brings it back.
    if (plan.task == "task-1" && context.envelope.attempts == 1) return retryable_failure("the build cache did not answer");
    // The effect (counting a finished task) happens once per story, however often it is delivered.
    auto& kv = *context.ports.kv;
    auto done = once(kv, keys::tenant_key(context.envelope.tenant_id, "done", context.envelope.corr_id), [&]() -> Result<int> {
      ++effects_;
      auto total = kv.incr("demo:completed");
      if (!total) return total.error();
      return static_cast<int>(*total);
    });
    if (!done) return done.error();
    return demo::Done{plan.task, done->value};
  }

 private:
  std::atomic<int>& effects_;
};

std::optional<int> parse_tasks(int argc, char** argv) {
  int tasks = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "--tasks" && i + 1 < argc) {
      const std::string_view value = argv[++i];
      const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), tasks);
      if (error != std::errc{} || end != value.data() + value.size() || tasks < 1) {
        std::cerr << "two_phase_pipeline: --tasks takes a whole number from 1 up, got \"" << value << "\"\n";
        return std::nullopt;
      }
    } else {
      std::cerr << "usage: two_phase_pipeline [--tasks N]\n";
      return std::nullopt;
    }
  }
  return tasks;
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
      const auto* corr = object ? object->if_contains("corr_id") : nullptr;
      if (!error && corr && corr->is_string() && corr->get_string() == corr_id) story.push_back(line);
    }
    return story;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace

int main(int argc, char** argv) {
  const auto tasks = parse_tasks(argc, argv);
  if (!tasks) return 2;

  LogCapture capture;
  log::log_to_callback([&](std::string_view line) { capture.add(line); });
  const log::Logger root = log::Logger().child("demo");

  auto bus = adapters::memory::make_memory_bus();
  auto kv = adapters::memory::make_memory_kv();
  const orchestrator::Ports ports{bus.get(), kv.get()};
  const auto pipeline = orchestrator::Pipeline::make({"plan", "code"}).value();

  auto options_for = [&](const std::string& phase) {
    auto options = orchestrator::phase_options(pipeline, phase).value();
    options.concurrency = 2;
    options.retry.base_delay = 10ms;
    return options;
  };
  std::atomic<int> effects{0};
  PlanPhase plan(ports, options_for("plan"));
  CodePhase code(ports, options_for("code"), effects);
  for (auto started : {plan.start(), code.start()}) {
    if (!started) {
      std::cerr << "two_phase_pipeline: " << started.error().message() << '\n';
      return 1;
    }
  }

  std::vector<std::string> submitted;
  for (int n = 1; n <= *tasks; ++n) {
    auto task = to_untyped(make_envelope("phase.plan.in", demo::Task{"task-" + std::to_string(n)}, EnvelopeOptions{.tenant_id = "demo"}));
    if (auto sent = bus->publish(pipeline.first_topic(), task); !sent) {
      std::cerr << "two_phase_pipeline: submit failed: " << sent.error().message() << '\n';
      return 1;
    }
    root.for_message(task).info("submitted");
    submitted.push_back(task.corr_id);
  }

  // Wait for the pipeline to drain: every story completed or dead-lettered, or a deadline.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::size_t dead = 0;
  std::set<std::string> finished;
  while (std::chrono::steady_clock::now() < deadline) {
    finished.clear();
    for (const auto& corr_id : submitted) {
      auto mark = kv->get(keys::tenant_key("demo", "done", corr_id));
      if (mark && *mark) finished.insert(corr_id);
    }
    dead = 0;
    for (const auto& phase : pipeline.phases()) dead += bus->dead_letters(pipeline.input_topic(phase)).value_or({}).size();
    if (finished.size() + dead >= submitted.size()) break;
    std::this_thread::sleep_for(5ms);
  }
  plan.stop();
  code.stop();

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
