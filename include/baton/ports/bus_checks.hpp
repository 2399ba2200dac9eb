#pragma once
// The checks every MessageBus adapter makes the same way, so that every adapter refuses the same
// bad input with the same words (the contract suite relies on it).

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/codec.hpp"
#include "baton/ports/message_bus.hpp"

namespace baton::ports {

// A topic name: dotted [A-Za-z0-9_-] segments, not ending in the reserved ".dlq".
std::optional<Error> check_topic(std::string_view topic);

// The topic, and publish options the adapter supports.
std::optional<Error> check_publish(std::string_view topic, const PublishOptions& options,
                                   const BusCapabilities& capabilities);

// Every envelope checked by the codec's rules and encoded, in order. errc::invalid_argument, or
// errc::too_large for an oversized payload; the detail names the topic and the field.
Result<std::vector<std::string>> encode_for_publish(std::string_view topic, std::span<const JsonEnvelope> envelopes,
                                                    const CodecLimits& limits);

// Subscribe options: a handler, a supported delivery mode, concurrency 1-1024, and for durable
// subscriptions a valid group and a non-negative attempt budget.
std::optional<Error> check_subscribe(std::string_view topic, const Handler& handler, const SubscribeOptions& options,
                                     const BusCapabilities& capabilities);

// The HandOff the adapters give their handlers: checks and encodes each staged message at once
// (`accepts` adds the adapter's own rule, for example the same hash slot), keeps them in order.
class StagedHandOff final : public HandOff {
 public:
  struct Output {
    std::string topic;
    std::string body;  // the encoded envelope
  };
  using TopicRule = std::function<std::optional<Error>(std::string_view topic)>;

  StagedHandOff(CodecLimits limits, TopicRule accepts) : limits_(limits), accepts_(std::move(accepts)) {}
  Result<void> publish(std::string_view topic, const JsonEnvelope& envelope) override;
  const std::vector<Output>& outputs() const noexcept { return outputs_; }

 private:
  CodecLimits limits_;
  TopicRule accepts_;
  std::vector<Output> outputs_;
};

// Calls the handler; an exception that escapes it becomes a retryable failure with its text.
Result<void> invoke_handler(const Handler& handler, const JsonEnvelope& envelope, const DeliveryInfo& info);

}  // namespace baton::ports
