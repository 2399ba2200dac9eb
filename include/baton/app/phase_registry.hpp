#pragma once
// The phases a worker can run, by name. Phase implementations register here; `baton run` builds
// the configured phases from it with their options and ports.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/app/bootstrap.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"

namespace baton::app {

// A phase as the worker sees it: started and stopped as one.
class RunnablePhase {
 public:
  virtual ~RunnablePhase() = default;
  virtual Result<void> start() = 0;
  virtual void stop() = 0;
  // BaseOrchestrator::drain_traces.
  virtual std::optional<std::chrono::steady_clock::time_point> drain_traces(std::chrono::milliseconds within) = 0;
};

using PhaseFactory = std::function<std::unique_ptr<RunnablePhase>(orchestrator::Ports, orchestrator::PhaseOptions)>;

class PhaseRegistry {
 public:
  void add(const std::string& name, PhaseFactory factory) { factories_[name] = std::move(factory); }
  bool contains(const std::string& name) const { return factories_.contains(name); }
  const PhaseFactory* find(const std::string& name) const {
    const auto found = factories_.find(name);
    return found == factories_.end() ? nullptr : &found->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> names;
    for (const auto& [name, factory] : factories_) names.push_back(name);
    return names;
  }

 private:
  std::map<std::string, PhaseFactory> factories_;
};

// The phases linked into this program.
PhaseRegistry& linked_phases();

// A factory for a BaseOrchestrator subclass constructible from (Ports, PhaseOptions, settings...):
// the settings are copied into the factory and handed to every phase it makes.
template <class Phase, class... Settings>
PhaseFactory phase_factory(Settings... settings) {
  struct Runnable final : RunnablePhase {
    Runnable(orchestrator::Ports ports, orchestrator::PhaseOptions options, const Settings&... with)
        : phase(ports, std::move(options), with...) {}
    Result<void> start() override { return phase.start(); }
    void stop() override { phase.stop(); }
    std::optional<std::chrono::steady_clock::time_point> drain_traces(std::chrono::milliseconds within) override {
      return phase.drain_traces(within);
    }
    Phase phase;
  };
  return [=](orchestrator::Ports ports, orchestrator::PhaseOptions options) -> std::unique_ptr<RunnablePhase> {
    return std::make_unique<Runnable>(ports, std::move(options), settings...);
  };
}

// Registers the reference pipeline's coordinators (plan, code, certify, deploy) with their settings
// from the runtime's configuration. Names already registered are left as they are.
void register_reference_phases(PhaseRegistry& registry, const Runtime& runtime);

struct RunOptions {
  std::vector<std::string> phases;  // empty: every phase of the pipeline
  int concurrency = 0;              // 0: each phase's configured concurrency
  std::string http;                 // "127.0.0.1:9100" serves /metrics /healthz /readyz; empty: none
};

// Builds and starts the selected phases (options.phases, or all) from the registry, counting into
// `metrics`. errc::invalid_argument names a phase that is not in the pipeline or not linked.
Result<std::vector<std::unique_ptr<RunnablePhase>>> start_phases(const Runtime& runtime, const RunOptions& options,
                                                                  const PhaseRegistry& registry, orchestrator::MetricsRegistry& metrics);

// Runs the phases until SIGINT or SIGTERM, then stops them gracefully (handlers in flight finish,
// entries read but not started are handed back). SIGINT and SIGTERM must be blocked in every thread
// (block_stop_signals() first thing in main) so that this call receives them. Returns the exit code.
int run_workers(const Runtime& runtime, const RunOptions& options, const PhaseRegistry& registry);

// Blocks SIGINT and SIGTERM in the calling thread and in every thread it creates later.
void block_stop_signals();

}  // namespace baton::app
