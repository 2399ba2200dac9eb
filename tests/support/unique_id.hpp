#pragma once
// A name no other test (or earlier run of this one) uses, so tests can share one server, run in
// parallel and re-run without flushing anything.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

namespace baton::test {

// "<prefix>.<test name>.<pid>-<time>-<n>": valid as a topic, group or key segment.
inline std::string unique_name(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  std::string test = "none";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) test = info->name();
  for (auto& c : test) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!keep) c = '_';
  }
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return prefix + "." + test + "." + std::to_string(::getpid()) + "-" + std::to_string(now % 1'000'000'007) + "-" +
         std::to_string(counter++);
}

}  // namespace baton::test
