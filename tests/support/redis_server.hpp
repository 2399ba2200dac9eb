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
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();  // stops the server and removes its directory
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
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
