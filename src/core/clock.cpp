#include "baton/core/clock.hpp"

namespace baton {

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

bool SystemClock::sleep_for(std::chrono::nanoseconds duration, std::stop_token stop) {
  if (!stop.stop_possible()) {
    std::this_thread::sleep_for(duration);
    return true;
  }
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  // wait_for with a stop token returns the predicate, which is only true once a stop is requested.
  return !wake.wait_for(lock, stop, duration, [] { return false; });
}

Clock::WallTime ManualClock::now() const {
  std::lock_guard lock(mutex_);
  return wall_ + std::chrono::duration_cast<WallTime::duration>(elapsed_);
}

Clock::SteadyTime ManualClock::steady_now() const {
  std::lock_guard lock(mutex_);
  return SteadyTime{} + std::chrono::hours{24} + elapsed_;
}

bool ManualClock::sleep_for(std::chrono::nanoseconds duration, std::stop_token stop) {
  if (stop.stop_requested()) return false;
  std::lock_guard lock(mutex_);
  elapsed_ += duration;
  slept_ += duration;
  return true;
}

void ManualClock::advance(std::chrono::nanoseconds duration) {
  std::lock_guard lock(mutex_);
  elapsed_ += duration;
}

std::chrono::nanoseconds ManualClock::slept() const {
  std::lock_guard lock(mutex_);
  return slept_;
}

}  // namespace baton
