#include "baton/adapters/fs/fs_storage.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

namespace baton::adapters::fs {
namespace {

namespace stdfs = std::filesystem;

Error io_error(const std::string& what, const std::string& path, int error_number) {
  const auto code = std::error_code(error_number, std::generic_category());
  return {is_retryable(code) ? errc::unavailable : errc::invalid_argument, what + " " + path + ": " + code.message()};
}

Error leads_out(std::string_view path) {
  return {errc::invalid_argument, "storage path \"" + std::string(path) + "\": leads out of the storage root (a symlink?)"};
}

// What writes in progress are named: ".<name>.tmp-<random digits>", a file of put() or a folder of
// publish_folder(). Listing skips them; a crash can leave one behind, never in a listing, for
// sweep_leftovers(). A path may not use such a name itself (check_shape).
std::string temporary_name(std::string_view name, std::string_view suffix) {
  std::string temporary = ".";  // built step by step: GCC 12 warns falsely (-Wrestrict) on "." + name
  temporary += name;
  temporary += ".tmp-";
  temporary += suffix;
  return temporary;
}

bool is_temporary_name(std::string_view name) {
  const auto marker = name.rfind(".tmp-");
  if (!name.starts_with(".") || marker == std::string_view::npos || marker == 0 || marker + 5 == name.size()) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(marker + 5), name.end(), [](char c) { return c >= '0' && c <= '9'; });
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
    if (is_temporary_name(segment)) return bad("\"" + std::string(segment) + "\" has the form .<name>.tmp-<digits>, kept for writes in progress");
    start = end + 1;
  }
  return std::nullopt;
}

// A path split into its folder ("" for the root) and its last segment.
std::pair<std::string, std::string> split_last(std::string_view path) {
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string(), std::string(path)};
  return {std::string(path.substr(0, slash)), std::string(path.substr(slash + 1))};
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// What opening a path below the root gave: a descriptor, or errno, or that it leads out.
struct Opened {
  Fd fd;
  int error = 0;
  bool outside = false;
};

int openat2_beneath(int root, const char* relative, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    const int fd = static_cast<int>(::syscall(SYS_openat2, root, relative, &how, sizeof how));
    // EAGAIN: a rename raced the kernel's check of a ".." in a symlink; the check is simply redone.
    if (fd >= 0 || errno != EAGAIN || attempt == 8) return fd;
  }
}

// Calls `take(entry)` for each entry of the open folder `folder` but "." and "..", reading it with
// getdents64 on its descriptor: opendir's stream would cost three more system calls per folder (a
// stat and two fcntl), and a task's workspace is listed twice. Returns errno, or 0.
template <class Take>
int for_each_entry(int folder, Take take) {
  alignas(8) char buffer[8192];
  while (true) {
    const auto filled = ::getdents64(folder, buffer, sizeof buffer);
    if (filled < 0) return errno;
    if (filled == 0) return 0;
    for (long offset = 0; offset < filled;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer + offset);
      offset += entry->d_reclen;
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") take(*entry);
    }
  }
}

// Every path is opened by the kernel below the root's descriptor (openat2 with RESOLVE_BENEATH), so
// a symlink that leads out, even one planted between two calls, is refused where it is met; and one
// system call replaces a check per segment. Files and folders are then made, moved and removed
// relative to the descriptor of their folder, by their last segment alone.
class FsStorage final : public ports::Storage {
 public:
  FsStorage(stdfs::path root, Fd root_fd) : root_(std::move(root)), root_fd_(std::make_shared<const Fd>(std::move(root_fd))) {}

  Result<void> put(std::string_view path, std::string_view bytes) override {
    const ports::BlobWrite blob{path, bytes};
    return put_all(std::span<const ports::BlobWrite>(&blob, 1));
  }

  Result<void> put_all(std::span<const ports::BlobWrite> blobs) override {
    for (const auto& blob : blobs) {
      if (auto bad = check_shape(blob.path, false)) return *bad;
    }
    auto written = write_all(blobs);
    // The root folder was removed meanwhile (a clean-up by hand, say): nothing can be made in it
    // any more, so it is made again, as a fresh start would, instead of failing every write.
    if (!written && root_was_removed() && reopen_root()) written = write_all(blobs);
    return written;
  }

  Result<std::string> get(std::string_view path) override {
    if (auto bad = check_shape(path, false)) return *bad;
    auto opened = open_beneath(std::string(path), O_RDONLY);
    if (opened.outside) return leads_out(path);
    if (opened.error == ENOENT) return Error{errc::not_found, "storage path \"" + std::string(path) + "\": no such blob"};
    if (opened.error) return io_error("cannot open", std::string(path), opened.error);
    std::string bytes;
    char chunk[65536];
    ssize_t n = 0;
    while ((n = ::read(opened.fd.get(), chunk, sizeof chunk)) > 0) bytes.append(chunk, static_cast<std::size_t>(n));
    if (n < 0) return io_error("cannot read", std::string(path), errno);
    return bytes;
  }

  Result<std::vector<std::string>> list(std::string_view prefix) override {
    if (auto bad = check_shape(prefix, true)) return *bad;
    std::string_view trimmed = prefix;
    while (!trimmed.empty() && trimmed.back() == '/') trimmed.remove_suffix(1);
    auto opened = open_beneath(trimmed.empty() ? std::string(".") : std::string(trimmed), O_RDONLY | O_DIRECTORY);
    if (opened.outside) return leads_out(prefix);
    std::vector<std::string> paths;
    if (opened.error == ENOENT) return paths;
    if (opened.error) return io_error("cannot list", std::string(prefix), opened.error);
    if (const int error = collect(std::move(opened.fd), std::string(trimmed), paths)) return io_error("cannot list", std::string(prefix), error);
    std::sort(paths.begin(), paths.end());
    return paths;
  }

  Result<bool> remove(std::string_view path) override {
    if (auto bad = check_shape(path, false)) return *bad;
    const auto [folder_path, name] = split_last(path);
    auto folder = open_folder(folder_path, path, false);
    if (!folder && folder.error() == errc::not_found) return false;
    if (!folder) return std::move(folder).error();
    int removed = ::unlinkat(folder->get(), name.c_str(), 0);
    if (removed != 0 && errno == EISDIR) removed = ::unlinkat(folder->get(), name.c_str(), AT_REMOVEDIR);  // an empty folder
    if (removed == 0) return true;
    if (errno == ENOENT) return false;
    return io_error("cannot remove", std::string(path), errno);
  }

  Result<void> rename(std::string_view from, std::string_view to) override {
    if (auto bad = check_shape(from, false)) return *bad;
    if (auto bad = check_shape(to, false)) return *bad;
    const auto [from_folder_path, from_name] = split_last(from);
    const auto [to_folder_path, to_name] = split_last(to);
    auto from_folder = open_folder(from_folder_path, from, false);
    if (!from_folder && from_folder.error() == errc::not_found) {
      return Error{errc::not_found, "storage path \"" + std::string(from) + "\": nothing to move"};
    }
    if (!from_folder) return std::move(from_folder).error();
    auto to_folder = open_folder(to_folder_path, to, true);
    if (!to_folder) return std::move(to_folder).error();
    // RENAME_NOREPLACE: the check that `to` is free and the move are one step in the kernel.
    if (::renameat2(from_folder->get(), from_name.c_str(), to_folder->get(), to_name.c_str(), RENAME_NOREPLACE) != 0) {
      const int saved = errno;
      if (saved == ENOENT) return Error{errc::not_found, "storage path \"" + std::string(from) + "\": nothing to move"};
      if (saved == EEXIST || saved == ENOTEMPTY) {
        return Error{errc::conflict, "storage path \"" + std::string(to) + "\": already exists"};
      }
      return io_error("cannot move " + std::string(from) + " to", std::string(to), saved);
    }
    ::fsync(to_folder->get());
    if (from_folder_path != to_folder_path) ::fsync(from_folder->get());
    return {};
  }

  Result<void> publish_folder(std::string_view folder, std::span<const ports::BlobWrite> blobs) override {
    if (auto bad = check_shape(folder, false)) return *bad;
    for (const auto& blob : blobs) {
      if (auto bad = check_shape(std::string(folder) + "/" + std::string(blob.path), false)) return *bad;
    }
    auto published = publish(folder, blobs);
    if (!published && published.error() != errc::conflict && root_was_removed() && reopen_root()) published = publish(folder, blobs);
    return published;
  }

  Result<std::size_t> sweep_leftovers(std::chrono::seconds unchanged_for, std::stop_token stop) override {
    auto opened = open_beneath(".", O_RDONLY | O_DIRECTORY);
    if (opened.error) return io_error("cannot sweep the storage root", root_.string(), opened.error);
    const auto cutoff = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() - unchanged_for);
    std::size_t removed = 0;
    std::string failed_at;
    if (const int error = sweep(std::move(opened.fd), "", cutoff, stop, removed, failed_at)) {
      return io_error("cannot sweep", failed_at.empty() ? root_.string() : failed_at, error);
    }
    return removed;
  }

  ports::Health health() override {
    const auto started = std::chrono::steady_clock::now();
    std::error_code error;
    const bool ok = stdfs::is_directory(root_, error) && ::access(root_.c_str(), W_OK) == 0;
    const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    return {ok, latency, ok ? "writable " + root_.string() : "not a writable folder: " + root_.string()};
  }

 private:
  // Folders to flush once what a call writes is in place, each open once, by path ("" the root).
  using Folders = std::map<std::string, Fd, std::less<>>;

  // put_all (and put, a batch of one): each file written under a temporary name, flushed and
  // renamed over its name; then each folder flushed once (the renames survive a crash), with the
  // folders that new ones were made in.
  Result<void> write_all(std::span<const ports::BlobWrite> blobs) const {
    Folders folders;  // the folders written into
    Folders made_in;  // the folders new ones were made in
    for (const auto& blob : blobs) {
      const auto [folder_path, name] = split_last(blob.path);
      auto found = folders.find(folder_path);
      if (found == folders.end()) {
        auto folder = open_folder(folder_path, blob.path, true, &made_in);
        if (!folder) return std::move(folder).error();
        found = folders.emplace(folder_path, std::move(*folder)).first;
      }
      if (auto written = write_file(found->second.get(), folder_path, name, blob.bytes); !written) return written;
    }
    for (auto& [path, folder] : made_in) folders.try_emplace(path, std::move(folder));
    return flush_folders(folders, "");
  }

  // A temporary file in the folder open at `at`, written, flushed and renamed over `name`; the
  // folder is not flushed.
  Result<void> write_file(int at, const std::string& folder_path, const std::string& name, std::string_view bytes) const {
    const std::string temporary = temporary_name(name, random_suffix());
    const auto temporary_path = [&] { return folder_path.empty() ? temporary : folder_path + "/" + temporary; };
    Fd file(::openat(at, temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (file.get() < 0) return io_error("cannot create", temporary_path(), errno);
    if (auto written = write_bytes(file, bytes, temporary_path()); !written) {
      ::unlinkat(at, temporary.c_str(), 0);
      return written;
    }
    // Replaces whatever the name was, a symlink included, inside this folder: nothing is followed.
    if (::renameat(at, temporary.c_str(), at, name.c_str()) != 0) {
      const int saved = errno;
      ::unlinkat(at, temporary.c_str(), 0);
      const auto path = folder_path.empty() ? name : folder_path + "/" + name;
      return io_error("cannot move into place", path, saved);
    }
    return {};
  }

  // Writes all of `bytes` to a new file, flushes and closes it.
  static Result<void> write_bytes(Fd& file, std::string_view bytes, const std::string& path) {
    std::size_t written = 0;
    while (written < bytes.size()) {
      const auto n = ::write(file.get(), bytes.data() + written, bytes.size() - written);
      if (n < 0) return io_error("cannot write", path, errno);
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(file.get()) != 0 || ::close(file.release()) != 0) return io_error("cannot flush", path, errno);
    return {};
  }

  // Flushes every folder of `folders` (paths below `under`, the root's path for messages).
  static Result<void> flush_folders(const Folders& folders, const std::string& under) {
    for (const auto& [path, folder] : folders) {
      if (::fsync(folder.get()) != 0) {
        const auto named = under.empty() ? (path.empty() ? std::string(".") : path) : (path.empty() ? under : under + "/" + path);
        return io_error("cannot flush the folder", named, errno);
      }
    }
    return {};
  }

  // publish_folder: a temporary folder beside `folder`, its blobs written straight to their names
  // (no one else knows the folder yet), every file and folder of it flushed, then renamed into
  // place without replacing anything, and the folder that holds it flushed. A failure or a
  // conflict removes the temporary folder.
  Result<void> publish(std::string_view folder, std::span<const ports::BlobWrite> blobs) const {
    const auto [parent_path, name] = split_last(folder);
    Folders made_in;
    auto parent = open_folder(parent_path, folder, true, &made_in);
    if (!parent) return std::move(parent).error();
    const auto exists = [&] { return Error{errc::conflict, "storage path \"" + std::string(folder) + "\": already exists"}; };
    struct stat info {};
    if (::fstatat(parent->get(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0) return exists();
    if (errno != ENOENT) return io_error("cannot publish", std::string(folder), errno);

    const std::string temporary = temporary_name(name, random_suffix());
    const std::string temporary_path = parent_path.empty() ? temporary : parent_path + "/" + temporary;
    if (::mkdirat(parent->get(), temporary.c_str(), 0777) != 0) return io_error("cannot create", temporary_path, errno);
    auto written = write_tree(parent->get(), temporary, temporary_path, blobs);
    if (written && ::renameat2(parent->get(), temporary.c_str(), parent->get(), name.c_str(), RENAME_NOREPLACE) != 0) {
      const int saved = errno;
      written = saved == EEXIST || saved == ENOTEMPTY ? exists() : io_error("cannot publish " + temporary_path + " as", std::string(folder), saved);
    }
    if (!written) {
      remove_tree(parent->get(), temporary);
      return written;
    }
    if (::fsync(parent->get()) != 0) return io_error("cannot flush the folder of", std::string(folder), errno);
    return flush_folders(made_in, "");
  }

  // The blobs of publish() in the new, empty folder `temporary` of `parent`, all flushed.
  static Result<void> write_tree(int parent, const std::string& temporary, const std::string& temporary_path,
                                 std::span<const ports::BlobWrite> blobs) {
    Folders folders;  // below the temporary folder, "" being itself
    Fd top(::openat(parent, temporary.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (top.get() < 0) return io_error("cannot open", temporary_path, errno);
    folders.emplace("", std::move(top));
    for (const auto& blob : blobs) {
      const auto [folder_path, name] = split_last(blob.path);
      // Each missing folder on the way is made and opened, never followed if something else is there.
      std::size_t start = 0;
      while (!folders.contains(folder_path)) {
        const auto end = std::min(folder_path.find('/', start), folder_path.size());
        const auto path = folder_path.substr(0, end);
        if (!folders.contains(path)) {
          const int at = folders.at(start == 0 ? std::string() : folder_path.substr(0, start - 1)).get();
          const auto segment = folder_path.substr(start, end - start);
          if (::mkdirat(at, segment.c_str(), 0777) != 0 && errno != EEXIST) return io_error("cannot create", temporary_path + "/" + path, errno);
          Fd made(::openat(at, segment.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (made.get() < 0) return io_error("cannot create", temporary_path + "/" + path, errno);
          folders.emplace(path, std::move(made));
        }
        start = end + 1;
      }
      const auto path = temporary_path + "/" + std::string(blob.path);
      Fd file(::openat(folders.at(folder_path).get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (file.get() < 0) return io_error("cannot create", path, errno);
      if (auto written = write_bytes(file, blob.bytes, path); !written) return written;
    }
    return flush_folders(folders, temporary_path);
  }

  // Removes the folder `name` of `at` and everything in it, following no symlink; what cannot be
  // removed stays (a temporary folder, never listed). True when the folder is gone.
  static bool remove_tree(int at, const std::string& name) {
    {
      Fd folder(::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (folder.get() < 0) return false;
      std::vector<std::string> subfolders;
      for_each_entry(folder.get(), [&](const dirent64& entry) {
        if (::unlinkat(folder.get(), entry.d_name, 0) != 0 && errno == EISDIR) subfolders.emplace_back(entry.d_name);
      });
      for (const auto& subfolder : subfolders) remove_tree(folder.get(), subfolder);
    }
    return ::unlinkat(at, name.c_str(), AT_REMOVEDIR) == 0;
  }

  // sweep_leftovers below an open folder (named `path`, "" for the root): its leftovers unchanged
  // since `cutoff` removed (a temporary folder with all it holds), its other folders walked, no
  // symlinked one, until `stop` is asked for. Returns errno of a folder that could not be read, 0
  // otherwise; a leftover that cannot be removed stays for the next sweep.
  static int sweep(Fd folder, const std::string& path, std::time_t cutoff, const std::stop_token& stop, std::size_t& removed,
                   std::string& failed_at) {
    if (stop.stop_requested()) return 0;
    std::vector<std::string> subfolders;
    std::vector<std::string> leftovers;
    const int read_error = for_each_entry(folder.get(), [&](const dirent64& entry) {
      if (is_temporary_name(entry.d_name)) {
        leftovers.emplace_back(entry.d_name);
        return;
      }
      struct stat info {};
      if (entry.d_type == DT_DIR ||
          (entry.d_type == DT_UNKNOWN && ::fstatat(folder.get(), entry.d_name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(info.st_mode))) {
        subfolders.emplace_back(entry.d_name);
      }
    });
    if (read_error) {
      failed_at = path;
      return read_error;
    }
    for (const auto& name : leftovers) {
      struct stat info {};
      if (::fstatat(folder.get(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0 || info.st_mtime >= cutoff) continue;
      const bool gone = S_ISDIR(info.st_mode) ? remove_tree(folder.get(), name) : ::unlinkat(folder.get(), name.c_str(), 0) == 0;
      if (gone) ++removed;
    }
    for (const auto& name : subfolders) {
      const auto sub_path = path.empty() ? name : path + "/" + name;
      Fd sub(::openat(folder.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() < 0) {
        const int open_error = errno;
        if (open_error == ENOENT) continue;  // removed meanwhile
        failed_at = sub_path;
        return open_error;
      }
      if (const int error = sweep(std::move(sub), sub_path, cutoff, stop, removed, failed_at)) return error;
    }
    return 0;
  }

  // Opens `relative` (checked already) below the root. The kernel refuses every symlink that leaves
  // the root, and also absolute ones that point back inside it; for those, the path is resolved in
  // full, and when it stays inside, its real path is opened below the root in the same safe way.
  Opened open_beneath(const std::string& relative, int flags, mode_t mode = 0) const {
    Opened opened;
    const auto root = root_fd();
    int fd = openat2_beneath(root->get(), relative.c_str(), flags, mode);
    if (fd < 0 && errno == EXDEV) {
      std::error_code error;
      const auto real = stdfs::weakly_canonical(root_ / relative, error);
      if (error) {
        opened.error = error.value();
        return opened;
      }
      const auto inside = real.lexically_relative(root_);
      if (inside.empty() || *inside.begin() == "..") {
        opened.outside = true;
        return opened;
      }
      fd = openat2_beneath(root->get(), inside.c_str(), flags, mode);
      if (fd < 0 && errno == EXDEV) {
        opened.outside = true;
        return opened;
      }
    }
    if (fd < 0) opened.error = errno;
    opened.fd = Fd(fd);
    return opened;
  }

  // The folder `folder` ("" for the root) of `path`, open for use as the base of *at calls. With
  // `create`, the missing folders are made one by one below the deepest one that exists, each
  // opened below the root, and the folder holding a new one is flushed, so that a file put into it
  // later cannot vanish in a crash along with its folder.
  // With `made_in`, a folder that a new one was made in is left there (by its path, open) to be
  // flushed by the caller, once for a whole batch, instead of at once.
  Result<Fd> open_folder(const std::string& folder, std::string_view path, bool create, Folders* made_in = nullptr) const {
    auto opened = open_beneath(folder.empty() ? std::string(".") : folder, O_RDONLY | O_DIRECTORY);
    if (opened.outside) return leads_out(path);
    if (!opened.error) return std::move(opened.fd);
    if (opened.error != ENOENT) return io_error("cannot open the folder of", std::string(path), opened.error);
    if (!create) return Error{errc::not_found, "storage path \"" + std::string(path) + "\": no such folder"};
    Opened at;
    std::size_t start = folder.size();  // where the first missing segment begins
    while (true) {
      const auto slash = folder.rfind('/', start - 1);
      at = open_beneath(slash == std::string::npos ? std::string(".") : folder.substr(0, slash), O_RDONLY | O_DIRECTORY);
      if (at.outside) return leads_out(path);
      if (!at.error) {
        start = slash == std::string::npos ? 0 : slash + 1;
        break;
      }
      if (at.error != ENOENT || slash == std::string::npos) return io_error("cannot create the folder of", std::string(path), at.error);
      start = slash;
    }
    while (start < folder.size()) {
      const auto end = std::min(folder.find('/', start), folder.size());
      const std::string segment = folder.substr(start, end - start);
      // Made here or, racing, by another writer: either way its parent is flushed before this
      // write reports success, since the other writer may not have flushed it yet.
      if (::mkdirat(at.fd.get(), segment.c_str(), 0777) != 0 && errno != EEXIST) {
        return io_error("cannot create the folder of", std::string(path), errno);
      }
      const auto at_path = start == 0 ? std::string() : folder.substr(0, start - 1);
      if (!made_in) ::fsync(at.fd.get());
      else if (!made_in->contains(at_path)) made_in->emplace(at_path, std::move(at.fd));
      auto next = open_beneath(folder.substr(0, end), O_RDONLY | O_DIRECTORY);
      if (next.outside) return leads_out(path);
      if (next.error) return io_error("cannot create the folder of", std::string(path), next.error);
      at = std::move(next);
      start = end + 1;
    }
    return std::move(at.fd);
  }

  // Adds the regular files below an open folder (named `prefix`) to `paths`, recursing into
  // subfolders but not into symlinked ones; a symlink to a file counts as the file. Returns errno.
  static int collect(Fd folder, const std::string& prefix, std::vector<std::string>& paths) {
    std::vector<std::string> subfolders;  // walked once this folder is read, so one buffer is live at a time
    if (const int error = for_each_entry(folder.get(), [&](const dirent64& entry) { take(folder.get(), entry, prefix, paths, subfolders); })) {
      return error;
    }
    for (const auto& name : subfolders) {
      Fd sub(::openat(folder.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() < 0) {
        if (errno == ENOENT) continue;  // removed meanwhile
        return errno;
      }
      if (const int error = collect(std::move(sub), prefix.empty() ? name : prefix + "/" + name, paths)) return error;
    }
    return 0;
  }

  // Sorts one entry of a folder being listed into a file to list or a subfolder to walk.
  static void take(int at, const dirent64& entry, const std::string& prefix, std::vector<std::string>& paths,
                   std::vector<std::string>& subfolders) {
    const std::string_view name = entry.d_name;
    if (is_temporary_name(name)) return;  // a put()'s file or a publish_folder()'s folder in progress, or what a crash left of one
    unsigned char type = entry.d_type;
    struct stat info {};
    if (type == DT_UNKNOWN) {  // a filesystem that does not say: ask
      if (::fstatat(at, entry.d_name, &info, AT_SYMLINK_NOFOLLOW) != 0) return;  // removed meanwhile
      type = S_ISLNK(info.st_mode) ? DT_LNK : S_ISDIR(info.st_mode) ? DT_DIR : S_ISREG(info.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_LNK) {  // listed when it leads to a file; a symlinked folder is not walked
      type = ::fstatat(at, entry.d_name, &info, 0) == 0 && S_ISREG(info.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (type == DT_DIR) {
      subfolders.emplace_back(name);
    } else if (type == DT_REG) {
      paths.push_back(prefix.empty() ? std::string(name) : prefix + "/" + std::string(name));
    }
  }

  static std::string random_suffix() {
    thread_local std::mt19937_64 generator{std::random_device{}()};
    return std::to_string(generator());
  }

  std::shared_ptr<const Fd> root_fd() const {
    std::lock_guard lock(root_mutex_);
    return root_fd_;
  }

  bool root_was_removed() const {
    struct stat info {};
    return ::fstat(root_fd()->get(), &info) == 0 && info.st_nlink == 0;
  }

  bool reopen_root() {
    std::error_code error;
    stdfs::create_directories(root_, error);
    auto reopened = std::make_shared<const Fd>(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (error || reopened->get() < 0) return false;
    std::lock_guard lock(root_mutex_);
    root_fd_ = std::move(reopened);
    return true;
  }

  stdfs::path root_;
  mutable std::mutex root_mutex_;
  std::shared_ptr<const Fd> root_fd_;  // replaced when the root folder was removed and made again
};

}  // namespace

Result<std::unique_ptr<ports::Storage>> make_fs_storage(FsStorageOptions options) {
  if (options.root.empty()) return Error{errc::invalid_argument, "storage root: required"};
  std::error_code error;
  stdfs::create_directories(options.root, error);
  if (error) return io_error("cannot create the storage root", options.root.string(), error.value());
  const auto root = stdfs::canonical(options.root, error);
  if (error) return io_error("cannot resolve the storage root", options.root.string(), error.value());
  Fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root_fd.get() < 0) return io_error("cannot open the storage root", root.string(), errno);
  if (Fd probe(openat2_beneath(root_fd.get(), ".", O_PATH | O_DIRECTORY, 0)); probe.get() < 0) {
    if (errno == ENOSYS || errno == EPERM) {
      return Error{errc::invalid_argument, "storage root " + root.string() +
                                               ": this kernel (or its seccomp filter) refuses openat2, which keeps every path "
                                               "below the root; Linux 5.6 or later is needed"};
    }
    return io_error("cannot open the storage root", root.string(), errno);
  }
  return std::unique_ptr<ports::Storage>(std::make_unique<FsStorage>(root, std::move(root_fd)));
}

}  // namespace baton::adapters::fs
