#pragma once
// A private redis-server: a free loopback port, its own temporary folder, started and stopped by
// PID (the demo's broker, and every Redis test's). Only 127.0.0.1 is ever used. Throws
// std::runtime_error when redis-server cannot be started.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace baton::app {

struct LocalRedisOptions {
  bool append_only = true;                    // AOF on, so a restart keeps what was acknowledged
  std::string appendfsync = "always";         // "always" or "everysec"
  std::vector<std::string> extra_arguments;   // e.g. {"--requirepass", "secret"}
  bool tls = false;                           // TLS only (no plain port); certificates in directory()
  bool tls_client_certificates = false;       // with tls: clients must present a certificate
  // Called with the new folder before the first start (a TLS server's certificates go there).
  std::function<void(const std::filesystem::path& directory)> prepare;
};

class LocalRedisServer {
 public:
  explicit LocalRedisServer(LocalRedisOptions options = {});
  ~LocalRedisServer();  // stops the server and removes its folder
  LocalRedisServer(const LocalRedisServer&) = delete;
  LocalRedisServer& operator=(const LocalRedisServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // redis:// or, for a TLS server, rediss:// with the CA file ca.crt of directory().
  std::string url() const;
  std::filesystem::path file(const std::string& name) const { return directory_ / name; }
  const std::filesystem::path& directory() const noexcept { return directory_; }
  pid_t pid() const noexcept { return pid_; }

  void kill9();     // SIGKILL, as a crash would
  void stop();      // SIGTERM and wait
  void restart();   // start again on the same port and folder (the AOF is replayed)

  // Runs redis-cli against the server and returns its output (for set-up and inspection only).
  std::string cli(const std::vector<std::string>& arguments) const;

 private:
  void start();
  void wait_until_ready();

  LocalRedisOptions options_;
  std::filesystem::path directory_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace baton::app
