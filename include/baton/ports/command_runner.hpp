#pragma once
// CommandRunner: runs a shell command over a set of files, for checks such as a build or a test.
//
// Contract: thread-safe; blocks until the command ended or `timeout` passed. The command runs in a
// fresh folder that holds exactly `files` (a private copy: the command cannot change the caller's
// data), with no stdin. Its stdout and stderr come back together, capped at `max_output` bytes (the
// tail is kept, where a failure usually says what went wrong). A command that outlives the timeout
// is killed with everything it started and reported with timed_out = true. errc::unavailable when
// the command could not be started at all.

#include <chrono>
#include <cstddef>
#include <map>
#include <string>

#include "baton/core/result.hpp"

namespace baton::ports {

struct CommandRequest {
  std::string command;                          // run by /bin/sh -c
  std::map<std::string, std::string> files;     // relative path -> content
  std::chrono::milliseconds timeout{60'000};
  std::size_t max_output = 64 * 1024;
};

struct CommandOutcome {
  int exit_code = -1;        // the command's exit status; 128 + N when killed by signal N
  bool timed_out = false;
  bool output_truncated = false;
  std::string output;        // stdout and stderr, interleaved as written
  std::chrono::milliseconds elapsed{0};
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  virtual Result<CommandOutcome> run(const CommandRequest& request) = 0;
};

}  // namespace baton::ports
