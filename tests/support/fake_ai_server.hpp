#pragma once
// Test double: a loopback HTTP(S) server that speaks the Anthropic Messages API (POST /v1/messages)
// and the OpenAI-compatible chat completions API (POST /v1/chat/completions). By default it answers
// every request with a completion echoing the last user message; a test can script the next answers
// (an error status with retry-after, a slow answer, a malformed body) and reads back every request.

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace baton::test {

struct FakeAiRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct FakeAiAnswer {
  unsigned status = 200;
  std::string body;                          // empty with 200: a well-formed completion for the protocol
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds delay{0};        // before answering
};

class FakeAiServer {
 public:
  // With `certificates` (a folder made by make_certificates): HTTPS with server.crt/server.key.
  explicit FakeAiServer(std::optional<std::filesystem::path> certificates = std::nullopt);
  ~FakeAiServer();
  FakeAiServer(const FakeAiServer&) = delete;
  FakeAiServer& operator=(const FakeAiServer&) = delete;

  std::uint16_t port() const noexcept;
  std::string url() const;  // http(s)://127.0.0.1:<port>

  void script(FakeAiAnswer answer);               // answers the next request (queued, in order)
  std::vector<FakeAiRequest> requests() const;    // every request so far
  int max_concurrent_seen() const;                // most requests being answered at once

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace baton::test
