#pragma once
// Collects what handlers saw, from any thread, and lets a test wait for a condition on it with a
// deadline instead of sleeping.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "baton/core/envelope.hpp"

namespace baton::test {

class Recorder {
 public:
  void add(const JsonEnvelope& envelope) {
    std::lock_guard lock(mutex_);
    seen_.push_back(envelope);
    changed_.notify_all();
  }

  // Waits until `condition(seen)` holds or the timeout passes; returns whether it held.
  bool wait_until(const std::function<bool(const std::vector<JsonEnvelope>&)>& condition,
                  std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return condition(seen_); });
  }

  bool wait_for_count(std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
    return wait_until([count](const auto& seen) { return seen.size() >= count; }, timeout);
  }

  std::vector<JsonEnvelope> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return seen_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<JsonEnvelope> seen_;
};

// Polls `condition` until it holds or the timeout passes: for state that has no notification.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  return condition();
}

}  // namespace baton::test
