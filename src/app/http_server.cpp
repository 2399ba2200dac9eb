#include "baton/app/http_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace baton::app {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

http::response<http::string_body> respond(const HttpRoutes& routes, const http::request<http::string_body>& request) {
  http::response<http::string_body> response{http::status::ok, request.version()};
  response.set(http::field::server, "baton");
  response.keep_alive(request.keep_alive());
  const auto text = [&](http::status status, std::string body, const char* type = "text/plain; charset=utf-8") {
    response.result(status);
    response.set(http::field::content_type, type);
    response.body() = std::move(body);
  };
  const std::string target(request.target());
  if (request.method() != http::verb::get) {
    text(http::status::method_not_allowed, "only GET\n");
  } else if (target == "/metrics") {
    text(http::status::ok, routes.metrics ? routes.metrics() : std::string(), "text/plain; version=0.0.4; charset=utf-8");
  } else if (target == "/healthz") {
    const bool ok = !routes.healthy || routes.healthy();
    text(ok ? http::status::ok : http::status::service_unavailable, ok ? "ok\n" : "unhealthy\n");
  } else if (target == "/readyz") {
    const bool ok = !routes.ready || routes.ready();
    text(ok ? http::status::ok : http::status::service_unavailable, ok ? "ready\n" : "not ready\n");
  } else {
    text(http::status::not_found, "not found\n");
  }
  response.prepare_payload();
  return response;
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  HttpRoutes routes;
  std::thread thread;

  asio::awaitable<void> serve(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    boost::system::error_code error;
    while (true) {
      http::request<http::string_body> request;
      request.body().reserve(0);
      co_await http::async_read(socket, buffer, request, asio::redirect_error(asio::use_awaitable, error));
      if (error) break;  // closed, or not HTTP: drop the connection
      auto response = respond(routes, request);
      co_await http::async_write(socket, response, asio::redirect_error(asio::use_awaitable, error));
      if (error || !response.keep_alive()) break;
    }
    socket.shutdown(tcp::socket::shutdown_both, error);
  }

  asio::awaitable<void> accept() {
    while (true) {
      boost::system::error_code error;
      auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, error));
      if (error) co_return;  // closed
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& address, std::uint16_t port, HttpRoutes routes) {
  auto impl = std::make_unique<Impl>();
  impl->routes = std::move(routes);
  boost::system::error_code error;
  const auto ip = asio::ip::make_address(address, error);
  if (error) return Error{errc::invalid_argument, "http address \"" + address + "\": " + error.message()};
  const tcp::endpoint endpoint(ip, port);
  impl->acceptor.open(endpoint.protocol(), error);
  if (!error) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) impl->acceptor.bind(endpoint, error);
  if (!error) impl->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) return Error{errc::unavailable, "http " + address + ":" + std::to_string(port) + ": " + error.message()};
  asio::co_spawn(impl->io, impl->accept(), asio::detached);
  auto* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  asio::post(impl_->io, [this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::uint16_t HttpServer::port() const noexcept { return impl_->acceptor.local_endpoint().port(); }

}  // namespace baton::app
