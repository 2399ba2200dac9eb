#pragma once
// The story of one correlation id across phases, kept in the KV store under
// "t:<tenant>:trace:<corr_id>" as a list (KVStore::append) of JSON events, oldest first:
//   {"event":"submitted","topic":...,"msg_id":...,"at":...}
//   {"event":"handled"|"failed"|"timed_out"|"dead_lettered","phase":...,"msg_id":...,"attempt":N,
//    "at":...,"elapsed_ms":N[,"error":...][,"next_msg_id":...,"to":...]}
// Recording is diagnostic, not part of the hand-off: an attempt whose outcome a crash undid may
// still show, followed by the attempt that replaced it. Phases record through a TraceWriter
// (trace_writer.hpp), which writes in batches: a process killed outright loses the events it had
// not written yet.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "baton/core/result.hpp"
#include "baton/ports/kv_store.hpp"

namespace baton::orchestrator {

inline constexpr std::size_t max_trace_events = 500;
inline constexpr std::chrono::hours trace_ttl{24 * 7};

std::string trace_key(std::string_view tenant_id, std::string_view corr_id);

// The stored form of an event: its JSON, with "at" (now) added when it has none.
std::string trace_item(boost::json::object event);

// Appends a stored event (trace_item) to the trace at `key` (trace_key), keeping the newest
// max_trace_events; a trace an earlier version wrote is turned into a list first.
Result<void> append_trace_item(ports::KVStore& kv, const std::string& key, std::string_view item);

// Appends an event: one KVStore::append, keeping the newest max_trace_events. Adds "at" when the
// event has none. A trace an earlier version wrote (one value holding a JSON array) is turned
// into a list first.
Result<void> record_trace_event(ports::KVStore& kv, std::string_view tenant_id, std::string_view corr_id,
                                boost::json::object event);

// The events, in causal order (in_causal_order), also of a trace an earlier version wrote;
// errc::not_found when nothing was recorded for that id.
// Events in the order they happened, whatever order they were stored in: each message's events
// (its submit, then its attempts by number), each hand-off followed by the events of the message
// it made (next_msg_id). Phases write their events in batches from several threads and
// processes, so a later phase's event can be stored before an earlier one's. Messages no stored
// event led to (the submitted task, a replay) come in the order they were first stored.
boost::json::array in_causal_order(boost::json::array events);

Result<boost::json::array> read_trace(ports::KVStore& kv, std::string_view tenant_id, std::string_view corr_id);

}  // namespace baton::orchestrator
