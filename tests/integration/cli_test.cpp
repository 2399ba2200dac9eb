// The baton command against a real redis-server, run as a user would run it.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <boost/json/parse.hpp>
#include <cstdio>

#include "support/redis_server.hpp"

#ifndef BATON_EXECUTABLE
#error "BATON_EXECUTABLE must name the baton executable"
#endif

namespace {

struct Run {
  int exit_code = -1;
  std::string output;
};

Run baton(const baton::test::RedisServer& server, const std::string& arguments) {
  const std::string command = "BATON_BUS='" + server.url() + "' BATON_KV='" + server.url() + "' " + BATON_EXECUTABLE + " " +
                              arguments + " 2>/dev/null";
  Run run;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::array<char, 4096> chunk{};
    while (const auto got = std::fread(chunk.data(), 1, chunk.size(), pipe)) run.output.append(chunk.data(), got);
    const int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return run;
}

TEST(Cli, SubmitPrintsTheCorrelationIdOfAStoredTask) {
  baton::test::RedisServer server({.append_only = false});
  const auto submitted = baton(server, "submit --tenant acme 'write a parser'");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  const std::string corr_id = submitted.output.substr(0, submitted.output.find('\n'));
  ASSERT_EQ(corr_id.size(), 36u) << submitted.output;
  const auto stored = server.cli({"XRANGE", "baton:{phase}:phase.plan.in", "-", "+"});
  EXPECT_NE(stored.find(corr_id), std::string::npos) << stored;
  EXPECT_NE(stored.find("write a parser"), std::string::npos) << stored;

  const auto json = baton(server, "submit --json 'second task'");
  ASSERT_EQ(json.exit_code, 0);
  const auto object = boost::json::parse(json.output).as_object();
  EXPECT_EQ(object.at("topic"), "phase.plan.in");
  EXPECT_EQ(object.at("tenant_id"), "default");
}

TEST(Cli, SubmitRefusesABadTenant) {
  baton::test::RedisServer server({.append_only = false});
  EXPECT_EQ(baton(server, "submit --tenant 'a:b' task").exit_code, 2);
}

TEST(Cli, DeadLettersAreListedAndShown) {
  baton::test::RedisServer server({.append_only = false});
  EXPECT_EQ(baton(server, "dlq list --json").output, "[]\n");
  const auto id = server.cli({"XADD", "baton:{phase}:phase.code.in.dlq", "*", "original", "{}", "reason", "permanent_failure",
                              "error", "the plan names no files", "attempts", "1", "failed_at", "2026-11-27T20:00:00.000Z",
                              "topic", "phase.code.in", "group", "code", "consumer", "c1", "source_id", "1-0"});
  const std::string letter_id = id.substr(0, id.find('\n'));
  const auto listed = baton(server, "dlq list --json");
  ASSERT_EQ(listed.exit_code, 0);
  const auto letters = boost::json::parse(listed.output).as_array();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].at("phase"), "code");
  EXPECT_EQ(letters[0].at("reason"), "permanent_failure");
  const auto shown = baton(server, "dlq show " + letter_id);
  ASSERT_EQ(shown.exit_code, 0);
  EXPECT_NE(shown.output.find("the plan names no files"), std::string::npos);
  EXPECT_EQ(baton(server, "dlq show 0-1").exit_code, 1);
  EXPECT_EQ(baton(server, "dlq list --phase nope").exit_code, 2);
}

TEST(Cli, HealthIsZeroOnlyWhenEveryPortAnswers) {
  baton::test::RedisServer server({.append_only = false});
  const auto healthy = baton(server, "health --json");
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
  EXPECT_NE(healthy.output.find("\"healthy\":true"), std::string::npos);
  server.stop();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(baton(server, "health").exit_code, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{5}) << "an unreachable server must be reported within 5 s";
}

}  // namespace
