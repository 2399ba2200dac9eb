#pragma once
// Time as a dependency, so that TTLs, timestamps and backoff sleeps can be driven by tests.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>

namespace baton {

class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Wall-clock time, for timestamps that leave the process (envelope `ts`).
  virtual WallTime now() const = 0;
  // Monotonic time, for durations, deadlines and expiry.
  virtual SteadyTime steady_now() const = 0;
  // Blocks for `duration` or until `stop` is requested. Returns false when it was stopped.
  virtual bool sleep_for(std::chrono::nanoseconds duration, std::stop_token stop = {}) = 0;
};

// The real clocks of the machine. Thread-safe; use `SystemClock::instance()` as the default.
class SystemClock final : public Clock {
 public:
  static SystemClock& instance();
  WallTime now() const override { return std::chrono::system_clock::now(); }
  SteadyTime steady_now() const override { return std::chrono::steady_clock::now(); }
  bool sleep_for(std::chrono::nanoseconds duration, std::stop_token stop = {}) override;
};

// Test double: time moves only when `advance` is called or when somebody sleeps (a sleep advances
// the clock at once by its duration). Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(WallTime start = WallTime{std::chrono::milliseconds{1'767'225'600'000}})
      : wall_(start) {}

  WallTime now() const override;
  SteadyTime steady_now() const override;
  bool sleep_for(std::chrono::nanoseconds duration, std::stop_token stop = {}) override;
  void advance(std::chrono::nanoseconds duration);
  // The sum of all sleeps so far: lets a test see the delays a retry loop chose.
  std::chrono::nanoseconds slept() const;

 private:
  mutable std::mutex mutex_;
  WallTime wall_;
  std::chrono::nanoseconds elapsed_{0};
  std::chrono::nanoseconds slept_{0};
};

}  // namespace baton
