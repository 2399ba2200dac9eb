#pragma once
// A private redis-server for a test: a free loopback port, its own temporary directory, started and
// stopped by PID. Only 127.0.0.1 is ever used.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace baton::test {

struct RedisServerOptions {
  bool append_only = true;                    // AOF on, so a restart keeps what was acknowledged
  std::string appendfsync = "always";         // "always" or "everysec"
  std::vector<std::string> extra_arguments;   // e.g. {"--requirepass", "secret"}
  bool tls = false;                           // TLS only (no plain port), certificates made by openssl
  bool tls_client_certificates = false;       // with tls: clients must present a certificate
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();  // stops the server and removes its directory
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // redis:// or, for a TLS server, rediss:// with the CA that signed the server's certificate.
  std::string url() const;
  // With tls: the certificate files in directory() (ca.crt signs server.crt and client.crt;
  // other-ca.crt signs nothing the server uses).
  std::filesystem::path file(const std::string& name) const { return directory_ / name; }
  const std::filesystem::path& directory() const noexcept { return directory_; }
  pid_t pid() const noexcept { return pid_; }

  void kill9();     // SIGKILL, as a crash would
  void stop();      // SIGTERM and wait
  void restart();   // start again on the same port and directory (the AOF is replayed)

  // Runs redis-cli against the server and returns its output (for test set-up only).
  std::string cli(const std::vector<std::string>& arguments) const;

 private:
  void start();
  void wait_until_ready();

  RedisServerOptions options_;
  std::filesystem::path directory_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace baton::test
