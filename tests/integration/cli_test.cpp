// The baton command against a real redis-server, run as a user would run it.

#include <gtest/gtest.h>

#include <filesystem>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <sstream>
#include <fstream>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/adapters/redis/redis_kv.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"
#include "baton/orchestrator/pipeline.hpp"
#include "baton/app/process_lifetime.hpp"
#include "support/http_get.hpp"
#include "support/pass_through_phase.hpp"
#include "support/proc_stat.hpp"
#include "support/recorder.hpp"
#include "support/redis_server.hpp"

#ifndef BATON_EXECUTABLE
#error "BATON_EXECUTABLE must name the baton executable"
#endif

namespace {

struct Run {
  int exit_code = -1;
  std::string output;
};

// `baton <arguments>` against `server`, its stdout (and, when asked, its stderr) as `output`.
Run baton(const baton::test::RedisServer& server, const std::string& arguments, const std::string& environment = "",
          bool with_stderr = false) {
  const std::string command = "BATON_BUS='" + server.url() + "' BATON_KV='" + server.url() + "' " + environment + " " +
                              BATON_EXECUTABLE + " " + arguments + (with_stderr ? " 2>&1" : " 2>/dev/null");
  Run run;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::array<char, 4096> chunk{};
    while (const auto got = std::fread(chunk.data(), 1, chunk.size(), pipe)) run.output.append(chunk.data(), got);
    const int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return run;
}

// A task no phase could plan is refused at the door, with what was wrong, and nothing is published.
TEST(Cli, SubmitRefusesATaskWithNoText) {
  baton::test::RedisServer server({.append_only = false});
  const auto empty = baton(server, "submit ''", "", true);
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  EXPECT_NE(empty.output.find("TEXT: the task is empty"), std::string::npos) << empty.output;
  const auto blank = baton(server, "submit '  '", "", true);
  EXPECT_EQ(blank.exit_code, 2) << blank.output;
  EXPECT_NE(blank.output.find("TEXT: the task is only whitespace"), std::string::npos) << blank.output;
  EXPECT_EQ(server.cli({"EXISTS", "baton:{phase}:phase.plan.in"}), "0\n") << "a refused task was published";
}

// A number option out of its range names the option, what it wants and what it got, in one short
// line (CLI11's own checks printed their range up to DBL_MAX).
TEST(Cli, ANumberOptionOutOfItsRangeSaysWhatItWanted) {
  baton::test::RedisServer server({.append_only = false});
  for (const auto& [arguments, said] :
       {std::pair{"demo --timeout -1", "--timeout: must be a number above 0, got -1"},
        std::pair{"demo --timeout soon", "--timeout: must be a number above 0, got soon"},
        std::pair{"demo --poison-every -1", "--poison-every: must be 0 or a number above it, got -1"},
        std::pair{"dlq replay --rate -1", "--rate: must be 0 or a number above it, got -1"}}) {
    const auto refused = baton(server, arguments, "", true);
    EXPECT_EQ(refused.exit_code, 2) << arguments << ": " << refused.output;
    EXPECT_EQ(refused.output.substr(0, refused.output.find('\n')), said) << arguments;
  }
}

TEST(Cli, SubmitPrintsTheCorrelationIdOfAStoredTask) {
  baton::test::RedisServer server({.append_only = false});
  const auto submitted = baton(server, "submit --tenant acme 'write a parser'");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string corr_id = submitted.output.substr(0, submitted.output.find('\n'));
  ASSERT_EQ(corr_id.size(), 36u) << submitted.output;
  const auto stored = server.cli({"XRANGE", "baton:{phase}:phase.plan.in", "-", "+"});
  EXPECT_NE(stored.find(corr_id), std::string::npos) << stored;
  EXPECT_NE(stored.find("write a parser"), std::string::npos) << stored;

  const auto json = baton(server, "submit --json 'second task'");
  ASSERT_EQ(json.exit_code, 0);
  const auto object = boost::json::parse(json.output).as_object();
  EXPECT_EQ(object.at("topic"), "phase.plan.in");
  EXPECT_EQ(object.at("tenant_id"), "default");
}

TEST(Cli, SubmitRefusesABadTenant) {
  baton::test::RedisServer server({.append_only = false});
  EXPECT_EQ(baton(server, "submit --tenant 'a:b' task").exit_code, 2);
}

TEST(Cli, DeadLettersAreListedAndShown) {
  baton::test::RedisServer server({.append_only = false});
  EXPECT_EQ(baton(server, "dlq list --json").output, "[]\n");
  const auto id = server.cli({"XADD", "baton:{phase}:phase.code.in.dlq", "*", "original", "{}", "reason", "permanent_failure",
                              "error", "the plan names no files", "attempts", "1", "failed_at", "2026-11-27T20:00:00.000Z",
                              "topic", "phase.code.in", "group", "code", "consumer", "c1", "source_id", "1-0"});
  const std::string letter_id = id.substr(0, id.find('\n'));
  const auto listed = baton(server, "dlq list --json");
  ASSERT_EQ(listed.exit_code, 0);
  const auto letters = boost::json::parse(listed.output).as_array();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].at("phase"), "code");
  EXPECT_EQ(letters[0].at("reason"), "permanent_failure");
  const auto shown = baton(server, "dlq show " + letter_id);
  ASSERT_EQ(shown.exit_code, 0);
  EXPECT_NE(shown.output.find("the plan names no files"), std::string::npos);
  EXPECT_EQ(baton(server, "dlq show 0-1").exit_code, 1);
  EXPECT_EQ(baton(server, "dlq list --phase nope").exit_code, 2);
}

TEST(Cli, StatusAndADeadLetterReplayRoundTrip) {
  baton::test::RedisServer server({.append_only = false});
  using namespace baton;
  adapters::redis::RedisBusOptions options;
  options.redis = adapters::redis::parse_redis_url(server.url()).value();
  auto bus = adapters::redis::make_redis_bus(options);
  std::atomic<bool> fixed{false};
  test::Recorder handled;
  ports::SubscribeOptions plan;
  plan.group = "plan";
  auto worker = bus->subscribe("phase.plan.in", [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    if (!fixed) return permanent_failure("the model was misconfigured");
    handled.add(e);
    return {};
  }, plan);
  ASSERT_TRUE(worker);

  const auto submitted = baton(server, "submit 'a task that fails'");
  ASSERT_EQ(submitted.exit_code, 0);
  const std::string corr_id = submitted.output.substr(0, 36);
  ASSERT_TRUE(test::eventually([&] { return baton(server, "dlq list --json").output.find(corr_id) != std::string::npos; }));

  const auto status = boost::json::parse(baton(server, "status --json").output).as_object();
  const auto& first = status.at("phases").as_array().at(0).as_object();
  EXPECT_EQ(first.at("phase"), "plan");
  EXPECT_EQ(first.at("dead_letters"), 1);
  EXPECT_EQ(first.at("groups").as_array().at(0).at("name"), "plan");

  const auto dry = baton(server, "dlq replay --dry-run");
  EXPECT_NE(dry.output.find("dry run: 1 replayed"), std::string::npos) << dry.output;
  EXPECT_NE(baton(server, "dlq list --json").output, "[]\n") << "a dry run changed something";

  fixed = true;
  const auto replay = baton(server, "dlq replay --phase plan --rate 100");
  ASSERT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_NE(replay.output.find("1 replayed, 0 skipped"), std::string::npos) << replay.output;
  ASSERT_TRUE(handled.wait_for_count(1));
  const auto again = handled.seen().front();
  EXPECT_EQ(again.corr_id, corr_id);
  EXPECT_EQ(again.attempts, 1u);
  EXPECT_FALSE(again.headers.at("replayed_by").empty());
  EXPECT_EQ(baton(server, "dlq list --json").output, "[]\n");
  // Who replayed what and when is kept next to the tenant's data.
  EXPECT_NE(server.cli({"HGET", "baton:t:default:replay:" + again.id, "v"}).find("\"by\""), std::string::npos);
}

TEST(Cli, TraceFollowsATaskThroughThePhasesAndSaysWhereItWaits) {
  baton::test::RedisServer server({.append_only = false});
  using namespace baton;
  const std::string two_phases = "BATON_PIPELINE_PHASES=plan,code";
  const auto submitted = baton(server, "submit --tenant acme 'trace me'", two_phases);
  ASSERT_EQ(submitted.exit_code, 0);
  const std::string corr_id = submitted.output.substr(0, 36);
  const auto waiting = boost::json::parse(baton(server, "trace --tenant acme --json " + corr_id, two_phases).output);
  EXPECT_EQ(waiting.at("now"), "waiting for phase plan") << "a task not started yet shows where it waits";

  adapters::redis::RedisBusOptions options;
  options.redis = adapters::redis::parse_redis_url(server.url()).value();
  auto bus = adapters::redis::make_redis_bus(options);
  auto kv = adapters::redis::make_redis_kv(options.redis);
  const auto pipeline = orchestrator::Pipeline::make({"plan", "code"}).value();
  std::vector<std::unique_ptr<test::PassThroughPhase>> phases;
  for (const auto& name : pipeline.phases()) {
    phases.push_back(std::make_unique<test::PassThroughPhase>(orchestrator::Ports{bus.get(), kv.get()},
                                              orchestrator::phase_options(pipeline, name).value()));
    ASSERT_TRUE(phases.back()->start());
  }
  boost::json::value traced;
  ASSERT_TRUE(test::eventually([&] {
    traced = boost::json::parse(baton(server, "trace --tenant acme --json " + corr_id, two_phases).output);
    return traced.at("now") == "completed";
  }));
  const auto& events = traced.at("events").as_array();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].at("event"), "submitted");
  EXPECT_EQ(events[1].at("phase"), "plan");
  EXPECT_EQ(events[2].at("phase"), "code");
  const auto text = baton(server, "trace --tenant acme " + corr_id, two_phases).output;
  EXPECT_NE(text.find("now: completed"), std::string::npos) << text;
  EXPECT_EQ(baton(server, "trace 00000000-0000-7000-8000-000000000000").exit_code, 1);
}

// A `baton run` child process with the given environment (its stderr dropped, or read with its
// stdout when asked), ended with SIGTERM by stop() or at the end of the scope.
class Worker {
 public:
  Worker(std::vector<std::string> environment, std::vector<std::string> arguments, bool with_stderr = false) {
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    std::vector<char*> child_environment;
    for (auto& variable : environment) child_environment.push_back(variable.data());
    child_environment.push_back(nullptr);
    arguments.insert(arguments.begin(), BATON_EXECUTABLE);
    std::vector<char*> child_arguments;
    for (auto& argument : arguments) child_arguments.push_back(argument.data());
    child_arguments.push_back(nullptr);
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    const pid_t test_process = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      baton::app::die_with_parent(test_process);
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      if (with_stderr) {
        ::dup2(out[1], STDERR_FILENO);
      } else {
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, STDERR_FILENO);
      }
      ::execve(BATON_EXECUTABLE, child_arguments.data(), child_environment.data());
      ::_exit(127);
    }
    ::close(out[1]);
    output_ = ::fdopen(out[0], "r");
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    if (pid_ > 0) stop();
    if (output_) std::fclose(output_);
  }

  // The next line of its stdout, with its newline; "" once it has ended.
  std::string next_line() {
    char line[4096];
    return std::fgets(line, sizeof line, output_) ? std::string(line) : std::string();
  }
  // The port of "listening on 127.0.0.1:<port>" among its first lines; 0 if it never says.
  std::uint16_t port() {
    for (std::string line = next_line(); !line.empty(); line = next_line()) {
      if (line.rfind("listening on 127.0.0.1:", 0) == 0) return static_cast<std::uint16_t>(std::stoi(line.substr(23)));
    }
    return 0;
  }
  // SIGTERM, then its exit code; -1 when it did not exit by itself (or was stopped before: a pid
  // of -1 would signal every process of the user).
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* output_ = nullptr;
};

TEST(Cli, RunServesTheReferencePhasesUntilSigtermAndStopsCleanly) {
  baton::test::RedisServer server({.append_only = false});
  const auto storage = server.directory() / "storage";
  const std::string environment = "BATON_STORAGE_ROOT=" + storage.string();
  Worker worker({"BATON_BUS=" + server.url(), "BATON_KV=" + server.url(), environment}, {"run", "--http", "127.0.0.1:0"});
  const std::uint16_t port = worker.port();
  ASSERT_NE(port, 0) << "the worker did not say where it listens";
  EXPECT_EQ(worker.next_line(), "running phases: plan code certify deploy\n");
  EXPECT_NE(baton::test::http_request(port, "/readyz").find("200 OK"), std::string::npos);

  const auto submitted = baton(server, "submit 'write a greeting script'", environment);
  ASSERT_EQ(submitted.exit_code, 0);
  const std::string corr_id = submitted.output.substr(0, 36);
  EXPECT_TRUE(baton::test::eventually([&] {
    return baton(server, "trace " + corr_id, environment).output.find("now: completed") != std::string::npos;
  })) << "the running workers did not carry the task through";
  const auto metrics = baton::test::http_request(port, "/metrics");
  EXPECT_NE(metrics.find("baton_handled_total{phase=\"plan\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("baton_handled_total{phase=\"deploy\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("baton_ai_requests_total{phase=\"plan\"} 1"), std::string::npos) << metrics;
  EXPECT_TRUE(std::filesystem::exists(storage / "releases" / corr_id / "README.md")) << "the release was not published";
  EXPECT_NE(metrics.find("baton_lag{phase=\"plan\"} 0"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("baton_stats_unreadable{phase=\"deploy\"} 0"), std::string::npos) << metrics;
  // Figures Redis refuses to give show as unreadable, not as an empty phase.
  ASSERT_EQ(server.cli({"ACL", "SETUSER", "default", "-xlen"}), "OK\n");
  const auto refused = baton::test::http_request(port, "/metrics");
  EXPECT_NE(refused.find("baton_stats_unreadable{phase=\"plan\"} 1"), std::string::npos) << refused;
  EXPECT_EQ(refused.find("baton_lag{phase=\"plan\"}"), std::string::npos) << refused;
  ASSERT_EQ(server.cli({"ACL", "SETUSER", "default", "+xlen"}), "OK\n");

  EXPECT_EQ(worker.stop(), 0) << "the worker did not exit by itself with 0";
  std::string rest;
  for (std::string line = worker.next_line(); !line.empty(); line = worker.next_line()) rest += line;
  EXPECT_NE(rest.find("stopped"), std::string::npos) << rest;
}

// Per-tenant Redis ACLs (docs/REDIS-KEYS.md): a user whose key patterns cover one partition's
// space (`{acme-0}`) and one tenant's data (`t:acme:`) runs that partition's whole pipeline, and
// reaches no other partition's streams and no other tenant's data.
TEST(Cli, ATenantsRedisUserFencedToItsKeysRunsItsPartitionAndReachesNoOther) {
  baton::test::RedisServer server({.append_only = false});
  ASSERT_EQ(server.cli({"ACL", "SETUSER", "acme", "on", ">acme-pw", "resetkeys", "~baton:{acme-0}:*", "~baton:t:acme:*", "resetchannels",
                        "+@all", "-@dangerous"}),
            "OK\n");
  const auto url = "redis://acme:acme-pw@127.0.0.1:" + std::to_string(server.port());
  const auto storage = server.directory() / "storage";
  const std::string as_acme = "BATON_BUS='" + url + "' BATON_KV='" + url + "' BATON_STORAGE_ROOT=" + storage.string();
  Worker worker({"BATON_BUS=" + url, "BATON_KV=" + url, "BATON_PIPELINE_SPACE=acme-0", "BATON_STORAGE_ROOT=" + storage.string()},
                {"run"});
  ASSERT_EQ(worker.next_line(), "running phases: plan code certify deploy\n") << "the fenced user could not start the phases";

  const auto submitted = baton(server, "submit --tenant acme 'write a greeting script'", as_acme + " BATON_PIPELINE_SPACE=acme-0");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string corr_id = submitted.output.substr(0, 36);
  EXPECT_TRUE(baton::test::eventually([&] {
    return baton(server, "trace --tenant acme " + corr_id, as_acme + " BATON_PIPELINE_SPACE=acme-0").output.find("now: completed") !=
           std::string::npos;
  })) << "the fenced user's workers did not carry the task through";
  EXPECT_TRUE(std::filesystem::exists(storage / "releases" / corr_id / "README.md")) << "the release was not published";
  EXPECT_EQ(baton(server, "status", as_acme + " BATON_PIPELINE_SPACE=acme-0").exit_code, 0);

  // Another partition, of the same tenant or another: no submit, no figures (not zeros).
  EXPECT_NE(baton(server, "submit --tenant acme 'elsewhere'", as_acme + " BATON_PIPELINE_SPACE=acme-1").exit_code, 0);
  EXPECT_NE(baton(server, "status", as_acme + " BATON_PIPELINE_SPACE=acme-1").exit_code, 0);
  EXPECT_NE(baton(server, "status", as_acme + " BATON_PIPELINE_SPACE=acme-01").exit_code, 0) << "a pattern that matches more than its space";
  // Another tenant's data, also where its name begins with this one's.
  EXPECT_NE(baton(server, "trace --tenant globex " + corr_id, as_acme + " BATON_PIPELINE_SPACE=acme-0").exit_code, 0);
  EXPECT_NE(baton(server, "trace --tenant acme-corp " + corr_id, as_acme + " BATON_PIPELINE_SPACE=acme-0").exit_code, 0);
  EXPECT_EQ(server.cli({"EXISTS", "baton:{acme-1}:acme-1.plan.in"}), "0\n");
  // Another tenant's task put into this partition is refused at its first write and dead-lettered.
  const auto other = baton(server, "submit --tenant globex 'not ours'", as_acme + " BATON_PIPELINE_SPACE=acme-0");
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_TRUE(baton::test::eventually([&] {
    return baton(server, "dlq list", as_acme + " BATON_PIPELINE_SPACE=acme-0").output.find("permanent_failure  attempts=1  permission denied") !=
           std::string::npos;
  })) << baton(server, "dlq list", as_acme + " BATON_PIPELINE_SPACE=acme-0").output;
  EXPECT_EQ(server.cli({"EXISTS", "baton:t:globex:trace:" + other.output.substr(0, 36)}), "0\n");
  // Replaying it is allowed (the space's keys); its replay record, under the other tenant, is not,
  // and that is said.
  const auto replayed = baton(server, "dlq replay --phase plan", as_acme + " BATON_PIPELINE_SPACE=acme-0", true);
  EXPECT_EQ(replayed.exit_code, 0) << replayed.output;
  EXPECT_NE(replayed.output.find("1 replayed, 0 skipped"), std::string::npos) << replayed.output;
  EXPECT_NE(replayed.output.find("but its replay record was not kept: permission denied"), std::string::npos) << replayed.output;
  EXPECT_EQ(worker.stop(), 0);
}

// The reference pipeline on a one-node Redis Cluster (support/redis_server.hpp): every step of
// the phases, the hand-offs and the KV work they do stays within one slot.
TEST(Cli, TheReferencePipelineRunsOnAOneNodeRedisCluster) {
  baton::test::RedisServer server(baton::test::one_node_cluster_options());
  const auto failed = baton::test::serve_every_slot(server);
  ASSERT_FALSE(failed) << *failed;
  const auto storage = server.directory() / "storage";
  const std::string environment = "BATON_STORAGE_ROOT=" + storage.string();
  Worker worker({"BATON_BUS=" + server.url(), "BATON_KV=" + server.url(), environment}, {"run"});
  ASSERT_EQ(worker.next_line(), "running phases: plan code certify deploy\n");
  std::vector<std::string> corr_ids;
  for (int n = 0; n < 3; ++n) {
    const auto submitted = baton(server, "submit 'task " + std::to_string(n) + "'", environment);
    ASSERT_EQ(submitted.exit_code, 0);
    corr_ids.push_back(submitted.output.substr(0, 36));
  }
  for (const auto& corr_id : corr_ids) {
    EXPECT_TRUE(baton::test::eventually([&] {
      return baton(server, "trace " + corr_id, environment).output.find("now: completed") != std::string::npos;
    })) << baton(server, "trace " + corr_id, environment).output;
  }
  EXPECT_EQ(baton(server, "status", environment).exit_code, 0);
  EXPECT_EQ(worker.stop(), 0);
  EXPECT_EQ(server.cli({"INFO", "errorstats"}).find("CROSSSLOT"), std::string::npos) << server.cli({"INFO", "errorstats"});
}

// `baton run` sweeps its storage for what writes cut short by a crash left there: at start, and
// then every storage.leftovers_after_ms, each leftover once it has not changed for that long.
TEST(Cli, RunSweepsLeftoversOfInterruptedWritesFromItsStorage) {
  using namespace std::chrono_literals;
  baton::test::RedisServer server({.append_only = false});
  const auto storage = server.directory() / "storage";
  std::filesystem::create_directories(storage / "releases" / "t" / ".c1.tmp-123" / "bin");
  std::ofstream(storage / "releases" / "t" / ".c1.tmp-123" / "bin" / "run.sh") << "half";
  std::filesystem::create_directories(storage / "workspaces" / "t" / "c2");
  std::ofstream(storage / "workspaces" / "t" / "c2" / "main.cpp") << "a blob";
  std::ofstream(storage / "workspaces" / "t" / "c2" / ".main.cpp.tmp-456") << "half";
  const auto two_hours_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(2);
  std::filesystem::last_write_time(storage / "releases" / "t" / ".c1.tmp-123", two_hours_ago);
  std::filesystem::last_write_time(storage / "workspaces" / "t" / "c2" / "main.cpp", two_hours_ago);
  Worker worker({"BATON_BUS=" + server.url(), "BATON_KV=" + server.url(), "BATON_STORAGE_ROOT=" + storage.string(),
                 "BATON_STORAGE_LEFTOVERS_AFTER_MS=1000"},
                {"run"});
  ASSERT_EQ(worker.next_line(), "running phases: plan code certify deploy\n");
  EXPECT_TRUE(baton::test::eventually([&] { return !std::filesystem::exists(storage / "releases" / "t" / ".c1.tmp-123"); }, 10s))
      << "the old leftover stays";
  EXPECT_TRUE(baton::test::eventually([&] { return !std::filesystem::exists(storage / "workspaces" / "t" / "c2" / ".main.cpp.tmp-456"); }, 10s))
      << "the new one stays once it is older than a second";
  EXPECT_TRUE(std::filesystem::exists(storage / "workspaces" / "t" / "c2" / "main.cpp")) << "a blob is never a leftover";
  EXPECT_EQ(worker.stop(), 0);
}

// The children of `parent` named `name` (from /proc: the comm field and the parent pid of each).
std::vector<pid_t> children_named(pid_t parent, const std::string& name) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto pid_text = entry.path().filename().string();
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || line.substr(open + 1, close - open - 1) != name) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && state != "Z") found.push_back(static_cast<pid_t>(std::stoi(pid_text)));
  }
  return found;
}

// Ctrl-C on a long `baton bench` ends it at once (exit 130) and takes its private redis-server and
// scratch folders with it, where the blocked stop signals used to make it run to the end.
TEST(Cli, AnInterruptedBenchEndsAtOnceAndLeavesNothingBehind) {
  using namespace std::chrono_literals;
  const pid_t test_process = ::getpid();
  const pid_t bench = ::fork();
  ASSERT_GE(bench, 0);
  if (bench == 0) {
    baton::app::die_with_parent(test_process);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execl(BATON_EXECUTABLE, BATON_EXECUTABLE, "bench", "--messages", "1000000", "--rate", "10000", "--json",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // The private server and its folder, once it serves: redis-server moves into its `--dir` while it
  // starts (and then rewrites its command line), and says when it is ready in its log there.
  pid_t server = 0;
  std::filesystem::path server_folder;
  const auto server_found = [&] {
    for (const pid_t child : children_named(bench, "redis-server")) {
      std::error_code gone;
      const auto folder = std::filesystem::read_symlink("/proc/" + std::to_string(child) + "/cwd", gone);
      std::ifstream log(folder / "redis.log");
      const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      if (!gone && text.find("Ready to accept connections") != std::string::npos) {
        server = child;
        server_folder = folder;
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(baton::test::eventually(server_found, 30s));

  const auto interrupted = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(bench, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(bench, &status, 0), bench);
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted, 10s);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_TRUE(baton::test::eventually([&] { return !baton::test::running(server); }, 10s)) << "redis-server outlived the bench";
  EXPECT_FALSE(std::filesystem::exists(server_folder)) << server_folder;
}

// `baton bench --bus URL` on a server of the user's: its streams go when it ends, and what stays
// expires (dedup marks within the bench's timeout and ten minutes in mode bus; the phases' saved
// answers and marks within a day in mode pipeline), nothing kept for good.
TEST(Cli, ABenchOnAServerOfTheUsersLeavesNothingWithoutAnExpiry) {
  baton::test::RedisServer server({.append_only = false});
  ASSERT_EQ(server.cli({"SET", "users-own-key", "kept"}), "OK\n");
  const auto bench = "bench --bus '" + server.url() + "' --json --messages ";
  ASSERT_EQ(baton(server, bench + "2000").exit_code, 0);
  ASSERT_EQ(baton(server, bench + "40 --mode pipeline", "BATON_STORAGE_ROOT=" + (server.directory() / "storage").string()).exit_code, 0);

  std::istringstream keys(server.cli({"KEYS", "*"}));  // a test may list: the bench itself never does
  std::size_t marks = 0, answers = 0;
  for (std::string key; std::getline(keys, key);) {
    if (key == "users-own-key") continue;
    const auto ttl_ms = std::stoll(server.cli({"PTTL", key}));
    EXPECT_GT(ttl_ms, 0) << key << " is kept for good";
    const bool bus_mode_mark = key.find(".load:mark:bench:") != std::string::npos;
    if (bus_mode_mark) {
      EXPECT_LE(ttl_ms, 20 * 60 * 1000) << key;
    }
    marks += key.find(":mark:") != std::string::npos;
    answers += key.find("-answer:") != std::string::npos;
    EXPECT_TRUE(key.find(":mark:") != std::string::npos || key.find("-answer:") != std::string::npos) << "left behind: " << key;
  }
  EXPECT_GT(marks, 0u) << "no marks at all: did the runs use this server?";
  EXPECT_GT(answers, 0u);
  EXPECT_EQ(server.cli({"GET", "users-own-key"}), "kept\n");
}

// `--scratch DIR`: the pipeline's files go to a folder of the run's own under DIR, the JSON says
// where and on what filesystem, and the folder goes when the run ends.
TEST(Cli, ABenchPutsItsFilesUnderTheScratchFolderItIsGivenAndTakesThemAway) {
  baton::test::RedisServer server({.append_only = false});
  const auto scratch = server.directory() / "scratch";
  std::filesystem::create_directories(scratch);
  const auto ran = baton(server, "bench --bus memory:// --mode pipeline --messages 20 --json --scratch '" + scratch.string() + "'");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto last_line = ran.output.substr(ran.output.rfind('\n', ran.output.size() - 2) + 1);
  const auto report = boost::json::parse(last_line).as_object();
  EXPECT_EQ(report.at("scratch").as_string(), scratch.string());
  EXPECT_FALSE(report.at("scratch_filesystem").as_string().empty());
  EXPECT_EQ(report.at("lost").as_int64(), 0);
  EXPECT_TRUE(std::filesystem::is_empty(scratch)) << "the run's folder was left under the scratch folder";
}

// Mode handoff: four phases that hand their input on, every task through all of them once.
TEST(Cli, ABenchOfHandOffsAloneCarriesEveryTaskThroughEveryPhase) {
  baton::test::RedisServer server({.append_only = false});
  const auto ran = baton(server, "bench --bus '" + server.url() + "' --mode handoff --messages 200 --warm-up 0 --json");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto last_line = ran.output.substr(ran.output.rfind('\n', ran.output.size() - 2) + 1);
  const auto report = boost::json::parse(last_line).as_object();
  EXPECT_EQ(report.at("mode").as_string(), "handoff");
  EXPECT_EQ(report.at("lost").as_int64(), 0);
  EXPECT_EQ(report.at("duplicates").as_int64(), 0);
  EXPECT_GT(report.at("throughput_msgs_per_s").as_double(), 0.0);
  // The phases' trace events, written behind the hand-offs, are waited for within the run's time.
  ASSERT_TRUE(report.at("trace_drain_ms").is_double()) << last_line;
  EXPECT_GE(report.at("trace_drain_ms").as_double(), 0.0);
  // A task is counted once it reaches the completed topic, which only the last phase hands to; and
  // the server added its four hand-offs to the 200 submits (and the baselines' 600 XADDs).
  const auto stats = server.cli({"INFO", "commandstats"});
  const std::string field = "cmdstat_xadd:calls=";
  ASSERT_NE(stats.find(field), std::string::npos) << stats;
  EXPECT_GE(std::stoi(stats.substr(stats.find(field) + field.size())), 200 * 5) << stats;
}

// The rows of a --samples file: its header, then one row of fields per line.
std::pair<std::string, std::vector<std::vector<std::string>>> read_samples(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string header;
  std::getline(in, header);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (std::size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1) fields.push_back(line.substr(start, comma - start));
    fields.push_back(line.substr(start));
    rows.push_back(std::move(fields));
  }
  return {header, rows};
}

// `--samples FILE`: a row per measured message (not the warm-up's), in publish order, with the
// publish time from the start of the measured run and each latency the run measured.
TEST(Cli, ABenchWritesEveryMeasuredMessagesTimingsToItsSamplesFile) {
  baton::test::RedisServer server({.append_only = false});
  const auto file = server.directory() / "samples.csv";
  const auto ran = baton(server, "bench --bus '" + server.url() + "' --messages 500 --warm-up 50 --rate 5000 --json --samples '" + file.string() + "'");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto [header, rows] = read_samples(file);
  EXPECT_EQ(header, "index,published_us,received_us,handler_us,ack_us");
  ASSERT_EQ(rows.size(), 500u);
  std::int64_t previous_published = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    ASSERT_EQ(row.size(), 5u) << "row " << i;
    EXPECT_EQ(row[0], std::to_string(50 + i));
    const auto published = std::stoll(row[1]);
    const auto received = std::stoll(row[2]);
    const auto handler = std::stoll(row[3]);
    const auto acked = std::stoll(row[4]);
    EXPECT_GE(published, previous_published) << "row " << i << ": one producer publishes in order";
    EXPECT_GE(received, 0) << "row " << i;
    EXPECT_LE(received, handler) << "row " << i;
    EXPECT_LE(handler, acked) << "row " << i;
    previous_published = published;
  }
  EXPECT_GT(previous_published, std::stoll(rows.front()[1])) << "100 batches are not published at one instant";
  const auto last_line = ran.output.substr(ran.output.rfind('\n', ran.output.size() - 2) + 1);
  EXPECT_TRUE(boost::json::parse(last_line).as_object().at("trace_drain_ms").is_null()) << "mode bus has no phases to trace: " << last_line;
}

// Mode handoff has no read of its own to time: that column stays empty, and a task's latency is
// to its completion.
TEST(Cli, ABenchOfHandOffsLeavesTheReadColumnOfItsSamplesEmpty) {
  baton::test::RedisServer server({.append_only = false});
  const auto file = server.directory() / "samples.csv";
  const auto ran = baton(server, "bench --bus memory:// --mode handoff --messages 40 --warm-up 0 --json --samples '" + file.string() + "'");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const auto [header, rows] = read_samples(file);
  ASSERT_EQ(rows.size(), 40u);
  for (const auto& row : rows) {
    ASSERT_EQ(row.size(), 5u);
    EXPECT_EQ(row[2], "");
    EXPECT_GT(std::stoll(row[3]), 0);
    EXPECT_EQ(row[3], row[4]);
  }
}

TEST(Cli, RunRefusesAPhaseWithoutAnImplementation) {
  baton::test::RedisServer server({.append_only = false});
  EXPECT_EQ(baton(server, "run", "BATON_PIPELINE_PHASES=plan,review").exit_code, 2) << "no phase named review is linked";
}

TEST(Cli, PurgeRemovesDeadLetters) {
  baton::test::RedisServer server({.append_only = false});
  server.cli({"XADD", "baton:{phase}:phase.plan.in.dlq", "*", "original", "x", "reason", "decode_failed"});
  server.cli({"XADD", "baton:{phase}:phase.code.in.dlq", "*", "original", "y", "reason", "decode_failed"});
  const auto purged = baton(server, "dlq purge --phase plan");
  EXPECT_EQ(purged.output, "1 dead letters purged\n");
  EXPECT_EQ(server.cli({"XLEN", "baton:{phase}:phase.code.in.dlq"}), "1\n");
  // A letter that is not an envelope is skipped by replay, and says why.
  EXPECT_NE(baton(server, "dlq replay").output.find("0 replayed, 1 skipped"), std::string::npos);
}

// A broker or KV store whose persistence can forget what it acknowledged is named, with the port
// and the setting: healthy still (it answers), but not what Baton's promises need. One that fsyncs
// before it answers is not, so a KV store on a server of its own is judged by that server.
TEST(Cli, HealthNamesAStoreThatCanForgetWhatItAcknowledged) {
  baton::test::RedisServer without_aof({.append_only = false});
  const auto said = baton(without_aof, "health");
  EXPECT_EQ(said.exit_code, 0) << said.output;
  EXPECT_NE(said.output.find("durability: at risk (bus): "), std::string::npos) << said.output;
  EXPECT_NE(said.output.find("durability: at risk (kv): "), std::string::npos) << said.output;
  EXPECT_NE(said.output.find("appendonly no"), std::string::npos) << said.output;
  const auto json = baton(without_aof, "health --json");
  const auto last_line = json.output.substr(json.output.rfind('\n', json.output.size() - 2) + 1);
  const auto report = boost::json::parse(last_line).as_object();
  EXPECT_EQ(report.at("durability_at_risk"), (boost::json::array{"bus", "kv"})) << last_line;
  EXPECT_TRUE(report.at("ports").at(0).at("durability_risk").is_string()) << last_line;
  EXPECT_EQ(report.at("durability_risk"), report.at("ports").at(0).at("durability_risk")) << "the broker's, as before";

  baton::test::RedisServer always;  // AOF, appendfsync always
  const auto kept = baton(always, "health --json");
  EXPECT_EQ(kept.exit_code, 0) << kept.output;
  const auto kept_line = kept.output.substr(kept.output.rfind('\n', kept.output.size() - 2) + 1);
  EXPECT_TRUE(boost::json::parse(kept_line).as_object().at("durability_at_risk").as_array().empty()) << kept_line;
  EXPECT_EQ(baton(always, "health").output.find("durability:"), std::string::npos);

  // The bus on a server that keeps everything, the KV store on one that does not.
  const auto kv_apart = baton(always, "health --json", "BATON_KV='" + without_aof.url() + "'");
  const auto apart_line = kv_apart.output.substr(kv_apart.output.rfind('\n', kv_apart.output.size() - 2) + 1);
  const auto apart = boost::json::parse(apart_line).as_object();
  EXPECT_TRUE(apart.at("ports").at(0).at("durability_risk").is_null()) << apart_line;
  EXPECT_TRUE(apart.at("ports").at(1).at("durability_risk").is_string()) << apart_line;
  EXPECT_TRUE(apart.at("ports").at(2).at("durability_risk").is_null()) << apart_line;
  EXPECT_EQ(apart.at("durability_at_risk"), (boost::json::array{"kv"})) << apart_line;
  EXPECT_TRUE(apart.at("durability_risk").is_null()) << apart_line;
}

// A worker says at its start what a crash of its servers could make it forget, port by port.
TEST(Cli, RunWarnsOfEachStoreThatCanForgetWhatItAcknowledged) {
  baton::test::RedisServer always;  // AOF, appendfsync always
  baton::test::RedisServer without_aof({.append_only = false});
  const std::string storage = "BATON_STORAGE_ROOT=" + (always.directory() / "storage").string();
  std::string said;
  {
    Worker worker({"BATON_BUS=" + always.url(), "BATON_KV=" + without_aof.url(), storage}, {"run"}, true);
    for (std::string line = worker.next_line(); !line.empty() && line.rfind("running phases:", 0) != 0; line = worker.next_line()) {
      said += line;
    }
  }
  EXPECT_NE(said.find("once() answers and records are at risk of a store crash"), std::string::npos) << said;
  EXPECT_NE(said.find(without_aof.url().substr(std::string("redis://").size()) + " keeps no append-only file"), std::string::npos) << said;
  EXPECT_EQ(said.find("acknowledged messages are at risk"), std::string::npos) << said;
}

TEST(Cli, HealthIsZeroOnlyWhenEveryPortAnswers) {
  baton::test::RedisServer server({.append_only = false});
  const auto healthy = baton(server, "health --json");
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
  EXPECT_NE(healthy.output.find("\"healthy\":true"), std::string::npos);
  server.stop();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(baton(server, "health").exit_code, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{5}) << "an unreachable server must be reported within 5 s";
}

}  // namespace
