#include <gtest/gtest.h>

#include "baton/core/retry.hpp"

namespace baton {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

RetryPolicy policy(Jitter jitter, int max_attempts = 10) {
  RetryPolicy p;
  p.base_delay = 100ms;
  p.max_delay = 30s;
  p.max_attempts = max_attempts;
  p.jitter = jitter;
  return p;
}

UniformRandom constant(double value) {
  return [value] { return value; };
}

TEST(RetrySchedule, ExponentialDoublesUpToTheCap) {
  const auto p = policy(Jitter::none);
  EXPECT_EQ(exponential_delay(p, 1), 100ms);
  EXPECT_EQ(exponential_delay(p, 2), 200ms);
  EXPECT_EQ(exponential_delay(p, 3), 400ms);
  EXPECT_EQ(exponential_delay(p, 4), 800ms);
  EXPECT_EQ(exponential_delay(p, 9), 25'600ms);
  EXPECT_EQ(exponential_delay(p, 10), 30s);
  EXPECT_EQ(exponential_delay(p, 1000), 30s) << "no overflow however many retries";
}

TEST(RetrySchedule, NoJitterIsExact) {
  RetrySchedule schedule(policy(Jitter::none), constant(0.9));
  EXPECT_EQ(schedule.next_delay(1), 100ms);
  EXPECT_EQ(schedule.next_delay(3), 400ms);
}

TEST(RetrySchedule, FullJitterSpansZeroToTheDelay) {
  EXPECT_EQ(RetrySchedule(policy(Jitter::full), constant(0.0)).next_delay(3), 0ms);
  EXPECT_EQ(RetrySchedule(policy(Jitter::full), constant(0.5)).next_delay(3), 200ms);
  EXPECT_EQ(RetrySchedule(policy(Jitter::full), constant(0.999)).next_delay(3), 399ms);
}

TEST(RetrySchedule, EqualJitterKeepsHalf) {
  EXPECT_EQ(RetrySchedule(policy(Jitter::equal), constant(0.0)).next_delay(3), 200ms);
  EXPECT_EQ(RetrySchedule(policy(Jitter::equal), constant(0.5)).next_delay(3), 300ms);
}

TEST(RetrySchedule, ProportionalJitterIsPlusMinusFactor) {
  auto p = policy(Jitter::proportional);
  p.jitter_factor = 0.2;
  EXPECT_EQ(RetrySchedule(p, constant(0.0)).next_delay(3), 320ms);
  EXPECT_EQ(RetrySchedule(p, constant(0.5)).next_delay(3), 400ms);
  EXPECT_EQ(RetrySchedule(p, constant(1.0)).next_delay(3), 480ms);
  EXPECT_EQ(RetrySchedule(p, constant(1.0)).next_delay(20), 30s) << "still capped";
}

TEST(RetrySchedule, DecorrelatedJitterGrowsFromThePreviousDelay) {
  RetrySchedule top(policy(Jitter::decorrelated), constant(1.0));
  EXPECT_EQ(top.next_delay(1), 300ms);  // [base, 3 * base]
  EXPECT_EQ(top.next_delay(2), 900ms);  // [base, 3 * 300]
  EXPECT_EQ(top.next_delay(3), 2700ms);
  RetrySchedule bottom(policy(Jitter::decorrelated), constant(0.0));
  EXPECT_EQ(bottom.next_delay(1), 100ms);
  for (int i = 0; i < 50; ++i) (void)top.next_delay(i);
  EXPECT_EQ(top.next_delay(51), 30s) << "capped";
}

TEST(RetrySchedule, GivesUpForTheRightReason) {
  const auto now = Clock::SteadyTime{} + 1h;
  auto p = policy(Jitter::none, 3);
  RetrySchedule schedule(p);
  schedule.record_attempt();
  EXPECT_EQ(schedule.on_failure(Error{errc::invalid_argument}, now).verdict, RetryVerdict::permanent);
  EXPECT_EQ(schedule.on_failure(Error{errc::timeout}, now).verdict, RetryVerdict::retry);
  schedule.record_attempt();
  schedule.record_attempt();
  EXPECT_EQ(schedule.on_failure(Error{errc::timeout}, now).verdict, RetryVerdict::attempts_exhausted);
  RetrySchedule short_deadline(p);
  short_deadline.record_attempt();
  EXPECT_EQ(short_deadline.on_failure(Error{errc::timeout}, now, now + 50ms).verdict, RetryVerdict::deadline_reached);
}

TEST(Retry, SucceedsAfterRetryableFailuresWithBackoff) {
  ManualClock clock;
  std::vector<std::pair<int, milliseconds>> retries;
  RetryOptions options;
  options.clock = &clock;
  options.on_retry = [&](int attempt, const Error& error, milliseconds delay) {
    EXPECT_EQ(error, errc::unavailable);
    retries.emplace_back(attempt, delay);
  };
  int calls = 0;
  auto result = retry([&]() -> Result<std::string> {
    if (++calls < 4) return Error{errc::unavailable, "down"};
    return std::string("up");
  }, policy(Jitter::none), options);
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, "up");
  EXPECT_EQ(calls, 4);
  const std::vector<std::pair<int, milliseconds>> expected{{1, 100ms}, {2, 200ms}, {3, 400ms}};
  EXPECT_EQ(retries, expected);
  EXPECT_EQ(clock.slept(), 700ms);
}

TEST(Retry, PermanentErrorStopsAtOnce) {
  ManualClock clock;
  int calls = 0;
  auto result = retry([&]() -> Result<int> {
    ++calls;
    return Error{errc::auth_failed, "WRONGPASS"};
  }, policy(Jitter::none), RetryOptions{.clock = &clock});
  ASSERT_FALSE(result);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.error(), errc::auth_failed);
  EXPECT_EQ(result.error().detail, "WRONGPASS (permanent error after 1 attempt)");
  EXPECT_EQ(clock.slept(), 0ms);
}

TEST(Retry, StopsWhenAttemptsRunOut) {
  ManualClock clock;
  int calls = 0;
  auto result = retry([&](int attempt) -> Result<int> {
    EXPECT_EQ(attempt, ++calls);
    return Error{errc::timeout, "no answer"};
  }, policy(Jitter::none, 4), RetryOptions{.clock = &clock});
  ASSERT_FALSE(result);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(result.error(), errc::timeout);
  EXPECT_EQ(result.error().detail, "no answer (attempts exhausted after 4 attempts)");
}

TEST(Retry, CustomPredicateDecides) {
  ManualClock clock;
  auto p = policy(Jitter::none);
  p.retryable = [](const Error& error) { return error == errc::conflict; };
  int calls = 0;
  auto result = retry([&]() -> Result<int> {
    return ++calls < 3 ? Result<int>(Error{errc::conflict}) : Result<int>(calls);
  }, p, RetryOptions{.clock = &clock});
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, 3);
}

TEST(Retry, RespectsTheDeadline) {
  ManualClock clock;
  RetryOptions options{.clock = &clock};
  options.deadline = clock.steady_now() + 1s;
  int calls = 0;
  auto result = retry([&]() -> Result<int> {
    ++calls;
    return Error{errc::unavailable};
  }, policy(Jitter::none, 0), options);
  ASSERT_FALSE(result);
  // Waits of 100 + 200 + 400 fit in a second; the next 800 would end past it.
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(clock.slept(), 700ms);
  EXPECT_NE(result.error().detail.find("deadline reached after 4 attempts"), std::string::npos) << result.error().detail;
}

TEST(Retry, CancellationEndsTheWait) {
  std::stop_source stop;
  RetryOptions options;  // the real clock: the wait must end early, not run its course
  options.stop = stop.get_token();
  auto p = policy(Jitter::none);
  p.base_delay = 10min;
  std::thread canceller([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  const auto started = std::chrono::steady_clock::now();
  auto result = retry([&]() -> Result<int> { return Error{errc::unavailable}; }, p, options);
  canceller.join();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::cancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1min);
}

TEST(Retry, AlreadyCancelledDoesNotWait) {
  ManualClock clock;
  std::stop_source stop;
  stop.request_stop();
  int calls = 0;
  auto result = retry([&]() -> Result<int> { ++calls; return Error{errc::unavailable}; }, policy(Jitter::none),
                      RetryOptions{.clock = &clock, .stop = stop.get_token()});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.error(), errc::cancelled);
  EXPECT_EQ(clock.slept(), 0ms);
}

}  // namespace
}  // namespace baton
