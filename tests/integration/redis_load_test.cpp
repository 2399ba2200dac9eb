// A bounded load test (not timed): 50k messages through the Redis bus with 4 consumers in two
// processes' worth of subscriptions, each message handled exactly once. Speed is measured by
// `baton bench`, never here.

#include <gtest/gtest.h>

#include <atomic>

#include "baton/adapters/redis/redis_baseline.hpp"
#include "baton/adapters/redis/redis_bus.hpp"
#include "support/recorder.hpp"
#include "support/redis_server.hpp"
#include "support/unique_id.hpp"

namespace baton::adapters::redis {
namespace {

using namespace std::chrono_literals;

TEST(RedisLoad, FiftyThousandMessagesAreEachHandledExactlyOnce) {
  test::RedisServer server({.append_only = false});
  RedisBusOptions options;
  options.redis = parse_redis_url(server.url()).value();
  options.redis.request_timeout = 10s;
  auto publisher = make_redis_bus(options);
  auto first = make_redis_bus(options);
  auto second = make_redis_bus(options);

  constexpr std::size_t total = 50'000;
  const std::string topic = test::unique_name("load") + ".jobs";
  std::vector<std::atomic<int>> handled(total);
  std::atomic<std::size_t> distinct{0};
  std::atomic<std::size_t> unexpected{0};
  const auto handler = [&](const JsonEnvelope& envelope, const ports::DeliveryInfo&) -> Result<void> {
    const auto* index = envelope.payload.as_object().if_contains("n");
    if (!index || !index->is_int64() || index->get_int64() < 0 || static_cast<std::size_t>(index->get_int64()) >= total) {
      ++unexpected;
      return {};
    }
    if (handled[static_cast<std::size_t>(index->get_int64())]++ == 0) ++distinct;
    return {};
  };
  // Two buses (two connections each, as two worker processes would have), 2 consumers each.
  ports::SubscribeOptions subscribe;
  subscribe.group = "load";
  subscribe.concurrency = 2;
  subscribe.consumer = "a";
  auto a = first->subscribe(topic, handler, subscribe);
  subscribe.consumer = "b";
  auto b = second->subscribe(topic, handler, subscribe);
  ASSERT_TRUE(a && b);

  std::vector<JsonEnvelope> batch;
  for (std::size_t n = 0; n < total; ++n) {
    batch.push_back(make_envelope(topic, boost::json::value{{"n", n}, {"pad", std::string(200, 'x')}}));
    if (batch.size() == 500 || n + 1 == total) {
      ASSERT_TRUE(publisher->publish_batch(topic, batch));
      batch.clear();
    }
  }
  ASSERT_TRUE(test::eventually([&] { return distinct.load() == total; }, 300s)) << distinct.load() << " of " << total << " handled";
  // Whatever would be delivered twice has had its chance once every entry is acked.
  ASSERT_TRUE(test::eventually([&] {
    auto stats = publisher->topic_stats(topic);
    return stats && !stats->groups.empty() && stats->groups[0].pending == 0 && stats->groups[0].lag == 0;
  }, 60s)) << "entries left pending or unread";
  a->stop();
  b->stop();
  std::size_t twice = 0;
  for (const auto& count : handled) twice += count.load() > 1;
  EXPECT_EQ(twice, 0u) << "messages handled more than once";
  EXPECT_EQ(unexpected.load(), 0u);
  auto stats = publisher->topic_stats(topic);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dead_letters, 0u);
}

// `baton bench`'s latency floor: every entry published at the pace is timed on its way to a
// reader blocked in XREADGROUP, and the stream is gone afterwards.
TEST(RedisLoad, TheLatencyFloorTimesEveryEntryOnItsWayToAReader) {
  test::RedisServer server({.append_only = false});
  const auto options = parse_redis_url(server.url()).value();
  const std::string key = "baton:{" + test::unique_name("floor") + "}:floor";
  const auto started = std::chrono::steady_clock::now();
  auto floor = time_paced_xadd_to_reader(options, key, 600, std::string(256, 'x'), 2000);
  ASSERT_TRUE(floor) << floor.error().message();
  EXPECT_EQ(floor->size(), 600u);
  for (const auto micros : *floor) {
    EXPECT_GE(micros, 0);
    EXPECT_LT(micros, 10'000'000);
  }
  // Paced: 600 entries at 2,000 per second take at least 0.3 s to publish (two per millisecond).
  EXPECT_GE(std::chrono::steady_clock::now() - started, 299ms);
  EXPECT_EQ(server.cli({"EXISTS", key}), "0\n");

  const auto no_rate = time_paced_xadd_to_reader(options, key, 10, "x", 0);
  ASSERT_FALSE(no_rate);
  EXPECT_EQ(no_rate.error(), errc::invalid_argument);

  server.stop();
  auto short_timeout = options;
  short_timeout.request_timeout = 300ms;
  const auto gone = time_paced_xadd_to_reader(short_timeout, key, 10, "x", 1000);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(is_retryable(gone.error())) << gone.error().message();
}

// `baton bench`'s server CPU figures: the reading grows with the server's work.
TEST(RedisLoad, TheServersCpuTimeGrowsWithItsWork) {
  test::RedisServer server({.append_only = false});
  const auto options = parse_redis_url(server.url()).value();
  const auto before = server_cpu_seconds(options);
  ASSERT_TRUE(before) << before.error().message();
  const std::string key = "baton:{" + test::unique_name("cpu") + "}:cpu";
  ASSERT_TRUE(time_pipelined_xadd(options, key, 50'000, std::string(256, 'x')));
  const auto after = server_cpu_seconds(options);
  ASSERT_TRUE(after) << after.error().message();
  // 50,000 XADDs take the server tens of milliseconds here; its clock ticks in microseconds.
  EXPECT_GT(*after - *before, 0.005) << *before << " -> " << *after;

  server.stop();
  auto short_timeout = options;
  short_timeout.request_timeout = 300ms;
  const auto gone = server_cpu_seconds(short_timeout);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(is_retryable(gone.error())) << gone.error().message();
}

}  // namespace
}  // namespace baton::adapters::redis
