#pragma once
// Nearest-rank percentiles of measured samples, for the reports of `baton demo` and `baton bench`.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace baton::app {

// The p-th percentile (0 < p <= 1) of `sorted` (ascending), by nearest rank; 0 when empty.
inline double percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1]);
}

}  // namespace baton::app
