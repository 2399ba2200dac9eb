#include <gtest/gtest.h>

#include "baton/adapters/redis/redis_baseline.hpp"

namespace baton::adapters::redis {
namespace {

// As Redis 7.0 answers INFO cpu.
constexpr std::string_view info_cpu =
    "# CPU\r\nused_cpu_sys_children:7.500000\r\nused_cpu_sys:1.264557\r\nused_cpu_user:2.374027\r\n"
    "used_cpu_user_children:9.000000\r\nused_cpu_sys_main_thread:1.1\r\nused_cpu_user_main_thread:2.2\r\n";

TEST(ServerCpu, IsTheServersSystemAndUserTimeNotItsChildrens) {
  const auto seconds = server_cpu_seconds_of_info(info_cpu);
  ASSERT_TRUE(seconds) << seconds.error().message();
  EXPECT_DOUBLE_EQ(*seconds, 1.264557 + 2.374027);
}

TEST(ServerCpu, AReplyWithoutTheFiguresSaysWhichIsMissingOrWrong) {
  const auto missing = server_cpu_seconds_of_info("# CPU\r\nused_cpu_sys:1.0\r\nused_cpu_user_children:9.0\r\n");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "decode failed: INFO cpu: no used_cpu_user in the reply");
  const auto garbled = server_cpu_seconds_of_info("used_cpu_sys:1.0\r\nused_cpu_user:1.5s\r\n");
  ASSERT_FALSE(garbled);
  EXPECT_EQ(garbled.error().message(), "decode failed: INFO cpu: used_cpu_user is not a number of seconds: \"1.5s\"");
  const auto negative = server_cpu_seconds_of_info("used_cpu_sys:-1\nused_cpu_user:1\n");
  EXPECT_FALSE(negative);
}

}  // namespace
}  // namespace baton::adapters::redis
