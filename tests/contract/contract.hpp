#pragma once
// The contract suites: written once, run against every adapter. An adapter's test file registers
// the suites with a factory; each case becomes the GoogleTest case `Contract.<Adapter>.<Case>`
// (for example Contract.Memory.BusRedeliversAfterFailure), and so its own ctest.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "baton/core/clock.hpp"
#include "baton/ports/kv_store.hpp"
#include "baton/ports/message_bus.hpp"

namespace baton::contract {

struct KvUnderTest {
  std::shared_ptr<ports::KVStore> kv;
  Clock* clock = nullptr;  // the clock the store's TTLs follow (a ManualClock for memory)
  // Moves the store's time forward by at least `duration` (a ManualClock advance; for a real server,
  // nothing: the suite then waits for expiry with a deadline).
  std::function<void(std::chrono::milliseconds duration)> advance;
};

struct BusUnderTest {
  std::shared_ptr<ports::MessageBus> bus;
};

// `adapter` names the suite ("Memory", "Redis"); the factory is called once per test case.
void register_kv_contract(const std::string& adapter, std::function<KvUnderTest()> factory);
void register_bus_contract(const std::string& adapter, std::function<BusUnderTest()> factory);

}  // namespace baton::contract
