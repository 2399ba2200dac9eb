#include "baton/adapters/redis/redis_bus.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "baton/core/log.hpp"
#include "baton/core/uuid.hpp"
#include "baton/ports/bus_checks.hpp"
#include "bus/scripts.hpp"
#include "connection/connection.hpp"
#include "detail/persistence.hpp"
#include "detail/script.hpp"

namespace baton::adapters::redis {
namespace {

using detail::Command;
using detail::Connection;
using detail::Reply;
using ports::DeadLetter;

constexpr std::string_view dead_letter_suffix = ".dlq";
constexpr std::string_view body_field = "e";
// An entry whose id another consumer of the group is handling right now is looked at again after this.
constexpr std::chrono::milliseconds same_id_in_flight_delay{20};

std::string with_owns(std::string_view script) { return std::string(scripts::owns) + std::string(script); }

// Every key of one topic, all under one hash tag so that each script stays in one slot.
struct TopicKeys {
  TopicKeys(const RedisBusOptions& options, std::string_view topic) {
    std::string_view tag = topic;
    std::size_t at = 0;
    for (int i = 0; i < options.tag_segments; ++i) {
      at = topic.find('.', at);
      if (at == std::string_view::npos) break;
      if (i + 1 < options.tag_segments) ++at;
    }
    if (at != std::string_view::npos) tag = topic.substr(0, at);
    hash_tag = std::string(tag);
    base = options.redis.key_prefix + ":{" + hash_tag + "}:" + std::string(topic);
    stream = base;
    dead_letters = base + std::string(dead_letter_suffix);
  }
  std::string group_key(std::string_view group, std::string_view what) const {
    return base + ":" + std::string(what) + ":" + std::string(group);
  }
  std::string hash_tag;
  std::string base;
  std::string stream;
  std::string dead_letters;
};

struct Entry {
  // The key it was read from: the subscription's topic or redelivery stream name (one of its own
  // members, so an entry carries a pointer, not a copy).
  const std::string* stream = nullptr;
  std::string id;
  std::optional<std::string> body;  // the "e" field; nullopt when the entry has none
  std::string raw;                  // every field, kept only when there is no body: its dead letter
  std::int64_t deliveries = 1;
  // When the read or claim that delivered it was sent: the server's idle time of the entry, which
  // another consumer's reclaim waits for, is at most the time since then.
  std::chrono::steady_clock::time_point asked_at{};
  std::chrono::steady_clock::time_point received_at{};  // when the reply that carried it came in
  // The group's mark hash for this envelope id's time bucket (see scripts.hpp and
  // dedup_mark_field for the field): empty for an entry that never decoded.
  std::string mark_key;
  // Decoded on admission; null: no body, or it does not decode. On the heap, so that the entry,
  // handed from the reader to a worker to the committer, moves a pointer rather than the envelope.
  std::unique_ptr<JsonEnvelope> envelope;
  std::string decode_error;              // why it does not decode
};

// A stream entry id "<ms>-<seq>" as numbers (0-0 for text that is not one).
struct StreamId {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;
  static StreamId parse(std::string_view id) {
    StreamId parsed;
    const auto dash = id.find('-');
    std::from_chars(id.data(), id.data() + std::min(dash, id.size()), parsed.ms);
    if (dash != std::string_view::npos) std::from_chars(id.data() + dash + 1, id.data() + id.size(), parsed.seq);
    return parsed;
  }
  std::string text() const { return std::to_string(ms) + "-" + std::to_string(seq); }
  auto operator<=>(const StreamId&) const = default;
};

// What keep-alive needs of an entry this consumer holds: numbers and a pointer, nothing to allocate
// per entry (an entry is added and removed once per message, on different threads).
struct Held {
  const std::string* stream = nullptr;
  StreamId id;
  std::int64_t deliveries = 1;
  static Held of(const Entry& entry) { return {entry.stream, StreamId::parse(entry.id), entry.deliveries}; }
  bool operator==(const Held& other) const { return stream == other.stream && id == other.id; }
};

struct HeldHash {
  std::size_t operator()(const Held& held) const noexcept {
    return std::hash<const void*>{}(held.stream) ^ (std::hash<std::uint64_t>{}(held.id.ms) * 31) ^ std::hash<std::uint64_t>{}(held.id.seq);
  }
};

// A handled entry waiting for the group commit of its outcome.
struct Completion {
  Entry entry;
  std::vector<ports::StagedHandOff::Output> outputs;
  bool handled_here = false;  // a handler ran (not an entry found already done): counts as an ack
};

// Entries are begun (one pipeline) and completed or kept alive (one script) in batches of at most this many.
constexpr std::size_t script_batch = 256;

// The lowest and the highest of a batch's stream ids ("<ms>-<seq>"), for one XPENDING over the batch.
std::pair<std::string, std::string> id_range(const std::vector<const std::string*>& ids) {
  const std::string* low = ids.front();
  const std::string* high = ids.front();
  StreamId lowest = StreamId::parse(*low);
  StreamId highest = lowest;
  for (const auto* id : ids) {
    const StreamId parsed = StreamId::parse(*id);
    if (parsed < lowest) {
      lowest = parsed;
      low = id;
    }
    if (highest < parsed) {
      highest = parsed;
      high = id;
    }
  }
  return {*low, *high};
}

std::optional<std::int64_t> to_integer(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// [[id, [field, value, ...]], ...] -> entries. The strings are moved out of the reply; every field is
// kept as text only for an entry without the envelope field (its dead letter shows what it had).
void collect_entries(const std::string* stream, Reply& list, std::chrono::steady_clock::time_point asked_at, std::vector<Entry>& out) {
  const auto received_at = std::chrono::steady_clock::now();
  if (!list.is_array()) return;
  out.reserve(out.size() + list.elements.size());
  for (auto& item : list.elements) {
    if (!item.is_array() || item.elements.size() != 2 || !item.elements[0].is_string()) continue;
    Entry entry;
    entry.stream = stream;
    entry.asked_at = asked_at;
    entry.received_at = received_at;
    entry.id = std::move(item.elements[0].text);
    auto& fields = item.elements[1];
    if (fields.is_array()) {
      for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
        if (fields.elements[i].text == body_field) {
          entry.body = std::move(fields.elements[i + 1].text);
          break;
        }
      }
      if (!entry.body) {
        for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
          entry.raw += (entry.raw.empty() ? "" : " ") + fields.elements[i].text + "=" + fields.elements[i + 1].text;
        }
      }
    }
    out.push_back(std::move(entry));
  }
}

// Connections for publishing threads, each driven by the thread that holds it: a publish is then
// one write and one wake-up on the reply, where the shared connection adds two wake-ups (the
// request to its io thread, the reply back), which cost `baton bench`'s raw latency floor twice
// its time on a VM. Up to `limit` are made, lazily; a publish that finds none free takes the
// shared connection, where concurrent publishes still go out pipelined.
class DirectConnections {
 public:
  DirectConnections(RedisOptions options, std::size_t limit) : options_(std::move(options)), limit_(limit) {
    options_.client_name += ":publisher";
  }

  // A connection for the caller alone until it gives it back; nullptr when all are taken.
  std::unique_ptr<Connection> take() {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    if (made_ == limit_) return nullptr;
    ++made_;
    return std::make_unique<Connection>(options_, Connection::Driver::caller);
  }

  void give_back(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
  }

 private:
  RedisOptions options_;
  const std::size_t limit_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t made_ = 0;
};

struct Shared {
  explicit Shared(RedisBusOptions bus_options)
      : options(std::move(bus_options)), connection(options.redis), direct(options.redis, options.direct_publishers) {}
  RedisBusOptions options;
  Connection connection;
  DirectConnections direct;
  detail::Script complete_batch_script{with_owns(scripts::complete_batch)};
  detail::Script retry_script{with_owns(scripts::retry)};
  detail::Script dead_letter_script{with_owns(scripts::dead_letter)};
  detail::Script release_script{with_owns(scripts::release)};
  detail::Script keep_alive_script{with_owns(scripts::keep_alive)};
  detail::Script move_due_script{with_owns(scripts::move_due)};
  detail::Script drop_mark_script{with_owns(scripts::drop_mark)};
  detail::Script trim_script{with_owns(scripts::trim_acked)};
  detail::Script publish_mirrored_script{std::string(scripts::publish_mirrored)};
  detail::Script replay_script{std::string(scripts::replay)};
  detail::Script purge_script{std::string(scripts::purge)};
  log::Logger logger = log::Logger().child("redis_bus");

  Result<Reply> eval(const detail::Script& script, const std::vector<std::string>& keys,
                     const std::vector<std::string>& arguments) {
    return script.run(connection, keys, arguments);
  }
};

class RedisSubscription final : public ports::Subscription::Control {
 public:
  RedisSubscription(std::shared_ptr<Shared> shared, std::string topic, ports::Handler handler,
                    ports::SubscribeOptions options)
      : shared_(std::move(shared)), topic_(std::move(topic)), keys_(shared_->options, topic_),
        handler_(std::move(handler)), options_(std::move(options)) {
    redeliveries_ = keys_.group_key(options_.group, "redeliver");
    retry_set_ = keys_.group_key(options_.group, "retry");
    commit_record_ = keys_.group_key(options_.group, "commit") + ":" + options_.consumer;
    // A commit is tried again for up to reclaim_idle / 2 (persistently); the record outlives that.
    commit_record_ttl_ = std::to_string(std::max(2 * shared_->options.reclaim_idle, std::chrono::milliseconds{10'000}).count());
    // The readers and the committer each run their own connection's I/O on their own thread: a
    // read, a begin and a group commit are then round trips without a hand-over between threads.
    RedisOptions blocking = shared_->options.redis;
    blocking.request_timeout = shared_->options.block + blocking.request_timeout;
    blocking.client_name += ":reader";
    for (std::size_t i = 0; i < std::max<std::size_t>(1, shared_->options.readers); ++i) {
      reader_connections_.push_back(std::make_unique<Connection>(blocking, Connection::Driver::caller));
    }
    RedisOptions committing = shared_->options.redis;
    committing.client_name += ":committer";
    commit_connection_ = std::make_unique<Connection>(committing, Connection::Driver::caller);
  }

  ~RedisSubscription() override { RedisSubscription::stop(); }

  Result<void> start() {
    const std::string start_id = options_.start == ports::StartFrom::earliest ? "0" : "$";
    for (const auto& stream : {keys_.stream, redeliveries_}) {
      auto created = shared_->connection.execute(Command{"XGROUP", "CREATE", stream, options_.group,
                                                         stream == keys_.stream ? start_id : "0", "MKSTREAM"});
      if (!created && created.error() != errc::conflict) return std::move(created).error();  // BUSYGROUP is fine
    }
    for (std::size_t i = 0; i < reader_connections_.size(); ++i) readers_.emplace_back([this, i] { read_loop(i); });
    for (int i = 0; i < options_.concurrency; ++i) workers_.emplace_back([this] { work_loop(); });
    committer_ = std::thread([this] { commit_loop(); });
    mover_ = std::thread([this] { move_loop(); });
    return {};
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    stop_.request_stop();
    {
      std::lock_guard lock(mutex_);
      room_.notify_all();
      work_ready_.notify_all();
      commit_ready_.notify_all();
      backlog_ready_.notify_all();
    }
    {
      std::lock_guard lock(move_mutex_);
      move_wake_.notify_all();
    }
    if (mover_.joinable()) mover_.join();
    for (auto& reader : readers_) {
      if (reader.joinable()) reader.join();
    }
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    {  // the committer records every outcome the workers left, then ends
      std::lock_guard lock(mutex_);
      workers_done_ = true;
      commit_ready_.notify_all();
    }
    if (committer_.joinable()) committer_.join();
    // Entries read but never started: hand them back so another consumer takes them at once.
    for (const auto& entry : queue_) release(entry);
    queue_.clear();
  }

 private:
  // ---- the readers: read and begin; the first also reclaims, moves due retries, trims and keeps
  // running handlers' entries alive. With one reader, its round trips in a row (read, begin, read,
  // ...) bounded a subscription's throughput while Redis still had time to spare. Further readers
  // join in while there is a backlog (the last read came back full), reading without blocking and
  // beginning side by side, as the same consumer, into the same queue; with no backlog they wait
  // here, so a subscription that keeps up has one reader blocked in Redis, not several. That one
  // writes its next read behind each begin (PendingRead).
  void read_loop(std::size_t index) {
    Connection& connection = *reader_connections_[index];
    if (index > 0) {
      while (true) {
        {
          std::unique_lock lock(mutex_);
          // A stop ends the wait whatever the backlog, so the stop is checked on its own.
          backlog_ready_.wait(lock, stop_.get_token(), [&] { return backlog_; });
          if (stop_.stop_requested()) return;
        }
        const auto room = wait_for_room(std::chrono::steady_clock::now() + shared_->options.block, shared_->options.read_count);
        if (room > 0) read(connection, ReadPlan{room, std::nullopt}, nullptr);
      }
    }
    std::optional<PendingRead> next;  // often in flight already when the loop comes round
    while (!stop_.stop_requested()) {
      if (next) {
        PendingRead pending = std::move(*next);
        next.reset();
        take_in(connection, pending.later.collect(), pending.plan, pending.asked_at, &next);
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= chores_.next_reclaim) {
        reclaim();
        trim();
        chores_.next_reclaim = now + shared_->options.reclaim_interval;
      }
      if (now >= chores_.next_keep_alive) {
        keep_alive();
        chores_.next_keep_alive = now + std::max(shared_->options.reclaim_idle / 3, std::chrono::milliseconds{10});
      }
      const std::size_t room = wait_for_room(chores_.next_due(), shared_->options.read_count);
      if (room == 0) continue;
      read(connection, ReadPlan{room, block_until(chores_.next_due())}, &next);
    }
    // A read still in flight at stop: its entries go back to the group at once, unstarted.
    if (next) {
      auto replies = next->later.collect();
      if (replies && !replies->empty()) {
        for (const auto& entry : entries_of(replies->back(), next->asked_at)) release(entry);
      }
      release_room(next->plan.room);
    }
  }

  // The first reader's housekeeping moments; its thread alone touches them. Due redeliveries are
  // the retry mover's (move_loop), so that no read is cut short for them.
  struct Chores {
    std::chrono::steady_clock::time_point next_reclaim, next_keep_alive;
    std::chrono::steady_clock::time_point next_due() const { return std::min(next_reclaim, next_keep_alive); }
  } chores_;

  // A read never waits past the next housekeeping moment, nor longer than `block`.
  std::chrono::milliseconds block_until(std::chrono::steady_clock::time_point until) const {
    return std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()),
                      std::chrono::milliseconds{1}, shared_->options.block);
  }

  // What a read asks for: up to `room` entries (room taken, given back once they are queued),
  // blocking up to `block` (none: return at once).
  struct ReadPlan {
    std::size_t room = 0;
    std::optional<std::chrono::milliseconds> block;
  };
  // The next read, written behind the last begin of a read in the same write (plan_read_behind
  // says when), its reply not yet taken in: Redis runs it as soon as the begin is done, so a batch
  // published while the reader begins the one before is read without a round trip of its own, and
  // the reader is waiting in Redis again without one. At 10k msg/s the begin is a good part of each
  // millisecond, and a batch that came during it waited for it and for a read of its own
  // (docs/BENCHMARKS.md, round 12).
  struct PendingRead {
    Connection::Later later;
    ReadPlan plan;
    std::chrono::steady_clock::time_point asked_at;
  };

  // The next read, to go out now behind a begin; none when housekeeping is due first (its round
  // trips need the connection, which a blocked read holds), when there is no room to read into, or
  // while a backlog waits: then the further readers read and begin side by side with this one, and
  // the room is theirs.
  std::optional<ReadPlan> plan_read_behind() {
    const auto now = std::chrono::steady_clock::now();
    if (stop_.stop_requested() || now >= chores_.next_reclaim || now >= chores_.next_keep_alive) return std::nullopt;
    if (reader_connections_.size() > 1) {
      std::lock_guard lock(mutex_);
      if (backlog_) return std::nullopt;
    }
    const std::size_t room = wait_for_room(now, shared_->options.read_count);
    if (room == 0) return std::nullopt;
    return ReadPlan{room, block_until(chores_.next_due())};
  }

  // How many more entries the workers can take; waits (briefly) while they are all busy.
  // How many entries this consumer may hold waiting: about 20 ms of work per worker at the handlers'
  // recent speed, between two per worker and two reads' worth. Fast handlers get large reads (the
  // throughput comes from batches); slow ones read little ahead, so that other consumers of the
  // group get the work instead of it waiting here behind a slow handler.
  std::size_t capacity() const {
    const std::size_t workers = static_cast<std::size_t>(options_.concurrency);
    const auto average_us = handler_average_us_.load(std::memory_order_relaxed);
    // Until a handler has run, its speed is unknown: start small, grow once handlers prove fast.
    const std::size_t per_worker = average_us > 0 ? static_cast<std::size_t>(20'000 / average_us) : 2;
    return std::clamp(workers * per_worker, workers * 2, std::max(workers * 2, 2 * shared_->options.read_count));
  }

  void record_handler_time(std::chrono::steady_clock::duration elapsed) {
    const auto sample = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
    const auto previous = handler_average_us_.load(std::memory_order_relaxed);
    // An exponential moving average; concurrent updates may lose a sample, which an estimate allows.
    handler_average_us_.store(previous == 0 ? sample : (previous * 7 + sample) / 8, std::memory_order_relaxed);
  }

  // Entries waiting to start and outcomes waiting for the group commit both count: a slow Redis
  // slows the reads down instead of piling work up in memory. So does room a reader took for a
  // read in progress (up to `most`), until it gives it back with release_room once the entries
  // are queued. A reader waits for room for half the capacity (or a whole read), not for the
  // first free place: with handlers slower than the reads, taking each place as it freed made
  // every read and every begin carry one entry, a round trip each, and woke the reader once per
  // entry (docs/BENCHMARKS.md, round 15). Half is still queued when it reads, so no worker idles
  // for it. Returns 0 when `until` comes first.
  std::size_t wait_for_room(std::chrono::steady_clock::time_point until, std::size_t most) {
    std::unique_lock lock(mutex_);
    const std::size_t capacity = this->capacity();
    const std::size_t wanted = room_wanted(capacity);
    const auto enough = [&] { return held() + wanted <= capacity; };
    room_.wait_until(lock, stop_.get_token(), until, enough);
    const std::size_t room = enough() ? std::min(most, capacity - held()) : 0;
    reading_ += room;
    return room;
  }

  // The room a reader waits for; the waker (room_for_a_read) asks the same, so the two agree.
  std::size_t room_wanted(std::size_t capacity) const {
    return std::clamp<std::size_t>(capacity / 2, 1, std::max<std::size_t>(shared_->options.read_count, 1));
  }

  // Caller holds mutex_.
  std::size_t held() const { return queue_.size() + commits_.size() + reading_; }

  // Whether a reader waiting for room may read now: woken before that, it would only go back to
  // sleep, a context switch for nothing on every entry a worker takes. Caller holds mutex_; the
  // caller notifies room_ after unlocking, so the woken reader does not block on mutex_ at once.
  // It notifies every reader: with one woken, the further readers of a backlog could wait out
  // their whole BLOCK time while the first took each round of room.
  bool room_for_a_read() const {
    const std::size_t capacity = this->capacity();
    return held() + room_wanted(capacity) <= capacity;
  }

  void release_room(std::size_t room) {
    if (room == 0) return;
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      reading_ -= room;
      wake = room_for_a_read();
    }
    if (wake) room_.notify_all();
  }

  // One XREADGROUP over the topic and the group's redelivery stream (see ReadPlan); with `next`,
  // the read after it may go out behind this one's begin.
  void read(Connection& connection, const ReadPlan& plan, std::optional<PendingRead>* next) {
    const auto asked_at = std::chrono::steady_clock::now();
    take_in(connection, connection.execute_encoded(encode_read(plan), 1, "XREADGROUP"), plan, asked_at, next);
  }

  std::string encode_read(const ReadPlan& plan) const {
    Command command{"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", std::to_string(plan.room)};
    if (plan.block) {
      command.push_back("BLOCK");
      command.push_back(std::to_string(plan.block->count()));
    }
    for (const char* argument : {"STREAMS", ">", ">"}) command.emplace_back(argument);
    command.insert(command.end() - 2, {keys_.stream, redeliveries_});
    return detail::encode_command(command);
  }

  // Takes in a read's replies: its entries are begun and queued, and the room taken for it given back.
  void take_in(Connection& connection, Result<std::vector<Reply>> replies, const ReadPlan& plan, std::chrono::steady_clock::time_point asked_at,
               std::optional<PendingRead>* next) {
    if (!replies) {
      pause_after_error(replies.error());
      release_room(plan.room);
      return;
    }
    Reply& reply = replies->back();
    if (reply.is_error()) {
      const auto failed = detail::error_from_reply("XREADGROUP", reply);
      if (failed == errc::not_found) {
        // NOGROUP: the stream was deleted under us (or flushed); make the group again.
        (void)connection.execute(Command{"XGROUP", "CREATE", keys_.stream, options_.group, "0", "MKSTREAM"});
        (void)connection.execute(Command{"XGROUP", "CREATE", redeliveries_, options_.group, "0", "MKSTREAM"});
      }
      pause_after_error(failed);
      release_room(plan.room);
      return;
    }
    std::vector<Entry> entries = entries_of(reply, asked_at);
    note_backlog(entries.size() >= plan.room);  // COUNT is per stream: with retries waiting, up to twice the room
    // Room this read did not fill is free for the next one at once (it may go out behind the begin).
    const std::size_t unused = plan.room > entries.size() ? plan.room - entries.size() : 0;
    release_room(unused);
    admit(connection, std::move(entries), Source::new_entries, next);
    release_room(plan.room - unused);
  }

  // The entries of an XREADGROUP reply, of the streams this subscription reads.
  std::vector<Entry> entries_of(Reply& reply, std::chrono::steady_clock::time_point asked_at) const {
    std::vector<Entry> entries;
    if (!reply.is_array()) return entries;
    for (auto& stream : reply.elements) {
      if (!stream.is_array() || stream.elements.size() != 2) continue;
      if (const std::string* name = stream_named(stream.elements[0].text)) collect_entries(name, stream.elements[1], asked_at, entries);
    }
    return entries;
  }

  // A full read says more is waiting: the further readers join in until a read comes back short.
  void note_backlog(bool full) {
    if (reader_connections_.size() < 2) return;
    std::lock_guard lock(mutex_);
    if (full && !backlog_) backlog_ready_.notify_all();
    backlog_ = full;
  }

  // Entries a read returned were new to the group and are this consumer's, first delivery; entries
  // taken over from a silent consumer may have been taken again by a third one meanwhile.
  enum class Source { new_entries, taken_over };

  // Decodes what was read or reclaimed and begins it in batches: entries that are ours and not yet
  // done are queued for the workers; entries already done are completed; entries
  // lost meanwhile are dropped.
  void admit(Connection& connection, std::vector<Entry> entries, Source source, std::optional<PendingRead>* next = nullptr) {
    // Entries are decoded where they lie and begun in runs of one stream (a read returns each
    // stream's entries together): an entry is a few hundred bytes, and every move of a batch of them
    // showed in the reader's profile.
    const std::string mark_prefix = keys_.group_key(options_.group, "mark") + ":";
    for (auto& entry : entries) {
      if (!entry.body) continue;
      auto decoded = decode(*entry.body, shared_->options.limits);
      if (decoded) {
        entry.mark_key = mark_prefix + dedup_mark_bucket(decoded->id);
        entry.envelope = std::make_unique<JsonEnvelope>(std::move(*decoded));
      } else {
        entry.decode_error = decoded.error().message();
      }
    }
    const auto startable = [](const Entry& entry) { return entry.envelope != nullptr; };
    const auto startable_end = std::stable_partition(entries.begin(), entries.end(), startable);  // moves nothing when all are
    std::vector<Entry> ready;
    ready.reserve(entries.size());
    for (auto it = startable_end; it != entries.end(); ++it) ready.push_back(std::move(*it));  // the worker dead-letters it
    const auto to_begin = std::span<Entry>(entries.begin(), startable_end);
    for (std::size_t first = 0; first < to_begin.size();) {
      std::size_t end = first + 1;
      while (end < to_begin.size() && end - first < script_batch && to_begin[end].stream == to_begin[first].stream) ++end;
      begin(connection, *to_begin[first].stream, to_begin.subspan(first, end - first), source, ready, end == to_begin.size() ? next : nullptr);
      first = end;
    }
    enqueue(std::move(ready));
  }

  // Begins a batch of one stream's entries with plain pipelined commands, no script (a script's
  // per-call cost in Redis was most of the bus's server time): per entry one HSETNX points the
  // envelope id's mark at the entry unless the id has a mark already, and per time bucket one
  // PEXPIRE keeps the bucket's marks for the dedup window from now; the marks that were there
  // already are read in a second round trip (duplicates and taken-over entries only). Entries taken
  // over from another consumer are looked up first with one XPENDING, which says which of them
  // this consumer still holds; new entries were delivered to it by the read itself. Neither is one
  // atomic step with the handler, and need not be: every outcome is fenced again by its script, and
  // a mark taken for an entry found lost is dropped.
  void begin(Connection& connection, const std::string& stream, std::span<Entry> batch, Source source, std::vector<Entry>& ready,
             std::optional<PendingRead>* next) {
    const bool look_up = source == Source::taken_over;
    std::string pipeline;
    if (look_up) {
      std::vector<const std::string*> ids;
      ids.reserve(batch.size());
      for (const auto& entry : batch) ids.push_back(&entry.id);
      const auto [low, high] = id_range(ids);
      // No count limit that matters: entries this consumer holds from earlier reads may lie in the range.
      pipeline = detail::encode_command({"XPENDING", stream, options_.group, low, high, "1000000", options_.consumer});
    }
    std::vector<const std::string*> buckets;  // few per batch: its ids were made within milliseconds
    for (const auto& entry : batch) {
      detail::append_command_header(pipeline, 4);
      detail::append_argument(pipeline, "HSETNX");
      detail::append_argument(pipeline, entry.mark_key);
      detail::append_argument(pipeline, dedup_mark_field(entry.envelope->id));
      detail::append_argument(pipeline, mark_of(entry));
      if (std::none_of(buckets.begin(), buckets.end(), [&](const std::string* bucket) { return *bucket == entry.mark_key; })) {
        buckets.push_back(&entry.mark_key);
      }
    }
    const std::string mark_ttl = std::to_string(options_.dedup_window.count());
    for (const std::string* bucket : buckets) {
      detail::append_command_header(pipeline, 3);
      detail::append_argument(pipeline, "PEXPIRE");
      detail::append_argument(pipeline, *bucket);
      detail::append_argument(pipeline, mark_ttl);
    }
    const std::size_t first_mark = look_up ? 1 : 0;
    // An error in place of the XPENDING reply (a server still loading) fails the whole batch, retried.
    // The next read goes out behind the first try only; a later try is on a fresh connection.
    std::optional<ReadPlan> read_behind = next && !look_up ? plan_read_behind() : std::nullopt;
    auto replies = persistently([&]() -> Result<std::vector<Reply>> {
      const std::size_t count = first_mark + batch.size() + buckets.size();
      const std::string name = look_up ? "begin (XPENDING, HSETNX, PEXPIRE)" : "begin (HSETNX, PEXPIRE)";
      auto pipelined = [&]() -> Result<std::vector<Reply>> {
        if (!read_behind) return connection.execute_encoded(pipeline, count, name);
        const auto asked_at = std::chrono::steady_clock::now();
        auto [answered, later] = connection.execute_encoded_then(pipeline, count, name, encode_read(*read_behind), 1, "XREADGROUP");
        next->emplace(PendingRead{std::move(later), *read_behind, asked_at});
        read_behind.reset();
        return std::move(answered);
      }();
      if (pipelined && look_up && (*pipelined)[0].is_error()) return detail::error_from_reply("XPENDING", (*pipelined)[0]);
      return pipelined;
    });
    if (!replies || (look_up && !(*replies)[0].is_array())) {
      // Could not even look: the entries stay pending and come back through reclaim.
      shared_->logger.warn("could not start entries", {{"topic", topic_}, {"count", batch.size()},
                                                       {"error", replies ? std::string("unexpected reply") : replies.error().message()}});
      return;
    }
    // A bucket left without its expiry would keep its marks for good; the next batch that begins an
    // id of it sets the expiry again, so this is only said, not retried.
    for (std::size_t n = 0; n < buckets.size(); ++n) {
      const Reply& expiry = (*replies)[first_mark + batch.size() + n];
      if (expiry.is_error()) {
        shared_->logger.warn("could not set the expiry of dedup marks", {{"topic", topic_}, {"key", *buckets[n]}, {"error", expiry.text}});
      }
    }
    // What the marks that were there already say (HSETNX answered 0): read in one more round trip.
    std::vector<std::size_t> marked_before;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Reply& set = (*replies)[first_mark + i];
      if (set.kind == Reply::Kind::integer && set.integer == 0) marked_before.push_back(i);
    }
    // A read written behind the begin holds this connection until it returns (up to its BLOCK
    // time): the rare lookups below then go through the shared connection.
    Connection& lookups = next && next->has_value() ? shared_->connection : connection;
    std::vector<Reply> existing(batch.size());
    if (!marked_before.empty()) {
      std::vector<Command> reads;
      for (const std::size_t i : marked_before) reads.push_back(Command{"HGET", batch[i].mark_key, std::string(dedup_mark_field(batch[i].envelope->id))});
      auto read = persistently([&] { return lookups.execute_pipeline(reads); });
      for (std::size_t n = 0; n < marked_before.size(); ++n) {
        existing[marked_before[n]] = read ? std::move((*read)[n]) : Reply{Reply::Kind::error, read.error().message()};
      }
    }
    std::unordered_map<std::string_view, std::int64_t> held;
    if (look_up) {
      for (const auto& row : (*replies)[0].elements) {
        if (row.is_array() && row.elements.size() == 4) held.emplace(row.elements[0].text, row.elements[3].integer);
      }
    }
    const auto is_ours = [&](const Entry& entry) {
      if (!look_up) return true;
      const auto owned = held.find(entry.id);
      return owned != held.end() && owned->second == entry.deliveries;
    };
    std::vector<Completion> already_done;
    std::vector<std::pair<Entry*, std::string>> other_carrier;  // the mark names another entry
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& entry = batch[i];
      const Reply& set = (*replies)[first_mark + i];
      const bool marked_now = set.kind == Reply::Kind::integer && set.integer == 1;
      const Reply& mark = set.is_error() ? set : existing[i];
      const bool ours = is_ours(entry);
      if (!ours) {
        if (marked_now) (void)shared_->drop_mark_script.run(lookups, {entry.mark_key}, {std::string(dedup_mark_field(entry.envelope->id)), mark_of(entry)});
        shared_->logger.info("entry taken over by another consumer before it started", {{"topic", topic_}, {"id", entry.id}});
      } else if (mark.is_error()) {
        shared_->logger.warn("could not start an entry", {{"topic", topic_}, {"id", entry.id}, {"error", mark.text}});
      } else if (marked_now || mark.text == mark_of(entry)) {
        ready.push_back(std::move(entry));  // the second: begun before (by a consumer that lost it, or by us)
      } else if (mark.text == "done") {
        already_done.push_back(Completion{std::move(entry), {}, false});
      } else if (mark.kind == Reply::Kind::nil) {
        // Dropped between the HSETNX and the HGET (its carrier went to a retry or the dead letters):
        // tried again shortly, when it can take the mark.
        retry_soon(entry);
      } else {
        other_carrier.emplace_back(&entry, mark.text);
      }
    }
    // A duplicate of an envelope id (published twice, or a retry racing its original): done if the
    // entry its mark names was acked, busy while that entry is pending.
    if (!other_carrier.empty()) {
      std::vector<Command> carrier_lookups;
      for (const auto& [entry, carrier] : other_carrier) {
        const auto bar = carrier.find('|');
        const std::string& carrier_stream = carrier.starts_with("r|") ? redeliveries_ : keys_.stream;
        const std::string carrier_id = bar == std::string::npos ? carrier : carrier.substr(bar + 1);
        carrier_lookups.push_back(Command{"XPENDING", carrier_stream, options_.group, carrier_id, carrier_id, "1"});
      }
      auto pending = lookups.execute_pipeline(std::move(carrier_lookups));
      for (std::size_t i = 0; i < other_carrier.size(); ++i) {
        Entry& entry = *other_carrier[i].first;
        const bool carrier_pending = !pending || !(*pending)[i].is_array() || !(*pending)[i].elements.empty();
        if (carrier_pending) {
          retry_soon(entry);
        } else {
          already_done.push_back(Completion{std::move(entry), {}, false});
        }
      }
    }
    if (!already_done.empty()) commit(std::move(already_done));
  }

  // Puts an entry that may not run yet (its envelope id is in flight in another entry) in the retry
  // set for a moment, unchanged, without touching the mark.
  void retry_soon(const Entry& entry) {
    const auto due = std::chrono::steady_clock::now() + same_id_in_flight_delay;
    if (finish(shared_->retry_script, entry, {*entry.stream, retry_set_, no_mark()},
               {std::to_string(same_id_in_flight_delay.count()), *entry.body, "", ""})) {
      note_retry(due);
    }
  }

  // What an envelope id's mark holds while this entry carries it.
  std::string mark_of(const Entry& entry) const { return std::string(entry.stream == &keys_.stream ? "t" : "r") + "|" + entry.id; }

  // The subscription's own name for a stream a reply names (nullptr for one it does not read).
  const std::string* stream_named(std::string_view name) const {
    if (name == keys_.stream) return &keys_.stream;
    if (name == redeliveries_) return &redeliveries_;
    return nullptr;
  }

  void pause_after_error(const Error& error) {
    shared_->logger.warn("read failed; retrying", {{"topic", topic_}, {"group", options_.group}, {"error", error.message()}});
    std::unique_lock lock(mutex_);
    room_.wait_for(lock, stop_.get_token(), std::chrono::milliseconds{100}, [] { return false; });
  }

  void enqueue(std::vector<Entry> entries) {
    if (entries.empty()) return;
    std::lock_guard lock(mutex_);
    for (auto& entry : entries) queue_.push_back(std::move(entry));
    // Wake as many workers as there are shares to take, no more: a woken thread that finds nothing
    // left has paid a context switch for nothing.
    const std::size_t share = share_size(queue_.size());
    const std::size_t wakes = std::min<std::size_t>(static_cast<std::size_t>(options_.concurrency), (queue_.size() + share - 1) / share);
    for (std::size_t i = 0; i < wakes; ++i) work_ready_.notify_one();
  }

  // How many entries a worker takes at a time: about 200 us of work at the handlers' recent speed,
  // since waking a thread costs tens of microseconds on a VM, more than a fast handler. Slow
  // handlers are taken one at a time, so that the workers run them side by side. Caller holds mutex_.
  std::size_t share_size(std::size_t queued) const {
    const auto average_us = handler_average_us_.load(std::memory_order_relaxed);
    const std::size_t by_time = average_us > 0 ? static_cast<std::size_t>(std::max<std::int64_t>(1, 200 / average_us)) : 1;
    return std::clamp<std::size_t>(std::min(by_time, queued), 1, 64);
  }

  // ---- the retry mover: due redeliveries back into the redeliveries stream, whose read they wake ----
  // It sleeps until the earliest retry it knows of: one this subscription scheduled (note_retry
  // wakes it for a sooner one) or the earliest the script saw left in the group's set, which holds
  // the other consumers' too. Knowing of none, it looks every retry_sweep, for the retries of a
  // consumer that died before they were due. It moves at most every retry_poll, however many
  // retries fall due. When the first reader moved them behind its reads instead, every read was cut
  // short for the next move: its reader left Redis every retry_poll whatever came, and a batch
  // that came meanwhile waited for it (docs/BENCHMARKS.md, round 17).
  void move_loop() {
    using Clock = std::chrono::steady_clock;
    const auto& options = shared_->options;
    auto wake_at = Clock::now();  // a first look at once: retries an earlier run left due
    while (true) {
      {
        std::unique_lock lock(move_mutex_);
        while (!stop_.stop_requested()) {
          const auto seen = retry_noted_;
          const auto target = std::max(std::min(wake_at, seen), last_move_ + options.retry_poll);
          if (move_wake_.wait_until(lock, stop_.get_token(), target, [&] { return retry_noted_ < seen; })) continue;  // a sooner one
          if (Clock::now() >= target) break;
        }
        if (stop_.stop_requested()) return;
        retry_noted_ = Clock::time_point::max();  // this move sees it: moved if due, else in the reply
        last_move_ = Clock::now();
      }
      wake_at = last_move_ + move_due();
    }
  }

  // Moves what is due; returns when to look again.
  std::chrono::milliseconds move_due() {
    const auto& options = shared_->options;
    const auto sweep = std::max(options.retry_poll, options.retry_sweep);
    constexpr std::size_t most = 256;
    auto moved = shared_->move_due_script.run(shared_->connection, {retry_set_, redeliveries_}, {std::to_string(most)});
    if (!moved || !moved->is_array() || moved->elements.size() != 2) {
      // Tried again at the next sweep: while the server is away, once a sweep, not once a poll.
      shared_->logger.warn("moving due redeliveries failed",
                           {{"topic", topic_}, {"error", moved ? std::string("unexpected reply") : moved.error().message()}});
      return sweep;
    }
    if (static_cast<std::size_t>(moved->elements[0].integer) == most) return options.retry_poll;  // more may be due
    const auto next_in = moved->elements[1].integer;  // -1: the set is empty
    if (next_in < 0) return sweep;
    return std::clamp(std::chrono::milliseconds{next_in}, options.retry_poll, sweep);
  }

  // A retry this subscription scheduled, due at `due`: the mover wakes for it if it would sleep past it.
  void note_retry(std::chrono::steady_clock::time_point due) {
    std::lock_guard lock(move_mutex_);
    if (due < retry_noted_) {
      retry_noted_ = due;
      move_wake_.notify_one();
    }
  }

  // Takes over entries whose consumer has been silent for reclaim_idle (it died, or was paused).
  // Follows XAUTOCLAIM's cursor through the whole pending list (a bounded number of rounds), so a
  // dead consumer that held more than one read's worth is taken over in one pass.
  void reclaim() {
    constexpr int max_rounds = 8;
    for (const std::string* stream : {&keys_.stream, &redeliveries_}) {
      std::string cursor = "0-0";
      for (int round = 0; round < max_rounds; ++round) {
        const auto asked_at = std::chrono::steady_clock::now();
        auto reply = housekeeping().execute(Command{"XAUTOCLAIM", *stream, options_.group, options_.consumer,
                                                         std::to_string(shared_->options.reclaim_idle.count()), cursor,
                                                         "COUNT", std::to_string(shared_->options.read_count)});
        if (!reply || !reply->is_array() || reply->elements.size() < 2) break;
        std::vector<Entry> claimed;
        collect_entries(stream, reply->elements[1], asked_at, claimed);
        if (reply->elements.size() >= 3 && reply->elements[2].is_array()) {
          for (const auto& deleted : reply->elements[2].elements) {
            // Trimmed while pending: the body is gone. Recorded, never read as an empty message.
            record_lost_entry(*stream, deleted.text);
          }
        }
        cursor = reply->elements[0].text;
        if (!claimed.empty()) take_over(*stream, std::move(claimed));
        if (cursor == "0-0" || cursor.empty()) break;
      }
    }
  }

  void take_over(const std::string& stream, std::vector<Entry> claimed) {
    // The delivery count is the fencing token: read it for each claimed entry.
    std::vector<Command> counts;
    for (const auto& entry : claimed) counts.push_back(Command{"XPENDING", stream, options_.group, entry.id, entry.id, "1"});
    auto pending = housekeeping().execute_pipeline(std::move(counts));
    if (!pending) return;
    for (std::size_t i = 0; i < claimed.size(); ++i) {
      const auto& row = (*pending)[i];
      if (row.is_array() && row.elements.size() == 1 && row.elements[0].elements.size() == 4) {
        claimed[i].deliveries = row.elements[0].elements[3].integer;
      }
    }
    shared_->logger.info("reclaimed entries of a silent consumer",
                         {{"topic", topic_}, {"group", options_.group}, {"count", claimed.size()}});
    admit(housekeeping(), std::move(claimed), Source::taken_over);
  }

  // Every entry this consumer holds, waiting in the queue or running, stays ours while we live:
  // slowness alone never hands it to another consumer.
  void trim() {
    for (const auto& stream : {keys_.stream, redeliveries_}) {
      auto trimmed = shared_->trim_script.run(housekeeping(), {stream}, {std::to_string(shared_->options.retain_acked.count())});
      if (!trimmed) shared_->logger.warn("trimming failed", {{"topic", topic_}, {"error", trimmed.error().message()}});
    }
  }

  void keep_alive() {
    std::map<const std::string*, std::vector<Held>> by_stream;
    {
      std::lock_guard lock(mutex_);
      for (const auto& entry : running_) by_stream[entry.stream].push_back(entry);
      for (const auto& entry : queue_) by_stream[entry.stream].push_back(Held::of(entry));
    }
    for (const auto& [stream, held] : by_stream) {
      for (std::size_t first = 0; first < held.size(); first += script_batch) {
        const auto last = std::min(held.size(), first + script_batch);
        std::vector<std::string> ids;
        for (std::size_t i = first; i < last; ++i) ids.push_back(held[i].id.text());
        std::vector<const std::string*> id_pointers;
        for (const auto& id : ids) id_pointers.push_back(&id);
        const auto [low, high] = id_range(id_pointers);
        std::vector<std::string> arguments{options_.group, options_.consumer, low, high};
        for (std::size_t i = first; i < last; ++i) {
          arguments.push_back(ids[i - first]);
          arguments.push_back(std::to_string(held[i].deliveries));
        }
        auto kept = shared_->keep_alive_script.run(housekeeping(), {*stream}, arguments);
        if (!kept) shared_->logger.warn("keep-alive failed", {{"topic", topic_}, {"error", kept.error().message()}});
      }
    }
  }

  void record_lost_entry(const std::string& stream, const std::string& id) {
    DeadLetterRecord record{"trimmed_while_pending", "the entry was trimmed from the stream before it was acknowledged", 0};
    (void)shared_->connection.execute(Command{
        "XADD", keys_.dead_letters, "*", "original", "", "reason", record.reason, "error", record.error, "attempts", "0",
        "failed_at", format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now())),
        "topic", topic_, "group", options_.group, "consumer", options_.consumer, "source_id", stream + "/" + id});
    shared_->logger.error("entry trimmed while pending", {{"topic", topic_}, {"id", id}});
  }

  // ---- the workers ----
  // A worker takes a share of the queue at a time (waking threads costs more than a no-op
  // handler), runs the handlers one by one, and hands the outcomes to the group commit together,
  // or sooner when handlers are slow, so an ack never waits long behind the rest of the share.
  void work_loop() {
    while (true) {
      std::deque<Entry> share;
      bool wake_reader = false;
      {
        std::unique_lock lock(mutex_);
        // Once stop is asked for, no new handler starts (what is queued is handed back by stop()).
        if (!work_ready_.wait(lock, stop_.get_token(), [&] { return !queue_.empty(); }) || stop_.stop_requested()) return;
        const std::size_t take = share_size(queue_.size());
        for (std::size_t i = 0; i < take; ++i) {
          running_.insert(Held::of(queue_.front()));
          share.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        wake_reader = room_for_a_read();
      }
      if (wake_reader) room_.notify_all();
      std::vector<Completion> outcomes;
      outcomes.reserve(share.size());
      auto oldest = std::chrono::steady_clock::now();
      while (!share.empty()) {
        if (stop_.stop_requested()) {
          // Not started: back to the queue, which stop() hands back to the group.
          std::lock_guard lock(mutex_);
          for (auto& entry : share) forget(entry);
          while (!share.empty()) {
            queue_.push_front(std::move(share.back()));
            share.pop_back();
          }
          break;
        }
        Entry entry = std::move(share.front());
        share.pop_front();
        const auto started = std::chrono::steady_clock::now();
        auto outcome = handle(entry);
        record_handler_time(std::chrono::steady_clock::now() - started);
        // A handled entry stays in running_ (kept alive) until the committer has recorded it.
        if (outcome) {
          if (outcomes.empty()) oldest = std::chrono::steady_clock::now();
          outcomes.push_back(std::move(*outcome));
        } else {
          std::lock_guard lock(mutex_);
          forget(entry);
        }
        if (!outcomes.empty() && (share.empty() || std::chrono::steady_clock::now() - oldest > std::chrono::milliseconds{2})) {
          commit(std::move(outcomes));
          outcomes.clear();
        }
      }
      if (!outcomes.empty()) commit(std::move(outcomes));
    }
  }

  // Caller holds mutex_.
  void forget(const Entry& entry) { running_.erase(Held::of(entry)); }

  void commit(std::vector<Completion> completions) {
    {
      std::lock_guard lock(mutex_);
      for (auto& completion : completions) commits_.push_back(std::move(completion));
    }
    commit_ready_.notify_one();
  }

  // ---- the committer: outcomes recorded in batches (a group commit): one XACK for successes
  // without outputs, one owner-checked script for hand-offs ----
  void commit_loop() {
    while (true) {
      std::vector<Completion> batch;
      bool wake_reader = false;
      {
        std::unique_lock lock(mutex_);
        commit_ready_.wait(lock, [&] { return !commits_.empty() || workers_done_; });
        if (commits_.empty()) return;  // workers done and nothing left to record
        batch.reserve(std::min(commits_.size(), script_batch));
        while (!commits_.empty() && batch.size() < script_batch) {
          batch.push_back(std::move(commits_.front()));
          commits_.pop_front();
        }
        wake_reader = room_for_a_read();
      }
      if (wake_reader) room_.notify_all();
      record(batch);
      std::lock_guard lock(mutex_);
      for (const auto& completion : batch) forget(completion.entry);
    }
  }

  void record(std::vector<Completion>& batch) {
    std::map<const std::string*, std::vector<Completion*>> by_stream;
    for (auto& completion : batch) by_stream[completion.entry.stream].push_back(&completion);
    for (auto& [stream, completions] : by_stream) {
      const auto handoffs = std::stable_partition(completions.begin(), completions.end(),
                                                  [](const Completion* completion) { return completion->outputs.empty(); });
      if (handoffs != completions.begin()) ack_plain(*stream, std::span<Completion*>(completions.begin(), handoffs));
      if (handoffs != completions.end()) commit_handoffs(*stream, std::span<Completion*>(handoffs, completions.end()));
    }
  }

  // Successes without outputs: nothing is published with them, so a late or repeated outcome has
  // nothing to record twice, and they need neither a script nor an owner check (in a flat-out run the
  // owner-checked script cost the server about 1.9 us per entry, XPENDING and XACK together 0.55).
  // One XACK acks them all, whoever holds them now: an entry another consumer took over meanwhile
  // (this one was paused past reclaim_idle) is acked for it, and the message counts as handled once.
  // Its envelope id's mark names the entry, so the id is done: the new holder drops the entry if it
  // has not begun it, and finds it acked when it records its own outcome. An XACK sent again after a
  // lost reply is harmless.
  // Which entries were still ours (for on_acked and the log) is asked with an XPENDING in the same
  // round trip, but only when one of them could have been taken over: an entry asked for less than
  // half of reclaim_idle ago has not been idle long enough for any consumer's reclaim (nor for one
  // configured with a reclaim_idle of half ours). With the server's work per message what bounds a
  // flat-out run, that XPENDING and its reply were about 5 % of it (docs/BENCHMARKS.md, round 10).
  void ack_plain(const std::string& stream, std::span<Completion*> plain) {
    std::vector<const std::string*> ids;
    ids.reserve(plain.size());
    for (const auto* completion : plain) ids.push_back(&completion->entry.id);
    const auto young_since = std::chrono::steady_clock::now() - shared_->options.reclaim_idle / 2;
    const bool look_up = std::any_of(plain.begin(), plain.end(), [&](const Completion* completion) { return completion->entry.asked_at <= young_since; });
    std::string pipeline;
    if (look_up) {
      const auto [low, high] = id_range(ids);
      // No count limit that matters: entries still running here may lie in the range too.
      pipeline = detail::encode_command({"XPENDING", stream, options_.group, low, high, "1000000", options_.consumer});
    }
    detail::append_command_header(pipeline, 3 + ids.size());
    detail::append_argument(pipeline, "XACK");
    detail::append_argument(pipeline, stream);
    detail::append_argument(pipeline, options_.group);
    for (const auto* id : ids) detail::append_argument(pipeline, *id);
    const std::size_t ack_reply = look_up ? 1 : 0;
    bool tried_before = false;
    auto replies = persistently([&]() -> Result<std::vector<Reply>> {
      auto pipelined = commit_connection_->execute_encoded(pipeline, ack_reply + 1, look_up ? "XPENDING, XACK" : "XACK");
      if (pipelined && (*pipelined)[ack_reply].is_error()) return detail::error_from_reply("XACK", (*pipelined)[ack_reply]);
      return pipelined;
    }, &tried_before);
    if (!replies) {
      // The entries stay pending and come back through reclaim; their marks keep them from running again.
      shared_->logger.warn("outcomes not recorded", {{"topic", topic_}, {"count", plain.size()}, {"error", replies.error().message()}});
      return;
    }
    const auto acked = (*replies)[ack_reply].integer;
    // This XACK removed every entry: also those another consumer held, whose ack is then ours.
    const bool acked_all = acked == static_cast<std::int64_t>(plain.size());
    if (!look_up && !acked_all && !tried_before) {
      // Some were acked before ours, by a consumer that took them over sooner than reclaim_idle
      // allows here (its reclaim_idle is shorter, or a claim by hand). Which ones is not known,
      // so on_acked, which is for this consumer's acks only, runs for none of them.
      shared_->logger.warn("entries read moments ago were acked already by another consumer (is reclaim_idle the same for all?)",
                           {{"topic", topic_}, {"group", options_.group}, {"consumer", options_.consumer},
                            {"count", plain.size()}, {"acked_here", acked}});
      return;
    }
    // Without the lookup every entry was ours: none can have been taken over.
    std::unordered_set<std::string_view> held;
    if (look_up && (*replies)[0].is_array()) {
      for (const auto& row : (*replies)[0].elements) {
        if (row.is_array() && !row.elements.empty()) held.insert(row.elements[0].text);
      }
    }
    for (const auto* completion : plain) {
      const bool ours = !look_up || held.contains(completion->entry.id);
      if (!ours && !tried_before) {
        shared_->logger.warn("success of an entry this consumer no longer held (another consumer had taken it over)",
                             {{"topic", topic_}, {"group", options_.group}, {"consumer", options_.consumer}, {"id", completion->entry.id},
                              {"acked_here", acked_all}});
      }
      // on_acked runs for the entries this XACK removed: those held here, and the others too when
      // it removed all. After a try whose reply was lost, an entry gone from the list is most likely
      // one that try acked.
      if ((ours || acked_all || tried_before) && completion->handled_here && options_.on_acked) options_.on_acked(*completion->entry.envelope);
    }
  }

  // Hand-offs: one script per batch checks that each entry is still this consumer's, with the
  // delivery count it saw, and only then publishes the entry's outputs and acks it (see
  // scripts::complete_batch).
  void commit_handoffs(const std::string& stream, std::span<Completion*> completions) {
    std::vector<std::string> keys{stream, commit_record_};
    std::vector<const std::string*> ids;
    for (const auto* completion : completions) ids.push_back(&completion->entry.id);
    const auto [low, high] = id_range(ids);
    std::vector<std::string> arguments{options_.group, options_.consumer, low, high,
                                       commit_token_prefix_ + std::to_string(++commits_sent_), commit_record_ttl_};
    for (const auto* completion : completions) {
      arguments.push_back(completion->entry.id);
      arguments.push_back(std::to_string(completion->entry.deliveries));
      arguments.push_back(std::to_string(completion->outputs.size()));
      for (const auto& output : completion->outputs) {
        keys.push_back(TopicKeys(shared_->options, output.topic).stream);
        arguments.push_back(output.body);
      }
    }
    auto done = persistently([&] { return shared_->complete_batch_script.run(*commit_connection_, keys, arguments); });
    if (!done || !done->is_array()) {
      // Unknown whether it ran: the entries stay pending and come back through reclaim; the
      // marks keep completed ones from running again.
      shared_->logger.warn("outcomes not recorded", {{"topic", topic_}, {"count", completions.size()},
                                                     {"error", done ? std::string("unexpected reply") : done.error().message()}});
      return;
    }
    std::vector<bool> refused(completions.size(), false);
    for (const auto& position : done->elements) {
      if (position.integer >= 1 && static_cast<std::size_t>(position.integer) <= completions.size()) {
        refused[static_cast<std::size_t>(position.integer) - 1] = true;
      }
    }
    for (std::size_t i = 0; i < completions.size(); ++i) {
      const auto& completion = *completions[i];
      if (!refused[i]) {
        if (completion.handled_here && options_.on_acked) options_.on_acked(*completion.entry.envelope);
        continue;
      }
      shared_->logger.warn("outcome refused: the entry was reclaimed by another consumer",
                           {{"topic", topic_}, {"group", options_.group}, {"consumer", options_.consumer}, {"id", completion.entry.id}});
    }
  }

  struct DeadLetterRecord {
    std::string reason;
    std::string error;
    std::uint32_t attempts;
  };

  // Runs the handler of an admitted entry. Returns the outcome for the group commit (the committer
  // forgets the entry once recorded), or nothing when the entry was settled here.
  std::optional<Completion> handle(Entry& entry) {
    if (!entry.body) {
      dead_letter(entry, entry.raw, {"decode_failed", "the entry has no envelope field \"e\": " + entry.raw, 0});
      return std::nullopt;
    }
    if (!entry.envelope) {
      dead_letter(entry, *entry.body, {"decode_failed", entry.decode_error, 0});
      return std::nullopt;
    }
    const JsonEnvelope& envelope = *entry.envelope;

    // Outputs must share this topic's hash tag: the hand-off is one script, in one slot.
    ports::StagedHandOff handoff(shared_->options.limits, [this](std::string_view output) -> std::optional<Error> {
      const TopicKeys target(shared_->options, output);
      if (target.hash_tag == keys_.hash_tag) return std::nullopt;
      return Error{errc::invalid_argument, "hand-off from \"" + topic_ + "\" to \"" + std::string(output) +
                                               "\": different hash tags {" + keys_.hash_tag + "} and {" + target.hash_tag +
                                               "} cannot be one atomic step (name both topics with the same first segment)"};
    });
    const ports::DeliveryInfo info{topic_, options_.group, options_.consumer, stop_.get_token(), &handoff, entry.received_at};
    const Result<void> outcome = ports::invoke_handler(handler_, envelope, info);
    if (outcome) {
      return Completion{std::move(entry), handoff.outputs(), true};
    }
    const Error& failure = outcome.error();
    if (failure == errc::cancelled && stop_.stop_requested()) {
      release(entry);
      return std::nullopt;
    }
    const auto& policy = options_.redelivery;
    const bool retryable = policy.retryable ? policy.retryable(failure) : is_retryable(failure);
    if (!retryable) {
      dead_letter(entry, *entry.body, {"permanent_failure", failure.message(), envelope.attempts});
    } else if (policy.max_attempts > 0 && envelope.attempts >= static_cast<std::uint32_t>(policy.max_attempts)) {
      dead_letter(entry, *entry.body, {"attempts_exhausted", failure.message(), envelope.attempts});
    } else {
      RetrySchedule schedule(policy);
      const auto delay = schedule.next_delay(static_cast<int>(envelope.attempts));
      const auto due = std::chrono::steady_clock::now() + delay;
      if (finish(shared_->retry_script, entry, {*entry.stream, retry_set_, mark_key_of(entry)},
                 {std::to_string(delay.count()), encode(retry_envelope(envelope)), std::string(dedup_mark_field(envelope.id)), mark_of(entry)})) {
        note_retry(due);
      }
    }
    return std::nullopt;
  }

  // The mark hash for an entry that has none (it never decoded): the scripts find nothing there, and
  // it shares the topic's hash tag like every other key.
  std::string no_mark() const { return keys_.group_key(options_.group, "mark") + ":none"; }
  std::string mark_key_of(const Entry& entry) const { return entry.mark_key.empty() ? no_mark() : entry.mark_key; }

  void dead_letter(const Entry& entry, const std::string& original, const DeadLetterRecord& record) {
    finish(shared_->dead_letter_script, entry, {*entry.stream, keys_.dead_letters, mark_key_of(entry)},
           {original, record.reason, record.error, std::to_string(record.attempts),
            format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now())), topic_,
            entry.mark_key.empty() ? std::string() : std::string(dedup_mark_field(entry.envelope->id)),
            entry.mark_key.empty() ? std::string() : mark_of(entry)});
  }

  void release(const Entry& entry) { finish(shared_->release_script, entry, {*entry.stream}, {}); }

  // A script that records an outcome is retried while Redis is briefly away (a restart): giving up
  // would leave work done but unrecorded, to be done again. The entry stays ours meanwhile, since
  // nobody can reclaim it from a server that is down; the budget stays well inside reclaim_idle.
  // `tried_before` (optional) is set when an earlier try failed: it may have run all the same.
  Result<Reply> eval_persistently(const detail::Script& script, std::vector<std::string> keys, std::vector<std::string> arguments,
                                  bool* tried_before = nullptr) {
    return persistently([&] { return shared_->eval(script, keys, arguments); }, tried_before);
  }

  template <class Call>
  auto persistently(Call call, bool* tried_before = nullptr) -> decltype(call()) {
    const auto deadline = std::chrono::steady_clock::now() + shared_->options.reclaim_idle / 2;
    auto pause = std::chrono::milliseconds{5};
    for (int attempt = 0;; ++attempt) {
      if (tried_before) *tried_before = attempt > 0;
      auto reply = call();
      if (reply || !is_retryable(reply.error()) || std::chrono::steady_clock::now() + pause >= deadline) return reply;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds{200});
    }
  }

  // Runs an outcome script: the common arguments (group, id, consumer, deliveries) come first.
  // True when the outcome was recorded.
  bool finish(const detail::Script& script, const Entry& entry, std::vector<std::string> keys, std::vector<std::string> extra) {
    std::vector<std::string> arguments{options_.group, entry.id, options_.consumer, std::to_string(entry.deliveries)};
    for (auto& argument : extra) arguments.push_back(std::move(argument));
    bool tried_before = false;
    auto done = eval_persistently(script, std::move(keys), std::move(arguments), &tried_before);
    if (!done) {
      // Unknown whether it ran: the entry stays pending and comes back through reclaim; dedup
      // keeps a completed one from running again.
      shared_->logger.warn("outcome not recorded", {{"topic", topic_}, {"id", entry.id}, {"error", done.error().message()}});
      return false;
    }
    if (done->integer == 0) {
      if (tried_before) {
        // Its first try's reply was lost; that try has most likely recorded the outcome already.
        shared_->logger.info("outcome not confirmed: the entry is no longer this consumer's after a try whose reply was lost "
                             "(that try recorded it, or another consumer reclaimed the entry)",
                             {{"topic", topic_}, {"group", options_.group}, {"consumer", options_.consumer}, {"id", entry.id}});
      } else {
        shared_->logger.warn("outcome refused: the entry was reclaimed by another consumer",
                             {{"topic", topic_}, {"group", options_.group}, {"consumer", options_.consumer}, {"id", entry.id}});
      }
      return false;
    }
    return true;
  }

  std::shared_ptr<Shared> shared_;
  std::string topic_;
  TopicKeys keys_;
  ports::Handler handler_;
  ports::SubscribeOptions options_;
  std::string redeliveries_;
  std::string retry_set_;
  // The group commit's record of its last answer (see scripts::complete_batch), per consumer; the
  // tokens start with an id of this subscription, so a restarted consumer of the same name never
  // takes an answer of its predecessor for its own.
  std::string commit_record_;
  std::string commit_record_ttl_;
  std::string commit_token_prefix_ = new_uuid_v7() + ":";
  std::uint64_t commits_sent_ = 0;  // committer thread only
  // The reader threads', one each: reads and begins; the first one's also for the housekeeping.
  std::vector<std::unique_ptr<Connection>> reader_connections_;
  Connection& housekeeping() { return *reader_connections_.front(); }
  std::unique_ptr<Connection> commit_connection_;  // the committer thread's: group commits

  std::mutex mutex_;
  std::condition_variable_any room_;          // the reader waits here for room to read more
  std::condition_variable_any work_ready_;    // the workers wait here for entries
  std::condition_variable_any commit_ready_;  // the committer waits here for outcomes
  std::condition_variable_any backlog_ready_;  // further readers wait here for a backlog
  std::deque<Entry> queue_;     // read, not yet started
  std::size_t reading_ = 0;     // room the readers took for reads in progress
  bool backlog_ = false;        // the last read came back full
  // Being handled or waiting for the group commit (kept alive), by stream and id.
  std::unordered_set<Held, HeldHash> running_;
  std::deque<Completion> commits_;  // handled, outcome not yet recorded
  std::atomic<std::int64_t> handler_average_us_{0};  // recent handler time, for the read-ahead
  bool workers_done_ = false;       // set by stop() once the workers have returned
  std::stop_source stop_;
  std::atomic<bool> stopped_{false};
  std::vector<std::thread> readers_;
  std::vector<std::thread> workers_;
  std::thread committer_;
  std::thread mover_;
  std::mutex move_mutex_;  // the mover's own, off the readers' and workers' path
  std::condition_variable_any move_wake_;
  std::chrono::steady_clock::time_point retry_noted_ = std::chrono::steady_clock::time_point::max();  // the soonest noted since the last move
  std::chrono::steady_clock::time_point last_move_{};
};

// Ephemeral (at-most-once) delivery: Redis PUBLISH/SUBSCRIBE on a subscriber connection of its own,
// resubscribed after every reconnect. Messages arriving while the connection is away are missed:
// that is what ephemeral means; use mirror_to_stream for a durable copy.
std::string channel_for(const RedisBusOptions& options, std::string_view topic) {
  return options.redis.key_prefix + ":ephemeral:" + std::string(topic);
}

class EphemeralSubscription final : public ports::Subscription::Control {
 public:
  EphemeralSubscription(std::shared_ptr<Shared> shared, std::string topic, ports::Handler handler, int concurrency)
      : shared_(std::move(shared)), topic_(std::move(topic)), channel_(channel_for(shared_->options, topic_)),
        handler_(std::move(handler)) {
    RedisOptions subscriber = shared_->options.redis;
    subscriber.client_name += ":subscriber";
    connection_ = std::make_unique<Connection>(subscriber, [this](std::string, std::string payload) { offer(std::move(payload)); });
    for (int i = 0; i < concurrency; ++i) workers_.emplace_back([this] { work(); });
  }

  ~EphemeralSubscription() override { EphemeralSubscription::stop(); }

  Result<void> start() { return connection_->subscribe(channel_); }

  void stop() override {
    if (stopped_.exchange(true)) return;
    stop_.request_stop();
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    connection_.reset();
  }

 private:
  // On the connection's io thread: never block it; past the cap, drop (at-most-once) and say so.
  void offer(std::string payload) {
    std::lock_guard lock(mutex_);
    if (inbox_.size() >= inbox_limit) {
      if (dropped_++ % 1000 == 0) {
        shared_->logger.warn("ephemeral inbox full: dropping messages", {{"topic", topic_}, {"dropped", dropped_}});
      }
      return;
    }
    inbox_.emplace_back(std::move(payload), std::chrono::steady_clock::now());
    ready_.notify_one();
  }

  void work() {
    ports::DeliveryInfo info{topic_, {}, {}, stop_.get_token()};
    while (true) {
      std::string payload;
      {
        std::unique_lock lock(mutex_);
        if (!ready_.wait(lock, stop_.get_token(), [&] { return !inbox_.empty(); })) return;
        payload = std::move(inbox_.front().first);
        info.received_at = inbox_.front().second;
        inbox_.pop_front();
      }
      auto envelope = decode(payload, shared_->options.limits);
      if (!envelope) {
        shared_->logger.error("ephemeral message does not decode; dropped", {{"topic", topic_}, {"error", envelope.error().message()}});
        continue;
      }
      (void)ports::invoke_handler(handler_, *envelope, info);  // at-most-once: the outcome is not acted on
    }
  }

  static constexpr std::size_t inbox_limit = 10'000;
  std::shared_ptr<Shared> shared_;
  std::string topic_;
  std::string channel_;
  ports::Handler handler_;
  std::unique_ptr<Connection> connection_;
  std::mutex mutex_;
  std::condition_variable_any ready_;
  std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> inbox_;  // and when it came
  std::uint64_t dropped_ = 0;
  std::stop_source stop_;
  std::atomic<bool> stopped_{false};
  std::vector<std::thread> workers_;
};

class RedisBus final : public ports::MessageBus {
 public:
  explicit RedisBus(RedisBusOptions options) : shared_(std::make_shared<Shared>(std::move(options))) {}

  ports::BusCapabilities capabilities() const override {
    return {.durable = true, .redelivery = true, .dead_letters = true, .dedup_by_id = true, .ephemeral = true,
            .mirror_to_stream = true, .survives_process_restart = true, .atomic_handoff = true};
  }

  Result<void> publish_batch(std::string_view topic, std::span<const JsonEnvelope> envelopes,
                             const ports::PublishOptions& options) override {
    if (auto bad = ports::check_publish(topic, options, capabilities())) return *bad;
    auto encoded = ports::encode_for_publish(topic, envelopes, shared_->options.limits);
    if (!encoded) return std::move(encoded).error();
    if (options.delivery == ports::Delivery::durable) {
      return publish_durable(TopicKeys(shared_->options, topic), *encoded);
    }
    std::vector<Command> commands;
    commands.reserve(envelopes.size());
    if (options.mirror_to_stream.empty()) {
      for (auto& body : *encoded) commands.push_back(Command{"PUBLISH", channel_for(shared_->options, topic), std::move(body)});
    } else {
      const TopicKeys mirror(shared_->options, options.mirror_to_stream);
      for (auto& body : *encoded) {
        commands.push_back(Command{"EVAL", shared_->publish_mirrored_script.text(), "1", mirror.stream,
                                   channel_for(shared_->options, topic), std::move(body)});
      }
    }
    auto replies = shared_->connection.execute_pipeline(std::move(commands));
    if (!replies) return std::move(replies).error();
    for (const auto& reply : *replies) {
      if (reply.is_error()) return detail::error_from_reply(options.mirror_to_stream.empty() ? "PUBLISH" : "EVAL", reply);
    }
    return {};
  }

  // The hot path: XADDs encoded straight into one pipeline, a transaction (MULTI ... EXEC) per
  // chunk of up to `transaction_size` envelopes or about `transaction_bytes` (Redis keeps a
  // transaction's commands in memory until EXEC). Redis serves a blocked XREADGROUP after each
  // command of a plain pipeline, so a reader would wake for the first entry alone and fetch the
  // others in further round trips (each begun in one more); after an EXEC it gets the whole chunk
  // in one read. A chunk is also all or nothing: a dropped connection leaves no half of it published.
  Result<void> publish_durable(const TopicKeys& keys, const std::vector<std::string>& bodies) {
    auto direct = shared_->direct.take();
    Connection& connection = direct ? *direct : shared_->connection;
    auto published = publish_durable_on(connection, keys, bodies);
    if (direct) shared_->direct.give_back(std::move(direct));
    return published;
  }

  Result<void> publish_durable_on(Connection& connection, const TopicKeys& keys, const std::vector<std::string>& bodies) {
    if (bodies.size() == 1) {
      std::string single;
      detail::append_xadd(single, keys.stream, body_field, bodies.front());
      auto reply = connection.execute_encoded(std::move(single), 1, "XADD");
      if (!reply) return std::move(reply).error();
      if (reply->front().is_error()) return detail::error_from_reply("XADD", reply->front());
      return {};
    }
    std::vector<std::pair<std::size_t, std::size_t>> chunks;  // [first, last)
    for (std::size_t first = 0, bytes = 0, i = 0; i < bodies.size(); ++i) {
      bytes += bodies[i].size();
      if (i + 1 == bodies.size() || i + 1 - first == transaction_size || bytes >= transaction_bytes) {
        chunks.emplace_back(first, i + 1);
        first = i + 1;
        bytes = 0;
      }
    }
    std::string pipeline;
    std::size_t expected = 0;
    for (const auto& [first, last] : chunks) {
      detail::append_command_header(pipeline, 1);
      detail::append_argument(pipeline, "MULTI");
      for (std::size_t i = first; i < last; ++i) detail::append_xadd(pipeline, keys.stream, body_field, bodies[i]);
      detail::append_command_header(pipeline, 1);
      detail::append_argument(pipeline, "EXEC");
      expected += last - first + 2;
    }
    auto replies = connection.execute_encoded(std::move(pipeline), expected, "MULTI, XADDs, EXEC");
    if (!replies) return std::move(replies).error();
    // Per chunk: OK, QUEUED per XADD (or the error that refused it), then EXEC's array of XADD
    // replies (or EXECABORT when a queued command was refused).
    std::size_t at = 0;
    for (const auto& [first, last] : chunks) {
      const std::size_t count = last - first;
      if ((*replies)[at].is_error()) return detail::error_from_reply("MULTI", (*replies)[at]);
      for (std::size_t i = 1; i <= count; ++i) {
        if ((*replies)[at + i].is_error()) return detail::error_from_reply("XADD", (*replies)[at + i]);
      }
      const Reply& exec = (*replies)[at + count + 1];
      if (exec.is_error()) return detail::error_from_reply("EXEC", exec);
      if (!exec.is_array() || exec.elements.size() != count) {
        return Error{errc::decode_failed, "EXEC of " + std::to_string(count) + " XADDs on " + keys.stream +
                                              ": unexpected reply shape from redis (" +
                                              (exec.is_array() ? std::to_string(exec.elements.size()) + " replies)" : std::string("not an array)"))};
      }
      for (const auto& reply : exec.elements) {
        if (reply.is_error()) return detail::error_from_reply("XADD", reply);
      }
      at += count + 2;
    }
    return {};
  }

  Result<ports::Subscription> subscribe(std::string_view topic, ports::Handler handler, ports::SubscribeOptions options) override {
    if (auto bad = ports::check_subscribe(topic, handler, options, capabilities())) return *bad;
    if (options.delivery == ports::Delivery::ephemeral) {
      auto ephemeral = std::make_unique<EphemeralSubscription>(shared_, std::string(topic), std::move(handler), options.concurrency);
      if (auto started = ephemeral->start(); !started) return std::move(started).error();
      return ports::Subscription(std::move(ephemeral));
    }
    if (options.consumer.empty()) options.consumer = "consumer-" + std::to_string(::getpid()) + "-" + new_uuid_v7();
    auto subscription = std::make_unique<RedisSubscription>(shared_, std::string(topic), std::move(handler), std::move(options));
    if (auto started = subscription->start(); !started) return std::move(started).error();
    return ports::Subscription(std::move(subscription));
  }

  Result<std::vector<DeadLetter>> dead_letters(std::string_view topic, std::size_t max) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    const TopicKeys keys(shared_->options, topic);
    auto reply = shared_->connection.execute(Command{"XRANGE", keys.dead_letters, "-", "+", "COUNT", std::to_string(max)});
    if (!reply) return std::move(reply).error();
    std::vector<DeadLetter> letters;
    for (const auto& item : reply->elements) {
      if (!item.is_array() || item.elements.size() != 2) continue;
      DeadLetter letter;
      letter.id = item.elements[0].text;
      const auto& fields = item.elements[1].elements;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        const auto& name = fields[i].text;
        const auto& value = fields[i + 1].text;
        if (name == "original") letter.original = value;
        else if (name == "reason") letter.reason = value;
        else if (name == "error") letter.error = value;
        else if (name == "attempts") letter.attempts = static_cast<std::uint32_t>(to_integer(value).value_or(0));
        else if (name == "failed_at") letter.failed_at = parse_rfc3339(value).value_or(Timestamp{});
        else if (name == "topic") letter.topic = value;
        else if (name == "group") letter.group = value;
        else if (name == "consumer") letter.consumer = value;
      }
      letters.push_back(std::move(letter));
    }
    return letters;
  }

  Result<void> replay_dead_letter(std::string_view topic, std::string_view dead_letter_id,
                                  const JsonEnvelope& replacement) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    auto body = ports::encode_for_publish(topic, std::span<const JsonEnvelope>(&replacement, 1), shared_->options.limits);
    if (!body) return std::move(body).error();
    const TopicKeys keys(shared_->options, topic);
    auto replayed = shared_->eval(shared_->replay_script, {keys.dead_letters, keys.stream},
                                  {std::string(dead_letter_id), std::move(body->front())});
    if (!replayed) return std::move(replayed).error();
    if (replayed->integer == 0) {
      return Error{errc::not_found, "no dead letter " + std::string(dead_letter_id) + " in " + std::string(topic) + ".dlq"};
    }
    return {};
  }

  Result<std::size_t> purge_dead_letters(std::string_view topic) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    auto purged = shared_->eval(shared_->purge_script, {TopicKeys(shared_->options, topic).dead_letters}, {});
    if (!purged) return std::move(purged).error();
    return static_cast<std::size_t>(purged->integer);
  }

  Result<ports::TopicStats> topic_stats(std::string_view topic) override {
    if (auto bad = ports::check_topic(topic)) return *bad;
    const TopicKeys keys(shared_->options, topic);
    auto replies = shared_->connection.execute_pipeline({Command{"XLEN", keys.stream}, Command{"XLEN", keys.dead_letters},
                                                         Command{"XINFO", "GROUPS", keys.stream}, Command{"XINFO", "STREAM", keys.stream}});
    if (!replies) return std::move(replies).error();
    // An error in any reply is said, never read as zero: a user without rights to the topic's keys
    // (NOPERM), or a key of another type, would otherwise look like a topic nothing was published to.
    const auto no_stream = [](const Reply& reply) { return reply.is_error() && reply.text.starts_with("ERR no such key"); };
    for (std::size_t i = 0; i < replies->size(); ++i) {
      const auto& reply = (*replies)[i];
      if (reply.is_error() && !(i >= 2 && no_stream(reply))) {
        return detail::error_from_reply(i == 0 ? "XLEN" : i == 1 ? "XLEN of the dead letters" : i == 2 ? "XINFO GROUPS" : "XINFO STREAM", reply);
      }
    }
    ports::TopicStats stats;
    stats.length = static_cast<std::size_t>((*replies)[0].integer);
    stats.dead_letters = static_cast<std::size_t>((*replies)[1].integer);
    const auto& groups = (*replies)[2];
    if (no_stream(groups)) return stats;  // no stream yet: nothing published, no group
    std::string last_generated;
    const auto& stream_info = (*replies)[3];
    for (std::size_t i = 0; i + 1 < stream_info.elements.size(); i += 2) {
      if (stream_info.elements[i].text == "last-generated-id") last_generated = stream_info.elements[i + 1].text;
    }
    for (const auto& group : groups.elements) {
      ports::GroupStats entry;
      std::string last_delivered;
      for (std::size_t i = 0; i + 1 < group.elements.size(); i += 2) {
        const auto& name = group.elements[i].text;
        const auto& value = group.elements[i + 1];
        if (name == "name") entry.name = value.text;
        else if (name == "consumers") entry.consumers = static_cast<std::size_t>(value.integer);
        else if (name == "pending") entry.pending = static_cast<std::size_t>(value.integer);
        else if (name == "last-delivered-id") last_delivered = value.text;
        else if (name == "lag" && value.kind == Reply::Kind::integer) entry.lag = static_cast<std::size_t>(value.integer);
      }
      // Redis 7.0's lag is a counter that can come back wrong after the server restarts from its
      // AOF (seen in the chaos suite: lag 1741 with every entry delivered). A group that has been
      // given the stream's last entry has nothing left to read, whatever the counter says.
      if (!last_generated.empty() && last_delivered == last_generated) entry.lag = 0;
      // Retries of the group wait in its own set and redelivery stream: they are pending too.
      auto waiting = shared_->connection.execute_pipeline(
          {Command{"ZCARD", keys.group_key(entry.name, "retry")}, Command{"XPENDING", keys.group_key(entry.name, "redeliver"), entry.name}});
      if (!waiting) return std::move(waiting).error();
      if ((*waiting)[0].is_error()) return detail::error_from_reply("ZCARD of the retries", (*waiting)[0]);
      entry.pending += static_cast<std::size_t>((*waiting)[0].integer);
      // A group made before its redelivery stream existed has none yet (NOGROUP): nothing waits there.
      if ((*waiting)[1].is_error() && !(*waiting)[1].text.starts_with("NOGROUP")) {
        return detail::error_from_reply("XPENDING of the redeliveries", (*waiting)[1]);
      }
      if ((*waiting)[1].is_array() && !(*waiting)[1].elements.empty()) {
        entry.pending += static_cast<std::size_t>((*waiting)[1].elements[0].integer);
      }
      stats.groups.push_back(std::move(entry));
    }
    return stats;
  }

  ports::Health health() override { return shared_->connection.health(); }

  // Baton's promises hold for what Redis keeps (detail/persistence.hpp).
  std::optional<std::string> durability_risk() override {
    auto gap = detail::persistence_gap(shared_->connection);
    if (!gap) return std::nullopt;
    return *gap + ", messages among them; " + detail::persistence_remedy;
  }

 private:
  // Long enough for the bench's and the hand-off's batches; short enough that one EXEC holds the
  // server for about a millisecond at most.
  static constexpr std::size_t transaction_size = 256;
  static constexpr std::size_t transaction_bytes = 1 << 20;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

// Sized by measurement (docs/BENCHMARKS.md, round 9): HSETNX into hashes of 10-150 fields cost
// 0.6-1.4 us here (one run at 128 fields: 2.2) against 2.3-3.6 us for SET NX PX GET, and into hashes
// of 300-1,000 fields 2.3-3.9 us, as much as the SET or more. (Up to 128 fields Redis keeps a hash
// as one compact block, a listpack; that the conversion past it is the cost is likely, not
// measured on its own.) Within the block the price grows with the fields: a new field is compared
// with every one there, so round 11 split a millisecond four ways (two random bits of the id, not
// one): HSETNX 1.27-1.79 -> 0.95-1.17 us per call in runs of 93k-137k msg/s (25-35 fields per
// bucket instead of 50-70), for more, smaller keys (a mark at 10k msg/s 99 bytes of server memory instead of
// 76, at 150k msg/s 51 instead of 49). A millisecond and two random bits keep a bucket under 128 ids
// up to 512k ids made a second, and a batch's ids in a few buckets, each freed in a moment when it
// expires. The field leaves out what the bucket says, since ids of one millisecond share their
// first 13 characters.
constexpr std::size_t mark_bucket_prefix = 13;  // "xxxxxxxx-xxxx": a UUIDv7's 48 bits of ms

std::string dedup_mark_bucket(std::string_view envelope_id) {
  const char last = envelope_id.empty() ? '0' : envelope_id.back();
  const int last_digit = last >= '0' && last <= '9' ? last - '0' : last >= 'a' && last <= 'f' ? last - 'a' + 10 : last >= 'A' && last <= 'F' ? last - 'A' + 10 : 0;
  return std::string(envelope_id.substr(0, mark_bucket_prefix)) + "." + std::to_string(last_digit & 3);
}

std::string_view dedup_mark_field(std::string_view envelope_id) {
  return envelope_id.size() > mark_bucket_prefix ? envelope_id.substr(mark_bucket_prefix) : std::string_view{};
}

std::unique_ptr<ports::MessageBus> make_redis_bus(RedisBusOptions options) { return std::make_unique<RedisBus>(std::move(options)); }

Result<std::size_t> remove_topic_keys(const RedisBusOptions& options, std::string_view topic) {
  if (auto bad = ports::check_topic(topic)) return *bad;
  const TopicKeys keys(options, topic);
  Connection connection(options.redis, Connection::Driver::caller);
  // The groups (and their consumers) name the rest of the keys; without the stream there are none.
  auto groups = connection.execute({"XINFO", "GROUPS", keys.stream});
  const bool no_stream = !groups && groups.error().message().find("ERR no such key") != std::string::npos;
  if (!groups && !no_stream) return std::move(groups).error();
  std::vector<std::string> doomed{keys.stream, keys.dead_letters};
  const std::vector<Reply> no_groups;
  for (const auto& group : no_stream ? no_groups : groups->elements) {
    std::string name;
    for (std::size_t i = 0; i + 1 < group.elements.size(); i += 2) {
      if (group.elements[i].text == "name") name = group.elements[i + 1].text;
    }
    if (name.empty()) continue;
    doomed.push_back(keys.group_key(name, "redeliver"));
    doomed.push_back(keys.group_key(name, "retry"));
    auto consumers = connection.execute({"XINFO", "CONSUMERS", keys.stream, name});
    if (!consumers) return std::move(consumers).error();
    for (const auto& consumer : consumers->elements) {
      for (std::size_t i = 0; i + 1 < consumer.elements.size(); i += 2) {
        if (consumer.elements[i].text == "name") doomed.push_back(keys.group_key(name, "commit") + ":" + consumer.elements[i + 1].text);
      }
    }
  }
  // One DEL: every key shares the topic's hash tag.
  Command del{"DEL"};
  del.insert(del.end(), doomed.begin(), doomed.end());
  auto deleted = connection.execute(std::move(del));
  if (!deleted) return std::move(deleted).error();
  return static_cast<std::size_t>(deleted->integer);
}

}  // namespace baton::adapters::redis
