#pragma once
// The bus's Lua scripts. Every key a script touches shares the topic's hash tag.
// Ownership: an outcome script first checks XPENDING for the entry: it must still be pending, held by
// ARGV consumer, with the delivery count the consumer saw. Otherwise it changes nothing and returns 0.

#include <string_view>

namespace baton::adapters::redis::scripts {

constexpr std::string_view owns = R"lua(
local function owns(stream, group, id, consumer, deliveries)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer and p[1][4] == tonumber(deliveries)
end
-- An envelope id's mark, a field of the group's mark hash for the id's time bucket, names the
-- stream entry that carries the id for the group ("t|<id>" on the topic, "r|<id>" on the
-- redelivery stream); earlier versions also wrote "done", still understood. While that entry is
-- pending the id is in flight; once it is acked the id is done. Failures that give the id another
-- try (retry, dead letter) drop the mark, so that the next try can take it.
local function drop_mark(hash, field, ref)
  if redis.call('HGET', hash, field) == ref then redis.call('HDEL', hash, field) end
end
-- The entries of [first, last] this consumer holds, with their delivery counts (numbers): one
-- XPENDING for a whole batch instead of one per entry.
local function held_in(stream, group, consumer, first, last)
  local held = {}
  for _, p in ipairs(redis.call('XPENDING', stream, group, first, last, 1000000, consumer)) do
    held[p[1]] = p[4]
  end
  return held
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
)lua";

// Completes a batch of hand-offs of one stream (a group commit), each on its own terms: the owner
// publishes the entry's outputs and acks it, all in this one script (the ack is what makes the
// envelope id done: its mark names this entry). A consumer that lost an entry changes nothing
// here: whoever holds it now publishes its outputs. (Successes without outputs are acked with a
// plain XACK instead, see RedisSubscription::record: they carry nothing that could be recorded twice.)
// A commit whose reply was lost is sent again; by then its entries are acked, and the owner check
// would refuse them all. So each commit carries a token, and the consumer's commit record keeps the
// last token with its answer: the same token again gets the first answer, and nothing runs twice.
// KEYS: stream, the consumer's commit record, then one stream per output.
// ARGV: group, consumer, the batch's lowest and highest id, the token, the record's time to live in
// ms, then per entry: id, deliveries, output count, the outputs.
// Returns the positions (1-based) of the entries refused: not ours any more.
constexpr std::string_view complete_batch = R"lua(
local record = redis.call('GET', KEYS[2])
if record then
  local bar = string.find(record, '|', 1, true)
  if bar and string.sub(record, 1, bar - 1) == ARGV[5] then
    local answered = {}
    for position in string.gmatch(string.sub(record, bar + 1), '%d+') do answered[#answered + 1] = tonumber(position) end
    return answered
  end
end
local refused, acks = {}, {}
local held = held_in(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
local position = 0
local k, a = 2, 7
while a <= #ARGV do
  position = position + 1
  local id, outputs = ARGV[a], tonumber(ARGV[a + 2])
  if held[id] == tonumber(ARGV[a + 1]) then
    for j = 1, outputs do redis.call('XADD', KEYS[k + j], '*', 'e', ARGV[a + 2 + j]) end
    acks[#acks + 1] = id
  else
    refused[#refused + 1] = position
  end
  k = k + outputs
  a = a + 3 + outputs
end
if #acks > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(acks)) end
redis.call('SET', KEYS[2], ARGV[5] .. '|' .. table.concat(refused, ','), 'PX', ARGV[6])
return refused
)lua";

// Drops the mark taken for an entry that turned out not to be ours (rare: begun after another
// consumer reclaimed it). KEYS: the mark hash. ARGV: the mark's field, the entry's mark value.
constexpr std::string_view drop_mark = R"lua(
drop_mark(KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// KEYS: stream, retry set, mark hash.
// ARGV: group, id, consumer, deliveries, delay ms, next body, mark field, mark value.
constexpr std::string_view retry = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[5]), ARGV[6])
drop_mark(KEYS[3], ARGV[7], ARGV[8])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// KEYS: stream, dead-letter stream, mark hash.
// ARGV: group, id, consumer, deliveries, original, reason, error, attempts, failed_at, topic,
// mark field, mark value.
constexpr std::string_view dead_letter = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XADD', KEYS[2], '*', 'original', ARGV[5], 'reason', ARGV[6], 'error', ARGV[7], 'attempts', ARGV[8],
           'failed_at', ARGV[9], 'topic', ARGV[10], 'group', ARGV[1], 'consumer', ARGV[3], 'source_id', ARGV[2])
drop_mark(KEYS[3], ARGV[11], ARGV[12])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// Hands an entry back at once (a stopping consumer): idle time so large that the next XAUTOCLAIM
// of any consumer takes it. Its mark stays: it names the entry, which whoever takes it will run.
// KEYS: stream. ARGV: group, id, consumer, deliveries.
constexpr std::string_view release = R"lua(
if not owns(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', 2147483647, 'JUSTID')
return 1
)lua";

// Keep-alive of the entries this consumer holds (waiting or running) in one stream: resets the
// idle time of each one still owned, in one XCLAIM. KEYS: stream. ARGV: group, consumer, the lowest
// and highest id, then per entry: id, deliveries. Returns how many were still owned.
constexpr std::string_view keep_alive = R"lua(
local held = held_in(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
local owned = {}
for i = 5, #ARGV, 2 do
  if held[ARGV[i]] == tonumber(ARGV[i + 1]) then owned[#owned + 1] = ARGV[i] end
end
local count = #owned
if count > 0 then
  owned[count + 1] = 'JUSTID'
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(owned))
end
return count
)lua";

// Moves due redeliveries into the group's redelivery stream. KEYS: retry set, redelivery stream.
// ARGV: max entries. Returns {entries moved, ms until the next one left is due (0 when overdue),
// or -1 when none is left}.
constexpr std::string_view move_due = R"lua(
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, body in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'e', body)
  redis.call('ZREM', KEYS[1], body)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_in = -1
if #first == 2 then next_in = math.max(0, tonumber(first[2]) - now) end
return {#due, next_in}
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
