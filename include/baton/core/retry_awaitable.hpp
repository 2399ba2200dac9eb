#pragma once
// The Asio (C++20 coroutine) form of `retry`: the same RetrySchedule decides, an Asio steady_timer
// waits. Kept out of retry.hpp so that only code that already uses Asio pays for its headers.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "baton/core/retry.hpp"

namespace baton {

// Awaits fn() (or fn(attempt)), which returns boost::asio::awaitable<Result<T>>, under `policy`.
// Deadline decisions use options.clock; waits use an Asio timer on the caller's executor, so the wait
// ends early when the coroutine is cancelled (Asio cancellation) or when options.stop is requested
// (checked at each wake-up). Gives up exactly as the blocking form does.
template <class F>
auto async_retry(F fn, RetryPolicy policy, RetryOptions options = {})
    -> decltype(detail::call_attempt(fn, 1)) {
  using ResultType = typename decltype(detail::call_attempt(fn, 1))::value_type;
  RetrySchedule schedule(policy, options.random);
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  while (true) {
    schedule.record_attempt();
    ResultType result = co_await detail::call_attempt(fn, schedule.attempts());
    if (result) co_return result;
    const auto decision = schedule.on_failure(result.error(), options.clock->steady_now(), options.deadline);
    if (decision.verdict != RetryVerdict::retry) {
      co_return ResultType(detail::give_up_error(std::move(result).error(), decision.verdict, schedule.attempts()));
    }
    if (options.stop.stop_requested()) {
      co_return ResultType(detail::give_up_error(std::move(result).error(), RetryVerdict::cancelled, schedule.attempts()));
    }
    if (options.on_retry) options.on_retry(schedule.attempts(), result.error(), decision.delay);
    timer.expires_after(decision.delay);
    boost::system::error_code wait_error;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, wait_error));
    if (wait_error || options.stop.stop_requested()) {
      co_return ResultType(detail::give_up_error(std::move(result).error(), RetryVerdict::cancelled, schedule.attempts()));
    }
  }
}

}  // namespace baton
