#pragma once
// One retry policy for the whole system: exponential backoff with jitter, an attempt budget, a
// retryable-error predicate, a deadline and cancellation.
//
// The decisions live in `RetrySchedule` (no I/O, no sleeping), shared by the blocking `retry`, the
// Asio awaitable `async_retry` (retry_awaitable.hpp) and the buses' redelivery backoff.

#include <chrono>
#include <concepts>
#include <functional>
#include <optional>
#include <stop_token>
#include <type_traits>

#include "baton/core/clock.hpp"
#include "baton/core/error.hpp"
#include "baton/core/result.hpp"

namespace baton {

enum class Jitter {
  none,          // exactly the exponential delay
  proportional,  // the delay times a uniform factor in [1 - f, 1 + f] (still capped at max_delay)
  full,          // uniform in [0, delay]          (AWS "full jitter")
  equal,         // delay/2 + uniform [0, delay/2]  (AWS "equal jitter")
  decorrelated,  // uniform in [base, 3 * previous delay], capped (AWS "decorrelated jitter")
};

struct RetryPolicy {
  std::chrono::milliseconds base_delay{100};     // delay before the first retry (before jitter)
  std::chrono::milliseconds max_delay{30'000};   // no delay is ever longer than this
  int max_attempts = 5;                          // calls in all, the first included; 0 = no limit
  Jitter jitter = Jitter::full;
  double jitter_factor = 0.2;                    // the f of Jitter::proportional, in [0, 1]
  std::function<bool(const Error&)> retryable;   // empty: baton::is_retryable decides
};

// A uniform random number in [0, 1). Empty means a per-thread generator seeded from random_device.
using UniformRandom = std::function<double()>;

// The exponential delay before retry number `retry` (1 is the retry after the first failure):
// base * 2^(retry - 1), capped at max_delay, without jitter.
std::chrono::milliseconds exponential_delay(const RetryPolicy& policy, int retry) noexcept;

enum class RetryVerdict { retry, succeeded, permanent, attempts_exhausted, deadline_reached, cancelled };

const char* to_string(RetryVerdict verdict) noexcept;

struct RetryDecision {
  RetryVerdict verdict = RetryVerdict::retry;
  std::chrono::milliseconds delay{0};  // how long to wait before the next attempt (verdict retry)
};

// The state of one retry loop: how many attempts were made and the last delay (for decorrelated
// jitter). Feed it each failure; it answers retry-after-delay or give up, and why.
class RetrySchedule {
 public:
  explicit RetrySchedule(const RetryPolicy& policy, UniformRandom random = {});

  // Call after attempt number `attempts()` failed with `error`. `now` and `deadline` are steady
  // times; a retry whose delay would end past the deadline is not scheduled.
  RetryDecision on_failure(const Error& error, Clock::SteadyTime now,
                           std::optional<Clock::SteadyTime> deadline = std::nullopt);
  // The delay before retry number `retry`, with the policy's jitter. Advances decorrelated state.
  std::chrono::milliseconds next_delay(int retry);
  int attempts() const noexcept { return attempts_; }
  void record_attempt() noexcept { ++attempts_; }

 private:
  double uniform();

  RetryPolicy policy_;
  UniformRandom random_;
  int attempts_ = 0;
  std::chrono::milliseconds previous_delay_{0};
};

struct RetryOptions {
  Clock* clock = &SystemClock::instance();   // time for the deadline, and the blocking form's sleeps
  UniformRandom random;                      // jitter source
  std::stop_token stop;                      // cancellation: stops waiting and gives up
  std::optional<Clock::SteadyTime> deadline;
  // Called before each wait: the attempt that failed, its error, and the delay chosen.
  std::function<void(int attempt, const Error& error, std::chrono::milliseconds next_delay)> on_retry;
};

namespace detail {
template <class F>
decltype(auto) call_attempt(F& fn, int attempt) {
  if constexpr (std::is_invocable_v<F&, int>) {
    return fn(attempt);
  } else {
    return fn();
  }
}
// The error a retry loop returns when it gives up: the last failure, annotated with why it stopped.
Error give_up_error(Error last, RetryVerdict verdict, int attempts);
}  // namespace detail

// Calls fn() (or fn(attempt), attempt counting from 1) until it returns a value, a permanent error,
// the attempts run out, the deadline passes or `options.stop` is requested; waits between attempts
// through options.clock. fn returns Result<T>; so does retry. On giving up it returns the last error
// with why it stopped added to the detail (a cancellation becomes errc::cancelled).
template <class F>
auto retry(F fn, const RetryPolicy& policy, RetryOptions options = {})
    -> std::remove_cvref_t<decltype(detail::call_attempt(fn, 1))> {
  RetrySchedule schedule(policy, options.random);
  while (true) {
    schedule.record_attempt();
    auto result = detail::call_attempt(fn, schedule.attempts());
    if (result) return result;
    const auto decision = schedule.on_failure(result.error(), options.clock->steady_now(), options.deadline);
    if (decision.verdict == RetryVerdict::retry && options.stop.stop_requested()) {
      return detail::give_up_error(std::move(result).error(), RetryVerdict::cancelled, schedule.attempts());
    }
    if (decision.verdict != RetryVerdict::retry) {
      return detail::give_up_error(std::move(result).error(), decision.verdict, schedule.attempts());
    }
    if (options.on_retry) options.on_retry(schedule.attempts(), result.error(), decision.delay);
    if (!options.clock->sleep_for(decision.delay, options.stop)) {
      return detail::give_up_error(std::move(result).error(), RetryVerdict::cancelled, schedule.attempts());
    }
  }
}

}  // namespace baton
