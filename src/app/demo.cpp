#include "baton/app/demo.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/value_to.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "baton/app/bootstrap.hpp"
#include "baton/app/local_redis.hpp"
#include "baton/app/percentile.hpp"
#include "baton/app/phase_registry.hpp"
#include "baton/app/process_lifetime.hpp"
#include "baton/app/tasks.hpp"
#include "baton/core/codec.hpp"
#include "baton/core/log.hpp"
#include "baton/orchestrator/reference/phases.hpp"
#include "baton/orchestrator/trace.hpp"

extern char** environ;

namespace baton::app {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* demo_tenant = "demo";
constexpr std::chrono::milliseconds demo_reclaim_idle{2'000};

// A worker process: `baton run --phase P`, its output in a log file, ended by PID.
class WorkerProcess {
 public:
  WorkerProcess(std::string phase, stdfs::path log, std::vector<std::string> environment)
      : phase_(std::move(phase)), log_(std::move(log)), environment_(std::move(environment)) {}
  ~WorkerProcess() { terminate(); }

  void start() {
    const auto self = stdfs::read_symlink("/proc/self/exe").string();
    std::vector<std::string> arguments = {self, "run", "--phase", phase_};
    std::vector<char*> argv, envp;
    for (auto& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    for (auto& variable : environment_) envp.push_back(variable.data());
    envp.push_back(nullptr);
    const int log_fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      die_with_parent(parent);
      if (log_fd >= 0) {
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
      }
      // The parent may block SIGINT/SIGTERM for sigwait; the child must not inherit that mask.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execve(self.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    if (log_fd >= 0) ::close(log_fd);
  }

  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // SIGTERM (a graceful stop), then SIGKILL if it has not ended within 15 s.
  void terminate() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = SteadyClock::now() + 15s;
    while (SteadyClock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    kill9();
  }

  pid_t pid() const { return pid_; }
  const std::string& phase() const { return phase_; }

 private:
  std::string phase_;
  stdfs::path log_;
  std::vector<std::string> environment_;
  pid_t pid_ = -1;
};

// Counts every pipeline.completed message per task, in a consumer group of its own.
class CompletionLedger {
 public:
  Result<void> start(ports::MessageBus& bus, const orchestrator::Pipeline& pipeline) {
    ports::SubscribeOptions options;
    options.group = "demo-ledger";
    options.concurrency = 2;
    auto subscription = bus.subscribe(pipeline.completed_topic(), [this](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
      std::lock_guard lock(mutex_);
      ++per_task_[e.corr_id];
      return {};
    }, options);
    if (!subscription) return std::move(subscription).error();
    subscription_ = std::move(*subscription);
    return {};
  }
  void stop() { subscription_.stop(); }
  std::map<std::string, int> counts() const {
    std::lock_guard lock(mutex_);
    return per_task_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, int> per_task_;
  ports::Subscription subscription_;
};

struct Tally {
  std::set<std::string> deployed;      // a release folder and a release record
  std::set<std::string> dead_lettered; // in some phase's dead letters
  std::map<std::string, std::string> dead_letter_reason;
  std::size_t after_fix_round = 0;      // deployed, but only after certify sent a version back
  std::size_t completed_messages = 0;
  std::size_t duplicated = 0;
  std::size_t lost = 0;
};

// Reads what the run left behind: storage, KV, dead letters, and the ledger.
Tally count(const Runtime& runtime, const std::vector<std::string>& submitted, const std::map<std::string, int>& ledger) {
  Tally tally;
  const auto& pipeline = *runtime.pipeline;
  for (const auto& phase : pipeline.phases()) {
    auto letters = runtime.bus->dead_letters(pipeline.input_topic(phase), submitted.size() + 100);
    if (!letters) continue;
    for (const auto& letter : *letters) {
      auto envelope = decode(letter.original);
      if (!envelope) continue;
      tally.dead_lettered.insert(envelope->corr_id);
      tally.dead_letter_reason[envelope->corr_id] = phase + ": " + letter.error;
    }
  }
  for (const auto& corr_id : submitted) {
    auto record = runtime.kv->get(reference::release_key(demo_tenant, corr_id));
    auto files = runtime.storage->list("releases/" + corr_id);
    if (!record || !*record || !files || files->empty()) continue;
    tally.deployed.insert(corr_id);
    try {
      if (boost::json::value_to<reference::Release>(boost::json::parse((*record)->value)).rounds > 1) ++tally.after_fix_round;
    } catch (const std::exception&) {
    }
  }
  for (const auto& [corr_id, times] : ledger) {
    tally.completed_messages += static_cast<std::size_t>(times);
    if (times > 1) tally.duplicated += static_cast<std::size_t>(times - 1);
  }
  for (const auto& corr_id : submitted) {
    const bool deployed = tally.deployed.contains(corr_id);
    const bool dead = tally.dead_lettered.contains(corr_id);
    if (deployed && dead) ++tally.duplicated;  // both ends: something ran twice
    if (!deployed && !dead) ++tally.lost;
  }
  return tally;
}

std::string task_text(int n, int poison_every) {
  if (poison_every > 0 && n % poison_every == poison_every - 1) return "unplannable task #" + std::to_string(n);
  return "task #" + std::to_string(n) + ": a script that greets user " + std::to_string(n);
}


std::string milliseconds(double microseconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f ms", microseconds / 1000.0);
  return text;
}

std::vector<std::string> environment_for(const Config& config, const stdfs::path& storage) {
  std::vector<std::string> environment;
  for (char** entry = environ; entry && *entry; ++entry) {
    if (!std::string_view(*entry).starts_with("BATON_")) environment.emplace_back(*entry);
  }
  environment.push_back("BATON_BUS=" + config.bus);
  environment.push_back("BATON_KV=" + config.kv);
  environment.push_back("BATON_STORAGE_ROOT=" + storage.string());
  environment.push_back("BATON_DELIVERY_RECLAIM_IDLE_MS=" + std::to_string(config.reclaim_idle_ms));
  for (const auto& phase : config.phases) {
    std::string upper;
    for (const char c : phase) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    environment.push_back("BATON_PHASES_" + upper + "_CONCURRENCY=" + std::to_string(config.settings_for(phase).concurrency));
  }
  return environment;
}

}  // namespace

int run_demo(const DemoOptions& options) {
  if (options.tasks < 1) {
    std::cerr << "baton demo: --tasks must be at least 1\n";
    return 2;
  }
  const bool in_process = options.bus == "memory://";
  const bool private_redis = options.bus.empty();
  // A folder kept on purpose (--keep) carries no owner mark, so no later run takes it for litter.
  auto made = make_scratch_folder(stdfs::temp_directory_path(), "baton-demo-", !options.keep);
  if (!made) {
    std::cerr << "baton demo: " << made.error().message() << "\n";
    return 1;
  }
  const stdfs::path folder = *made;
  const auto cleanup = [&] {
    if (options.keep) {
      std::cout << "kept: " << folder.string() << " (logs/, storage/)\n";
    } else {
      std::error_code ignored;
      stdfs::remove_all(folder, ignored);
      forget_scratch_folder(folder.string());
    }
  };
  stdfs::create_directories(folder / "logs");
  log::log_to_file(folder / "logs" / "demo.log");  // the JSON log lines; the terminal gets the summary
  const std::uint64_t seed = options.seed ? options.seed : std::random_device{}();
  std::mt19937_64 random(seed);

  std::unique_ptr<LocalRedisServer> redis;
  Config config;
  config.storage_root = (folder / "storage").string();
  config.reclaim_idle_ms = demo_reclaim_idle.count();
  config.log_level = "warn";
  for (const auto& phase : config.phases) config.phase_settings[phase].concurrency = 4;
  for (const auto& phase : config.phases) {
    // Enough attempts that a broker restart in the middle never exhausts a healthy task's budget.
    config.phase_settings[phase].base_delay = 50ms;
    config.phase_settings[phase].max_attempts = 10;
  }
  if (private_redis) {
    try {
      redis = std::make_unique<LocalRedisServer>(LocalRedisOptions{.append_only = true, .appendfsync = "always"});
    } catch (const std::exception& failure) {
      std::cerr << "baton demo: " << failure.what() << "\n";
      cleanup();
      return 1;
    }
    config.bus = config.kv = redis->url();
  } else {
    config.bus = config.kv = options.bus;
  }
  auto runtime = bootstrap(config);
  if (!runtime) {
    std::cerr << "baton demo: " << runtime.error().message() << "\n";
    cleanup();
    return 2;
  }
  const auto& pipeline = *runtime->pipeline;
  std::cout << "baton demo: " << options.tasks << " tasks through " << pipeline.phases().size() << " phases (";
  for (std::size_t i = 0; i < pipeline.phases().size(); ++i) std::cout << (i ? " -> " : "") << pipeline.phases()[i];
  std::cout << "), AI provider: " << runtime->ai->provider() << " (deterministic, no network), seed " << seed << "\n";
  if (in_process) std::cout << "bus: memory:// - every phase in this process, no faults (there is no broker or worker process to kill)\n";
  else if (redis) std::cout << "bus: private redis-server pid " << redis->pid() << " on " << redis->url() << " (AOF, appendfsync always)\n";
  else std::cout << "bus: " << config.bus << "\n";

  // Workers: separate processes on Redis, phases in this process on memory://.
  orchestrator::MetricsRegistry metrics;
  std::vector<std::unique_ptr<RunnablePhase>> local_phases;
  std::vector<std::unique_ptr<WorkerProcess>> workers;
  if (in_process) {
    register_reference_phases(linked_phases(), *runtime);
    auto started = start_phases(*runtime, {}, linked_phases(), metrics);
    if (!started) {
      std::cerr << "baton demo: " << started.error().message() << "\n";
      cleanup();
      return 1;
    }
    local_phases = std::move(*started);
  } else {
    const auto environment = environment_for(config, folder / "storage");
    for (const auto& phase : pipeline.phases()) {
      workers.push_back(std::make_unique<WorkerProcess>(phase, folder / "logs" / (phase + ".log"), environment));
      workers.back()->start();
    }
    std::cout << "workers:";
    for (const auto& worker : workers) std::cout << " " << worker->phase() << "=pid " << worker->pid();
    std::cout << "\n";
  }

  CompletionLedger ledger;
  if (auto started = ledger.start(*runtime->bus, pipeline); !started) {
    std::cerr << "baton demo: " << started.error().message() << "\n";
    cleanup();
    return 1;
  }

  // Submits from a thread of its own, each task until acknowledged (while the broker restarts,
  // publishes fail and are retried), so that the faults below hit a pipeline in full flow.
  const auto began = SteadyClock::now();
  std::mutex submitted_mutex;
  std::vector<std::string> submitted;
  std::atomic<int> submit_retries{0};
  std::atomic<bool> submitting{true};
  std::thread submitter([&] {
    for (int n = 0; n < options.tasks; ++n) {
      const auto text = task_text(n, options.poison_every);
      const auto give_up = SteadyClock::now() + 60s;
      for (;;) {
        auto sent = submit_task(*runtime, demo_tenant, text);
        if (sent) {
          std::lock_guard lock(submitted_mutex);
          submitted.push_back(sent->envelope.corr_id);
          break;
        }
        if (SteadyClock::now() > give_up) {
          std::cerr << "baton demo: task " << n << " could not be submitted: " << sent.error().message() << std::endl;
          break;
        }
        ++submit_retries;
        std::this_thread::sleep_for(100ms);
      }
    }
    submitting = false;
  });
  const auto submitted_count = [&] {
    std::lock_guard lock(submitted_mutex);
    return submitted.size();
  };

  // Faults when a quarter and when half of the batch has settled (deployed or dead-lettered).
  bool broker_killed = !(options.faults && redis), worker_killed = !(options.faults && !workers.empty());
  const auto settled = [&] {
    std::size_t dead = 0;
    for (const auto& phase : pipeline.phases()) {
      if (auto stats = runtime->bus->topic_stats(pipeline.input_topic(phase))) dead += stats->dead_letters;
    }
    return ledger.counts().size() + dead;
  };
  const auto total = static_cast<std::size_t>(options.tasks);
  const auto deadline = SteadyClock::now() + options.timeout;
  while (SteadyClock::now() < deadline) {
    const auto done = settled();
    if (!broker_killed && done >= total / 4) {
      const auto pid = redis->pid();
      redis->kill9();
      std::this_thread::sleep_for(500ms);
      redis->restart();
      std::cout << "fault: redis-server (pid " << pid << ") killed with SIGKILL at " << done << "/" << total
                << " settled, restarted on its AOF as pid " << redis->pid() << std::endl;
      broker_killed = true;
    } else if (broker_killed && !worker_killed && done >= total / 2) {
      auto& victim = *workers[std::uniform_int_distribution<std::size_t>(0, workers.size() - 1)(random)];
      const auto pid = victim.pid();
      victim.kill9();
      victim.start();
      std::cout << "fault: worker " << victim.phase() << " (pid " << pid << ") killed with SIGKILL at " << done << "/" << total
                << " settled, restarted as pid " << victim.pid() << "; what it held is reclaimed after "
                << demo_reclaim_idle.count() << " ms idle" << std::endl;
      worker_killed = true;
    }
    if (!submitting && done >= submitted_count() && broker_killed && worker_killed) break;
    std::this_thread::sleep_for(20ms);
  }
  submitter.join();
  const bool timed_out = SteadyClock::now() >= deadline;
  if (timed_out) {
    std::cout << "timed out after " << options.timeout.count() << " s with " << settled() << "/" << submitted.size() << " settled" << std::endl;
  }
  std::cout << "submitted: " << submitted.size() << " tasks acknowledged by the bus";
  if (submit_retries) std::cout << " (" << submit_retries << " publishes retried while the broker was down)";
  std::cout << std::endl;
  const auto elapsed = std::chrono::duration<double>(SteadyClock::now() - began).count();
  // A late duplicate would come from a reclaim: give one reclaim period to show up before counting.
  if (!in_process) std::this_thread::sleep_for(demo_reclaim_idle + 1s);
  // Every task settled: the phases in this process stop here, which also writes their last trace
  // events (they are written in batches, behind the hand-offs) before the traces are read below.
  for (auto& phase : local_phases) phase->stop();

  const auto tally = count(*runtime, submitted, ledger.counts());

  // Per-phase handler time, from the traces in the KV store.
  std::map<std::string, std::vector<std::int64_t>> handler_us;
  std::string example, example_with_rounds;
  for (const auto& corr_id : submitted) {
    auto events = orchestrator::read_trace(*runtime->kv, demo_tenant, corr_id);
    if (!events) continue;
    for (const auto& item : *events) {
      const auto& event = item.as_object();
      const auto* us = event.if_contains("elapsed_us");
      if (event.at("event").as_string() == "handled" && us && us->is_int64()) {
        handler_us[std::string(event.at("phase").as_string())].push_back(us->get_int64());
      }
    }
    if (example.empty() && tally.deployed.contains(corr_id)) example = corr_id;
    if (example_with_rounds.empty() && tally.deployed.contains(corr_id)) {
      std::size_t code_runs = 0;
      for (const auto& item : *events) {
        if (item.as_object().at("event").as_string() == "handled" && item.as_object().at("phase").as_string() == "code") ++code_runs;
      }
      if (code_runs > 1) example_with_rounds = corr_id;
    }
  }

  std::cout << "\n";
  std::printf("  %-22s %8zu\n", "submitted", submitted.size());
  std::printf("  %-22s %8zu\n", "deployed", tally.deployed.size());
  std::printf("  %-22s %8zu\n", "  after a fix round", tally.after_fix_round);
  std::printf("  %-22s %8zu\n", "dead-lettered", tally.dead_lettered.size());
  std::printf("  %-22s %8zu\n", "lost", tally.lost);
  std::printf("  %-22s %8zu\n", "duplicated", tally.duplicated);
  std::printf("  %-22s %8zu\n", "completed messages", tally.completed_messages);
  std::printf("  %-22s %8.1f s (%.0f tasks/s)\n", "settled in", elapsed, static_cast<double>(submitted.size()) / elapsed);
  std::printf("\n  %-10s %10s %12s %12s   (handler time, from the traces)\n", "phase", "handled", "p50", "p99");
  for (const auto& phase : pipeline.phases()) {
    auto& samples = handler_us[phase];
    std::sort(samples.begin(), samples.end());
    std::printf("  %-10s %10zu %12s %12s\n", phase.c_str(), samples.size(), milliseconds(percentile(samples, 0.50)).c_str(),
                milliseconds(percentile(samples, 0.99)).c_str());
  }
  if (!tally.dead_lettered.empty()) {
    std::cout << "\n  dead letters:\n";
    int shown_letters = 0;
    for (const auto& [corr_id, reason] : tally.dead_letter_reason) {
      if (shown_letters++ == 8) break;
      std::cout << "    " << corr_id << "  " << reason.substr(0, 140) << (reason.size() > 140 ? "..." : "") << "\n";
    }
  }
  const auto shown = example_with_rounds.empty() ? example : example_with_rounds;
  if (!shown.empty()) {
    std::cout << "\n$ baton trace --tenant " << demo_tenant << " " << shown
              << (example_with_rounds.empty() ? "" : "    (a task whose first version failed certification)") << "\n";
    if (auto events = orchestrator::read_trace(*runtime->kv, demo_tenant, shown)) std::cout << trace_text(pipeline, *events);
  }
  if (tally.lost > 0) {
    std::cout << "\n  lost tasks:";
    int listed = 0;
    for (const auto& corr_id : submitted) {
      if (!tally.deployed.contains(corr_id) && !tally.dead_lettered.contains(corr_id) && listed++ < 10) std::cout << " " << corr_id;
    }
    std::cout << "\n";
  }

  ledger.stop();
  for (auto& worker : workers) worker->terminate();
  runtime->bus.reset();
  redis.reset();
  std::cout << "\ndemo: " << submitted.size() << " submitted, " << tally.deployed.size() << " deployed, " << tally.dead_lettered.size()
            << " dead-lettered, " << tally.lost << " lost, " << tally.duplicated << " duplicated"
            << (timed_out ? ", TIMED OUT (not every task settled within --timeout)" : "") << std::endl;
  log::flush();
  log::log_to_stderr();
  cleanup();
  return !timed_out && tally.lost == 0 && tally.duplicated == 0 && submitted.size() == static_cast<std::size_t>(options.tasks) ? 0 : 1;
}

}  // namespace baton::app
