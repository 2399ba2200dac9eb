#include <signal.h>

#include <boost/json/serialize.hpp>
#include <charconv>
#include <condition_variable>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "baton/app/bootstrap.hpp"
#include "baton/app/http_server.hpp"
#include "baton/app/phase_registry.hpp"

namespace baton::app {

PhaseRegistry& linked_phases() {
  static PhaseRegistry registry;
  return registry;
}

void block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

namespace {

Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const auto digits = std::string_view(text).substr(colon + 1);
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (error != std::errc{} || end != digits.data() + digits.size()) port = -1;
  }
  if (colon == std::string::npos || port < 0 || port > 65535) {
    return Error{errc::invalid_argument, "--http \"" + text + "\": expected ADDRESS:PORT, for example 127.0.0.1:9100"};
  }
  return std::make_pair(text.substr(0, colon), static_cast<std::uint16_t>(port));
}

// Removes what writes cut short by a crash left in the storage once it is `age` old: at start,
// since a start often follows a crash, and then every `age`, until `stop`.
void sweep_storage_leftovers(std::stop_token stop, ports::Storage& storage, std::chrono::milliseconds age, const log::Logger& logger) {
  std::mutex mutex;
  std::condition_variable_any wake;
  while (!stop.stop_requested()) {
    auto swept = storage.sweep_leftovers(std::chrono::duration_cast<std::chrono::seconds>(age), stop);
    if (!swept) {
      logger.warn("could not sweep the storage for leftovers of interrupted writes", {{"error", swept.error().message()}});
    } else if (*swept > 0) {
      logger.info("removed leftovers of interrupted writes from the storage", {{"removed", *swept}});
    }
    std::unique_lock lock(mutex);
    wake.wait_for(lock, stop, age, [] { return false; });
  }
}

}  // namespace

Result<std::vector<std::unique_ptr<RunnablePhase>>> start_phases(const Runtime& runtime, const RunOptions& options,
                                                                  const PhaseRegistry& registry, orchestrator::MetricsRegistry& metrics) {
  const auto& pipeline = *runtime.pipeline;
  const auto selected = options.phases.empty() ? pipeline.phases() : options.phases;
  for (const auto& name : selected) {
    if (!pipeline.output_topic(name)) return Error{errc::invalid_argument, "--phase \"" + name + "\": not a phase of the pipeline"};
    if (!registry.find(name)) return Error{errc::invalid_argument, "phase \"" + name + "\": no implementation is linked into this program"};
  }
  std::vector<std::unique_ptr<RunnablePhase>> phases;
  for (const auto& name : selected) {
    auto phase_options = orchestrator::phase_options(pipeline, name).value();
    const auto settings = runtime.config.settings_for(name);
    phase_options.concurrency = options.concurrency > 0 ? options.concurrency : settings.concurrency;
    phase_options.timeout = settings.timeout;
    phase_options.retry.max_attempts = settings.max_attempts;
    phase_options.retry.base_delay = settings.base_delay;
    phase_options.metrics = &metrics;
    phases.push_back((*registry.find(name))(runtime.ports(), phase_options));
    if (auto started = phases.back()->start(); !started) {
      for (auto& phase : phases) phase->stop();
      return Error{started.error().code, "phase \"" + name + "\": " + started.error().detail};
    }
  }
  return phases;
}

int run_workers(const Runtime& runtime, const RunOptions& options, const PhaseRegistry& registry) {
  const log::Logger logger = log::Logger().child("worker");
  const auto& pipeline = *runtime.pipeline;
  const std::vector<std::string> selected = options.phases.empty() ? pipeline.phases() : options.phases;
  orchestrator::MetricsRegistry metrics;
  auto started = start_phases(runtime, options, registry, metrics);
  if (!started) {
    std::cerr << "baton: " << started.error().detail << "\n";
    return started.error() == errc::invalid_argument ? 2 : 1;
  }
  auto phases = std::move(*started);

  std::atomic<bool> ready{true};
  std::unique_ptr<HttpServer> http;
  if (!options.http.empty()) {
    auto listen = parse_listen(options.http);
    if (!listen) {
      std::cerr << "baton: " << listen.error().message() << "\n";
      return 2;
    }
    auto server = HttpServer::start(listen->first, listen->second, HttpRoutes{
        [&] {
          return metrics.render([&](std::string& out) {
            out += "# HELP baton_pending Entries delivered and not acked, or waiting to be retried.\n# TYPE baton_pending gauge\n";
            std::string lag = "# HELP baton_lag Entries published and not yet delivered.\n# TYPE baton_lag gauge\n";
            // A phase whose figures the bus could not read has no pending or lag line; this says so
            // (1) rather than leaving only an absence to notice.
            std::string unreadable =
                "# HELP baton_stats_unreadable 1 when the bus could not read the phase's pending and lag at this scrape.\n"
                "# TYPE baton_stats_unreadable gauge\n";
            for (const auto& name : selected) {
              auto stats = runtime.bus->topic_stats(pipeline.input_topic(name));
              unreadable += "baton_stats_unreadable{phase=\"" + name + "\"} " + (stats ? "0" : "1") + "\n";
              if (!stats) continue;
              for (const auto& group : stats->groups) {
                if (group.name != name) continue;
                out += "baton_pending{phase=\"" + name + "\"} " + std::to_string(group.pending) + "\n";
                lag += "baton_lag{phase=\"" + name + "\"} " + std::to_string(group.lag) + "\n";
              }
            }
            out += lag;
            out += unreadable;
          });
        },
        [&] { return runtime.bus->health().ok && runtime.kv->health().ok; },
        [&] { return ready.load(); }});
    if (!server) {
      std::cerr << "baton: " << server.error().message() << "\n";
      return 1;
    }
    http = std::move(*server);
    std::cout << "listening on " << listen->first << ":" << http->port() << std::endl;
  }
  std::jthread sweeper;
  if (runtime.storage && runtime.config.storage_leftovers_after_ms > 0) {
    sweeper = std::jthread(sweep_storage_leftovers, std::ref(*runtime.storage),
                           std::chrono::milliseconds{runtime.config.storage_leftovers_after_ms}, std::cref(logger));
  }
  {
    // Side by side: a server that stops answering just now delays the start as one store would.
    auto bus_risk = std::async(std::launch::async, [&] { return runtime.bus->durability_risk(); });
    auto kv_risk = std::async(std::launch::async, [&] { return runtime.kv->durability_risk(); });
    if (auto risk = bus_risk.get()) {
      logger.warn("acknowledged messages are at risk of a broker crash", {{"why", *risk}, {"see", "docs/RELIABILITY.md"}});
    }
    if (auto risk = kv_risk.get()) {
      logger.warn("once() answers and records are at risk of a store crash", {{"why", *risk}, {"see", "docs/RELIABILITY.md"}});
    }
  }
  std::cout << "running phases:";
  for (const auto& name : selected) std::cout << " " << name;
  std::cout << std::endl;
  logger.info("worker running", {{"phases", boost::json::value_from(selected)}});

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int received = 0;
  sigwait(&signals, &received);
  ready = false;
  logger.info("stopping: handlers in flight finish, entries not started are handed back",
              {{"signal", received == SIGINT ? "SIGINT" : "SIGTERM"}});
  sweeper.request_stop();
  for (auto& phase : phases) phase->stop();
  logger.info("stopped");
  std::cout << "stopped" << std::endl;
  return 0;
}

}  // namespace baton::app
