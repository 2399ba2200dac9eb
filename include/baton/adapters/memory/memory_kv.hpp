#pragma once
// The in-memory KVStore: the embedded default and the test double. Same semantics as the Redis one
// (versions, TTL, atomic incr/cas), within one process, driven by an injectable clock.

#include <memory>

#include "baton/core/clock.hpp"
#include "baton/ports/kv_store.hpp"

namespace baton::adapters::memory {

struct MemoryKvOptions {
  Clock* clock = &SystemClock::instance();  // decides when TTLs expire (a ManualClock in tests)
};

std::unique_ptr<ports::KVStore> make_memory_kv(MemoryKvOptions options = {});

}  // namespace baton::adapters::memory
