#include "baton/app/process_lifetime.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>
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
