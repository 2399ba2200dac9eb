#pragma once
// CommandRunner on local processes: each run gets a temporary folder under `scratch` (removed
// afterwards), /bin/sh -c in its own process group, so a timeout kills the whole group.

#include <filesystem>
#include <memory>

#include "baton/ports/command_runner.hpp"

namespace baton::adapters::process {

struct ProcessRunnerOptions {
  std::filesystem::path scratch = std::filesystem::temp_directory_path();
};

std::unique_ptr<ports::CommandRunner> make_process_runner(ProcessRunnerOptions options = {});

}  // namespace baton::adapters::process
