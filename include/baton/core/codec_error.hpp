#pragma once
// What went wrong when bytes did not decode as an envelope: the field and the problem.

#include <string>

#include "baton/core/error.hpp"

namespace baton {

enum class DecodeProblem {
  not_json,             // the text is not JSON at all (or nests too deep)
  not_object,           // JSON, but not an object
  missing_field,        // a required field is absent
  wrong_type,           // a field has the wrong JSON type, or the payload does not convert
  invalid_value,        // right type, unacceptable value (bad UUID, bad timestamp, empty type...)
  unknown_field,        // a field this version does not define
  unsupported_version,  // "v" is not a version this build reads
  too_large,            // the payload is over the configured limit
};

struct DecodeError {
  DecodeProblem problem;
  std::string field;   // the envelope field at fault ("attempts", "headers.x"), empty for the whole text
  std::string reason;  // what is wrong with it

  // `envelope field "attempts": expected an unsigned integer, got string`, or
  // `envelope: not JSON: ...` when no field is at fault.
  std::string message() const;
  // As an Error (errc::decode_failed) for code that only speaks Error: permanent, never retried.
  Error to_error() const { return {errc::decode_failed, message()}; }
};

const char* to_string(DecodeProblem problem) noexcept;

}  // namespace baton
