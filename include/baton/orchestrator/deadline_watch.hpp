#pragma once
// One thread that requests stop on each registered stop source when its deadline passes, so that a
// handler past its time is cancelled through its stop token without a thread per call.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

namespace baton::orchestrator {

class DeadlineWatch {
 public:
  using Time = std::chrono::steady_clock::time_point;

  DeadlineWatch();
  ~DeadlineWatch();
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;

  // Requests stop on `source` at `deadline` unless cancelled first. The source must outlive the
  // registration (cancel it before the source goes).
  std::uint64_t watch(Time deadline, std::stop_source source);
  void cancel(std::uint64_t registration);

 private:
  void run(std::stop_token stop);

  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::multimap<Time, std::pair<std::uint64_t, std::stop_source>> pending_;
  std::uint64_t next_ = 1;
  std::jthread thread_;
};

}  // namespace baton::orchestrator
