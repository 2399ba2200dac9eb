#pragma once
// Storage on the local filesystem. Every path lives under `root`: "..", absolute paths, empty
// segments and symlinks that lead out of the root are refused with errc::invalid_argument naming the
// path. Writes are atomic (a temporary file in the same folder, fsync, rename, fsync of the folder),
// so a reader sees the old blob or the new one, and a crash leaves no half-written file.

#include <filesystem>
#include <memory>

#include "baton/ports/storage.hpp"

namespace baton::adapters::fs {

struct FsStorageOptions {
  std::filesystem::path root;  // created if missing
};

Result<std::unique_ptr<ports::Storage>> make_fs_storage(FsStorageOptions options);

}  // namespace baton::adapters::fs
