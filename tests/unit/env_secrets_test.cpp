#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "baton/adapters/env/env_secrets.hpp"
#include "baton/core/log.hpp"
#include "support/unique_id.hpp"

namespace baton::adapters::env {
namespace {

EnvironmentLookup from(std::map<std::string, std::string> variables) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    const auto found = variables.find(name);
    return found == variables.end() ? std::nullopt : std::optional<std::string>(found->second);
  };
}

TEST(EnvSecrets, ReadsTheVariable) {
  auto secrets = make_env_secrets(from({{"AI_KEY", "sk-test-variable-0001"}}));
  EXPECT_EQ(secrets->get("AI_KEY").value(), "sk-test-variable-0001");
}

TEST(EnvSecrets, ReadsTheFileNamedByNameFile) {
  const auto path = std::filesystem::temp_directory_path() / (test::unique_name("secret") + ".txt");
  std::ofstream(path) << "sk-test-from-file-0002\n";
  auto secrets = make_env_secrets(from({{"AI_KEY_FILE", path.string()}}));
  EXPECT_EQ(secrets->get("AI_KEY").value(), "sk-test-from-file-0002") << "one trailing newline is dropped";
  std::filesystem::remove(path);
}

TEST(EnvSecrets, AMissingSecretNamesWhatToSet) {
  auto secrets = make_env_secrets(from({}));
  auto missing = secrets->get("AI_KEY");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), errc::not_found);
  EXPECT_EQ(missing.error().detail, "secret AI_KEY: set the environment variable AI_KEY or AI_KEY_FILE");
  auto unreadable = make_env_secrets(from({{"AI_KEY_FILE", "/nonexistent/key"}}))->get("AI_KEY");
  ASSERT_FALSE(unreadable);
  EXPECT_NE(unreadable.error().detail.find("/nonexistent/key"), std::string::npos);
}

TEST(EnvSecrets, AValueItReturnsNeverReachesALog) {
  auto secrets = make_env_secrets(from({{"DB_PASSWORD", "correct-horse-battery-0003"}}));
  ASSERT_TRUE(secrets->get("DB_PASSWORD"));
  EXPECT_EQ(log::redact("connecting with correct-horse-battery-0003"), "connecting with ***");
}

}  // namespace
}  // namespace baton::adapters::env
