#include "baton/core/codec.hpp"

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>
#include <charconv>
#include <limits>

#include "baton/core/uuid.hpp"

namespace baton {
namespace {

namespace json = boost::json;

constexpr std::size_t max_header_count = 64;
constexpr std::size_t max_header_name_bytes = 128;
constexpr std::size_t max_header_value_bytes = 4096;
// Room for everything but the payload; lets decode refuse a huge text before parsing it.
constexpr std::size_t non_payload_allowance =
    4096 + max_header_count * (max_header_name_bytes + max_header_value_bytes + 8);

constexpr std::array<std::string_view, 10> wire_fields = {
    "v", "id", "type", "corr_id", "causation_id", "tenant_id", "ts", "attempts", "headers", "payload"};

const char* kind_name(const json::value& value) noexcept {
  switch (value.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64: return "integer";
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "unknown";
}

DecodeError wrong_type(std::string field, const char* expected, const json::value& got) {
  return {DecodeProblem::wrong_type, std::move(field), std::string("expected ") + expected + ", got " + kind_name(got)};
}

DecodeError invalid(std::string field, std::string reason) {
  return {DecodeProblem::invalid_value, std::move(field), std::move(reason)};
}

Result<void, DecodeError> check_meta(const EnvelopeMeta& meta) {
  if (!is_uuid_text(meta.id)) return invalid("id", "not a UUID in 8-4-4-4-12 hexadecimal form");
  if (auto problem = check_type_name(meta.type)) return invalid("type", *problem);
  if (auto problem = check_corr_id(meta.corr_id)) return invalid("corr_id", *problem);
  if (!meta.causation_id.empty()) {
    if (auto problem = check_corr_id(meta.causation_id)) return invalid("causation_id", *problem);
  }
  if (auto problem = check_tenant_id(meta.tenant_id)) return invalid("tenant_id", *problem);
  if (meta.attempts < 1) return invalid("attempts", "must be at least 1");
  if (meta.headers.size() > max_header_count) {
    return invalid("headers", "more than " + std::to_string(max_header_count) + " entries");
  }
  for (const auto& [name, value] : meta.headers) {
    if (name.empty()) return invalid("headers", "has an empty name");
    if (name.size() > max_header_name_bytes) {
      return invalid("headers", "a name is longer than " + std::to_string(max_header_name_bytes) + " bytes");
    }
    if (value.size() > max_header_value_bytes) {
      return invalid("headers." + name, "longer than " + std::to_string(max_header_value_bytes) + " bytes");
    }
  }
  return {};
}

Result<void, DecodeError> check_payload_size(const json::value& payload, std::size_t encoded_size_bound,
                                             const CodecLimits& limits) {
  // Serialising to measure is only needed when the whole text could hold an oversized payload.
  if (encoded_size_bound <= limits.max_payload_bytes) return {};
  const auto size = json::serialize(payload).size();
  if (size > limits.max_payload_bytes) {
    return DecodeError{DecodeProblem::too_large, "payload",
                       std::to_string(size) + " bytes, over the limit of " + std::to_string(limits.max_payload_bytes)};
  }
  return {};
}

Result<std::string, DecodeError> take_string(json::object& object, std::string_view field) {
  auto* value = object.if_contains(field);
  if (!value) return DecodeError{DecodeProblem::missing_field, std::string(field), "required"};
  if (!value->is_string()) return wrong_type(std::string(field), "string", *value);
  const auto& text = value->get_string();
  return std::string(text.data(), text.size());
}

}  // namespace

std::string DecodeError::message() const {
  std::string text = field.empty() ? std::string("envelope: ") : "envelope field \"" + field + "\": ";
  text += reason;
  return text;
}

const char* to_string(DecodeProblem problem) noexcept {
  switch (problem) {
    case DecodeProblem::not_json: return "not_json";
    case DecodeProblem::not_object: return "not_object";
    case DecodeProblem::missing_field: return "missing_field";
    case DecodeProblem::wrong_type: return "wrong_type";
    case DecodeProblem::invalid_value: return "invalid_value";
    case DecodeProblem::unknown_field: return "unknown_field";
    case DecodeProblem::unsupported_version: return "unsupported_version";
    case DecodeProblem::too_large: return "too_large";
  }
  return "unknown";
}

namespace {

// The envelope's text is written field by field into one string: building a json::object first
// copied the whole payload and allocated every field twice (micro-benchmark EnvelopeEncode,
// docs/BENCHMARKS.md round 10). Boost.JSON still writes every string and the payload, so
// escaping is its own; the text is the same as the serialised object's, field order included.
class EnvelopeWriter {
 public:
  explicit EnvelopeWriter(std::string& out) : out_(out) {}

  void raw(std::string_view text) { out_.append(text); }
  void string(std::string_view text) {
    serializer_.reset(json::string_view(text.data(), text.size()));
    drain();
  }
  void value(const json::value& value) {
    serializer_.reset(&value);
    drain();
  }
  void number(std::uint64_t number) {
    char digits[24];
    const auto end = std::to_chars(std::begin(digits), std::end(digits), number).ptr;
    out_.append(digits, static_cast<std::size_t>(end - digits));
  }

 private:
  void drain() {
    while (!serializer_.done()) {
      const auto used = out_.size();
      out_.resize(std::max(out_.capacity(), used + 64));
      const auto part = serializer_.read(out_.data() + used, out_.size() - used);
      out_.resize(used + part.size());
    }
  }

  std::string& out_;
  json::serializer serializer_;
};

}  // namespace

std::string encode(const JsonEnvelope& envelope) {
  std::string out;
  out.reserve(512);
  EnvelopeWriter writer(out);
  writer.raw("{\"v\":");
  writer.number(envelope_wire_version);
  for (const auto& [name, text] : {std::pair<std::string_view, std::string_view>{",\"id\":", envelope.id},
                                   {",\"type\":", envelope.type},
                                   {",\"corr_id\":", envelope.corr_id},
                                   {",\"causation_id\":", envelope.causation_id},
                                   {",\"tenant_id\":", envelope.tenant_id}}) {
    writer.raw(name);
    writer.string(text);
  }
  writer.raw(",\"ts\":");
  writer.string(format_rfc3339(envelope.ts));
  writer.raw(",\"attempts\":");
  writer.number(envelope.attempts);
  writer.raw(",\"headers\":{");
  bool first = true;
  for (const auto& [name, value] : envelope.headers) {
    if (!first) writer.raw(",");
    first = false;
    writer.string(name);
    writer.raw(":");
    writer.string(value);
  }
  writer.raw("},\"payload\":");
  writer.value(envelope.payload);
  writer.raw("}");
  return out;
}

Result<JsonEnvelope, DecodeError> decode(std::string_view text, const CodecLimits& limits) {
  if (text.size() > limits.max_payload_bytes + non_payload_allowance) {
    return DecodeError{DecodeProblem::too_large, "payload",
                       "the envelope is " + std::to_string(text.size()) + " bytes, so its payload is over the limit of " +
                           std::to_string(limits.max_payload_bytes)};
  }

  json::parse_options options;
  options.max_depth = limits.max_depth;
  boost::system::error_code parse_error;
  json::value parsed = json::parse(json::string_view(text.data(), text.size()), parse_error, {}, options);
  if (parse_error) {
    if (parse_error == json::error::too_deep) {
      return DecodeError{DecodeProblem::not_json, "",
                         "nests deeper than " + std::to_string(limits.max_depth) + " levels"};
    }
    return DecodeError{DecodeProblem::not_json, "", "not JSON: " + parse_error.message()};
  }
  if (!parsed.is_object()) {
    return DecodeError{DecodeProblem::not_object, "", std::string("expected a JSON object, got ") + kind_name(parsed)};
  }
  json::object& object = parsed.get_object();

  // The version decides what the rest means, so it is checked before anything else.
  const auto* version = object.if_contains("v");
  if (!version) return DecodeError{DecodeProblem::missing_field, "v", "required"};
  if (!version->is_int64() && !version->is_uint64()) return wrong_type("v", "an integer", *version);
  if (!(version->is_int64() && version->get_int64() == envelope_wire_version)) {
    return DecodeError{DecodeProblem::unsupported_version, "v",
                       "version " + json::serialize(*version) + " is not supported (this build reads version " +
                           std::to_string(envelope_wire_version) + ")"};
  }
  for (const auto& member : object) {
    const std::string_view key(member.key().data(), member.key().size());
    bool known = false;
    for (const auto field : wire_fields) known = known || field == key;
    if (!known) return DecodeError{DecodeProblem::unknown_field, std::string(key), "not a field of envelope version 1"};
  }

  JsonEnvelope envelope;
  for (auto [field, target] : {std::pair{"id", &envelope.id}, {"type", &envelope.type}, {"corr_id", &envelope.corr_id},
                               {"causation_id", &envelope.causation_id}, {"tenant_id", &envelope.tenant_id}}) {
    auto value = take_string(object, field);
    if (!value) return std::move(value).error();
    *target = std::move(value).value();
  }

  auto ts_text = take_string(object, "ts");
  if (!ts_text) return std::move(ts_text).error();
  const auto ts = parse_rfc3339(*ts_text);
  if (!ts) return invalid("ts", "not an RFC 3339 timestamp (like 2026-11-27T20:37:34.123Z): \"" + *ts_text + "\"");
  envelope.ts = *ts;

  const auto* attempts = object.if_contains("attempts");
  if (!attempts) return DecodeError{DecodeProblem::missing_field, "attempts", "required"};
  if (attempts->is_int64()) {
    const auto count = attempts->get_int64();
    if (count < 1) return invalid("attempts", "must be at least 1, got " + std::to_string(count));
    if (count > std::numeric_limits<std::uint32_t>::max()) return invalid("attempts", "over 4294967295");
    envelope.attempts = static_cast<std::uint32_t>(count);
  } else if (attempts->is_uint64()) {
    return invalid("attempts", "over 4294967295");
  } else {
    return wrong_type("attempts", "an integer", *attempts);
  }

  const auto* headers = object.if_contains("headers");
  if (!headers) return DecodeError{DecodeProblem::missing_field, "headers", "required"};
  if (!headers->is_object()) return wrong_type("headers", "an object of strings", *headers);
  for (const auto& header : headers->get_object()) {
    const std::string name(header.key().data(), header.key().size());
    if (!header.value().is_string()) return wrong_type("headers." + name, "string", header.value());
    const auto& value = header.value().get_string();
    envelope.headers.emplace(name, std::string(value.data(), value.size()));
  }

  auto* payload = object.if_contains("payload");
  if (!payload) return DecodeError{DecodeProblem::missing_field, "payload", "required"};
  envelope.payload = std::move(*payload);

  if (auto checked = check_meta(envelope); !checked) return std::move(checked).error();
  if (auto checked = check_payload_size(envelope.payload, text.size(), limits); !checked) {
    return std::move(checked).error();
  }
  return envelope;
}

Result<void, DecodeError> validate(const JsonEnvelope& envelope, const CodecLimits& limits) {
  if (auto checked = check_meta(envelope); !checked) return checked;
  // Without an encoded text to bound it, the payload is measured whenever the limit is finite.
  return check_payload_size(envelope.payload, std::numeric_limits<std::size_t>::max(), limits);
}

Result<std::string, DecodeError> encode_validated(const JsonEnvelope& envelope, const CodecLimits& limits) {
  if (auto checked = check_meta(envelope); !checked) return std::move(checked).error();
  std::string text = encode(envelope);
  if (auto checked = check_payload_size(envelope.payload, text.size(), limits); !checked) return std::move(checked).error();
  return text;
}

}  // namespace baton
