#pragma once
// The in-memory MessageBus: the embedded default (`memory://`) and the test double. It keeps the
// Redis bus's semantics within one process: durable topics with consumer groups and competing
// consumers, redelivery with attempts + 1 after backoff, dead letters, dedup by envelope id,
// ephemeral fan-out and mirroring. Nothing survives the process.

#include <cstddef>
#include <functional>
#include <string_view>
#include <memory>

#include "baton/core/clock.hpp"
#include "baton/core/codec.hpp"
#include "baton/ports/message_bus.hpp"

namespace baton::adapters::memory {

struct MemoryBusOptions {
  Clock* clock = &SystemClock::instance();  // timestamps of dead letters (waits use the steady clock)
  CodecLimits limits{};                     // what publish accepts and what decoding allows
  std::size_t ephemeral_queue_limit = 10'000;  // per ephemeral subscriber; past it, messages are dropped
  // Test hook (fault injection): called after a durable handler returned and before its outcome
  // (ack, hand-off, retry or dead letter) is committed. Returning true simulates the process dying
  // right there: nothing is committed and the entry goes back to its group, as a dead consumer's
  // entry is reclaimed on Redis.
  std::function<bool(std::string_view topic, const JsonEnvelope& envelope)> crash_before_commit;
};

std::unique_ptr<ports::MessageBus> make_memory_bus(MemoryBusOptions options = {});

}  // namespace baton::adapters::memory
