#pragma once
// MessageBus: topics that carry envelopes from publishers to handlers.
//
// Two delivery modes, chosen per publish and per subscription:
//
// Durable (Delivery::durable): at-least-once delivery, made effectively-once by id dedup.
//   - A published envelope is kept until every consumer group that exists has handled it; a group
//     created later starts at the oldest kept entry (StartFrom::earliest) or at new entries only.
//   - Within one group the consumers compete: one entry goes to one handler at a time, never to two.
//     Every group gets every entry.
//   - The handler's Result decides: a value acks; a retryable error (baton::is_retryable) delivers the
//     same envelope again with attempts + 1 after the subscription's backoff; a permanent error, an
//     exhausted attempt budget, or an entry that does not decode moves the entry to the dead letters
//     of the topic (`<topic>.dlq`) with the reason, and acks it. Nothing is dropped silently.
//   - An envelope id that the group already handled (within dedup_window) is acked without calling
//     the handler again, so a publisher may safely re-publish after an unclear failure.
//   - An exception escaping a handler counts as a retryable failure with its what() text.
//   - Handler returns errc::cancelled while the subscription stops: the entry is left unacked for
//     another consumer; no attempt is counted.
//   What survives a crash depends on the adapter (capabilities().survives_process_restart).
//
// Ephemeral (Delivery::ephemeral): at-most-once fan-out. Every subscriber subscribed at publish time
//   gets the envelope once; nobody else ever does; failures are not retried. With
//   PublishOptions::mirror_to_stream the envelope is also appended durably to that topic, for replay.
//
// Thread-safety: every method may be called from any thread. publish blocks until the bus accepted
// the envelope durably (or answered an error); handlers run on the adapter's own threads, up to
// `concurrency` at once per subscription.
//
// Topic names follow envelope type rules (dotted [A-Za-z0-9_-] segments); the suffix ".dlq" is
// reserved for dead letters.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/envelope.hpp"
#include "baton/core/result.hpp"
#include "baton/core/retry.hpp"
#include "baton/core/time.hpp"
#include "baton/ports/health.hpp"

namespace baton::ports {

enum class Delivery { durable, ephemeral };

// What an adapter promises. The contract suite tests each promised feature and checks that an
// unpromised one is refused with errc::invalid_argument rather than half-done.
struct BusCapabilities {
  bool durable = false;                   // durable topics with consumer groups and acks
  bool redelivery = false;                // retryable failures come back with attempts + 1
  bool dead_letters = false;              // failures land in <topic>.dlq, readable by dead_letters()
  bool dedup_by_id = false;               // an id a group handled is not handled again
  bool ephemeral = false;                 // at-most-once fan-out
  bool mirror_to_stream = false;          // ephemeral publish mirrored to a durable topic
  bool survives_process_restart = false;  // kept outside this process (Redis: yes; memory: no)
  bool atomic_handoff = false;            // DeliveryInfo::handoff: outputs published with the ack, atomically
};

struct PublishOptions {
  Delivery delivery = Delivery::durable;
  std::string mirror_to_stream;  // ephemeral only: also append durably to this topic
};

enum class StartFrom { earliest, latest };

struct SubscribeOptions {
  Delivery delivery = Delivery::durable;
  std::string group;              // durable: consumer group name (required, same rules as topics)
  std::string consumer;           // durable: this consumer's name in the group; empty = generated
  int concurrency = 1;            // handlers running at once for this subscription (1-1024)
  RetryPolicy redelivery{};       // backoff between redeliveries and the attempt budget
  StartFrom start = StartFrom::earliest;            // where a group that does not exist yet begins
  std::chrono::milliseconds dedup_window{86'400'000};  // how long handled ids are remembered
  // Called once a handled entry's ack (with its hand-off) is committed by this consumer (not for an
  // entry another consumer took over and acked meanwhile; on Redis, when that happens to an entry
  // read moments before, which consumers with one reclaim_idle never do, not for the rest of its
  // group commit either): for measurements such as publish-to-ack latency. Runs on a worker
  // thread, possibly under the adapter's lock: it must be quick and must not call the bus.
  std::function<void(const JsonEnvelope& envelope)> on_acked;
};

// The messages a durable handler passes on to the next phase. They are published if and only if
// the handler succeeds, in one atomic step with the ack and the group's dedup mark: a crash at any
// instant neither loses the hand-off nor makes it twice, and a consumer that lost its entry to
// another one (it was paused, say) has its late hand-off refused as a whole.
class HandOff {
 public:
  virtual ~HandOff() = default;
  // Stages `envelope` for `topic`. Checked at once: an invalid topic or envelope, or a topic the
  // adapter cannot include in the same atomic step (on Redis: another hash slot), is
  // errc::invalid_argument naming it (errc::too_large for an oversized payload).
  virtual Result<void> publish(std::string_view topic, const JsonEnvelope& envelope) = 0;
};

// What a handler is told besides the envelope.
struct DeliveryInfo {
  std::string_view topic;
  std::string_view group;     // empty for ephemeral
  std::string_view consumer;  // empty for ephemeral
  std::stop_token stop;       // requested when the subscription ends: finish soon or return errc::cancelled
  HandOff* handoff = nullptr; // durable deliveries on a bus with atomic_handoff; null otherwise
  // When this consumer took the message from the transport: the read that returned it, or the
  // claim that took it over from a silent consumer (Redis); its claim from the queue (in memory).
  // Publish to here is the transport; here to the handler's start is the bus's own dispatch (the
  // dedup check, the wait for a free worker). A redelivery is received afresh.
  std::chrono::steady_clock::time_point received_at{};
};

using Handler = std::function<Result<void>(const JsonEnvelope& envelope, const DeliveryInfo& info)>;

// An entry that could not be handled, as kept in <topic>.dlq.
struct DeadLetter {
  std::string id;          // the dead letter's own id (its position in the DLQ)
  std::string topic;       // where the entry was published
  std::string group;       // the group that gave up on it
  std::string consumer;    // the consumer that gave up on it
  std::string original;    // the entry exactly as it was published (may not even be an envelope)
  std::string reason;      // "permanent_failure", "attempts_exhausted" or "decode_failed"
  std::string error;       // the error's text
  std::uint32_t attempts = 0;
  Timestamp failed_at{};
};

// Where a durable topic stands, for operators (baton status).
struct GroupStats {
  std::string name;
  std::size_t consumers = 0;  // consumers the group knows (Redis: ever seen; memory: subscribed now)
  std::size_t pending = 0;    // delivered and not yet acked, plus retries waiting for their time
  std::size_t lag = 0;        // published but not yet delivered to this group
};

struct TopicStats {
  std::size_t length = 0;        // entries kept in the topic
  std::vector<GroupStats> groups;
  std::size_t dead_letters = 0;  // entries in <topic>.dlq
};

// Ends its subscription when destroyed or when stop() is called: no handler starts afterwards, and
// stop() returns once the handlers in flight have returned. Entries they did not ack stay with the
// group. Must not be stopped from inside its own handler.
class Subscription {
 public:
  class Control {
   public:
    virtual ~Control() = default;
    virtual void stop() = 0;
  };

  Subscription() = default;
  explicit Subscription(std::unique_ptr<Control> control) : control_(std::move(control)) {}
  Subscription(Subscription&&) noexcept = default;
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      stop();
      control_ = std::move(other.control_);
    }
    return *this;
  }
  ~Subscription() { stop(); }

  void stop() {
    if (control_) {
      control_->stop();
      control_.reset();
    }
  }
  bool active() const noexcept { return control_ != nullptr; }

 private:
  std::unique_ptr<Control> control_;
};

class MessageBus {
 public:
  virtual ~MessageBus() = default;

  virtual BusCapabilities capabilities() const = 0;

  // Checks the envelope (codec rules; errc::invalid_argument or errc::too_large naming the field)
  // and publishes it. Durable: returns once it is stored. Ephemeral: once handed to the subscribers.
  virtual Result<void> publish(std::string_view topic, const JsonEnvelope& envelope, const PublishOptions& options = {}) {
    return publish_batch(topic, std::span<const JsonEnvelope>(&envelope, 1), options);
  }

  // Publishes several envelopes in order, in fewer round trips. Not atomic: on an error, a prefix of
  // them may be published; publishing them again is safe because durable groups dedup by id.
  virtual Result<void> publish_batch(std::string_view topic, std::span<const JsonEnvelope> envelopes,
                                     const PublishOptions& options = {}) = 0;

  // Starts delivering to `handler` until the returned Subscription ends. Durable: creates the group
  // if needed (idempotent). Bad options are errc::invalid_argument naming the option.
  virtual Result<Subscription> subscribe(std::string_view topic, Handler handler, SubscribeOptions options) = 0;

  // The oldest `max` dead letters of `topic`, oldest first.
  virtual Result<std::vector<DeadLetter>> dead_letters(std::string_view topic, std::size_t max = 100) = 0;

  // Puts `replacement` (normally the original with attempts reset) on `topic` and removes dead letter
  // `dead_letter_id` from its DLQ, in one atomic step: replayed once, never lost, never twice.
  // errc::not_found when there is no such dead letter (already replayed or purged).
  virtual Result<void> replay_dead_letter(std::string_view topic, std::string_view dead_letter_id,
                                          const JsonEnvelope& replacement) = 0;

  // Removes every dead letter of `topic`; returns how many there were.
  virtual Result<std::size_t> purge_dead_letters(std::string_view topic) = 0;

  virtual Result<TopicStats> topic_stats(std::string_view topic) = 0;

  virtual Health health() = 0;

  // What the broker's own configuration puts at risk of what it acknowledged: a sentence saying what
  // and why (a worker logs it as a warning when it starts; `baton health` shows it), or nothing
  // when nothing is known to be at risk, or the broker does not say.
  virtual std::optional<std::string> durability_risk() { return std::nullopt; }
};

}  // namespace baton::ports
