#include "baton/app/process_lifetime.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace baton::app {

namespace {

std::mutex scratch_mutex;
std::set<std::string>& scratch_folders() {
  static std::set<std::string> folders;
  return folders;
}

}  // namespace

void remember_scratch_folder(const std::string& path) {
  std::lock_guard lock(scratch_mutex);
  scratch_folders().insert(path);
}

void forget_scratch_folder(const std::string& path) {
  std::lock_guard lock(scratch_mutex);
  scratch_folders().erase(path);
}

namespace {

constexpr const char* owner_file = ".owner";

// "<pid> <start time>" of a process, the start time in clock ticks since boot (field 22 of
// /proc/<pid>/stat), which tells a process apart from a later one given the same pid; empty when
// there is no such process, or it has ended and waits to be reaped (a killed command's parent may
// not have reaped it yet).
std::string process_identity(long pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return {};
  const auto after_name = line.rfind(')');  // the name may hold spaces and parentheses
  if (after_name == std::string::npos) return {};
  std::istringstream fields(line.substr(after_name + 2));
  std::string field;
  for (int number = 3; number <= 22 && fields >> field; ++number) {
    if (number == 3 && (field == "Z" || field == "X")) return {};
    if (number == 22) return std::to_string(pid) + " " + field;
  }
  return {};
}

bool owner_has_ended(const std::filesystem::path& folder) {
  std::ifstream mark(folder / owner_file);
  long pid = 0;
  std::string start;
  if (!(mark >> pid >> start) || pid <= 0) return false;  // no mark, or one being written: not ours to judge
  return process_identity(pid) != std::to_string(pid) + " " + start;
}

}  // namespace

Result<std::filesystem::path> make_scratch_folder(const std::filesystem::path& parent, std::string_view prefix, bool owned) {
  if (owned) {
    // Stepped with an error code: a listing that fails part way (folders come and go) ends the sweep,
    // never the command.
    std::error_code listing;
    for (std::filesystem::directory_iterator it(parent, listing), end; !listing && it != end; it.increment(listing)) {
      const auto& entry = *it;
      const auto name = entry.path().filename().string();
      std::error_code ignored;
      if (name.size() == prefix.size() + 6 && name.starts_with(prefix) && entry.is_directory(ignored) && !entry.is_symlink(ignored) &&
          owner_has_ended(entry.path())) {
        std::filesystem::remove_all(entry.path(), ignored);  // another user's, or removed meanwhile: left
      }
    }
  }
  std::string pattern = (parent / (std::string(prefix) + "XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) return Error{errc::unavailable, "cannot make a folder " + pattern + " (" + std::strerror(errno) + ")"};
  const std::filesystem::path folder = pattern;
  if (owned) {
    std::ofstream(folder / owner_file) << process_identity(::getpid()) << "\n";
    remember_scratch_folder(folder.string());
  }
  return folder;
}

void exit_on_stop_signal(const char* command) {
  std::thread([command] {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    int received = 0;
    if (sigwait(&signals, &received) != 0) return;
    {
      std::lock_guard lock(scratch_mutex);
      for (const auto& folder : scratch_folders()) {
        std::error_code ignored;
        std::filesystem::remove_all(folder, ignored);
      }
    }
    std::fprintf(stderr, "\nbaton %s: interrupted by %s; scratch folders removed\n", command, received == SIGINT ? "SIGINT" : "SIGTERM");
    std::fflush(stderr);
    std::_Exit(130);
  }).detach();
}

void die_with_parent(int parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the parent was gone before the request took effect
}

}  // namespace baton::app
