#include "baton/ports/bus_checks.hpp"

namespace baton::ports {
namespace {

constexpr std::string_view dead_letter_suffix = ".dlq";

Error invalid(std::string_view operation, std::string_view topic, const std::string& why) {
  return {errc::invalid_argument, std::string(operation) + " \"" + std::string(topic) + "\": " + why};
}

}  // namespace

std::optional<Error> check_topic(std::string_view topic) {
  if (auto problem = check_type_name(topic)) return invalid("topic", topic, *problem);
  if (topic.ends_with(dead_letter_suffix)) return invalid("topic", topic, "the suffix .dlq is reserved for dead letters");
  return std::nullopt;
}

std::optional<Error> check_publish(std::string_view topic, const PublishOptions& options,
                                   const BusCapabilities& capabilities) {
  if (auto bad = check_topic(topic)) return bad;
  if (options.delivery == Delivery::ephemeral && !capabilities.ephemeral) {
    return invalid("publish to", topic, "this bus does not support ephemeral delivery");
  }
  if (!options.mirror_to_stream.empty()) {
    if (!capabilities.mirror_to_stream) return invalid("publish to", topic, "this bus does not support mirror_to_stream");
    if (options.delivery == Delivery::durable) {
      return invalid("publish to", topic, "mirror_to_stream applies to ephemeral publishes only");
    }
    if (auto bad = check_topic(options.mirror_to_stream)) return bad;
  }
  return std::nullopt;
}

Result<std::vector<std::string>> encode_for_publish(std::string_view topic, std::span<const JsonEnvelope> envelopes,
                                                    const CodecLimits& limits) {
  std::vector<std::string> bodies;
  bodies.reserve(envelopes.size());
  for (const auto& envelope : envelopes) {
    auto body = encode_validated(envelope, limits);
    if (!body) {
      const auto& problem = body.error();
      return Error{problem.problem == DecodeProblem::too_large ? errc::too_large : errc::invalid_argument,
                   "publish to \"" + std::string(topic) + "\": " + problem.message()};
    }
    bodies.push_back(std::move(body).value());
  }
  return bodies;
}

std::optional<Error> check_subscribe(std::string_view topic, const Handler& handler, const SubscribeOptions& options,
                                     const BusCapabilities& capabilities) {
  if (auto bad = check_topic(topic)) return bad;
  if (!handler) return invalid("subscribe", topic, "no handler");
  if (options.concurrency < 1 || options.concurrency > 1024) {
    return invalid("subscribe", topic, "concurrency must be 1-1024, got " + std::to_string(options.concurrency));
  }
  if (options.delivery == Delivery::ephemeral) {
    if (!capabilities.ephemeral) return invalid("subscribe", topic, "this bus does not support ephemeral delivery");
    return std::nullopt;
  }
  if (options.group.empty()) return invalid("subscribe", topic, "a durable subscription needs a group");
  if (auto problem = check_type_name(options.group)) {
    return invalid("subscribe", topic, "group \"" + options.group + "\" " + *problem);
  }
  if (options.redelivery.max_attempts < 0) return invalid("subscribe", topic, "redelivery.max_attempts must be >= 0");
  return std::nullopt;
}

Result<void> StagedHandOff::publish(std::string_view topic, const JsonEnvelope& envelope) {
  if (auto bad = check_topic(topic)) return *bad;
  if (accepts_) {
    if (auto bad = accepts_(topic)) return *bad;
  }
  auto body = encode_for_publish(topic, std::span<const JsonEnvelope>(&envelope, 1), limits_);
  if (!body) return std::move(body).error();
  outputs_.push_back(Output{std::string(topic), std::move(body->front())});
  return {};
}

Result<void> invoke_handler(const Handler& handler, const JsonEnvelope& envelope, const DeliveryInfo& info) {
  try {
    return handler(envelope, info);
  } catch (const std::exception& failure) {
    return retryable_failure(std::string("handler threw: ") + failure.what());
  } catch (...) {
    return retryable_failure("handler threw a non-standard exception");
  }
}

}  // namespace baton::ports
