#include "baton/adapters/ai/http_ai.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <random>
#include <thread>

#include "baton/core/log.hpp"
#include "rate_limiter.hpp"

namespace baton::adapters::ai {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

struct Endpoint {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;  // "<base path>/v1/messages"
};

struct HttpAnswer {
  unsigned status = 0;
  std::string body;
  std::string retry_after;
};

// A failure and, for retryable ones, how long the provider asked us to wait.
struct Failure {
  Error error;
  std::optional<std::chrono::milliseconds> retry_after;
};

Result<Endpoint> parse_base_url(const std::string& base_url, Protocol protocol) {
  const auto bad = [&](const std::string& why) { return Error{errc::invalid_argument, "ai.base_url \"" + base_url + "\": " + why}; };
  auto parsed = boost::urls::parse_uri(base_url);
  if (!parsed) return bad("not a URL (" + parsed.error().message() + ")");
  Endpoint endpoint;
  const std::string scheme(parsed->scheme());
  if (scheme != "http" && scheme != "https") return bad("the scheme must be http or https");
  endpoint.tls = scheme == "https";
  endpoint.host = std::string(parsed->encoded_host());
  if (endpoint.host.empty()) return bad("no host");
  if (parsed->has_query() || parsed->has_fragment()) return bad("no query or fragment, please");
  if (parsed->has_userinfo()) return bad("no user or password in the URL (the API key comes from secrets)");
  endpoint.port = parsed->has_port() ? std::string(parsed->port()) : (endpoint.tls ? "443" : "80");
  std::string path(parsed->encoded_path());
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.ends_with("/v1")) path.resize(path.size() - 3);  // both "…/v1" and "…" are accepted
  endpoint.path = path + (protocol == Protocol::anthropic ? "/v1/messages" : "/v1/chat/completions");
  return endpoint;
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view text) {
  double seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || seconds < 0) return std::nullopt;
  return std::chrono::milliseconds{static_cast<std::int64_t>(seconds * 1000)};
}

template <class Stream>
asio::awaitable<HttpAnswer> talk(Stream& stream, http::request<http::string_body>& request, std::size_t max_body) {
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  parser.header_limit(64 * 1024);
  co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  HttpAnswer answer;
  answer.status = parser.get().result_int();
  answer.body = std::move(parser.get().body());
  if (const auto found = parser.get().find("retry-after"); found != parser.get().end()) answer.retry_after = std::string(found->value());
  co_return answer;
}

class HttpAi final : public ports::AiApi {
 public:
  HttpAi(HttpAiOptions options, Endpoint endpoint)
      : options_(std::move(options)), endpoint_(std::move(endpoint)), tls_(asio::ssl::context::tls_client),
        limiter_(options_.requests_per_second, options_.max_concurrent) {
    if (!options_.api_key.empty()) log::register_secret(options_.api_key);
    tls_.set_verify_mode(asio::ssl::verify_peer);
    if (options_.ca_file.empty()) tls_.set_default_verify_paths();
    else tls_.load_verify_file(options_.ca_file);
  }

  Result<ports::CompletionResponse> complete(const ports::CompletionRequest& request) override {
    if (request.messages.empty()) return Error{errc::invalid_argument, provider() + ": a request needs at least one message"};
    const auto deadline = SteadyClock::now() + request.timeout;
    const std::string body = request_body(request);
    Failure last{Error{errc::timeout, provider() + ": no attempt fit in the timeout"}, std::nullopt};
    for (int attempt = 1; attempt <= std::max(1, options_.max_attempts); ++attempt) {
      if (!limiter_.acquire(deadline)) {
        return Error{errc::timeout, provider() + ": the client-side rate limit left no slot before the call's timeout"};
      }
      auto exchanged = exchange(body, deadline);
      limiter_.release();
      auto outcome = exchanged ? interpret(*exchanged) : Result<ports::CompletionResponse, Failure>(Failure{exchanged.error(), std::nullopt});
      if (outcome) return std::move(*outcome);
      last = std::move(outcome).error();
      if (!is_retryable(last.error) || attempt == options_.max_attempts) break;
      const auto wait = last.retry_after ? *last.retry_after : backoff(attempt);
      if (SteadyClock::now() + wait >= deadline) break;  // the provider's wait does not fit: say so now
      log::Logger().child("ai").warn("retrying", {{"provider", provider()}, {"attempt", attempt}, {"wait_ms", wait.count()},
                                                   {"error", last.error.message()}});
      std::this_thread::sleep_for(wait);
    }
    if (last.retry_after) last.error.detail += " (retry after " + std::to_string(last.retry_after->count()) + " ms)";
    return last.error;
  }

  std::string provider() const override { return options_.protocol == Protocol::anthropic ? "anthropic" : "openai"; }

  ports::Health health() override {
    const auto started = SteadyClock::now();
    asio::io_context io;
    tcp::socket socket(io);
    boost::system::error_code error;
    tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(endpoint_.host, endpoint_.port, error);
    if (!error) asio::connect(socket, endpoints, error);
    const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started);
    const auto where = endpoint_.host + ":" + endpoint_.port;
    if (error) return {false, latency, provider() + " at " + where + ": " + error.message()};
    return {true, latency, provider() + " at " + where + " accepts connections"};
  }

 private:
  std::string model_of(const ports::CompletionRequest& request) const {
    return request.model.empty() ? options_.default_model : request.model;
  }

  std::string request_body(const ports::CompletionRequest& request) const {
    json::array messages;
    if (options_.protocol == Protocol::openai && !request.system.empty()) {
      messages.push_back({{"role", "system"}, {"content", request.system}});
    }
    for (const auto& message : request.messages) messages.push_back({{"role", message.role}, {"content", message.content}});
    json::object body{{"model", model_of(request)}, {"max_tokens", request.max_tokens}, {"temperature", request.temperature},
                      {"messages", std::move(messages)}};
    if (options_.protocol == Protocol::anthropic && !request.system.empty()) body["system"] = request.system;
    return json::serialize(body);
  }

  std::chrono::milliseconds backoff(int attempt) const {
    thread_local std::mt19937_64 random{std::random_device{}()};
    const auto ceiling = options_.base_backoff * (1 << std::min(attempt - 1, 10));
    std::uniform_int_distribution<std::int64_t> pick(ceiling.count() / 2, ceiling.count());  // equal jitter
    return std::chrono::milliseconds{pick(random)};
  }

  std::string scrub(std::string text) const {
    if (options_.api_key.empty()) return text;
    for (auto at = text.find(options_.api_key); at != std::string::npos; at = text.find(options_.api_key, at)) {
      text.replace(at, options_.api_key.size(), "***");
    }
    return text;
  }

  // The provider's own words from an error body, or the start of the body.
  std::string provider_message(const std::string& body) const {
    boost::system::error_code error;
    const auto parsed = json::parse(body, error);
    if (!error && parsed.is_object()) {
      if (const auto* inner = parsed.get_object().if_contains("error")) {
        if (inner->is_object()) {
          if (const auto* message = inner->get_object().if_contains("message"); message && message->is_string()) {
            return scrub(std::string(message->get_string()));
          }
        }
        if (inner->is_string()) return scrub(std::string(inner->get_string()));
      }
    }
    return scrub(body.substr(0, 300));
  }

  Result<ports::CompletionResponse, Failure> interpret(const HttpAnswer& answer) const {
    const auto status = answer.status;
    const auto said = [&] { return provider() + " answered HTTP " + std::to_string(status) + ": " + provider_message(answer.body); };
    if (status == 200) {
      auto parsed = parse_completion(answer.body);
      if (!parsed) return Failure{Error{errc::unavailable, provider() + " answered HTTP 200 with a body that is not a completion: " + parsed.error().detail}, std::nullopt};
      return std::move(*parsed);
    }
    const auto wait = parse_retry_after(answer.retry_after);
    if (status == 429 || status == 529) return Failure{Error{errc::resource_exhausted, said()}, wait};
    if (status >= 500) return Failure{Error{errc::unavailable, said()}, wait};
    if (status == 401) return Failure{Error{errc::auth_failed, said()}, std::nullopt};
    if (status == 403) return Failure{Error{errc::permission_denied, said()}, std::nullopt};
    return Failure{Error{errc::invalid_argument, said()}, std::nullopt};
  }

  Result<ports::CompletionResponse> parse_completion(const std::string& body) const {
    boost::system::error_code error;
    const auto parsed = json::parse(body, error);
    if (error) return Error{errc::decode_failed, "not JSON (" + error.message() + ")"};
    ports::CompletionResponse response;
    try {
      const auto& root = parsed.as_object();
      const auto number = [](const json::object& usage, const char* name) -> std::uint64_t {
        const auto* value = usage.if_contains(name);
        return value && value->is_number() ? value->to_number<std::uint64_t>() : 0;
      };
      if (const auto* model = root.if_contains("model"); model && model->is_string()) response.model = model->get_string();
      if (options_.protocol == Protocol::anthropic) {
        for (const auto& block : root.at("content").as_array()) {
          if (block.at("type").as_string() == "text") response.text += block.at("text").as_string();
        }
        if (const auto* reason = root.if_contains("stop_reason"); reason && reason->is_string()) response.stop_reason = reason->get_string();
        if (const auto* usage = root.if_contains("usage"); usage && usage->is_object()) {
          response.usage = {number(usage->get_object(), "input_tokens"), number(usage->get_object(), "output_tokens")};
        }
      } else {
        const auto& choice = root.at("choices").as_array().at(0).as_object();
        const auto& content = choice.at("message").at("content");
        if (content.is_string()) response.text = content.get_string();
        if (const auto* reason = choice.if_contains("finish_reason"); reason && reason->is_string()) response.stop_reason = reason->get_string();
        if (const auto* usage = root.if_contains("usage"); usage && usage->is_object()) {
          response.usage = {number(usage->get_object(), "prompt_tokens"), number(usage->get_object(), "completion_tokens")};
        }
      }
    } catch (const std::exception& missing) {
      return Error{errc::decode_failed, std::string("missing or mistyped field (") + missing.what() + ")"};
    }
    return response;
  }

  // One HTTP exchange on a fresh connection, on a private io_context: every wait has the deadline.
  Result<HttpAnswer> exchange(const std::string& body, SteadyClock::time_point deadline) {
    http::request<http::string_body> request{http::verb::post, endpoint_.path, 11};
    request.set(http::field::host, endpoint_.host);
    request.set(http::field::user_agent, "baton");
    request.set(http::field::content_type, "application/json");
    request.set(http::field::accept, "application/json");
    if (options_.protocol == Protocol::anthropic) {
      if (!options_.api_key.empty()) request.set("x-api-key", options_.api_key);
      request.set("anthropic-version", options_.anthropic_version);
    } else if (!options_.api_key.empty()) {
      request.set(http::field::authorization, "Bearer " + options_.api_key);
    }
    request.keep_alive(false);  // one exchange per connection
    request.body() = body;
    request.prepare_payload();

    asio::io_context io;
    std::optional<Result<HttpAnswer>> outcome;
    asio::co_spawn(io, run(request, deadline), [&](std::exception_ptr failure, HttpAnswer answer) {
      if (!failure) {
        outcome = std::move(answer);
        return;
      }
      try {
        std::rethrow_exception(failure);
      } catch (const boost::system::system_error& error) {
        const bool timed_out = error.code() == beast::error::timeout;
        outcome = Error{timed_out ? errc::timeout : errc::unavailable,
                        provider() + " at " + endpoint_.host + ":" + endpoint_.port + ": " +
                            (timed_out ? std::string("no answer before the deadline") : error.code().message())};
      } catch (const std::exception& error) {
        outcome = Error{errc::unavailable, provider() + ": " + error.what()};
      }
    });
    io.run();
    return std::move(*outcome);
  }

  asio::awaitable<HttpAnswer> run(http::request<http::string_body>& request, SteadyClock::time_point deadline) {
    auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    const auto endpoints = co_await resolver.async_resolve(endpoint_.host, endpoint_.port, asio::use_awaitable);
    const auto connect_by = std::min(deadline, SteadyClock::now() + options_.connect_timeout);
    if (!endpoint_.tls) {
      beast::tcp_stream stream(executor);
      stream.expires_at(connect_by);
      co_await stream.async_connect(endpoints, asio::use_awaitable);
      stream.expires_at(deadline);
      co_return co_await talk(stream, request, options_.max_response_bytes);
    }
    beast::ssl_stream<beast::tcp_stream> stream(executor, tls_);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), endpoint_.host.c_str())) {
      throw boost::system::system_error(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    }
    stream.set_verify_callback(asio::ssl::host_name_verification(endpoint_.host));
    beast::get_lowest_layer(stream).expires_at(connect_by);
    co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
    beast::get_lowest_layer(stream).expires_at(deadline);
    co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    co_return co_await talk(stream, request, options_.max_response_bytes);
  }

  HttpAiOptions options_;
  Endpoint endpoint_;
  asio::ssl::context tls_;
  detail::RateLimiter limiter_;
};

}  // namespace

Result<std::unique_ptr<ports::AiApi>> make_http_ai(HttpAiOptions options) {
  auto endpoint = parse_base_url(options.base_url, options.protocol);
  if (!endpoint) return std::move(endpoint).error();
  if (options.default_model.empty()) return Error{errc::invalid_argument, "ai.model: required for an HTTP provider (the model to ask)"};
  try {
    return std::unique_ptr<ports::AiApi>(std::make_unique<HttpAi>(std::move(options), std::move(*endpoint)));
  } catch (const boost::system::system_error& error) {
    return Error{errc::invalid_argument, "ai.ca_file: " + error.code().message()};
  }
}

}  // namespace baton::adapters::ai
