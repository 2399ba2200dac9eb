#pragma once
// AiApi: one completion from a language model. Adapters: HTTP providers, and an offline one.
//
// Contract: thread-safe; blocks until the provider answered or `timeout` passed. Errors:
// errc::resource_exhausted (rate limited, overloaded; retryable, `retry_after` in the detail),
// errc::unavailable / errc::timeout (retryable), errc::invalid_argument (the provider refused the
// request: permanent, with the provider's message), errc::auth_failed (permanent).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/result.hpp"
#include "baton/ports/health.hpp"

namespace baton::ports {

struct AiMessage {
  std::string role;     // "user" or "assistant"
  std::string content;
};

struct CompletionRequest {
  std::string model;                        // provider's model name; empty = the adapter's default
  std::string system;                       // system prompt, may be empty
  std::vector<AiMessage> messages;          // the conversation so far, oldest first
  int max_tokens = 1024;
  double temperature = 0.0;
  std::chrono::milliseconds timeout{60'000};  // for the whole call
};

struct TokenUsage {
  std::uint64_t input_tokens = 0;
  std::uint64_t output_tokens = 0;
};

struct CompletionResponse {
  std::string text;         // the model's answer
  std::string model;        // the model that answered
  std::string stop_reason;  // provider's reason ("end_turn", "max_tokens", "stop", ...)
  TokenUsage usage;
};

// The answer formats the reference pipeline asks for, named on a line "baton-format: <name>" of the
// system prompt, so that a provider without a model (the offline one) can answer in kind.
inline constexpr std::string_view plan_format = "plan/v1";    // {"summary","steps":[..],"files":[{"path","purpose"}]}
inline constexpr std::string_view files_format = "files/v1";  // {"files":[{"path","content"}]}

class AiApi {
 public:
  virtual ~AiApi() = default;
  virtual Result<CompletionResponse> complete(const CompletionRequest& request) = 0;
  // "anthropic", "openai-compatible", "offline" ...: logged with every call.
  virtual std::string provider() const = 0;
  virtual Health health() = 0;
};

}  // namespace baton::ports
