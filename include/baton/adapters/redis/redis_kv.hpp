#pragma once
// The Redis KVStore. Each key is a hash {v: value, ver: version} under "<key_prefix>:<key>", so that
// versions, compare-and-swap and TTL are atomic in one Lua script per call. Versions come from the
// server's clock in microseconds (and always above the key's last one), so a key deleted and
// written again never gets an old version back. Every key one call touches is that one key, so it
// works unchanged on Redis Cluster.

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "baton/adapters/redis/redis_options.hpp"
#include "baton/ports/kv_store.hpp"

namespace baton::adapters::redis {

// Connects in the background: a store made while Redis is down answers errc::unavailable until it
// is up, then works without being made again.
std::unique_ptr<ports::KVStore> make_redis_kv(RedisOptions options);

// Deletes the keys that a store made with these options holds under `keys` (values, lists, either),
// pipelined: one DEL per key, since keys of different slots may not share one on a cluster, and
// many to a round trip, so a caller removing what a large run left (`baton bench` on a server it
// was pointed at) does not pay a round trip per key. Returns how many existed.
Result<std::size_t> remove_kv_keys(const RedisOptions& options, std::span<const std::string> keys);

}  // namespace baton::adapters::redis
