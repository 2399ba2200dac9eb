#pragma once
// The bus's Lua scripts. Every key a script touches shares the topic's hash tag.
// Ownership: an outcome script first checks XPENDING for the entry: it must still be pending, held by
// ARGV consumer, with the delivery count the consumer saw. Otherwise it changes nothing and returns 0.

#include <string_view>

namespace baton::adapters::redis::scripts {

constexpr std::string_view owns = R"lua(
local function owns(stream, group, id, consumer, deliveries)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer and tostring(p[1][4]) == deliveries
end
-- Drops an in-flight lease only if this consumer holds it (another one may have taken it over).
local function drop_lease(key, consumer)
  if redis.call('GET', key) == consumer then redis.call('DEL', key) end
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)lua";

// KEYS: stream, done mark, in-flight lease. ARGV: group, id, consumer, deliveries, lease ms.
// "lost": the entry was reclaimed by another consumer while it waited here: do not run it.
// "done": already handled by the group; "busy": another delivery of the same id is being handled.
constexpr std::string_view begin = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 'lost' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'done' end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[5]) then return 'go' end
if redis.call('GET', KEYS[3]) == ARGV[3] then
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  return 'go'
end
return 'busy'
)lua";

// KEYS: stream, done mark, in-flight lease, then one stream per hand-off output.
// ARGV: group, id, consumer, deliveries, done ttl ms, then one encoded envelope per output.
// The owner publishes the outputs, writes the done mark and acks, all at once. A consumer that lost
// the entry changes nothing when it has outputs (the owner will hand off); without outputs it
// still writes the done mark, since the work did happen and whoever holds the entry now must skip it.
constexpr std::string_view complete = R"lua(
local mine = owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
local outputs = #KEYS - 3
if not mine then
  if outputs == 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[5]) end
  return 0
end
for i = 1, outputs do redis.call('XADD', KEYS[3 + i], '*', 'e', ARGV[5 + i]) end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
drop_lease(KEYS[3], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// KEYS: stream, retry set, in-flight lease. ARGV: group, id, consumer, deliveries, delay ms, next body.
constexpr std::string_view retry = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[5]), ARGV[6])
drop_lease(KEYS[3], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// KEYS: stream, dead-letter stream, in-flight lease.
// ARGV: group, id, consumer, deliveries, original, reason, error, attempts, failed_at, topic.
constexpr std::string_view dead_letter = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XADD', KEYS[2], '*', 'original', ARGV[5], 'reason', ARGV[6], 'error', ARGV[7], 'attempts', ARGV[8],
           'failed_at', ARGV[9], 'topic', ARGV[10], 'group', ARGV[1], 'consumer', ARGV[3], 'source_id', ARGV[2])
drop_lease(KEYS[3], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// Hands an entry back at once (a stopping consumer): idle time so large that the next XAUTOCLAIM
// of any consumer takes it. KEYS: stream, in-flight lease. ARGV: group, id, consumer, deliveries.
constexpr std::string_view release = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', 2147483647, 'JUSTID')
drop_lease(KEYS[2], ARGV[3])
return 1
)lua";

// Keep-alive of an entry this consumer holds (waiting or running): resets its idle time and renews
// its in-flight lease, if still owned. KEYS: stream, in-flight lease. ARGV: group, id, consumer,
// deliveries, lease ms.
constexpr std::string_view keep_alive = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return 1
)lua";

// Moves due redeliveries into the group's redelivery stream. KEYS: retry set, redelivery stream.
// ARGV: max entries.
constexpr std::string_view move_due = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[1]))
for _, body in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'e', body)
  redis.call('ZREM', KEYS[1], body)
end
return #due
)lua";

// Retention that never drops what a group still needs: trims below the oldest entry that any group
// has pending or not yet delivered, and below the retention horizon for acked entries.
// KEYS: stream. ARGV: keep acked entries this many ms. Returns the number of entries trimmed.
constexpr std::string_view trim_acked = R"lua(
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function older(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local keep = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  -- Entries after last-delivered-id were never delivered; keeping that id itself keeps them all.
  local candidate = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    local oldest = redis.call('XPENDING', KEYS[1], info['name'])[2]
    if older(oldest, candidate) then candidate = oldest end
  end
  if keep == nil or older(candidate, keep) then keep = candidate end
end
if keep == nil then return 0 end
local horizon = tostring(now_ms() - tonumber(ARGV[1])) .. '-0'
if older(horizon, keep) then keep = horizon end
return redis.call('XTRIM', KEYS[1], 'MINID', keep)
)lua";

// An ephemeral publish mirrored into a stream, both or neither. KEYS: mirror stream.
// ARGV: channel, body.
constexpr std::string_view publish_mirrored = R"lua(
redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
return redis.call('PUBLISH', ARGV[1], ARGV[2])
)lua";

// Replay of a dead letter: back on the topic and out of the DLQ, both or neither.
// KEYS: dead-letter stream, topic stream. ARGV: dead letter id, body. 0 when there is no such letter.
constexpr std::string_view replay = R"lua(
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
)lua";

// KEYS: dead-letter stream. Returns how many letters it held.
constexpr std::string_view purge = R"lua(
local count = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return count
)lua";

}  // namespace baton::adapters::redis::scripts
