#include "baton/app/local_redis.hpp"

#include "baton/app/process_lifetime.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace baton::app {
namespace {

// Asks the kernel for a free loopback port. Another process could take it before redis binds it;
// start() then fails readiness and tries a new port.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("could not find a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// A socket connected to 127.0.0.1:port, or -1.
int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool answers_ping(std::uint16_t port) {
  const int fd = connect_loopback(port);
  if (fd < 0) return false;
  bool ok = false;
  const char ping[] = "*1\r\n$4\r\nPING\r\n";
  if (::write(fd, ping, sizeof ping - 1) == static_cast<ssize_t>(sizeof ping - 1)) {
    std::array<char, 64> reply{};
    timeval timeout{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const auto got = ::read(fd, reply.data(), reply.size());
    // +PONG, or -NOAUTH when a password is required: either way the server is up (but not -LOADING).
    ok = got > 0 && (reply[0] == '+' || reply[0] == '-') &&
         !std::string_view(reply.data(), static_cast<std::size_t>(got)).starts_with("-LOADING");
  }
  ::close(fd);
  return ok;
}

// Connects only: a TLS server cannot be pinged in plain text.
bool accepts_connections(std::uint16_t port) {
  const int fd = connect_loopback(port);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

}  // namespace

std::string LocalRedisServer::url() const {
  if (options_.tls) return "rediss://127.0.0.1:" + std::to_string(port_) + "?ca_file=" + file("ca.crt").string();
  return "redis://127.0.0.1:" + std::to_string(port_);
}

LocalRedisServer::LocalRedisServer(LocalRedisOptions options) : options_(std::move(options)) {
  auto folder = make_scratch_folder(std::filesystem::temp_directory_path(), "baton-redis-");
  if (!folder) throw std::runtime_error(folder.error().message());
  directory_ = *folder;
  if (options_.prepare) options_.prepare(directory_);
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    start();
    try {
      wait_until_ready();
      return;
    } catch (const std::exception&) {
      stop();
    }
  }
  throw std::runtime_error("redis-server did not start (is it installed? scripts/install-deps.sh)");
}

LocalRedisServer::~LocalRedisServer() {
  stop();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
  forget_scratch_folder(directory_.string());
}

void LocalRedisServer::start() {
  std::vector<std::string> arguments = {
      "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir", directory_.string(),
      "--save", "", "--appendonly", options_.append_only ? "yes" : "no", "--appendfsync", options_.appendfsync,
      "--daemonize", "no", "--protected-mode", "yes", "--logfile", (directory_ / "redis.log").string()};
  if (options_.tls) {
    // The port found free is used for TLS; the plain port is off.
    arguments[2] = "0";
    for (const auto& argument :
         {std::string("--tls-port"), std::to_string(port_), std::string("--tls-cert-file"), file("server.crt").string(),
          std::string("--tls-key-file"), file("server.key").string(), std::string("--tls-ca-cert-file"),
          file("ca.crt").string(), std::string("--tls-auth-clients"),
          std::string(options_.tls_client_certificates ? "yes" : "no")}) {
      arguments.push_back(argument);
    }
  }
  arguments.insert(arguments.end(), options_.extra_arguments.begin(), options_.extra_arguments.end());
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    die_with_parent(parent);
    // The parent may block SIGINT/SIGTERM for sigwait; the child must not inherit that mask.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // A session of its own, as a server run as its own service has: where the kernel schedules
    // by autogroup (/proc/sys/kernel/sched_autogroup_enabled, 1 on the machine measured), a child
    // left in our session shares one CPU share with all of our threads, and a busy bench starved
    // the Redis it measured (docs/BENCHMARKS.md, round 10). It still dies with us (above).
    ::setsid();
    ::execvp("redis-server", argv.data());
    std::perror("execvp redis-server");
    ::_exit(127);
  }
}

void LocalRedisServer::wait_until_ready() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start");
    }
    if (options_.tls ? accepts_connections(port_) : answers_ping(port_)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  throw std::runtime_error("redis-server did not answer within 10 s");
}

void LocalRedisServer::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void LocalRedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void LocalRedisServer::restart() {
  stop();
  start();
  wait_until_ready();
}

std::string LocalRedisServer::cli(const std::vector<std::string>& arguments) const {
  std::string command = "redis-cli -h 127.0.0.1 -p " + std::to_string(port_);
  if (options_.tls) {
    command += " --tls --cacert " + file("ca.crt").string();
    if (options_.tls_client_certificates) command += " --cert " + file("client.crt").string() + " --key " + file("client.key").string();
  }
  for (const auto& argument : arguments) command += " '" + argument + "'";
  command += " 2>&1";
  std::string output;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::array<char, 4096> chunk{};
    while (const auto got = std::fread(chunk.data(), 1, chunk.size(), pipe)) output.append(chunk.data(), got);
    ::pclose(pipe);
  }
  return output;
}

}  // namespace baton::app
