#pragma once
// Test double for a bad network: a TCP proxy on 127.0.0.1 in front of a local port that can add
// latency, stall (hold every byte back while connections stay open), hold back only the replies,
// and cut (close every connection and refuse new ones for a while). Plain threads and sockets;
// loopback only.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace baton::test {

class FaultProxy {
 public:
  explicit FaultProxy(std::uint16_t target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::uint16_t port() const noexcept;
  void set_latency(std::chrono::milliseconds latency);  // before each chunk, each way
  void stall(bool on);
  void hold_replies(bool on);  // requests pass, the server's answers are held back (a cut drops them)
  void cut(std::chrono::milliseconds refuse_for);       // closes every connection now
  std::size_t connections_cut() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace baton::test
