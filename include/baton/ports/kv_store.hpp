#pragma once
// KVStore: a shared key-value store with expiry, atomic counters and compare-and-swap on versions.
//
// Contract (checked by tests/contract/kv_contract.cpp against every adapter):
// - Thread-safe: any method may be called from any thread at any time. Calls block until the store
//   answered (or the adapter's own timeout passed, errc::timeout).
// - Keys are opaque strings chosen by the caller (core/keys.hpp builds tenant-scoped ones); the
//   adapter may put its own namespace prefix in front. Values are bytes.
// - Every stored value has a version: an opaque non-zero number that changes on every successful
//   write of that key and is never handed out twice for the same key (no ABA after a delete and
//   re-create). Version 0 means "absent" in `cas`.
// - Expiry: a key with a TTL disappears once it has passed; reads never return an expired key.
//   `set`/`cas` without a TTL store without expiry; a write replaces an earlier TTL.
// - Atomicity: `incr`, `cas`, `del_if` and `append` are atomic against every other call on the same key, in
//   every process that shares the store. Nothing is atomic across keys.
// - Errors: errc::conflict (version mismatch), errc::wrong_type (incr of a non-integer, a list
//   used as a value or a value as a list),
//   errc::invalid_argument (empty key, negative TTL), errc::unavailable / errc::timeout (store not
//   reachable; retryable), errc::permission_denied / errc::auth_failed (permanent).

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/result.hpp"
#include "baton/ports/health.hpp"

namespace baton::ports {

using Version = std::uint64_t;
inline constexpr Version absent_version = 0;

// No expiry.
inline constexpr std::chrono::milliseconds no_ttl{0};

struct VersionedValue {
  std::string value;
  Version version = absent_version;
};

// One append of KVStore::append_each: the arguments `append` takes.
struct ListAppend {
  std::string key;
  std::string item;
  std::size_t keep_last = 0;
  std::chrono::milliseconds ttl = no_ttl;
};

class KVStore {
 public:
  virtual ~KVStore() = default;

  // The value and its version, or nullopt when the key is absent or expired.
  virtual Result<std::optional<VersionedValue>> get(std::string_view key) = 0;

  // Stores unconditionally; returns the new version.
  virtual Result<Version> set(std::string_view key, std::string_view value, std::chrono::milliseconds ttl = no_ttl) = 0;

  // Removes the key; true when it existed.
  virtual Result<bool> del(std::string_view key) = 0;

  // Adds `delta` to the integer stored at key (absent counts as 0) and returns the new value.
  // The TTL, when given, is (re)set on every call. A value that is not a base-10 64-bit integer is
  // errc::wrong_type; overflow is errc::invalid_argument and leaves the value unchanged.
  virtual Result<std::int64_t> incr(std::string_view key, std::int64_t delta = 1,
                                    std::chrono::milliseconds ttl = no_ttl) = 0;

  // Writes `value` only if the key's current version is `expected` (absent_version: only if the key
  // is absent, i.e. set-if-absent). Returns the new version, or errc::conflict with nothing written.
  virtual Result<Version> cas(std::string_view key, Version expected, std::string_view value,
                              std::chrono::milliseconds ttl = no_ttl) = 0;

  // Removes the key only if its version is `expected`; errc::conflict otherwise (also when absent).
  virtual Result<void> del_if(std::string_view key, Version expected) = 0;

  // Appends `item` to the list at key (made when absent), keeps only the newest `keep_last` items
  // (0 keeps all) and, when a TTL is given, (re)sets it; no_ttl leaves the key's expiry as it was.
  // One call, atomic against every other call on the same key, and no read-modify-write: for
  // logs such as a correlation id's trace, which many writers extend and nobody rewrites.
  // A list is not a value: `get`, `incr`, `cas` and `del_if` of a list, and `append` to a value,
  // are errc::wrong_type with nothing changed; `set` and `del` replace or remove either.
  virtual Result<void> append(std::string_view key, std::string_view item, std::size_t keep_last,
                              std::chrono::milliseconds ttl = no_ttl) = 0;

  // Each append as `append` makes it, in order, in one call, so that a writer that gathers many
  // (the orchestrator's trace writer) pays one round trip for all of them. Each is atomic on its
  // own key; the batch is not atomic as a whole. One result per append, in the same order; a store
  // out of reach fails every one.
  virtual std::vector<Result<void>> append_each(std::span<const ListAppend> appends) = 0;

  // The items of the list at key, oldest first; empty when the key is absent.
  virtual Result<std::vector<std::string>> items(std::string_view key) = 0;

  virtual Health health() = 0;

  // What the store's own configuration puts at risk of the writes it acknowledged (once() answers,
  // release records): a sentence saying what and why, or nothing when nothing is known to be at
  // risk, or the store does not say. As MessageBus::durability_risk, for a store of its own.
  virtual std::optional<std::string> durability_risk() { return std::nullopt; }
};

}  // namespace baton::ports
