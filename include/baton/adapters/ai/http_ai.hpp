#pragma once
// AiApi over HTTP(S): the Anthropic Messages API (POST <base>/v1/messages, x-api-key,
// anthropic-version) or the OpenAI-compatible chat completions API (POST <base>/v1/chat/completions,
// Authorization: Bearer; spoken by OpenAI and by local servers such as llama.cpp, Ollama and vLLM).
//
// - https:// verifies the server's certificate (system CAs, or ca_file) and its host name.
// - Timeouts: connect_timeout per connection, and the request's own timeout for the whole call,
//   retries and waits included.
// - 429, 529, 5xx, connection failures and unreadable 200 bodies are retryable: tried again here up
//   to max_attempts with exponential backoff, honouring retry-after when the provider sends it and
//   the call's time allows; the last failure is returned as errc::resource_exhausted (429, 529) or
//   errc::unavailable / errc::timeout, with "retry after N ms" in the detail when known.
// - 401 is errc::auth_failed, 403 errc::permission_denied, other 4xx errc::invalid_argument: all
//   permanent, with the provider's own error message.
// - A client-side limit per provider object: requests per second (a token bucket, bursts up to one
//   second's worth) and requests in flight at once; a call waits for both within its timeout.
// - The API key is registered with the logger's redaction and scrubbed from provider messages.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "baton/core/result.hpp"
#include "baton/ports/ai_api.hpp"

namespace baton::adapters::ai {

enum class Protocol { anthropic, openai };

struct HttpAiOptions {
  Protocol protocol = Protocol::anthropic;
  std::string base_url;                      // "https://api.anthropic.com", "http://127.0.0.1:8080/v1"
  std::string api_key;                       // may be empty for local servers that need none
  std::string default_model;                 // used when a request names none
  std::string anthropic_version = "2023-06-01";
  std::string ca_file;                       // empty: the system's trusted CAs
  std::chrono::milliseconds connect_timeout{10'000};
  int max_attempts = 3;                      // per call, for retryable failures
  std::chrono::milliseconds base_backoff{500};
  double requests_per_second = 0;            // 0: no rate limit
  int max_concurrent = 8;
  std::size_t max_response_bytes = 8 * 1024 * 1024;
};

// errc::invalid_argument when the base URL is not http(s)://host[:port][/path] or no model is named.
Result<std::unique_ptr<ports::AiApi>> make_http_ai(HttpAiOptions options);

}  // namespace baton::adapters::ai
