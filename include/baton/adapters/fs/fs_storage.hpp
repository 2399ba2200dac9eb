#pragma once
// Storage on the local filesystem. Every path lives under `root`: "..", absolute paths, empty
// segments and symlinks that lead out of the root are refused with errc::invalid_argument naming the
// path. The kernel checks that as it opens each path (openat2 with RESOLVE_BENEATH, Linux 5.6 or
// later; make_fs_storage says so when the kernel refuses it), so a symlink swapped in meanwhile
// cannot lead out either. Writes are atomic (a temporary file in the same folder, fsync, rename,
// fsync of the folder), so a reader sees the old blob or the new one, and a crash leaves no
// half-written file; folders a write creates are flushed into their parents too. A put over a
// symlink replaces the link. list() names a symlink to a file as a file and walks no symlinked folder.

#include <filesystem>
#include <memory>

#include "baton/ports/storage.hpp"

namespace baton::adapters::fs {

struct FsStorageOptions {
  std::filesystem::path root;  // created if missing; if removed while running, made again by the next put
};

Result<std::unique_ptr<ports::Storage>> make_fs_storage(FsStorageOptions options);

}  // namespace baton::adapters::fs
