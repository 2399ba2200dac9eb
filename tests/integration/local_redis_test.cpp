// The private redis-server of tests, the demo and the bench (app::LocalRedisServer): it runs as a
// service of its own would, yet never outlives the process that started it.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "support/proc_stat.hpp"
#include "support/recorder.hpp"
#include "support/redis_server.hpp"

namespace baton::test {
namespace {

TEST(LocalRedisServer, RunsInASessionOfItsOwn) {
  // In our session it would share one autogroup CPU share with every thread of its owner, and a
  // busy owner starves it (docs/BENCHMARKS.md, round 10).
  RedisServer server({.append_only = false});
  EXPECT_EQ(::getsid(server.pid()), server.pid());
  EXPECT_NE(::getsid(server.pid()), ::getsid(0));
  EXPECT_EQ(server.cli({"PING"}), "PONG\n");
}

TEST(LocalRedisServer, DiesWithAnOwnerThatDiesWithoutStoppingIt) {
  int channel[2];
  ASSERT_EQ(::pipe(channel), 0);
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(channel[0]);
    // Never destroyed: the owner exits as a crash would, without stopping its server.
    auto* server = new RedisServer({.append_only = false});
    const std::string report = std::to_string(server->pid()) + " " + server->directory().string();
    const auto written = ::write(channel[1], report.data(), report.size());
    ::_exit(written == static_cast<ssize_t>(report.size()) ? 0 : 1);
  }
  ::close(channel[1]);
  std::string report(4096, '\0');
  const auto got = ::read(channel[0], report.data(), report.size());
  ::close(channel[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0 && got > 0) << "the owner did not start its server";
  report.resize(static_cast<std::size_t>(got));
  const pid_t server = std::stoi(report);
  const std::filesystem::path folder = report.substr(report.find(' ') + 1);
  ASSERT_GT(server, 0);
  // Gone, or a zombie nobody reaped yet (a container's first process may not reap orphans).
  EXPECT_TRUE(eventually([&] { return !running(server); })) << "redis-server " << server << " outlived its owner";
  if (running(server)) ::kill(server, SIGKILL);
  std::error_code ignored;
  std::filesystem::remove_all(folder, ignored);
}

}  // namespace
}  // namespace baton::test
