#pragma once
// The Envelope every message travels in, its factories, and typed payloads.
//
// An envelope is made once (`make_envelope`), re-sent with one more attempt (`retry_envelope`), or
// gives rise to the next message of the same story (`child_envelope`: same correlation and tenant,
// causation pointing at the parent). Payloads are JSON; `Envelope<T>` holds a user type that converts
// to and from JSON through Boost.JSON's `tag_invoke` (value_from / value_to).

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "baton/core/clock.hpp"
#include "baton/core/codec_error.hpp"
#include "baton/core/result.hpp"
#include "baton/core/time.hpp"

namespace baton {

using Headers = std::map<std::string, std::string, std::less<>>;

inline constexpr std::string_view default_tenant_id = "default";
inline constexpr std::string_view traceparent_header = "traceparent";

// Everything of an envelope but its payload. Shared by typed and untyped envelopes.
struct EnvelopeMeta {
  std::string id;            // UUIDv7 text; stays the same across retries of one message
  std::string type;          // dotted name, e.g. "phase.plan.in"
  std::string corr_id;       // the story this message belongs to; the first envelope's id by default
  std::string causation_id;  // id of the envelope this one was made from; empty for a first message
  std::string tenant_id;     // whose data this is; also the key prefix an ACL can match
  Timestamp ts{};            // when the message (not this attempt) was created, UTC, milliseconds
  std::uint32_t attempts = 1;  // 1 for the first delivery attempt, +1 per retry
  Headers headers;           // free-form string metadata; `traceparent` lives here
};

template <class Payload = boost::json::value>
struct Envelope : EnvelopeMeta {
  Payload payload{};
};

using JsonEnvelope = Envelope<boost::json::value>;

struct EnvelopeOptions {
  std::string corr_id;                             // empty: this envelope starts a new story
  std::string tenant_id{default_tenant_id};
  Headers headers;
  const Clock* clock = &SystemClock::instance();  // source of `ts` and of the id's time bits
};

// Validation of the text fields. Each returns a description of the problem, or nullopt when fine.
// Types: dotted segments of [A-Za-z0-9_-], at most 128 characters. Tenants: [A-Za-z0-9_-]{1,64}
// (they become key prefixes and ACL patterns, so no ':' '{' '}' '*'). Correlation ids: 1-128 of
// [A-Za-z0-9._:-].
std::optional<std::string> check_type_name(std::string_view type);
std::optional<std::string> check_tenant_id(std::string_view tenant_id);
std::optional<std::string> check_corr_id(std::string_view corr_id);

namespace detail {
// Builds the metadata of a new envelope; throws std::invalid_argument naming the bad field.
EnvelopeMeta new_meta(std::string type, EnvelopeOptions options);
EnvelopeMeta child_meta(const EnvelopeMeta& parent, std::string type, const Clock& clock);
}  // namespace detail

// A new envelope: fresh UUIDv7 id, ts = now, attempts = 1. A bad type, tenant or correlation id is a
// programming error here and throws std::invalid_argument naming it (validate user input first with
// the check_* functions).
template <class T>
Envelope<T> make_envelope(std::string type, T payload, EnvelopeOptions options = {}) {
  Envelope<T> envelope{detail::new_meta(std::move(type), std::move(options))};
  envelope.payload = std::move(payload);
  return envelope;
}

// The same message, one attempt later: same id and everything else, attempts + 1.
template <class T>
Envelope<T> retry_envelope(const Envelope<T>& envelope) {
  Envelope<T> next = envelope;
  ++next.attempts;
  return next;
}

// The next message of the same story: new id, same corr_id and tenant_id, causation_id = parent id,
// attempts = 1. Headers are inherited (the trace context goes along).
template <class T, class ParentPayload>
Envelope<T> child_envelope(const Envelope<ParentPayload>& parent, std::string type, T payload,
                           const Clock& clock = SystemClock::instance()) {
  Envelope<T> child{detail::child_meta(parent, std::move(type), clock)};
  child.payload = std::move(payload);
  return child;
}

// Typed -> JSON payload, through value_from (tag_invoke for user types).
template <class T>
JsonEnvelope to_untyped(const Envelope<T>& envelope) {
  JsonEnvelope out{static_cast<const EnvelopeMeta&>(envelope)};
  out.payload = boost::json::value_from(envelope.payload);
  return out;
}

// JSON -> typed payload, through value_to. A payload of the wrong shape is a DecodeError on field
// "payload" with the converter's own message, never an exception.
template <class T>
Result<Envelope<T>, DecodeError> to_typed(const JsonEnvelope& envelope) {
  Envelope<T> out{static_cast<const EnvelopeMeta&>(envelope)};
  try {
    out.payload = boost::json::value_to<T>(envelope.payload);
  } catch (const std::exception& conversion_error) {
    return DecodeError{DecodeProblem::wrong_type, "payload",
                       std::string("does not convert to the handler's type: ") + conversion_error.what()};
  }
  return out;
}

}  // namespace baton
