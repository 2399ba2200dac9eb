#include "baton/adapters/redis/redis_kv.hpp"

#include <atomic>
#include <charconv>
#include <unordered_map>

#include "connection/connection.hpp"
#include "detail/key_slot.hpp"
#include "detail/persistence.hpp"
#include "detail/script.hpp"

namespace baton::adapters::redis {
namespace {

using detail::Command;
using detail::Reply;
using ports::Version;

// Shared by every script that writes: the next version of a key whose version is `cur` (its 'ver'
// field as read, or false), as decimal text. The caller reads `cur`, since cas has it already.
constexpr std::string_view next_version_lua = R"lua(
local function next_version(cur)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if type(cur) ~= 'string' then cur = 0 else cur = tonumber(cur) or 0 end
  return string.format('%.0f', math.max(now, cur + 1))
end
local function expire(key, ttl)
  if tonumber(ttl) > 0 then redis.call('PEXPIRE', key, ttl) end
end
)lua";

constexpr std::string_view set_lua = R"lua(
local ver = next_version(redis.pcall('HGET', KEYS[1], 'ver'))
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', ver)
expire(KEYS[1], ARGV[2])
return ver
)lua";

constexpr std::string_view incr_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], 'ver')
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow') then return redis.error_reply('ERR incr would overflow a 64-bit integer') end
  return redis.error_reply('WRONGTYPE the value is not a 64-bit integer')
end
redis.call('HSET', KEYS[1], 'ver', next_version(cur))
expire(KEYS[1], ARGV[2])
return redis.call('HGET', KEYS[1], 'v')
)lua";

constexpr std::string_view cas_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], 'ver') or '0'
if cur ~= ARGV[1] then return {0, cur} end
local ver = next_version(cur)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'ver', ver)
expire(KEYS[1], ARGV[3])
return {1, ver}
)lua";

constexpr std::string_view del_if_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], 'ver') or '0'
if cur ~= ARGV[1] or cur == '0' then return {0, cur} end
redis.call('DEL', KEYS[1])
return {1, cur}
)lua";

// Appends to one list per key, in the order given: KEYS, one per append (a key may repeat);
// ARGV, per append: item, how many to keep (0: all), TTL in ms (0: leave the expiry alone).
// Returns one reply per append: the list's new length, or the error that refused it. RPUSH fails
// before anything changed when the key holds a value (a hash), and then the rest of that append is
// skipped, so a refused append leaves the value's TTL alone, which a MULTI of the commands would not.
// A batch of appends is one call: one call per append cost Redis about a quarter more
// (docs/BENCHMARKS.md, round 18). Every error is caught here, so the call as a whole is refused
// only before it runs (NOSCRIPT, CROSSSLOT, NOPERM of a declared key): then nothing was appended.
constexpr std::string_view append_lua = R"lua(
local results = {}
for i = 1, #KEYS do
  local a = 3 * i - 2
  local length = redis.pcall('RPUSH', KEYS[i], ARGV[a])
  if type(length) == 'number' then
    local keep, ttl = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local trimmed = true
    if keep > 0 and length > keep then trimmed = redis.pcall('LTRIM', KEYS[i], -keep, -1) end
    if type(trimmed) == 'table' and trimmed.err then length = trimmed
    elseif ttl > 0 then
      local expired = redis.pcall('PEXPIRE', KEYS[i], ttl)
      if type(expired) == 'table' and expired.err then length = expired end
    end
  end
  results[i] = length
end
return results
)lua";

// Appends in one call of the append script at most (unless more go to one key): Redis spends 5-7 us
// on each (docs/BENCHMARKS.md, round 18) and runs nothing else meanwhile.
constexpr std::size_t appends_per_call = 256;

std::optional<std::uint64_t> to_number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

class RedisKv final : public ports::KVStore {
 public:
  explicit RedisKv(RedisOptions options)
      : prefix_(options.key_prefix + ":"), connection_(std::move(options)),
        set_script_(std::string(next_version_lua) + std::string(set_lua)),
        incr_script_(std::string(next_version_lua) + std::string(incr_lua)),
        cas_script_(std::string(next_version_lua) + std::string(cas_lua)),
        del_if_script_(std::string(del_if_lua)), append_script_(std::string(append_lua)) {}

  Result<std::optional<ports::VersionedValue>> get(std::string_view key) override {
    if (auto bad = check(key)) return *bad;
    auto reply = connection_.execute(Command{"HMGET", full(key), "v", "ver"});
    if (!reply) return about(std::move(reply).error(), "get", key);
    const auto& fields = reply->elements;
    if (!reply->is_array() || fields.size() != 2) return unexpected("HMGET", key);
    if (fields[0].is_nil() && fields[1].is_nil()) return std::optional<ports::VersionedValue>{};
    const auto version = fields[1].is_string() ? to_number(fields[1].text) : std::nullopt;
    if (!fields[0].is_string() || !version) {
      return Error{errc::wrong_type, "get \"" + std::string(key) + "\": the key holds a hash this store did not write"};
    }
    return std::optional<ports::VersionedValue>{ports::VersionedValue{fields[0].text, *version}};
  }

  Result<Version> set(std::string_view key, std::string_view value, std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    auto reply = eval(set_script_, key, {std::string(value), std::to_string(ttl.count())});
    if (!reply) return std::move(reply).error();
    return version_of(*reply, "set", key);
  }

  Result<bool> del(std::string_view key) override {
    if (auto bad = check(key)) return *bad;
    auto reply = connection_.execute(Command{"DEL", full(key)});
    if (!reply) return std::move(reply).error();
    return reply->integer > 0;
  }

  Result<std::int64_t> incr(std::string_view key, std::int64_t delta, std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    auto reply = eval(incr_script_, key, {std::to_string(delta), std::to_string(ttl.count())});
    if (!reply) {
      auto error = std::move(reply).error();
      if (error == errc::wrong_type && error.detail.find("not a 64-bit integer") == std::string::npos) return about(std::move(error), "incr", key);
      error.detail = "incr \"" + std::string(key) + "\": " + error.detail;
      return error;
    }
    std::int64_t value = 0;
    const auto& text = reply->text;
    const auto [end, parse_error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!reply->is_string() || parse_error != std::errc{} || end != text.data() + text.size()) return unexpected("incr", key);
    return value;
  }

  Result<Version> cas(std::string_view key, Version expected, std::string_view value,
                      std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    auto reply = eval(cas_script_, key, {std::to_string(expected), std::string(value), std::to_string(ttl.count())});
    if (!reply) return about(std::move(reply).error(), "cas", key);
    return conditional_outcome(*reply, "cas", key, expected);
  }

  Result<void> del_if(std::string_view key, Version expected) override {
    if (auto bad = check(key)) return *bad;
    auto reply = eval(del_if_script_, key, {std::to_string(expected)});
    if (!reply) return about(std::move(reply).error(), "del_if", key);
    auto outcome = conditional_outcome(*reply, "del_if", key, expected);
    if (!outcome) return std::move(outcome).error();
    return {};
  }

  Result<void> append(std::string_view key, std::string_view item, std::size_t keep_last,
                      std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    auto reply = eval(append_script_, key, {std::string(item), std::to_string(keep_last), std::to_string(ttl.count())});
    if (!reply) return about(std::move(reply).error(), "append", key);
    if (!reply->is_array() || reply->elements.size() != 1) return unexpected("append", key);
    return appended(reply->elements.front(), key);
  }

  std::vector<Result<void>> append_each(std::span<const ports::ListAppend> appends) override {
    std::vector<Result<void>> results(appends.size());
    std::vector<std::size_t> valid;
    for (std::size_t i = 0; i < appends.size(); ++i) {
      if (auto bad = check(appends[i].key, appends[i].ttl)) {
        results[i] = *bad;
      } else {
        valid.push_back(i);
      }
    }
    if (valid.empty()) return results;
    auto groups = by_slot(appends, valid);
    if (!groups) {
      for (const auto i : valid) results[i] = groups.error();
      return results;
    }
    std::vector<std::vector<std::size_t>> calls;
    for (const auto& group : *groups) split_into_calls(appends, group, calls);
    std::string encoded;
    for (const auto& call : calls) encoded += encode_appends(appends, call);
    auto replies = connection_.execute_encoded(std::move(encoded), calls.size(), "append_each");
    if (!replies) {
      for (const auto i : valid) results[i] = replies.error();
      return results;
    }
    std::vector<std::size_t> refused;  // calls refused as a whole: none of their appends was made
    for (std::size_t c = 0; c < calls.size(); ++c) {
      const auto& reply = (*replies)[c];
      const std::span<const std::size_t> indexes = calls[c];
      if (reply.is_array() && reply.elements.size() == indexes.size()) {
        for (std::size_t k = 0; k < indexes.size(); ++k) results[indexes[k]] = appended(reply.elements[k], appends[indexes[k]].key);
      } else if (reply.is_error()) {
        refused.push_back(c);
      } else {
        for (const auto i : indexes) results[i] = unexpected("append", appends[i].key);
      }
    }
    // Made again after calls that followed them: fine, as no two calls share a key.
    for (const auto c : refused) append_again(appends, calls[c], (*replies)[c], results);
    return results;
  }

  Result<std::vector<std::string>> items(std::string_view key) override {
    if (auto bad = check(key)) return *bad;
    auto reply = connection_.execute(Command{"LRANGE", full(key), "0", "-1"});
    if (!reply) return about(std::move(reply).error(), "items", key);
    if (!reply->is_array()) return unexpected("LRANGE", key);
    std::vector<std::string> items;
    items.reserve(reply->elements.size());
    for (auto& element : reply->elements) {
      if (!element.is_string()) return unexpected("LRANGE", key);
      items.push_back(std::move(element.text));
    }
    return items;
  }

  ports::Health health() override { return connection_.health(); }

  // A forgotten once() answer lets its side effect run again (docs/RELIABILITY.md).
  std::optional<std::string> durability_risk() override {
    auto gap = detail::persistence_gap(connection_);
    if (!gap) return std::nullopt;
    return *gap + ", once() answers and records among them, so work done once can be done again; " +
           detail::persistence_remedy;
  }

 private:
  enum class Mode { unknown, standalone, cluster };

  std::string full(std::string_view key) const { return prefix_ + std::string(key); }

  static std::optional<Error> check(std::string_view key, std::chrono::milliseconds ttl = ports::no_ttl) {
    if (key.empty()) return Error{errc::invalid_argument, "kv: the key must not be empty"};
    if (ttl < std::chrono::milliseconds{0}) return Error{errc::invalid_argument, "kv \"" + std::string(key) + "\": negative TTL"};
    return std::nullopt;
  }

  // Redis's WRONGTYPE names neither the key nor what was expected of it; the caller needs both.
  static Error about(Error error, const char* operation, std::string_view key) {
    if (error != errc::wrong_type) return error;
    const bool list_wanted = std::string_view(operation) == "append" || std::string_view(operation) == "items";
    return {errc::wrong_type, std::string(operation) + " \"" + std::string(key) + "\": the key holds " +
                                  (list_wanted ? "a value or data this store did not write, not a list"
                                               : "a list or data this store did not write, not a value")};
  }

  static Error unexpected(const char* operation, std::string_view key) {
    return {errc::decode_failed, std::string(operation) + " \"" + std::string(key) + "\": unexpected reply shape from redis"};
  }

  // KEYS and ARGV of the append script for these appends.
  std::pair<std::vector<std::string>, std::vector<std::string>> script_input(std::span<const ports::ListAppend> appends,
                                                                             std::span<const std::size_t> indexes) const {
    std::vector<std::string> keys;
    std::vector<std::string> arguments;
    keys.reserve(indexes.size());
    arguments.reserve(3 * indexes.size());
    for (const auto i : indexes) {
      const auto& each = appends[i];
      keys.push_back(full(each.key));
      arguments.push_back(each.item);
      arguments.push_back(std::to_string(each.keep_last));
      arguments.push_back(std::to_string(each.ttl.count()));
    }
    return {std::move(keys), std::move(arguments)};
  }

  std::string encode_appends(std::span<const ports::ListAppend> appends, std::span<const std::size_t> indexes) const {
    const auto [keys, arguments] = script_input(appends, indexes);
    return append_script_.encode_call(keys, arguments);
  }

  // A call refused as a whole, made again: once more in one call when the server had only forgot
  // the script (run() teaches it), else append by append.
  void append_again(std::span<const ports::ListAppend> appends, std::span<const std::size_t> indexes, const Reply& refusal,
                    std::vector<Result<void>>& results) {
    if (refusal.text.starts_with("NOSCRIPT")) {
      const auto [keys, arguments] = script_input(appends, indexes);
      auto reply = append_script_.run(connection_, keys, arguments);
      if (reply && reply->is_array() && reply->elements.size() == indexes.size()) {
        for (std::size_t k = 0; k < indexes.size(); ++k) results[indexes[k]] = appended(reply->elements[k], appends[indexes[k]].key);
        return;
      }
    }
    append_one_by_one(appends, indexes, results);
  }

  // The appends to send together, in their order: all of them on a standalone server; on a
  // cluster, one group per slot, since a script's keys must share one there.
  Result<std::vector<std::vector<std::size_t>>> by_slot(std::span<const ports::ListAppend> appends,
                                                        std::vector<std::size_t> indexes) {
    auto mode = mode_.load(std::memory_order_relaxed);
    if (mode == Mode::unknown) {
      auto learned = server_mode();
      if (!learned) return std::move(learned).error();
      mode_.store(mode = *learned, std::memory_order_relaxed);
    }
    std::vector<std::vector<std::size_t>> groups;
    if (mode == Mode::standalone) {
      groups.push_back(std::move(indexes));
      return groups;
    }
    std::unordered_map<std::uint16_t, std::size_t> group_of_slot;
    for (const auto i : indexes) {
      const auto [at, added] = group_of_slot.try_emplace(detail::key_slot(full(appends[i].key)), groups.size());
      if (added) groups.emplace_back();
      groups[at->second].push_back(i);
    }
    return groups;
  }

  // HELLO without a protocol version changes nothing and says whether the server is a cluster
  // node ("mode"); unlike INFO, it is open to a user denied the dangerous commands. A server that
  // will not say is taken for a cluster: grouping by slot is right on both, only slower here.
  Result<Mode> server_mode() {
    auto replies = connection_.execute_pipeline({Command{"HELLO"}});
    if (!replies) return std::move(replies).error();
    const auto& reply = replies->front();
    for (std::size_t i = 0; reply.is_array() && i + 1 < reply.elements.size(); i += 2) {
      if (reply.elements[i].text == "mode") return reply.elements[i + 1].text == "cluster" ? Mode::cluster : Mode::standalone;
    }
    return Mode::cluster;
  }

  // Splits one slot's appends into script calls of about appends_per_call each, since Redis runs
  // nothing else while a script runs, and puts all of a key's appends into one call: a call
  // refused as a whole is made again after the calls that followed it, so those must hold none
  // of its keys.
  static void split_into_calls(std::span<const ports::ListAppend> appends, std::span<const std::size_t> group,
                               std::vector<std::vector<std::size_t>>& calls) {
    std::unordered_map<std::string_view, std::size_t> call_of_key;
    std::size_t filling = calls.size();
    for (const auto i : group) {
      auto [at, added] = call_of_key.try_emplace(appends[i].key, filling);
      if (added) {
        if (filling == calls.size() || calls[filling].size() >= appends_per_call) {
          filling = calls.size();
          calls.emplace_back();
        }
        at->second = filling;
      }
      calls[at->second].push_back(i);
    }
  }

  // One script call per append, pipelined, in order.
  void append_one_by_one(std::span<const ports::ListAppend> appends, std::span<const std::size_t> indexes,
                         std::vector<Result<void>>& results) {
    std::string encoded;
    for (const auto i : indexes) encoded += encode_appends(appends, std::span<const std::size_t>(&i, 1));
    auto replies = connection_.execute_encoded(std::move(encoded), indexes.size(), "append_each");
    for (std::size_t k = 0; k < indexes.size(); ++k) {
      const auto& each = appends[indexes[k]];
      auto& result = results[indexes[k]];
      if (!replies) {
        result = replies.error();
        continue;
      }
      const auto& reply = (*replies)[k];
      if (reply.is_array() && reply.elements.size() == 1) {
        result = appended(reply.elements.front(), each.key);
        continue;
      }
      if (!reply.is_error()) {
        result = unexpected("append", each.key);
        continue;
      }
      auto failed = detail::error_from_reply("EVALSHA", reply);
      // A server that lost its scripts refuses every call of the batch alike, so none was applied and
      // making them again one by one (the first teaches it the script) keeps their order.
      if (failed == errc::not_found && failed.detail.find("NOSCRIPT") != std::string::npos) {
        result = append(each.key, each.item, each.keep_last, each.ttl);
      } else {
        result = about(std::move(failed), "append", each.key);
      }
    }
  }

  // One append's part of the script's reply: the list's length, or what refused it.
  static Result<void> appended(const Reply& reply, std::string_view key) {
    if (reply.kind == Reply::Kind::integer) return {};
    if (reply.is_error()) return about(detail::error_from_reply("append", reply), "append", key);
    return unexpected("append", key);
  }

  Result<Reply> eval(const detail::Script& script, std::string_view key, const std::vector<std::string>& arguments) {
    return script.run(connection_, {full(key)}, arguments);
  }

  static Result<Version> version_of(const Reply& reply, const char* operation, std::string_view key) {
    const auto version = reply.is_string() ? to_number(reply.text) : std::nullopt;
    if (!version) return unexpected(operation, key);
    return *version;
  }

  static Result<Version> conditional_outcome(const Reply& reply, const char* operation, std::string_view key,
                                             Version expected) {
    if (!reply.is_array() || reply.elements.size() != 2 || reply.elements[0].kind != Reply::Kind::integer) {
      return unexpected(operation, key);
    }
    const auto version = version_of(reply.elements[1], operation, key);
    if (!version) return version;
    if (reply.elements[0].integer == 1) return *version;
    return Error{errc::conflict, std::string(operation) + " \"" + std::string(key) + "\": expected version " +
                                     std::to_string(expected) + ", found " +
                                     (*version == ports::absent_version ? std::string("none") : std::to_string(*version))};
  }

  std::string prefix_;
  detail::Connection connection_;
  detail::Script set_script_;
  detail::Script incr_script_;
  detail::Script cas_script_;
  detail::Script del_if_script_;
  detail::Script append_script_;
  std::atomic<Mode> mode_{Mode::unknown};
};

}  // namespace

std::unique_ptr<ports::KVStore> make_redis_kv(RedisOptions options) { return std::make_unique<RedisKv>(std::move(options)); }

Result<std::size_t> remove_kv_keys(const RedisOptions& options, std::span<const std::string> keys) {
  // Enough per round trip that its cost is spread thin; few enough that one write stays small.
  constexpr std::size_t keys_per_round_trip = 1024;
  const std::string prefix = options.key_prefix + ":";
  detail::Connection connection(options);
  std::size_t removed = 0;
  for (std::size_t first = 0; first < keys.size(); first += keys_per_round_trip) {
    std::vector<Command> deletions;
    for (const auto& key : keys.subspan(first, std::min(keys_per_round_trip, keys.size() - first))) {
      deletions.push_back(Command{"DEL", prefix + key});
    }
    auto replies = connection.execute_pipeline(std::move(deletions));
    if (!replies) return std::move(replies).error();
    for (const auto& reply : *replies) {
      if (reply.is_error()) return detail::error_from_reply("DEL", reply);
      removed += static_cast<std::size_t>(reply.integer);
    }
  }
  return removed;
}

}  // namespace baton::adapters::redis
