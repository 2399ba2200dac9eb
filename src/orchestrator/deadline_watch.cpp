#include "baton/orchestrator/deadline_watch.hpp"

namespace baton::orchestrator {

DeadlineWatch::DeadlineWatch() : thread_([this](std::stop_token stop) { run(stop); }) {}

DeadlineWatch::~DeadlineWatch() {
  thread_.request_stop();
  thread_.join();
}

std::uint64_t DeadlineWatch::watch(Time deadline, std::stop_source source) {
  std::lock_guard lock(mutex_);
  const auto id = next_++;
  // The watch thread sleeps until the earliest deadline, so only a new earliest one must wake it.
  // Handlers of one phase share a timeout, so most deadlines come after those already waiting, and
  // waking the thread for each would cost two context switches per message for nothing.
  const bool earliest = pending_.empty() || deadline < pending_.begin()->first;
  pending_.emplace(deadline, std::make_pair(id, std::move(source)));
  if (earliest) changed_.notify_all();
  return id;
}

void DeadlineWatch::cancel(std::uint64_t registration) {
  std::lock_guard lock(mutex_);
  std::erase_if(pending_, [&](const auto& item) { return item.second.first == registration; });
}

void DeadlineWatch::run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    while (!pending_.empty() && pending_.begin()->first <= now) {
      pending_.begin()->second.second.request_stop();
      pending_.erase(pending_.begin());
    }
    if (pending_.empty()) {
      changed_.wait(lock, stop, [&] { return !pending_.empty(); });
    } else {
      const auto next = pending_.begin()->first;
      changed_.wait_until(lock, stop, next, [&] { return pending_.empty() || pending_.begin()->first < next; });
    }
  }
}

}  // namespace baton::orchestrator
