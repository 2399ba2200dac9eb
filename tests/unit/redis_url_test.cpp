#include <gtest/gtest.h>

#include "baton/adapters/redis/redis_options.hpp"

namespace baton::adapters::redis {
namespace {

TEST(RedisUrl, HostPortAndDatabase) {
  auto options = parse_redis_url("redis://127.0.0.1:6390/3");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_EQ(options->host, "127.0.0.1");
  EXPECT_EQ(options->port, 6390);
  EXPECT_EQ(options->db, 3);
  EXPECT_TRUE(options->password.empty());
  EXPECT_EQ(options->endpoint(), "127.0.0.1:6390");
}

TEST(RedisUrl, DefaultsPort) {
  auto options = parse_redis_url("redis://localhost");
  ASSERT_TRUE(options);
  EXPECT_EQ(options->port, 6379);
  EXPECT_EQ(options->db, 0);
}

TEST(RedisUrl, AclUserAndPassword) {
  auto options = parse_redis_url("redis://worker:s3cret@127.0.0.1:6390");
  ASSERT_TRUE(options);
  EXPECT_EQ(options->user, "worker");
  EXPECT_EQ(options->password, "s3cret");
}

TEST(RedisUrl, PasswordOnly) {
  auto options = parse_redis_url("redis://:s3cret@127.0.0.1");
  ASSERT_TRUE(options);
  EXPECT_EQ(options->user, "");
  EXPECT_EQ(options->password, "s3cret");
}

TEST(RedisUrl, UnixSocket) {
  auto options = parse_redis_url("unix:///run/redis/redis.sock?db=2");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_EQ(options->unix_socket, "/run/redis/redis.sock");
  EXPECT_EQ(options->db, 2);
  EXPECT_EQ(options->endpoint(), "unix:/run/redis/redis.sock");
}

TEST(RedisUrl, ErrorsNameThePartAndNeverThePassword) {
  auto scheme = parse_redis_url("http://x");
  ASSERT_FALSE(scheme);
  EXPECT_EQ(scheme.error().detail, "redis URL (http://...): scheme \"http\" is not redis, rediss or unix");
  auto port = parse_redis_url("redis://user:hunter2@host:99999");
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().detail, "redis URL (redis://...): port \"99999\" is not 1-65535");
  EXPECT_EQ(port.error().detail.find("hunter2"), std::string::npos);
  auto db = parse_redis_url("redis://host/abc");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().detail, "redis URL (redis://...): database \"abc\" is not a non-negative number");
  EXPECT_FALSE(parse_redis_url("not a url"));
  EXPECT_FALSE(parse_redis_url("unix://relative.sock"));
}

TEST(RedisUrl, TlsWithItsFiles) {
  auto tls = parse_redis_url("rediss://worker:pw@redis.internal:6380/1?ca_file=/etc/ca.pem&cert_file=/c.pem&key_file=/k.pem&server_name=redis.example");
  ASSERT_TRUE(tls) << tls.error().message();
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->host, "redis.internal");
  EXPECT_EQ(tls->port, 6380);
  EXPECT_EQ(tls->db, 1);
  EXPECT_EQ(tls->tls_ca_file, "/etc/ca.pem");
  EXPECT_EQ(tls->tls_cert_file, "/c.pem");
  EXPECT_EQ(tls->tls_key_file, "/k.pem");
  EXPECT_EQ(tls->tls_server_name, "redis.example");
  EXPECT_FALSE(parse_redis_url("redis://host")->tls);
}

TEST(RedisUrl, TlsMistakesAreNamed) {
  auto unknown = parse_redis_url("rediss://host?cafile=/x");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().detail,
            "redis URL (rediss://...): unknown query parameter \"cafile\" (rediss:// takes ca_file, cert_file, key_file, server_name)");
  auto half = parse_redis_url("rediss://host?cert_file=/c.pem");
  ASSERT_FALSE(half);
  EXPECT_EQ(half.error().detail, "redis URL (rediss://...): cert_file and key_file go together");
  auto plain = parse_redis_url("redis://host?ca_file=/x");
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().detail, "redis URL (redis://...): query parameters are only for rediss:// URLs");
}

}  // namespace
}  // namespace baton::adapters::redis
