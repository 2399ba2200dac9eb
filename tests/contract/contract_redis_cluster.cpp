// Runs the KV and bus contract suites against the Redis adapters on a one-node Redis Cluster: a
// private redis-server with cluster mode on that owns every slot. Cluster mode refuses what a
// sharded deployment could not do (CROSSSLOT: a script, transaction or multi-key command whose
// keys hash to different slots; SELECT of another database), so every case passing here says that
// each of the adapters' steps stays within one slot, as docs/REDIS-KEYS.md promises.
//
// A cluster node takes about two seconds after its start to say it is up, so all cases share one
// server (their topics and keys are unique) and run in one process: one ctest entry.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/adapters/redis/redis_kv.hpp"
#include "contract.hpp"
#include "support/redis_server.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  using namespace baton;
  // Owned by main alone, so that it stops before the process's statics go (the factories live in
  // GoogleTest's registry until exit, and the server's folder is in a static registry).
  auto server = std::make_unique<test::RedisServer>(test::one_node_cluster_options());
  if (const auto failed = test::serve_every_slot(*server)) {
    std::fprintf(stderr, "no one-node cluster: %s\n", failed->c_str());
    return 1;
  }
  const auto options = adapters::redis::parse_redis_url(server->url()).value();
  contract::register_kv_contract("RedisCluster", [options] {
    contract::KvUnderTest target;
    target.kv = adapters::redis::make_redis_kv(options);
    target.clock = &SystemClock::instance();
    target.advance = [](std::chrono::milliseconds) {};  // real time: the suite waits for expiry
    return target;
  });
  contract::register_bus_contract("RedisCluster", [options] {
    adapters::redis::RedisBusOptions bus_options;
    bus_options.redis = options;
    return contract::BusUnderTest{adapters::redis::make_redis_bus(bus_options)};
  });
  const int failed = RUN_ALL_TESTS();
  // Whatever the cases saw, the server must not have refused anything for crossing slots.
  const auto errors = server->cli({"INFO", "errorstats"});
  if (errors.find("CROSSSLOT") != std::string::npos) {
    std::fprintf(stderr, "the server refused commands for crossing slots:\n%s\n", errors.c_str());
    return 1;
  }
  return failed;
}
