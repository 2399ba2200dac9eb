#pragma once
// A client-side limit: a token bucket for requests per second (bursts up to one second's worth) and
// a cap on requests in flight. No I/O; waits on a condition variable until a deadline.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace baton::adapters::ai::detail {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter(double per_second, int max_in_flight)
      : per_second_(per_second), capacity_(std::max(1.0, per_second)), tokens_(capacity_), max_in_flight_(std::max(1, max_in_flight)),
        refilled_(Clock::now()) {}

  // Takes a slot and a token, waiting until `deadline` at most. False when the deadline came first.
  bool acquire(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    for (;;) {
      refill(Clock::now());
      const bool slot = in_flight_ < max_in_flight_;
      const bool token = per_second_ <= 0 || tokens_ >= 1.0;
      if (slot && token) {
        ++in_flight_;
        if (per_second_ > 0) tokens_ -= 1.0;
        return true;
      }
      auto wake = deadline;
      if (slot && !token) {
        const auto until_token = std::chrono::duration<double>((1.0 - tokens_) / per_second_);
        wake = std::min(deadline, Clock::now() + std::chrono::duration_cast<Clock::duration>(until_token) + std::chrono::microseconds{50});
      }
      if (Clock::now() >= deadline) return false;
      changed_.wait_until(lock, wake);
    }
  }

  void release() {
    {
      std::lock_guard lock(mutex_);
      --in_flight_;
    }
    changed_.notify_one();
  }

 private:
  void refill(Clock::time_point now) {
    if (per_second_ > 0) {
      tokens_ = std::min(capacity_, tokens_ + std::chrono::duration<double>(now - refilled_).count() * per_second_);
    }
    refilled_ = now;
  }

  const double per_second_;
  const double capacity_;
  double tokens_;
  const int max_in_flight_;
  int in_flight_ = 0;
  Clock::time_point refilled_;
  std::mutex mutex_;
  std::condition_variable changed_;
};

}  // namespace baton::adapters::ai::detail
