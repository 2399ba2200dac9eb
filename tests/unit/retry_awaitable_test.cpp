#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "baton/core/retry_awaitable.hpp"

namespace baton {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

RetryPolicy quick_policy(int max_attempts) {
  RetryPolicy policy;
  policy.base_delay = 1ms;
  policy.max_delay = 5ms;
  policy.max_attempts = max_attempts;
  policy.jitter = Jitter::none;
  return policy;
}

TEST(AsyncRetry, SameScheduleAsTheBlockingForm) {
  asio::io_context io;
  int calls = 0;
  std::vector<std::chrono::milliseconds> delays;
  RetryOptions options;
  options.on_retry = [&](int, const Error&, std::chrono::milliseconds delay) { delays.push_back(delay); };
  auto attempt = [&]() -> asio::awaitable<Result<int>> {
    if (++calls < 3) co_return Result<int>(Error{errc::unavailable, "down"});
    co_return Result<int>(calls);
  };
  auto future = asio::co_spawn(io, async_retry(attempt, quick_policy(5), options), asio::use_future);
  io.run();
  auto result = future.get();
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(*result, 3);
  EXPECT_EQ(delays, (std::vector<std::chrono::milliseconds>{1ms, 2ms}));
}

TEST(AsyncRetry, GivesUpLikeTheBlockingForm) {
  asio::io_context io;
  int calls = 0;
  auto attempt = [&](int n) -> asio::awaitable<Result<int>> {
    EXPECT_EQ(n, calls + 1);
    ++calls;
    co_return Result<int>(Error{errc::timeout, "slow"});
  };
  auto future = asio::co_spawn(io, async_retry(attempt, quick_policy(3)), asio::use_future);
  io.run();
  auto result = future.get();
  ASSERT_FALSE(result);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(result.error().detail, "slow (attempts exhausted after 3 attempts)");
}

TEST(AsyncRetry, StopTokenCancels) {
  asio::io_context io;
  std::stop_source stop;
  RetryOptions options;
  options.stop = stop.get_token();
  int calls = 0;
  auto attempt = [&]() -> asio::awaitable<Result<int>> {
    if (++calls == 2) stop.request_stop();
    co_return Result<int>(Error{errc::unavailable});
  };
  auto future = asio::co_spawn(io, async_retry(attempt, quick_policy(10), options), asio::use_future);
  io.run();
  auto result = future.get();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(result.error(), errc::cancelled);
}

}  // namespace
}  // namespace baton
