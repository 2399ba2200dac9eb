// The envelope codec: a round trip, and every way decoding can refuse its input, with the exact error.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "baton/core/codec.hpp"

namespace baton {
namespace {

namespace json = boost::json;

JsonEnvelope sample() {
  auto envelope = make_envelope("phase.plan.in", json::value{{"task", "write a parser"}, {"n", 3}},
                                EnvelopeOptions{.tenant_id = "acme", .headers = {{"traceparent", "00-aa-bb-01"}}});
  return envelope;
}

// The wire form of `sample()` as a JSON object, to break one field at a time.
json::object wire() { return json::parse(encode(sample())).as_object(); }

DecodeError decode_error(const json::object& object, const CodecLimits& limits = {}) {
  auto result = decode(json::serialize(object), limits);
  EXPECT_FALSE(result) << "decoded although it should not";
  return result ? DecodeError{} : result.error();
}

DecodeError decode_error(std::string_view text, const CodecLimits& limits = {}) {
  auto result = decode(text, limits);
  EXPECT_FALSE(result) << "decoded although it should not";
  return result ? DecodeError{} : result.error();
}

TEST(Codec, RoundTripKeepsEveryField) {
  const auto sent = sample();
  auto back = decode(encode(sent));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->id, sent.id);
  EXPECT_EQ(back->type, sent.type);
  EXPECT_EQ(back->corr_id, sent.corr_id);
  EXPECT_EQ(back->causation_id, sent.causation_id);
  EXPECT_EQ(back->tenant_id, sent.tenant_id);
  EXPECT_EQ(back->ts, sent.ts);
  EXPECT_EQ(back->attempts, sent.attempts);
  EXPECT_EQ(back->headers, sent.headers);
  EXPECT_EQ(back->payload, sent.payload);
}

TEST(Codec, WireFormHasVersionAndRfc3339Timestamp) {
  auto object = wire();
  EXPECT_EQ(object.at("v"), 1);
  const auto ts = std::string(object.at("ts").as_string());
  EXPECT_EQ(ts.size(), 24u);
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ(ts[19], '.');
}

// encode writes its text field by field; it must be exactly what Boost.JSON writes for the
// envelope as one object in wire order, escapes included (quotes, backslashes, control characters,
// UTF-8), for any number of headers and any payload.
TEST(Codec, EncodedTextIsBoostJsonsTextOfTheEnvelopeObject) {
  const auto as_object = [](const JsonEnvelope& envelope) {
    json::object headers;
    for (const auto& [name, value] : envelope.headers) headers.emplace(name, value);
    json::object object;
    object.emplace("v", envelope_wire_version);
    object.emplace("id", envelope.id);
    object.emplace("type", envelope.type);
    object.emplace("corr_id", envelope.corr_id);
    object.emplace("causation_id", envelope.causation_id);
    object.emplace("tenant_id", envelope.tenant_id);
    object.emplace("ts", format_rfc3339(envelope.ts));
    object.emplace("attempts", envelope.attempts);
    object.emplace("headers", std::move(headers));
    object.emplace("payload", envelope.payload);
    return json::serialize(object);
  };
  auto plain = sample();
  EXPECT_EQ(encode(plain), as_object(plain));

  auto awkward = sample();
  awkward.headers = {{"quote\"name", "back\\slash"}, {"ctl", std::string("a\x01b\nc\td", 7)}, {"utf8", "caf\xc3\xa9 \xe2\x82\xac"},
                     {"empty", ""}, {"long", std::string(300, 'h')}};
  awkward.attempts = 4294967295u;
  awkward.payload = json::value{{"text", "line\none \"two\" \\ \x7f"}, {"list", json::array{1, -2, 3.5, nullptr, true, "x"}},
                                {"deep", {{"a", {{"b", {{"c", json::array{}}}}}}}}, {"big", std::string(5000, 'p')}};
  EXPECT_EQ(encode(awkward), as_object(awkward));

  auto bare = sample();
  bare.headers.clear();
  bare.causation_id.clear();
  bare.payload = nullptr;
  EXPECT_EQ(encode(bare), as_object(bare));
  const auto back = decode(encode(awkward));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->headers, awkward.headers);
  EXPECT_EQ(back->payload, awkward.payload);
}

TEST(Codec, NotJson) {
  const auto error = decode_error(std::string_view("{\"v\":1,"));
  EXPECT_EQ(error.problem, DecodeProblem::not_json);
  EXPECT_EQ(error.field, "");
  EXPECT_EQ(error.message().rfind("envelope: not JSON: ", 0), 0u) << error.message();
}

TEST(Codec, EmptyText) {
  EXPECT_EQ(decode_error(std::string_view("")).problem, DecodeProblem::not_json);
}

TEST(Codec, NotAnObject) {
  const auto error = decode_error(std::string_view("[1,2,3]"));
  EXPECT_EQ(error.problem, DecodeProblem::not_object);
  EXPECT_EQ(error.message(), "envelope: expected a JSON object, got array");
}

TEST(Codec, TooDeep) {
  std::string text = "{\"v\":1,\"payload\":";
  for (int i = 0; i < 100; ++i) text += "[";
  for (int i = 0; i < 100; ++i) text += "]";
  text += "}";
  const auto error = decode_error(text);
  EXPECT_EQ(error.problem, DecodeProblem::not_json);
  EXPECT_EQ(error.message(), "envelope: nests deeper than 64 levels");
}

TEST(Codec, MissingVersion) {
  auto object = wire();
  object.erase("v");
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::missing_field);
  EXPECT_EQ(error.message(), "envelope field \"v\": required");
}

TEST(Codec, VersionOfWrongType) {
  auto object = wire();
  object["v"] = "1";
  EXPECT_EQ(decode_error(object).message(), "envelope field \"v\": expected an integer, got string");
}

TEST(Codec, UnknownVersion) {
  auto object = wire();
  object["v"] = 2;
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::unsupported_version);
  EXPECT_EQ(error.message(), "envelope field \"v\": version 2 is not supported (this build reads version 1)");
}

TEST(Codec, UnknownField) {
  auto object = wire();
  object["priority"] = 5;
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::unknown_field);
  EXPECT_EQ(error.message(), "envelope field \"priority\": not a field of envelope version 1");
}

class CodecMissingField : public ::testing::TestWithParam<const char*> {};

TEST_P(CodecMissingField, IsNamed) {
  auto object = wire();
  object.erase(GetParam());
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::missing_field);
  EXPECT_EQ(error.field, GetParam());
  EXPECT_EQ(error.message(), std::string("envelope field \"") + GetParam() + "\": required");
}

INSTANTIATE_TEST_SUITE_P(EveryField, CodecMissingField,
                         ::testing::Values("id", "type", "corr_id", "causation_id", "tenant_id", "ts", "attempts",
                                           "headers", "payload"));

class CodecStringFieldOfWrongType : public ::testing::TestWithParam<const char*> {};

TEST_P(CodecStringFieldOfWrongType, IsNamed) {
  auto object = wire();
  object[GetParam()] = 42;
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::wrong_type);
  EXPECT_EQ(error.message(), std::string("envelope field \"") + GetParam() + "\": expected string, got integer");
}

INSTANTIATE_TEST_SUITE_P(EveryStringField, CodecStringFieldOfWrongType,
                         ::testing::Values("id", "type", "corr_id", "causation_id", "tenant_id", "ts"));

TEST(Codec, AttemptsOfWrongType) {
  auto object = wire();
  object["attempts"] = "1";
  EXPECT_EQ(decode_error(object).message(), "envelope field \"attempts\": expected an integer, got string");
  object["attempts"] = 1.5;
  EXPECT_EQ(decode_error(object).message(), "envelope field \"attempts\": expected an integer, got number");
}

TEST(Codec, AttemptsBelowOne) {
  auto object = wire();
  object["attempts"] = 0;
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::invalid_value);
  EXPECT_EQ(error.message(), "envelope field \"attempts\": must be at least 1, got 0");
  object["attempts"] = -3;
  EXPECT_EQ(decode_error(object).message(), "envelope field \"attempts\": must be at least 1, got -3");
}

TEST(Codec, AttemptsTooLarge) {
  auto object = wire();
  object["attempts"] = 4294967296;
  EXPECT_EQ(decode_error(object).message(), "envelope field \"attempts\": over 4294967295");
}

TEST(Codec, HeadersOfWrongType) {
  auto object = wire();
  object["headers"] = json::array{"traceparent"};
  EXPECT_EQ(decode_error(object).message(), "envelope field \"headers\": expected an object of strings, got array");
}

TEST(Codec, HeaderValueOfWrongType) {
  auto object = wire();
  object["headers"] = json::object{{"retries", 3}};
  EXPECT_EQ(decode_error(object).message(), "envelope field \"headers.retries\": expected string, got integer");
}

TEST(Codec, BadId) {
  auto object = wire();
  object["id"] = "not-a-uuid";
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::invalid_value);
  EXPECT_EQ(error.message(), "envelope field \"id\": not a UUID in 8-4-4-4-12 hexadecimal form");
}

TEST(Codec, EmptyType) {
  auto object = wire();
  object["type"] = "";
  EXPECT_EQ(decode_error(object).message(), "envelope field \"type\": must not be empty");
}

TEST(Codec, TypeWithEmptySegment) {
  auto object = wire();
  object["type"] = "phase..in";
  EXPECT_EQ(decode_error(object).message(),
            "envelope field \"type\": has an empty segment (\"..\", or a leading or trailing dot)");
}

TEST(Codec, TypeWithBadCharacter) {
  auto object = wire();
  object["type"] = "phase plan";
  EXPECT_EQ(decode_error(object).message(),
            "envelope field \"type\": may hold only letters, digits, '_', '-' and dots between segments");
}

TEST(Codec, TenantThatCouldEscapeItsKeyPrefix) {
  auto object = wire();
  object["tenant_id"] = "acme:*";
  EXPECT_EQ(decode_error(object).message(), "envelope field \"tenant_id\": may hold only letters, digits, '_' and '-'");
}

TEST(Codec, EmptyCorrelationId) {
  auto object = wire();
  object["corr_id"] = "";
  EXPECT_EQ(decode_error(object).message(), "envelope field \"corr_id\": must not be empty");
}

TEST(Codec, CorrelationIdWithHashTagBraces) {
  auto object = wire();
  object["corr_id"] = "{slot}";
  EXPECT_EQ(decode_error(object).message(),
            "envelope field \"corr_id\": may hold only letters, digits, '_', '-', '.' and ':'");
}

TEST(Codec, BadCausationId) {
  auto object = wire();
  object["causation_id"] = "a b";
  EXPECT_EQ(decode_error(object).field, "causation_id");
}

TEST(Codec, BadTimestamp) {
  auto object = wire();
  object["ts"] = "yesterday";
  const auto error = decode_error(object);
  EXPECT_EQ(error.problem, DecodeProblem::invalid_value);
  EXPECT_EQ(error.message(),
            "envelope field \"ts\": not an RFC 3339 timestamp (like 2026-11-27T20:37:34.123Z): \"yesterday\"");
  object["ts"] = "2026-02-30T00:00:00.000Z";
  EXPECT_EQ(decode_error(object).field, "ts");
}

TEST(Codec, TooManyHeaders) {
  auto object = wire();
  json::object headers;
  for (int i = 0; i < 65; ++i) headers["h" + std::to_string(i)] = "x";
  object["headers"] = headers;
  EXPECT_EQ(decode_error(object).message(), "envelope field \"headers\": more than 64 entries");
}

TEST(Codec, PayloadOverTheLimit) {
  auto object = wire();
  object["payload"] = std::string(2000, 'x');
  CodecLimits limits;
  limits.max_payload_bytes = 1000;
  const auto error = decode_error(object, limits);
  EXPECT_EQ(error.problem, DecodeProblem::too_large);
  EXPECT_EQ(error.message(), "envelope field \"payload\": 2002 bytes, over the limit of 1000");
}

TEST(Codec, HugeTextIsRefusedBeforeParsing) {
  const std::string text(3 << 20, ' ');
  const auto error = decode_error(text);
  EXPECT_EQ(error.problem, DecodeProblem::too_large);
  EXPECT_EQ(error.field, "payload");
}

TEST(Codec, PayloadAtTheLimitIsAccepted) {
  auto object = wire();
  object["payload"] = std::string(998, 'x');  // 1000 bytes with its quotes
  CodecLimits limits;
  limits.max_payload_bytes = 1000;
  EXPECT_TRUE(decode(json::serialize(object), limits));
}

TEST(Codec, NullPayloadIsAValue) {
  auto object = wire();
  object["payload"] = nullptr;
  auto result = decode(json::serialize(object));
  ASSERT_TRUE(result);
  EXPECT_TRUE(result->payload.is_null());
}

TEST(Codec, DecodeErrorBecomesAPermanentError) {
  const auto error = decode_error(std::string_view("nope")).to_error();
  EXPECT_EQ(error, errc::decode_failed);
  EXPECT_FALSE(is_retryable(error));
}

TEST(Codec, EncodeValidatedChecksAndEncodesInOnePass) {
  const auto envelope = sample();
  auto text = encode_validated(envelope);
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text, encode(envelope));

  auto bad = sample();
  bad.type = "no spaces";
  auto refused = encode_validated(bad);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().field, "type");

  auto big = sample();
  big.payload = std::string(2000, 'x');
  CodecLimits limits;
  limits.max_payload_bytes = 1000;
  auto too_large = encode_validated(big, limits);
  ASSERT_FALSE(too_large);
  EXPECT_EQ(too_large.error().message(), "envelope field \"payload\": 2002 bytes, over the limit of 1000");
  limits.max_payload_bytes = 2002;
  EXPECT_TRUE(encode_validated(big, limits)) << "exactly at the limit is allowed";
}

TEST(Codec, ValidateReportsLikeDecode) {
  auto envelope = sample();
  envelope.tenant_id = "";
  auto result = validate(envelope);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message(), "envelope field \"tenant_id\": must not be empty");
  EXPECT_TRUE(validate(sample()));
}

}  // namespace
}  // namespace baton
