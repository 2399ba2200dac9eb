#include <gtest/gtest.h>

#include "baton/core/time.hpp"

namespace baton {
namespace {

using namespace std::chrono;

TEST(Rfc3339, FormatsUtcWithMilliseconds) {
  const Timestamp ts = sys_days{year{2026} / 11 / 27} + hours{20} + minutes{37} + seconds{34} + milliseconds{5};
  EXPECT_EQ(format_rfc3339(ts), "2026-11-27T20:37:34.005Z");
}

TEST(Rfc3339, PadsEveryFieldAndSpellsOutYearsPastFourDigits) {
  EXPECT_EQ(format_rfc3339(sys_days{year{1} / 2 / 3} + hours{4} + minutes{5} + seconds{6} + milliseconds{78}),
            "0001-02-03T04:05:06.078Z");
  EXPECT_EQ(format_rfc3339(sys_days{year{1999} / 12 / 31} + hours{23} + minutes{59} + seconds{59} + milliseconds{999}),
            "1999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(sys_days{year{12026} / 1 / 1}), "12026-01-01T00:00:00.000Z");
}

TEST(Rfc3339, RoundTrips) {
  const auto now = floor<milliseconds>(system_clock::now());
  EXPECT_EQ(parse_rfc3339(format_rfc3339(now)), now);
}

TEST(Rfc3339, AcceptsOffsetsAndOtherPrecisions) {
  const auto utc = parse_rfc3339("2026-11-27T20:37:34.123Z");
  ASSERT_TRUE(utc);
  EXPECT_EQ(parse_rfc3339("2026-11-27T21:37:34.123+01:00"), utc);
  EXPECT_EQ(parse_rfc3339("2026-11-27T20:37:34.123456Z"), utc);
  EXPECT_EQ(parse_rfc3339("2026-11-27T20:37:34.1Z"), *utc - milliseconds{23});
  EXPECT_EQ(parse_rfc3339("2026-11-27T20:37:34Z"), *utc - milliseconds{123});
}

TEST(Rfc3339, RefusesWhatIsNotOne) {
  for (const char* text : {"", "2026-11-27", "2026-11-27 20:37:34Z", "2026-11-27T20:37:34", "2026-13-01T00:00:00Z",
                           "2026-02-29T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T20:37:34.Z",
                           "2026-11-27T20:37:34Zjunk", "2026-11-27T20:37:34+0100"}) {
    EXPECT_FALSE(parse_rfc3339(text)) << text;
  }
  EXPECT_TRUE(parse_rfc3339("2028-02-29T00:00:00Z"));
}

}  // namespace
}  // namespace baton
