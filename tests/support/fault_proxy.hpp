#pragma once
// Test double for a bad network: a TCP proxy on 127.0.0.1 in front of a local port that can add
// latency, stall (hold every byte back while connections stay open), hold back only the replies,
// hold back the requests that carry given bytes (to run something else between two round trips of
// a client), and cut (close every connection and refuse new ones for a while). Plain threads and
// sockets; loopback only.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

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
  // Holds back every chunk a client sends that contains `bytes` (matched within one chunk, as read
  // from the socket), with whatever else that connection sends after it, until released.
  void hold_requests_with(std::string bytes);
  void release_requests();
  std::size_t requests_held() const;  // chunks held so far, released or not
  void cut(std::chrono::milliseconds refuse_for);       // closes every connection now
  std::size_t connections_cut() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace baton::test
