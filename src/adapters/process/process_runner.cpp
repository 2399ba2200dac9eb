#include "baton/adapters/process/process_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

namespace baton::adapters::process {
namespace {

namespace stdfs = std::filesystem;

// Removes the run's folder whatever happens.
struct ScratchFolder {
  stdfs::path path;
  ~ScratchFolder() {
    std::error_code ignored;
    if (!path.empty()) stdfs::remove_all(path, ignored);
  }
};

bool safe_relative(const std::string& path) {
  if (path.empty() || path.front() == '/') return false;
  for (const auto& part : stdfs::path(path)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

class ProcessRunner final : public ports::CommandRunner {
 public:
  explicit ProcessRunner(ProcessRunnerOptions options) : options_(std::move(options)) {}

  Result<ports::CommandOutcome> run(const ports::CommandRequest& request) override {
    if (request.command.empty()) return Error{errc::invalid_argument, "command: empty"};
    std::string pattern = (options_.scratch / "baton-run-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) return Error{errc::unavailable, "cannot make a folder under " + options_.scratch.string()};
    ScratchFolder folder{pattern};
    for (const auto& [path, content] : request.files) {
      if (!safe_relative(path)) return Error{errc::invalid_argument, "file \"" + path + "\": must be relative, without \"..\""};
      const auto target = folder.path / path;
      std::error_code error;
      stdfs::create_directories(target.parent_path(), error);
      std::ofstream out(target, std::ios::binary);
      out << content;
      if (error || !out) return Error{errc::unavailable, "cannot write " + target.string()};
    }

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Error{errc::unavailable, "pipe failed"};
    const auto started = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
      return Error{errc::unavailable, "fork failed"};
    }
    if (pid == 0) {
      // The parent may block SIGINT/SIGTERM for sigwait; the child must not inherit that mask.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::setpgid(0, 0);
      const int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, 0);
      ::dup2(pipe_fds[1], 1);
      ::dup2(pipe_fds[1], 2);
      if (::chdir(folder.path.c_str()) != 0) ::_exit(126);
      ::execl("/bin/sh", "sh", "-c", request.command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here: whichever runs first, the group exists before a kill
    ::close(pipe_fds[1]);

    ports::CommandOutcome outcome;
    const auto deadline = started + request.timeout;
    char chunk[8192];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        outcome.timed_out = true;
        break;
      }
      pollfd readable{pipe_fds[0], POLLIN, 0};
      const int ready = ::poll(&readable, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
      if (ready < 0 && errno != EINTR) break;
      if (ready <= 0) continue;
      const auto got = ::read(pipe_fds[0], chunk, sizeof chunk);
      if (got <= 0) break;  // every writer closed: the command (and its children) are done with output
      outcome.output.append(chunk, static_cast<std::size_t>(got));
      if (outcome.output.size() > request.max_output) {
        outcome.output.erase(0, outcome.output.size() - request.max_output);
        outcome.output_truncated = true;
      }
    }
    ::close(pipe_fds[0]);
    if (outcome.timed_out) ::kill(-pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!outcome.timed_out) ::kill(-pid, SIGKILL);  // anything the command left running in the background
    outcome.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) outcome.exit_code = 128 + WTERMSIG(status);
    return outcome;
  }

 private:
  ProcessRunnerOptions options_;
};

}  // namespace

std::unique_ptr<ports::CommandRunner> make_process_runner(ProcessRunnerOptions options) {
  return std::make_unique<ProcessRunner>(std::move(options));
}

}  // namespace baton::adapters::process
