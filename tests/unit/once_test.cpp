// The once() record format and its edge cases; the behaviour across threads and stores is in the
// KV contract suite (Contract.*.Once*), which runs against every adapter.

#include <gtest/gtest.h>

#include "baton/adapters/memory/memory_kv.hpp"
#include "baton/core/once.hpp"
#include "baton/ports/kv_store.hpp"

namespace baton {
namespace {

using namespace std::chrono_literals;

TEST(OnceRecord, ReadsWhatItWrites) {
  EXPECT_EQ(detail::parse_once_record(std::nullopt).state, detail::OnceState::absent);
  EXPECT_EQ(detail::parse_once_record(detail::running_once_record("me")).state, detail::OnceState::running);
  const auto done = detail::parse_once_record(detail::done_once_record(boost::json::value{{"files", 3}}));
  EXPECT_EQ(done.state, detail::OnceState::done);
  EXPECT_EQ(done.result.at("files"), 3);
}

TEST(OnceRecord, AnythingElseIsForeign) {
  for (const char* text : {"", "plain text", "[1]", "{\"once\":\"maybe\"}", "{\"once\":\"done\"}", "{\"x\":1}"}) {
    EXPECT_EQ(detail::parse_once_record(std::string(text)).state, detail::OnceState::foreign) << text;
  }
}

TEST(Once, EmptyKeyIsRefused) {
  auto kv = adapters::memory::make_memory_kv();
  auto result = once(*kv, "", []() -> Result<int> { return 1; });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::invalid_argument);
}

TEST(Once, ResultExpiresAfterItsTtl) {
  ManualClock clock;
  auto kv = adapters::memory::make_memory_kv({.clock = &clock});
  int runs = 0;
  auto work = [&]() -> Result<int> { return ++runs; };
  OnceOptions options;
  options.clock = &clock;
  options.result_ttl = 1min;
  ASSERT_TRUE(once(*kv, "job", work, options));
  clock.advance(30s);
  EXPECT_EQ(once(*kv, "job", work, options)->value, 1);
  clock.advance(31s);
  EXPECT_EQ(once(*kv, "job", work, options)->value, 2) << "after the TTL the result is forgotten";
}

TEST(Once, StoredResultOfAnotherTypeIsAClearError) {
  auto kv = adapters::memory::make_memory_kv();
  ASSERT_TRUE(once(*kv, "job", []() -> Result<std::string> { return std::string("text"); }));
  auto as_int = once(*kv, "job", []() -> Result<int> { return 1; });
  ASSERT_FALSE(as_int);
  EXPECT_EQ(as_int.error(), errc::decode_failed);
  EXPECT_NE(as_int.error().detail.find("once(\"job\")"), std::string::npos) << as_int.error().detail;
}

TEST(Once, WaitGivesUpWithInProgressAfterTheTimeout) {
  ManualClock clock;
  auto kv = adapters::memory::make_memory_kv({.clock = &clock});
  ASSERT_TRUE(kv->cas("job", 0, detail::running_once_record("other"), 10min));
  OnceOptions options;
  options.clock = &clock;
  options.wait_timeout = 2s;
  options.poll_interval = 100ms;
  auto result = once(*kv, "job", []() -> Result<int> { return 1; }, options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::in_progress);
  EXPECT_EQ(result.error().detail, "once(\"job\") is running in another caller (waited 2000 ms)");
}

TEST(Once, LostLeaseIsReported) {
  ManualClock clock;
  auto kv = adapters::memory::make_memory_kv({.clock = &clock});
  OnceOptions options;
  options.clock = &clock;
  options.lease_ttl = 1s;
  auto result = once(*kv, "job", [&]() -> Result<int> {
    clock.advance(2s);  // the work outlived its lease...
    EXPECT_TRUE(kv->cas("job", 0, detail::running_once_record("second"), 1min));  // ...and someone took over
    return 1;
  }, options);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->ran_here);
  EXPECT_TRUE(result->lease_lost);
}

// A store whose first lease write lands but whose reply is lost (the server restarted in between),
// as the demo's broker kill once hit: the caller must find its own lease, not leave it behind to
// block every later caller for the whole lease.
class ReplyLostOnce {
 public:
  explicit ReplyLostOnce(ports::KVStore& inner) : inner_(inner) {}
  auto get(std::string_view key) {
    if (away_for_gets_ > 0) {
      --away_for_gets_;
      return Result<std::optional<ports::VersionedValue>>(Error{errc::unavailable, "connection lost"});
    }
    return inner_.get(key);
  }
  Result<ports::Version> cas(std::string_view key, ports::Version expected, std::string_view value, std::chrono::milliseconds ttl) {
    auto written = inner_.cas(key, expected, value, ttl);
    if (!lost_one_ && expected == 0) {
      lost_one_ = true;
      away_for_gets_ = 2;  // and the store stays away for a moment
      return Error{errc::unavailable, "connection lost with the request in flight"};
    }
    return written;
  }
  Result<void> del_if(std::string_view key, ports::Version expected) { return inner_.del_if(key, expected); }

 private:
  ports::KVStore& inner_;
  bool lost_one_ = false;
  int away_for_gets_ = 0;
};

TEST(Once, ALeaseWriteWhoseReplyWasLostIsFoundAndUsed) {
  auto kv = adapters::memory::make_memory_kv();
  ReplyLostOnce store(*kv);
  int runs = 0;
  OnceOptions options;
  options.lease_ttl = 10min;  // an orphaned lease would block for this long
  auto result = once(store, "job", [&]() -> Result<int> { return ++runs; }, options);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_TRUE(result->ran_here);
  EXPECT_EQ(runs, 1);
  auto again = once(*kv, "job", [&]() -> Result<int> { return ++runs; }, options);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->ran_here) << "the result was stored under the lease found again";
  EXPECT_EQ(again->value, 1);
}

// A worker killed inside fn leaves its lease behind: a redelivery of the same message (same owner)
// takes it over at once; any other caller still waits for it.
TEST(Once, TheSameOwnerTakesOverALeaseLeftBehind) {
  ManualClock clock;
  auto kv = adapters::memory::make_memory_kv({.clock = &clock});
  ASSERT_TRUE(kv->cas("job", 0, detail::running_once_record("message-1"), 10min));  // the dead delivery's lease
  OnceOptions options;
  options.clock = &clock;
  options.wait = false;
  options.owner = "message-2";
  auto other = once(*kv, "job", []() -> Result<int> { return 1; }, options);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error(), errc::in_progress) << "another owner must not take the lease";
  options.owner = "message-1";
  auto redelivery = once(*kv, "job", []() -> Result<int> { return 7; }, options);
  ASSERT_TRUE(redelivery) << redelivery.error().message();
  EXPECT_TRUE(redelivery->ran_here);
  EXPECT_EQ(redelivery->value, 7);
  options.owner.clear();
  EXPECT_EQ(once(*kv, "job", []() -> Result<int> { return 8; }, options)->value, 7) << "the result was stored";
}

TEST(Dedup, KeysAreScopedByTenant) {
  auto kv = adapters::memory::make_memory_kv();
  auto envelope = make_envelope("x", 1, EnvelopeOptions{.tenant_id = "a"});
  auto other_tenant = envelope;
  other_tenant.tenant_id = "b";
  EXPECT_EQ(*deduplicate(*kv, envelope, 1min), Seen::first);
  EXPECT_EQ(*deduplicate(*kv, other_tenant, 1min), Seen::first);
  EXPECT_EQ(*deduplicate(*kv, envelope, 1min), Seen::duplicate);
  EXPECT_EQ(keys::dedup_key("a", "id-1"), "t:a:dedup:id-1");
}

}  // namespace
}  // namespace baton
