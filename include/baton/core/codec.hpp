#pragma once
// The envelope's wire form: one JSON object, version 1.
//
//   {"v":1,"id":"0192...","type":"phase.plan.in","corr_id":"...","causation_id":"","tenant_id":"acme",
//    "ts":"2026-11-27T20:37:34.123Z","attempts":1,"headers":{"traceparent":"00-..."},"payload":{...}}
//
// Decoding is strict: every field is required, of its exact type and shape, and no other field is
// accepted, so a producer's typo becomes a dead letter with a reason instead of a silent default.

#include <cstddef>
#include <string>
#include <string_view>

#include "baton/core/codec_error.hpp"
#include "baton/core/envelope.hpp"
#include "baton/core/result.hpp"

namespace baton {

inline constexpr int envelope_wire_version = 1;

struct CodecLimits {
  std::size_t max_payload_bytes = 1 << 20;  // the payload's encoded size; over it is `too_large`
  std::size_t max_depth = 64;               // JSON nesting depth of the whole envelope
};

// The wire form of an envelope. Never fails; field values are not validated here (see `validate`).
std::string encode(const JsonEnvelope& envelope);

// Parses and checks the wire form. Every failure names the field and the problem; nothing is
// defaulted, nothing throws.
Result<JsonEnvelope, DecodeError> decode(std::string_view text, const CodecLimits& limits = {});

// The checks decode applies, for an envelope built in memory before it is sent: a bad id, type,
// tenant, timestamp, attempts or an oversized payload is reported exactly as decode would.
Result<void, DecodeError> validate(const JsonEnvelope& envelope, const CodecLimits& limits = {});

// validate + encode in one pass, for publishers: the payload is measured on its own only when the
// whole text could be over the limit, so the common case serialises once.
Result<std::string, DecodeError> encode_validated(const JsonEnvelope& envelope, const CodecLimits& limits = {});

}  // namespace baton
