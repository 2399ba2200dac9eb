// The Redis connection against a real redis-server: pipelining, typed errors, authentication,
// reconnect after the server goes away, and timeouts.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "connection/connection.hpp"
#include "support/recorder.hpp"
#include "support/redis_server.hpp"
#include "support/unique_id.hpp"

namespace baton::adapters::redis::detail {

// Names the driver in test output (found by argument-dependent lookup, so outside the unnamed namespace).
void PrintTo(Connection::Driver driver, std::ostream* out) { *out << (driver == Connection::Driver::io_thread ? "io_thread" : "caller"); }

namespace {

using namespace std::chrono_literals;
using test::RedisServer;
using test::RedisServerOptions;

RedisOptions options_for(const RedisServer& server) { return parse_redis_url(server.url()).value(); }

// Every case runs with both drivers of the I/O: an io thread of the connection's own, and the caller.
class RedisConnection : public ::testing::TestWithParam<Connection::Driver> {};
class RedisConnectionTls : public RedisConnection {};

std::string driver_name(const ::testing::TestParamInfo<Connection::Driver>& info) {
  return info.param == Connection::Driver::io_thread ? "IoThread" : "Caller";
}
INSTANTIATE_TEST_SUITE_P(Drivers, RedisConnection, ::testing::Values(Connection::Driver::io_thread, Connection::Driver::caller), driver_name);
INSTANTIATE_TEST_SUITE_P(Drivers, RedisConnectionTls, ::testing::Values(Connection::Driver::io_thread, Connection::Driver::caller), driver_name);

TEST_P(RedisConnection, ExecutesCommands) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  ASSERT_TRUE(connection.execute({"SET", "greeting", "hello\r\nworld"}));
  auto value = connection.execute({"GET", "greeting"});
  ASSERT_TRUE(value) << value.error().message();
  EXPECT_EQ(value->text, "hello\r\nworld");
  auto missing = connection.execute({"GET", "nothing"});
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->is_nil());
}

TEST_P(RedisConnection, OverAUnixSocket) {
  const auto socket_directory = std::filesystem::temp_directory_path() / test::unique_name("sock");
  std::filesystem::create_directories(socket_directory);
  const auto path = (socket_directory / "redis.sock").string();
  RedisServer server({.append_only = false, .extra_arguments = {"--unixsocket", path, "--unixsocketperm", "700"}});
  auto options = parse_redis_url("unix://" + path + "?db=1");
  ASSERT_TRUE(options) << options.error().message();
  Connection connection(*options, GetParam());
  ASSERT_TRUE(connection.execute({"SET", "via", "unix"}));
  EXPECT_NE(server.cli({"-n", "1", "GET", "via"}).find("unix"), std::string::npos);
  std::filesystem::remove_all(socket_directory);
}

TEST_P(RedisConnection, ManyThreadsShareOnePipelinedConnection) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        if (!connection.execute({"INCR", "counter"})) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(connection.execute({"GET", "counter"})->text, "2000");
}

// Callers that time out while others wait (a stalled server) leave the connection usable for all:
// with the caller driver, whoever runs the I/O may be the one that gives up.
TEST_P(RedisConnection, ManyThreadsComeBackTogetherAfterAStall) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  ASSERT_TRUE(connection.execute({"PING"}));
  std::atomic<int> successes{0};
  std::atomic<int> successes_after{0};
  std::atomic<bool> resumed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      const auto until = std::chrono::steady_clock::now() + 20s;
      while (std::chrono::steady_clock::now() < until) {
        const bool after = resumed.load();
        if (connection.execute({"INCR", "counter"}, 200ms)) {
          ++successes;
          if (after && ++successes_after >= 6 * 20) return;
        }
      }
    });
  }
  std::this_thread::sleep_for(100ms);
  ::kill(server.pid(), SIGSTOP);
  std::this_thread::sleep_for(600ms);
  ::kill(server.pid(), SIGCONT);
  std::this_thread::sleep_for(100ms);
  resumed = true;
  for (auto& thread : threads) thread.join();
  EXPECT_GE(successes_after.load(), 6 * 20) << "the callers did not all come back after the stall";
  auto counter = connection.execute({"GET", "counter"});
  ASSERT_TRUE(counter) << counter.error().message();
  // A timed-out INCR may still have run once the server went on: at least every answered one counted.
  EXPECT_GE(std::stoi(counter->text), successes.load());
}

TEST_P(RedisConnection, PipelineKeepsReplyOrderAndPerCommandErrors) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  auto replies = connection.execute_pipeline({{"SET", "a", "1"}, {"LPUSH", "a", "x"}, {"GET", "a"}});
  ASSERT_TRUE(replies) << replies.error().message();
  ASSERT_EQ(replies->size(), 3u);
  EXPECT_EQ((*replies)[0].text, "OK");
  EXPECT_TRUE((*replies)[1].is_error());
  EXPECT_EQ((*replies)[2].text, "1");
}

TEST_P(RedisConnection, ErrorRepliesAreTypedWithTheCommand) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  ASSERT_TRUE(connection.execute({"SET", "s", "text"}));
  auto wrong = connection.execute({"lpush", "s", "x"});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error(), errc::wrong_type);
  EXPECT_EQ(wrong.error().detail.rfind("LPUSH: WRONGTYPE", 0), 0u) << wrong.error().detail;
  auto unknown = connection.execute({"NOSUCHCOMMAND"});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error(), errc::invalid_argument);
  EXPECT_TRUE(connection.execute({"PING"})) << "an error reply does not break the connection";
}

TEST_P(RedisConnection, WrongPasswordFailsFastAndStaysFailed) {
  RedisServer server({.append_only = false, .extra_arguments = {"--requirepass", "right-password"}});
  auto options = options_for(server);
  options.password = "wrong-password";
  Connection connection(options, GetParam());
  const auto started = std::chrono::steady_clock::now();
  auto first = connection.execute({"PING"});
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error(), errc::auth_failed) << first.error().message();
  EXPECT_EQ(first.error().detail.find("wrong-password"), std::string::npos) << "the password leaked into an error";
  auto second = connection.execute({"PING"});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), errc::auth_failed);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

TEST_P(RedisConnection, RightPasswordAndDatabaseAreUsed) {
  RedisServer server({.append_only = false, .extra_arguments = {"--requirepass", "right-password"}});
  auto options = options_for(server);
  options.password = "right-password";
  options.db = 2;
  Connection connection(options, GetParam());
  ASSERT_TRUE(connection.execute({"SET", "where", "db2"}));
  EXPECT_NE(server.cli({"-a", "right-password", "-n", "2", "GET", "where"}).find("db2"), std::string::npos);
  auto name = connection.execute({"CLIENT", "GETNAME"});
  ASSERT_TRUE(name);
  EXPECT_EQ(name->text, "baton");
}

TEST_P(RedisConnection, AclNoPermIsPermissionDenied) {
  RedisServer server({.append_only = false});
  server.cli({"ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+get", "+ping", "+client", "+auth"});
  auto options = options_for(server);
  options.user = "reader";
  options.password = "reader-pw";
  Connection connection(options, GetParam());
  ASSERT_TRUE(connection.execute({"GET", "x"}));
  const auto started = std::chrono::steady_clock::now();
  auto denied = connection.execute({"SET", "x", "1"});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error(), errc::permission_denied) << denied.error().message();
  EXPECT_FALSE(is_retryable(denied.error()));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

TEST_P(RedisConnection, ComesBackByItselfAfterTheServerRestarts) {
  RedisServer server;
  Connection connection(options_for(server), GetParam());
  ASSERT_TRUE(connection.execute({"SET", "kept", "yes"}));
  server.kill9();
  auto while_down = connection.execute({"GET", "kept"}, 300ms);
  ASSERT_FALSE(while_down);
  EXPECT_TRUE(is_retryable(while_down.error())) << while_down.error().message();
  server.restart();
  Result<Reply> after = Error{errc::unavailable};
  ASSERT_TRUE(test::eventually([&] {
    after = connection.execute({"GET", "kept"}, 500ms);
    return after.has_value();
  }));
  EXPECT_EQ(after->text, "yes") << "AOF replay kept the acknowledged write";
}

TEST_P(RedisConnection, NotConnectedIsUnavailableNamingTheServer) {
  RedisOptions options;
  options.port = 1;  // nothing listens there
  options.connect_timeout = 200ms;
  options.request_timeout = 300ms;
  Connection connection(options, GetParam());
  auto result = connection.execute({"PING"}, 300ms);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errc::unavailable);
  EXPECT_NE(result.error().detail.find("127.0.0.1:1"), std::string::npos) << result.error().detail;
  const auto health = connection.health();
  EXPECT_FALSE(health.ok);
}

TEST_P(RedisConnection, AStalledServerTimesOutThenRecovers) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  ASSERT_TRUE(connection.execute({"PING"}));
  ::kill(server.pid(), SIGSTOP);
  auto stalled = connection.execute({"PING"}, 200ms);
  ::kill(server.pid(), SIGCONT);
  ASSERT_FALSE(stalled);
  EXPECT_EQ(stalled.error(), errc::timeout) << stalled.error().message();
  EXPECT_TRUE(test::eventually([&] { return connection.execute({"PING"}, 500ms).has_value(); }));
}

// A server closes idle clients (its `timeout` setting, a restart of a proxy): the next call must
// go out on a fresh connection, not be written into the closed one and fail.
TEST_P(RedisConnection, ACallAfterTheServerClosedTheIdleConnectionSucceeds) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  ASSERT_TRUE(connection.execute({"SET", "kept", "yes"}));
  // Every client but redis-cli itself. The server closes them before it answers, and on loopback
  // the close is then already on this side.
  const auto killed = server.cli({"CLIENT", "KILL", "TYPE", "normal"});
  ASSERT_NE(killed.find('1'), std::string::npos) << "killed: " << killed;
  auto after = connection.execute({"GET", "kept"});
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(after->text, "yes");
}

TEST_P(RedisConnectionTls, VerifiesTheServerAndWorks) {
  RedisServer server({.append_only = false, .tls = true});
  auto options = options_for(server);
  ASSERT_TRUE(options.tls);
  Connection connection(options, GetParam());
  ASSERT_TRUE(connection.execute({"SET", "over", "tls"})) << connection.health().detail;
  EXPECT_EQ(connection.execute({"GET", "over"})->text, "tls");
  EXPECT_NE(server.cli({"GET", "over"}).find("tls"), std::string::npos);
}

TEST_P(RedisConnectionTls, AServerSignedByAnotherCaIsRefusedFast) {
  RedisServer server({.append_only = false, .tls = true});
  auto options = options_for(server);
  options.tls_ca_file = server.file("other-ca.crt").string();
  Connection connection(options, GetParam());
  const auto started = std::chrono::steady_clock::now();
  auto refused = connection.execute({"PING"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::permission_denied) << refused.error().message();
  EXPECT_NE(refused.error().detail.find("certificate verify failed"), std::string::npos) << refused.error().detail;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
}

TEST_P(RedisConnectionTls, TheCertificateMustNameTheServer) {
  RedisServer server({.append_only = false, .tls = true});
  auto options = options_for(server);
  options.tls_server_name = "redis.example.org";  // the certificate says localhost and 127.0.0.1
  Connection connection(options, GetParam());
  auto refused = connection.execute({"PING"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::permission_denied) << refused.error().message();
  EXPECT_NE(refused.error().detail.find("redis.example.org"), std::string::npos) << refused.error().detail;
}

TEST_P(RedisConnectionTls, ClientCertificateWhenTheServerAsks) {
  RedisServer server({.append_only = false, .tls = true, .tls_client_certificates = true});
  auto without = options_for(server);
  without.request_timeout = 1s;
  Connection anonymous(without, GetParam());
  EXPECT_FALSE(anonymous.execute({"PING"})) << "the server let in a client without a certificate";

  auto with = options_for(server);
  with.tls_cert_file = server.file("client.crt").string();
  with.tls_key_file = server.file("client.key").string();
  Connection identified(with, GetParam());
  auto pong = identified.execute({"PING"});
  ASSERT_TRUE(pong) << pong.error().message();
  EXPECT_EQ(pong->text, "PONG");
}

TEST_P(RedisConnectionTls, AnUnreadableCaFileIsAClearPermanentError) {
  auto options = parse_redis_url("rediss://127.0.0.1:1?ca_file=/nonexistent/ca.pem").value();
  Connection connection(options, GetParam());
  auto refused = connection.execute({"PING"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::invalid_argument);
  EXPECT_NE(refused.error().detail.find("/nonexistent/ca.pem"), std::string::npos) << refused.error().detail;
}

TEST_P(RedisConnection, ABlockingCommandWaitsForItsAnswer) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  std::thread pusher([&] {
    // Pushed only once the BLPOP is blocked in the server, so the reply is one that waited.
    test::eventually([&] { return server.cli({"INFO", "clients"}).find("blocked_clients:1") != std::string::npos; }, 5s);
    server.cli({"RPUSH", "jobs", "one"});
  });
  auto popped = connection.execute({"BLPOP", "jobs", "5"}, 6s);
  pusher.join();
  ASSERT_TRUE(popped) << popped.error().message();
  ASSERT_TRUE(popped->is_array());
  ASSERT_EQ(popped->elements.size(), 2u);
  EXPECT_EQ(popped->elements[1].text, "one");
  EXPECT_TRUE(connection.execute({"PING"})) << "the connection serves the next request";
}

// A request written behind another (a reader's next read behind its begin): the first one's replies
// come back while the second still blocks in Redis, and the second is collected once answered.
TEST(RedisConnectionDrivenByItsCaller, ARequestWrittenBehindAnotherIsAnsweredLater) {
  RedisServer server({.append_only = false});
  auto options = options_for(server);
  options.client_name = "behind";
  Connection connection(options, Connection::Driver::caller);
  auto [now, later] = connection.execute_encoded_then(encode_command({"SET", "k", "v"}) + encode_command({"GET", "k"}), 2, "SET, GET",
                                                      encode_command({"BLPOP", "jobs", "5"}), 1, "BLPOP");
  ASSERT_TRUE(now) << now.error().message();
  ASSERT_EQ(now->size(), 2u);
  EXPECT_EQ((*now)[1].text, "v");
  // The BLPOP went out with them and waits in the server, not in the client.
  ASSERT_TRUE(test::eventually([&] {
    const auto clients = server.cli({"CLIENT", "LIST"});
    return clients.find("name=behind ") != std::string::npos && clients.find("cmd=blpop") != std::string::npos;
  }, 5s)) << server.cli({"CLIENT", "LIST"});
  server.cli({"RPUSH", "jobs", "one"});
  auto popped = later.collect();
  ASSERT_TRUE(popped) << popped.error().message();
  ASSERT_EQ(popped->size(), 1u);
  ASSERT_EQ(popped->front().elements.size(), 2u);
  EXPECT_EQ(popped->front().elements[1].text, "one");
  EXPECT_TRUE(connection.execute({"PING"})) << "the connection serves the next request";
}

// The request behind fails with its connection (the server dropped it) and says so; the next call
// gets a fresh connection.
TEST(RedisConnectionDrivenByItsCaller, ARequestWrittenBehindFailsWithItsConnection) {
  RedisServer server({.append_only = false});
  auto options = options_for(server);
  options.client_name = "dropped";
  Connection connection(options, Connection::Driver::caller);
  auto [now, later] = connection.execute_encoded_then(encode_command({"PING"}), 1, "PING", encode_command({"BLPOP", "jobs", "5"}), 1, "BLPOP");
  ASSERT_TRUE(now) << now.error().message();
  ASSERT_TRUE(test::eventually([&] { return server.cli({"INFO", "clients"}).find("blocked_clients:1") != std::string::npos; }, 5s));
  server.cli({"CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"});
  auto popped = later.collect();
  ASSERT_FALSE(popped);
  EXPECT_EQ(popped.error(), errc::unavailable) << popped.error().message();
  EXPECT_NE(popped.error().message().find("BLPOP"), std::string::npos) << popped.error().message();
  EXPECT_TRUE(connection.execute({"PING"})) << "a fresh connection serves the next request";
}

// A request left in flight and never collected keeps its place in the reply order: the next call
// gets its own reply, not the abandoned one's.
TEST(RedisConnectionDrivenByItsCaller, AnUncollectedRequestKeepsItsPlaceInTheReplyOrder) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), Connection::Driver::caller);
  ASSERT_TRUE(connection.execute({"SET", "first", "1"}));
  ASSERT_TRUE(connection.execute({"SET", "second", "2"}));
  {
    auto [now, later] = connection.execute_encoded_then(encode_command({"PING"}), 1, "PING", encode_command({"GET", "first"}), 1, "GET");
    ASSERT_TRUE(now) << now.error().message();
  }
  auto second = connection.execute({"GET", "second"});
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(second->text, "2");
}

// Only a connection whose caller runs its I/O can leave a request in flight for later.
TEST(RedisConnectionDrivenByAnIoThread, RefusesToWriteARequestBehindAnother) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), Connection::Driver::io_thread);
  auto [now, later] = connection.execute_encoded_then(encode_command({"PING"}), 1, "PING", encode_command({"PING"}), 1, "PING");
  ASSERT_FALSE(now);
  EXPECT_EQ(now.error(), errc::invalid_argument);
  auto collected = later.collect();
  ASSERT_FALSE(collected);
  EXPECT_EQ(collected.error(), errc::invalid_argument);
  EXPECT_TRUE(connection.execute({"PING"}));
}

std::size_t threads_of_this_process() {
  const auto tasks = std::filesystem::directory_iterator("/proc/self/task");
  return static_cast<std::size_t>(std::distance(std::filesystem::begin(tasks), std::filesystem::end(tasks)));
}

// An address needs no lookup: Asio's resolver would start a thread of its own for it (and did,
// which was most of a new connection's time).
TEST_P(RedisConnection, AnAddressIsConnectedToWithoutALookup) {
  RedisServer server({.append_only = false});
  // ThreadSanitizer starts a thread of its own when the process makes its first one: let that
  // happen before counting.
  std::thread([] {}).join();
  const std::size_t before = threads_of_this_process();
  Connection connection(options_for(server), GetParam());
  ASSERT_TRUE(connection.execute({"PING"}));
  const std::size_t own_io_thread = GetParam() == Connection::Driver::io_thread ? 1 : 0;
  EXPECT_EQ(threads_of_this_process(), before + own_io_thread);
}

TEST_P(RedisConnection, HealthMeasuresAPing) {
  RedisServer server({.append_only = false});
  Connection connection(options_for(server), GetParam());
  const auto health = connection.health();
  EXPECT_TRUE(health.ok) << health.detail;
  EXPECT_NE(health.detail.find("PONG"), std::string::npos);
  EXPECT_GT(health.latency.count(), 0);
}

}  // namespace
}  // namespace baton::adapters::redis::detail
