#include "baton/orchestrator/deadline_watch.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "support/recorder.hpp"

namespace baton::orchestrator {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// The watch thread sleeps until the earliest deadline it knows; one registered later that falls
// sooner must still wake it, or that handler would run on until the later deadline.
TEST(DeadlineWatch, ADeadlineSoonerThanThoseWaitingStopsItsSourceAtItsOwnTime) {
  DeadlineWatch watch;
  std::stop_source late;
  std::stop_source soon;
  const auto late_registration = watch.watch(steady_clock::now() + seconds{60}, late);
  // Time for the thread to fall asleep toward the late deadline (there is no hook to see it has).
  std::this_thread::sleep_for(milliseconds{50});
  watch.watch(steady_clock::now() + milliseconds{20}, soon);
  EXPECT_TRUE(test::eventually([&] { return soon.stop_requested(); }, seconds{10}));
  EXPECT_FALSE(late.stop_requested());
  watch.cancel(late_registration);
}

TEST(DeadlineWatch, DeadlinesAfterTheEarliestEachStopTheirOwnSourceInTurn) {
  DeadlineWatch watch;
  std::vector<std::stop_source> sources(5);
  const auto start = steady_clock::now();
  for (std::size_t i = 0; i < sources.size(); ++i) watch.watch(start + milliseconds{10 * (i + 1)}, sources[i]);
  EXPECT_TRUE(test::eventually([&] { return sources.back().stop_requested(); }, seconds{10}));
  for (const auto& source : sources) EXPECT_TRUE(source.stop_requested());
}

TEST(DeadlineWatch, ACancelledDeadlineNeverStopsItsSource) {
  DeadlineWatch watch;
  std::stop_source cancelled;
  std::stop_source kept;
  const auto start = steady_clock::now();
  const auto registration = watch.watch(start + milliseconds{20}, cancelled);
  watch.watch(start + milliseconds{60}, kept);
  watch.cancel(registration);
  EXPECT_TRUE(test::eventually([&] { return kept.stop_requested(); }, seconds{10}));
  EXPECT_FALSE(cancelled.stop_requested());
}

// After the only deadline is cancelled, the thread still sleeps toward it; a new one must not be
// lost behind that sleep.
TEST(DeadlineWatch, ADeadlineAfterEveryOtherWasCancelledStillStopsItsSource) {
  DeadlineWatch watch;
  std::stop_source cancelled;
  std::stop_source next;
  watch.cancel(watch.watch(steady_clock::now() + seconds{60}, cancelled));
  std::this_thread::sleep_for(milliseconds{50});
  watch.watch(steady_clock::now() + milliseconds{10}, next);
  EXPECT_TRUE(test::eventually([&] { return next.stop_requested(); }, seconds{10}));
  EXPECT_FALSE(cancelled.stop_requested());
}

}  // namespace
}  // namespace baton::orchestrator
