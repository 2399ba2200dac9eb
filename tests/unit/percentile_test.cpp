#include <gtest/gtest.h>

#include "baton/app/percentile.hpp"

namespace baton::app {
namespace {

TEST(Percentile, NearestRankOfSortedSamples) {
  std::vector<std::int64_t> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_EQ(percentile(hundred, 0.50), 50);
  EXPECT_EQ(percentile(hundred, 0.99), 99);
  EXPECT_EQ(percentile(hundred, 0.999), 100);
  EXPECT_EQ(percentile(hundred, 1.0), 100);
  EXPECT_EQ(percentile({7}, 0.5), 7);
  EXPECT_EQ(percentile({}, 0.99), 0);
  EXPECT_EQ(percentile({1, 2}, 0.01), 1) << "the lowest rank is the first sample";
}

}  // namespace
}  // namespace baton::app
