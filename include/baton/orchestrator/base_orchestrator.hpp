#pragma once
// BaseOrchestrator<In, Out>: one phase of a pipeline. It consumes its input topic in a consumer
// group, decodes the typed In, calls handle(In, Context), and hands the Out on as a child envelope
// (same corr_id, causation_id = the input's id) to its output topic: atomically with the ack and the
// dedup mark (the bus's atomic hand-off), so a crash at any instant neither loses the hand-off nor
// makes it twice, and a redelivered input whose hand-off already happened is acked and skipped.
//
// - An input whose payload does not decode as In is a permanent failure: a dead letter with the
//   decode error, at once.
// - handle()'s errors decide: retryable ones come back after the phase's backoff with attempts + 1,
//   up to retry.max_attempts, then a dead letter; permanent ones are a dead letter at once.
// - A handler past `timeout` has its stop token requested and its attempt counts as a retryable
//   failure ("timed out"), whatever it returned.
// - stop() (and the destructor): no new input is taken; handlers in flight finish (their stop token
//   is requested); entries not handled stay unacked for another worker. Nothing is acked unhandled.

#include <boost/json/value_from.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "baton/core/envelope.hpp"
#include "baton/core/log.hpp"
#include "baton/core/retry.hpp"
#include "baton/orchestrator/deadline_watch.hpp"
#include "baton/orchestrator/metrics.hpp"
#include "baton/orchestrator/pipeline.hpp"
#include "baton/orchestrator/trace.hpp"
#include "baton/orchestrator/trace_writer.hpp"
#include "baton/ports/ai_api.hpp"
#include "baton/ports/command_runner.hpp"
#include "baton/ports/kv_store.hpp"
#include "baton/ports/message_bus.hpp"
#include "baton/ports/secrets.hpp"
#include "baton/ports/storage.hpp"

namespace baton::orchestrator {

// The ports a phase may use; only the bus is required.
struct Ports {
  ports::MessageBus* bus = nullptr;
  ports::KVStore* kv = nullptr;
  ports::AiApi* ai = nullptr;
  ports::Storage* storage = nullptr;
  ports::Secrets* secrets = nullptr;
  ports::CommandRunner* commands = nullptr;
};

struct PhaseOptions {
  std::string name;             // the phase ("plan"); also its consumer group
  std::string input_topic;      // what it consumes
  std::string output_topic;     // where its Out goes
  std::string output_type;      // the Out envelope's type; empty = output_topic
  std::string consumer;         // this worker's name in the group; empty = generated
  int concurrency = 1;          // handlers at once in this process
  RetryPolicy retry{};          // backoff and attempt budget before the dead-letter queue
  std::chrono::milliseconds timeout{60'000};  // per handle() call
  MetricsRegistry* metrics = nullptr;         // where the phase counts what it does; null = not counted
};

// The options of `phase` as a stage of `pipeline` (name and group, input, output, output type);
// everything else keeps its default. errc::invalid_argument for a phase the pipeline does not have.
inline Result<PhaseOptions> phase_options(const Pipeline& pipeline, const std::string& phase) {
  const auto output = pipeline.output_topic(phase);
  if (!output) return Error{errc::invalid_argument, "phase \"" + phase + "\" is not in the pipeline"};
  PhaseOptions options;
  options.name = phase;
  options.input_topic = pipeline.input_topic(phase);
  options.output_topic = *output;
  options.output_type = *pipeline.output_type(phase);
  return options;
}

// Where an output goes instead of the phase's output topic (a phase that sends work back, such
// as a check that returns it for another round). The topic must share the input's hash tag, as
// every topic of one pipeline does, so the hand-off stays one atomic step.
struct Route {
  std::string topic;
  std::string type;
};

// What handle() gets besides its input.
struct Context {
  const JsonEnvelope& envelope;      // the input as it arrived (attempts, headers, corr_id...)
  log::Logger logger;                // carries corr_id, tenant_id, msg_id and the phase
  std::stop_token stop;              // requested at the deadline or on shutdown
  std::chrono::steady_clock::time_point deadline;
  Ports ports;
  PhaseMetrics* metrics = nullptr;   // the phase's counters, or null
  std::optional<Route> route{};      // set by handle() to send this output elsewhere
};

template <class In, class Out>
class BaseOrchestrator {
 public:
  BaseOrchestrator(Ports phase_ports, PhaseOptions options)
      : ports_(phase_ports), options_(std::move(options)), logger_(log::Logger().child(options_.name)),
        metrics_(options_.metrics ? &options_.metrics->phase(options_.name) : nullptr),
        traces_(ports_.kv ? std::make_unique<TraceWriter>(*ports_.kv, TraceWriterOptions{.unwritten = metrics_ ? &metrics_->traces_unwritten : nullptr})
                          : nullptr) {
    if (options_.output_type.empty()) options_.output_type = options_.output_topic;
  }
  virtual ~BaseOrchestrator() = default;  // derived classes call stop() in theirs (handle() is theirs)
  BaseOrchestrator(const BaseOrchestrator&) = delete;
  BaseOrchestrator& operator=(const BaseOrchestrator&) = delete;

  // Subscribes and starts handling. Refused when the bus cannot hand off atomically.
  Result<void> start() {
    if (!ports_.bus) return Error{errc::invalid_argument, "phase \"" + options_.name + "\": no message bus"};
    if (!ports_.bus->capabilities().atomic_handoff) {
      return Error{errc::invalid_argument, "phase \"" + options_.name + "\": the bus cannot hand off atomically"};
    }
    ports::SubscribeOptions subscribe;
    subscribe.group = options_.name;
    subscribe.consumer = options_.consumer;
    subscribe.concurrency = options_.concurrency;
    subscribe.redelivery = options_.retry;
    auto subscription = ports_.bus->subscribe(
        options_.input_topic, [this](const JsonEnvelope& envelope, const ports::DeliveryInfo& info) { return on_message(envelope, info); },
        subscribe);
    if (!subscription) return std::move(subscription).error();
    subscription_ = std::move(*subscription);
    logger_.info("phase started", {{"input", options_.input_topic}, {"output", options_.output_topic},
                                   {"concurrency", options_.concurrency}});
    return {};
  }

  // Also writes the trace events its handlers recorded.
  void stop() {
    if (!subscription_.active()) return;
    subscription_.stop();
    if (traces_) traces_->flush();
    logger_.info("phase stopped");
  }

  // Waits (within `within`) for the trace events its handlers recorded so far to be written, and
  // answers when they were (TraceWriter::drain); the clock's epoch for a phase without a KV store.
  std::optional<std::chrono::steady_clock::time_point> drain_traces(std::chrono::milliseconds within) {
    if (!traces_) return std::chrono::steady_clock::time_point{};
    return traces_->drain(within);
  }

  const PhaseOptions& options() const noexcept { return options_; }

 protected:
  virtual Result<Out> handle(const In& input, Context& context) = 0;

 private:
  Result<void> on_message(const JsonEnvelope& envelope, const ports::DeliveryInfo& info) {
    const auto logger = logger_.for_message(envelope).with("phase", boost::json::string(options_.name));
    if (metrics_) {
      ++metrics_->received;
      if (envelope.headers.contains("replayed_from")) ++metrics_->replayed;
    }
    auto input = to_typed<In>(envelope);
    if (!input) {
      logger.error("input does not decode; dead-lettered", {{"error", input.error().message()}});
      if (metrics_) {
        ++metrics_->failed;
        ++metrics_->dead_lettered;
      }
      return permanent_failure("phase \"" + options_.name + "\": " + input.error().message());
    }

    // The handler's stop token: the subscription stopping, or the deadline passing.
    std::stop_source cancel;
    std::stop_callback forward(info.stop, [&cancel] { cancel.request_stop(); });
    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + options_.timeout;
    const auto watch = deadlines_.watch(deadline, cancel);
    Context context{envelope, logger, cancel.get_token(), deadline, ports_, metrics_};
    auto output = handle(input->payload, context);
    deadlines_.cancel(watch);
    if (metrics_) {
      metrics_->observe_handler_time(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started));
    }
    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();

    if (std::chrono::steady_clock::now() >= deadline && !info.stop.stop_requested()) {
      logger.warn("timed out", {{"attempt", envelope.attempts}, {"elapsed_ms", elapsed_ms}});
      auto timed_out = retryable_failure("phase \"" + options_.name + "\" timed out after " + std::to_string(options_.timeout.count()) + " ms");
      count_failure(timed_out, envelope);
      trace(envelope, last_attempt(timed_out, envelope) ? "dead_lettered" : "timed_out", elapsed_ms,
            {{"error", timed_out.message()}});
      return timed_out;
    }
    if (!output) {
      if (info.stop.stop_requested() && output.error() == errc::cancelled) return std::move(output).error();
      logger.warn("failed", {{"attempt", envelope.attempts}, {"elapsed_ms", elapsed_ms},
                             {"retryable", is_retryable(output.error())}, {"error", output.error().message()}});
      count_failure(output.error(), envelope);
      trace(envelope, last_attempt(output.error(), envelope) ? "dead_lettered" : "failed", elapsed_ms,
            {{"error", output.error().message()}});
      return std::move(output).error();
    }
    const Route route = context.route ? *context.route : Route{options_.output_topic, options_.output_type};
    auto next = child_envelope(envelope, route.type, boost::json::value_from(*output));
    if (auto staged = info.handoff->publish(route.topic, next); !staged) {
      logger.error("hand-off refused", {{"error", staged.error().message()}});
      return permanent_failure("phase \"" + options_.name + "\": " + staged.error().message());
    }
    const auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
    logger.info("handled", {{"attempt", envelope.attempts}, {"elapsed_ms", elapsed_ms}, {"next_msg_id", next.id},
                            {"to", route.topic}});
    trace(envelope, "handled", elapsed_ms, {{"next_msg_id", next.id}, {"to", route.topic}, {"elapsed_us", elapsed_us}});
    if (metrics_) ++metrics_->handled;
    return {};
  }

  void count_failure(const Error& failure, const JsonEnvelope& envelope) {
    if (!metrics_) return;
    ++metrics_->failed;
    if (last_attempt(failure, envelope)) ++metrics_->dead_lettered;
    else ++metrics_->retried;
  }

  // Whether this failure sends the input to the dead letters (permanent, or the last attempt).
  bool last_attempt(const Error& failure, const JsonEnvelope& envelope) const {
    const bool retryable = options_.retry.retryable ? options_.retry.retryable(failure) : is_retryable(failure);
    return !retryable || (options_.retry.max_attempts > 0 && envelope.attempts >= static_cast<std::uint32_t>(options_.retry.max_attempts));
  }

  // Best effort, and off the handler's path (TraceWriter): a trace never fails or delays the message.
  void trace(const JsonEnvelope& envelope, const char* event, std::int64_t elapsed_ms, boost::json::object extra) {
    if (!traces_) return;
    extra["event"] = event;
    extra["phase"] = options_.name;
    extra["msg_id"] = envelope.id;
    extra["attempt"] = envelope.attempts;
    extra["elapsed_ms"] = elapsed_ms;
    traces_->record(envelope.tenant_id, envelope.corr_id, std::move(extra));
  }

  Ports ports_;
  PhaseOptions options_;
  log::Logger logger_;
  PhaseMetrics* metrics_;
  std::unique_ptr<TraceWriter> traces_;  // before the subscription: its handlers record until it goes
  DeadlineWatch deadlines_;
  ports::Subscription subscription_;
};

}  // namespace baton::orchestrator
