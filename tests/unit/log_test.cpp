#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <mutex>

#include "baton/core/log.hpp"
#include "baton/core/time.hpp"

namespace baton::log {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_to_callback([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
    set_level(Level::debug);
  }
  void TearDown() override {
    log_to_stderr();
    set_level(Level::info);
  }

  std::vector<boost::json::object> lines() {
    std::lock_guard lock(mutex_);
    std::vector<boost::json::object> parsed;
    for (const auto& line : lines_) parsed.push_back(boost::json::parse(line).as_object());
    return parsed;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

TEST_F(LogTest, OneJsonObjectPerLineWithTheStandardFields) {
  Logger().child("plan").info("planned", {{"steps", 3}});
  const auto written = lines();
  ASSERT_EQ(written.size(), 1u);
  const auto& line = written.front();
  EXPECT_TRUE(parse_rfc3339(std::string(line.at("ts").as_string())));
  EXPECT_EQ(line.at("level"), "info");
  EXPECT_EQ(line.at("scope"), "baton.plan");
  EXPECT_EQ(line.at("msg"), "planned");
  EXPECT_EQ(line.at("steps"), 3);
}

TEST_F(LogTest, MessageContextIsCarriedAndInheritedByChildren) {
  auto envelope = make_envelope("phase.plan.in", 1, EnvelopeOptions{.tenant_id = "acme"});
  const auto handling = Logger().child("plan").for_message(envelope).with("phase", "plan");
  handling.child("ai").warn("slow answer");
  const auto line = lines().at(0);
  EXPECT_EQ(line.at("scope"), "baton.plan.ai");
  EXPECT_EQ(line.at("corr_id").as_string(), envelope.corr_id);
  EXPECT_EQ(line.at("tenant_id"), "acme");
  EXPECT_EQ(line.at("msg_id").as_string(), envelope.id);
  EXPECT_EQ(line.at("phase"), "plan");
  EXPECT_EQ(line.at("level"), "warn");
}

TEST_F(LogTest, LevelsFilter) {
  set_level(Level::warn);
  Logger logger;
  logger.debug("no");
  logger.info("no");
  logger.warn("yes");
  logger.error("yes");
  const auto written = lines();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[1].at("level"), "error");
  EXPECT_EQ(parse_level("debug"), Level::debug);
  EXPECT_FALSE(parse_level("verbose"));
}

TEST_F(LogTest, RegisteredSecretsAreMaskedEverywhere) {
  register_secret("sk-live-123456");
  Logger().with("url", "https://user:sk-live-123456@host").info("calling with sk-live-123456",
                                                                {{"nested", {{"list", {"x sk-live-123456 y"}}}}});
  const auto line = lines().at(0);
  EXPECT_EQ(line.at("msg"), "calling with ***");
  EXPECT_EQ(line.at("url"), "https://user:***@host");
  EXPECT_EQ(line.at("nested").at("list").at(0), "x *** y");
}

TEST_F(LogTest, SecretLookingFieldsAreMaskedWhateverTheirValue) {
  Logger().info("connect", {{"password", "hunter2"}, {"api_key", "abc"}, {"Authorization", "Bearer x"},
                            {"access-token", 12345}, {"user", "alice"}});
  const auto line = lines().at(0);
  EXPECT_EQ(line.at("password"), "***");
  EXPECT_EQ(line.at("api_key"), "***");
  EXPECT_EQ(line.at("Authorization"), "***");
  EXPECT_EQ(line.at("access-token"), "***");
  EXPECT_EQ(line.at("user"), "alice");
}

TEST_F(LogTest, CallerFieldsNeverOverwriteTheLinesOwn) {
  Logger().info("real", {{"msg", "fake"}, {"level", "debug"}});
  const auto line = lines().at(0);
  EXPECT_EQ(line.at("msg"), "real");
  EXPECT_EQ(line.at("level"), "info");
  EXPECT_EQ(line.at("x_msg"), "fake");
  EXPECT_EQ(line.at("x_level"), "debug");
}

TEST_F(LogTest, TextIsEscaped) {
  Logger().info("quote \" newline \n tab \t");
  EXPECT_EQ(lines().at(0).at("msg"), "quote \" newline \n tab \t");
}

}  // namespace
}  // namespace baton::log
