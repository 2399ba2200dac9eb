// Runs the KV and bus contract suites against the Redis adapter, on a private redis-server that this
// process starts on a free loopback port (one per test case, so cases are independent).

#include <gtest/gtest.h>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/adapters/redis/redis_kv.hpp"
#include "contract.hpp"
#include "support/redis_server.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  using namespace baton;
  contract::register_kv_contract("Redis", [] {
    auto server = std::make_shared<test::RedisServer>(test::RedisServerOptions{.append_only = false});
    auto options = adapters::redis::parse_redis_url(server->url()).value();
    auto kv = adapters::redis::make_redis_kv(options);
    contract::KvUnderTest target;
    // The server lives as long as the store that talks to it.
    target.kv = std::shared_ptr<ports::KVStore>(kv.release(), [server](ports::KVStore* store) { delete store; });
    target.clock = &SystemClock::instance();
    target.advance = [](std::chrono::milliseconds) {};  // real time: the suite waits for expiry
    return target;
  });
  contract::register_bus_contract("Redis", [] {
    auto server = std::make_shared<test::RedisServer>(test::RedisServerOptions{.append_only = false});
    adapters::redis::RedisBusOptions options;
    options.redis = adapters::redis::parse_redis_url(server->url()).value();
    auto bus = adapters::redis::make_redis_bus(options);
    return contract::BusUnderTest{std::shared_ptr<ports::MessageBus>(bus.release(), [server](ports::MessageBus* b) { delete b; })};
  });
  return RUN_ALL_TESTS();
}
