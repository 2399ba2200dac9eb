#include "support/fake_ai_server.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <atomic>
#include <thread>

namespace baton::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

std::string last_user_message(const std::string& body) {
  try {
    const auto parsed = json::parse(body);
    const auto& messages = parsed.at("messages").as_array();
    return std::string(messages.back().at("content").as_string());
  } catch (const std::exception&) {
    return "";
  }
}

std::string completion_body(const std::string& target, const std::string& request_body) {
  const auto text = "echo: " + last_user_message(request_body);
  if (target.ends_with("/v1/messages")) {
    return json::serialize(json::object{{"id", "msg_fake"}, {"type", "message"}, {"role", "assistant"}, {"model", "fake-claude"},
                                        {"content", json::array{json::object{{"type", "text"}, {"text", text}}}},
                                        {"stop_reason", "end_turn"},
                                        {"usage", json::object{{"input_tokens", 11}, {"output_tokens", 7}}}});
  }
  return json::serialize(json::object{
      {"id", "chatcmpl-fake"}, {"object", "chat.completion"}, {"model", "fake-gpt"},
      {"choices", json::array{json::object{{"index", 0}, {"message", json::object{{"role", "assistant"}, {"content", text}}},
                                           {"finish_reason", "stop"}}}},
      {"usage", json::object{{"prompt_tokens", 13}, {"completion_tokens", 5}, {"total_tokens", 18}}}});
}

}  // namespace

struct FakeAiServer::State {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::optional<asio::ssl::context> tls;
  std::uint16_t port = 0;
  std::thread accepting;
  std::atomic<bool> stopping{false};
  mutable std::mutex mutex;
  std::deque<FakeAiAnswer> scripted;
  std::vector<FakeAiRequest> requests;
  std::vector<std::thread> connections;
  int in_flight = 0;
  int max_in_flight = 0;

  template <class Stream>
  void serve(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      boost::system::error_code error;
      http::read(stream, buffer, request, error);
      if (error) return;
      FakeAiRequest seen{std::string(request.method_string()), std::string(request.target()), {}, request.body()};
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        seen.headers[name] = std::string(field.value());
      }
      FakeAiAnswer answer;
      {
        std::lock_guard lock(mutex);
        requests.push_back(seen);
        if (!scripted.empty()) {
          answer = scripted.front();
          scripted.pop_front();
        }
        max_in_flight = std::max(max_in_flight, ++in_flight);
      }
      if (answer.delay.count() > 0) std::this_thread::sleep_for(answer.delay);
      http::response<http::string_body> response{static_cast<http::status>(answer.status), request.version()};
      response.set(http::field::content_type, "application/json");
      for (const auto& [name, value] : answer.headers) response.set(name, value);
      const bool known = seen.target.ends_with("/v1/messages") || seen.target.ends_with("/v1/chat/completions");
      if (answer.status == 200 && answer.body.empty()) {
        if (known) {
          response.body() = completion_body(seen.target, seen.body);
        } else {
          response.result(http::status::not_found);
          response.body() = R"({"error": {"message": "no such endpoint"}})";
        }
      } else {
        response.body() = answer.body;
      }
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      http::write(stream, response, error);
      {
        std::lock_guard lock(mutex);
        --in_flight;
      }
      if (error || !request.keep_alive()) return;
    }
  }

  void handle(tcp::socket socket) {
    if (!tls) {
      serve(socket);
      boost::system::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls);
    boost::system::error_code error;
    stream.handshake(asio::ssl::stream_base::server, error);
    if (error) return;
    serve(stream);
    stream.shutdown(error);
  }
};

FakeAiServer::FakeAiServer(std::optional<std::filesystem::path> certificates) : state_(std::make_shared<State>()) {
  if (certificates) {
    state_->tls.emplace(asio::ssl::context::tls_server);
    state_->tls->use_certificate_chain_file((*certificates / "server.crt").string());
    state_->tls->use_private_key_file((*certificates / "server.key").string(), asio::ssl::context::pem);
  }
  const tcp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
  state_->acceptor.open(loopback.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(loopback);
  state_->acceptor.listen();
  state_->port = state_->acceptor.local_endpoint().port();
  state_->accepting = std::thread([state = state_] {
    while (!state->stopping) {
      boost::system::error_code error;
      tcp::socket socket(state->io);
      state->acceptor.accept(socket, error);
      if (error || state->stopping) return;
      std::lock_guard lock(state->mutex);
      state->connections.emplace_back([state, connection = std::move(socket)]() mutable { state->handle(std::move(connection)); });
    }
  });
}

FakeAiServer::~FakeAiServer() {
  state_->stopping = true;
  {  // wakes the blocking accept
    boost::system::error_code ignored;
    tcp::socket poke(state_->io);
    poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), state_->port), ignored);
  }
  state_->accepting.join();
  std::vector<std::thread> connections;
  {
    std::lock_guard lock(state_->mutex);
    connections.swap(state_->connections);
  }
  for (auto& connection : connections) connection.join();
}

std::uint16_t FakeAiServer::port() const noexcept { return state_->port; }

std::string FakeAiServer::url() const {
  return std::string(state_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(state_->port);
}

void FakeAiServer::script(FakeAiAnswer answer) {
  std::lock_guard lock(state_->mutex);
  state_->scripted.push_back(std::move(answer));
}

std::vector<FakeAiRequest> FakeAiServer::requests() const {
  std::lock_guard lock(state_->mutex);
  return state_->requests;
}

int FakeAiServer::max_concurrent_seen() const {
  std::lock_guard lock(state_->mutex);
  return state_->max_in_flight;
}

}  // namespace baton::test
