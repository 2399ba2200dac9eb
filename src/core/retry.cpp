#include "baton/core/retry.hpp"

#include <algorithm>
#include <random>

namespace baton {
namespace {

double thread_uniform() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

std::chrono::milliseconds scaled(std::chrono::milliseconds delay, double factor) {
  return std::chrono::milliseconds{static_cast<std::int64_t>(static_cast<double>(delay.count()) * factor)};
}

}  // namespace

std::chrono::milliseconds exponential_delay(const RetryPolicy& policy, int retry) noexcept {
  if (retry < 1) retry = 1;
  const auto cap = std::max(policy.max_delay, std::chrono::milliseconds{0});
  auto delay = std::max(policy.base_delay, std::chrono::milliseconds{0});
  // Double until the cap, never past it, so no shift can overflow however many retries there are.
  for (int i = 1; i < retry && delay < cap; ++i) delay = delay > cap / 2 ? cap : delay * 2;
  return std::min(delay, cap);
}

const char* to_string(RetryVerdict verdict) noexcept {
  switch (verdict) {
    case RetryVerdict::retry: return "retry";
    case RetryVerdict::succeeded: return "succeeded";
    case RetryVerdict::permanent: return "permanent error";
    case RetryVerdict::attempts_exhausted: return "attempts exhausted";
    case RetryVerdict::deadline_reached: return "deadline reached";
    case RetryVerdict::cancelled: return "cancelled";
  }
  return "unknown";
}

RetrySchedule::RetrySchedule(const RetryPolicy& policy, UniformRandom random)
    : policy_(policy), random_(std::move(random)) {}

double RetrySchedule::uniform() {
  const double value = random_ ? random_() : thread_uniform();
  return std::clamp(value, 0.0, 1.0);
}

std::chrono::milliseconds RetrySchedule::next_delay(int retry) {
  const auto exponential = exponential_delay(policy_, retry);
  const auto cap = policy_.max_delay;
  std::chrono::milliseconds delay{0};
  switch (policy_.jitter) {
    case Jitter::none:
      delay = exponential;
      break;
    case Jitter::proportional: {
      const double f = std::clamp(policy_.jitter_factor, 0.0, 1.0);
      delay = std::min(scaled(exponential, 1.0 - f + 2.0 * f * uniform()), cap);
      break;
    }
    case Jitter::full:
      delay = scaled(exponential, uniform());
      break;
    case Jitter::equal:
      delay = exponential / 2 + scaled(exponential - exponential / 2, uniform());
      break;
    case Jitter::decorrelated: {
      const auto low = policy_.base_delay;
      const auto previous = previous_delay_.count() > 0 ? previous_delay_ : low;
      const auto high = std::max(low, previous * 3);
      delay = std::min(low + scaled(high - low, uniform()), cap);
      break;
    }
  }
  previous_delay_ = delay;
  return delay;
}

RetryDecision RetrySchedule::on_failure(const Error& error, Clock::SteadyTime now,
                                        std::optional<Clock::SteadyTime> deadline) {
  const bool retryable = policy_.retryable ? policy_.retryable(error) : is_retryable(error);
  if (!retryable) return {RetryVerdict::permanent, {}};
  if (policy_.max_attempts > 0 && attempts_ >= policy_.max_attempts) return {RetryVerdict::attempts_exhausted, {}};
  const auto delay = next_delay(attempts_);
  if (deadline && now + delay >= *deadline) return {RetryVerdict::deadline_reached, {}};
  return {RetryVerdict::retry, delay};
}

namespace detail {

Error give_up_error(Error last, RetryVerdict verdict, int attempts) {
  std::string why = std::string(to_string(verdict)) + " after " + std::to_string(attempts) +
                    (attempts == 1 ? " attempt" : " attempts");
  if (verdict == RetryVerdict::cancelled) {
    return {errc::cancelled, why + "; last error: " + last.message()};
  }
  last.detail = last.detail.empty() ? "(" + why + ")" : last.detail + " (" + why + ")";
  return last;
}

}  // namespace detail
}  // namespace baton
