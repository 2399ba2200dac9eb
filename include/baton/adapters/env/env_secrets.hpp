#pragma once
// Secrets from the environment: NAME, or the contents of the file named by NAME_FILE (the container
// convention; one trailing newline is dropped). Every value returned is registered with the
// logger's redaction first, so it never reaches a log line.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "baton/ports/secrets.hpp"

namespace baton::adapters::env {

// Looks up one environment variable. The default reads the process environment (tests pass a map).
using EnvironmentLookup = std::function<std::optional<std::string>(const std::string& name)>;

std::unique_ptr<ports::Secrets> make_env_secrets(EnvironmentLookup lookup = {});

}  // namespace baton::adapters::env
