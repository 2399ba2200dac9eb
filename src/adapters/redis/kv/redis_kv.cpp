#include "baton/adapters/redis/redis_kv.hpp"

#include <charconv>

#include "connection/connection.hpp"
#include "detail/script.hpp"

namespace baton::adapters::redis {
namespace {

using detail::Command;
using detail::Reply;
using ports::Version;

// Shared by every script that writes: the next version of KEYS[1], as decimal text.
constexpr std::string_view next_version_lua = R"lua(
local function next_version(key)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local cur = redis.pcall('HGET', key, 'ver')
  if type(cur) ~= 'string' then cur = 0 else cur = tonumber(cur) or 0 end
  return string.format('%.0f', math.max(now, cur + 1))
end
local function expire(key, ttl)
  if tonumber(ttl) > 0 then redis.call('PEXPIRE', key, ttl) end
end
)lua";

constexpr std::string_view set_lua = R"lua(
local ver = next_version(KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', ver)
expire(KEYS[1], ARGV[2])
return ver
)lua";

constexpr std::string_view incr_lua = R"lua(
redis.call('HGET', KEYS[1], 'v')
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow') then return redis.error_reply('ERR incr would overflow a 64-bit integer') end
  return redis.error_reply('WRONGTYPE the value is not a 64-bit integer')
end
redis.call('HSET', KEYS[1], 'ver', next_version(KEYS[1]))
expire(KEYS[1], ARGV[2])
return redis.call('HGET', KEYS[1], 'v')
)lua";

constexpr std::string_view cas_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], 'ver') or '0'
if cur ~= ARGV[1] then return {0, cur} end
local ver = next_version(KEYS[1])
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

// RPUSH fails before anything changed when the key holds a value (a hash), so a refused append
// leaves the value's TTL alone, which a MULTI of the three commands would not.
constexpr std::string_view append_lua = R"lua(
local length = redis.call('RPUSH', KEYS[1], ARGV[1])
local keep = tonumber(ARGV[2])
if keep > 0 and length > keep then redis.call('LTRIM', KEYS[1], -keep, -1) end
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return length
)lua";

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
    return {};
  }

  std::vector<Result<void>> append_each(std::span<const ports::ListAppend> appends) override {
    std::vector<Result<void>> results(appends.size());
    std::string encoded;
    std::vector<std::size_t> sent;  // which appends the pipeline carries, in its order
    for (std::size_t i = 0; i < appends.size(); ++i) {
      const auto& each = appends[i];
      if (auto bad = check(each.key, each.ttl)) {
        results[i] = *bad;
        continue;
      }
      encoded += append_script_.encode_call({full(each.key)}, {each.item, std::to_string(each.keep_last), std::to_string(each.ttl.count())});
      sent.push_back(i);
    }
    if (sent.empty()) return results;
    auto replies = connection_.execute_encoded(std::move(encoded), sent.size(), "append_each");
    for (std::size_t k = 0; k < sent.size(); ++k) {
      const auto& each = appends[sent[k]];
      auto& result = results[sent[k]];
      if (!replies) {
        result = replies.error();
        continue;
      }
      const auto& reply = (*replies)[k];
      if (!reply.is_error()) continue;
      auto failed = detail::error_from_reply("EVALSHA", reply);
      // A server that lost its scripts refuses every call of the batch alike, so none was applied and
      // making them again one by one (the first teaches it the script) keeps their order.
      if (failed == errc::not_found && failed.detail.find("NOSCRIPT") != std::string::npos) {
        result = append(each.key, each.item, each.keep_last, each.ttl);
      } else {
        result = about(std::move(failed), "append", each.key);
      }
    }
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

 private:
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
};

}  // namespace

std::unique_ptr<ports::KVStore> make_redis_kv(RedisOptions options) { return std::make_unique<RedisKv>(std::move(options)); }

}  // namespace baton::adapters::redis
