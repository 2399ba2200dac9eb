#include "support/fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

namespace baton::test {

struct FaultProxy::State {
  int listener = -1;
  std::uint16_t port = 0;
  std::uint16_t target = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> latency_ms{0};
  std::atomic<bool> stalled{false};
  std::atomic<bool> replies_held{false};
  std::atomic<std::int64_t> refuse_until_ms{0};
  std::atomic<std::size_t> cut_count{0};
  std::atomic<bool> holding_requests{false};
  std::string held_bytes;  // guarded by mutex
  std::atomic<std::size_t> held_count{0};
  std::atomic<std::uint64_t> generation{0};  // a cut ends every pump of an older generation
  std::mutex mutex;
  std::vector<std::thread> threads;
  std::vector<int> sockets;

  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  int connect_target() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(target);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  bool carries_held_bytes(std::string_view chunk) {
    std::lock_guard lock(mutex);
    return chunk.find(held_bytes) != std::string_view::npos;
  }

  // Copies from one socket to the other until either closes, a cut, or the proxy stops. `replies`:
  // this pump carries the server's answers.
  void pump(int from, int to, std::uint64_t born, bool replies) {
    char buffer[65536];
    const auto held = [&] { return stalled || (replies && replies_held); };
    while (!stopping && generation == born) {
      if (held()) {
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
        continue;
      }
      pollfd readable{from, POLLIN, 0};
      if (::poll(&readable, 1, 20) <= 0) continue;
      const auto got = ::recv(from, buffer, sizeof buffer, 0);
      if (got <= 0) break;
      if (const auto delay = latency_ms.load(); delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds{delay});
      if (!replies && holding_requests && carries_held_bytes(std::string_view(buffer, static_cast<std::size_t>(got)))) {
        ++held_count;
        while (holding_requests && !stopping && generation == born) std::this_thread::sleep_for(std::chrono::milliseconds{5});
      }
      while (held() && !stopping && generation == born) std::this_thread::sleep_for(std::chrono::milliseconds{5});
      if (generation != born) break;
      std::size_t sent = 0;
      while (sent < static_cast<std::size_t>(got)) {
        const auto n = ::send(to, buffer + sent, static_cast<std::size_t>(got) - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<std::size_t>(n);
      }
    }
    ::shutdown(from, SHUT_RDWR);
    ::shutdown(to, SHUT_RDWR);
  }

  void accept_loop() {
    while (!stopping) {
      pollfd readable{listener, POLLIN, 0};
      if (::poll(&readable, 1, 50) <= 0) continue;
      const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      if (now_ms() < refuse_until_ms) {
        ::close(client);
        continue;
      }
      const int server = connect_target();
      if (server < 0) {
        ::close(client);
        continue;
      }
      std::lock_guard lock(mutex);
      sockets.push_back(client);
      sockets.push_back(server);
      const auto born = generation.load();
      threads.emplace_back([this, client, server, born] { pump(client, server, born, false); });
      threads.emplace_back([this, client, server, born] { pump(server, client, born, true); });
    }
  }
};

FaultProxy::FaultProxy(std::uint16_t target_port) : state_(std::make_shared<State>()) {
  state_->target = target_port;
  state_->listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(state_->listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(state_->listener, 64) != 0 ||
      ::getsockname(state_->listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("fault proxy: cannot listen on loopback");
  }
  state_->port = ntohs(address.sin_port);
  std::lock_guard lock(state_->mutex);
  state_->threads.emplace_back([state = state_] { state->accept_loop(); });
}

FaultProxy::~FaultProxy() {
  state_->stopping = true;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_->mutex);
    for (const int fd : state_->sockets) ::shutdown(fd, SHUT_RDWR);
    threads.swap(state_->threads);
  }
  for (auto& thread : threads) thread.join();
  for (const int fd : state_->sockets) ::close(fd);
  ::close(state_->listener);
}

std::uint16_t FaultProxy::port() const noexcept { return state_->port; }
void FaultProxy::set_latency(std::chrono::milliseconds latency) { state_->latency_ms = latency.count(); }
void FaultProxy::stall(bool on) { state_->stalled = on; }
void FaultProxy::hold_replies(bool on) { state_->replies_held = on; }
std::size_t FaultProxy::connections_cut() const noexcept { return state_->cut_count; }
std::size_t FaultProxy::requests_held() const { return state_->held_count; }

void FaultProxy::hold_requests_with(std::string bytes) {
  {
    std::lock_guard lock(state_->mutex);
    state_->held_bytes = std::move(bytes);
  }
  state_->holding_requests = true;
}

void FaultProxy::release_requests() { state_->holding_requests = false; }

void FaultProxy::cut(std::chrono::milliseconds refuse_for) {
  state_->refuse_until_ms = State::now_ms() + refuse_for.count();
  std::lock_guard lock(state_->mutex);
  ++state_->generation;
  for (const int fd : state_->sockets) {
    if (::shutdown(fd, SHUT_RDWR) == 0) ++state_->cut_count;
  }
}

}  // namespace baton::test
