#include "baton/orchestrator/trace_writer.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "baton/core/error.hpp"
#include "baton/orchestrator/trace.hpp"

namespace baton::orchestrator {

namespace {

TraceWriterOptions workable(TraceWriterOptions options) {
  options.max_batch = std::max<std::size_t>(options.max_batch, 1);
  options.capacity = std::max(options.capacity, options.max_batch);
  return options;
}

}  // namespace

TraceWriter::TraceWriter(ports::KVStore& kv, TraceWriterOptions options)
    : kv_(kv), options_(workable(options)), logger_(log::Logger().child("trace")),
      thread_([this](std::stop_token stop) { run(stop); }) {}

TraceWriter::~TraceWriter() {
  flush();
  thread_.request_stop();  // what is still queued now is dropped (and logged) by the thread
  thread_.join();
}

void TraceWriter::record(std::string_view tenant_id, std::string_view corr_id, boost::json::object event) {
  ports::ListAppend append{trace_key(tenant_id, corr_id), trace_item(std::move(event)), max_trace_events, trace_ttl};
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return queue_.size() < options_.capacity || store_failing_; });
  if (queue_.size() >= options_.capacity) {
    // The store is away: a trace is best effort, and waiting for it would stall the work it
    // describes. The event is dropped and counted; the handler goes on.
    if (options_.unwritten) options_.unwritten->fetch_add(1, std::memory_order_relaxed);
    if (dropped_while_failing_++ == 0) {
      logger_.warn("trace events dropped while the store is failing", {{"queued", queue_.size()}, {"first_key", append.key}});
    }
    return;
  }
  if (queue_.empty()) oldest_queued_at_ = std::chrono::steady_clock::now();
  queue_.push_back(std::move(append));
  ++recorded_;
  // The writer sleeps until the oldest event's linger is over, so only the first event of a
  // batch, or the one that fills it, must wake it.
  if (queue_.size() == 1 || queue_.size() == options_.max_batch) changed_.notify_all();
}

bool TraceWriter::flush(std::chrono::milliseconds within) { return drain(within).has_value(); }

std::optional<std::chrono::steady_clock::time_point> TraceWriter::drain(std::chrono::milliseconds within) {
  std::unique_lock lock(mutex_);
  const auto wanted = recorded_;
  if (done_ >= wanted) return last_done_at_;
  flush_up_to_ = std::max(flush_up_to_, wanted);
  changed_.notify_all();
  if (!changed_.wait_for(lock, within, [&] { return done_ >= wanted; })) return std::nullopt;
  return last_done_at_;
}

void TraceWriter::run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, stop, [&] { return !queue_.empty(); });
    if (stop.stop_requested()) {
      // The destructor waited flush_within for these: the store is away or too slow.
      if (!queue_.empty()) {
        if (options_.unwritten) options_.unwritten->fetch_add(queue_.size(), std::memory_order_relaxed);
        logger_.warn("trace events not recorded", {{"events", queue_.size()}, {"error", "still queued when the writer stopped"},
                                                   {"first_key", queue_.front().key}});
      }
      return;
    }
    const auto due = oldest_queued_at_ + options_.linger;
    changed_.wait_until(lock, stop, due, [&] { return queue_.size() >= options_.max_batch || flush_up_to_ > done_; });
    const auto count = std::min(queue_.size(), options_.max_batch);
    std::vector<ports::ListAppend> batch(std::make_move_iterator(queue_.begin()),
                                         std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(count)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
    // What is left (a full batch was taken) keeps the old time: it has waited long enough already.
    lock.unlock();
    changed_.notify_all();  // room for recorders that waited for it
    const bool answered = write(batch);
    lock.lock();
    done_ += count;
    last_done_at_ = std::chrono::steady_clock::now();
    if (answered && store_failing_ && dropped_while_failing_ > 0) {
      logger_.info("trace store answers again", {{"events_dropped", dropped_while_failing_}});
    }
    if (answered) dropped_while_failing_ = 0;
    store_failing_ = !answered;
    changed_.notify_all();
  }
}

bool TraceWriter::write(const std::vector<ports::ListAppend>& appends) {
  auto results = kv_.append_each(appends);
  std::size_t failed = 0;
  std::optional<Error> first_failure;
  std::string first_failed_key;
  for (std::size_t i = 0; i < appends.size(); ++i) {
    auto& result = results[i];
    // A trace an earlier version wrote (one JSON value, not a list) is converted, then extended.
    if (!result && result.error() == errc::wrong_type) result = append_trace_item(kv_, appends[i].key, appends[i].item);
    if (result) continue;
    ++failed;
    if (!first_failure) {
      first_failure = result.error();
      first_failed_key = appends[i].key;
    }
  }
  if (failed > 0) {
    if (options_.unwritten) options_.unwritten->fetch_add(failed, std::memory_order_relaxed);
    logger_.warn("trace events not recorded", {{"events", failed}, {"of", appends.size()}, {"error", first_failure->message()},
                                               {"first_key", first_failed_key}});
  }
  return !first_failure || failed < appends.size() || !is_retryable(*first_failure);
}

}  // namespace baton::orchestrator
