// Runs the KV and bus contract suites against the in-memory adapters.

#include <gtest/gtest.h>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/memory/memory_kv.hpp"
#include "contract.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  using namespace baton;
  contract::register_kv_contract("Memory", [] {
    auto clock = std::make_shared<ManualClock>();
    contract::KvUnderTest target;
    // The store keeps a pointer to the clock: tie the clock's lifetime to the store's.
    auto kv = adapters::memory::make_memory_kv({.clock = clock.get()});
    target.kv = std::shared_ptr<ports::KVStore>(kv.release(), [clock](ports::KVStore* store) { delete store; });
    target.clock = clock.get();
    target.advance = [clock](std::chrono::milliseconds duration) { clock->advance(duration); };
    return target;
  });
  contract::register_bus_contract("Memory", [] {
    return contract::BusUnderTest{adapters::memory::make_memory_bus()};
  });
  return RUN_ALL_TESTS();
}
