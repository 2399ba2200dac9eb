#include <gtest/gtest.h>

#include "detail/key_slot.hpp"

namespace baton::adapters::redis::detail {
namespace {

// The Redis Cluster specification's own figures: CRC16 of "123456789" is 0x31C3, and its rules
// for which part of a key is hashed. (RedisKv.KeySlotsAreTheClustersOwn checks against a server.)
TEST(KeySlot, IsTheCrc16OfTheKeyModulo16384) {
  EXPECT_EQ(key_slot("123456789"), 0x31C3 % 16384);
}

TEST(KeySlot, HashesOnlyTheFirstNonEmptyHashTag) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));        // the first tag only
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));       // up to the first "}" after "{"
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));          // an empty tag: the whole key
  EXPECT_NE(key_slot("{unclosed"), key_slot("unclosed"));
}

}  // namespace
}  // namespace baton::adapters::redis::detail
