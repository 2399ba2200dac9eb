#include "baton/adapters/memory/memory_bus.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "baton/core/log.hpp"
#include "baton/core/uuid.hpp"
#include "baton/ports/bus_checks.hpp"

namespace baton::adapters::memory {
namespace {

using ports::DeadLetter;
using ports::Delivery;
using SteadyTime = std::chrono::steady_clock::time_point;
using Seq = std::uint64_t;

// When an entry carries an id that another consumer of the group is handling right now, it waits
// this long before it is looked at again (then it is skipped if that handling succeeded).
constexpr std::chrono::milliseconds same_id_in_flight_delay{5};

struct PendingEntry {
  std::string consumer;  // who holds it now; empty while it waits for (re)delivery
  std::string body;      // what the next delivery hands out (attempts already advanced)
};

struct Group {
  Seq next_seq = 1;                                   // the next never-delivered entry
  std::map<Seq, PendingEntry> pending;                // delivered and not acked, or waiting to retry
  std::multimap<SteadyTime, Seq> waiting;             // pending entries nobody holds, by due time
  std::unordered_map<std::string, SteadyTime> handled;  // envelope id -> until when it is remembered
  std::unordered_set<std::string> in_flight;          // envelope ids being handled right now
  std::size_t handled_at_last_sweep = 0;
  std::size_t consumers = 0;                          // subscriptions running now
};

class EphemeralQueue;

struct Topic {
  std::deque<std::string> entries;  // entries[i] has seq first_seq + i
  Seq first_seq = 1;
  Seq next_seq = 1;
  std::map<std::string, Group, std::less<>> groups;
  std::vector<DeadLetter> dead_letters;
  Seq next_dead_letter = 1;
  std::vector<std::weak_ptr<EphemeralQueue>> ephemeral;
  // Its consumers wait here, so that a change to one topic wakes only the threads that read it:
  // with one wake-up for all, every publish and hand-off woke every consumer of every topic.
  std::unique_ptr<std::condition_variable_any> changed = std::make_unique<std::condition_variable_any>();
  std::uint64_t generation = 0;  // bumped by notify(): lets waiters tell a change from a spurious wake

  // Caller holds the bus's mutex.
  void notify() {
    ++generation;
    changed->notify_all();
  }

  void append(std::string body) {
    entries.push_back(std::move(body));
    ++next_seq;
  }
};

// Everything the bus knows; shared with the subscriptions' threads so that either may outlive the
// other.
struct State {
  explicit State(MemoryBusOptions bus_options) : options(bus_options) {}
  MemoryBusOptions options;
  std::mutex mutex;
  std::map<std::string, Topic, std::less<>> topics;

  Topic& topic(std::string_view name) {
    auto found = topics.find(name);
    if (found == topics.end()) found = topics.emplace(std::string(name), Topic{}).first;
    return found->second;
  }
};

// One ephemeral subscriber's inbox and threads.
class EphemeralQueue {
 public:
  explicit EphemeralQueue(std::size_t limit) : limit_(limit) {}

  // False when the inbox is full (the message is dropped: ephemeral is at-most-once).
  bool offer(const JsonEnvelope& envelope) {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= limit_) return false;
    queue_.push_back(envelope);
    ready_.notify_one();
    return true;
  }

  std::optional<JsonEnvelope> take(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    if (!ready_.wait(lock, stop, [&] { return !queue_.empty(); })) return std::nullopt;
    auto envelope = std::move(queue_.front());
    queue_.pop_front();
    return envelope;
  }

 private:
  std::size_t limit_;
  std::mutex mutex_;
  std::condition_variable_any ready_;
  std::deque<JsonEnvelope> queue_;
};

class ThreadsControl : public ports::Subscription::Control {
 public:
  ThreadsControl(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~ThreadsControl() override { ThreadsControl::stop(); }

  void stop() override {
    if (stopped_) return;
    stopped_ = true;
    stop_source_.request_stop();
    {  // the stop token wakes the waiting threads; this is for any that waits without it
      std::lock_guard lock(state_->mutex);
      for (auto& [name, topic] : state_->topics) topic.notify();
    }
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
  }

 protected:
  std::shared_ptr<State> state_;
  std::stop_source stop_source_;
  std::vector<std::thread> workers_;
  bool stopped_ = false;
};

class DurableSubscription final : public ThreadsControl {
 public:
  DurableSubscription(std::shared_ptr<State> state, std::string topic, ports::Handler handler,
                      ports::SubscribeOptions options)
      : ThreadsControl(std::move(state)), topic_(std::move(topic)), handler_(std::move(handler)),
        options_(std::move(options)) {
    {
      std::lock_guard lock(state_->mutex);
      ++group().consumers;
    }
    for (int i = 0; i < options_.concurrency; ++i) {
      workers_.emplace_back([this, stop = stop_source_.get_token()] { run(stop); });
    }
  }
  // Threads use this object's members: they must end before the members do.
  ~DurableSubscription() override { DurableSubscription::stop(); }

  void stop() override {
    if (stopped_) return;
    ThreadsControl::stop();
    std::lock_guard lock(state_->mutex);
    --group().consumers;
  }

 private:
  struct Claim {
    Seq seq = 0;
    std::string body;
  };

  Group& group() { return state_->topics.find(topic_)->second.groups.find(options_.group)->second; }
  Topic& topic() { return state_->topics.find(topic_)->second; }

  // Takes the next entry for this consumer, or waits. Caller holds the lock.
  std::optional<Claim> claim(std::unique_lock<std::mutex>& lock, std::stop_token stop) {
    while (!stop.stop_requested()) {
      auto& g = group();
      auto& t = topic();
      const auto now = std::chrono::steady_clock::now();
      if (!g.waiting.empty() && g.waiting.begin()->first <= now) {
        const Seq seq = g.waiting.begin()->second;
        g.waiting.erase(g.waiting.begin());
        auto& entry = g.pending.at(seq);
        entry.consumer = options_.consumer;
        return Claim{seq, entry.body};
      }
      if (g.next_seq < t.next_seq) {
        const Seq seq = g.next_seq++;
        std::string body = t.entries.at(seq - t.first_seq);
        g.pending.emplace(seq, PendingEntry{options_.consumer, body});
        return Claim{seq, std::move(body)};
      }
      // Sleep until something changes (a publish, an ack, a put-back), the next retry comes due,
      // or the subscription stops; then look again.
      const auto seen = t.generation;
      const auto changed = [&] { return topic().generation != seen; };
      if (g.waiting.empty()) {
        t.changed->wait(lock, stop, changed);
      } else {
        // A copy: wait_until keeps a reference to the deadline while the lock is released, and the
        // entry it came from may be taken (and freed) by another consumer meanwhile.
        const auto due = g.waiting.begin()->first;
        t.changed->wait_until(lock, stop, due, changed);
      }
    }
    return std::nullopt;
  }

  void run(std::stop_token stop) {
    const ports::DeliveryInfo info{topic_, options_.group, options_.consumer, stop};
    std::unique_lock lock(state_->mutex);
    while (auto claimed = claim(lock, stop)) {
      const auto received_at = std::chrono::steady_clock::now();
      lock.unlock();
      auto decoded = decode(claimed->body, state_->options.limits);
      lock.lock();
      if (!decoded) {
        dead_letter(claimed->seq, claimed->body, "decode_failed", decoded.error().message(), 0);
        continue;
      }
      const JsonEnvelope& envelope = *decoded;
      auto& g = group();
      if (is_handled(g, envelope.id)) {
        ack(claimed->seq);
        continue;
      }
      if (!g.in_flight.insert(envelope.id).second) {
        put_back(claimed->seq, std::chrono::steady_clock::now() + same_id_in_flight_delay);
        continue;
      }
      lock.unlock();
      ports::StagedHandOff handoff(state_->options.limits, nullptr);  // in one process every topic can be atomic
      ports::DeliveryInfo delivery = info;
      delivery.handoff = &handoff;
      delivery.received_at = received_at;
      auto outcome = ports::invoke_handler(handler_, envelope, delivery);
      const bool crashed = state_->options.crash_before_commit && state_->options.crash_before_commit(topic_, envelope);
      lock.lock();
      if (crashed) {
        group().in_flight.erase(envelope.id);
        put_back(claimed->seq, std::chrono::steady_clock::now());
        continue;
      }
      finish(claimed->seq, envelope, outcome, stop, handoff.outputs());
    }
  }

  bool is_handled(Group& g, const std::string& id) {
    const auto found = g.handled.find(id);
    if (found == g.handled.end()) return false;
    if (found->second > std::chrono::steady_clock::now()) return true;
    g.handled.erase(found);
    return false;
  }

  // Caller holds the lock, so the hand-off, the mark and the ack are one step.
  void finish(Seq seq, const JsonEnvelope& envelope, const Result<void>& outcome, const std::stop_token& stop,
              const std::vector<ports::StagedHandOff::Output>& outputs) {
    auto& g = group();
    g.in_flight.erase(envelope.id);
    if (outcome) {
      for (const auto& output : outputs) {
        auto& target = state_->topic(output.topic);
        target.append(output.body);
        target.notify();
      }
      remember_handled(g, envelope.id);
      ack(seq);
      if (options_.on_acked) options_.on_acked(envelope);
      return;
    }
    const Error& failure = outcome.error();
    if (failure == errc::cancelled && stop.stop_requested()) {
      // Not handled and not a verdict on the message: leave it for another consumer, no attempt spent.
      put_back(seq, std::chrono::steady_clock::now());
      return;
    }
    const auto& policy = options_.redelivery;
    const bool retryable = policy.retryable ? policy.retryable(failure) : is_retryable(failure);
    if (!retryable) {
      dead_letter(seq, g.pending.at(seq).body, "permanent_failure", failure.message(), envelope.attempts);
      return;
    }
    if (policy.max_attempts > 0 && envelope.attempts >= static_cast<std::uint32_t>(policy.max_attempts)) {
      dead_letter(seq, g.pending.at(seq).body, "attempts_exhausted", failure.message(), envelope.attempts);
      return;
    }
    RetrySchedule schedule(policy);
    const auto delay = schedule.next_delay(static_cast<int>(envelope.attempts));
    g.pending.at(seq).body = encode(retry_envelope(envelope));
    put_back(seq, std::chrono::steady_clock::now() + delay);
  }

  void remember_handled(Group& g, const std::string& id) {
    const auto now = std::chrono::steady_clock::now();
    g.handled[id] = now + options_.dedup_window;
    // Sweep expired marks whenever the set doubled since the last sweep: amortised O(1) per ack.
    if (g.handled.size() >= 2 * std::max<std::size_t>(g.handled_at_last_sweep, 1024)) {
      std::erase_if(g.handled, [&](const auto& mark) { return mark.second <= now; });
      g.handled_at_last_sweep = g.handled.size();
    }
  }

  void put_back(Seq seq, SteadyTime due) {
    auto& g = group();
    g.pending.at(seq).consumer.clear();
    g.waiting.emplace(due, seq);
    topic().notify();
  }

  void ack(Seq seq) {
    group().pending.erase(seq);
    trim();
  }

  void dead_letter(Seq seq, const std::string& original, const char* reason, std::string error, std::uint32_t attempts) {
    auto& t = topic();
    DeadLetter letter;
    letter.id = std::to_string(t.next_dead_letter++);
    letter.topic = topic_;
    letter.group = options_.group;
    letter.consumer = options_.consumer;
    letter.original = original;
    letter.reason = reason;
    letter.error = std::move(error);
    letter.attempts = attempts;
    letter.failed_at = std::chrono::floor<std::chrono::milliseconds>(state_->options.clock->now());
    t.dead_letters.push_back(std::move(letter));
    ack(seq);
  }

  // Drops entries every group is done with, so a long-running process does not grow without bound.
  void trim() {
    auto& t = topic();
    Seq keep_from = t.next_seq;
    for (const auto& [name, g] : t.groups) {
      keep_from = std::min(keep_from, g.next_seq);
      if (!g.pending.empty()) keep_from = std::min(keep_from, g.pending.begin()->first);
    }
    while (t.first_seq < keep_from && !t.entries.empty()) {
      t.entries.pop_front();
      ++t.first_seq;
    }
  }

  std::string topic_;
  ports::Handler handler_;
  ports::SubscribeOptions options_;
};

class EphemeralSubscription final : public ThreadsControl {
 public:
  EphemeralSubscription(std::shared_ptr<State> state, std::shared_ptr<EphemeralQueue> queue, std::string topic,
                        ports::Handler handler, int concurrency)
      : ThreadsControl(std::move(state)), queue_(std::move(queue)), topic_(std::move(topic)),
        handler_(std::move(handler)) {
    for (int i = 0; i < concurrency; ++i) {
      workers_.emplace_back([this, stop = stop_source_.get_token()] { run(stop); });
    }
  }
  ~EphemeralSubscription() override { stop(); }

 private:
  void run(std::stop_token stop) {
    ports::DeliveryInfo info{topic_, {}, {}, stop};
    while (auto envelope = queue_->take(stop)) {
      info.received_at = std::chrono::steady_clock::now();
      // At-most-once: the outcome is not acted on.
      (void)ports::invoke_handler(handler_, *envelope, info);
    }
  }

  std::shared_ptr<EphemeralQueue> queue_;
  std::string topic_;
  ports::Handler handler_;
};

class MemoryBus final : public ports::MessageBus {
 public:
  explicit MemoryBus(MemoryBusOptions options) : state_(std::make_shared<State>(options)) {}

  ports::BusCapabilities capabilities() const override {
    return {.durable = true, .redelivery = true, .dead_letters = true, .dedup_by_id = true, .ephemeral = true,
            .mirror_to_stream = true, .survives_process_restart = false, .atomic_handoff = true};
  }

  Result<void> publish_batch(std::string_view topic, std::span<const JsonEnvelope> envelopes,
                             const ports::PublishOptions& options) override {
    if (auto bad = ports::check_publish(topic, options, capabilities())) return *bad;
    auto encoded = ports::encode_for_publish(topic, envelopes, state_->options.limits);
    if (!encoded) return std::move(encoded).error();
    const std::vector<std::string>& bodies = *encoded;

    std::vector<std::shared_ptr<EphemeralQueue>> receivers;
    {
      std::lock_guard lock(state_->mutex);
      if (options.delivery == Delivery::durable) {
        auto& t = state_->topic(topic);
        append(t, bodies);
        t.notify();
      } else {
        auto& t = state_->topic(topic);
        std::erase_if(t.ephemeral, [](const auto& queue) { return queue.expired(); });
        for (const auto& weak : t.ephemeral) receivers.push_back(weak.lock());
        if (!options.mirror_to_stream.empty()) {
          auto& mirror = state_->topic(options.mirror_to_stream);
          append(mirror, bodies);
          mirror.notify();
        }
      }
    }
    for (const auto& receiver : receivers) {
      for (const auto& envelope : envelopes) {
        if (receiver && !receiver->offer(envelope) && ephemeral_dropped_++ % 1000 == 0) {
          // At-most-once means a full inbox drops; it must not do so silently.
          log::Logger().child("memory_bus").warn("ephemeral inbox full: dropping messages",
                                                 {{"topic", topic}, {"dropped", ephemeral_dropped_.load()}});
        }
      }
    }
    return {};
  }

  Result<ports::Subscription> subscribe(std::string_view topic, ports::Handler handler,
                                        ports::SubscribeOptions options) override {
    if (auto bad = ports::check_subscribe(topic, handler, options, capabilities())) return *bad;
    if (options.delivery == Delivery::ephemeral) {
      auto queue = std::make_shared<EphemeralQueue>(state_->options.ephemeral_queue_limit);
      {
        std::lock_guard lock(state_->mutex);
        state_->topic(topic).ephemeral.push_back(queue);
      }
      return ports::Subscription(std::make_unique<EphemeralSubscription>(state_, queue, std::string(topic),
                                                                          std::move(handler), options.concurrency));
    }

    if (options.consumer.empty()) options.consumer = "consumer-" + new_uuid_v7();
    {
      std::lock_guard lock(state_->mutex);
      auto& t = state_->topic(topic);
      if (!t.groups.contains(options.group)) {
        Group group;
        group.next_seq = options.start == ports::StartFrom::earliest ? t.first_seq : t.next_seq;
        t.groups.emplace(options.group, std::move(group));
      }
    }
    return ports::Subscription(
        std::make_unique<DurableSubscription>(state_, std::string(topic), std::move(handler), std::move(options)));
  }

  Result<std::vector<DeadLetter>> dead_letters(std::string_view topic, std::size_t max) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    std::lock_guard lock(state_->mutex);
    const auto found = state_->topics.find(topic);
    if (found == state_->topics.end()) return std::vector<DeadLetter>{};
    const auto& letters = found->second.dead_letters;
    return std::vector<DeadLetter>(letters.begin(), letters.begin() + static_cast<std::ptrdiff_t>(std::min(max, letters.size())));
  }

  Result<void> replay_dead_letter(std::string_view topic, std::string_view dead_letter_id,
                                  const JsonEnvelope& replacement) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    auto body = ports::encode_for_publish(topic, std::span<const JsonEnvelope>(&replacement, 1), state_->options.limits);
    if (!body) return std::move(body).error();
    std::lock_guard lock(state_->mutex);
    auto& t = state_->topic(topic);
    const auto found = std::find_if(t.dead_letters.begin(), t.dead_letters.end(),
                                    [&](const DeadLetter& letter) { return letter.id == dead_letter_id; });
    if (found == t.dead_letters.end()) {
      return Error{errc::not_found, "no dead letter " + std::string(dead_letter_id) + " in " + std::string(topic) + ".dlq"};
    }
    t.dead_letters.erase(found);
    t.append(std::move(body->front()));
    t.notify();
    return {};
  }

  Result<std::size_t> purge_dead_letters(std::string_view topic) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    std::lock_guard lock(state_->mutex);
    auto& letters = state_->topic(topic).dead_letters;
    const auto count = letters.size();
    letters.clear();
    return count;
  }

  Result<ports::TopicStats> topic_stats(std::string_view topic) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    std::lock_guard lock(state_->mutex);
    ports::TopicStats stats;
    const auto found = state_->topics.find(topic);
    if (found == state_->topics.end()) return stats;
    const auto& t = found->second;
    stats.length = t.entries.size();
    stats.dead_letters = t.dead_letters.size();
    for (const auto& [name, g] : t.groups) {
      stats.groups.push_back(ports::GroupStats{name, g.consumers, g.pending.size(), t.next_seq - g.next_seq});
    }
    return stats;
  }

  ports::Health health() override { return {true, std::chrono::microseconds{0}, "memory"}; }

  // The embedded bus keeps nothing beyond its process, and no other process can reach it.
  std::optional<std::string> durability_risk() override {
    return "the bus is memory://: its messages live in this process only, so a crash or a stop of it loses every "
           "one not yet done; use a redis:// bus with appendonly yes and appendfsync always";
  }

 private:
  static void append(Topic& t, const std::vector<std::string>& bodies) {
    for (const auto& body : bodies) t.append(body);
  }

  std::shared_ptr<State> state_;
  std::atomic<std::uint64_t> ephemeral_dropped_{0};
};

}  // namespace

std::unique_ptr<ports::MessageBus> make_memory_bus(MemoryBusOptions options) {
  return std::make_unique<MemoryBus>(options);
}

}  // namespace baton::adapters::memory
