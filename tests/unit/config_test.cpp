// The configuration: file, environment overrides, and an error naming the key for every mistake.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/app/bootstrap.hpp"
#include "baton/app/config.hpp"
#include "support/unique_id.hpp"

namespace baton::app {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    path_ = std::filesystem::temp_directory_path() / (test::unique_name("config") + ".toml");
    std::ofstream(path_) << text;
    return path_.string();
  }
  void TearDown() override {
    if (!path_.empty()) std::filesystem::remove(path_);
  }
  std::string error_of(const std::string& text, const Environment& environment = {}) {
    auto config = load_config(write(text), environment);
    EXPECT_FALSE(config) << "accepted although it should not";
    return config ? std::string() : config.error().detail;
  }

 private:
  std::filesystem::path path_;
};

TEST_F(ConfigTest, DefaultsEmbedEverythingInMemory) {
  auto config = load_config(std::nullopt, {});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->bus, "memory://");
  EXPECT_EQ(config->kv, "memory://");
  EXPECT_EQ(config->phases, (std::vector<std::string>{"plan", "code", "certify", "deploy"}));
  EXPECT_EQ(config->ai_provider, "offline");
}

// The Redis bus's settings start where the bus's own defaults are, so an empty config changes nothing.
TEST_F(ConfigTest, DeliveryDefaultsAreTheRedisBussOwn) {
  const Config config;
  const adapters::redis::RedisBusOptions bus;
  EXPECT_EQ(config.reclaim_idle_ms, bus.reclaim_idle.count());
  EXPECT_EQ(static_cast<std::size_t>(config.readers), bus.readers);
  EXPECT_EQ(static_cast<std::size_t>(config.read_count), bus.read_count);
  EXPECT_EQ(static_cast<std::size_t>(config.direct_publishers), bus.direct_publishers);
}

TEST_F(ConfigTest, ReadsEveryKey) {
  auto config = load_config(write(R"(
bus = "redis://127.0.0.1:6390/2"
kv = "unix:///run/redis.sock"
[pipeline]
phases = ["plan", "deploy"]
space = "acme-1.phase"
[storage]
root = "/var/lib/baton"
[ai]
provider = "anthropic"
base_url = "https://api.anthropic.com"
model = "claude"
[log]
level = "debug"
[phases.deploy]
concurrency = 3
timeout_ms = 1500
max_attempts = 7
base_delay_ms = 20
)"), {});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->bus, "redis://127.0.0.1:6390/2");
  EXPECT_EQ(config->kv, "unix:///run/redis.sock");
  EXPECT_EQ(config->phases, (std::vector<std::string>{"plan", "deploy"}));
  EXPECT_EQ(config->space, "acme-1.phase");
  EXPECT_EQ(config->storage_root, "/var/lib/baton");
  EXPECT_EQ(config->ai_provider, "anthropic");
  EXPECT_EQ(config->log_level, "debug");
  const auto deploy = config->settings_for("deploy");
  EXPECT_EQ(deploy.concurrency, 3);
  EXPECT_EQ(deploy.timeout, std::chrono::milliseconds{1500});
  EXPECT_EQ(deploy.max_attempts, 7);
  EXPECT_EQ(deploy.base_delay, std::chrono::milliseconds{20});
  EXPECT_EQ(config->settings_for("plan").concurrency, 1);
}

TEST_F(ConfigTest, EnvironmentOverridesTheFile) {
  auto config = load_config(write("bus = \"redis://127.0.0.1:1\"\n"),
                            {{"BATON_BUS", "redis://127.0.0.1:2"}, {"BATON_STORAGE_ROOT", "/tmp/x"},
                             {"BATON_PIPELINE_PHASES", "a, b"}, {"BATON_PHASES_B_CONCURRENCY", "9"}});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->bus, "redis://127.0.0.1:2");
  EXPECT_EQ(config->storage_root, "/tmp/x");
  EXPECT_EQ(config->phases, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(config->settings_for("b").concurrency, 9);
}

TEST_F(ConfigTest, EachMistakeNamesItsKey) {
  const auto unknown = error_of("[storage]\nrot = \"/x\"\n");
  EXPECT_NE(unknown.find("config key \"storage.rot\""), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("(line 2)"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("unknown key"), std::string::npos) << unknown;

  EXPECT_NE(error_of("bus = 5\n").find("config key \"bus\""), std::string::npos);
  EXPECT_NE(error_of("bus = 5\n").find("expected a string"), std::string::npos);
  const auto url = error_of("kv = \"http://x\"\n");
  EXPECT_NE(url.find("config key \"kv\""), std::string::npos) << url;
  EXPECT_NE(url.find("scheme \"http\""), std::string::npos) << url;
  EXPECT_NE(error_of("[pipeline]\nphases = []\n").find("at least one phase"), std::string::npos);
  EXPECT_NE(error_of("[phases.plan]\nconcurrency = 0\n").find("\"phases.plan.concurrency\""), std::string::npos);
  EXPECT_NE(error_of("[phases.nope]\nconcurrency = 2\n").find("not a phase of pipeline.phases"), std::string::npos);
  EXPECT_NE(error_of("[phases.plan]\ncolor = 2\n").find("unknown key"), std::string::npos);
  EXPECT_NE(error_of("[ai]\nprovider = \"gpt\"\n").find("\"ai.provider\""), std::string::npos);
  EXPECT_NE(error_of("[ai]\nprovider = \"openai\"\n").find("\"ai.base_url\""), std::string::npos);
  EXPECT_NE(error_of("[log]\nlevel = \"loud\"\n").find("\"log.level\""), std::string::npos);
  EXPECT_NE(error_of("this is not toml").find("config file"), std::string::npos);
}

TEST_F(ConfigTest, UnknownEnvironmentVariablesAreRefused) {
  auto config = load_config(std::nullopt, {{"BATON_BUSS", "redis://x"}});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().detail, "environment BATON_BUSS: not a Baton setting");
  auto phase = load_config(std::nullopt, {{"BATON_PHASES_PLAN_CONCURRENCY", "many"}});
  ASSERT_FALSE(phase);
  EXPECT_NE(phase.error().detail.find("expected an integer"), std::string::npos);
}

TEST_F(ConfigTest, AMissingFileIsAClearError) {
  auto config = load_config(std::string("/nonexistent/baton.toml"), {});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().detail, "config file /nonexistent/baton.toml: cannot be read");
}

TEST_F(ConfigTest, RenderingMasksPasswords) {
  Config config;
  config.bus = "redis://worker:hunter2@127.0.0.1:6379";
  config.kv = "rediss://:hunter2@redis.internal:6380";
  const auto text = render_config(config);
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_NE(text.find("redis://worker:***@127.0.0.1:6379"), std::string::npos) << text;
}

TEST_F(ConfigTest, BootstrapPicksAdaptersByScheme) {
  auto config = load_config(std::nullopt, {});
  ASSERT_TRUE(config);
  auto runtime = bootstrap(*config);
  ASSERT_TRUE(runtime) << runtime.error().message();
  EXPECT_FALSE(runtime->bus->capabilities().survives_process_restart) << "memory:// is the embedded bus";
  EXPECT_TRUE(runtime->bus->health().ok);
  EXPECT_EQ(runtime->pipeline->first_topic(), "phase.plan.in");
  config->bus = "redis://127.0.0.1:1";
  auto redis = bootstrap(*config);
  ASSERT_TRUE(redis);
  EXPECT_TRUE(redis->bus->capabilities().survives_process_restart) << "redis:// is the Redis bus";
}

// The default ports keep everything in the worker's memory: `baton health` and `baton run` say so,
// as they would of a Redis server that keeps no AOF.
TEST_F(ConfigTest, TheEmbeddedDefaultSaysThatACrashOfItsProcessLosesWhatItHolds) {
  auto config = load_config(std::nullopt, {});
  ASSERT_TRUE(config);
  auto runtime = bootstrap(*config);
  ASSERT_TRUE(runtime) << runtime.error().message();
  const auto bus_risk = runtime->bus->durability_risk();
  ASSERT_TRUE(bus_risk.has_value());
  EXPECT_NE(bus_risk->find("memory://"), std::string::npos) << *bus_risk;
  const auto kv_risk = runtime->kv->durability_risk();
  ASSERT_TRUE(kv_risk.has_value());
  EXPECT_NE(kv_risk->find("once() answers"), std::string::npos) << *kv_risk;
}

TEST_F(ConfigTest, NumbersAreCheckedForTypeAndRangeWhereverTheyComeFrom) {
  auto config = load_config(write("[ai]\ntimeout_ms = 5000\nrequests_per_second = 3\n[certify]\ncommand = \"make check\"\nmax_rounds = 2\n"
                                  "[delivery]\nreclaim_idle_ms = 2000\nreaders = 3\nread_count = 64\n"),
                            {{"BATON_AI_MAX_CONCURRENT", "4"}, {"BATON_DELIVERY_DIRECT_PUBLISHERS", "0"}});
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->ai_timeout_ms, 5000);
  EXPECT_EQ(config->ai_requests_per_second, 3);
  EXPECT_EQ(config->ai_max_concurrent, 4);
  EXPECT_EQ(config->certify_command, "make check");
  EXPECT_EQ(config->certify_max_rounds, 2);
  EXPECT_EQ(config->reclaim_idle_ms, 2000);
  EXPECT_EQ(config->readers, 3);
  EXPECT_EQ(config->read_count, 64);
  EXPECT_EQ(config->direct_publishers, 0);
  EXPECT_NE(error_of("[delivery]\nreaders = 0\n").find("config key \"delivery.readers\""), std::string::npos);
  EXPECT_NE(error_of("[delivery]\nreaders = 0\n").find("must be 1-16"), std::string::npos);
  EXPECT_NE(error_of("[delivery]\nread_count = 0\n").find("must be 1-10000"), std::string::npos);
  EXPECT_NE(error_of("[delivery]\ndirect_publishers = -1\n").find("must be 0-256"), std::string::npos);
  EXPECT_NE(error_of("[certify]\nmax_rounds = \"two\"\n").find("config key \"certify.max_rounds\""), std::string::npos);
  EXPECT_NE(error_of("[certify]\nmax_rounds = \"two\"\n").find("expected an integer"), std::string::npos);
  EXPECT_NE(error_of("[ai]\nmax_concurrent = 0\n").find("must be 1-1024"), std::string::npos);
  auto from_environment = load_config(std::nullopt, {{"BATON_AI_TIMEOUT_MS", "soon"}});
  ASSERT_FALSE(from_environment);
  EXPECT_EQ(from_environment.error().detail,
            "config key \"ai.timeout_ms\" (environment BATON_AI_TIMEOUT_MS): expected an integer, got \"soon\"");
}

TEST_F(ConfigTest, StorageLeftoversAreSweptAfterAnHourUnlessToldOtherwise) {
  EXPECT_EQ(load_config(std::nullopt, {}).value().storage_leftovers_after_ms, 3'600'000);
  EXPECT_EQ(load_config(write("[storage]\nleftovers_after_ms = 0\n"), {}).value().storage_leftovers_after_ms, 0) << "0: never";
  EXPECT_EQ(load_config(std::nullopt, {{"BATON_STORAGE_LEFTOVERS_AFTER_MS", "60000"}}).value().storage_leftovers_after_ms, 60'000);
  EXPECT_EQ(error_of("[storage]\nleftovers_after_ms = 500\n"),
            "config key \"storage.leftovers_after_ms\" (value): must be 0 (never) or at least 1000");
  EXPECT_NE(error_of("[storage]\nleftovers_after_ms = -1\n").find("config key \"storage.leftovers_after_ms\""), std::string::npos);
}

TEST_F(ConfigTest, AnHttpProviderNeedsItsKeyAndModel) {
  auto config = load_config(std::nullopt, {{"BATON_AI_PROVIDER", "anthropic"}, {"BATON_AI_BASE_URL", "https://127.0.0.1:9"},
                                           {"BATON_AI_MODEL", "m"}, {"BATON_AI_API_KEY_SECRET", "BATON_TEST_SURELY_UNSET_KEY"}});
  ASSERT_TRUE(config) << config.error().message();
  auto runtime = bootstrap(*config);
  ASSERT_FALSE(runtime);
  EXPECT_NE(runtime.error().detail.find("ai.api_key_secret"), std::string::npos) << runtime.error().detail;
  EXPECT_NE(runtime.error().detail.find("BATON_TEST_SURELY_UNSET_KEY"), std::string::npos) << runtime.error().detail;

  config->ai_provider = "openai";  // local OpenAI-compatible servers may need no key
  auto keyless = bootstrap(*config);
  ASSERT_TRUE(keyless) << keyless.error().message();
  EXPECT_EQ(keyless->ai->provider(), "openai");
  config->ai_model.clear();
  EXPECT_NE(bootstrap(*config).error().detail.find("ai.model"), std::string::npos);
}

}  // namespace
}  // namespace baton::app
