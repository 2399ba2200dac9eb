#pragma once
// Idempotency across processes: run a function once per key, and tell redeliveries apart.
//
// Both work on any store with the KVStore semantics (get, cas with set-if-absent, del_if, TTLs),
// such as baton::ports::KVStore; they are templates so that core does not depend on the ports.
//
// once(store, key, fn, options):
//   - The first caller takes a lease (set-if-absent with lease_ttl; tried before reading the key, so
//     a first call is one round trip before fn) and runs fn. A value is stored with result_ttl,
//     and every later caller gets that stored value without running fn.
//   - A caller that finds the lease held waits (polling, up to wait_timeout) for the result, or with
//     wait = false answers errc::in_progress at once.
//   - If fn fails, the lease is released and the error returned: the next caller runs fn again.
//   - If storing the result fails for a passing reason (the store restarting), it is retried for up
//     to half the lease, so a short outage does not make a later caller run fn again.
//   - If the runner dies, its lease expires after lease_ttl and the next caller runs fn. So fn must
//     finish well within lease_ttl; a runner that outlives its lease may overlap a second one (the
//     second store of the result is then refused, and `lease_lost` says so).
//   - A caller that names an `owner` takes over a lease held under the same owner at once: for
//     redeliveries of one message (owner = the envelope id), which the bus gives to one consumer at
//     a time, so the holder of the old lease is dead or has lost the message. Without it, a worker
//     killed inside fn would hold its message up for the whole lease_ttl.
//   - A lease write whose reply is lost (the store restarted) is looked up again by its owner.
//     The first lease write is one too: with the store away from the start, once() waits for it
//     (within half of lease_ttl) before it answers the store's error.
// deduplicate(store, envelope, ttl): Seen::first the first time an envelope id is offered within ttl,
//   Seen::duplicate afterwards. One atomic set-if-absent: exact under concurrency.

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>

#include "baton/core/clock.hpp"
#include "baton/core/envelope.hpp"
#include "baton/core/keys.hpp"
#include "baton/core/result.hpp"
#include "baton/core/uuid.hpp"

namespace baton {

struct OnceOptions {
  std::chrono::milliseconds result_ttl{86'400'000};  // how long the result is kept and served
  std::chrono::milliseconds lease_ttl{30'000};       // how long a runner may take before others may
  bool wait = true;                                  // wait for a running caller, or answer in_progress
  std::chrono::milliseconds wait_timeout{60'000};    // longest wait; then errc::in_progress
  std::chrono::milliseconds poll_interval{10};       // how often a waiting caller looks again
  Clock* clock = &SystemClock::instance();
  std::stop_token stop;                              // ends a wait with errc::cancelled
  std::string owner;                                 // who runs: same owner = same caller (see above);
                                                     // empty: this call alone
};

template <class T>
struct OnceOutcome {
  T value;
  bool ran_here = false;    // this call ran fn (false: the value was stored by an earlier run)
  bool lease_lost = false;  // fn ran here, but its lease had expired and the result was not stored
};

enum class Seen { first, duplicate };

namespace detail {

enum class OnceState { absent, running, done, foreign };

struct OnceRecord {
  OnceState state = OnceState::absent;
  boost::json::value result;  // when done
  std::string owner;          // when running: the call that holds the lease
};

OnceRecord parse_once_record(const std::optional<std::string>& stored);
std::string running_once_record(std::string_view owner);
std::string done_once_record(const boost::json::value& result);
Error once_foreign_error(std::string_view key);
Error once_in_progress_error(std::string_view key, std::chrono::milliseconds waited);

template <class T>
Result<T> value_from_record(const boost::json::value& stored, std::string_view key) {
  try {
    return boost::json::value_to<T>(stored);
  } catch (const std::exception& conversion_error) {
    return Error{errc::decode_failed, "the stored result of once(\"" + std::string(key) +
                                          "\") does not convert to the caller's type: " + conversion_error.what()};
  }
}

}  // namespace detail

template <class Store, class F>
auto once(Store& store, std::string_view key, F&& fn, const OnceOptions& options = {})
    -> Result<OnceOutcome<typename std::invoke_result_t<F&>::value_type>> {
  using T = typename std::invoke_result_t<F&>::value_type;
  static_assert(!std::is_void_v<T>, "once() stores fn's value for later callers: return a value, not void");
  using Outcome = OnceOutcome<T>;
  if (key.empty()) return Error{errc::invalid_argument, "once: the key must not be empty"};

  const auto started = options.clock->steady_now();
  const std::string owner = options.owner.empty() ? new_uuid_v7(*options.clock) : options.owner;
  std::optional<decltype(options.clock->steady_now())> lease_unsure_since;  // a lease write with no answer
  auto unsure_pause = std::chrono::milliseconds{5};
  // After an unsure lease write: true once a pause is slept and the key may be looked at again;
  // false when half the lease has passed since, or the caller stops.
  const auto pause_while_unsure = [&] {
    if (!lease_unsure_since) lease_unsure_since = options.clock->steady_now();
    if (options.clock->steady_now() - *lease_unsure_since >= options.lease_ttl / 2 ||
        !options.clock->sleep_for(unsure_pause, options.stop)) {
      return false;
    }
    unsure_pause = std::min(unsure_pause * 2, std::chrono::milliseconds{200});
    return true;
  };
  // Most calls are the first for their key: the lease is tried before anything is read (one round
  // trip instead of two), and the key is read only when the lease is refused.
  bool assume_absent = true;
  while (true) {
    detail::OnceRecord record;  // absent
    std::uint64_t version = 0;  // of what is stored, when something is
    if (!assume_absent) {
      auto stored = store.get(key);
      if (!stored) {
        // While a lease write is unsure, a store that is still away is waited for too.
        if (lease_unsure_since && is_retryable(stored.error()) && pause_while_unsure()) continue;
        return std::move(stored).error();
      }
      std::optional<std::string> text;
      if (*stored) {
        text = (*stored)->value;
        version = (*stored)->version;
      }
      record = detail::parse_once_record(text);
    }
    assume_absent = false;

    if (record.state == detail::OnceState::done) {
      auto value = detail::value_from_record<T>(record.result, key);
      if (!value) return std::move(value).error();
      return Outcome{std::move(value).value(), false, false};
    }
    if (record.state == detail::OnceState::foreign) return detail::once_foreign_error(key);

    // Our own lease: found after a lease write whose reply was lost (below), or left by an earlier
    // delivery of the same message under the same owner. It is ours to run with.
    const bool ours = record.state == detail::OnceState::running && record.owner == owner;
    if (record.state == detail::OnceState::absent || ours) {
      // Taken if absent, or renewed for a whole lease_ttl if ours (an old lease may be nearly out).
      auto lease = store.cas(key, ours ? version : 0 /* absent */, detail::running_once_record(owner), options.lease_ttl);
      if (!lease) {
        if (lease.error() == errc::conflict) continue;  // another caller took it first: look again
        // The write may have landed with its reply lost (the store restarted meanwhile): then the
        // lease is ours, and giving up would leave it to block every caller for lease_ttl. Look
        // again while the store comes back, within half the lease.
        if (is_retryable(lease.error()) && pause_while_unsure()) continue;
        return std::move(lease).error();
      }
      auto result = fn();
      if (!result) {
        (void)store.del_if(key, *lease);  // let the next caller try; if this fails the lease expires
        return std::move(result).error();
      }
      // The effect has happened: storing its result must not be given up lightly, or a later caller
      // would run fn again. A store that is briefly away (a restart) is waited for, within the lease.
      const auto done_record = detail::done_once_record(boost::json::value_from(*result));
      const auto store_deadline = options.clock->steady_now() + options.lease_ttl / 2;
      auto saved = store.cas(key, *lease, done_record, options.result_ttl);
      for (auto pause = std::chrono::milliseconds{5}; !saved && is_retryable(saved.error()) &&
                                                      options.clock->steady_now() < store_deadline;
           pause = std::min(pause * 2, std::chrono::milliseconds{200})) {
        if (!options.clock->sleep_for(pause, options.stop)) break;
        saved = store.cas(key, *lease, done_record, options.result_ttl);
        if (!saved && saved.error() == errc::conflict) {
          // An earlier try may have landed with its reply lost: then the record is ours and done.
          auto now_stored = store.get(key);
          if (now_stored && *now_stored && detail::parse_once_record((*now_stored)->value).state == detail::OnceState::done) {
            return Outcome{std::move(result).value(), true, false};
          }
        }
      }
      if (!saved && saved.error() != errc::conflict) return std::move(saved).error();
      return Outcome{std::move(result).value(), true, !saved};
    }

    // Running elsewhere.
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(options.clock->steady_now() - started);
    if (!options.wait || waited >= options.wait_timeout) return detail::once_in_progress_error(key, waited);
    if (!options.clock->sleep_for(options.poll_interval, options.stop)) {
      return Error{errc::cancelled, "once(\"" + std::string(key) + "\"): stopped while waiting for another caller"};
    }
  }
}

// once() with only a result TTL, as most callers want.
template <class Store, class F>
auto once(Store& store, std::string_view key, F&& fn, std::chrono::milliseconds result_ttl) {
  OnceOptions options;
  options.result_ttl = result_ttl;
  return once(store, key, std::forward<F>(fn), options);
}

// First-seen or duplicate for an envelope id, remembered for `ttl` under the envelope's tenant.
template <class Store>
Result<Seen> deduplicate(Store& store, const EnvelopeMeta& envelope, std::chrono::milliseconds ttl) {
  auto marked = store.cas(keys::dedup_key(envelope.tenant_id, envelope.id), 0 /* absent */, "1", ttl);
  if (marked) return Seen::first;
  if (marked.error() == errc::conflict) return Seen::duplicate;
  return std::move(marked).error();
}

}  // namespace baton
