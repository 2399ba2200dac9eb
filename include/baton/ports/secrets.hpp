#pragma once
// Secrets: named secret values (API keys, passwords).
//
// Contract: thread-safe. A missing secret is errc::not_found naming it. Adapters register every
// value they return with the logger's redaction (baton::register_secret) so it never reaches a log.

#include <string>
#include <string_view>

#include "baton/core/result.hpp"

namespace baton::ports {

class Secrets {
 public:
  virtual ~Secrets() = default;
  virtual Result<std::string> get(std::string_view name) = 0;
};

}  // namespace baton::ports
