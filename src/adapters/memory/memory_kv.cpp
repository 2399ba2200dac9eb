#include "baton/adapters/memory/memory_kv.hpp"

#include <charconv>
#include <deque>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace baton::adapters::memory {
namespace {

using ports::Version;

struct Entry {
  std::string value;
  Version version = ports::absent_version;
  std::optional<Clock::SteadyTime> expires_at;
  bool is_list = false;  // then `items` holds it and `value`/`version` mean nothing
  std::deque<std::string> items;
};

struct TransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

class MemoryKv final : public ports::KVStore {
 public:
  explicit MemoryKv(MemoryKvOptions options) : clock_(*options.clock) {}

  Result<std::optional<ports::VersionedValue>> get(std::string_view key) override {
    if (auto bad = check_key(key)) return *bad;
    std::lock_guard lock(mutex_);
    const auto* entry = live(key);
    if (!entry) return std::optional<ports::VersionedValue>{};
    if (entry->is_list) return list_is_not_a_value("get", key);
    return std::optional<ports::VersionedValue>{ports::VersionedValue{entry->value, entry->version}};
  }

  Result<Version> set(std::string_view key, std::string_view value, std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    std::lock_guard lock(mutex_);
    return write(key, value, ttl);
  }

  Result<bool> del(std::string_view key) override {
    if (auto bad = check_key(key)) return *bad;
    std::lock_guard lock(mutex_);
    const bool existed = live(key) != nullptr;
    if (existed) entries_.erase(entries_.find(key));
    return existed;
  }

  Result<std::int64_t> incr(std::string_view key, std::int64_t delta, std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    std::lock_guard lock(mutex_);
    std::int64_t current = 0;
    if (const auto* entry = live(key)) {
      if (entry->is_list) return list_is_not_a_value("incr", key);
      const auto& text = entry->value;
      const auto [end, parse_error] = std::from_chars(text.data(), text.data() + text.size(), current);
      if (parse_error != std::errc{} || end != text.data() + text.size() || text.empty()) {
        return Error{errc::wrong_type, "incr \"" + std::string(key) + "\": the value is not a 64-bit integer"};
      }
    }
    std::int64_t next = 0;
    if (__builtin_add_overflow(current, delta, &next)) {
      return Error{errc::invalid_argument, "incr \"" + std::string(key) + "\": would overflow a 64-bit integer"};
    }
    // incr keeps an existing expiry unless a new TTL is given, as Redis INCR does.
    const auto* entry = live(key);
    const auto keep = entry ? entry->expires_at : std::nullopt;
    write(key, std::to_string(next), ttl);
    if (ttl == ports::no_ttl) entries_.find(key)->second.expires_at = keep;
    return next;
  }

  Result<Version> cas(std::string_view key, Version expected, std::string_view value,
                      std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    std::lock_guard lock(mutex_);
    const auto* entry = live(key);
    if (entry && entry->is_list) return list_is_not_a_value("cas", key);
    const Version current = entry ? entry->version : ports::absent_version;
    if (current != expected) return conflict("cas", key, expected, current);
    return write(key, value, ttl);
  }

  Result<void> del_if(std::string_view key, Version expected) override {
    if (auto bad = check_key(key)) return *bad;
    std::lock_guard lock(mutex_);
    const auto* entry = live(key);
    if (entry && entry->is_list) return list_is_not_a_value("del_if", key);
    const Version current = entry ? entry->version : ports::absent_version;
    if (!entry || current != expected) return conflict("del_if", key, expected, current);
    entries_.erase(entries_.find(key));
    return {};
  }

  Result<void> append(std::string_view key, std::string_view item, std::size_t keep_last,
                      std::chrono::milliseconds ttl) override {
    if (auto bad = check(key, ttl)) return *bad;
    std::lock_guard lock(mutex_);
    auto* entry = live(key);
    if (entry && !entry->is_list) {
      return Error{errc::wrong_type, "append \"" + std::string(key) + "\": the key holds a value, not a list"};
    }
    if (!entry) {
      if (++writes_since_sweep_ >= 4096) sweep();
      entry = &entries_.emplace(std::string(key), Entry{}).first->second;
      entry->is_list = true;
    }
    entry->items.emplace_back(item);
    if (keep_last > 0) {
      while (entry->items.size() > keep_last) entry->items.pop_front();
    }
    if (ttl > std::chrono::milliseconds{0}) entry->expires_at = clock_.steady_now() + ttl;
    return {};
  }

  std::vector<Result<void>> append_each(std::span<const ports::ListAppend> appends) override {
    std::vector<Result<void>> results;
    results.reserve(appends.size());
    for (const auto& each : appends) results.push_back(append(each.key, each.item, each.keep_last, each.ttl));
    return results;
  }

  Result<std::vector<std::string>> items(std::string_view key) override {
    if (auto bad = check_key(key)) return *bad;
    std::lock_guard lock(mutex_);
    const auto* entry = live(key);
    if (!entry) return std::vector<std::string>{};
    if (!entry->is_list) {
      return Error{errc::wrong_type, "items \"" + std::string(key) + "\": the key holds a value, not a list"};
    }
    return std::vector<std::string>(entry->items.begin(), entry->items.end());
  }

  ports::Health health() override { return {true, std::chrono::microseconds{0}, "memory"}; }

  std::optional<std::string> durability_risk() override {
    return "the KV store is memory://: once() answers and records live in this process only, so after a restart "
           "work done once can be done again; use a redis:// store with appendonly yes and appendfsync always";
  }

 private:
  static std::optional<Error> check_key(std::string_view key) {
    if (key.empty()) return Error{errc::invalid_argument, "kv: the key must not be empty"};
    return std::nullopt;
  }

  static std::optional<Error> check(std::string_view key, std::chrono::milliseconds ttl) {
    if (auto bad = check_key(key)) return bad;
    if (ttl < std::chrono::milliseconds{0}) {
      return Error{errc::invalid_argument, "kv \"" + std::string(key) + "\": negative TTL"};
    }
    return std::nullopt;
  }

  static Error list_is_not_a_value(const char* operation, std::string_view key) {
    return {errc::wrong_type, std::string(operation) + " \"" + std::string(key) + "\": the key holds a list, not a value"};
  }

  static Error conflict(const char* operation, std::string_view key, Version expected, Version current) {
    return {errc::conflict, std::string(operation) + " \"" + std::string(key) + "\": expected version " +
                                std::to_string(expected) + ", found " +
                                (current == ports::absent_version ? std::string("none") : std::to_string(current))};
  }

  // The entry if present and not expired; drops it when expired. Caller holds the mutex.
  Entry* live(std::string_view key) {
    const auto found = entries_.find(key);
    if (found == entries_.end()) return nullptr;
    if (found->second.expires_at && *found->second.expires_at <= clock_.steady_now()) {
      entries_.erase(found);
      return nullptr;
    }
    return &found->second;
  }

  Version write(std::string_view key, std::string_view value, std::chrono::milliseconds ttl) {
    if (++writes_since_sweep_ >= 4096) sweep();
    auto found = entries_.find(key);
    if (found == entries_.end()) found = entries_.emplace(std::string(key), Entry{}).first;
    auto& entry = found->second;
    entry.is_list = false;
    entry.items.clear();
    entry.value.assign(value);
    // One counter for all keys: a key deleted and written again never gets an old version back.
    entry.version = ++last_version_;
    entry.expires_at = ttl > std::chrono::milliseconds{0}
                           ? std::optional<Clock::SteadyTime>(clock_.steady_now() + ttl)
                           : std::nullopt;
    return entry.version;
  }

  // Expired keys nobody reads again would otherwise stay forever.
  void sweep() {
    writes_since_sweep_ = 0;
    const auto now = clock_.steady_now();
    std::erase_if(entries_, [&](const auto& item) { return item.second.expires_at && *item.second.expires_at <= now; });
  }

  Clock& clock_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry, TransparentHash, std::equal_to<>> entries_;
  Version last_version_ = ports::absent_version;
  std::size_t writes_since_sweep_ = 0;
};

}  // namespace

std::unique_ptr<ports::KVStore> make_memory_kv(MemoryKvOptions options) {
  return std::make_unique<MemoryKv>(options);
}

}  // namespace baton::adapters::memory
