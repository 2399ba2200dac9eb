#include "baton/orchestrator/metrics.hpp"

#include <cstdio>

namespace baton::orchestrator {
namespace {

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

void counter(std::string& out, const char* name, const char* help, const std::map<std::string, std::unique_ptr<PhaseMetrics>>& phases,
             const std::atomic<std::uint64_t> PhaseMetrics::*field) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
  for (const auto& [phase, metrics] : phases) {
    out += std::string(name) + "{phase=\"" + phase + "\"} " + std::to_string(((*metrics).*field).load()) + "\n";
  }
}

}  // namespace

void PhaseMetrics::observe_handler_time(std::chrono::microseconds elapsed) {
  const double seconds = static_cast<double>(elapsed.count()) / 1e6;
  for (std::size_t i = 0; i < bucket_bounds.size(); ++i) {
    if (seconds <= bucket_bounds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_microseconds_.fetch_add(static_cast<std::uint64_t>(elapsed.count()), std::memory_order_relaxed);
}

PhaseMetrics& MetricsRegistry::phase(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& slot = phases_[name];
  if (!slot) slot = std::make_unique<PhaseMetrics>();
  return *slot;
}

std::string MetricsRegistry::render(const std::function<void(std::string& out)>& gauges) const {
  std::string out;
  std::lock_guard lock(mutex_);
  counter(out, "baton_received_total", "Inputs delivered to the phase.", phases_, &PhaseMetrics::received);
  counter(out, "baton_handled_total", "Inputs handled and handed off.", phases_, &PhaseMetrics::handled);
  counter(out, "baton_failed_total", "Attempts that failed, timeouts included.", phases_, &PhaseMetrics::failed);
  counter(out, "baton_retried_total", "Failed attempts that will be tried again.", phases_, &PhaseMetrics::retried);
  counter(out, "baton_dead_lettered_total", "Inputs moved to the dead letters.", phases_, &PhaseMetrics::dead_lettered);
  counter(out, "baton_replayed_total", "Deliveries of replayed dead letters.", phases_, &PhaseMetrics::replayed);
  counter(out, "baton_ai_requests_total", "AI completions requested by the phase.", phases_, &PhaseMetrics::ai_requests);
  counter(out, "baton_ai_errors_total", "AI completions that failed.", phases_, &PhaseMetrics::ai_errors);
  counter(out, "baton_ai_input_tokens_total", "Input tokens the AI provider reported.", phases_, &PhaseMetrics::ai_input_tokens);
  counter(out, "baton_ai_output_tokens_total", "Output tokens the AI provider reported.", phases_, &PhaseMetrics::ai_output_tokens);
  counter(out, "baton_traces_unwritten_total", "Trace events the phase could not write (the store away, or still queued when it stopped).",
          phases_, &PhaseMetrics::traces_unwritten);
  out += "# HELP baton_handler_seconds Time spent in the phase's handler.\n# TYPE baton_handler_seconds histogram\n";
  for (const auto& [phase, metrics] : phases_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < PhaseMetrics::bucket_bounds.size(); ++i) {
      cumulative += metrics->buckets_[i].load();
      out += "baton_handler_seconds_bucket{phase=\"" + phase + "\",le=\"" + number(PhaseMetrics::bucket_bounds[i]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    const auto count = metrics->count_.load();
    out += "baton_handler_seconds_bucket{phase=\"" + phase + "\",le=\"+Inf\"} " + std::to_string(count) + "\n";
    out += "baton_handler_seconds_sum{phase=\"" + phase + "\"} " + number(static_cast<double>(metrics->sum_microseconds_.load()) / 1e6) + "\n";
    out += "baton_handler_seconds_count{phase=\"" + phase + "\"} " + std::to_string(count) + "\n";
  }
  if (gauges) gauges(out);
  return out;
}

}  // namespace baton::orchestrator
