// The KVStore contract: the semantics every adapter must give, in the order a reader would check.

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "baton/core/once.hpp"
#include "contract.hpp"
#include "registration.hpp"
#include "support/recorder.hpp"
#include "support/unique_id.hpp"

namespace baton::contract {
namespace {

using namespace std::chrono_literals;
using ports::absent_version;

class KvCase : public ::testing::Test {
 public:
  using Body = void (*)(KvCase&);
  KvCase(std::function<KvUnderTest()> factory, Body body) : factory_(std::move(factory)), body_(body) {}

  void SetUp() override {
    target_ = factory_();
    prefix_ = test::unique_name("kv") + ":";
  }
  void TestBody() override { body_(*this); }

  ports::KVStore& kv() { return *target_.kv; }
  Clock& clock() { return *target_.clock; }
  std::string key(const std::string& name) const { return prefix_ + name; }
  void advance(std::chrono::milliseconds duration) { target_.advance(duration); }

  // Lets `duration` pass in the store's time, then waits (with a deadline) until `key` is gone.
  bool expire(const std::string& key, std::chrono::milliseconds duration) {
    advance(duration);
    return test::eventually([&] {
      auto value = kv().get(key);
      return value && !value->has_value();
    }, 5s);
  }

 private:
  std::function<KvUnderTest()> factory_;
  Body body_;
  KvUnderTest target_;
  std::string prefix_;
};

void get_of_absent_key_is_empty(KvCase& t) {
  auto value = t.kv().get(t.key("absent"));
  ASSERT_TRUE(value) << value.error().message();
  EXPECT_FALSE(value->has_value());
}

void set_then_get_returns_value_and_version(KvCase& t) {
  auto version = t.kv().set(t.key("a"), "hello");
  ASSERT_TRUE(version) << version.error().message();
  EXPECT_NE(*version, absent_version);
  auto value = t.kv().get(t.key("a"));
  ASSERT_TRUE(value && value->has_value());
  EXPECT_EQ((*value)->value, "hello");
  EXPECT_EQ((*value)->version, *version);
}

void values_are_bytes(KvCase& t) {
  const std::string bytes("a\0b\r\n\xff", 6);
  ASSERT_TRUE(t.kv().set(t.key("bytes"), bytes));
  auto value = t.kv().get(t.key("bytes"));
  ASSERT_TRUE(value && value->has_value());
  EXPECT_EQ((*value)->value, bytes);
}

void every_write_changes_the_version(KvCase& t) {
  const auto first = t.kv().set(t.key("v"), "1");
  const auto second = t.kv().set(t.key("v"), "2");
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
  ASSERT_TRUE(t.kv().del(t.key("v")));
  const auto third = t.kv().set(t.key("v"), "3");
  ASSERT_TRUE(third);
  EXPECT_NE(*third, *first) << "a version must never come back for the same key (ABA)";
  EXPECT_NE(*third, *second) << "a version must never come back for the same key (ABA)";
}

void del_removes_and_says_whether_it_existed(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("d"), "x"));
  auto removed = t.kv().del(t.key("d"));
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  auto again = t.kv().del(t.key("d"));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  auto value = t.kv().get(t.key("d"));
  ASSERT_TRUE(value);
  EXPECT_FALSE(value->has_value());
}

void ttl_expiry_removes_the_key(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("ttl"), "soon gone", 200ms));
  ASSERT_TRUE(t.kv().set(t.key("kept"), "stays"));
  auto before = t.kv().get(t.key("ttl"));
  ASSERT_TRUE(before && before->has_value()) << "expired too early";
  EXPECT_TRUE(t.expire(t.key("ttl"), 250ms)) << "the key outlived its TTL";
  auto kept = t.kv().get(t.key("kept"));
  ASSERT_TRUE(kept && kept->has_value()) << "a key without TTL expired";
}

void a_write_without_ttl_clears_an_earlier_ttl(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("k"), "v", 200ms));
  ASSERT_TRUE(t.kv().set(t.key("k"), "v2"));
  ASSERT_TRUE(t.kv().set(t.key("marker"), "m", 200ms));
  EXPECT_TRUE(t.expire(t.key("marker"), 250ms));
  auto value = t.kv().get(t.key("k"));
  ASSERT_TRUE(value && value->has_value());
  EXPECT_EQ((*value)->value, "v2");
}

void incr_counts_from_zero(KvCase& t) {
  auto first = t.kv().incr(t.key("n"));
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, 1);
  auto next = t.kv().incr(t.key("n"), 41);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 42);
  auto down = t.kv().incr(t.key("n"), -50);
  ASSERT_TRUE(down);
  EXPECT_EQ(*down, -8);
  auto value = t.kv().get(t.key("n"));
  ASSERT_TRUE(value && value->has_value());
  EXPECT_EQ((*value)->value, "-8");
}

void incr_is_exact_under_8_threads(KvCase& t) {
  constexpr int threads = 8;
  constexpr int per_thread = 500;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      for (int n = 0; n < per_thread; ++n) {
        if (!t.kv().incr(t.key("counter"))) ++failures;
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(failures.load(), 0);
  auto value = t.kv().get(t.key("counter"));
  ASSERT_TRUE(value && value->has_value());
  EXPECT_EQ((*value)->value, std::to_string(threads * per_thread));
}

void incr_of_text_is_wrong_type(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("text"), "not a number"));
  auto result = t.kv().incr(t.key("text"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::wrong_type) << result.error().message();
  auto value = t.kv().get(t.key("text"));
  EXPECT_EQ((*value)->value, "not a number");
}

void incr_overflow_is_refused(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("big"), "9223372036854775807"));
  auto result = t.kv().incr(t.key("big"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::invalid_argument) << result.error().message();
  EXPECT_EQ((*t.kv().get(t.key("big")))->value, "9223372036854775807");
}

void cas_creates_only_when_absent(KvCase& t) {
  auto created = t.kv().cas(t.key("c"), absent_version, "first");
  ASSERT_TRUE(created) << created.error().message();
  auto again = t.kv().cas(t.key("c"), absent_version, "second");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::conflict);
  EXPECT_EQ((*t.kv().get(t.key("c")))->value, "first");
}

void cas_conflict_writes_nothing(KvCase& t) {
  auto v1 = t.kv().set(t.key("c"), "one");
  ASSERT_TRUE(v1);
  auto v2 = t.kv().cas(t.key("c"), *v1, "two");
  ASSERT_TRUE(v2) << v2.error().message();
  auto stale = t.kv().cas(t.key("c"), *v1, "three");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error(), errc::conflict) << stale.error().message();
  auto value = t.kv().get(t.key("c"));
  EXPECT_EQ((*value)->value, "two");
  EXPECT_EQ((*value)->version, *v2);
}

void cas_on_absent_key_with_a_version_conflicts(KvCase& t) {
  auto result = t.kv().cas(t.key("never"), 12345, "x");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::conflict);
}

void cas_exactly_one_winner_under_8_threads(KvCase& t) {
  auto base = t.kv().set(t.key("race"), "start");
  ASSERT_TRUE(base);
  std::atomic<int> winners{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 8; ++i) {
    workers.emplace_back([&, i] {
      auto result = t.kv().cas(t.key("race"), *base, "winner " + std::to_string(i));
      if (result) ++winners;
      else if (result.error() == errc::conflict) ++conflicts;
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
}

void del_if_checks_the_version(KvCase& t) {
  auto v1 = t.kv().set(t.key("lease"), "mine");
  ASSERT_TRUE(v1);
  auto v2 = t.kv().set(t.key("lease"), "theirs");
  ASSERT_TRUE(v2);
  auto wrong = t.kv().del_if(t.key("lease"), *v1);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), errc::conflict);
  EXPECT_TRUE(t.kv().del_if(t.key("lease"), *v2));
  auto gone = t.kv().get(t.key("lease"));
  EXPECT_FALSE(gone->has_value());
  auto absent = t.kv().del_if(t.key("lease"), *v2);
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error(), errc::conflict);
}

void bad_input_is_invalid_argument(KvCase& t) {
  auto empty = t.kv().set("", "x");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error(), errc::invalid_argument);
  auto negative = t.kv().set(t.key("neg"), "x", std::chrono::milliseconds{-5});
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.error(), errc::invalid_argument);
}

void health_is_ok(KvCase& t) {
  const auto health = t.kv().health();
  EXPECT_TRUE(health.ok) << health.detail;
}

using Items = std::vector<std::string>;

void append_adds_in_order_and_items_reads_them_back(KvCase& t) {
  auto none = t.kv().items(t.key("log"));
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_TRUE(none->empty());
  const std::string bytes("x\0y\r\n\xff", 6);
  for (const std::string item : {"first", "second", ""}) ASSERT_TRUE(t.kv().append(t.key("log"), item, 0));
  ASSERT_TRUE(t.kv().append(t.key("log"), bytes, 0));
  auto items = t.kv().items(t.key("log"));
  ASSERT_TRUE(items) << items.error().message();
  EXPECT_EQ(*items, (Items{"first", "second", "", bytes}));
}

void append_keeps_only_the_newest_items(KvCase& t) {
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(t.kv().append(t.key("capped"), std::to_string(i), 3));
  auto items = t.kv().items(t.key("capped"));
  ASSERT_TRUE(items) << items.error().message();
  EXPECT_EQ(*items, (Items{"3", "4", "5"}));
}

void append_with_ttl_expires_and_without_keeps_the_ttl(KvCase& t) {
  ASSERT_TRUE(t.kv().append(t.key("brief"), "a", 0, 200ms));
  ASSERT_TRUE(t.kv().append(t.key("brief"), "b", 0));  // no TTL: the list keeps the one it has
  ASSERT_TRUE(t.kv().append(t.key("kept"), "stays", 0));
  auto before = t.kv().items(t.key("brief"));
  ASSERT_TRUE(before);
  EXPECT_EQ(*before, (Items{"a", "b"})) << "expired too early";
  t.advance(250ms);
  EXPECT_TRUE(test::eventually([&] {
    auto items = t.kv().items(t.key("brief"));
    return items && items->empty();
  }, 5s)) << "the list outlived its TTL";
  auto kept = t.kv().items(t.key("kept"));
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, (Items{"stays"})) << "a list without TTL expired";
}

void lists_and_values_do_not_mix(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("value"), "text", 60s));
  auto appended = t.kv().append(t.key("value"), "item", 0, 200ms);
  ASSERT_FALSE(appended);
  EXPECT_EQ(appended.error(), errc::wrong_type) << appended.error().message();
  EXPECT_NE(appended.error().message().find(t.key("value")), std::string::npos) << appended.error().message();
  auto listed = t.kv().items(t.key("value"));
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error(), errc::wrong_type) << listed.error().message();
  // Let the refused append's TTL pass, in the store's time and (for a real server) in real time.
  t.advance(250ms);
  std::this_thread::sleep_for(250ms);
  auto value = t.kv().get(t.key("value"));
  ASSERT_TRUE(value && value->has_value()) << "a refused append changed the value or its TTL";
  EXPECT_EQ((*value)->value, "text");

  ASSERT_TRUE(t.kv().append(t.key("list"), "item", 0));
  auto got = t.kv().get(t.key("list"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), errc::wrong_type) << got.error().message();
  EXPECT_NE(got.error().message().find("list"), std::string::npos) << got.error().message();
  auto counted = t.kv().incr(t.key("list"));
  ASSERT_FALSE(counted);
  EXPECT_EQ(counted.error(), errc::wrong_type) << counted.error().message();
  auto swapped = t.kv().cas(t.key("list"), absent_version, "v");
  ASSERT_FALSE(swapped);
  EXPECT_EQ(swapped.error(), errc::wrong_type) << swapped.error().message();
  auto removed_if = t.kv().del_if(t.key("list"), 1);
  ASSERT_FALSE(removed_if);
  EXPECT_EQ(removed_if.error(), errc::wrong_type) << removed_if.error().message();
  auto still = t.kv().items(t.key("list"));
  ASSERT_TRUE(still);
  EXPECT_EQ(*still, (Items{"item"}));

  ASSERT_TRUE(t.kv().set(t.key("list"), "now a value"));
  auto replaced = t.kv().get(t.key("list"));
  ASSERT_TRUE(replaced && replaced->has_value()) << (replaced ? "" : replaced.error().message());
  EXPECT_EQ((*replaced)->value, "now a value");
  ASSERT_TRUE(t.kv().append(t.key("other"), "item", 0));
  auto removed = t.kv().del(t.key("other"));
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  auto gone = t.kv().items(t.key("other"));
  ASSERT_TRUE(gone);
  EXPECT_TRUE(gone->empty());
}

void append_each_appends_in_order_and_fails_only_the_bad_ones(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("value"), "text"));
  const std::vector<ports::ListAppend> batch{
      {t.key("a"), "1", 0, ports::no_ttl},
      {t.key("b"), "x", 0, ports::no_ttl},
      {t.key("value"), "refused", 0, ports::no_ttl},  // a value, not a list
      {"", "refused", 0, ports::no_ttl},              // no key
      {t.key("a"), "2", 0, ports::no_ttl},
      {t.key("capped"), "1", 2, ports::no_ttl},
      {t.key("capped"), "2", 2, ports::no_ttl},
      {t.key("capped"), "3", 2, ports::no_ttl},
      {t.key("brief"), "gone", 0, 200ms},
      {t.key("a"), "3", 0, ports::no_ttl},
  };
  const auto results = t.kv().append_each(batch);
  ASSERT_EQ(results.size(), batch.size());
  for (const std::size_t i : {0u, 1u, 4u, 5u, 6u, 7u, 8u, 9u}) EXPECT_TRUE(results[i]) << i << ": " << results[i].error().message();
  ASSERT_FALSE(results[2]);
  EXPECT_EQ(results[2].error(), errc::wrong_type) << results[2].error().message();
  EXPECT_NE(results[2].error().message().find(t.key("value")), std::string::npos) << results[2].error().message();
  ASSERT_FALSE(results[3]);
  EXPECT_EQ(results[3].error(), errc::invalid_argument) << results[3].error().message();

  EXPECT_EQ(*t.kv().items(t.key("a")), (Items{"1", "2", "3"}));
  EXPECT_EQ(*t.kv().items(t.key("b")), (Items{"x"}));
  EXPECT_EQ(*t.kv().items(t.key("capped")), (Items{"2", "3"}));
  EXPECT_EQ((*t.kv().get(t.key("value")))->value, "text");
  EXPECT_EQ(*t.kv().items(t.key("brief")), (Items{"gone"}));
  t.advance(250ms);
  EXPECT_TRUE(test::eventually([&] {
    auto items = t.kv().items(t.key("brief"));
    return items && items->empty();
  }, 5s)) << "a batched append ignored its TTL";
  EXPECT_TRUE(t.kv().append_each({}).empty());
}

void append_loses_nothing_under_8_threads(KvCase& t) {
  constexpr int threads = 8;
  constexpr int per_thread = 50;
  std::vector<std::thread> writers;
  for (int w = 0; w < threads; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < per_thread; ++i) {
        auto appended = t.kv().append(t.key("shared"), std::to_string(w) + ":" + std::to_string(i), 0);
        EXPECT_TRUE(appended) << appended.error().message();
      }
    });
  }
  for (auto& writer : writers) writer.join();
  auto items = t.kv().items(t.key("shared"));
  ASSERT_TRUE(items) << items.error().message();
  ASSERT_EQ(items->size(), static_cast<std::size_t>(threads * per_thread));
  EXPECT_EQ(std::set<std::string>(items->begin(), items->end()).size(), items->size());
  // Each writer's own items stay in the order it wrote them.
  std::vector<int> next(threads, 0);
  for (const auto& item : *items) {
    const auto colon = item.find(':');
    const int w = std::stoi(item.substr(0, colon));
    EXPECT_EQ(std::stoi(item.substr(colon + 1)), next[w]++) << item;
  }
}

void dedup_says_first_once_under_8_threads(KvCase& t) {
  auto envelope = make_envelope("test.dedup", boost::json::value(1),
                                EnvelopeOptions{.tenant_id = "tenant-" + std::to_string(::getpid())});
  std::atomic<int> first{0};
  std::atomic<int> duplicate{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 8; ++i) {
    workers.emplace_back([&] {
      auto seen = deduplicate(t.kv(), envelope, 60s);
      if (seen && *seen == Seen::first) ++first;
      if (seen && *seen == Seen::duplicate) ++duplicate;
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(first.load(), 1);
  EXPECT_EQ(duplicate.load(), 7);
  auto retried = deduplicate(t.kv(), retry_envelope(envelope), 60s);
  ASSERT_TRUE(retried);
  EXPECT_EQ(*retried, Seen::duplicate) << "a redelivery keeps the id, so it is a duplicate";
}

OnceOptions once_options(KvCase& t) {
  OnceOptions options;
  options.clock = &t.clock();
  options.poll_interval = 5ms;
  options.wait_timeout = 10s;
  return options;
}

void once_runs_exactly_once_under_8_threads(KvCase& t) {
  std::atomic<int> runs{0};
  std::vector<int> answers(8, 0);
  std::vector<std::thread> workers;
  auto options = once_options(t);
  // Waiters poll in real time here: the work takes real time, and a test clock that moves with every
  // poll would let the lease run out under it.
  options.clock = &SystemClock::instance();
  for (int i = 0; i < 8; ++i) {
    workers.emplace_back([&, i] {
      auto outcome = once(t.kv(), t.key("once"), [&]() -> Result<int> {
        ++runs;
        std::this_thread::sleep_for(20ms);  // the work itself: long enough for the others to find it running
        return 42;
      }, options);
      answers[i] = outcome ? outcome->value : -1;
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(runs.load(), 1);
  for (int answer : answers) EXPECT_EQ(answer, 42);
}

void once_serves_the_stored_result_later(KvCase& t) {
  int runs = 0;
  auto work = [&]() -> Result<std::string> {
    ++runs;
    return std::string("result of run ") + std::to_string(runs);
  };
  auto first = once(t.kv(), t.key("once"), work, once_options(t));
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(first->ran_here);
  auto second = once(t.kv(), t.key("once"), work, once_options(t));
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_FALSE(second->ran_here);
  EXPECT_EQ(second->value, "result of run 1");
  EXPECT_EQ(runs, 1);
}

void once_failure_lets_the_next_caller_run(KvCase& t) {
  auto failed = once(t.kv(), t.key("once"), []() -> Result<int> { return retryable_failure("flaky"); }, once_options(t));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error(), errc::retryable_failure);
  auto next = once(t.kv(), t.key("once"), []() -> Result<int> { return 7; }, once_options(t));
  ASSERT_TRUE(next) << next.error().message();
  EXPECT_TRUE(next->ran_here);
  EXPECT_EQ(next->value, 7);
}

void once_without_wait_says_in_progress(KvCase& t) {
  // A runner holds the lease (written as once() writes it).
  ASSERT_TRUE(t.kv().cas(t.key("once"), absent_version, baton::detail::running_once_record("other"), 60s));
  auto options = once_options(t);
  options.wait = false;
  bool ran = false;
  auto result = once(t.kv(), t.key("once"), [&]() -> Result<int> { ran = true; return 1; }, options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::in_progress) << result.error().message();
  EXPECT_FALSE(ran);
}

void once_takes_over_when_the_runner_died(KvCase& t) {
  // A runner took the lease and died: nobody will ever store its result.
  ASSERT_TRUE(t.kv().cas(t.key("once"), absent_version, baton::detail::running_once_record("dead"), 300ms));
  std::atomic<bool> finished{false};
  std::thread waiter([&] {
    auto result = once(t.kv(), t.key("once"), []() -> Result<int> { return 99; }, once_options(t));
    EXPECT_TRUE(result) << result.error().message();
    if (result) {
      EXPECT_TRUE(result->ran_here);
      EXPECT_EQ(result->value, 99);
    }
    finished = true;
  });
  t.advance(350ms);
  waiter.join();
  EXPECT_TRUE(finished.load());
}

void once_refuses_a_key_it_did_not_write(KvCase& t) {
  ASSERT_TRUE(t.kv().set(t.key("once"), "somebody else's value"));
  auto result = once(t.kv(), t.key("once"), []() -> Result<int> { return 1; }, once_options(t));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::wrong_type) << result.error().message();
}

constexpr detail::NamedCase<KvCase> kv_cases[] = {
    {"KvGetOfAbsentKeyIsEmpty", get_of_absent_key_is_empty},
    {"KvSetThenGetReturnsValueAndVersion", set_then_get_returns_value_and_version},
    {"KvValuesAreBytes", values_are_bytes},
    {"KvEveryWriteChangesTheVersion", every_write_changes_the_version},
    {"KvDelRemovesAndSaysWhetherItExisted", del_removes_and_says_whether_it_existed},
    {"KvTtlExpiryRemovesTheKey", ttl_expiry_removes_the_key},
    {"KvWriteWithoutTtlClearsEarlierTtl", a_write_without_ttl_clears_an_earlier_ttl},
    {"KvIncrCountsFromZero", incr_counts_from_zero},
    {"KvIncrIsExactUnder8Threads", incr_is_exact_under_8_threads},
    {"KvIncrOfTextIsWrongType", incr_of_text_is_wrong_type},
    {"KvIncrOverflowIsRefused", incr_overflow_is_refused},
    {"KvCasCreatesOnlyWhenAbsent", cas_creates_only_when_absent},
    {"KvCasConflictWritesNothing", cas_conflict_writes_nothing},
    {"KvCasOnAbsentKeyWithVersionConflicts", cas_on_absent_key_with_a_version_conflicts},
    {"KvCasHasExactlyOneWinnerUnder8Threads", cas_exactly_one_winner_under_8_threads},
    {"KvDelIfChecksTheVersion", del_if_checks_the_version},
    {"KvBadInputIsInvalidArgument", bad_input_is_invalid_argument},
    {"KvHealthIsOk", health_is_ok},
    {"KvAppendAddsInOrderAndItemsReadsThemBack", append_adds_in_order_and_items_reads_them_back},
    {"KvAppendKeepsOnlyTheNewestItems", append_keeps_only_the_newest_items},
    {"KvAppendWithTtlExpiresAndWithoutKeepsTheTtl", append_with_ttl_expires_and_without_keeps_the_ttl},
    {"KvListsAndValuesDoNotMix", lists_and_values_do_not_mix},
    {"KvAppendLosesNothingUnder8Threads", append_loses_nothing_under_8_threads},
    {"KvAppendEachAppendsInOrderAndFailsOnlyTheBadOnes", append_each_appends_in_order_and_fails_only_the_bad_ones},
    {"DedupSaysFirstOnceUnder8Threads", dedup_says_first_once_under_8_threads},
    {"OnceRunsExactlyOnceUnder8Threads", once_runs_exactly_once_under_8_threads},
    {"OnceServesTheStoredResultLater", once_serves_the_stored_result_later},
    {"OnceFailureLetsTheNextCallerRun", once_failure_lets_the_next_caller_run},
    {"OnceWithoutWaitSaysInProgress", once_without_wait_says_in_progress},
    {"OnceTakesOverWhenTheRunnerDied", once_takes_over_when_the_runner_died},
    {"OnceRefusesAKeyItDidNotWrite", once_refuses_a_key_it_did_not_write},
};

}  // namespace

void register_kv_contract(const std::string& adapter, std::function<KvUnderTest()> factory) {
  detail::register_cases(adapter, kv_cases, factory);
}

}  // namespace baton::contract
