#pragma once
// Storage: blobs by relative path ("workspaces/<corr_id>/main.cpp").
//
// Contract: thread-safe. Paths are relative, '/'-separated, without "..", empty segments or a
// leading '/': anything else is errc::invalid_argument naming the path. `put` is atomic: a reader
// sees the old blob or the new one, never a part. `get` of a missing path is errc::not_found.

#include <string>
#include <string_view>
#include <vector>

#include "baton/core/result.hpp"
#include "baton/ports/health.hpp"

namespace baton::ports {

class Storage {
 public:
  virtual ~Storage() = default;
  virtual Result<void> put(std::string_view path, std::string_view bytes) = 0;
  virtual Result<std::string> get(std::string_view path) = 0;
  // Every path under `prefix` (a folder path, or empty for all), sorted.
  virtual Result<std::vector<std::string>> list(std::string_view prefix) = 0;
  // True when something was removed.
  virtual Result<bool> remove(std::string_view path) = 0;
  // Moves a blob or a whole folder to `to` in one atomic step: a reader sees everything at `from`
  // or everything at `to`, never a part. errc::conflict when `to` exists (nothing is replaced),
  // errc::not_found when `from` does not. This is how a folder is published all at once.
  virtual Result<void> rename(std::string_view from, std::string_view to) = 0;
  virtual Health health() = 0;
};

}  // namespace baton::ports
