// The chaos suite: worker processes (baton_chaos_worker) carry tasks through a four-phase pipeline
// on a private redis-server while the test kills, stops and restarts them and the broker. Loss and
// duplication are counted from ledgers outside the system under test:
// - the completion ledger: a consumer of "chaos.completed" that keeps, per task, the distinct ids
//   of the completed envelopes it received (a task completed by two different hand-offs is a
//   duplicate; a redelivery of the same envelope is not);
// - the calls ledger: every handler call, appended by the workers to a file.
// Each scenario prints `chaos <name>: sent S, completed C, lost L, duplicated D, dlq Q,
// recovery_ms R (seed N)`. BATON_CHAOS_SEED replays a run; BATON_CHAOS_SCALE multiplies the sizes.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/app/process_lifetime.hpp"
#include "baton/core/codec.hpp"
#include "baton/orchestrator/pipeline.hpp"
#include "support/fault_proxy.hpp"
#include "support/recorder.hpp"
#include "support/redis_server.hpp"

#ifndef BATON_CHAOS_WORKER
#error "BATON_CHAOS_WORKER must name the chaos worker executable"
#endif
#ifndef BATON_EXECUTABLE
#error "BATON_EXECUTABLE must name the baton executable"
#endif

namespace baton::chaos {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const std::vector<std::string> phases = {"plan", "code", "certify", "deploy"};

std::size_t scaled(std::size_t base) {
  const char* scale = std::getenv("BATON_CHAOS_SCALE");
  return scale ? base * static_cast<std::size_t>(std::max(1, std::atoi(scale))) : base;
}

std::uint64_t chosen_seed() {
  if (const char* seed = std::getenv("BATON_CHAOS_SEED")) return std::strtoull(seed, nullptr, 10);
  return std::random_device{}();
}

struct ChaosOptions {
  std::string name;
  std::size_t tasks = 1000;
  int workers = 2;
  int concurrency = 4;
  int fail_per_10000 = 0;
  int handler_ms = 0;
  int reclaim_ms = 1000;
  double poison_share = 0;
  std::string appendfsync = "always";
  int retain_ms = 600'000;     // the workers' retention of acked entries (trimmed by MINID)
  bool through_proxy = false;  // workers reach Redis through the fault-injecting proxy
};

struct CallLine {
  std::string phase, corr_id, outcome;
  int attempt = 0;
  int pid = 0;
};

class Chaos {
 public:
  explicit Chaos(ChaosOptions options)
      : options_(std::move(options)), seed_(chosen_seed()), random_(seed_),
        server_({.append_only = true, .appendfsync = options_.appendfsync}) {
    std::cout << "chaos " << options_.name << ": seed " << seed_ << " (BATON_CHAOS_SEED=" << seed_ << " replays it)" << std::endl;
    calls_path_ = server_.directory() / "calls.ledger";
    adapters::redis::RedisBusOptions bus_options;
    bus_options.redis = adapters::redis::parse_redis_url(server_.url()).value();
    bus_options.redis.request_timeout = 3s;
    bus_options.reclaim_idle = std::chrono::milliseconds{options_.reclaim_ms};
    bus_options.reclaim_interval = std::max(50ms, bus_options.reclaim_idle / 5);
    bus_ = adapters::redis::make_redis_bus(bus_options);
    pipeline_.emplace(orchestrator::Pipeline::make(phases, "chaos").value());
    if (options_.through_proxy) proxy_ = std::make_unique<test::FaultProxy>(server_.port());
    for (int i = 0; i < options_.workers; ++i) workers_.push_back(spawn());
    start_ledger();
  }

  ~Chaos() {
    ledger_.stop();
    for (auto pid : workers_) end(pid, SIGKILL);
  }

  app::LocalRedisServer& server() { return server_; }
  test::FaultProxy& proxy() { return *proxy_; }
  std::mt19937_64& random() { return random_; }
  const std::vector<pid_t>& workers() const { return workers_; }
  std::string url() const { return server_.url(); }

  pid_t spawn() {
    const auto log = server_.directory() / ("worker-" + std::to_string(spawned_++) + ".log");
    const std::string ledger = calls_path_.string(), fail = std::to_string(options_.fail_per_10000),
                      handler = std::to_string(options_.handler_ms), reclaim = std::to_string(options_.reclaim_ms),
                      concurrency = std::to_string(options_.concurrency), cured = cured_ ? "1" : "0",
                      retain = std::to_string(options_.retain_ms),
                      url = proxy_ ? "redis://127.0.0.1:" + std::to_string(proxy_->port()) : server_.url();
    const pid_t test = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Forked on the test's own thread: a test ended by ctest's timeout takes its workers with it.
      app::die_with_parent(test);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      ::execl(BATON_CHAOS_WORKER, BATON_CHAOS_WORKER, url.c_str(), "plan,code,certify,deploy", ledger.c_str(), fail.c_str(),
              handler.c_str(), reclaim.c_str(), concurrency.c_str(), cured.c_str(), retain.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    logs_[pid] = log;
    return pid;
  }

  // Sends `signal` and reaps the worker; for SIGTERM, returns its exit status.
  int end(pid_t pid, int signal) {
    ::kill(pid, SIGCONT);
    ::kill(pid, signal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  }

  void replace_worker(std::size_t index, int signal) {
    end(workers_[index], signal);
    workers_[index] = spawn();
  }

  void set_cured(bool cured) { cured_ = cured; }

  // New processes for workers that were ended already.
  void respawn_all() {
    for (auto& pid : workers_) pid = spawn();
  }

  // Publishes every task (retrying while the broker is away; the same envelopes, so a retry of a
  // publish that did land is deduplicated by id). Runs on its own thread.
  void submit_all() {
    submitter_ = std::thread([this] {
      std::vector<JsonEnvelope> batch;
      std::bernoulli_distribution poison(options_.poison_share);
      std::mt19937_64 choose(seed_ + 1);
      for (std::size_t n = 0; n < options_.tasks; ++n) {
        const bool is_poison = options_.poison_share > 0 && poison(choose);
        auto task = make_envelope(pipeline_->first_topic(), boost::json::value{{"n", n}, {"poison", is_poison}});
        {
          std::lock_guard lock(mutex_);
          sent_.insert(task.corr_id);
          if (is_poison) poison_.insert(task.corr_id);
        }
        batch.push_back(std::move(task));
        if (batch.size() < 200 && n + 1 < options_.tasks) continue;
        while (!bus_->publish_batch(pipeline_->first_topic(), batch)) std::this_thread::sleep_for(50ms);
        batch.clear();
      }
      submitted_ = true;
    });
  }

  void wait_submitted() {
    if (submitter_.joinable()) submitter_.join();
  }

  std::size_t completed() {
    std::lock_guard lock(mutex_);
    return completions_.size();
  }

  std::map<std::string, std::string> dead_letters() {
    std::map<std::string, std::string> letters;
    for (const auto& phase : phases) {
      auto listed = bus_->dead_letters(pipeline_->input_topic(phase), 1'000'000);
      if (!listed) continue;
      for (const auto& letter : *listed) {
        auto envelope = decode(letter.original);
        if (envelope) letters[envelope->corr_id] = letter.reason + ": " + letter.error;
      }
    }
    return letters;
  }

  // Waits until every sent task completed or was dead-lettered (returns when: nullopt if it never
  // did), then up to one reclaim period more so that a late second completion (the thing we look
  // for) has time to show.
  // Tasks in `left_out` (whose submits the server forgot, see kept_envelopes) are not waited for.
  std::optional<SteadyClock::time_point> wait_settled(std::chrono::seconds timeout, const std::set<std::string>& left_out = {}) {
    const auto deadline = SteadyClock::now() + timeout;
    std::optional<SteadyClock::time_point> settled;
    while (SteadyClock::now() < deadline) {
      if (submitted_) {
        const auto letters = dead_letters();
        std::lock_guard lock(mutex_);
        std::size_t done = 0;
        for (const auto& corr_id : sent_) done += completions_.contains(corr_id) || letters.contains(corr_id) || left_out.contains(corr_id);
        if (done == sent_.size()) {
          settled = SteadyClock::now();
          break;
        }
      }
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds{options_.reclaim_ms}, std::chrono::milliseconds{3000}) + 500ms);
    return settled;
  }

  std::size_t sent_count() {
    std::lock_guard lock(mutex_);
    return sent_.size();
  }

  std::set<std::string> sent() {
    std::lock_guard lock(mutex_);
    return sent_;
  }

  std::map<std::string, std::set<std::string>> completions() {
    std::lock_guard lock(mutex_);
    return completions_;
  }

  // What the server holds now in a stream of the pipeline ("plan.in", "completed"): per task
  // (correlation id), the ids of the envelopes in its entries, acked ones included (the workers
  // keep acked entries for retain_ms). One script, so that it is one redis-cli call; double quotes
  // only, since cli() wraps each argument in single quotes.
  std::map<std::string, std::set<std::string>> kept_envelopes(const std::string& stream) {
    const auto listed = server_.cli({"EVAL",
                                     "local out = {} "
                                     "for _, entry in ipairs(redis.call(\"XRANGE\", KEYS[1], \"-\", \"+\")) do "
                                     "  local fields = entry[2] "
                                     "  for i = 1, #fields, 2 do "
                                     "    if fields[i] == \"e\" then "
                                     "      local ok, envelope = pcall(cjson.decode, fields[i + 1]) "
                                     "      if ok then out[#out + 1] = envelope.corr_id .. \" \" .. envelope.id end "
                                     "    end "
                                     "  end "
                                     "end "
                                     "return out",
                                     "1", "baton:{chaos}:chaos." + stream});
    std::map<std::string, std::set<std::string>> kept;
    std::istringstream lines(listed);
    for (std::string line; std::getline(lines, line);) {
      // Two UUIDs a line: anything else (an error of the script) must not read as an empty stream.
      const auto space = line.find(' ');
      if (line.size() != 73 || space != 36) {
        ADD_FAILURE() << "unexpected line listing " << stream << ": " << line;
        continue;
      }
      kept[line.substr(0, 36)].insert(line.substr(37));
    }
    return kept;
  }

  // What is left in each phase's group, as Redis reports it (for a failure's message).
  std::string describe_unfinished() {
    std::string text;
    for (const auto& phase : phases) {
      const std::string stream = "baton:{chaos}:chaos." + phase + ".in";
      text += "-- " + phase + ": XINFO GROUPS\n" + server_.cli({"XINFO", "GROUPS", stream}) + "XPENDING\n" +
              server_.cli({"XPENDING", stream, phase}) + "retry set " + server_.cli({"ZCARD", stream + ":retry:" + phase}) +
              "redeliver XPENDING\n" + server_.cli({"XPENDING", stream + ":redeliver:" + phase, phase});
    }
    return text;
  }

  // Pending and lag of every phase's group: both 0 once everything settled.
  std::size_t unfinished() {
    std::size_t left = 0;
    for (const auto& phase : phases) {
      auto stats = bus_->topic_stats(pipeline_->input_topic(phase));
      if (!stats) return 1;
      for (const auto& group : stats->groups) left += group.pending + group.lag;
    }
    return left;
  }

  struct Outcome {
    std::size_t sent = 0, completed = 0, lost = 0, duplicated = 0, dlq = 0, unexpected = 0;
  };

  Outcome tally(std::int64_t recovery_ms) {
    const auto letters = dead_letters();
    Outcome outcome;
    std::lock_guard lock(mutex_);
    outcome.sent = sent_.size();
    outcome.completed = completions_.size();
    outcome.dlq = letters.size();
    for (const auto& [corr_id, ids] : completions_) {
      if (!sent_.contains(corr_id)) ++outcome.unexpected;
      outcome.duplicated += ids.size() - 1;
      if (letters.contains(corr_id)) ++outcome.duplicated;
    }
    for (const auto& corr_id : sent_) outcome.lost += !completions_.contains(corr_id) && !letters.contains(corr_id);
    std::cout << "chaos " << options_.name << ": sent " << outcome.sent << ", completed " << outcome.completed << ", lost "
              << outcome.lost << ", duplicated " << outcome.duplicated << ", dlq " << outcome.dlq << ", recovery_ms "
              << recovery_ms << " (seed " << seed_ << ")" << std::endl;
    if (outcome.duplicated > 0) describe_duplicates(letters);
    return outcome;
  }

  // For a failure's message: the first few tasks completed more than once, with their completions
  // and every handler call the workers made for them (which phase ran twice, in which process, at
  // which attempt).
  void describe_duplicates(const std::map<std::string, std::string>& letters) {
    std::map<std::string, std::vector<std::string>> described;
    for (const auto& [corr_id, ids] : completions_) {
      if (described.size() == 5) break;
      if (ids.size() < 2 && !letters.contains(corr_id)) continue;
      auto& lines = described[corr_id];
      for (const auto& id : ids) lines.push_back("  completed as " + id);
      if (letters.contains(corr_id)) lines.push_back("  and dead-lettered: " + letters.at(corr_id));
    }
    for (const auto& call : calls()) {
      if (const auto found = described.find(call.corr_id); found != described.end()) {
        found->second.push_back("  call: " + call.phase + " attempt " + std::to_string(call.attempt) + " " + call.outcome + " in pid " +
                                std::to_string(call.pid));
      }
    }
    for (const auto& [corr_id, lines] : described) {
      std::cout << "duplicated task " << corr_id << ":\n";
      for (const auto& line : lines) std::cout << line << "\n";
    }
    std::cout << std::flush;
  }

  std::vector<CallLine> calls() const {
    std::vector<CallLine> lines;
    std::ifstream in(calls_path_);
    CallLine line;
    while (in >> line.phase >> line.corr_id >> line.attempt >> line.outcome >> line.pid) lines.push_back(line);
    return lines;
  }

  std::set<std::string> poison() {
    std::lock_guard lock(mutex_);
    return poison_;
  }

  std::string log_of(pid_t pid) {
    std::ifstream in(logs_.at(pid));
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // Milliseconds until no entry of the consumer of `pid` is pending in any phase. One redis-cli per
  // look (a script over every stream; double quotes only, since cli() wraps each argument in single
  // quotes): on a loaded machine each process start costs tens of milliseconds, and eight of them
  // per look were being counted as recovery time (up to 3.6 s measured for a 1.2 s takeover).
  std::int64_t time_until_orphans_reclaimed(pid_t pid, std::chrono::seconds timeout) {
    const auto started = SteadyClock::now();
    std::vector<std::string> look{"EVAL",
                                  "local n = 0 "
                                  "for i = 1, #KEYS do n = n + #redis.call(\"XPENDING\", KEYS[i], ARGV[i], \"-\", \"+\", 1, ARGV[#ARGV]) end "
                                  "return n",
                                  std::to_string(2 * phases.size())};
    std::vector<std::string> groups;
    for (const auto& phase : phases) {
      const std::string stream = "baton:{chaos}:chaos." + phase + ".in";
      look.push_back(stream);
      look.push_back(stream + ":redeliver:" + phase);
      groups.insert(groups.end(), {phase, phase});
    }
    look.insert(look.end(), groups.begin(), groups.end());
    look.push_back("chaos-" + std::to_string(pid));
    while (SteadyClock::now() - started < timeout) {
      const auto held = server_.cli(look);
      if (held.starts_with("(integer) 0") || held.starts_with("0")) break;
      std::this_thread::sleep_for(20ms);
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
  }

 private:
  void start_ledger() {
    ports::SubscribeOptions options;
    options.group = "ledger";
    options.concurrency = 2;
    ledger_ = bus_->subscribe(pipeline_->completed_topic(), [this](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
      std::lock_guard lock(mutex_);
      completions_[e.corr_id].insert(e.id);
      return {};
    }, options).value();
  }

  ChaosOptions options_;
  std::uint64_t seed_;
  std::mt19937_64 random_;
  app::LocalRedisServer server_;
  std::filesystem::path calls_path_;
  std::unique_ptr<ports::MessageBus> bus_;
  std::optional<orchestrator::Pipeline> pipeline_;
  std::unique_ptr<test::FaultProxy> proxy_;
  std::vector<pid_t> workers_;
  std::map<pid_t, std::filesystem::path> logs_;
  int spawned_ = 0;
  bool cured_ = false;
  std::thread submitter_;
  std::atomic<bool> submitted_{false};
  std::mutex mutex_;
  std::set<std::string> sent_, poison_;
  std::map<std::string, std::set<std::string>> completions_;
  ports::Subscription ledger_;
};

void expect_clean(Chaos& chaos, const Chaos::Outcome& outcome) {
  EXPECT_EQ(outcome.lost, 0u);
  EXPECT_EQ(outcome.duplicated, 0u);
  EXPECT_EQ(outcome.unexpected, 0u) << "completions of tasks nobody sent";
  // Deliveries whose outcome could not be recorded while the broker was away (duplicates of
  // finished work, among them) are reclaimed after reclaim_idle and acked as done: the pending
  // lists drain by themselves, within a bound.
  const auto left = chaos.unfinished();
  const auto started = SteadyClock::now();
  const bool drained = test::eventually([&] { return chaos.unfinished() == 0; }, 30s);
  EXPECT_TRUE(drained) << chaos.unfinished() << " entries left pending or unread in some phase:\n" << chaos.describe_unfinished();
  if (left > 0) {
    std::cout << "chaos: " << left << " entries were still pending at the end; drained after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count() << " ms" << std::endl;
  }
}

// With `appendfsync everysec` a killed redis-server can forget writes it had acknowledged: while
// a background fsync is still running, Redis postpones writing its AOF buffer (up to 2 s) and
// answers its clients meanwhile, and a kill loses that buffer. Submits it forgot are lost to the
// submitter, and a consumer that saw outputs it forgot sees them again, made anew. What Baton must
// still do: complete (or dead-letter) every task whose submit the server kept, and never leave two
// completions of one task in the server. Returns how many acknowledged submits the server forgot.
std::size_t expect_clean_of_what_the_server_kept(Chaos& chaos) {
  const auto sent = chaos.sent();
  const auto kept_submits = chaos.kept_envelopes("plan.in");
  const auto kept_completions = chaos.kept_envelopes("completed");
  const auto seen = chaos.completions();
  const auto letters = chaos.dead_letters();
  EXPECT_FALSE(kept_submits.empty()) << "the server holds no submit at all: is the listing broken?";
  std::size_t forgotten_submits = 0, lost = 0, duplicated = 0, forgotten_completions = 0, unexpected = 0;
  for (const auto& corr_id : sent) {
    if (!kept_submits.contains(corr_id)) {
      ++forgotten_submits;
      continue;
    }
    const auto completed = kept_completions.find(corr_id);
    if (completed == kept_completions.end() && !letters.contains(corr_id)) ++lost;
    if (completed != kept_completions.end() && completed->second.size() + letters.contains(corr_id) > 1) ++duplicated;
  }
  for (const auto& [corr_id, ids] : seen) {
    const auto completed = kept_completions.find(corr_id);
    for (const auto& id : ids) forgotten_completions += completed == kept_completions.end() || !completed->second.contains(id);
  }
  for (const auto& [corr_id, ids] : kept_completions) unexpected += !sent.contains(corr_id);
  std::cout << "chaos: the server kept " << kept_submits.size() << " of " << sent.size() << " acknowledged submits and forgot "
            << forgotten_completions << " completions the ledger had seen; of what it kept: lost " << lost << ", duplicated "
            << duplicated << std::endl;
  EXPECT_EQ(lost, 0u) << "tasks whose submit the server kept neither completed nor dead-lettered";
  EXPECT_EQ(duplicated, 0u) << "tasks with two completions in the server";
  EXPECT_EQ(unexpected, 0u) << "completions of tasks nobody sent";
  const bool drained = test::eventually([&] { return chaos.unfinished() == 0; }, 30s);
  EXPECT_TRUE(drained) << chaos.unfinished() << " entries left pending or unread in some phase:\n" << chaos.describe_unfinished();
  return forgotten_submits;
}

// Handler calls that completed the same phase of the same task more than once (a re-execution of
// work already done).
std::size_t repeated_successes(const std::vector<CallLine>& calls) {
  std::map<std::pair<std::string, std::string>, int> ok;
  std::size_t repeated = 0;
  for (const auto& call : calls) {
    if (call.outcome == "ok" && ++ok[{call.phase, call.corr_id}] == 2) ++repeated;
  }
  return repeated;
}

// 1. Broker kill: redis-server killed with SIGKILL three times at random moments and restarted on
// its AOF: every acknowledged submit reaches the end exactly once.
TEST(Chaos, BrokerKillLosesNothingAcknowledgedWithAppendfsyncAlways) {
  Chaos chaos({.name = "broker_kill", .tasks = scaled(20'000), .workers = 2, .concurrency = 8, .reclaim_ms = 2000});
  chaos.submit_all();
  std::int64_t worst_recovery = 0;
  for (int kill = 0; kill < 3; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds{std::uniform_int_distribution<int>(500, 2500)(chaos.random())});
    const auto before = chaos.completed();
    chaos.server().kill9();
    std::this_thread::sleep_for(300ms);
    const auto restarted = SteadyClock::now();
    chaos.server().restart();
    // Recovery: from the restart until completions move again.
    while (chaos.completed() == before && SteadyClock::now() - restarted < 30s) std::this_thread::sleep_for(10ms);
    worst_recovery = std::max<std::int64_t>(worst_recovery, std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - restarted).count());
  }
  chaos.wait_submitted();
  EXPECT_TRUE(chaos.wait_settled(240s).has_value()) << "not every task settled in time";
  expect_clean(chaos, chaos.tally(worst_recovery));
}

// 1b. The same with appendfsync everysec. A process crash of redis-server can lose acknowledged
// writes here too, when it comes while a background fsync is slow (see
// expect_clean_of_what_the_server_kept; docs/RELIABILITY.md): then tasks whose submit it forgot
// are lost, and a task whose completion it forgot is completed again. Of what the server kept,
// nothing is lost and nothing is completed twice.
TEST(Chaos, BrokerKillWithAppendfsyncEverysecLosesNothingTheServerKept) {
  Chaos chaos({.name = "broker_kill_everysec", .tasks = scaled(5'000), .workers = 2, .concurrency = 8, .reclaim_ms = 2000,
               .appendfsync = "everysec"});
  chaos.submit_all();
  std::this_thread::sleep_for(std::chrono::milliseconds{std::uniform_int_distribution<int>(300, 1500)(chaos.random())});
  chaos.server().kill9();
  std::this_thread::sleep_for(300ms);
  chaos.server().restart();
  chaos.wait_submitted();
  // The submits the server forgot are known once it is back and the submitter is done.
  std::set<std::string> forgotten = chaos.sent();
  for (const auto& [corr_id, ids] : chaos.kept_envelopes("plan.in")) forgotten.erase(corr_id);
  EXPECT_TRUE(chaos.wait_settled(180s, forgotten).has_value()) << "not every task the server kept settled in time";
  chaos.tally(0);
  EXPECT_EQ(expect_clean_of_what_the_server_kept(chaos), forgotten.size());
}

// 2. Worker kill: a random worker killed with SIGKILL every second or so, 10 times, each replaced
// by a new one: nothing lost, nothing completed twice, and what the dead one held is taken over
// within reclaim_idle plus a few reclaim intervals.
TEST(Chaos, WorkerKillsLoseNothingAndOrphansAreReclaimedInTime) {
  constexpr int reclaim_ms = 1000;
  Chaos chaos({.name = "worker_kill", .tasks = scaled(6'000), .workers = 3, .concurrency = 4, .handler_ms = 1, .reclaim_ms = reclaim_ms});
  chaos.submit_all();
  std::int64_t worst_recovery = 0;
  std::string each;
  for (int kill = 0; kill < 10; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds{std::uniform_int_distribution<int>(600, 1400)(chaos.random())});
    const auto index = std::uniform_int_distribution<std::size_t>(0, chaos.workers().size() - 1)(chaos.random());
    const pid_t victim = chaos.workers()[index];
    chaos.replace_worker(index, SIGKILL);
    const auto recovery = chaos.time_until_orphans_reclaimed(victim, 30s);
    each += " " + std::to_string(recovery);
    worst_recovery = std::max(worst_recovery, recovery);
  }
  std::cout << "chaos worker_kill: orphans reclaimed after (ms):" << each << std::endl;
  chaos.wait_submitted();
  EXPECT_TRUE(chaos.wait_settled(240s).has_value()) << "not every task settled in time";
  expect_clean(chaos, chaos.tally(worst_recovery));
  // reclaim_idle + reclaim interval (reclaim_idle / 5), with room for a busy 2-core machine.
  EXPECT_LE(worst_recovery, reclaim_ms + reclaim_ms / 5 + 1500) << "orphaned entries waited too long";
}

// 3. Slow handlers: each call takes three times the reclaim idle time, and none runs twice.
TEST(Chaos, SlowHandlersAreNotRunTwice) {
  Chaos chaos({.name = "slow_handlers", .tasks = scaled(16), .workers = 2, .concurrency = 4, .handler_ms = 1500, .reclaim_ms = 500});
  chaos.submit_all();
  chaos.wait_submitted();
  EXPECT_TRUE(chaos.wait_settled(180s).has_value()) << "not every task settled in time";
  expect_clean(chaos, chaos.tally(0));
  EXPECT_EQ(repeated_successes(chaos.calls()), 0u) << "a slow handler was run a second time";
}

// 4. Flaky handlers: 5 % of calls fail with a retryable error. All complete; for every phase of
// every task the ledger shows attempts 1..k, failures at 1..k-1 and success at k, each once.
TEST(Chaos, FlakyHandlersAllCompleteAndAttemptsMatchTheLedger) {
  Chaos chaos({.name = "flaky", .tasks = scaled(3'000), .workers = 2, .concurrency = 4, .fail_per_10000 = 500, .reclaim_ms = 2000});
  chaos.submit_all();
  chaos.wait_submitted();
  EXPECT_TRUE(chaos.wait_settled(240s).has_value()) << "not every task settled in time";
  const auto outcome = chaos.tally(0);
  expect_clean(chaos, outcome);
  EXPECT_EQ(outcome.dlq, 0u);
  std::map<std::pair<std::string, std::string>, std::vector<CallLine>> by_step;
  std::size_t failures = 0;
  for (const auto& call : chaos.calls()) {
    by_step[{call.phase, call.corr_id}].push_back(call);
    failures += call.outcome == "fail";
  }
  EXPECT_GT(failures, 0u) << "the flaky behaviour never triggered";
  for (auto& [step, calls] : by_step) {
    std::sort(calls.begin(), calls.end(), [](const auto& a, const auto& b) { return a.attempt < b.attempt; });
    for (std::size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(calls[i].attempt, static_cast<int>(i) + 1) << step.first << " " << step.second << ": attempts not 1..k";
      EXPECT_EQ(calls[i].outcome, i + 1 == calls.size() ? "ok" : "fail") << step.first << " " << step.second;
    }
  }
}

// 5. Poison: 1 % of tasks cannot be handled. The DLQ holds exactly that set, with the reason; after
// the cause is fixed, `baton dlq replay` brings every one of them to the end.
TEST(Chaos, PoisonLandsInTheDeadLettersAndReplayCompletesItAfterTheFix) {
  Chaos chaos({.name = "poison", .tasks = scaled(3'000), .workers = 2, .concurrency = 4, .reclaim_ms = 2000, .poison_share = 0.01});
  chaos.submit_all();
  chaos.wait_submitted();
  EXPECT_TRUE(chaos.wait_settled(240s).has_value()) << "not every task settled in time";
  const auto letters = chaos.dead_letters();
  const auto poison = chaos.poison();
  ASSERT_FALSE(poison.empty());
  std::set<std::string> dead;
  for (const auto& [corr_id, reason] : letters) {
    dead.insert(corr_id);
    EXPECT_NE(reason.find("permanent_failure: permanent failure: poison task"), std::string::npos) << reason;
  }
  EXPECT_EQ(dead, poison) << "the dead letters are not exactly the poison tasks";
  chaos.tally(0);

  // The fix: workers that no longer fail on poison, then the operator's replay.
  chaos.set_cured(true);
  for (std::size_t i = 0; i < chaos.workers().size(); ++i) chaos.replace_worker(i, SIGTERM);
  // Without the harness's own variables: baton refuses a BATON_* setting it does not know.
  const std::string command = "env -u BATON_CHAOS_SCALE -u BATON_CHAOS_SEED BATON_BUS=" + chaos.url() + " BATON_KV=" + chaos.url() +
                              " BATON_PIPELINE_SPACE=chaos " + BATON_EXECUTABLE + " dlq replay 2>&1";
  std::string output;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char chunk[512];
    while (std::fgets(chunk, sizeof chunk, pipe)) output += chunk;
    ::pclose(pipe);
  }
  EXPECT_NE(output.find(std::to_string(poison.size()) + " replayed"), std::string::npos) << output;
  ASSERT_TRUE(test::eventually([&] { return chaos.completed() == chaos.sent_count(); }, 60s)) << "replayed poison did not complete";
  const auto outcome = chaos.tally(0);
  EXPECT_EQ(outcome.dlq, 0u);
  EXPECT_EQ(outcome.lost, 0u);
  EXPECT_EQ(outcome.duplicated, 0u);
}

// 7. Graceful shutdown: SIGTERM to every worker in the middle of the load. They exit 0, and after
// new workers take over, every task completes once and no finished step is run again.
TEST(Chaos, SigtermDuringLoadLeavesNothingHalfDoneAndNothingRunsTwice) {
  Chaos chaos({.name = "graceful_shutdown", .tasks = scaled(4'000), .workers = 2, .concurrency = 4, .handler_ms = 2, .reclaim_ms = 60'000});
  chaos.submit_all();
  ASSERT_TRUE(test::eventually([&] { return chaos.completed() >= scaled(4'000) / 4; }, 120s));
  for (std::size_t i = 0; i < chaos.workers().size(); ++i) {
    const pid_t pid = chaos.workers()[i];
    const int status = chaos.end(pid, SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker " << pid << " did not stop cleanly";
  }
  const auto stopped = SteadyClock::now();
  chaos.respawn_all();
  chaos.wait_submitted();
  // reclaim_idle is a minute: finishing well before it shows the stopped workers handed back
  // what they held instead of leaving it to be reclaimed.
  const auto settled = chaos.wait_settled(50s);
  ASSERT_TRUE(settled.has_value());
  const auto recovery = std::chrono::duration_cast<std::chrono::milliseconds>(*settled - stopped).count();
  expect_clean(chaos, chaos.tally(recovery));
  EXPECT_EQ(repeated_successes(chaos.calls()), 0u) << "a step finished before the shutdown ran again";
}

// 8. The paused worker (fencing): SIGSTOP past reclaim_idle, another worker takes its entries over
// and finishes them, then SIGCONT: every late outcome of the paused worker (each phase hands off,
// so each is a hand-off) is refused (counted, more than 0) and no task completes twice.
TEST(Chaos, APausedWorkersLateOutcomesAreRefused) {
  Chaos chaos({.name = "paused_worker", .tasks = scaled(300), .workers = 2, .concurrency = 4, .handler_ms = 40, .reclaim_ms = 500});
  chaos.submit_all();
  ASSERT_TRUE(test::eventually([&] { return chaos.completed() >= 10; }, 60s));
  const pid_t paused = chaos.workers()[0];
  ::kill(paused, SIGSTOP);
  std::this_thread::sleep_for(2500ms);
  ::kill(paused, SIGCONT);
  chaos.wait_submitted();
  EXPECT_TRUE(chaos.wait_settled(120s).has_value()) << "not every task settled in time";
  const auto outcome = chaos.tally(0);
  expect_clean(chaos, outcome);
  std::this_thread::sleep_for(500ms);
  const auto log = chaos.log_of(paused);
  std::size_t refused = 0;
  for (std::size_t at = log.find("outcome refused"); at != std::string::npos; at = log.find("outcome refused", at + 1)) ++refused;
  std::cout << "chaos paused_worker: late outcomes refused " << refused << std::endl;
  EXPECT_GT(refused, 0u) << "the paused worker's late outcomes were not refused (or it held nothing)";
}

// 6. Network faults between the workers and Redis, through a fault-injecting TCP proxy: added
// latency, a stall (bytes held back), and a cut (every connection closed, new ones refused for a
// while). The system stalls, then recovers by itself with nothing lost or doubled.
TEST(Chaos, NetworkLatencyStallsAndCutsAreRecoveredFrom) {
  Chaos chaos({.name = "network_faults", .tasks = scaled(3'000), .workers = 2, .concurrency = 4, .reclaim_ms = 2000,
               .through_proxy = true});
  chaos.submit_all();
  std::this_thread::sleep_for(500ms);
  chaos.proxy().set_latency(5ms);  // every chunk each way
  std::this_thread::sleep_for(1500ms);
  chaos.proxy().set_latency(0ms);
  chaos.proxy().stall(true);  // connections stay open, nothing moves
  std::this_thread::sleep_for(1500ms);
  chaos.proxy().stall(false);
  std::this_thread::sleep_for(500ms);
  chaos.proxy().cut(1500ms);  // every connection reset, reconnects refused for 1.5 s
  const auto cut_at = SteadyClock::now();
  std::this_thread::sleep_for(1500ms);
  // Recovery: from the cut until the workers, reconnected, have moved 50 more tasks to the end
  // (what they had handed off before the cut may still be arriving; 50 more is new work).
  const auto before = chaos.completed();
  while (chaos.completed() < std::min(before + 50, scaled(3'000)) && SteadyClock::now() - cut_at < 60s) std::this_thread::sleep_for(10ms);
  const auto recovery = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - cut_at).count();
  chaos.wait_submitted();
  EXPECT_TRUE(chaos.wait_settled(240s).has_value()) << "not every task settled in time";
  expect_clean(chaos, chaos.tally(recovery));
  EXPECT_GT(chaos.proxy().connections_cut(), 0u) << "the cut cut nothing";
}

// 9. Retention: with the workers trimming acked entries at once (MINID of what every group has
// acked), nothing is lost under load and the streams really are trimmed. The same load with a naive
// `XTRIM MAXLEN` from outside loses tasks, and the ledger sees it: the test can fail.
TEST(Chaos, TrimmingByWhatEveryGroupAckedLosesNothingWhereMaxlenDoes) {
  {
    Chaos chaos({.name = "retention_minid", .tasks = scaled(4'000), .workers = 2, .concurrency = 4, .handler_ms = 1, .reclaim_ms = 1000,
                 .retain_ms = 0});
    chaos.submit_all();
    chaos.wait_submitted();
    EXPECT_TRUE(chaos.wait_settled(240s).has_value()) << "not every task settled in time";
    expect_clean(chaos, chaos.tally(0));
    const auto length = std::stoul(chaos.server().cli({"XLEN", "baton:{chaos}:chaos.plan.in"}));
    EXPECT_LT(length, scaled(4'000)) << "the workers' retention trimmed nothing";
  }
  {
    Chaos naive({.name = "retention_maxlen", .tasks = scaled(4'000), .workers = 1, .concurrency = 1, .handler_ms = 2, .reclaim_ms = 1000});
    std::atomic<bool> trimming{true};
    std::thread trimmer([&] {
      while (trimming) {
        naive.server().cli({"XTRIM", "baton:{chaos}:chaos.plan.in", "MAXLEN", "50"});
        std::this_thread::sleep_for(20ms);
      }
    });
    naive.submit_all();
    naive.wait_submitted();
    naive.wait_settled(10s);
    trimming = false;
    trimmer.join();
    const auto outcome = naive.tally(0);
    EXPECT_GT(outcome.lost + outcome.dlq, 0u) << "a blind MAXLEN under load should have dropped tasks";
  }
}

}  // namespace
}  // namespace baton::chaos
