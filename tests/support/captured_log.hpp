#pragma once
// Captures the process's log lines while it lives (log::log_to_callback), for tests that check what
// was said; the log goes back to stderr when it ends.

#include <algorithm>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/log.hpp"

namespace baton::test {

class CapturedLog {
 public:
  CapturedLog() {
    log::log_to_callback([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
  }
  ~CapturedLog() { log::log_to_stderr(); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  // Whether one line holds every part.
  bool has_line_with(std::initializer_list<std::string_view> parts) const {
    std::lock_guard lock(mutex_);
    return std::any_of(lines_.begin(), lines_.end(), [&](const std::string& line) {
      return std::all_of(parts.begin(), parts.end(), [&](std::string_view part) { return line.find(part) != std::string::npos; });
    });
  }

  // Every line so far, each ended by a newline.
  std::string text() const {
    std::lock_guard lock(mutex_);
    std::string all;
    for (const auto& line : lines_) all += line + "\n";
    return all;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace baton::test
