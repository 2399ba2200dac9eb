#pragma once

#include <chrono>
#include <string>

namespace baton::ports {

// The answer of every port's health(): reachable or not, how long the check took, and why.
struct Health {
  bool ok = false;
  std::chrono::microseconds latency{0};  // round trip of the check itself
  std::string detail;                    // "memory", "PONG from 127.0.0.1:6390", or the failure
};

}  // namespace baton::ports
