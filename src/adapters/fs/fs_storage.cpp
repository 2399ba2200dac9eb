#include "baton/adapters/fs/fs_storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

namespace baton::adapters::fs {
namespace {

namespace stdfs = std::filesystem;

Error io_error(const std::string& what, const std::string& path, int error_number) {
  const auto code = std::error_code(error_number, std::generic_category());
  return {is_retryable(code) ? errc::unavailable : errc::invalid_argument, what + " " + path + ": " + code.message()};
}

// Checks the shape of a relative path; the filesystem checks come after.
std::optional<Error> check_shape(std::string_view path, bool allow_empty) {
  const auto bad = [&](const std::string& why) {
    return Error{errc::invalid_argument, "storage path \"" + std::string(path) + "\": " + why};
  };
  if (path.empty()) return allow_empty ? std::nullopt : std::optional<Error>(bad("must not be empty"));
  if (path.front() == '/') return bad("must be relative (no leading '/')");
  if (path.find('\0') != std::string_view::npos) return bad("holds a NUL byte");
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    const auto segment = path.substr(start, end - start);
    if (segment.empty() && !(allow_empty && end == path.size())) return bad("has an empty segment");
    if (segment == "." || segment == "..") return bad("may not hold \".\" or \"..\"");
    start = end + 1;
  }
  return std::nullopt;
}

bool fsync_path(const stdfs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

class FsStorage final : public ports::Storage {
 public:
  explicit FsStorage(stdfs::path root) : root_(std::move(root)) {}

  Result<void> put(std::string_view path, std::string_view bytes) override {
    auto target = resolve(path, false);
    if (!target) return std::move(target).error();
    std::error_code error;
    stdfs::create_directories(target->parent_path(), error);
    if (error) return io_error("cannot create the folder of", std::string(path), error.value());
    // The folders just made must not lead out of the root either (a symlink planted meanwhile).
    if (auto inside = resolve(path, false); !inside) return std::move(inside).error();

    std::string temporary_name = ".";  // built step by step: GCC 12 warns falsely (-Wrestrict) on "." + name
    temporary_name += target->filename().string();
    temporary_name += ".tmp-";
    temporary_name += random_suffix();
    const auto temporary = target->parent_path() / temporary_name;
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return io_error("cannot create", temporary.string(), errno);
    std::size_t written = 0;
    while (written < bytes.size()) {
      const auto n = ::write(fd, bytes.data() + written, bytes.size() - written);
      if (n < 0) {
        const int saved = errno;
        ::close(fd);
        ::unlink(temporary.c_str());
        return io_error("cannot write", temporary.string(), saved);
      }
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      const int saved = errno;
      ::unlink(temporary.c_str());
      return io_error("cannot flush", temporary.string(), saved);
    }
    if (::rename(temporary.c_str(), target->c_str()) != 0) {
      const int saved = errno;
      ::unlink(temporary.c_str());
      return io_error("cannot move into place", std::string(path), saved);
    }
    fsync_path(target->parent_path(), O_RDONLY | O_DIRECTORY);  // the rename itself survives a crash
    return {};
  }

  Result<std::string> get(std::string_view path) override {
    auto target = resolve(path, false);
    if (!target) return std::move(target).error();
    const int fd = ::open(target->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Error{errc::not_found, "storage path \"" + std::string(path) + "\": no such blob"};
      return io_error("cannot open", std::string(path), errno);
    }
    std::string bytes;
    char chunk[65536];
    ssize_t n = 0;
    while ((n = ::read(fd, chunk, sizeof chunk)) > 0) bytes.append(chunk, static_cast<std::size_t>(n));
    const int saved = errno;
    ::close(fd);
    if (n < 0) return io_error("cannot read", std::string(path), saved);
    return bytes;
  }

  Result<std::vector<std::string>> list(std::string_view prefix) override {
    auto folder = resolve(prefix, true);
    if (!folder) return std::move(folder).error();
    std::vector<std::string> paths;
    std::error_code error;
    if (!stdfs::exists(*folder, error)) return paths;
    for (stdfs::recursive_directory_iterator it(*folder, error), end; !error && it != end; it.increment(error)) {
      if (!it->is_regular_file()) continue;
      const auto name = it->path().filename().string();
      if (name.starts_with(".") && name.find(".tmp-") != std::string::npos) continue;  // a write in progress
      // Lexically: the iterator's paths are the folder's joined with names (it follows no symlinked
      // folder), and stdfs::relative would resolve both paths in full, a readlink per segment.
      paths.push_back(it->path().lexically_relative(root_).generic_string());
    }
    if (error) return io_error("cannot list", std::string(prefix), error.value());
    std::sort(paths.begin(), paths.end());
    return paths;
  }

  Result<bool> remove(std::string_view path) override {
    auto target = resolve(path, false);
    if (!target) return std::move(target).error();
    std::error_code error;
    const bool removed = stdfs::remove(*target, error);
    if (error) return io_error("cannot remove", std::string(path), error.value());
    return removed;
  }

  Result<void> rename(std::string_view from, std::string_view to) override {
    auto source = resolve(from, false);
    if (!source) return std::move(source).error();
    auto target = resolve(to, false);
    if (!target) return std::move(target).error();
    std::error_code error;
    stdfs::create_directories(target->parent_path(), error);
    if (error) return io_error("cannot create the folder of", std::string(to), error.value());
    if (auto inside = resolve(to, false); !inside) return std::move(inside).error();
    // RENAME_NOREPLACE: the check that `to` is free and the move are one step in the kernel.
    if (::renameat2(AT_FDCWD, source->c_str(), AT_FDCWD, target->c_str(), RENAME_NOREPLACE) != 0) {
      const int saved = errno;
      if (saved == ENOENT) return Error{errc::not_found, "storage path \"" + std::string(from) + "\": nothing to move"};
      if (saved == EEXIST || saved == ENOTEMPTY) {
        return Error{errc::conflict, "storage path \"" + std::string(to) + "\": already exists"};
      }
      return io_error("cannot move " + std::string(from) + " to", std::string(to), saved);
    }
    fsync_path(target->parent_path(), O_RDONLY | O_DIRECTORY);
    fsync_path(source->parent_path(), O_RDONLY | O_DIRECTORY);
    return {};
  }

  ports::Health health() override {
    const auto started = std::chrono::steady_clock::now();
    std::error_code error;
    const bool ok = stdfs::is_directory(root_, error) && ::access(root_.c_str(), W_OK) == 0;
    const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    return {ok, latency, ok ? "writable " + root_.string() : "not a writable folder: " + root_.string()};
  }

 private:
  // The absolute path of a relative one, after refusing anything that leads out of the root: bad
  // segments, and symlinks (resolved as far as the path exists) that point outside. The segments
  // are checked already, so a path below the root with no symlink in it stays inside: one lstat per
  // existing segment says so, and only a path with a symlink in it is resolved in full (resolving
  // every path in full, from "/", was a fifth of the pipeline's CPU time in readlink and stat).
  Result<stdfs::path> resolve(std::string_view path, bool allow_empty) const {
    if (auto bad = check_shape(path, allow_empty)) return *bad;
    const auto joined = root_ / stdfs::path(std::string(path));
    std::string_view trimmed = path;
    while (!trimmed.empty() && trimmed.back() == '/') trimmed.remove_suffix(1);  // a prefix's trailing '/'
    if (trimmed.empty()) return joined;  // the root itself
    stdfs::path walked = root_;
    bool plain = true;  // no symlink met so far
    for (const auto& segment : stdfs::path(std::string(trimmed))) {
      walked /= segment;
      struct stat info {};
      if (::lstat(walked.c_str(), &info) != 0) {
        if (errno == ENOENT) return joined;  // nothing further exists, so nothing further to follow
        plain = false;                       // cannot tell: resolve in full
        break;
      }
      if (S_ISLNK(info.st_mode)) {
        plain = false;
        break;
      }
    }
    if (plain) return joined;  // every segment exists and none is a symlink
    return resolve_in_full(path, joined);
  }

  Result<stdfs::path> resolve_in_full(std::string_view path, const stdfs::path& joined) const {
    std::error_code error;
    const auto real = stdfs::weakly_canonical(joined, error);
    if (error) return io_error("cannot resolve", std::string(path), error.value());
    const auto relative = real.lexically_relative(root_);
    if (relative.empty() || *relative.begin() == "..") {
      return Error{errc::invalid_argument, "storage path \"" + std::string(path) + "\": leads out of the storage root (a symlink?)"};
    }
    return joined;
  }

  static std::string random_suffix() {
    thread_local std::mt19937_64 generator{std::random_device{}()};
    return std::to_string(generator());
  }

  stdfs::path root_;
};

}  // namespace

Result<std::unique_ptr<ports::Storage>> make_fs_storage(FsStorageOptions options) {
  if (options.root.empty()) return Error{errc::invalid_argument, "storage root: required"};
  std::error_code error;
  stdfs::create_directories(options.root, error);
  if (error) return io_error("cannot create the storage root", options.root.string(), error.value());
  const auto root = stdfs::canonical(options.root, error);
  if (error) return io_error("cannot resolve the storage root", options.root.string(), error.value());
  return std::unique_ptr<ports::Storage>(std::make_unique<FsStorage>(root));
}

}  // namespace baton::adapters::fs
