#pragma once
// The worker's small HTTP face (Beast): GET /metrics (Prometheus text), /healthz (the process and
// its ports answer), /readyz (it is taking work). Anything else is 404; any method but GET is 405.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "baton/core/result.hpp"

namespace baton::app {

struct HttpRoutes {
  std::function<std::string()> metrics;  // the /metrics body
  std::function<bool()> healthy;         // /healthz: 200 when true, 503 otherwise
  std::function<bool()> ready;           // /readyz: 200 when true, 503 otherwise
};

class HttpServer {
 public:
  // Listens on address:port (port 0 picks a free one) and serves on a thread of its own.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& address, std::uint16_t port, HttpRoutes routes);
  ~HttpServer();
  std::uint16_t port() const noexcept;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::app
