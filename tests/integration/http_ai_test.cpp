// The HTTP AI adapter against a loopback fake server that speaks both protocols (a test double).

#include <gtest/gtest.h>
#include <netdb.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "baton/adapters/ai/http_ai.hpp"
#include "baton/core/log.hpp"
#include "support/captured_log.hpp"
#include "support/certificates.hpp"
#include "support/fake_ai_server.hpp"
#include "support/unique_id.hpp"

namespace baton::adapters::ai {
namespace {

using namespace std::chrono_literals;
using test::FakeAiAnswer;
using test::FakeAiServer;

std::unique_ptr<ports::AiApi> client(const std::string& url, Protocol protocol, HttpAiOptions options = {}) {
  options.protocol = protocol;
  options.base_url = url;
  if (options.default_model.empty()) options.default_model = "test-model";
  if (options.api_key.empty()) options.api_key = "sk-test-key-0123456789";
  options.base_backoff = 20ms;
  auto made = make_http_ai(options);
  EXPECT_TRUE(made) << made.error().message();
  return std::move(*made);
}

ports::CompletionRequest ask(const std::string& text, std::chrono::milliseconds timeout = 5'000ms) {
  ports::CompletionRequest request;
  request.system = "be brief";
  request.messages = {{"user", text}};
  request.max_tokens = 64;
  request.timeout = timeout;
  return request;
}

TEST(HttpAi, AnthropicRequestCarriesTheKeyVersionAndSystemPromptAndTheAnswerItsUsage) {
  FakeAiServer server;
  auto ai = client(server.url(), Protocol::anthropic);
  auto answer = ai->complete(ask("hello"));
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(answer->text, "echo: hello");
  EXPECT_EQ(answer->model, "fake-claude");
  EXPECT_EQ(answer->stop_reason, "end_turn");
  EXPECT_EQ(answer->usage.input_tokens, 11u);
  EXPECT_EQ(answer->usage.output_tokens, 7u);
  EXPECT_EQ(ai->provider(), "anthropic");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/v1/messages");
  EXPECT_EQ(requests[0].headers.at("x-api-key"), "sk-test-key-0123456789");
  EXPECT_EQ(requests[0].headers.at("anthropic-version"), "2023-06-01");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  const auto body = boost::json::parse(requests[0].body);
  EXPECT_EQ(body.at("model").as_string(), "test-model");
  EXPECT_EQ(body.at("system").as_string(), "be brief");
  EXPECT_EQ(body.at("max_tokens").as_int64(), 64);
  EXPECT_EQ(body.at("messages").at(0).at("role").as_string(), "user");
}

TEST(HttpAi, OpenAiCompatibleRequestPutsTheSystemPromptFirstAndUsesBearer) {
  FakeAiServer server;
  auto ai = client(server.url() + "/v1/", Protocol::openai);  // a base URL ending in /v1 is accepted too
  auto answer = ai->complete(ask("hi there"));
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(answer->text, "echo: hi there");
  EXPECT_EQ(answer->model, "fake-gpt");
  EXPECT_EQ(answer->stop_reason, "stop");
  EXPECT_EQ(answer->usage.input_tokens, 13u);
  EXPECT_EQ(answer->usage.output_tokens, 5u);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/v1/chat/completions");
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer sk-test-key-0123456789");
  EXPECT_EQ(requests[0].headers.count("x-api-key"), 0u);
  const auto body = boost::json::parse(requests[0].body);
  EXPECT_EQ(body.at("messages").at(0).at("role").as_string(), "system");
  EXPECT_EQ(body.at("messages").at(1).at("content").as_string(), "hi there");
}

TEST(HttpAi, RateLimitedAnswerIsRetriedAfterTheProvidersRetryAfter) {
  FakeAiServer server;
  server.script({.status = 429, .body = R"({"error":{"message":"slow down"}})", .headers = {{"retry-after", "0.3"}}});
  auto ai = client(server.url(), Protocol::anthropic);
  const auto started = std::chrono::steady_clock::now();
  auto answer = ai->complete(ask("again"));
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms) << "retry-after was not honoured";
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(HttpAi, OverloadedAndServerErrorsAreRetriedWithBackoff) {
  FakeAiServer server;
  server.script({.status = 529, .body = R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"});
  server.script({.status = 503, .body = "upstream down"});
  auto ai = client(server.url(), Protocol::anthropic);
  auto answer = ai->complete(ask("third time"));
  ASSERT_TRUE(answer) << answer.error().message();
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpAi, RetriesEndWithARetryableErrorThatSaysWhatTheProviderSaid) {
  FakeAiServer server;
  for (int i = 0; i < 3; ++i) server.script({.status = 529, .body = R"({"error":{"message":"Overloaded"}})"});
  auto ai = client(server.url(), Protocol::anthropic);
  auto answer = ai->complete(ask("x"));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error(), errc::resource_exhausted);
  EXPECT_TRUE(is_retryable(answer.error()));
  EXPECT_NE(answer.error().detail.find("HTTP 529: Overloaded"), std::string::npos) << answer.error().detail;
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpAi, ARetryAfterLongerThanTheTimeoutIsReportedAtOnce) {
  FakeAiServer server;
  server.script({.status = 429, .body = R"({"error":{"message":"quota"}})", .headers = {{"retry-after", "30"}}});
  auto ai = client(server.url(), Protocol::openai);
  const auto started = std::chrono::steady_clock::now();
  auto answer = ai->complete(ask("x", 1'000ms));
  ASSERT_FALSE(answer);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1'000ms);
  EXPECT_EQ(answer.error(), errc::resource_exhausted);
  EXPECT_NE(answer.error().detail.find("retry after 30000 ms"), std::string::npos) << answer.error().detail;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpAi, ClientErrorsArePermanentWithTheProvidersMessageAndNotRetried) {
  FakeAiServer server;
  server.script({.status = 400, .body = R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}})"});
  server.script({.status = 401, .body = R"({"error":{"message":"invalid x-api-key"}})"});
  server.script({.status = 403, .body = R"({"error":{"message":"not allowed"}})"});
  auto ai = client(server.url(), Protocol::anthropic);
  auto bad_request = ai->complete(ask("x"));
  ASSERT_FALSE(bad_request);
  EXPECT_EQ(bad_request.error(), errc::invalid_argument);
  EXPECT_NE(bad_request.error().detail.find("HTTP 400: max_tokens: too large"), std::string::npos) << bad_request.error().detail;
  EXPECT_EQ(ai->complete(ask("x")).error(), errc::auth_failed);
  EXPECT_EQ(ai->complete(ask("x")).error(), errc::permission_denied);
  EXPECT_EQ(server.requests().size(), 3u) << "a permanent error is not retried";
}

TEST(HttpAi, ASlowAnswerEndsInATimeoutAtTheCallsDeadline) {
  FakeAiServer server;
  server.script({.delay = 1'200ms});
  auto ai = client(server.url(), Protocol::anthropic, {.max_attempts = 1});
  const auto started = std::chrono::steady_clock::now();
  auto answer = ai->complete(ask("x", 300ms));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error(), errc::timeout) << answer.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2'000ms);
}

TEST(HttpAi, MalformedBodiesAreRetryableErrorsThatSaySo) {
  FakeAiServer server;
  server.script({.status = 200, .body = "<html>gateway</html>"});
  server.script({.status = 200, .body = R"({"choices": []})"});
  auto ai = client(server.url(), Protocol::openai, {.max_attempts = 1});
  auto not_json = ai->complete(ask("x"));
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error(), errc::unavailable);
  EXPECT_NE(not_json.error().detail.find("not a completion: not JSON"), std::string::npos) << not_json.error().detail;
  auto no_choice = ai->complete(ask("x"));
  ASSERT_FALSE(no_choice);
  EXPECT_NE(no_choice.error().detail.find("missing or mistyped field"), std::string::npos) << no_choice.error().detail;
}

TEST(HttpAi, TheApiKeyNeverReachesALogOrAnError) {
  const std::string key = "sk-secret-" + test::unique_name("k");
  std::optional<test::CapturedLog> log(std::in_place);
  FakeAiServer server;
  // A provider that echoes the key it refused, then one retryable failure that gets logged.
  server.script({.status = 500, .body = R"({"error":{"message":"upstream rejected key )" + key + R"("}})"});
  server.script({.status = 401, .body = R"({"error":{"message":"invalid key )" + key + R"("}})"});
  auto ai = client(server.url(), Protocol::anthropic, {.api_key = key});
  auto answer = ai->complete(ask("x"));
  const std::string lines = log->text();
  log.reset();
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error(), errc::auth_failed);
  EXPECT_EQ(answer.error().detail.find(key), std::string::npos) << answer.error().detail;
  EXPECT_NE(answer.error().detail.find("invalid key ***"), std::string::npos) << answer.error().detail;
  EXPECT_NE(lines.find("retrying"), std::string::npos) << "the retry should have been logged: " << lines;
  EXPECT_EQ(lines.find(key), std::string::npos) << lines;
}

TEST(HttpAi, TheClientSideLimitCapsRequestsInFlight) {
  FakeAiServer server;
  for (int i = 0; i < 6; ++i) server.script({.delay = 150ms});
  auto ai = client(server.url(), Protocol::anthropic, {.max_concurrent = 2});
  std::vector<std::thread> callers;
  std::atomic<int> succeeded{0};
  for (int i = 0; i < 6; ++i) {
    callers.emplace_back([&] {
      if (ai->complete(ask("x"))) ++succeeded;
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(succeeded, 6);
  EXPECT_LE(server.max_concurrent_seen(), 2);
}

TEST(HttpAi, TheClientSideLimitPacesRequestsPerSecond) {
  FakeAiServer server;
  auto ai = client(server.url(), Protocol::openai, {.requests_per_second = 5});
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(ai->complete(ask("x")));
  // A burst of 5 passes at once; the next 3 wait 200 ms each (a lower bound, never an upper one).
  EXPECT_GE(std::chrono::steady_clock::now() - started, 550ms);
}

// Whether the name resolves here: a bare debootstrap root has no /etc/hosts, and then it does not.
bool localhost_resolves() {
  addrinfo* found = nullptr;
  const int failed = ::getaddrinfo("localhost", nullptr, nullptr, &found);
  if (found != nullptr) ::freeaddrinfo(found);
  return failed == 0;
}

TEST(HttpAi, HttpsVerifiesTheServerAgainstTheConfiguredCa) {
  const auto folder = std::filesystem::temp_directory_path() / test::unique_name("ai-tls");
  std::filesystem::create_directories(folder);
  test::make_certificates(folder);
  {
    FakeAiServer server(folder);
    auto trusted = client(server.url(), Protocol::anthropic, {.ca_file = (folder / "ca.crt").string()});
    auto answer = trusted->complete(ask("over tls"));
    ASSERT_TRUE(answer) << answer.error().message();
    EXPECT_EQ(answer->text, "echo: over tls");

    if (localhost_resolves()) {
      auto by_name = client("https://localhost:" + std::to_string(server.port()), Protocol::anthropic,
                            {.ca_file = (folder / "ca.crt").string()});
      EXPECT_TRUE(by_name->complete(ask("x"))) << "the certificate names localhost too";
    } else {
      std::cout << "\"localhost\" does not resolve on this machine (no /etc/hosts?): the check by name is left out\n";
    }

    auto untrusted = client(server.url(), Protocol::anthropic, {.ca_file = (folder / "other-ca.crt").string(), .max_attempts = 1});
    auto refused = untrusted->complete(ask("x"));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), errc::unavailable);
    EXPECT_NE(refused.error().detail.find("certificate verify failed"), std::string::npos) << refused.error().detail;
  }
  std::filesystem::remove_all(folder);
}

TEST(HttpAi, AnUnreachableServerIsUnavailable) {
  std::uint16_t closed_port = 0;
  {
    FakeAiServer server;
    closed_port = server.port();
  }
  auto ai = client("http://127.0.0.1:" + std::to_string(closed_port), Protocol::anthropic, {.max_attempts = 2});
  auto answer = ai->complete(ask("x", 2'000ms));
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error(), errc::unavailable);
  EXPECT_FALSE(ai->health().ok);
}

TEST(HttpAi, BadOptionsAreRefusedWithTheirKey) {
  auto ftp = make_http_ai({.base_url = "ftp://127.0.0.1/", .default_model = "m"});
  ASSERT_FALSE(ftp);
  EXPECT_NE(ftp.error().detail.find("ai.base_url \"ftp://127.0.0.1/\": the scheme must be http or https"), std::string::npos);
  auto no_model = make_http_ai({.base_url = "http://127.0.0.1:9"});
  ASSERT_FALSE(no_model);
  EXPECT_NE(no_model.error().detail.find("ai.model"), std::string::npos);
  auto with_password = make_http_ai({.base_url = "http://user:pw@127.0.0.1:9", .default_model = "m"});
  ASSERT_FALSE(with_password);
}

}  // namespace
}  // namespace baton::adapters::ai
