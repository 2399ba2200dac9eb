#pragma once
// Writes trace events (trace.hpp) off the handlers' path. record() queues an event and returns; the
// writer's own thread gathers what is queued for up to `linger` and writes it with one
// KVStore::append_each: one round trip for many events, where each handler used to wait for a
// round trip of its own per event (four per task in the reference pipeline).
//
// The price, accepted because a trace is diagnostic and never part of the hand-off: events still
// queued when the process is killed outright (kill -9) are lost: those of the last `linger`, or,
// when the store falls behind (it is saturated or slow), up to `capacity` queued plus one batch in
// flight. Beyond `capacity` the recorders wait, so the trace lags its hand-offs by that much at
// most and the queue's memory is bounded (1,024 events by default; with 8,192, four phases' queues
// held 13.5 MB behind a saturated server, and lagged 150 ms: BENCHMARKS.md, round 20). But while
// the store is away (the last batch failed as unavailable), waiting for it would stall the work
// the trace describes: a full queue then drops the new event, logs that once, and counts it as
// not written, until a batch is written again.
// flush(), and the destructor, write everything queued first, within `flush_within`: a store that
// is away does not hold a stopping worker for longer (what is left is logged and counted as not
// written). Within one writer, events keep the order they were recorded in; two writers (phases,
// processes) may store theirs in another order than the hand-offs', which read_trace puts right
// (in_causal_order).

#include <boost/json/object.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "baton/core/log.hpp"
#include "baton/ports/kv_store.hpp"

namespace baton::orchestrator {

struct TraceWriterOptions {
  std::chrono::milliseconds linger{10};  // how long the first queued event waits for company
  std::size_t max_batch = 256;           // written at once when this many are queued
  std::size_t capacity = 1024;           // queued at most; record() waits for room beyond it
  std::chrono::milliseconds flush_within{5'000};  // the destructor's wait for what is queued
  std::atomic<std::uint64_t>* unwritten = nullptr;  // counts the events not written, when set
};

class TraceWriter {
 public:
  explicit TraceWriter(ports::KVStore& kv, TraceWriterOptions options = {});
  ~TraceWriter();  // writes what is queued first
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Queues one event of the trace of (tenant_id, corr_id), with "at" set now when it has none.
  // Waits while `capacity` events are queued behind a store that answers slowly, instead of
  // growing the queue without end; drops the event (counted) when the store is away.
  void record(std::string_view tenant_id, std::string_view corr_id, boost::json::object event);

  // Waits until every event recorded before the call was written, or failed to be (a failure is
  // logged; a trace never fails the work it describes), for at most `within`. True when they were.
  bool flush(std::chrono::milliseconds within);
  bool flush() { return flush(options_.flush_within); }

  // flush(within), answering when the writer last finished a batch, which is when the last of
  // those events was done if nothing was recorded after them: the end of the work the recorders
  // left behind (what a benchmark's run must include). The clock's epoch if nothing was ever
  // written; nullopt when some were still queued at the deadline.
  std::optional<std::chrono::steady_clock::time_point> drain(std::chrono::milliseconds within);

 private:
  void run(std::stop_token stop);
  // False when the store did not answer: every append failed as the store being away would.
  bool write(const std::vector<ports::ListAppend>& appends);

  ports::KVStore& kv_;
  TraceWriterOptions options_;
  log::Logger logger_;
  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::deque<ports::ListAppend> queue_;
  std::chrono::steady_clock::time_point oldest_queued_at_{};
  std::uint64_t recorded_ = 0;     // events ever queued
  std::uint64_t done_ = 0;         // events written or given up on, in queue order
  std::uint64_t flush_up_to_ = 0;  // the last flush() wants every event up to this one done
  std::chrono::steady_clock::time_point last_done_at_{};  // when done_ last grew
  bool store_failing_ = false;            // the last batch found the store away: a full queue drops
  std::uint64_t dropped_while_failing_ = 0;  // events dropped since the store last answered
  std::jthread thread_;            // last: started once everything above is ready
};

}  // namespace baton::orchestrator
