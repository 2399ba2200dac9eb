#pragma once
// Storage: blobs by relative path ("workspaces/<corr_id>/main.cpp").
//
// Contract: thread-safe. Paths are relative, '/'-separated, without "..", empty segments or a
// leading '/': anything else is errc::invalid_argument naming the path. `put` is atomic: a reader
// sees the old blob or the new one, never a part. `get` of a missing path is errc::not_found.

#include <chrono>
#include <cstddef>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/result.hpp"
#include "baton/ports/health.hpp"

namespace baton::ports {

// One blob to write: its path and its bytes, both borrowed for the call.
struct BlobWrite {
  std::string_view path;
  std::string_view bytes;
};

class Storage {
 public:
  virtual ~Storage() = default;
  virtual Result<void> put(std::string_view path, std::string_view bytes) = 0;
  // Puts every blob as put() does, each atomic on its own (not all of them at once), for less than
  // a put() each costs: a durable store flushes every file, then every folder once. Every path is
  // checked before anything is written; after a failure, the blobs before it may be there.
  virtual Result<void> put_all(std::span<const BlobWrite> blobs) = 0;
  virtual Result<std::string> get(std::string_view path) = 0;
  // Every path under `prefix` (a folder path, or empty for all), sorted.
  virtual Result<std::vector<std::string>> list(std::string_view prefix) = 0;
  // True when something was removed.
  virtual Result<bool> remove(std::string_view path) = 0;
  // Moves a blob or a whole folder to `to` in one atomic step: a reader sees everything at `from`
  // or everything at `to`, never a part. errc::conflict when `to` exists (nothing is replaced),
  // errc::not_found when `from` does not.
  virtual Result<void> rename(std::string_view from, std::string_view to) = 0;
  // Makes the folder `folder` holding `blobs` (paths relative to it) in one step: a reader sees
  // nothing at `folder` or all of it, and a crash leaves one or the other. errc::conflict when
  // `folder` exists (nothing is replaced, nothing of this call is left). A durable store flushes
  // the blobs and their folders once, before the folder appears.
  virtual Result<void> publish_folder(std::string_view folder, std::span<const BlobWrite> blobs) = 0;
  // Removes what writes cut short (by a crash or a kill) left behind: a store that writes under a
  // temporary name first, as a durable one does, can leave such a name, which get and list never
  // show. Only what has not changed for `unchanged_for` goes, so that a write still in progress,
  // in this process or another one sharing the store, is left alone. Returns how many it removed;
  // a stop asked for on `stop` ends the sweep early (with what it removed so far), so that a
  // process shutting down does not wait for a walk through a large store.
  virtual Result<std::size_t> sweep_leftovers(std::chrono::seconds unchanged_for, std::stop_token stop = {}) = 0;
  virtual Health health() = 0;
};

}  // namespace baton::ports
