// What only the memory bus does; the shared semantics are in the contract suite.

#include <gtest/gtest.h>

#include "baton/adapters/memory/memory_bus.hpp"
#include "support/recorder.hpp"

namespace baton::adapters::memory {
namespace {

using namespace std::chrono_literals;

TEST(MemoryBus, PromisesEverythingButSurvivingTheProcess) {
  auto bus = make_memory_bus();
  const auto capabilities = bus->capabilities();
  EXPECT_TRUE(capabilities.durable && capabilities.redelivery && capabilities.dead_letters &&
              capabilities.dedup_by_id && capabilities.ephemeral && capabilities.mirror_to_stream);
  EXPECT_FALSE(capabilities.survives_process_restart);
}

TEST(MemoryBus, SubscriptionMayOutliveTheBus) {
  auto bus = make_memory_bus();
  test::Recorder got;
  ports::SubscribeOptions options;
  options.group = "g";
  auto subscription = bus->subscribe("t", [&](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
    got.add(e);
    return {};
  }, options);
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(bus->publish("t", make_envelope("x", boost::json::value(1))));
  ASSERT_TRUE(got.wait_for_count(1));
  bus.reset();
  subscription->stop();
  EXPECT_FALSE(subscription->active());
}

TEST(MemoryBus, DurableMirrorIsRefused) {
  auto bus = make_memory_bus();
  ports::PublishOptions options;
  options.mirror_to_stream = "copy";
  auto result = bus->publish("t", make_envelope("x", boost::json::value(1)), options);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::invalid_argument);
}

TEST(MemoryBus, DeadLetterTimestampsFollowTheInjectedClock) {
  ManualClock clock;
  auto bus = make_memory_bus({.clock = &clock});
  ports::SubscribeOptions options;
  options.group = "g";
  auto subscription = bus->subscribe("t", [](const JsonEnvelope&, const ports::DeliveryInfo&) -> Result<void> {
    return permanent_failure("no");
  }, options);
  ASSERT_TRUE(subscription);
  ASSERT_TRUE(bus->publish("t", make_envelope("x", boost::json::value(1))));
  std::vector<ports::DeadLetter> letters;
  ASSERT_TRUE(test::eventually([&] {
    letters = bus->dead_letters("t").value();
    return !letters.empty();
  }));
  EXPECT_EQ(letters.front().failed_at, std::chrono::floor<std::chrono::milliseconds>(clock.now()));
}

}  // namespace
}  // namespace baton::adapters::memory
