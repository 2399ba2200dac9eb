#include <gtest/gtest.h>

#include <set>

#include "baton/core/uuid.hpp"

namespace baton {
namespace {

TEST(UuidV7, HasVersionAndVariantBits) {
  const auto id = new_uuid_v7();
  ASSERT_TRUE(is_uuid_text(id)) << id;
  EXPECT_EQ(id[14], '7');
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
}

TEST(UuidV7, CarriesTheClockMilliseconds) {
  ManualClock clock(Clock::WallTime{std::chrono::milliseconds{0x0123456789AB}});
  const auto id = new_uuid_v7(clock);
  // The id may be ahead of this clock if another test made an id later in real time: then the
  // generator keeps counting from its last millisecond instead of stepping back.
  const auto prefix = id.substr(0, 8) + id.substr(9, 4);
  EXPECT_GE(prefix, std::string("0123456789ab")) << id;
}

TEST(UuidV7, SortsInCreationOrderAndNeverRepeats) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20'000; ++i) ids.push_back(new_uuid_v7());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
}

TEST(UuidV7, RecognisesTextForm) {
  EXPECT_TRUE(is_uuid_text("0192f3a4-5b6c-7d8e-9f01-23456789abcd"));
  EXPECT_FALSE(is_uuid_text("0192f3a4-5b6c-7d8e-9f01-23456789abc"));
  EXPECT_FALSE(is_uuid_text("0192f3a4x5b6c-7d8e-9f01-23456789abcd"));
  EXPECT_FALSE(is_uuid_text("0192f3a4-5b6c-7d8e-9f01-23456789abcg"));
  EXPECT_TRUE(is_uuid_text("0192F3A4-5B6C-7D8E-9F01-23456789ABCD"));
  EXPECT_FALSE(is_uuid_text("0192f3a4-5b6c-7d8e-9f01-23456789ab-d"));  // a dash where a digit goes
  // Every byte in every digit position: only the 22 hex characters pass.
  std::string id = "0192f3a4-5b6c-7d8e-9f01-23456789abcd";
  for (const std::size_t at : {0u, 12u, 35u}) {
    int passed = 0;
    for (int byte = 0; byte < 256; ++byte) {
      std::string changed = id;
      changed[at] = static_cast<char>(byte);
      passed += is_uuid_text(changed) ? 1 : 0;
    }
    EXPECT_EQ(passed, 22) << "position " << at;
  }
}

}  // namespace
}  // namespace baton
