// The baton command line.
//
//   baton [--config F] config show
//   baton [--config F] health [--json]
//   baton [--config F] submit [--tenant T] [--json] TEXT
//   baton [--config F] dlq list [--phase P] [--json]
//   baton [--config F] dlq show ID [--phase P]
//   baton [--config F] dlq replay [--phase P] [--rate N] [--dry-run]
//   baton [--config F] dlq purge [--phase P]
//   baton [--config F] status [--json]
//   baton [--config F] trace CORR_ID [--tenant T] [--json]
//   baton [--config F] run [--phase P ...] [--concurrency N] [--http ADDRESS:PORT]
//   baton bench [--bus URL] [--mode bus|pipeline] [--messages N] [--warm-up W] [--producers P] [--consumers C]
//               [--payload-bytes B] [--rate R] [--json]
//   baton demo [--tasks N] [--bus memory://|URL] [--seed S] [--poison-every N] [--no-faults] [--keep]
//
// Exit codes: 0 success, 1 the command failed (a port answered an error, something is unhealthy),
// 2 the command line or the configuration is wrong.

#include <CLI/CLI.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <future>
#include <iostream>
#include <thread>
#include <unistd.h>

#include "baton/core/codec.hpp"
#include "baton/core/keys.hpp"
#include "baton/orchestrator/trace.hpp"

#include "baton/app/bootstrap.hpp"
#include "baton/app/phase_registry.hpp"
#include "baton/app/process_lifetime.hpp"
#include "baton/app/bench.hpp"
#include "baton/app/demo.hpp"
#include "baton/app/tasks.hpp"
#include "baton/core/log.hpp"

namespace {

using namespace baton;

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

struct Common {
  std::string config_path;
  bool json = false;
};

Result<app::Runtime> start(const Common& common) {
  std::optional<std::string> path;
  if (!common.config_path.empty()) path = common.config_path;
  auto config = app::load_config(path, app::baton_environment());
  if (!config) return std::move(config).error();
  return app::bootstrap(*config);
}

int fail(const Error& error, int code) {
  std::cerr << "baton: " << error.message() << "\n";
  return code;
}

boost::json::object health_json(const std::string& port, const ports::Health& health) {
  return {{"port", port}, {"ok", health.ok}, {"latency_us", health.latency.count()}, {"detail", health.detail}};
}

int show_config(const Common& common) {
  std::optional<std::string> path;
  if (!common.config_path.empty()) path = common.config_path;
  auto config = app::load_config(path, app::baton_environment());
  if (!config) return fail(config.error(), exit_usage);
  std::cout << app::render_config(*config);
  return 0;
}

int health(const Common& common) {
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  // Checked side by side, so an unreachable server costs one timeout, not one per port.
  auto bus_health = std::async(std::launch::async, [&] { return runtime->bus->health(); });
  auto kv_health = std::async(std::launch::async, [&] { return runtime->kv->health(); });
  const std::vector<std::pair<std::string, ports::Health>> checks = {
      {"bus", bus_health.get()}, {"kv", kv_health.get()}, {"storage", runtime->storage->health()}};
  // Not a failure of health: a store that answers may still keep less than Baton's promises need.
  // Asked only of the ports that answered, side by side as above.
  auto bus_risk = std::async(std::launch::async, [&] { return checks[0].second.ok ? runtime->bus->durability_risk() : std::nullopt; });
  auto kv_risk = std::async(std::launch::async, [&] { return checks[1].second.ok ? runtime->kv->durability_risk() : std::nullopt; });
  const std::vector<std::optional<std::string>> risks = {bus_risk.get(), kv_risk.get(), std::nullopt};
  bool healthy = true;
  boost::json::array report;
  boost::json::array at_risk;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const auto& [port, result] = checks[i];
    healthy = healthy && result.ok;
    auto entry = health_json(port, result);
    entry["durability_risk"] = risks[i] ? boost::json::value(*risks[i]) : boost::json::value(nullptr);
    report.push_back(std::move(entry));
    if (risks[i]) at_risk.emplace_back(port);
    if (!common.json) {
      std::cout << port << ": " << (result.ok ? "ok" : "FAILING") << " (" << result.latency.count() << " us) "
                << result.detail << "\n";
    }
  }
  for (std::size_t i = 0; i < checks.size() && !common.json; ++i) {
    if (risks[i]) std::cout << "durability: at risk (" << checks[i].first << "): " << *risks[i] << " (docs/RELIABILITY.md)\n";
  }
  if (common.json) {
    // durability_risk: the broker's, kept as it was before each port said its own.
    std::cout << boost::json::serialize(boost::json::object{
                     {"healthy", healthy}, {"ports", report}, {"durability_at_risk", at_risk},
                     {"durability_risk", risks[0] ? boost::json::value(*risks[0]) : boost::json::value(nullptr)}})
              << "\n";
  }
  return healthy ? 0 : exit_failed;
}

int submit(const Common& common, const std::string& tenant, const std::string& text) {
  if (auto problem = check_tenant_id(tenant)) return fail(Error{errc::invalid_argument, "--tenant \"" + tenant + "\": " + *problem}, exit_usage);
  if (auto problem = app::check_task_text(text)) return fail(Error{errc::invalid_argument, "TEXT: " + *problem}, exit_usage);
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  auto submitted = app::submit_task(*runtime, tenant, text);
  if (!submitted) return fail(submitted.error(), exit_failed);
  if (!submitted->note.empty()) std::cerr << "baton: note: " << submitted->note << "\n";
  if (runtime->config.bus == "memory://") {
    std::cerr << "baton: note: the bus is memory://, so this message lives only in this process\n";
  }
  const auto& task = submitted->envelope;
  if (common.json) {
    std::cout << boost::json::serialize(boost::json::object{{"corr_id", task.corr_id}, {"msg_id", task.id},
                                                            {"topic", runtime->pipeline->first_topic()}, {"tenant_id", tenant}})
              << "\n";
  } else {
    std::cout << task.corr_id << "\n";
  }
  return 0;
}

boost::json::object letter_json(const std::string& phase, const ports::DeadLetter& letter) {
  return {{"phase", phase}, {"id", letter.id}, {"topic", letter.topic}, {"group", letter.group},
          {"consumer", letter.consumer}, {"reason", letter.reason}, {"error", letter.error},
          {"attempts", letter.attempts}, {"failed_at", format_rfc3339(letter.failed_at)}, {"original", letter.original}};
}

// The phases a dlq command looks at: one named with --phase, or all of them.
Result<std::vector<std::string>> selected_phases(const app::Runtime& runtime, const std::string& phase) {
  const auto& phases = runtime.pipeline->phases();
  if (phase.empty()) return phases;
  if (std::find(phases.begin(), phases.end(), phase) == phases.end()) {
    return Error{errc::invalid_argument, "--phase \"" + phase + "\": not a phase of the pipeline"};
  }
  return std::vector<std::string>{phase};
}

int dlq_list(const Common& common, const std::string& phase_filter) {
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  auto phases = selected_phases(*runtime, phase_filter);
  if (!phases) return fail(phases.error(), exit_usage);
  boost::json::array all;
  for (const auto& phase : *phases) {
    auto letters = runtime->bus->dead_letters(runtime->pipeline->input_topic(phase), 1000);
    if (!letters) return fail(letters.error(), exit_failed);
    for (const auto& letter : *letters) {
      if (common.json) {
        all.push_back(letter_json(phase, letter));
      } else {
        std::cout << phase << "  " << letter.id << "  " << format_rfc3339(letter.failed_at) << "  " << letter.reason
                  << "  attempts=" << letter.attempts << "  " << letter.error << "\n";
      }
    }
  }
  if (common.json) std::cout << boost::json::serialize(all) << "\n";
  return 0;
}

int dlq_show(const Common& common, const std::string& id, const std::string& phase_filter) {
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  auto phases = selected_phases(*runtime, phase_filter);
  if (!phases) return fail(phases.error(), exit_usage);
  for (const auto& phase : *phases) {
    auto letters = runtime->bus->dead_letters(runtime->pipeline->input_topic(phase), 100'000);
    if (!letters) return fail(letters.error(), exit_failed);
    for (const auto& letter : *letters) {
      if (letter.id != id) continue;
      std::cout << boost::json::serialize(letter_json(phase, letter)) << "\n";
      return 0;
    }
  }
  return fail(Error{errc::not_found, "no dead letter with id " + id}, exit_failed);
}

// Where a story stands after its last recorded event.

int trace(const Common& common, const std::string& corr_id, const std::string& tenant) {
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  auto events = orchestrator::read_trace(*runtime->kv, tenant, corr_id);
  if (!events) return fail(events.error(), exit_failed);
  const auto where = app::whereabouts(*runtime->pipeline, *events);
  if (common.json) {
    std::cout << boost::json::serialize(boost::json::object{{"corr_id", corr_id}, {"tenant_id", tenant}, {"events", *events},
                                                            {"now", where}})
              << "\n";
    return 0;
  }
  std::cout << app::trace_text(*runtime->pipeline, *events);
  return 0;
}

int status(const Common& common) {
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  boost::json::array phases;
  for (const auto& phase : runtime->pipeline->phases()) {
    auto stats = runtime->bus->topic_stats(runtime->pipeline->input_topic(phase));
    if (!stats) return fail(stats.error(), exit_failed);
    boost::json::array groups;
    for (const auto& group : stats->groups) {
      groups.push_back({{"name", group.name}, {"consumers", group.consumers}, {"pending", group.pending}, {"lag", group.lag}});
      if (!common.json) {
        std::cout << phase << "  group " << group.name << ": consumers=" << group.consumers << " pending=" << group.pending
                  << " lag=" << group.lag << "\n";
      }
    }
    if (!common.json) {
      std::cout << phase << "  stream length=" << stats->length << " dead letters=" << stats->dead_letters
                << (stats->groups.empty() ? "  (no worker has run yet)" : "") << "\n";
    }
    phases.push_back({{"phase", phase}, {"topic", runtime->pipeline->input_topic(phase)}, {"length", stats->length},
                      {"dead_letters", stats->dead_letters}, {"groups", groups}});
  }
  if (common.json) std::cout << boost::json::serialize(boost::json::object{{"phases", phases}}) << "\n";
  return 0;
}

std::string operator_name() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(user ? user : "unknown") + "@" + host;
}

int dlq_replay(const Common& common, const std::string& phase_filter, double rate, bool dry_run) {
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  auto phases = selected_phases(*runtime, phase_filter);
  if (!phases) return fail(phases.error(), exit_usage);
  const auto pause = rate > 0 ? std::chrono::duration<double>(1.0 / rate) : std::chrono::duration<double>(0);
  const std::string by = operator_name();
  int replayed = 0, skipped = 0;
  for (const auto& phase : *phases) {
    const auto topic = runtime->pipeline->input_topic(phase);
    auto letters = runtime->bus->dead_letters(topic, 100'000);
    if (!letters) return fail(letters.error(), exit_failed);
    for (const auto& letter : *letters) {
      auto original = decode(letter.original);
      if (!original) {
        // Nothing to put back: the entry never was an envelope. It stays for `dlq show` and `purge`.
        std::cerr << "baton: skipping " << letter.id << " (" << phase << "): " << original.error().message() << "\n";
        ++skipped;
        continue;
      }
      const auto at = format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()));
      auto replacement = *original;
      replacement.attempts = 1;
      replacement.headers["replayed_by"] = by;
      replacement.headers["replayed_at"] = at;
      replacement.headers["replayed_from"] = letter.id;
      if (dry_run) {
        std::cout << "would replay " << letter.id << " (" << phase << ", msg " << replacement.id << ", corr " << replacement.corr_id
                  << "): " << letter.reason << "\n";
        ++replayed;
        continue;
      }
      if (auto done = runtime->bus->replay_dead_letter(topic, letter.id, replacement); !done) {
        return fail(done.error(), exit_failed);
      }
      // Who replayed what and when, next to the tenant's data.
      const boost::json::object record{{"by", by}, {"at", at}, {"phase", phase}, {"dead_letter_id", letter.id},
                                       {"msg_id", replacement.id}, {"corr_id", replacement.corr_id}, {"reason", letter.reason}};
      auto kept = runtime->kv->set(keys::tenant_key(replacement.tenant_id, "replay", replacement.id), boost::json::serialize(record),
                                   std::chrono::hours{24 * 30});
      std::cout << "replayed " << letter.id << " (" << phase << ", msg " << replacement.id << ")\n";
      // The replay is done either way; only its record is missing, and that is said.
      if (!kept) std::cerr << "baton: note: replayed " << letter.id << ", but its replay record was not kept: " << kept.error().message() << "\n";
      ++replayed;
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
  }
  std::cout << (dry_run ? "dry run: " : "") << replayed << " replayed, " << skipped << " skipped\n";
  return 0;
}

int dlq_purge(const Common& common, const std::string& phase_filter) {
  auto runtime = start(common);
  if (!runtime) return fail(runtime.error(), exit_usage);
  auto phases = selected_phases(*runtime, phase_filter);
  if (!phases) return fail(phases.error(), exit_usage);
  std::size_t total = 0;
  for (const auto& phase : *phases) {
    auto purged = runtime->bus->purge_dead_letters(runtime->pipeline->input_topic(phase));
    if (!purged) return fail(purged.error(), exit_failed);
    total += *purged;
  }
  std::cout << total << " dead letters purged\n";
  return 0;
}

// CLI11's own number checks print their range up to DBL_MAX; these say what was wanted, and what
// was given instead.
CLI::Validator number_check(bool (*fits)(double), std::string wanted) {
  return CLI::Validator(
      [fits, wanted](std::string& input) -> std::string {
        double value = 0;
        const auto [end, error] = std::from_chars(input.data(), input.data() + input.size(), value);
        if (error != std::errc{} || end != input.data() + input.size() || !fits(value)) return "must be " + wanted + ", got " + input;
        return {};
      },
      "NUMBER");
}
const CLI::Validator positive_number = number_check([](double value) { return value > 0; }, "a number above 0");
const CLI::Validator number_from_zero = number_check([](double value) { return value >= 0; }, "0 or a number above it");

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so that `run` alone receives SIGINT/SIGTERM (sigwait) and stops cleanly.
  app::block_stop_signals();
  CLI::App cli{"baton: reliable multi-phase pipelines on Redis"};
  cli.require_subcommand(1);
  Common common;
  cli.add_option("--config", common.config_path, "TOML configuration file (BATON_* variables override it)");

  auto* config = cli.add_subcommand("config", "Show the effective configuration");
  config->require_subcommand(1);
  auto* config_show = config->add_subcommand("show", "Print the effective configuration, secrets masked");

  auto* health_command = cli.add_subcommand("health", "Check every port; exit 0 only when all are healthy");
  health_command->add_flag("--json", common.json, "One JSON object");

  auto* submit_command = cli.add_subcommand("submit", "Submit a task to the pipeline; prints its correlation id");
  std::string tenant{default_tenant_id};
  std::string text;
  submit_command->add_option("--tenant", tenant, "Tenant id");
  submit_command->add_flag("--json", common.json, "Print a JSON object");
  submit_command->add_option("text", text, "The task")->required();

  app::DemoOptions demo_options;
  auto* demo_command = cli.add_subcommand("demo", "The reference pipeline end to end with faults (a private redis-server by default)");
  demo_command->add_option("--tasks", demo_options.tasks, "Tasks to submit")->capture_default_str();
  demo_command->add_option("--bus", demo_options.bus, "memory:// runs everything in this process; a redis:// URL uses that server");
  demo_command->add_option("--seed", demo_options.seed, "Seed for the choice of the worker to kill (0: random, printed)");
  demo_command->add_option("--poison-every", demo_options.poison_every, "Every Nth task cannot be planned (0: none)")->capture_default_str()->check(number_from_zero);
  demo_command->add_flag("!--no-faults", demo_options.faults, "Do not kill redis-server or a worker");
  demo_command->add_flag("--keep", demo_options.keep, "Keep the temporary folder (logs, storage)");
  int demo_timeout_s = static_cast<int>(demo_options.timeout.count());
  demo_command->add_option("--timeout", demo_timeout_s, "Seconds for the batch to settle")->capture_default_str()->check(positive_number);

  app::BenchOptions bench_options;
  auto* bench_command = cli.add_subcommand("bench", "Throughput and latency against a raw XADD baseline on the same server");
  bench_command->add_option("--bus", bench_options.bus, "redis://... or memory:// (default: a private redis-server, AOF off)");
  bench_command->add_option("--mode", bench_options.mode,
                            "bus (one topic), pipeline (the four reference phases) or handoff (four phases that hand their input on)")->capture_default_str();
  bench_command->add_option("--messages", bench_options.messages, "Messages (tasks in pipeline mode)")->capture_default_str();
  bench_command->add_option("--warm-up", bench_options.warm_up,
                            "Messages published just before them, counted for lost and duplicated but not measured (default: a tenth of --messages)");
  bench_command->add_option("--producers", bench_options.producers, "Publishing threads (1-256)")->capture_default_str();
  bench_command->add_option("--consumers", bench_options.consumers, "Handlers at once, 1-1024 (per phase in pipeline mode)")->capture_default_str();
  bench_command->add_option("--payload-bytes", bench_options.payload_bytes, "Payload size, up to the envelope limit of " + std::to_string(CodecLimits{}.max_payload_bytes))->capture_default_str();
  bench_command->add_option("--rate", bench_options.rate, "Messages per second to pace the producers at (0: flat out)")->capture_default_str();
  bench_command->add_flag("--json", bench_options.json, "No progress bar; the JSON object is the last line either way");
  bench_command->add_option("--scratch", bench_options.scratch,
                            "Folder for the run's files: the pipeline's storage, the log (default: /dev/shm, so that the disk is not measured)");
  bench_command->add_option("--samples", bench_options.samples,
                            "Write every measured message's publish time and latencies (us) to this CSV file");

  auto* run_command = cli.add_subcommand("run", "Run the workers of the pipeline's phases until SIGINT/SIGTERM");
  app::RunOptions run_options;
  run_command->add_option("--phase", run_options.phases, "Only these phases (repeat for several)");
  run_command->add_option("--concurrency", run_options.concurrency, "Handlers at once per phase")->check(CLI::Range(1, 1024));
  run_command->add_option("--http", run_options.http, "Serve /metrics, /healthz, /readyz on ADDRESS:PORT");

  auto* trace_command = cli.add_subcommand("trace", "Every phase a task went through, and where it is now");
  std::string corr_id;
  std::string trace_tenant{default_tenant_id};
  trace_command->add_option("corr_id", corr_id, "Correlation id (as printed by submit)")->required();
  trace_command->add_option("--tenant", trace_tenant, "Tenant id");
  trace_command->add_flag("--json", common.json, "One JSON object");

  auto* status_command = cli.add_subcommand("status", "Per phase: stream length, groups, pending, lag, dead letters");
  status_command->add_flag("--json", common.json, "One JSON object");

  auto* dlq = cli.add_subcommand("dlq", "Dead letters");
  dlq->require_subcommand(1);
  std::string phase;
  auto* dlq_list_command = dlq->add_subcommand("list", "List dead letters");
  dlq_list_command->add_option("--phase", phase, "Only this phase");
  dlq_list_command->add_flag("--json", common.json, "A JSON array");
  auto* dlq_show_command = dlq->add_subcommand("show", "Show one dead letter");
  std::string dead_letter_id;
  dlq_show_command->add_option("id", dead_letter_id, "Dead letter id")->required();
  dlq_show_command->add_option("--phase", phase, "Only this phase");
  auto* dlq_replay_command = dlq->add_subcommand("replay", "Put dead letters back on their topic, attempts reset");
  double rate = 0;
  bool dry_run = false;
  dlq_replay_command->add_option("--phase", phase, "Only this phase");
  dlq_replay_command->add_option("--rate", rate, "At most this many per second (0: no limit)")->check(number_from_zero);
  dlq_replay_command->add_flag("--dry-run", dry_run, "Say what would be replayed, change nothing");
  auto* dlq_purge_command = dlq->add_subcommand("purge", "Remove dead letters");
  dlq_purge_command->add_option("--phase", phase, "Only this phase");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = cli.exit(error);
    return code == 0 ? 0 : exit_usage;
  }

  int code = exit_usage;
  if (config_show->parsed()) code = show_config(common);
  else if (health_command->parsed()) code = health(common);
  else if (submit_command->parsed()) code = submit(common, tenant, text);
  else if (dlq_list_command->parsed()) code = dlq_list(common, phase);
  else if (dlq_show_command->parsed()) code = dlq_show(common, dead_letter_id, phase);
  else if (status_command->parsed()) code = status(common);
  else if (trace_command->parsed()) code = trace(common, corr_id, trace_tenant);
  else if (bench_command->parsed()) {
    app::exit_on_stop_signal("bench");
    code = app::run_bench(bench_options);
  }
  else if (demo_command->parsed()) {
    app::exit_on_stop_signal("demo");
    demo_options.timeout = std::chrono::seconds{demo_timeout_s};
    code = app::run_demo(demo_options);
  }
  else if (run_command->parsed()) {
    auto runtime = start(common);
    if (runtime) app::register_reference_phases(app::linked_phases(), *runtime);
    code = runtime ? app::run_workers(*runtime, run_options, app::linked_phases()) : fail(runtime.error(), exit_usage);
  }
  else if (dlq_replay_command->parsed()) code = dlq_replay(common, phase, rate, dry_run);
  else if (dlq_purge_command->parsed()) code = dlq_purge(common, phase);
  log::flush();
  return code;
}
