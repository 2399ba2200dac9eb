#pragma once
// Counters and a handler-time histogram per phase, rendered in the Prometheus text format.
// Lock-free to update (atomics); a phase's entry is created once and never moves.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace baton::orchestrator {

class PhaseMetrics {
 public:
  static constexpr std::array<double, 13> bucket_bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1.0,   2.5,  5.0,   10.0, 30.0, 60.0};

  std::atomic<std::uint64_t> received{0};       // deliveries of an input
  std::atomic<std::uint64_t> handled{0};        // handled and handed off
  std::atomic<std::uint64_t> failed{0};         // attempts that failed (including timeouts)
  std::atomic<std::uint64_t> retried{0};        // failures that will be tried again
  std::atomic<std::uint64_t> dead_lettered{0};  // failures that end in the dead letters
  std::atomic<std::uint64_t> replayed{0};       // deliveries of a replayed dead letter
  std::atomic<std::uint64_t> ai_requests{0};       // AI completions asked for by the handler
  std::atomic<std::uint64_t> ai_errors{0};         // of those, the ones that failed
  std::atomic<std::uint64_t> ai_input_tokens{0};   // as the provider reported them
  std::atomic<std::uint64_t> ai_output_tokens{0};
  std::atomic<std::uint64_t> traces_unwritten{0};  // trace events not written (store away, or still queued at stop)

  void observe_handler_time(std::chrono::microseconds elapsed);

 private:
  friend class MetricsRegistry;
  std::array<std::atomic<std::uint64_t>, bucket_bounds.size()> buckets_{};  // cumulative at render
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_microseconds_{0};
};

class MetricsRegistry {
 public:
  // The metrics of `phase`, created on first use. The reference stays valid for the registry's life.
  PhaseMetrics& phase(const std::string& name);

  // Prometheus text exposition format (version 0.0.4). `gauges` may append gauge lines (lag,
  // pending) computed at scrape time.
  std::string render(const std::function<void(std::string& out)>& gauges = {}) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<PhaseMetrics>> phases_;
};

}  // namespace baton::orchestrator
