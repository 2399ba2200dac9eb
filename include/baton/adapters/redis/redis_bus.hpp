#pragma once
// The durable Redis bus on Streams and consumer groups. Keys, retention and guarantees are in
// docs/REDIS-KEYS.md and docs/DELIVERY.md.
//
// - publish: XADD of the encoded envelope (field "e").
// - subscribe: XREADGROUP BLOCK on the topic and on the group's own redelivery stream, a dedup
//   mark per envelope id (HSETNX), handlers on `concurrency` threads. Every outcome that records
//   more than an ack is one Lua script that first checks that this consumer still owns the entry
//   (owner and delivery count, from XPENDING), so a consumer that was paused and whose entries were
//   reclaimed cannot complete them a second time.
// - success: one XACK per batch (a hand-off: its outputs and the XACK in one script). Retryable
//   failure: the next attempt goes to a per-group delayed set and comes back through the group's
//   redelivery stream, with the XACK in the same script. Permanent failure, exhausted attempts or
//   an undecodable entry: XADD to "<topic>.dlq" and XACK, in one script.
// - crash recovery: entries idle longer than reclaim_idle are taken over with XAUTOCLAIM; a handler
//   that is still running renews its entries' idle time (keep-alive), so slowness alone never
//   causes a second delivery.
// - retention: trimmed by MINID below what every group has acked (and older than retain_acked),
//   never by a blind MAXLEN; an entry trimmed while pending anyway (by hand) becomes a dead letter
//   "trimmed_while_pending" instead of an empty message.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "baton/adapters/redis/redis_options.hpp"
#include "baton/core/codec.hpp"
#include "baton/ports/message_bus.hpp"

namespace baton::adapters::redis {

struct RedisBusOptions {
  RedisOptions redis;
  std::chrono::milliseconds block{250};             // XREADGROUP BLOCK; also bounds how long stop() waits
  std::size_t read_count = 256;                     // entries fetched per read (and begun in one pipeline)
  // Reader threads per subscription, each with a connection of its own, reading and beginning
  // side by side as the same consumer: one reader's round trips in a row were what bounded a
  // subscription's throughput (docs/BENCHMARKS.md). At least 1.
  std::size_t readers = 2;
  std::chrono::milliseconds reclaim_idle{30'000};   // an entry idle this long belongs to a dead consumer
  std::chrono::milliseconds reclaim_interval{1'000};  // how often XAUTOCLAIM looks
  std::chrono::milliseconds retry_poll{20};         // due redeliveries are moved back at most this often
  std::chrono::milliseconds retry_sweep{1'000};     // how often the retry set is looked at when no retry is known to be due
  // Retention: an entry is trimmed once every group has acked it and it is older than this. Entries
  // some group has pending or not yet read are never trimmed (no blind MAXLEN).
  std::chrono::milliseconds retain_acked{600'000};
  // Threads publishing at the same time that each get a connection of their own, which the thread
  // drives itself (no hand-over to an io thread and back: about half the latency of a publish on a
  // VM); any more share the bus's pipelined connection. 0: every publish takes the shared one.
  std::size_t direct_publishers = 4;
  int tag_segments = 1;  // the hash tag is the topic's first N dotted segments (see REDIS-KEYS.md)
  CodecLimits limits{};
};

std::unique_ptr<ports::MessageBus> make_redis_bus(RedisBusOptions options);

// Deletes what the bus stores on the server for `topic`: its stream, its dead letters, and each
// group's redeliveries, waiting retries and commit records. For a topic nothing publishes to or
// reads any more, such as the ones `baton bench` makes on a server it is pointed at: a subscription
// still running would make its group again and go on. Dedup marks are left to expire with their
// group's dedup window (finding them would take SCAN). Returns how many keys were deleted.
Result<std::size_t> remove_topic_keys(const RedisBusOptions& options, std::string_view topic);

// A group's dedup marks are fields of small hashes, one per millisecond of envelope-id time and
// two random bits: "<topic key>:mark:<group>:<bucket>" holds the field <field>. The bucket is the
// id's first 13 characters (a UUIDv7's creation time in ms), a dot and the low two bits of its last
// hex digit (0-3); the
// field is the rest of the id. Any id maps to one bucket and field, always the same, and no two
// ids to the same pair. docs/REDIS-KEYS.md.
std::string dedup_mark_bucket(std::string_view envelope_id);
std::string_view dedup_mark_field(std::string_view envelope_id);

}  // namespace baton::adapters::redis
