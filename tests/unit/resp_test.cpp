#include <gtest/gtest.h>

#include "connection/connection.hpp"
#include "detail/resp.hpp"

namespace baton::adapters::redis::detail {
namespace {

Reply parse_one(std::string_view bytes) {
  RespParser parser;
  parser.feed(bytes);
  auto reply = parser.next();
  EXPECT_TRUE(reply) << reply.error().message();
  EXPECT_TRUE(reply && *reply) << "incomplete";
  return reply && *reply ? **reply : Reply{};
}

Error parse_error(std::string_view bytes, RespLimits limits = {}) {
  RespParser parser(limits);
  parser.feed(bytes);
  auto reply = parser.next();
  EXPECT_FALSE(reply) << "parsed although it should not";
  return reply ? Error{} : reply.error();
}

TEST(Resp, EncodesCommandsAsBulkArrays) {
  EXPECT_EQ(encode_command({"SET", "k", "a\r\nb"}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
  EXPECT_EQ(encode_command({"X", ""}), "*2\r\n$1\r\nX\r\n$0\r\n\r\n");
}

TEST(Resp, ParsesEveryReplyType) {
  EXPECT_EQ(parse_one("+OK\r\n").text, "OK");
  EXPECT_EQ(parse_one("+OK\r\n").kind, Reply::Kind::simple_string);
  const auto error = parse_one("-WRONGPASS invalid username-password pair\r\n");
  EXPECT_TRUE(error.is_error());
  EXPECT_EQ(error.text, "WRONGPASS invalid username-password pair");
  EXPECT_EQ(parse_one(":-42\r\n").integer, -42);
  EXPECT_EQ(parse_one("$5\r\nhe\r\no\r\n").text, "he\r\no");
  EXPECT_EQ(parse_one("$-1\r\n").kind, Reply::Kind::nil);
  EXPECT_EQ(parse_one("*-1\r\n").kind, Reply::Kind::nil_array);
  EXPECT_EQ(parse_one("*0\r\n").elements.size(), 0u);
}

TEST(Resp, ParsesNestedArrays) {
  const auto reply = parse_one("*2\r\n*2\r\n$3\r\nabc\r\n:1\r\n*1\r\n$-1\r\n");
  ASSERT_EQ(reply.elements.size(), 2u);
  EXPECT_EQ(reply.elements[0].elements[0].text, "abc");
  EXPECT_EQ(reply.elements[0].elements[1].integer, 1);
  EXPECT_TRUE(reply.elements[1].elements[0].is_nil());
}

TEST(Resp, WaitsForBytesSplitAnywhere) {
  const std::string bytes = "*3\r\n$5\r\nhello\r\n:7\r\n+OK\r\n+NEXT\r\n";
  for (std::size_t split = 1; split < bytes.size(); ++split) {
    RespParser parser;
    parser.feed(std::string_view(bytes).substr(0, split));
    auto first = parser.next();
    ASSERT_TRUE(first);
    if (!*first) {
      parser.feed(std::string_view(bytes).substr(split));
      first = parser.next();
      ASSERT_TRUE(first && *first) << "split at " << split;
    } else {
      parser.feed(std::string_view(bytes).substr(split));
    }
    EXPECT_EQ((*first)->elements.size(), 3u) << "split at " << split;
    auto second = parser.next();
    ASSERT_TRUE(second && *second) << "split at " << split;
    EXPECT_EQ((*second)->text, "NEXT");
  }
}

TEST(Resp, RefusesADeclaredArrayOverTheLimitWithoutAllocating) {
  // hiredis 0.14 tries to allocate ~4.4 GB for this header; we refuse it from the header alone.
  const auto error = parse_error("*555555552\r\n");
  EXPECT_EQ(error, errc::decode_failed);
  EXPECT_EQ(error.detail, "redis protocol: an array of 555555552 elements is over the limit of 1048576");
}

TEST(Resp, RefusesABulkOverTheLimit) {
  RespLimits limits;
  limits.max_bulk_bytes = 10;
  EXPECT_EQ(parse_error("$11\r\n", limits).detail, "redis protocol: a bulk string of 11 bytes is over the limit of 10");
}

TEST(Resp, RefusesNestingOverTheLimit) {
  RespLimits limits;
  limits.max_depth = 3;
  EXPECT_EQ(parse_error("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits).detail, "redis protocol: arrays nest deeper than 3");
}

TEST(Resp, RefusesGarbage) {
  EXPECT_EQ(parse_error("?what\r\n").detail, "redis protocol: unknown reply type byte '?'");
  EXPECT_EQ(parse_error(":12a\r\n").detail, "redis protocol: integer reply \"12a\" is not a number");
  EXPECT_EQ(parse_error("$-2\r\n").detail, "redis protocol: bulk length \"-2\" is not valid");
  EXPECT_EQ(parse_error("$3\r\nabcd\r\n").detail, "redis protocol: a bulk string is not followed by CRLF");
  RespLimits limits;
  limits.max_line_bytes = 8;
  EXPECT_EQ(parse_error("+0123456789", limits).detail, "redis protocol: a line longer than 8 bytes");
}

TEST(Resp, StaysBrokenAfterAnError) {
  RespParser parser;
  parser.feed("?bad\r\n+OK\r\n");
  EXPECT_FALSE(parser.next());
  EXPECT_FALSE(parser.next());
}

Reply error_reply(std::string text) { return Reply{.kind = Reply::Kind::error, .text = std::move(text)}; }

TEST(ErrorReplies, AreTypedByTheirPrefixAndNameTheirCommand) {
  const auto denied = error_from_reply("XLEN", error_reply("NOPERM this user has no permissions to access one of the keys"));
  EXPECT_EQ(denied, errc::permission_denied);
  EXPECT_EQ(denied.message(), "permission denied: XLEN: NOPERM this user has no permissions to access one of the keys");
  EXPECT_EQ(error_from_reply("GET", error_reply("LOADING Redis is loading the dataset in memory")), errc::unavailable);
  EXPECT_EQ(error_from_reply("XADD", error_reply("ERR something else")), errc::invalid_argument);
}

// Pointed at one node of a cluster of several shards, a key of another shard's slot comes back as
// a redirect, which alone reads like a fault of the key or the command.
TEST(ErrorReplies, AClusterRedirectSaysBatonDoesNotFollowIt) {
  for (const std::string redirect : {"MOVED 13606 127.0.0.1:6392", "ASK 13606 127.0.0.1:6392"}) {
    const auto error = error_from_reply("EVALSHA", error_reply(redirect));
    EXPECT_EQ(error, errc::invalid_argument) << "a redirect does not go away by waiting";
    EXPECT_EQ(error.message(), "invalid argument: EVALSHA: " + redirect +
                                   " (the key's slot is served by another node of this Redis Cluster; Baton does not follow"
                                   " cluster redirects yet: use a standalone server or a cluster of one shard)");
  }
}

}  // namespace
}  // namespace baton::adapters::redis::detail
