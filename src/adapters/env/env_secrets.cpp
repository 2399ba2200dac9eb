#include "baton/adapters/env/env_secrets.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "baton/core/log.hpp"

namespace baton::adapters::env {
namespace {

class EnvSecrets final : public ports::Secrets {
 public:
  explicit EnvSecrets(EnvironmentLookup lookup) : lookup_(std::move(lookup)) {}

  Result<std::string> get(std::string_view name) override {
    const std::string key(name);
    if (key.empty()) return Error{errc::invalid_argument, "secret: the name must not be empty"};
    if (auto value = lookup_(key); value && !value->empty()) {
      log::register_secret(*value);
      return *value;
    }
    if (auto file = lookup_(key + "_FILE"); file && !file->empty()) {
      std::ifstream in(*file, std::ios::binary);
      if (!in) return Error{errc::not_found, "secret " + key + ": " + key + "_FILE names " + *file + ", which cannot be read"};
      std::ostringstream contents;
      contents << in.rdbuf();
      std::string value = contents.str();
      if (value.ends_with("\r\n")) value.resize(value.size() - 2);
      else if (value.ends_with('\n')) value.pop_back();
      if (value.empty()) return Error{errc::not_found, "secret " + key + ": the file " + *file + " is empty"};
      log::register_secret(value);
      return value;
    }
    return Error{errc::not_found, "secret " + key + ": set the environment variable " + key + " or " + key + "_FILE"};
  }

 private:
  EnvironmentLookup lookup_;
};

}  // namespace

std::unique_ptr<ports::Secrets> make_env_secrets(EnvironmentLookup lookup) {
  if (!lookup) {
    lookup = [](const std::string& name) -> std::optional<std::string> {
      const char* value = std::getenv(name.c_str());
      return value ? std::optional<std::string>(value) : std::nullopt;
    };
  }
  return std::make_unique<EnvSecrets>(std::move(lookup));
}

}  // namespace baton::adapters::env
