// The Redis bus against a real redis-server: a server restart under load, a consumer process killed
// in the middle of its handlers, slow handlers, malformed entries and bad credentials.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/adapters/redis/redis_kv.hpp"
#include "baton/core/log.hpp"
#include "baton/core/once.hpp"
#include "baton/core/uuid.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"
#include "baton/orchestrator/pipeline.hpp"
#include "baton/app/bootstrap.hpp"
#include "baton/app/process_lifetime.hpp"
#include "detail/key_slot.hpp"
#include "support/captured_log.hpp"
#include "support/fault_proxy.hpp"
#include "support/recorder.hpp"
#include "support/redis_server.hpp"
#include "support/unique_id.hpp"

#ifndef BATON_TEST_BUS_WORKER
#error "BATON_TEST_BUS_WORKER must name the worker executable"
#endif

namespace baton::adapters::redis {
namespace {

using namespace std::chrono_literals;
using test::RedisServer;

RedisBusOptions bus_options(const RedisServer& server, std::chrono::milliseconds reclaim_idle = 500ms) {
  RedisBusOptions options;
  options.redis = parse_redis_url(server.url()).value();
  options.redis.request_timeout = 2s;
  options.reclaim_idle = reclaim_idle;
  options.reclaim_interval = 100ms;
  return options;
}

ports::SubscribeOptions durable(const std::string& group, const std::string& consumer, int concurrency = 4) {
  ports::SubscribeOptions options;
  options.group = group;
  options.consumer = consumer;
  options.concurrency = concurrency;
  options.redelivery.base_delay = 10ms;
  options.redelivery.max_delay = 200ms;
  options.redelivery.max_attempts = 0;  // keep trying: these tests count effects, not dead letters
  return options;
}

// The effect of handling an envelope, made once per id through the KV store, and counted there.
Result<void> record_effect(ports::KVStore& kv, const JsonEnvelope& envelope) {
  auto effect = once(kv, "once:" + envelope.id, [&]() -> Result<std::int64_t> { return kv.incr("effect:" + envelope.id); });
  if (!effect) return effect.error();
  return {};
}

// Publishes envelopes {"n": 0..count-1}; their ids, as far as publishing succeeded.
std::vector<std::string> publish_numbered(ports::MessageBus& bus, const std::string& topic, int count) {
  std::vector<std::string> ids;
  for (int n = 0; n < count; ++n) {
    auto envelope = make_envelope("test.numbered", boost::json::value{{"n", n}});
    if (!bus.publish(topic, envelope)) break;
    ids.push_back(envelope.id);
  }
  return ids;
}

std::string stream_key(const std::string& topic) { return "baton:{" + topic.substr(0, topic.find('.')) + "}:" + topic; }

// The group's dedup mark of an envelope id, as redis-cli prints it ("t|<entry id>\n" or an empty line).
std::string read_mark(const RedisServer& server, const std::string& topic, const std::string& group, const std::string& envelope_id) {
  return server.cli({"HGET", stream_key(topic) + ":mark:" + group + ":" + dedup_mark_bucket(envelope_id),
                     std::string(dedup_mark_field(envelope_id))});
}

long long stream_length(const RedisServer& server, const std::string& topic) {
  return std::stoll(server.cli({"XLEN", stream_key(topic)}));
}

// What follows `name` in a listing of redis-cli's (a name on one line, its value on the next).
std::string value_after(const std::string& listing, const std::string& name) {
  const auto at = listing.find(name + "\n");
  if (at == std::string::npos) return std::string();
  const auto value = at + name.size() + 1;
  return listing.substr(value, listing.find('\n', value) - value);
}

// Every entry of the stream at `key` read by the group (of one group) and acked: nothing pending
// alone is also true before the group has read anything.
bool all_read_and_acked(const RedisServer& server, const std::string& key, const std::string& group) {
  return server.cli({"XPENDING", key, group}).starts_with("0\n") &&
         value_after(server.cli({"XINFO", "GROUPS", key}), "last-delivered-id") ==
             value_after(server.cli({"XINFO", "STREAM", key}), "last-generated-id");
}

// How often the server ran `command` (lower case) since it started or CONFIG RESETSTAT: 0 if never.
int command_calls(const RedisServer& server, const std::string& command) {
  const auto stats = server.cli({"INFO", "commandstats"});
  const std::string field = "cmdstat_" + command + ":calls=";
  const auto at = stats.find(field);
  return at == std::string::npos ? 0 : std::stoi(stats.substr(at + field.size()));
}

std::int64_t effect_count(ports::KVStore& kv, const std::string& id) {
  auto value = kv.get("effect:" + id);
  if (!value || !*value) return 0;
  return std::stoll((*value)->value);
}

// Starts the test worker process (tests/support/bus_worker_main.cpp) on `topic`, group "workers";
// its log goes to `log_path` when given. Returns its pid.
pid_t spawn_worker(const RedisServer& server, const std::string& topic, const char* consumer, const char* handler_ms,
                   const char* reclaim_idle_ms, const std::filesystem::path& log_path = {}) {
  const pid_t test = ::getpid();
  const pid_t worker = ::fork();
  if (worker == 0) {
    app::die_with_parent(test);
    if (!log_path.empty()) {
      const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log, STDERR_FILENO);
    }
    ::execl(BATON_TEST_BUS_WORKER, BATON_TEST_BUS_WORKER, server.url().c_str(), topic.c_str(), "workers", consumer,
            handler_ms, reclaim_idle_ms, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return worker;
}

// How many of `ids` have had their effect.
int handled_count(ports::KVStore& kv, const std::vector<std::string>& ids) {
  int count = 0;
  for (const auto& id : ids) count += effect_count(kv, id) > 0;
  return count;
}

TEST(RedisBus, RestartUnderLoadLosesNoAcknowledgedPublishAndDoublesNoEffect) {
  RedisServer server;  // AOF, appendfsync always
  const std::string topic = test::unique_name("restart");
  auto publisher = make_redis_bus(bus_options(server));
  auto consumer = make_redis_bus(bus_options(server));
  auto kv = make_redis_kv(bus_options(server).redis);
  // The ledger lives outside the system under test: an effect recorded here cannot be lost with a
  // reply from the restarting server, so a second run of an effect shows as a count of 2.
  std::mutex ledger_mutex;
  std::map<std::string, int> ledger;

  auto subscription = consumer->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    auto effect = once(*kv, "once:" + e.id, [&]() -> Result<int> {
      std::lock_guard lock(ledger_mutex);
      return ++ledger[e.id];
    });
    if (!effect) return effect.error();
    return {};
  }, durable("workers", "consumer-a"));
  ASSERT_TRUE(subscription) << subscription.error().message();

  constexpr int messages = 300;
  std::vector<std::string> acknowledged;
  int retries = 0;
  for (int n = 0; n < messages; ++n) {
    if (n == messages / 3) {
      server.kill9();
      server.restart();
    }
    const auto envelope = make_envelope("test.restart", boost::json::value{{"n", n}});
    // The publisher retries until Redis acknowledges; a retry of a publish that did land is a
    // duplicate entry, which the consumer's dedup absorbs.
    while (!publisher->publish(topic, envelope)) ++retries;
    acknowledged.push_back(envelope.id);
  }
  const auto effects_of = [&](const std::string& id) {
    std::lock_guard lock(ledger_mutex);
    const auto found = ledger.find(id);
    return found == ledger.end() ? 0 : found->second;
  };
  EXPECT_TRUE(test::eventually([&] {
    for (const auto& id : acknowledged) {
      if (effects_of(id) == 0) return false;
    }
    return true;
  }, 60s)) << "an acknowledged publish was never handled";
  subscription->stop();
  int lost = 0, duplicated = 0;
  for (const auto& id : acknowledged) {
    const auto count = effects_of(id);
    lost += count == 0;
    duplicated += count > 1;
  }
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  std::cout << "publishes retried while redis restarted: " << retries << "\n";
}

TEST(RedisBus, EntriesOfAKilledConsumerProcessAreReclaimedAndHandledOnce) {
  RedisServer server;
  const std::string topic = test::unique_name("kill");
  auto options = bus_options(server, 500ms);
  auto bus = make_redis_bus(options);
  auto kv = make_redis_kv(options.redis);
  constexpr int messages = 40;
  const auto ids = publish_numbered(*bus, topic, messages);
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(messages));

  // A worker process that takes 300 ms per message, 4 at a time.
  const pid_t worker = spawn_worker(server, topic, "doomed", "300", "500");
  ASSERT_GE(worker, 0);
  const auto handled = [&] { return handled_count(*kv, ids); };
  ASSERT_TRUE(test::eventually([&] { return handled() >= 4; }, 20s)) << "the worker never got going";
  ::kill(worker, SIGKILL);  // in the middle of its handlers
  ::waitpid(worker, nullptr, 0);
  const int before = handled();
  ASSERT_LT(before, messages) << "the worker finished before it could be killed";

  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) {
    return record_effect(*kv, e);
  }, durable("workers", "survivor"));
  ASSERT_TRUE(subscription);
  EXPECT_TRUE(test::eventually([&] { return handled() == messages; }, 30s)) << "entries of the dead worker were lost";
  subscription->stop();
  for (const auto& id : ids) EXPECT_EQ(effect_count(*kv, id), 1) << "envelope " << id;
  // Nothing is left pending for the group.
  const auto pending = server.cli({"XPENDING", stream_key(topic), "workers"});
  EXPECT_EQ(pending.substr(0, 2), "0\n") << pending;
}

// A worker paused (SIGSTOP) past the reclaim idle time loses its entries to another consumer, which
// finishes them; when it resumes, its late successes (no outputs) are recorded as such, not
// refused, and no effect happens twice. (Late hand-offs are refused: see below and the chaos suite.)
TEST(RedisBus, APausedWorkersLateSuccessesChangeNothing) {
  RedisServer server;
  const std::string topic = test::unique_name("fence");
  auto options = bus_options(server, 500ms);
  auto bus = make_redis_bus(options);
  auto kv = make_redis_kv(options.redis);
  const auto ids = publish_numbered(*bus, topic, 8);
  ASSERT_EQ(ids.size(), 8u);
  const auto log_path = server.directory() / "worker.log";
  const pid_t worker = spawn_worker(server, topic, "paused", "1000", "500", log_path);
  ASSERT_GE(worker, 0);
  // The worker has begun its entries (it holds them, and their envelope ids' marks name them), then freezes.
  ASSERT_TRUE(test::eventually([&] {
    const auto held = server.cli({"XPENDING", stream_key(topic), "workers", "-", "+", "10", "paused"});
    for (const auto& id : ids) {
      const auto mark = read_mark(server, topic, "workers", id);
      if (mark.starts_with("t|") && held.find(mark.substr(2, mark.find('\n') - 2)) != std::string::npos) return true;
    }
    return false;
  }, 20s));
  ::kill(worker, SIGSTOP);

  auto rescuer = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) {
    return record_effect(*kv, e);
  }, durable("workers", "rescuer"));
  ASSERT_TRUE(rescuer);
  ASSERT_TRUE(test::eventually([&] { return handled_count(*kv, ids) == static_cast<int>(ids.size()); }, 30s)) << "the rescuer did not finish the paused worker's entries";

  ::kill(worker, SIGCONT);
  const auto late = [&] {
    std::ifstream log(log_path);
    std::string line;
    int count = 0;
    while (std::getline(log, line)) count += line.find("no longer held") != std::string::npos;
    return count;
  };
  EXPECT_TRUE(test::eventually([&] { return late() > 0; }, 20s)) << "the resumed worker did not record its late successes";
  ::kill(worker, SIGTERM);
  ::waitpid(worker, nullptr, 0);
  rescuer->stop();
  std::cout << "late successes: " << late() << "\n";
  for (const auto& id : ids) EXPECT_EQ(effect_count(*kv, id), 1) << "envelope " << id;
  EXPECT_EQ(server.cli({"XPENDING", stream_key(topic), "workers"}).substr(0, 2), "0\n");
}

enum class Meanwhile { taken_over, taken_over_and_acked };

// A consumer finishes an entry that another consumer took over meanwhile. Without outputs, the
// success is acked for the new holder (the envelope id is done: its mark names the acked entry);
// with a hand-off, the late outcome is refused as a whole and the entry stays with its holder, who
// publishes the outputs when it completes it. If the other consumer acked it too, see below.
void finish_an_entry_taken_over_meanwhile(bool with_handoff, Meanwhile meanwhile = Meanwhile::taken_over) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("lost");
  std::optional<test::CapturedLog> log;  // made before the bus: a subscription logs while it stops
  if (meanwhile == Meanwhile::taken_over_and_acked) log.emplace();
  const std::string next_topic = topic.substr(0, topic.find('.')) + ".next";
  auto bus = make_redis_bus(bus_options(server, std::chrono::minutes{10}));
  auto envelope = make_envelope("test.lost", boost::json::value{{"n", 1}});
  ASSERT_TRUE(bus->publish(topic, envelope));
  std::promise<void> started, go_on;
  auto release = go_on.get_future().share();
  std::atomic<int> acked{0};
  auto options = durable("workers", "first", 1);
  options.on_acked = [&](const JsonEnvelope&) { ++acked; };
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo& info) -> Result<void> {
    started.set_value();
    release.wait();
    if (with_handoff) return info.handoff->publish(next_topic, make_envelope("test.next", e.payload));
    return {};
  }, options);
  ASSERT_TRUE(subscription);
  ASSERT_EQ(started.get_future().wait_for(10s), std::future_status::ready);
  const auto carrier = read_mark(server, topic, "workers", envelope.id);
  ASSERT_TRUE(carrier.starts_with("t|")) << carrier;
  const auto entry_id = carrier.substr(2, carrier.find('\n') - 2);
  // Another consumer takes the entry over while the handler runs.
  server.cli({"XCLAIM", stream_key(topic), "workers", "second", "0", entry_id});
  if (meanwhile == Meanwhile::taken_over_and_acked) {
    // ... and finishes it, moments after this consumer read it: this consumer's success finds it
    // acked, says so, and does not count the ack as its own; nothing is left pending.
    ASSERT_EQ(server.cli({"XACK", stream_key(topic), "workers", entry_id}), "1\n");
    go_on.set_value();
    EXPECT_TRUE(test::eventually([&] { return log->has_line_with({"acked already by another consumer"}); }, 10s)) << "no warning logged";
    subscription->stop();
    EXPECT_EQ(acked.load(), 0) << "on_acked is for this consumer's acks only";
    EXPECT_TRUE(server.cli({"XPENDING", stream_key(topic), "workers"}).starts_with("0\n"));
    return;
  }
  go_on.set_value();
  if (with_handoff) {
    // The refused commit leaves everything as it was: the entry with its holder, no output.
    ASSERT_TRUE(test::eventually([&] { return server.cli({"GET", stream_key(topic) + ":commit:workers:first"}).find('|') != std::string::npos; }, 10s));
    subscription->stop();
    const auto held = server.cli({"XPENDING", stream_key(topic), "workers", "-", "+", "10", "second"});
    EXPECT_NE(held.find(entry_id), std::string::npos) << "the refused hand-off must leave the entry with its holder: " << held;
    EXPECT_EQ(stream_length(server, next_topic), 0);
    EXPECT_EQ(acked.load(), 0);
  } else {
    EXPECT_TRUE(test::eventually([&] { return server.cli({"XPENDING", stream_key(topic), "workers"}).starts_with("0\n"); }, 10s))
        << "the late success was not acked";
    subscription->stop();
    EXPECT_EQ(read_mark(server, topic, "workers", envelope.id), carrier) << "the mark must still name the (now acked) entry";
    EXPECT_EQ(acked.load(), 1) << "this consumer's XACK acked the entry, so on_acked runs here";
  }
}

TEST(RedisBus, ALateSuccessWithoutOutputsIsAckedForTheEntrysNewHolder) { finish_an_entry_taken_over_meanwhile(false); }

// The entry was claimed and acked elsewhere moments after this consumer read it (a claim by hand,
// or a consumer with a much shorter reclaim_idle), so its ack skipped the owner lookup.
TEST(RedisBus, AnEntryAckedElsewhereMomentsAfterItsReadIsReportedAndNotCountedHere) {
  finish_an_entry_taken_over_meanwhile(false, Meanwhile::taken_over_and_acked);
}

// Successes of entries read moments ago are acked with one XACK and no owner lookup: none of them
// can have been idle long enough for another consumer's reclaim. on_acked runs for each.
TEST(RedisBus, SuccessesOfEntriesReadMomentsAgoAreAckedWithoutAnOwnerLookup) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("young");
  auto bus_settings = bus_options(server, 30s);
  // Housekeeping's trim script asks XPENDING for a group's oldest pending entry; with a long
  // interval it runs once, at the start, before anything was read.
  bus_settings.reclaim_interval = std::chrono::minutes{10};
  auto bus = make_redis_bus(bus_settings);
  std::atomic<int> acked{0};
  auto options = durable("workers", "only", 2);
  options.on_acked = [&](const JsonEnvelope&) { ++acked; };
  auto subscription = bus->subscribe(topic, [](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> { return {}; }, options);
  ASSERT_TRUE(subscription);
  ASSERT_EQ(publish_numbered(*bus, topic, 50).size(), 50u);
  ASSERT_TRUE(test::eventually([&] { return acked.load() == 50; }, 10s)) << acked.load() << " of 50 acked";
  subscription->stop();
  const auto stats = server.cli({"INFO", "commandstats"});  // before the XPENDING of the check below
  EXPECT_NE(stats.find("cmdstat_xack:"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("cmdstat_xpending:"), std::string::npos) << "an owner lookup was sent: " << stats;
  EXPECT_TRUE(server.cli({"XPENDING", stream_key(topic), "workers"}).starts_with("0\n"));
}

// The config's [delivery] speed settings reach the Redis bus that bootstrap makes: a connection
// per reader, reads of read_count entries, and publishing on the shared connection only.
TEST(RedisBus, TheConfigsDeliverySettingsReachTheBus) {
  RedisServer server({.append_only = false});
  auto config = app::load_config(std::nullopt, {{"BATON_BUS", server.url()},
                                                {"BATON_STORAGE_ROOT", (server.directory() / "storage").string()},
                                                {"BATON_DELIVERY_READERS", "3"},
                                                {"BATON_DELIVERY_READ_COUNT", "1"},
                                                {"BATON_DELIVERY_DIRECT_PUBLISHERS", "0"}});
  ASSERT_TRUE(config) << config.error().message();
  auto runtime = app::bootstrap(*config);
  ASSERT_TRUE(runtime) << runtime.error().message();
  const std::string topic = test::unique_name("configured");
  // Published before anyone reads: with the default read_count a few reads take them all; one at
  // a time, every read comes back full, so all three readers join in.
  std::vector<JsonEnvelope> envelopes;
  for (int n = 0; n < 200; ++n) envelopes.push_back(make_envelope("test.configured", boost::json::value{{"n", n}}));
  ASSERT_TRUE(runtime->bus->publish_batch(topic, envelopes));
  std::atomic<int> handled{0};
  auto subscription = runtime->bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    ++handled;
    return {};
  }, durable("workers", "only", 1));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(test::eventually([&] { return handled.load() == 200; }, 10s)) << handled.load();
  const auto clients = server.cli({"CLIENT", "LIST"});
  const auto named = [&](const std::string& name) {
    int count = 0;
    for (auto at = clients.find(name); at != std::string::npos; at = clients.find(name, at + 1)) ++count;
    return count;
  };
  EXPECT_EQ(named(" name=baton:reader "), 3) << clients;
  EXPECT_EQ(named(" name=baton:publisher "), 0) << clients;
  subscription->stop();
  // COUNT 1 per stream: a read returns at most two entries (the topic's and a redelivery's).
  EXPECT_GE(command_calls(server, "xreadgroup"), 100) << server.cli({"INFO", "commandstats"});
}

// A bucket whose expiry could not be set is said in the log (its marks would otherwise stay for
// good), and dedup goes on working.
TEST(RedisBus, AMarkBucketWithoutItsExpiryIsReported) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("noexpiry");
  test::CapturedLog log;
  auto bus = make_redis_bus(bus_options(server));
  ASSERT_EQ(server.cli({"ACL", "SETUSER", "default", "-pexpire"}), "OK\n");
  std::atomic<int> calls{0};
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    ++calls;
    return {};
  }, durable("workers", "only", 1));
  ASSERT_TRUE(subscription);
  const auto envelope = make_envelope("test.noexpiry", boost::json::value{{"n", 1}});
  ASSERT_TRUE(bus->publish(topic, envelope));
  ASSERT_TRUE(bus->publish(topic, envelope));
  ASSERT_TRUE(test::eventually([&] { return all_read_and_acked(server, stream_key(topic), "workers"); }, 10s));
  EXPECT_EQ(calls.load(), 1) << "dedup stopped working";
  EXPECT_EQ(server.cli({"PTTL", stream_key(topic) + ":mark:workers:" + dedup_mark_bucket(envelope.id)}), "-1\n");
  EXPECT_TRUE(log.has_line_with({"could not set the expiry of dedup marks", "NOPERM"})) << "no warning logged";
}

// A topic's figures say why they cannot be read instead of reading as an empty topic: a user whose
// ACL does not cover the topic's keys, or a key of another type where the stream should be.
TEST(RedisBus, TopicStatsSayWhyTheyCannotBeReadInsteadOfShowingZeros) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("stats");
  auto bus = make_redis_bus(bus_options(server));
  auto stats = bus->topic_stats(topic);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_EQ(stats->length, 0u) << "a topic nothing was published to is empty, not an error";
  EXPECT_TRUE(stats->groups.empty());

  auto subscription = bus->subscribe(topic, [](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> { return {}; },
                                     durable("workers", "only", 1));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.stats", boost::json::value{{"n", 1}})));
  ASSERT_TRUE(test::eventually([&] {
    auto now = bus->topic_stats(topic);
    return now && now->length == 1 && now->groups.size() == 1 && now->groups[0].pending == 0 && now->groups[0].lag == 0;
  }, 10s));
  subscription->stop();

  // A user allowed every command but no key of this topic.
  ASSERT_EQ(server.cli({"ACL", "SETUSER", "outsider", "on", ">outsider-pw", "resetkeys", "~baton:{elsewhere}:*", "+@all"}), "OK\n");
  auto options = bus_options(server);
  options.redis.user = "outsider";
  options.redis.password = "outsider-pw";
  auto outsider = make_redis_bus(options);
  auto denied = outsider->topic_stats(topic);
  ASSERT_FALSE(denied) << "read as length " << denied->length;
  EXPECT_EQ(denied.error(), errc::permission_denied);
  EXPECT_NE(denied.error().message().find("XLEN: NOPERM"), std::string::npos) << denied.error().message();

  // Only the retries' sorted set is out of reach: the group's pending count would be short.
  ASSERT_EQ(server.cli({"ACL", "SETUSER", "outsider", "resetkeys", "~" + stream_key(topic), "~" + stream_key(topic) + ".dlq",
                        "~" + stream_key(topic) + ":redeliver:*"}),
            "OK\n");
  auto partly = outsider->topic_stats(topic);
  ASSERT_FALSE(partly) << "read with " << partly->groups.size() << " groups";
  EXPECT_NE(partly.error().message().find("ZCARD of the retries: NOPERM"), std::string::npos) << partly.error().message();

  const std::string other = test::unique_name("wrongtype");
  ASSERT_EQ(server.cli({"SET", stream_key(other), "not a stream"}), "OK\n");
  auto wrong = bus->topic_stats(other);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), errc::wrong_type) << wrong.error().message();
}

// What `baton bench` removes from a server it was pointed at: the topic's stream, its dead letters,
// and its groups' redeliveries and waiting retries; the marks stay, to expire with the dedup window.
TEST(RedisBus, RemovingATopicsKeysDeletesItsStreamsAndWhatItsGroupsKeep) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("remove");
  const auto base = stream_key(topic);
  auto bus = make_redis_bus(bus_options(server));
  auto options = durable("workers", "only", 1);
  options.redelivery.base_delay = 600s;  // a failed try waits in the retry set through the test
  options.redelivery.max_delay = 600s;
  options.redelivery.jitter = Jitter::none;
  auto subscription = bus->subscribe(topic, [](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    if (e.payload == "dead") return Error{errc::invalid_argument, "never handled"};
    if (e.payload == "later") return Error{errc::unavailable, "try again later"};
    return {};
  }, options);
  ASSERT_TRUE(subscription);
  for (const char* what : {"ok", "dead", "later"}) ASSERT_TRUE(bus->publish(topic, make_envelope("test.remove", boost::json::value(what))));
  ASSERT_TRUE(test::eventually([&] {
    return server.cli({"XLEN", base + ".dlq"}) == "1\n" && server.cli({"ZCARD", base + ":retry:workers"}) == "1\n";
  }, 10s));
  subscription->stop();
  const auto marks = server.cli({"KEYS", base + ":mark:*"});  // a test may list keys; the bus never does
  ASSERT_FALSE(marks.empty());

  auto removed = remove_topic_keys(bus_options(server), topic);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 4u) << "the stream, its dead letters, the group's redeliveries and retries";
  for (const auto& key : {base, base + ".dlq", base + ":redeliver:workers", base + ":retry:workers"}) {
    EXPECT_EQ(server.cli({"EXISTS", key}), "0\n") << key;
  }
  EXPECT_EQ(server.cli({"KEYS", base + ":mark:*"}), marks) << "marks are left to expire";

  auto again = remove_topic_keys(bus_options(server), topic);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, 0u);
  auto bad = remove_topic_keys(bus_options(server), "not a topic");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), errc::invalid_argument);
}

// The mark's bucket and field split an id without losing any of it: ids made in the same
// millisecond share one of four buckets, and no two ids share a bucket and a field.
TEST(RedisBus, DedupMarkBucketsSplitAnIdWithoutLosingAnyOfIt) {
  const std::string id = "019ac3f2-1a2b-7c3d-8e4f-0123456789ab";
  EXPECT_EQ(dedup_mark_bucket(id), "019ac3f2-1a2b.3");
  EXPECT_EQ(dedup_mark_field(id), "-7c3d-8e4f-0123456789ab");
  // The low two bits of the last hex digit: four buckets per millisecond.
  EXPECT_EQ(dedup_mark_bucket("019ac3f2-1a2b-7c3e-8e4f-0123456789aa"), "019ac3f2-1a2b.2");
  EXPECT_EQ(dedup_mark_bucket("019ac3f2-1a2b-7c3e-8e4f-0123456789a5"), "019ac3f2-1a2b.1");
  EXPECT_EQ(dedup_mark_bucket("019ac3f2-1a2b-7c3e-8e4f-0123456789ac"), "019ac3f2-1a2b.0");
  // Case is kept: a differently written id is a different id here, as everywhere else in the bus.
  EXPECT_NE(dedup_mark_bucket("019AC3F2-1A2B-7C3D-8E4F-0123456789AB"), dedup_mark_bucket(id));
  std::set<std::pair<std::string, std::string>> seen;
  std::set<std::string> buckets;
  std::set<std::string> milliseconds;  // the ids' time prefixes
  for (int n = 0; n < 1000; ++n) {
    const auto made = new_uuid_v7();
    EXPECT_EQ(made.substr(0, 13) + std::string(dedup_mark_field(made)), made);
    EXPECT_TRUE(seen.emplace(dedup_mark_bucket(made), std::string(dedup_mark_field(made))).second) << made;
    buckets.insert(dedup_mark_bucket(made));
    milliseconds.insert(made.substr(0, 13));
  }
  // However long the loop took (a sanitizer build on a busy machine is slow), ids of one
  // millisecond fall into at most four buckets, so a thousand ids share them.
  EXPECT_LE(buckets.size(), 4 * milliseconds.size());
  EXPECT_LT(buckets.size(), seen.size()) << "a thousand ids made in a row should share buckets (" << milliseconds.size()
                                             << " milliseconds)";
}

// A handled envelope id's mark names its entry for the dedup window and then goes: its bucket hash
// expires, and the same id published again after that runs again.
TEST(RedisBus, ADedupMarkLastsTheDedupWindowAndNoLonger) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("window");
  auto bus = make_redis_bus(bus_options(server));
  std::atomic<int> calls{0};
  auto options = durable("workers", "only", 1);
  options.dedup_window = 1500ms;
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    ++calls;
    return {};
  }, options);
  ASSERT_TRUE(subscription);
  const auto envelope = make_envelope("test.window", boost::json::value{{"n", 1}});
  ASSERT_TRUE(bus->publish(topic, envelope));
  ASSERT_TRUE(test::eventually([&] { return server.cli({"XPENDING", stream_key(topic), "workers"}).starts_with("0\n") && calls == 1; }, 10s));
  EXPECT_TRUE(read_mark(server, topic, "workers", envelope.id).starts_with("t|")) << "the handled id has no mark";
  const std::string bucket = stream_key(topic) + ":mark:workers:" + dedup_mark_bucket(envelope.id);
  const auto ttl = std::stoll(server.cli({"PTTL", bucket}));
  EXPECT_GT(ttl, 0) << "the marks' hash must expire";
  EXPECT_LE(ttl, 1500);
  // Within the window a duplicate is skipped; after it, the id is new again.
  ASSERT_TRUE(bus->publish(topic, envelope));
  ASSERT_TRUE(test::eventually([&] { return stream_length(server, topic) == 2 && all_read_and_acked(server, stream_key(topic), "workers"); }, 10s));
  EXPECT_EQ(calls.load(), 1) << "a duplicate within the window ran";
  ASSERT_TRUE(test::eventually([&] { return server.cli({"EXISTS", bucket}) == "0\n"; }, 10s));
  ASSERT_TRUE(bus->publish(topic, envelope));
  EXPECT_TRUE(test::eventually([&] { return calls == 2; }, 10s)) << "the same id after the window did not run";
}

// A duplicate's begin finds its envelope id's mark taken (HSETNX answers 0) and reads the mark in a
// second round trip. A mark dropped in between (its carrier went to a retry, or to the dead letters)
// reads as nothing: the duplicate comes back a little later and takes the mark then. So the id runs
// once: the duplicate is neither acked as done (its carrier never succeeded) nor run at once beside
// the carrier's retry. The carrier's consumer is played by the test with plain commands, leaving
// what its retry or dead-letter script leaves; the proxy holds the duplicate's read of the mark
// meanwhile.
void drop_a_mark_between_its_set_and_its_read(bool carrier_retried) {
  RedisServer server({.append_only = false});
  test::FaultProxy proxy(server.port());
  const std::string topic = test::unique_name("dropped");
  const std::string stream = stream_key(topic);
  auto plain = make_redis_bus(bus_options(server));
  const auto envelope = make_envelope("test.dropped", boost::json::value{{"n", 1}});
  // The carrier: the id's first entry, read and begun by the played consumer.
  ASSERT_EQ(server.cli({"XGROUP", "CREATE", stream, "workers", "0", "MKSTREAM"}), "OK\n");
  ASSERT_TRUE(plain->publish(topic, envelope));
  ASSERT_NE(server.cli({"XREADGROUP", "GROUP", "workers", "played", "COUNT", "1", "STREAMS", stream, ">"}), "\n");
  const std::string range = server.cli({"XRANGE", stream, "-", "+"});
  const std::string carrier = range.substr(0, range.find('\n'));
  const std::string bucket = stream + ":mark:workers:" + dedup_mark_bucket(envelope.id);
  const std::string field(dedup_mark_field(envelope.id));
  ASSERT_EQ(server.cli({"HSETNX", bucket, field, "t|" + carrier}), "1\n");

  // The duplicate, read by the bus under test, whose read of the mark the proxy holds back.
  auto options = bus_options(server, 10min);
  options.redis.port = proxy.port();
  options.redis.request_timeout = 10s;
  auto bus = make_redis_bus(options);
  proxy.hold_requests_with("$4\r\nHGET\r\n");
  std::atomic<int> calls{0};
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    ++calls;
    return {};
  }, durable("workers", "tested", 1));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(plain->publish(topic, envelope));
  ASSERT_TRUE(test::eventually([&] { return proxy.requests_held() > 0; }, 10s)) << "the duplicate's mark was never read";

  // The carrier fails: its mark is dropped with its ack, and a retry of it is due at once.
  ASSERT_EQ(server.cli({"HDEL", bucket, field}), "1\n");
  ASSERT_EQ(server.cli({"XACK", stream, "workers", carrier}), "1\n");
  if (carrier_retried) {
    ASSERT_EQ(server.cli({"ZADD", stream + ":retry:workers", "0", encode(retry_envelope(envelope))}), "1\n");
  }
  proxy.release_requests();

  // Settled: every entry of both streams read by the group and acked, and no retry waiting; then
  // nothing is left that could run the id again.
  const auto settled = [&] {
    return all_read_and_acked(server, stream, "workers") && all_read_and_acked(server, stream + ":redeliver:workers", "workers") &&
           server.cli({"ZCARD", stream + ":retry:workers"}) == "0\n";
  };
  EXPECT_TRUE(test::eventually([&] { return calls > 0 && settled(); }, 10s)) << calls.load() << " calls";
  EXPECT_EQ(calls.load(), 1);
}

TEST(RedisBus, AMarkDroppedByItsCarriersRetryBetweenADuplicatesTwoLookupsRunsTheIdOnce) { drop_a_mark_between_its_set_and_its_read(true); }

TEST(RedisBus, AMarkDroppedByItsCarriersDeadLetterBetweenADuplicatesTwoLookupsRunsTheDuplicate) {
  drop_a_mark_between_its_set_and_its_read(false);
}

TEST(RedisBus, ALateHandOffIsRefusedAndLeavesTheEntryWithItsHolder) { finish_an_entry_taken_over_meanwhile(true); }

// A commit whose reply is lost (the connection drops after Redis ran it) is sent again; by then its
// entry is acked, yet the second try must answer as the first did: acked, not "refused". A hand-off
// goes through the group commit script and its commit record; a success without outputs through a
// plain XACK.
void lose_a_commit_reply(bool with_handoff) {
  RedisServer server({.append_only = false});
  test::FaultProxy proxy(server.port());
  auto options = bus_options(server, 10s);
  options.redis.port = proxy.port();
  auto bus = make_redis_bus(options);
  const std::string topic = test::unique_name("lostreply");
  std::atomic<int> calls{0}, acked{0};
  std::promise<void> second_started, go_on;
  auto release = go_on.get_future().share();
  auto subscribe = durable("workers", "only", 1);
  subscribe.on_acked = [&](const JsonEnvelope&) { ++acked; };
  const std::string next_topic = topic.substr(0, topic.find('.')) + ".next";
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo& info) -> Result<void> {
    if (++calls == 2) {
      second_started.set_value();
      release.wait();
    }
    if (with_handoff) return info.handoff->publish(next_topic, make_envelope("test.next", e.payload));
    return {};
  }, subscribe);
  ASSERT_TRUE(subscription);
  // The first message readies the committer's connection and script (their replies are not held).
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.lost_reply", boost::json::value{{"n", 1}})));
  ASSERT_TRUE(test::eventually([&] { return acked.load() == 1; }, 10s));
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.lost_reply", boost::json::value{{"n", 2}})));
  ASSERT_EQ(second_started.get_future().wait_for(10s), std::future_status::ready);

  proxy.hold_replies(true);
  go_on.set_value();
  // Redis has run the commit (the entry is acked); its reply is held by the proxy.
  ASSERT_TRUE(test::eventually([&] { return server.cli({"XPENDING", stream_key(topic), "workers"}).starts_with("0\n"); }, 10s));
  proxy.cut(200ms);
  proxy.hold_replies(false);

  EXPECT_TRUE(test::eventually([&] { return acked.load() == 2; }, 10s)) << "the commit's second try did not confirm the ack";
  subscription->stop();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(acked.load(), 2);
  if (with_handoff) {
    EXPECT_EQ(stream_length(server, next_topic), 2) << "each hand-off published once";
  }
}

TEST(RedisBus, AGroupCommitWhoseReplyWasLostIsConfirmedByItsSecondTry) { lose_a_commit_reply(true); }

TEST(RedisBus, AnAckWhoseReplyWasLostIsConfirmedByItsSecondTry) { lose_a_commit_reply(false); }

// Graceful shutdown: SIGTERM under load. Handlers in flight finish and are acked; entries the worker
// had read but not started are handed back at once (not after reclaim_idle); none runs twice.
TEST(RedisBus, ATerminatedWorkerFinishesInFlightWorkAndHandsBackTheRest) {
  RedisServer server;
  const std::string topic = test::unique_name("term");
  auto options = bus_options(server, std::chrono::minutes{10});  // nothing may wait for a reclaim
  auto bus = make_redis_bus(options);
  auto kv = make_redis_kv(options.redis);
  const auto ids = publish_numbered(*bus, topic, 30);
  ASSERT_EQ(ids.size(), 30u);
  const pid_t worker = spawn_worker(server, topic, "leaving", "200", "600000");
  ASSERT_GE(worker, 0);
  const auto handled = [&] { return handled_count(*kv, ids); };
  ASSERT_TRUE(test::eventually([&] { return handled() >= 4; }, 20s));
  ::kill(worker, SIGTERM);
  int status = 0;
  ::waitpid(worker, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the worker did not stop cleanly";
  const int finished_by_worker = handled();
  ASSERT_LT(finished_by_worker, 30) << "the worker finished everything before it was asked to stop";

  // A successor with a reclaim idle of 10 minutes still gets the handed-back entries at once.
  auto successor = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) {
    return record_effect(*kv, e);
  }, durable("workers", "successor"));
  ASSERT_TRUE(successor);
  EXPECT_TRUE(test::eventually([&] { return handled() == 30; }, 20s)) << "entries of the stopped worker were not handed back";
  successor->stop();
  for (const auto& id : ids) EXPECT_EQ(effect_count(*kv, id), 1) << "envelope " << id;
}

// With slow handlers a consumer reads little ahead, so the other consumers of the group share the
// work instead of idling while one of them holds it all.
TEST(RedisBus, SlowHandlersShareTheWorkAcrossConsumers) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("share");
  auto options = bus_options(server, 30s);
  auto publisher = make_redis_bus(options);
  auto first = make_redis_bus(options);
  auto second = make_redis_bus(options);
  std::mutex mutex;
  std::map<std::string, int> handled_by;
  const auto handler_of = [&](std::string name) {
    return [&, name](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
      std::this_thread::sleep_for(100ms);
      std::lock_guard lock(mutex);
      ++handled_by[name];
      return {};
    };
  };
  const auto ids = publish_numbered(*publisher, topic, 40);
  ASSERT_EQ(ids.size(), 40u);
  auto a = first->subscribe(topic, handler_of("a"), durable("workers", "a"));
  ASSERT_TRUE(a);
  // "a" alone first, until it has handled one: by then it has read, the moment it could take everything.
  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard lock(mutex);
    return handled_by["a"] >= 1;
  }, 10s));
  auto b = second->subscribe(topic, handler_of("b"), durable("workers", "b"));
  ASSERT_TRUE(b);
  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard lock(mutex);
    return handled_by["a"] + handled_by["b"] == 40;
  }, 30s));
  a->stop();
  b->stop();
  EXPECT_GE(handled_by["b"], 10) << "the later consumer got " << handled_by["b"] << " of 40: the first one held the rest";
}

// With handlers slower than the reads, a reader that read as soon as one place freed read an entry
// or two per round trip (and began them in one more): these 120 entries took 68-94 reads. It waits
// for room for half its capacity now (23 reads here), so each read brings several.
TEST(RedisBus, HandlersSlowerThanTheReadsAreFedSeveralEntriesPerRead) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("refill");
  auto options = bus_options(server, 30s);
  auto bus = make_redis_bus(options);
  constexpr int count = 120;
  ASSERT_EQ(publish_numbered(*bus, topic, count).size(), static_cast<std::size_t>(count));
  ASSERT_EQ(server.cli({"CONFIG", "RESETSTAT"}), "OK\n");
  std::atomic<int> handled{0};
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    std::this_thread::sleep_for(5ms);
    ++handled;
    return {};
  }, durable("workers", "only"));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(test::eventually([&] { return handled.load() == count; }, 30s)) << handled.load() << " of " << count;
  subscription->stop();
  const auto reads = command_calls(server, "xreadgroup");
  EXPECT_GT(reads, 0);
  EXPECT_LE(reads, count / 3) << reads << " reads for " << count << " entries";
}

TEST(RedisBus, ASlowHandlerIsNotRunTwice) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("slow");
  auto options = bus_options(server, 1000ms);  // handlers take 2.5 times longer than this
  auto first = make_redis_bus(options);
  auto second = make_redis_bus(options);
  std::mutex mutex;
  std::map<std::string, int> runs;
  test::Recorder finished;
  auto slow = [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    {
      std::lock_guard lock(mutex);
      ++runs[e.id];
    }
    std::this_thread::sleep_for(2500ms);
    finished.add(e);
    return {};
  };
  auto a = first->subscribe(topic, slow, durable("workers", "a", 2));
  auto b = second->subscribe(topic, slow, durable("workers", "b", 2));
  ASSERT_TRUE(a && b);
  for (int n = 0; n < 4; ++n) ASSERT_TRUE(first->publish(topic, make_envelope("test.slow", boost::json::value(n))));
  ASSERT_TRUE(finished.wait_for_count(4, 30s));
  a->stop();
  b->stop();
  std::lock_guard lock(mutex);
  EXPECT_EQ(runs.size(), 4u);
  for (const auto& [id, count] : runs) EXPECT_EQ(count, 1) << "envelope " << id << " ran " << count << " times";
}

TEST(RedisBus, MalformedEntriesAndWrongPayloadsLandInTheDeadLetters) {
  RedisServer server({.append_only = false});
  const std::string topic = "bad.input";
  auto bus = make_redis_bus(bus_options(server));
  const std::string stream = "baton:{bad}:bad.input";
  server.cli({"XADD", stream, "*", "x", "no envelope here"});
  server.cli({"XADD", stream, "*", "e", "{not json"});
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.typed", boost::json::value("a string, not a number"))));
  const auto good = make_envelope("test.typed", boost::json::value(42));
  ASSERT_TRUE(bus->publish(topic, good));

  test::Recorder handled;
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    auto typed = to_typed<int>(e);
    if (!typed) return typed.error().to_error();  // decode_failed: permanent
    handled.add(e);
    return {};
  }, durable("workers", "c", 1));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(handled.wait_for_count(1)) << "the consumer stopped at a bad entry";
  EXPECT_EQ(handled.seen().front().id, good.id);
  std::vector<ports::DeadLetter> letters;
  ASSERT_TRUE(test::eventually([&] {
    letters = bus->dead_letters(topic).value_or({});
    return letters.size() >= 3;
  }));
  ASSERT_EQ(letters.size(), 3u);
  EXPECT_EQ(letters[0].reason, "decode_failed");
  EXPECT_NE(letters[0].error.find("no envelope field"), std::string::npos) << letters[0].error;
  EXPECT_EQ(letters[1].reason, "decode_failed");
  EXPECT_EQ(letters[1].original, "{not json");
  EXPECT_EQ(letters[2].reason, "permanent_failure");
  EXPECT_NE(letters[2].error.find("payload"), std::string::npos) << letters[2].error;
}


TEST(RedisBus, RetentionNeverTrimsWhatAGroupHasNotAcked) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("retention");
  auto options = bus_options(server);
  options.retain_acked = 0ms;
  auto bus = make_redis_bus(options);
  test::Recorder fast, late;
  // Group "late" exists but does not read yet (it was subscribed once, then stopped).
  (void)bus->subscribe(topic, [](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> { return {}; },
                       durable("late", "late-1"));
  auto reader = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    fast.add(e);
    return {};
  }, durable("fast", "fast-1"));
  ASSERT_TRUE(reader);
  constexpr int messages = 50;
  for (int n = 0; n < messages; ++n) ASSERT_TRUE(bus->publish(topic, make_envelope("test.retention", boost::json::value(n))));
  ASSERT_TRUE(fast.wait_for_count(messages));
  // An absence cannot be waited for: give the trimmer three of its rounds (one per reclaim
  // interval) to do the wrong thing while "late" has read nothing.
  for (int round = 0; round < 3; ++round) std::this_thread::sleep_for(options.reclaim_interval);
  EXPECT_EQ(stream_length(server, topic), messages) << "trimmed entries that group \"late\" never read";

  auto catching_up = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    late.add(e);
    return {};
  }, durable("late", "late-2"));
  ASSERT_TRUE(catching_up);
  ASSERT_TRUE(late.wait_for_count(messages)) << "group \"late\" lost entries to retention";
  // Once both groups acked everything, it goes (MINID keeps at most the last delivered entry).
  EXPECT_TRUE(test::eventually([&] { return stream_length(server, topic) <= 1; }));
}

TEST(RedisBus, AnEntryTrimmedWhilePendingBecomesADeadLetterNotAnEmptyMessage) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("trimmed");
  auto options = bus_options(server, 100ms);
  auto bus = make_redis_bus(options);
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.trimmed", boost::json::value(1))));
  // A consumer reads it and vanishes; then a naive MAXLEN trim (not Baton's) drops it while pending.
  server.cli({"XGROUP", "CREATE", stream_key(topic), "workers", "0"});
  server.cli({"XREADGROUP", "GROUP", "workers", "ghost", "COUNT", "10", "STREAMS", stream_key(topic), ">"});
  server.cli({"XTRIM", stream_key(topic), "MAXLEN", "0"});
  std::atomic<int> handled{0};
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    ++handled;
    return {};
  }, durable("workers", "survivor"));
  ASSERT_TRUE(subscription);
  std::vector<ports::DeadLetter> letters;
  ASSERT_TRUE(test::eventually([&] {
    letters = bus->dead_letters(topic).value_or({});
    return !letters.empty();
  }));
  EXPECT_EQ(letters.front().reason, "trimmed_while_pending");
  EXPECT_EQ(handled.load(), 0) << "an entry without a body was handed to the handler";
}

TEST(RedisBus, EphemeralSubscriberResubscribesAfterTheServerRestarts) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("live");
  auto bus = make_redis_bus(bus_options(server));
  test::Recorder heard;
  ports::SubscribeOptions options;
  options.delivery = ports::Delivery::ephemeral;
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    heard.add(e);
    return {};
  }, options);
  ASSERT_TRUE(subscription) << subscription.error().message();
  ports::PublishOptions ephemeral;
  ephemeral.delivery = ports::Delivery::ephemeral;
  const auto publish_until_heard = [&](std::size_t count) {
    return test::eventually([&] {
      (void)bus->publish(topic, make_envelope("test.live", boost::json::value(1)), ephemeral);
      return heard.wait_for_count(count, 50ms);
    });
  };
  ASSERT_TRUE(publish_until_heard(1));
  server.kill9();
  server.restart();
  const auto before = heard.count();
  EXPECT_TRUE(publish_until_heard(before + 1)) << "the subscriber did not subscribe again after the restart";
}

// A batch is published as one transaction: Redis serves a blocked reader after each command of a
// plain pipeline, which would hand it the first entry alone and leave the rest for more round trips.
TEST(RedisBus, AReaderWaitingOnTheTopicGetsAPublishedBatchInOneRead) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("batch");
  auto bus = make_redis_bus(bus_options(server));
  ASSERT_EQ(server.cli({"XGROUP", "CREATE", stream_key(topic), "readers", "$", "MKSTREAM"}), "OK\n");
  auto blocked_read = std::async(std::launch::async, [&] {
    return server.cli({"XREADGROUP", "GROUP", "readers", "r1", "COUNT", "100", "BLOCK", "20000", "STREAMS", stream_key(topic), ">"});
  });
  ASSERT_TRUE(test::eventually([&] { return server.cli({"INFO", "clients"}).find("blocked_clients:1") != std::string::npos; }, 10s));
  std::vector<JsonEnvelope> batch;
  for (int n = 0; n < 5; ++n) batch.push_back(make_envelope("test.batch", boost::json::value{{"n", n}}));
  ASSERT_TRUE(bus->publish_batch(topic, batch));
  ASSERT_EQ(blocked_read.wait_for(10s), std::future_status::ready);
  const auto read = blocked_read.get();
  for (const auto& envelope : batch) EXPECT_NE(read.find(envelope.id), std::string::npos) << "not in the first read: " << envelope.id;
}

// Redis keeps a transaction's commands in memory until EXEC, so a batch is cut into transactions of
// at most 256 envelopes or about 1 MiB.
TEST(RedisBus, ALargeBatchIsPublishedAsSeveralTransactions) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("chunks");
  auto bus = make_redis_bus(bus_options(server));
  const auto transactions = [&] { return command_calls(server, "exec"); };
  std::vector<JsonEnvelope> many;
  for (int n = 0; n < 600; ++n) many.push_back(make_envelope("test.chunk", boost::json::value{{"n", n}}));
  ASSERT_TRUE(bus->publish_batch(topic, many));
  EXPECT_EQ(transactions(), 3);  // 256 + 256 + 88
  std::vector<JsonEnvelope> large;
  for (int n = 0; n < 3; ++n) large.push_back(make_envelope("test.chunk", boost::json::value{{"pad", std::string(600'000, 'x')}}));
  ASSERT_TRUE(bus->publish_batch(topic, large));
  EXPECT_EQ(transactions(), 5);  // two envelopes pass 1 MiB, the third goes alone
  EXPECT_EQ(server.cli({"XLEN", stream_key(topic)}), "603\n");
}

// Both ways a server refuses a transaction's command come back as the command's error: refused when
// queued (out of memory: nothing of the batch runs) and refused when run (a key of the wrong type).
TEST(RedisBus, APublishedBatchTheServerRefusesIsAnErrorThatSaysWhy) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("refused");
  auto bus = make_redis_bus(bus_options(server));
  std::vector<JsonEnvelope> batch;
  for (int n = 0; n < 3; ++n) batch.push_back(make_envelope("test.batch", boost::json::value{{"n", n}}));

  ASSERT_EQ(server.cli({"CONFIG", "SET", "maxmemory", "1"}), "OK\n");
  auto out_of_memory = bus->publish_batch(topic, batch);
  ASSERT_FALSE(out_of_memory);
  EXPECT_EQ(out_of_memory.error(), errc::resource_exhausted);
  EXPECT_NE(out_of_memory.error().detail.find("XADD: OOM"), std::string::npos) << out_of_memory.error().detail;
  ASSERT_EQ(server.cli({"CONFIG", "SET", "maxmemory", "0"}), "OK\n");
  EXPECT_EQ(server.cli({"XLEN", stream_key(topic)}), "0\n");

  ASSERT_EQ(server.cli({"SET", stream_key(topic), "not a stream"}), "OK\n");
  auto wrong_type = bus->publish_batch(topic, batch);
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(wrong_type.error(), errc::wrong_type);
  EXPECT_NE(wrong_type.error().detail.find("XADD: WRONGTYPE"), std::string::npos) << wrong_type.error().detail;

  ASSERT_EQ(server.cli({"DEL", stream_key(topic)}), "1\n");
  ASSERT_TRUE(bus->publish_batch(topic, batch));
  EXPECT_EQ(server.cli({"XLEN", stream_key(topic)}), "3\n");
}

// One field (`id`, `cmd`, ...) of each of the server's clients named `name`, from CLIENT LIST.
std::vector<std::string> client_field(RedisServer& server, const std::string& name, const std::string& field) {
  std::vector<std::string> values;
  std::istringstream lines(server.cli({"CLIENT", "LIST"}));
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" name=" + name + " ") == std::string::npos) continue;
    const auto at = (" " + line).find(" " + field + "=");  // the first field has no space before it
    if (at == std::string::npos) continue;
    const auto start = at + field.size() + 1;
    values.push_back(line.substr(start, line.find(' ', start) - start));
  }
  return values;
}

std::vector<std::string> clients_named(RedisServer& server, const std::string& name) { return client_field(server, name, "id"); }

// A publishing thread drives a connection of its own while one is free; past the limit, threads
// share the pipelined connection, and every envelope is published once either way.
TEST(RedisBus, PublishersBeyondTheirOwnConnectionsShareThePipelinedOne) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("publishers");
  auto options = bus_options(server);
  options.direct_publishers = 2;
  auto bus = make_redis_bus(options);
  constexpr int threads = 8, batches = 40, per_batch = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> publishers;
  for (int t = 0; t < threads; ++t) {
    publishers.emplace_back([&, t] {
      for (int b = 0; b < batches; ++b) {
        std::vector<JsonEnvelope> batch;
        for (int n = 0; n < per_batch; ++n) batch.push_back(make_envelope("test.publishers", boost::json::value{{"t", t}, {"n", n}}));
        if (!bus->publish_batch(topic, batch)) ++failures;
      }
    });
  }
  for (auto& publisher : publishers) publisher.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server.cli({"XLEN", stream_key(topic)}), std::to_string(threads * batches * per_batch) + "\n");
  const auto own = clients_named(server, "baton:publisher");
  EXPECT_GE(own.size(), 1u);
  EXPECT_LE(own.size(), 2u);

  // A publisher's connection closed by the server is made again by its next publish.
  for (const auto& id : own) EXPECT_EQ(server.cli({"CLIENT", "KILL", "ID", id}), "1\n");
  ASSERT_TRUE(test::eventually([&] { return clients_named(server, "baton:publisher").empty(); }, 10s));
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.publishers", boost::json::value{{"after", "kill"}})));
  EXPECT_EQ(server.cli({"XLEN", stream_key(topic)}), std::to_string(threads * batches * per_batch + 1) + "\n");

  // With none of their own, publishers take the shared connection.
  options.direct_publishers = 0;
  auto shared_only = make_redis_bus(options);
  const auto before = clients_named(server, "baton:publisher").size();
  ASSERT_TRUE(shared_only->publish(topic, make_envelope("test.publishers", boost::json::value{{"shared", true}})));
  EXPECT_EQ(clients_named(server, "baton:publisher").size(), before);
  EXPECT_EQ(server.cli({"XLEN", stream_key(topic)}), std::to_string(threads * batches * per_batch + 2) + "\n");
}

// Publishes `total` envelopes and handles them with a subscription of two readers, reading 50 at a
// time; with `half_as_retries`, the second half waits on the group's redelivery stream instead, as
// if moved there by the retry mover. Every entry must be handled once, and both readers must read.
void expect_backlog_read_by_both_readers(int total, bool half_as_retries) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("backlog");
  auto options = bus_options(server);
  options.readers = 2;
  options.read_count = 50;
  // Housekeeping in its first round only: a later round's XAUTOCLAIM (every 100 ms with
  // bus_options) on the first reader's connection could be the last command CLIENT LIST shows for
  // it below (seen under ASan with the machine loaded: failed in 1 of 8 runs, none of 40 with this).
  options.reclaim_interval = 10min;
  auto bus = make_redis_bus(options);
  std::vector<JsonEnvelope> batch;
  for (int n = 0; n < total; ++n) batch.push_back(make_envelope("test.backlog", boost::json::value{{"n", n}}));
  ASSERT_TRUE(bus->publish_batch(topic, batch));
  const std::string redeliveries = stream_key(topic) + ":redeliver:backlog";
  if (half_as_retries) {
    const std::string move_half = R"(
      local entries = redis.call("XRANGE", KEYS[1], "-", "+")
      for i = #entries / 2 + 1, #entries do
        redis.call("XADD", KEYS[2], "*", unpack(entries[i][2]))
        redis.call("XDEL", KEYS[1], entries[i][1])
      end
      return redis.call("XLEN", KEYS[2]))";  // in double quotes: the harness quotes arguments in single ones
    ASSERT_EQ(server.cli({"EVAL", move_half, "2", stream_key(topic), redeliveries}), std::to_string(total / 2) + "\n");
  }

  std::vector<std::atomic<int>> handled(static_cast<std::size_t>(total));
  std::atomic<int> distinct{0};
  // Handlers that take a little time, as real ones do: with handlers that return at once, the
  // first reader alone could drain the whole backlog before the second one got room to read into
  // (2 of 15 runs on a fast machine). With 300 us each, the workers are the bound for about half a
  // second or more, in which both readers wait for room and each freed slot may wake either. (With
  // 100 us, a run of `make test` beside a parallel build saw the second reader never read.)
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope& envelope, const ports::DeliveryInfo&) -> Result<void> {
    std::this_thread::sleep_for(300us);
    if (handled[static_cast<std::size_t>(envelope.payload.at("n").to_number<int>())]++ == 0) ++distinct;
    return {};
  }, durable("backlog", "only", 2));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(test::eventually([&] { return distinct.load() == total; }, 60s)) << distinct.load() << " of " << total;
  for (const auto& stream : {stream_key(topic), redeliveries}) {
    ASSERT_TRUE(test::eventually([&] { return server.cli({"XPENDING", stream, "backlog"}).starts_with("0\n"); }, 10s)) << stream;
  }
  for (int n = 0; n < total; ++n) EXPECT_EQ(handled[static_cast<std::size_t>(n)].load(), 1) << "entry " << n;
  // Both readers read (a reader that never did shows only its connection's setup command, or no
  // connection at all).
  const auto commands = client_field(server, "baton:reader", "cmd");
  ASSERT_EQ(commands.size(), 2u);
  for (const auto& command : commands) {
    EXPECT_TRUE(command == "xreadgroup" || command == "hsetnx" || command == "pexpire" || command == "hget" || command == "evalsha") << command;
  }
}

// One reader, connected through `proxy`, with no reclaim or keep-alive due for 10 minutes: so every
// read may go out behind a begin. Timeouts long enough for the proxy's delays.
RedisBusOptions one_reader_through(const test::FaultProxy& proxy, const RedisServer& server) {
  auto options = bus_options(server, 10min);
  options.reclaim_interval = 10min;
  options.readers = 1;
  options.redis.port = proxy.port();
  options.redis.connect_timeout = 10s;
  options.redis.request_timeout = 10s;
  return options;
}

// The reader writes its next read behind the begin of what it just read, so Redis has that read
// (blocked, or answered with the next batch) before the begin's reply is back. A proxy that delays
// every chunk by 300 ms makes it visible: once the begin's reply has come back and the handler
// runs, the server has run the reader's next read already; written after the reply, the read would
// still be in the proxy then, and the reader's last command in the server the begin's PEXPIRE.
TEST(RedisBus, TheNextReadIsWrittenBehindTheBeginOfTheLastOne) {
  RedisServer server({.append_only = false});
  test::FaultProxy proxy(server.port());
  auto bus = make_redis_bus(one_reader_through(proxy, server));
  auto publisher = make_redis_bus(bus_options(server));
  const std::string topic = test::unique_name("behind");
  std::promise<std::vector<std::string>> seen_at_start;
  std::atomic<int> calls{0};
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    if (++calls == 1) seen_at_start.set_value(client_field(server, "baton:reader", "cmd"));
    return {};
  }, durable("behind", "only", 1));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(test::eventually([&] { return client_field(server, "baton:reader", "cmd") == std::vector<std::string>{"xreadgroup"}; }, 10s));
  proxy.set_latency(300ms);
  ASSERT_TRUE(publisher->publish(topic, make_envelope("test.behind", boost::json::value{{"n", 1}})));
  auto seen = seen_at_start.get_future();
  ASSERT_EQ(seen.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(seen.get(), std::vector<std::string>{"xreadgroup"}) << "the reader's last command in the server when the handler started";
  proxy.set_latency(0ms);
  subscription->stop();
  EXPECT_EQ(calls.load(), 1);
}

// A read written behind a begin may bring entries just as the subscription stops: they are handed
// back at once, like the rest of what was read and not started, not left pending until another
// consumer reclaims them (after 10 minutes here). The proxy's 600 ms per chunk hold the begin's
// reply while the test publishes the second entry (which the read behind the begin takes) and
// stops the subscription. (On a machine slow enough to miss that window, the second entry comes
// in through the ordinary path and is handed back all the same: the test cannot tell then.)
TEST(RedisBus, EntriesOfAReadWrittenBehindABeginAreHandedBackAtStop) {
  RedisServer server({.append_only = false});
  test::FaultProxy proxy(server.port());
  auto bus = make_redis_bus(one_reader_through(proxy, server));
  auto other = make_redis_bus(bus_options(server, 10min));
  const std::string topic = test::unique_name("handback");
  std::array<std::atomic<int>, 3> handled{};  // by number, over both consumers
  const auto handle = [&](const JsonEnvelope& envelope, const ports::DeliveryInfo&) -> Result<void> {
    ++handled[static_cast<std::size_t>(envelope.payload.at("n").to_number<int>())];
    return {};
  };
  auto first = bus->subscribe(topic, handle, durable("group", "first", 1));
  ASSERT_TRUE(first);
  ASSERT_TRUE(test::eventually([&] { return client_field(server, "baton:reader", "cmd") == std::vector<std::string>{"xreadgroup"}; }, 10s));
  ASSERT_TRUE(bus->topic_stats(topic));  // the shared connection (hand-backs go through it) is up before the delay
  proxy.set_latency(600ms);
  const auto one = make_envelope("test.handback", boost::json::value{{"n", 1}});
  ASSERT_TRUE(other->publish(topic, one));
  // The read returns the first entry; the begin and the read behind it reach the server together:
  // once the begin's mark is there, the read behind it waits in the server too.
  ASSERT_TRUE(test::eventually([&] { return read_mark(server, topic, "group", one.id) != "\n"; }, 10s));
  ASSERT_TRUE(other->publish(topic, make_envelope("test.handback", boost::json::value{{"n", 2}})));
  first->stop();
  proxy.set_latency(0ms);

  auto second = other->subscribe(topic, handle, durable("group", "second", 1));
  ASSERT_TRUE(second);
  EXPECT_TRUE(test::eventually([&] { return handled[1].load() + handled[2].load() == 2; }, 10s))
      << handled[1].load() + handled[2].load() << " of 2 handled";
  second->stop();
  EXPECT_EQ(handled[1].load(), 1);
  EXPECT_EQ(handled[2].load(), 1);
}

// A backlog is read by the subscription's further reader too (side by side with the first), and
// every entry is still handled once.
TEST(RedisBus, ABacklogIsReadBySeveralReadersOfOneSubscription) { expect_backlog_read_by_both_readers(3000, false); }

// A read counts per stream, so with retries waiting too it returns up to twice what it asked for:
// that is a backlog as well, and the further reader joins.
TEST(RedisBus, ABacklogOnTheTopicAndTheRedeliveryStreamIsReadBySeveralReaders) {
  expect_backlog_read_by_both_readers(6000, true);
}

TEST(RedisBus, AHandOffAcrossHashSlotsIsRefusedAndSaysWhy) {
  RedisServer server({.append_only = false});
  auto bus = make_redis_bus(bus_options(server));
  std::promise<Error> refused;
  auto phase = bus->subscribe("tenant-a.phase.plan.in", [&](const JsonEnvelope& e, const ports::DeliveryInfo& info) -> Result<void> {
    auto same_slot = info.handoff->publish("tenant-a.phase.code.in", e);
    EXPECT_TRUE(same_slot) << same_slot.error().message();
    auto other_slot = info.handoff->publish("tenant-b.phase.code.in", e);
    refused.set_value(other_slot ? Error{} : other_slot.error());
    return other_slot;
  }, durable("plan", "p1", 1));
  ASSERT_TRUE(phase);
  ASSERT_TRUE(bus->publish("tenant-a.phase.plan.in", make_envelope("test.slot", boost::json::value(1))));
  auto future = refused.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  const auto error = future.get();
  EXPECT_EQ(error, errc::invalid_argument);
  EXPECT_NE(error.detail.find("{tenant-a} and {tenant-b}"), std::string::npos) << error.detail;
  // The handler returned that permanent error: nothing was handed off, the input is a dead letter.
  std::vector<ports::DeadLetter> letters;
  ASSERT_TRUE(test::eventually([&] {
    letters = bus->dead_letters("tenant-a.phase.plan.in").value_or({});
    return !letters.empty();
  }));
  EXPECT_EQ(server.cli({"XLEN", "baton:{tenant-a}:tenant-a.phase.code.in"}), "0\n");
}

// A two-phase pipeline on Redis: every hand-off is one script; every task completes exactly once.
class Doubler final : public orchestrator::BaseOrchestrator<int, int> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~Doubler() override { stop(); }

 protected:
  Result<int> handle(const int& value, orchestrator::Context& context) override {
    if (context.envelope.attempts == 1 && value % 10 == 0) return retryable_failure("every tenth fails once");
    return value * 2;
  }
};

TEST(RedisPipeline, EveryTaskCompletesExactlyOnceThroughAtomicHandOffs) {
  RedisServer server;
  auto bus = make_redis_bus(bus_options(server));
  const auto pipeline = orchestrator::Pipeline::make({"first", "second"}, test::unique_name("p")).value();
  std::vector<std::unique_ptr<Doubler>> phases;
  for (const auto& name : pipeline.phases()) {
    auto options = orchestrator::phase_options(pipeline, name).value();
    options.concurrency = 4;
    options.retry.base_delay = 5ms;
    phases.push_back(std::make_unique<Doubler>(orchestrator::Ports{bus.get()}, options));
    ASSERT_TRUE(phases.back()->start());
  }
  std::mutex mutex;
  std::map<std::string, int> completions;  // corr_id -> times completed
  test::Recorder completed;
  auto sink = bus->subscribe(pipeline.completed_topic(), [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    {
      std::lock_guard lock(mutex);
      ++completions[e.corr_id];
    }
    completed.add(e);
    return {};
  }, durable("sink", "sink-1"));
  ASSERT_TRUE(sink);
  constexpr int tasks = 100;
  std::map<std::string, int> expected;
  for (int n = 0; n < tasks; ++n) {
    auto task = make_envelope("phase.first.in", boost::json::value(n));
    ASSERT_TRUE(bus->publish(pipeline.first_topic(), task));
    expected[task.corr_id] = n * 4;
  }
  ASSERT_TRUE(completed.wait_for_count(tasks, 30s));
  for (const auto& e : completed.seen()) EXPECT_EQ(e.payload, expected.at(e.corr_id));
  std::lock_guard lock(mutex);
  EXPECT_EQ(completions.size(), static_cast<std::size_t>(tasks));
  for (const auto& [corr_id, times] : completions) EXPECT_EQ(times, 1) << corr_id;
}

TEST(RedisKv, ScriptsRunByHashAndComeBackAfterTheCacheIsFlushed) {
  RedisServer server({.append_only = false});
  auto kv = make_redis_kv(bus_options(server).redis);
  ASSERT_TRUE(kv->set("k", "1"));
  server.cli({"SCRIPT", "FLUSH"});
  auto after = kv->set("k", "2");
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ((*kv->get("k"))->value, "2");
  // The calls went by hash: the server's command stats count EVALSHA.
  EXPECT_NE(server.cli({"INFO", "commandstats"}).find("cmdstat_evalsha"), std::string::npos);
}

// What a store holds under its keys, values and lists alike, goes in batches of round trips (more
// keys than one batch takes), the count saying how many existed; keys outside the list stay.
TEST(RedisKv, RemovingManyKeysTakesExactlyThose) {
  RedisServer server({.append_only = false});
  const auto options = bus_options(server).redis;
  auto kv = make_redis_kv(options);
  std::vector<std::string> keys;
  for (int n = 0; n < 2500; ++n) {
    keys.push_back("gone:" + std::to_string(n));
    ASSERT_TRUE(n % 2 == 0 ? kv->set(keys.back(), "v").has_value() : kv->append(keys.back(), "item", 0).has_value());
  }
  keys.push_back("never-written");
  ASSERT_TRUE(kv->set("kept", "v"));
  const auto removed = remove_kv_keys(options, keys);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 2500u);
  EXPECT_EQ(server.cli({"DBSIZE"}), "1\n") << "only the key outside the list is left";
  EXPECT_EQ((*kv->get("kept"))->value, "v");
}

// A batch of appends is pipelined by hash: a server that forgot the script refuses every one of
// them, and they are made again in their order.
TEST(RedisKv, BatchedAppendsComeBackInOrderAfterTheCacheIsFlushed) {
  RedisServer server({.append_only = false});
  auto kv = make_redis_kv(bus_options(server).redis);
  ASSERT_TRUE(kv->append("log", "0", 0));
  server.cli({"SCRIPT", "FLUSH"});
  const std::vector<ports::ListAppend> batch{{"log", "1"}, {"other", "a"}, {"log", "2"}, {"log", "3"}};
  for (const auto& result : kv->append_each(batch)) EXPECT_TRUE(result) << result.error().message();
  EXPECT_EQ(*kv->items("log"), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(*kv->items("other"), (std::vector<std::string>{"a"}));
}

// A batch is one round trip, not one per append: the server takes the 200 appends in a few reads
// (its read buffer holds 16 KB), where one by one they would be 200. And on a standalone server it
// is one script call, not one per append, each of which cost Redis about a quarter more
// (docs/BENCHMARKS.md, round 18).
TEST(RedisKv, ABatchOfAppendsIsOneRoundTripAndOneScriptCall) {
  RedisServer server({.append_only = false});
  auto kv = make_redis_kv(bus_options(server).redis);
  ASSERT_TRUE(kv->append("warm", "script loaded", 0));
  std::vector<ports::ListAppend> batch;
  for (int i = 0; i < 200; ++i) batch.push_back({"log:" + std::to_string(i % 40), std::to_string(i), 3, 60s});
  const auto reads = [&] {
    const auto stats = server.cli({"INFO", "stats"});
    const std::string field = "total_reads_processed:";
    return std::stoll(stats.substr(stats.find(field) + field.size()));
  };
  const auto reads_before = reads();
  for (const auto& result : kv->append_each(batch)) ASSERT_TRUE(result) << result.error().message();
  const auto reads_taken = reads() - reads_before - 1;  // less the INFO call's own read
  EXPECT_EQ(command_calls(server, "evalsha"), 2);
  EXPECT_EQ(command_calls(server, "rpush"), 201);
  EXPECT_LT(reads_taken, 20) << "the appends were not pipelined";
  // Each key kept its newest three, in order, and got its TTL.
  EXPECT_EQ(*kv->items("log:7"), (std::vector<std::string>{"87", "127", "167"}));
  const auto ttl = std::stoll(server.cli({"PTTL", "baton:log:7"}));
  EXPECT_GT(ttl, 50'000);
  EXPECT_LE(ttl, 60'000);
}

// Redis runs nothing else while a script runs, so a big batch is split into calls of a few hundred
// appends; a key's appends all go into one call, however many, so that they stay in order even
// when a call is refused and made again.
TEST(RedisKv, ABigBatchOfAppendsIsSplitIntoCallsButNoKeysAppends) {
  RedisServer server({.append_only = false});
  auto kv = make_redis_kv(bus_options(server).redis);
  ASSERT_TRUE(kv->append("warm", "script loaded", 0));
  ASSERT_EQ(server.cli({"CONFIG", "RESETSTAT"}), "OK\n");
  std::vector<ports::ListAppend> batch;
  for (int i = 0; i < 1000; ++i) batch.push_back({"one:" + std::to_string(i), "x"});
  for (const auto& result : kv->append_each(batch)) ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(command_calls(server, "evalsha"), 4);  // 256 + 256 + 256 + 232
  ASSERT_EQ(server.cli({"CONFIG", "RESETSTAT"}), "OK\n");
  batch.clear();
  for (int i = 0; i < 600; ++i) batch.push_back({i % 3 == 0 ? "often" : "other:" + std::to_string(i), std::to_string(i)});
  for (const auto& result : kv->append_each(batch)) ASSERT_TRUE(result) << result.error().message();
  // "often" opens the first call, which takes the other keys until it holds 256 appends and then
  // every later append to "often" too (370 in all); the other keys' 230 later ones make a second.
  EXPECT_EQ(command_calls(server, "evalsha"), 2);
  EXPECT_EQ(kv->items("other:599")->size(), 1u);
  const auto often = *kv->items("often");
  ASSERT_EQ(often.size(), 200u);
  for (std::size_t k = 0; k < often.size(); ++k) ASSERT_EQ(often[k], std::to_string(3 * k));
}

// On a cluster a script's keys must share a slot, so a batch is one call per slot: keys with one
// hash tag share it. Nothing is refused for crossing slots.
TEST(RedisKv, OnAClusterABatchOfAppendsIsOneScriptCallPerSlot) {
  RedisServer server(test::one_node_cluster_options());
  if (const auto failed = test::serve_every_slot(server)) FAIL() << *failed;
  auto kv = make_redis_kv(bus_options(server).redis);
  ASSERT_TRUE(kv->append("warm", "script loaded", 0));
  ASSERT_EQ(server.cli({"CONFIG", "RESETSTAT"}), "OK\n");
  const std::vector<ports::ListAppend> batch{{"{a}:1", "1"}, {"{b}:1", "x"}, {"{a}:2", "2"}, {"{a}:1", "3"},
                                             {"{b}:2", "y"}, {"plain", "p"}};
  for (const auto& result : kv->append_each(batch)) ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(command_calls(server, "evalsha"), 3);  // {a}, {b} and "baton:plain"
  EXPECT_EQ(*kv->items("{a}:1"), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(*kv->items("{b}:2"), (std::vector<std::string>{"y"}));
  EXPECT_EQ(*kv->items("plain"), (std::vector<std::string>{"p"}));
  EXPECT_EQ(server.cli({"INFO", "errorstats"}).find("CROSSSLOT"), std::string::npos) << server.cli({"INFO", "errorstats"});
}

// Redis checks a script's keys against the user's ACL before it runs it, and refuses the whole
// call for one key the user may not touch: the others of the batch are still appended, in order,
// and only the barred one fails, saying so. The user may not run the dangerous commands (INFO
// among them), as in docs/REDIS-KEYS.md.
TEST(RedisKv, AUserBarredFromOneKeyOfABatchStillAppendsTheOthers) {
  RedisServer server({.append_only = false});
  ASSERT_EQ(server.cli({"ACL", "SETUSER", "tenant", "on", ">pw", "resetkeys", "~baton:mine:*", "+@all", "-@dangerous"}), "OK\n");
  auto options = bus_options(server).redis;
  options.user = "tenant";
  options.password = "pw";
  auto kv = make_redis_kv(options);
  const std::vector<ports::ListAppend> batch{{"mine:a", "1"}, {"theirs:a", "x"}, {"mine:a", "2"}, {"mine:b", "3"}};
  const auto results = kv->append_each(batch);
  ASSERT_EQ(results.size(), 4u);
  for (const std::size_t i : {0u, 2u, 3u}) EXPECT_TRUE(results[i]) << i << ": " << results[i].error().message();
  ASSERT_FALSE(results[1]);
  EXPECT_EQ(results[1].error(), errc::permission_denied) << results[1].error().message();
  EXPECT_EQ(*kv->items("mine:a"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(*kv->items("mine:b"), (std::vector<std::string>{"3"}));
  EXPECT_EQ(server.cli({"EXISTS", "baton:theirs:a"}), "0\n");
}

// HELLO says whether the server is a cluster (an ACL cannot deny it). From a server without it (one
// older than Redis 6, or one that renamed it away) the adapter takes the server for a cluster: a
// call per slot is right on both kinds, only slower on a standalone server.
TEST(RedisKv, AppendsGroupedBySlotWhenTheServerWillNotSayWhatItIs) {
  RedisServer server({.append_only = false, .extra_arguments = {"--rename-command", "HELLO", ""}});
  auto kv = make_redis_kv(bus_options(server).redis);
  ASSERT_TRUE(kv->append("warm", "script loaded", 0));
  ASSERT_EQ(server.cli({"CONFIG", "RESETSTAT"}), "OK\n");
  const std::vector<ports::ListAppend> batch{{"{a}:1", "1"}, {"{b}:1", "x"}, {"{a}:2", "2"}, {"{a}:1", "3"}};
  for (const auto& result : kv->append_each(batch)) ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(command_calls(server, "evalsha"), 2);
  EXPECT_EQ(*kv->items("{a}:1"), (std::vector<std::string>{"1", "3"}));
  EXPECT_EQ(*kv->items("{b}:1"), (std::vector<std::string>{"x"}));
}

// The adapter's slot of a key is the server's (CLUSTER KEYSLOT), hash tags included.
TEST(RedisKv, KeySlotsAreTheClustersOwn) {
  RedisServer server(test::one_node_cluster_options());  // KEYSLOT needs cluster mode, not slots served
  std::vector<std::string> keys{"", "a", "foo", "{a}b", "x{}y", "{{a}}", "a{b}{c}", "baton:t:acme:trace:0193", "{phase}:phase.plan.in"};
  for (int i = 0; i < 200; ++i) keys.push_back("baton:t:tenant-" + std::to_string(i % 7) + ":trace:" + std::to_string(i * 7919));
  for (const auto& key : keys) {
    EXPECT_EQ(std::to_string(detail::key_slot(key)) + "\n", server.cli({"CLUSTER", "KEYSLOT", key})) << key;
  }
}

// The bus's scripts are sent by hash, some of them pipelined with a read: after the server forgot
// them (SCRIPT FLUSH, or a restart), retries still come back.
// An idle subscription's reader waits in XREADGROUP for its whole BLOCK time, cut short only by
// its housekeeping. It once also woke every 20 ms to move due retries behind a read, whether any
// were waiting or not: 50 turns a second away from Redis, during which a batch waited.
TEST(RedisBus, AnIdleSubscriptionReadsOnlyAsOftenAsItsBlockAndHousekeepingSay) {
  RedisServer server({.append_only = false});
  // An idle server looks at blocked reads' timeouts ten times a second; at 100 it ends each
  // read when its BLOCK says, as a busy one does.
  ASSERT_EQ(server.cli({"CONFIG", "SET", "hz", "100"}), "OK\n");
  auto options = bus_options(server);
  options.block = 250ms;
  options.reclaim_interval = 1s;
  options.reclaim_idle = 30s;  // keep-alives every 10 s
  auto bus = make_redis_bus(options);
  const std::string topic = test::unique_name("idle");
  std::atomic<int> handled{0};
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    ++handled;
    return {};
  }, durable("workers", "only", 1));
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.idle", boost::json::value(1))));
  ASSERT_TRUE(test::eventually([&] { return handled.load() == 1; }, 10s));
  const int before = command_calls(server, "xreadgroup");
  std::this_thread::sleep_for(1500ms);
  const int reads = command_calls(server, "xreadgroup") - before;
  // Six BLOCKs of 250 ms and one or two reclaims in 1.5 s: about 8. A read cut every 20 ms: 75.
  EXPECT_LE(reads, 20) << server.cli({"INFO", "commandstats"});
  EXPECT_GE(reads, 1) << "the reader stopped reading";
}

// A retry this subscription scheduled wakes the retry mover for its due time, long before the
// mover's next look at the retry set (30 s here).
TEST(RedisBus, ARetryComesBackWhenDueAndNotAtTheNextSweep) {
  RedisServer server({.append_only = false});
  auto options = bus_options(server);
  options.retry_sweep = 30s;
  auto bus = make_redis_bus(options);
  const std::string topic = test::unique_name("due");
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::time_point> tries;
  auto subscribe_options = durable("workers", "only", 1);
  subscribe_options.redelivery.base_delay = subscribe_options.redelivery.max_delay = 300ms;
  subscribe_options.redelivery.jitter = Jitter::none;
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    std::lock_guard lock(mutex);
    tries.push_back(std::chrono::steady_clock::now());
    if (tries.size() == 1) return Error{errc::unavailable, "the first try fails"};
    return {};
  }, subscribe_options);
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.due", boost::json::value(1))));
  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard lock(mutex);
    return tries.size() == 2;
  }, 15s)) << "the retry did not come back before the sweep";
  std::lock_guard lock(mutex);
  EXPECT_GE(tries[1] - tries[0], 300ms) << "the retry came back before it was due";
}

// A retry that another consumer scheduled and did not live to move comes back when due: the
// mover's look at the retry set tells it when the earliest retry there falls due.
TEST(RedisBus, ARetryLeftByAConsumerThatStoppedComesBackWhenDue) {
  RedisServer server({.append_only = false});
  auto options = bus_options(server);
  options.retry_sweep = 30s;
  auto bus = make_redis_bus(options);
  const std::string topic = test::unique_name("left");
  auto subscribe_options = durable("workers", "first", 1);
  subscribe_options.redelivery.base_delay = subscribe_options.redelivery.max_delay = 1500ms;
  subscribe_options.redelivery.jitter = Jitter::none;
  auto first = bus->subscribe(topic, [](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    return Error{errc::unavailable, "this consumer fails and stops"};
  }, subscribe_options);
  ASSERT_TRUE(first);
  ASSERT_TRUE(bus->publish(topic, make_envelope("test.left", boost::json::value(1))));
  const auto retry_set = stream_key(topic) + ":retry:workers";
  ASSERT_TRUE(test::eventually([&] { return server.cli({"ZCARD", retry_set}) == "1\n"; }, 10s));
  first->stop();
  ASSERT_EQ(server.cli({"ZCARD", retry_set}), "1\n") << "moved before its consumer stopped: the test shows nothing";

  std::atomic<int> handled{0};
  subscribe_options.consumer = "second";
  const auto started = std::chrono::steady_clock::now();
  auto second = bus->subscribe(topic, [&](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    ++handled;
    return {};
  }, subscribe_options);
  ASSERT_TRUE(second);
  EXPECT_TRUE(test::eventually([&] { return handled.load() == 1; }, 15s)) << "the retry waited for the next sweep";
  EXPECT_GT(std::chrono::steady_clock::now() - started, 500ms) << "not due yet when the second consumer started: it had to wait";
}

TEST(RedisBus, RetriesComeBackAfterTheScriptCacheIsFlushed) {
  RedisServer server({.append_only = false});
  const std::string topic = test::unique_name("flush");
  auto bus = make_redis_bus(bus_options(server));
  std::mutex mutex;
  std::map<std::string, int> attempts;
  std::set<std::string> succeeded;
  auto subscription = bus->subscribe(topic, [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    std::lock_guard lock(mutex);
    if (++attempts[e.id] == 1) return Error{errc::unavailable, "first attempt fails"};
    succeeded.insert(e.id);
    return {};
  }, durable("workers", "only", 1));
  ASSERT_TRUE(subscription);
  const auto succeeds = [&](const std::string& id) {
    return test::eventually([&] {
      std::lock_guard lock(mutex);
      return succeeded.contains(id);
    }, 10s);
  };
  auto before = make_envelope("test.flush", boost::json::value(1));
  ASSERT_TRUE(bus->publish(topic, before));
  ASSERT_TRUE(succeeds(before.id));
  server.cli({"SCRIPT", "FLUSH"});
  auto after = make_envelope("test.flush", boost::json::value(2));
  ASSERT_TRUE(bus->publish(topic, after));
  EXPECT_TRUE(succeeds(after.id)) << "a retry after SCRIPT FLUSH never came back";
}

TEST(RedisBus, WrongPasswordIsAClearErrorWithinASecond) {
  RedisServer server({.append_only = false, .extra_arguments = {"--requirepass", "right"}});
  auto options = bus_options(server);
  options.redis.password = "wrong";
  auto bus = make_redis_bus(options);
  const auto started = std::chrono::steady_clock::now();
  auto published = bus->publish("t", make_envelope("x", boost::json::value(1)));
  ASSERT_FALSE(published);
  EXPECT_EQ(published.error(), errc::auth_failed) << published.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_FALSE(bus->health().ok);
}

// The server's persistence decides what Baton's promises can keep: a server without an AOF, or
// whose AOF is not fsynced before it answers, is named as a risk by the bus and by the KV store, each
// with the setting and what of its own it loses; appendonly yes with appendfsync always is none.
TEST(RedisBusAndKv, SayWhenTheServersPersistenceCanForgetWhatItAcknowledged) {
  RedisServer without_aof({.append_only = false});
  const auto address = without_aof.url().substr(std::string("redis://").size());
  for (const auto& [port, risk] : {std::pair{"bus", make_redis_bus(bus_options(without_aof))->durability_risk()},
                                   std::pair{"kv", make_redis_kv(bus_options(without_aof).redis)->durability_risk()}}) {
    ASSERT_TRUE(risk.has_value()) << port;
    EXPECT_NE(risk->find("appendonly no"), std::string::npos) << *risk;
    EXPECT_NE(risk->find(address), std::string::npos) << *risk;
  }
  RedisServer every_second({.append_only = true, .appendfsync = "everysec"});
  const auto bus_everysec = make_redis_bus(bus_options(every_second))->durability_risk();
  ASSERT_TRUE(bus_everysec.has_value());
  EXPECT_NE(bus_everysec->find("appendfsync everysec"), std::string::npos) << *bus_everysec;
  EXPECT_NE(bus_everysec->find("messages"), std::string::npos) << *bus_everysec;
  const auto kv_everysec = make_redis_kv(bus_options(every_second).redis)->durability_risk();
  ASSERT_TRUE(kv_everysec.has_value());
  EXPECT_NE(kv_everysec->find("appendfsync everysec"), std::string::npos) << *kv_everysec;
  EXPECT_NE(kv_everysec->find("once() answers"), std::string::npos) << *kv_everysec;

  RedisServer always({.append_only = true, .appendfsync = "always"});
  EXPECT_EQ(make_redis_bus(bus_options(always))->durability_risk(), std::nullopt);
  EXPECT_EQ(make_redis_kv(bus_options(always).redis)->durability_risk(), std::nullopt);
}

}  // namespace
}  // namespace baton::adapters::redis
