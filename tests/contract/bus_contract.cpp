// The MessageBus contract: delivery, groups, redelivery, dead letters, dedup, ephemeral fan-out.
// Each promised capability is tested; each unpromised one must be refused, not half-done.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "baton/core/codec.hpp"
#include "contract.hpp"
#include "registration.hpp"
#include "support/recorder.hpp"
#include "support/unique_id.hpp"

namespace baton::contract {
namespace {

using namespace std::chrono_literals;
using ports::Delivery;
using ports::DeliveryInfo;
using ports::SubscribeOptions;

class BusCase : public ::testing::Test {
 public:
  using Body = void (*)(BusCase&);
  BusCase(std::function<BusUnderTest()> factory, Body body) : factory_(std::move(factory)), body_(body) {}

  void SetUp() override {
    target_ = factory_();
    topic_ = test::unique_name("bus");
  }
  void TestBody() override { body_(*this); }

  ports::MessageBus& bus() { return *target_.bus; }
  const ports::BusCapabilities capabilities() { return bus().capabilities(); }
  const std::string& topic() const { return topic_; }

  // A handler that records every envelope and acks it.
  static ports::Handler recording(test::Recorder& recorder) {
    return [&recorder](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> {
      recorder.add(e);
      return {};
    };
  }

  static JsonEnvelope message(int n) {
    return make_envelope("test.message", boost::json::value{{"n", n}});
  }

  SubscribeOptions durable(const std::string& group = "workers") const {
    SubscribeOptions options;
    options.group = group;
    options.redelivery.base_delay = 1ms;
    options.redelivery.max_delay = 10ms;
    options.redelivery.max_attempts = 5;
    return options;
  }

  // Skips the case when the adapter does not promise `promised` (after checking it refuses it).
  bool requires_capability(bool promised, const char* name) {
    if (!promised) {
      std::cout << "adapter does not promise " << name << "\n";
      return false;
    }
    return true;
  }

  std::vector<ports::DeadLetter> wait_for_dead_letters(std::size_t count) {
    std::vector<ports::DeadLetter> letters;
    test::eventually([&] {
      auto read = bus().dead_letters(topic(), 1000);
      if (read) letters = *read;
      return letters.size() >= count;
    });
    return letters;
  }

 private:
  std::function<BusUnderTest()> factory_;
  Body body_;
  BusUnderTest target_;
  std::string topic_;
};

int number(const JsonEnvelope& envelope) { return static_cast<int>(envelope.payload.at("n").as_int64()); }

void delivers_a_published_envelope_intact(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  auto sent = make_envelope("test.intact", boost::json::value{{"text", "h\u00e9llo \"world\""}, {"list", {1, 2, 3}}},
                            EnvelopeOptions{.tenant_id = "acme", .headers = {{"traceparent", "00-abc-def-01"}}});
  ASSERT_TRUE(t.bus().publish(t.topic(), sent));
  test::Recorder got;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo& info) -> Result<void> {
    EXPECT_EQ(info.topic, t.topic());
    got.add(e);
    return {};
  }, t.durable());
  ASSERT_TRUE(subscription) << subscription.error().message();
  ASSERT_TRUE(got.wait_for_count(1));
  const auto received = got.seen().front();
  EXPECT_EQ(received.id, sent.id);
  EXPECT_EQ(received.type, sent.type);
  EXPECT_EQ(received.corr_id, sent.corr_id);
  EXPECT_EQ(received.tenant_id, "acme");
  EXPECT_EQ(received.ts, sent.ts);
  EXPECT_EQ(received.attempts, 1u);
  EXPECT_EQ(received.headers, sent.headers);
  EXPECT_EQ(received.payload, sent.payload);
}

void delivers_entries_published_while_no_consumer_ran(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  test::Recorder got;
  auto handler = [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { got.add(e); return {}; };
  {
    auto first = t.bus().subscribe(t.topic(), handler, t.durable());
    ASSERT_TRUE(first);
    ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
    ASSERT_TRUE(got.wait_for_count(1));
  }
  // The consumer is gone; what is published now waits for the group.
  for (int n = 2; n <= 5; ++n) ASSERT_TRUE(t.bus().publish(t.topic(), t.message(n)));
  auto second = t.bus().subscribe(t.topic(), handler, t.durable());
  ASSERT_TRUE(second);
  ASSERT_TRUE(got.wait_for_count(5));
  std::set<int> numbers;
  for (const auto& e : got.seen()) numbers.insert(number(e));
  EXPECT_EQ(numbers, (std::set<int>{1, 2, 3, 4, 5}));
}

void every_group_gets_every_entry(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  test::Recorder first, second;
  auto a = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { first.add(e); return {}; }, t.durable("group-a"));
  auto b = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { second.add(e); return {}; }, t.durable("group-b"));
  ASSERT_TRUE(a && b);
  for (int n = 0; n < 20; ++n) ASSERT_TRUE(t.bus().publish(t.topic(), t.message(n)));
  EXPECT_TRUE(first.wait_for_count(20));
  EXPECT_TRUE(second.wait_for_count(20));
}

void competing_consumers_never_both_get_one_message(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  constexpr int messages = 400;
  std::mutex mutex;
  std::map<std::string, int> handled;  // envelope id -> times handled
  test::Recorder all;
  auto handler = [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> {
    {
      std::lock_guard lock(mutex);
      ++handled[e.id];
    }
    all.add(e);
    return {};
  };
  auto options = t.durable();
  options.concurrency = 4;
  options.consumer = "consumer-1";
  auto one = t.bus().subscribe(t.topic(), handler, options);
  options.consumer = "consumer-2";
  auto two = t.bus().subscribe(t.topic(), handler, options);
  ASSERT_TRUE(one && two);
  std::vector<JsonEnvelope> batch;
  for (int n = 0; n < messages; ++n) batch.push_back(t.message(n));
  ASSERT_TRUE(t.bus().publish_batch(t.topic(), batch));
  ASSERT_TRUE(all.wait_for_count(messages));
  one->stop();
  two->stop();
  std::lock_guard lock(mutex);
  EXPECT_EQ(handled.size(), static_cast<std::size_t>(messages));
  for (const auto& [id, times] : handled) EXPECT_EQ(times, 1) << "envelope " << id << " handled " << times << " times";
  EXPECT_EQ(all.count(), static_cast<std::size_t>(messages));
}

void redelivers_after_failure(BusCase& t) {
  if (!t.requires_capability(t.capabilities().redelivery, "redelivery")) GTEST_SKIP();
  test::Recorder got;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> {
    got.add(e);
    if (e.attempts < 3) return retryable_failure("not yet (attempt " + std::to_string(e.attempts) + ")");
    return {};
  }, t.durable());
  ASSERT_TRUE(subscription);
  const auto sent = t.message(1);
  ASSERT_TRUE(t.bus().publish(t.topic(), sent));
  ASSERT_TRUE(got.wait_for_count(3));
  subscription->stop();
  const auto seen = got.seen();
  ASSERT_EQ(seen.size(), 3u) << "handled again after it succeeded";
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].id, sent.id) << "a redelivery is the same message";
    EXPECT_EQ(seen[i].attempts, i + 1);
  }
  auto letters = t.bus().dead_letters(t.topic());
  ASSERT_TRUE(letters);
  EXPECT_TRUE(letters->empty());
}

void handler_exception_counts_as_retryable(BusCase& t) {
  if (!t.requires_capability(t.capabilities().redelivery, "redelivery")) GTEST_SKIP();
  test::Recorder got;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> {
    got.add(e);
    if (e.attempts == 1) throw std::runtime_error("boom");
    return {};
  }, t.durable());
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
  ASSERT_TRUE(got.wait_for_count(2));
  EXPECT_EQ(got.seen()[1].attempts, 2u);
}

void permanent_failure_is_not_retried(BusCase& t) {
  if (!t.requires_capability(t.capabilities().dead_letters, "dead_letters")) GTEST_SKIP();
  std::atomic<int> calls{0};
  test::Recorder succeeded;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> {
    if (number(e) != 7) {
      succeeded.add(e);
      return {};
    }
    ++calls;
    return permanent_failure("the payload names a customer that does not exist");
  }, t.durable());
  ASSERT_TRUE(subscription);
  const auto sent = t.message(7);
  ASSERT_TRUE(t.bus().publish(t.topic(), sent));
  const auto letters = t.wait_for_dead_letters(1);
  ASSERT_EQ(letters.size(), 1u);
  // Evidence that nothing else is coming: the consumer moved on to a later entry, and still one call.
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(8)));
  ASSERT_TRUE(succeeded.wait_for_count(1));
  subscription->stop();
  EXPECT_EQ(calls.load(), 1);
  const auto& letter = letters.front();
  EXPECT_EQ(letter.reason, "permanent_failure");
  EXPECT_NE(letter.error.find("does not exist"), std::string::npos) << letter.error;
  EXPECT_EQ(letter.attempts, 1u);
  EXPECT_EQ(letter.group, "workers");
  EXPECT_EQ(letter.topic, t.topic());
  EXPECT_FALSE(letter.consumer.empty());
  auto original = decode(letter.original);
  ASSERT_TRUE(original) << "the dead letter keeps the original entry";
  EXPECT_EQ(original->id, sent.id);
}

void exhausted_attempts_go_to_dead_letters(BusCase& t) {
  if (!t.requires_capability(t.capabilities().dead_letters, "dead_letters")) GTEST_SKIP();
  std::atomic<int> calls{0};
  auto options = t.durable();
  options.redelivery.max_attempts = 3;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope&, const DeliveryInfo&) -> Result<void> {
    ++calls;
    return Error{errc::unavailable, "the downstream service is down"};
  }, options);
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
  const auto letters = t.wait_for_dead_letters(1);
  ASSERT_EQ(letters.size(), 1u);
  subscription->stop();
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(letters.front().reason, "attempts_exhausted");
  EXPECT_EQ(letters.front().attempts, 3u);
  EXPECT_NE(letters.front().error.find("downstream service is down"), std::string::npos);
}

void duplicate_id_is_handled_once(BusCase& t) {
  if (!t.requires_capability(t.capabilities().dedup_by_id, "dedup_by_id")) GTEST_SKIP();
  const auto twice = t.message(1);
  ASSERT_TRUE(t.bus().publish(t.topic(), twice));
  ASSERT_TRUE(t.bus().publish(t.topic(), twice));  // a publisher retrying after an unclear failure
  const auto marker = t.message(2);
  ASSERT_TRUE(t.bus().publish(t.topic(), marker));
  test::Recorder got;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { got.add(e); return {}; }, t.durable());
  ASSERT_TRUE(subscription);
  // One consumer takes entries in order, so once the marker is handled both copies have been seen.
  ASSERT_TRUE(got.wait_until([&](const auto& seen) {
    return std::any_of(seen.begin(), seen.end(), [&](const auto& e) { return e.id == marker.id; });
  }));
  const auto seen = got.seen();
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [&](const auto& e) { return e.id == twice.id; }), 1);
}

// Nothing is left pending or unread in the group: every entry, duplicates included, was acked.
bool group_settles(BusCase& t) {
  return test::eventually([&] {
    auto stats = t.bus().topic_stats(t.topic());
    return stats && stats->groups.size() == 1 && stats->groups[0].pending == 0 && stats->groups[0].lag == 0;
  });
}

void duplicate_after_completion_is_skipped_and_acked(BusCase& t) {
  if (!t.requires_capability(t.capabilities().dedup_by_id, "dedup_by_id")) GTEST_SKIP();
  test::Recorder got;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { got.add(e); return {}; }, t.durable());
  ASSERT_TRUE(subscription);
  const auto twice = t.message(1);
  ASSERT_TRUE(t.bus().publish(t.topic(), twice));
  ASSERT_TRUE(got.wait_for_count(1));
  ASSERT_TRUE(group_settles(t)) << "the first copy was not acked";
  ASSERT_TRUE(t.bus().publish(t.topic(), twice));  // long after the first was handled
  const auto marker = t.message(2);
  ASSERT_TRUE(t.bus().publish(t.topic(), marker));
  ASSERT_TRUE(got.wait_until([&](const auto& seen) {
    return std::any_of(seen.begin(), seen.end(), [&](const auto& e) { return e.id == marker.id; });
  }));
  EXPECT_TRUE(group_settles(t)) << "the skipped duplicate was left pending";
  const auto seen = got.seen();
  EXPECT_EQ(std::count_if(seen.begin(), seen.end(), [&](const auto& e) { return e.id == twice.id; }), 1);
}

// An envelope that succeeded on its second attempt is done: a later duplicate of it is skipped.
void duplicate_of_a_retried_success_is_skipped(BusCase& t) {
  if (!t.requires_capability(t.capabilities().dedup_by_id && t.capabilities().redelivery, "dedup_by_id and redelivery")) GTEST_SKIP();
  std::atomic<int> calls{0};
  test::Recorder succeeded;
  const auto twice = t.message(1);
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> {
    if (e.id == twice.id && ++calls == 1) return Error{errc::unavailable, "first attempt fails"};
    succeeded.add(e);
    return {};
  }, t.durable());
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(t.bus().publish(t.topic(), twice));
  ASSERT_TRUE(succeeded.wait_for_count(1));
  ASSERT_TRUE(group_settles(t));
  ASSERT_TRUE(t.bus().publish(t.topic(), twice));
  const auto marker = t.message(2);
  ASSERT_TRUE(t.bus().publish(t.topic(), marker));
  ASSERT_TRUE(succeeded.wait_for_count(2));
  EXPECT_TRUE(group_settles(t));
  EXPECT_EQ(calls.load(), 2) << "the duplicate ran again after a retried success";
}

void stopping_a_subscription_stops_delivery(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  test::Recorder old_consumer, new_consumer;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { old_consumer.add(e); return {}; }, t.durable());
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
  ASSERT_TRUE(old_consumer.wait_for_count(1));
  subscription->stop();
  EXPECT_FALSE(subscription->active());
  for (int n = 2; n <= 4; ++n) ASSERT_TRUE(t.bus().publish(t.topic(), t.message(n)));
  // One entry goes to one consumer: once a new consumer has all three, the stopped one had none.
  auto replacement = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { new_consumer.add(e); return {}; }, t.durable());
  ASSERT_TRUE(replacement);
  ASSERT_TRUE(new_consumer.wait_for_count(3));
  EXPECT_EQ(old_consumer.count(), 1u);
}

void a_handler_cancelled_by_stop_leaves_its_entry(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  test::Recorder started;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo& info) -> Result<void> {
    started.add(e);
    while (!info.stop.stop_requested()) std::this_thread::sleep_for(1ms);
    return Error{errc::cancelled, "shutting down"};
  }, t.durable());
  ASSERT_TRUE(subscription);
  const auto sent = t.message(1);
  ASSERT_TRUE(t.bus().publish(t.topic(), sent));
  ASSERT_TRUE(started.wait_for_count(1));
  subscription->stop();
  test::Recorder got;
  auto next = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { got.add(e); return {}; }, t.durable());
  ASSERT_TRUE(next);
  ASSERT_TRUE(got.wait_for_count(1)) << "an entry whose handler was stopped must not be lost";
  EXPECT_EQ(got.seen().front().id, sent.id);
  auto letters = t.bus().dead_letters(t.topic());
  EXPECT_TRUE(letters && letters->empty());
}

void a_new_group_can_start_at_the_latest_entry(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
  test::Recorder got;
  auto options = t.durable("late");
  options.start = ports::StartFrom::latest;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { got.add(e); return {}; }, options);
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(2)));
  ASSERT_TRUE(got.wait_for_count(1));
  subscription->stop();
  EXPECT_EQ(number(got.seen().front()), 2);
  EXPECT_EQ(got.count(), 1u);
}

void ephemeral_reaches_every_current_subscriber_only(BusCase& t) {
  ports::PublishOptions ephemeral;
  ephemeral.delivery = Delivery::ephemeral;
  SubscribeOptions options;
  options.delivery = Delivery::ephemeral;
  if (!t.capabilities().ephemeral) {
    auto refused = t.bus().subscribe(t.topic(), [](const JsonEnvelope&, const DeliveryInfo&) -> Result<void> { return {}; }, options);
    ASSERT_FALSE(refused) << "ephemeral is not promised, so it must be refused";
    EXPECT_EQ(refused.error(), errc::invalid_argument);
    GTEST_SKIP() << "adapter does not promise ephemeral";
  }
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(0), ephemeral));  // nobody listens: gone
  test::Recorder first, second;
  auto a = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { first.add(e); return {}; }, options);
  auto b = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { second.add(e); return {}; }, options);
  ASSERT_TRUE(a && b);
  // A real server may need a moment before a new subscription is live: publish until both hear.
  int n = 1;
  ASSERT_TRUE(test::eventually([&] {
    EXPECT_TRUE(t.bus().publish(t.topic(), t.message(n++), ephemeral));
    return first.count() > 0 && second.count() > 0;
  }));
  for (const auto* recorder : {&first, &second}) {
    for (const auto& e : recorder->seen()) EXPECT_NE(number(e), 0) << "got a message published before it subscribed";
  }
}

// DeliveryInfo::received_at lies between the publish and the handler's start, and a redelivery is
// received afresh (after the failed attempt's handler ran).
void says_when_a_delivery_was_received(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  using Clock = std::chrono::steady_clock;
  const auto before_publish = Clock::now();
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
  std::mutex mutex;
  std::vector<std::pair<Clock::time_point, Clock::time_point>> seen;  // received_at, handler start
  test::Recorder done;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo& info) -> Result<void> {
    const auto started = Clock::now();
    std::lock_guard lock(mutex);
    seen.emplace_back(info.received_at, started);
    if (seen.size() == 1) return Error{errc::unavailable, "first attempt fails"};
    done.add(e);
    return {};
  }, t.durable());
  ASSERT_TRUE(subscription) << subscription.error().message();
  ASSERT_TRUE(done.wait_for_count(1));
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_GE(seen[0].first, before_publish) << "received before it was published (or never set)";
  EXPECT_LE(seen[0].first, seen[0].second) << "received after its handler started";
  EXPECT_GT(seen[1].first, seen[0].second) << "the redelivery was not received afresh";
  EXPECT_LE(seen[1].first, seen[1].second);
}

void ephemeral_deliveries_say_when_they_were_received(BusCase& t) {
  if (!t.requires_capability(t.capabilities().ephemeral, "ephemeral")) GTEST_SKIP();
  using Clock = std::chrono::steady_clock;
  ports::PublishOptions ephemeral;
  ephemeral.delivery = Delivery::ephemeral;
  SubscribeOptions options;
  options.delivery = Delivery::ephemeral;
  std::mutex mutex;
  std::optional<std::pair<Clock::time_point, Clock::time_point>> first;  // received_at, handler start
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope&, const DeliveryInfo& info) -> Result<void> {
    const auto started = Clock::now();
    std::lock_guard lock(mutex);
    if (!first) first.emplace(info.received_at, started);
    return {};
  }, options);
  ASSERT_TRUE(subscription) << subscription.error().message();
  const auto before_publish = Clock::now();
  // A real server may need a moment before a new subscription is live: publish until it hears.
  ASSERT_TRUE(test::eventually([&] {
    EXPECT_TRUE(t.bus().publish(t.topic(), t.message(1), ephemeral));
    std::lock_guard lock(mutex);
    return first.has_value();
  }));
  std::lock_guard lock(mutex);
  EXPECT_GE(first->first, before_publish) << "received before it was published (or never set)";
  EXPECT_LE(first->first, first->second) << "received after its handler started";
}

void ephemeral_can_mirror_into_a_stream(BusCase& t) {
  ports::PublishOptions ephemeral;
  ephemeral.delivery = Delivery::ephemeral;
  ephemeral.mirror_to_stream = t.topic() + ".mirror";
  if (!t.capabilities().mirror_to_stream) {
    auto refused = t.bus().publish(t.topic(), t.message(1), ephemeral);
    ASSERT_FALSE(refused) << "mirroring is not promised, so it must be refused";
    EXPECT_EQ(refused.error(), errc::invalid_argument);
    GTEST_SKIP() << "adapter does not promise mirror_to_stream";
  }
  const auto sent = t.message(1);
  ASSERT_TRUE(t.bus().publish(t.topic(), sent, ephemeral));
  test::Recorder replay;
  auto subscription = t.bus().subscribe(ephemeral.mirror_to_stream, [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> { replay.add(e); return {}; }, t.durable("replay"));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(replay.wait_for_count(1));
  EXPECT_EQ(replay.seen().front().id, sent.id);
}

void publish_refuses_a_bad_envelope_and_says_why(BusCase& t) {
  auto bad_tenant = t.message(1);
  bad_tenant.tenant_id = "acme:*";
  auto refused = t.bus().publish(t.topic(), bad_tenant);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::invalid_argument);
  EXPECT_NE(refused.error().detail.find("tenant_id"), std::string::npos) << refused.error().detail;

  auto huge = make_envelope("test.huge", boost::json::value(std::string(2 << 20, 'x')));
  auto too_large = t.bus().publish(t.topic(), huge);
  ASSERT_FALSE(too_large);
  EXPECT_EQ(too_large.error(), errc::too_large) << too_large.error().message();

  auto bad_topic = t.bus().publish("no spaces allowed", t.message(1));
  ASSERT_FALSE(bad_topic);
  EXPECT_EQ(bad_topic.error(), errc::invalid_argument);
  auto reserved = t.bus().publish(t.topic() + ".dlq", t.message(1));
  ASSERT_FALSE(reserved);
  EXPECT_EQ(reserved.error(), errc::invalid_argument);
}

void subscribe_refuses_bad_options(BusCase& t) {
  auto handler = [](const JsonEnvelope&, const DeliveryInfo&) -> Result<void> { return {}; };
  SubscribeOptions no_group;
  auto refused = t.bus().subscribe(t.topic(), handler, no_group);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::invalid_argument);
  EXPECT_NE(refused.error().detail.find("group"), std::string::npos) << refused.error().detail;
  auto zero = t.durable();
  zero.concurrency = 0;
  auto no_threads = t.bus().subscribe(t.topic(), handler, zero);
  ASSERT_FALSE(no_threads);
  EXPECT_EQ(no_threads.error(), errc::invalid_argument);
}

void handoff_is_published_with_the_ack(BusCase& t) {
  const std::string next = t.topic() + ".next";
  test::Recorder downstream, handled;
  std::atomic<bool> had_handoff{false};
  auto phase = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo& info) -> Result<void> {
    had_handoff = info.handoff != nullptr;
    handled.add(e);
    if (!info.handoff) return {};
    return info.handoff->publish(next, child_envelope(e, "test.next", boost::json::value{{"from", number(e)}}));
  }, t.durable());
  ASSERT_TRUE(phase);
  auto sink = t.bus().subscribe(next, BusCase::recording(downstream), t.durable("sink"));
  ASSERT_TRUE(sink);
  const auto sent = t.message(5);
  ASSERT_TRUE(t.bus().publish(t.topic(), sent));
  if (!t.capabilities().atomic_handoff) {
    // Not promised: the handler must be told so (no HandOff), never given one that is not atomic.
    ASSERT_TRUE(handled.wait_for_count(1));
    EXPECT_FALSE(had_handoff.load());
    GTEST_SKIP() << "adapter does not promise atomic_handoff";
  }
  ASSERT_TRUE(downstream.wait_for_count(1));
  const auto child = downstream.seen().front();
  EXPECT_EQ(child.corr_id, sent.corr_id);
  EXPECT_EQ(child.causation_id, sent.id);
  EXPECT_EQ(child.payload.at("from"), 5);
}

void handoff_of_a_failed_attempt_is_never_published(BusCase& t) {
  if (!t.requires_capability(t.capabilities().atomic_handoff, "atomic_handoff")) GTEST_SKIP();
  const std::string next = t.topic() + ".next";
  test::Recorder downstream;
  auto phase = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo& info) -> Result<void> {
    auto staged = info.handoff->publish(next, child_envelope(e, "test.next", boost::json::value{{"from", number(e)},
                                                                                              {"attempt", e.attempts}}));
    if (!staged) return staged;
    if (number(e) == 1 && e.attempts < 3) return retryable_failure("fails after staging its output");
    return {};
  }, t.durable());
  ASSERT_TRUE(phase);
  auto sink = t.bus().subscribe(next, BusCase::recording(downstream), t.durable("sink"));
  ASSERT_TRUE(sink);
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(2)));
  ASSERT_TRUE(downstream.wait_for_count(2));
  // Outputs staged by failed attempts would have been published before the successful ones.
  const auto seen = downstream.seen();
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& output : seen) {
    if (output.payload.at("from") == 1) {
      EXPECT_EQ(output.payload.at("attempt"), 3) << "an output of a failed attempt leaked";
    }
  }
}

void handoff_refuses_a_bad_topic_at_once(BusCase& t) {
  if (!t.requires_capability(t.capabilities().atomic_handoff, "atomic_handoff")) GTEST_SKIP();
  std::promise<Error> refused;
  auto phase = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo& info) -> Result<void> {
    auto staged = info.handoff->publish("not a topic", e);
    refused.set_value(staged ? Error{} : staged.error());
    return {};
  }, t.durable());
  ASSERT_TRUE(phase);
  ASSERT_TRUE(t.bus().publish(t.topic(), t.message(1)));
  auto future = refused.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  const auto error = future.get();
  EXPECT_EQ(error, errc::invalid_argument) << error.message();
  EXPECT_NE(error.detail.find("not a topic"), std::string::npos) << error.detail;
}

void a_dead_letter_replays_once_and_leaves_the_dlq(BusCase& t) {
  if (!t.requires_capability(t.capabilities().dead_letters, "dead_letters")) GTEST_SKIP();
  std::atomic<bool> fixed{false};
  test::Recorder handled;
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo&) -> Result<void> {
    if (!fixed) return permanent_failure("the cause is not fixed yet");
    handled.add(e);
    return {};
  }, t.durable());
  ASSERT_TRUE(subscription);
  const auto sent = t.message(3);
  ASSERT_TRUE(t.bus().publish(t.topic(), sent));
  const auto letters = t.wait_for_dead_letters(1);
  ASSERT_EQ(letters.size(), 1u);
  fixed = true;  // the cause is fixed; now replay
  auto original = decode(letters.front().original);
  ASSERT_TRUE(original);
  auto replacement = *original;
  replacement.attempts = 1;
  replacement.headers["replayed_by"] = "contract-test";
  ASSERT_TRUE(t.bus().replay_dead_letter(t.topic(), letters.front().id, replacement));
  ASSERT_TRUE(handled.wait_for_count(1));
  EXPECT_EQ(handled.seen().front().id, sent.id) << "a replay is the same message";
  EXPECT_EQ(handled.seen().front().headers.at("replayed_by"), "contract-test");
  EXPECT_TRUE(t.bus().dead_letters(t.topic()).value().empty());
  auto again = t.bus().replay_dead_letter(t.topic(), letters.front().id, replacement);
  ASSERT_FALSE(again) << "a dead letter replays once";
  EXPECT_EQ(again.error(), errc::not_found);
}

void purge_empties_the_dead_letters(BusCase& t) {
  if (!t.requires_capability(t.capabilities().dead_letters, "dead_letters")) GTEST_SKIP();
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope&, const DeliveryInfo&) -> Result<void> {
    return permanent_failure("no");
  }, t.durable());
  ASSERT_TRUE(subscription);
  for (int n = 0; n < 3; ++n) ASSERT_TRUE(t.bus().publish(t.topic(), t.message(n)));
  ASSERT_EQ(t.wait_for_dead_letters(3).size(), 3u);
  auto purged = t.bus().purge_dead_letters(t.topic());
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 3u);
  EXPECT_TRUE(t.bus().dead_letters(t.topic()).value().empty());
}

void stats_show_length_groups_pending_and_lag(BusCase& t) {
  if (!t.requires_capability(t.capabilities().durable, "durable")) GTEST_SKIP();
  test::Recorder started;
  std::atomic<bool> release{false};
  auto options = t.durable("slow");
  auto subscription = t.bus().subscribe(t.topic(), [&](const JsonEnvelope& e, const DeliveryInfo& info) -> Result<void> {
    started.add(e);
    while (!release && !info.stop.stop_requested()) std::this_thread::sleep_for(1ms);
    return {};
  }, options);
  ASSERT_TRUE(subscription);
  for (int n = 0; n < 5; ++n) ASSERT_TRUE(t.bus().publish(t.topic(), t.message(n)));
  ASSERT_TRUE(started.wait_for_count(1));
  auto stats = t.bus().topic_stats(t.topic());
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats->length, 5u);
  ASSERT_EQ(stats->groups.size(), 1u);
  EXPECT_EQ(stats->groups[0].name, "slow");
  EXPECT_GE(stats->groups[0].consumers, 1u);
  EXPECT_GE(stats->groups[0].pending, 1u) << "the entry being handled is pending";
  EXPECT_EQ(stats->groups[0].pending + stats->groups[0].lag, 5u) << "every entry is pending or not yet delivered";
  EXPECT_EQ(stats->dead_letters, 0u);
  release = true;
  ASSERT_TRUE(started.wait_for_count(5));
  ASSERT_TRUE(test::eventually([&] {
    auto after = t.bus().topic_stats(t.topic());
    return after && after->groups.size() == 1 && after->groups[0].pending == 0 && after->groups[0].lag == 0;
  })) << "after everything is acked, nothing is pending or lagging";
}

void health_is_ok(BusCase& t) {
  const auto health = t.bus().health();
  EXPECT_TRUE(health.ok) << health.detail;
}

constexpr detail::NamedCase<BusCase> bus_cases[] = {
    {"BusDeliversAPublishedEnvelopeIntact", delivers_a_published_envelope_intact},
    {"BusDeliversEntriesPublishedWhileNoConsumerRan", delivers_entries_published_while_no_consumer_ran},
    {"BusEveryGroupGetsEveryEntry", every_group_gets_every_entry},
    {"BusCompetingConsumersNeverBothGetOneMessage", competing_consumers_never_both_get_one_message},
    {"BusRedeliversAfterFailure", redelivers_after_failure},
    {"BusHandlerExceptionCountsAsRetryable", handler_exception_counts_as_retryable},
    {"BusPermanentFailureIsNotRetried", permanent_failure_is_not_retried},
    {"BusExhaustedAttemptsGoToDeadLetters", exhausted_attempts_go_to_dead_letters},
    {"BusDuplicateIdIsHandledOnce", duplicate_id_is_handled_once},
    {"BusDuplicateAfterCompletionIsSkippedAndAcked", duplicate_after_completion_is_skipped_and_acked},
    {"BusDuplicateOfARetriedSuccessIsSkipped", duplicate_of_a_retried_success_is_skipped},
    {"BusStoppingASubscriptionStopsDelivery", stopping_a_subscription_stops_delivery},
    {"BusHandlerCancelledByStopLeavesItsEntry", a_handler_cancelled_by_stop_leaves_its_entry},
    {"BusNewGroupCanStartAtTheLatestEntry", a_new_group_can_start_at_the_latest_entry},
    {"BusEphemeralReachesEveryCurrentSubscriberOnly", ephemeral_reaches_every_current_subscriber_only},
    {"BusEphemeralCanMirrorIntoAStream", ephemeral_can_mirror_into_a_stream},
    {"BusSaysWhenADeliveryWasReceived", says_when_a_delivery_was_received},
    {"BusEphemeralDeliveriesSayWhenTheyWereReceived", ephemeral_deliveries_say_when_they_were_received},
    {"BusPublishRefusesABadEnvelopeAndSaysWhy", publish_refuses_a_bad_envelope_and_says_why},
    {"BusSubscribeRefusesBadOptions", subscribe_refuses_bad_options},
    {"BusHandOffIsPublishedWithTheAck", handoff_is_published_with_the_ack},
    {"BusHandOffOfAFailedAttemptIsNeverPublished", handoff_of_a_failed_attempt_is_never_published},
    {"BusHandOffRefusesABadTopicAtOnce", handoff_refuses_a_bad_topic_at_once},
    {"BusADeadLetterReplaysOnceAndLeavesTheDlq", a_dead_letter_replays_once_and_leaves_the_dlq},
    {"BusPurgeEmptiesTheDeadLetters", purge_empties_the_dead_letters},
    {"BusStatsShowLengthGroupsPendingAndLag", stats_show_length_groups_pending_and_lag},
    {"BusHealthIsOk", health_is_ok},
};

}  // namespace

void register_bus_contract(const std::string& adapter, std::function<BusUnderTest()> factory) {
  detail::register_cases(adapter, bus_cases, factory);
}

}  // namespace baton::contract
