// A consumer process for crash tests: subscribes to a topic on Redis and, for each envelope, waits
// `handler_ms` (the work) and then records its effect once per envelope id in the KV store
// ("effect:<id>" counts how often the effect happened). Killed with SIGKILL by the tests.
//
//   baton_test_bus_worker REDIS_URL TOPIC GROUP CONSUMER HANDLER_MS RECLAIM_IDLE_MS

#include <charconv>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/adapters/redis/redis_kv.hpp"
#include "baton/core/log.hpp"
#include "baton/core/once.hpp"

namespace {
volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

int number(const char* text) {
  int value = 0;
  std::from_chars(text, text + std::char_traits<char>::length(text), value);
  return value;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace baton;
  if (argc != 7) {
    std::cerr << "usage: baton_test_bus_worker REDIS_URL TOPIC GROUP CONSUMER HANDLER_MS RECLAIM_IDLE_MS\n";
    return 2;
  }
  std::signal(SIGTERM, on_signal);
  auto redis = adapters::redis::parse_redis_url(argv[1]);
  if (!redis) {
    std::cerr << redis.error().message() << "\n";
    return 2;
  }
  const auto handler_time = std::chrono::milliseconds{number(argv[5])};
  adapters::redis::RedisBusOptions bus_options;
  bus_options.redis = *redis;
  bus_options.reclaim_idle = std::chrono::milliseconds{number(argv[6])};
  bus_options.reclaim_interval = std::chrono::milliseconds{100};
  auto bus = adapters::redis::make_redis_bus(bus_options);
  auto kv = adapters::redis::make_redis_kv(*redis);

  ports::SubscribeOptions options;
  options.group = argv[3];
  options.consumer = argv[4];
  options.concurrency = 4;
  options.redelivery.base_delay = std::chrono::milliseconds{10};
  auto subscription = bus->subscribe(argv[2], [&](const JsonEnvelope& envelope, const ports::DeliveryInfo&) -> Result<void> {
    std::this_thread::sleep_for(handler_time);
    auto effect = once(*kv, "once:" + envelope.id, [&]() -> Result<std::int64_t> { return kv->incr("effect:" + envelope.id); });
    if (!effect) return effect.error();
    return {};
  }, options);
  if (!subscription) {
    std::cerr << subscription.error().message() << "\n";
    return 1;
  }
  std::cout << "ready" << std::endl;
  while (!stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds{20});
  subscription->stop();
  log::flush();
  return 0;
}
