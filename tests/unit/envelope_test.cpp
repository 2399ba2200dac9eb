#include <gtest/gtest.h>

#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include "baton/core/envelope.hpp"
#include "baton/core/uuid.hpp"

namespace demo {

// A user type with Boost.JSON tag_invoke conversions, as a phase's payload would have.
struct Plan {
  std::string goal;
  std::vector<std::string> files;
};

void tag_invoke(boost::json::value_from_tag, boost::json::value& out, const Plan& plan) {
  out = {{"goal", plan.goal}, {"files", boost::json::value_from(plan.files)}};
}

Plan tag_invoke(boost::json::value_to_tag<Plan>, const boost::json::value& in) {
  const auto& object = in.as_object();
  return Plan{boost::json::value_to<std::string>(object.at("goal")),
              boost::json::value_to<std::vector<std::string>>(object.at("files"))};
}

}  // namespace demo

namespace baton {
namespace {

TEST(Envelope, MakeStartsANewStory) {
  ManualClock clock;
  auto envelope = make_envelope("phase.plan.in", boost::json::value{{"task", "x"}},
                                EnvelopeOptions{.tenant_id = "acme", .headers = {{"traceparent", "00-1-2-01"}}, .clock = &clock});
  EXPECT_TRUE(is_uuid_text(envelope.id));
  EXPECT_EQ(envelope.type, "phase.plan.in");
  EXPECT_EQ(envelope.corr_id, envelope.id);
  EXPECT_EQ(envelope.causation_id, "");
  EXPECT_EQ(envelope.tenant_id, "acme");
  EXPECT_EQ(envelope.ts, std::chrono::floor<std::chrono::milliseconds>(clock.now()));
  EXPECT_EQ(envelope.attempts, 1u);
  EXPECT_EQ(envelope.headers.at("traceparent"), "00-1-2-01");
}

TEST(Envelope, MakeKeepsAGivenCorrelationId) {
  auto envelope = make_envelope("x.y", boost::json::value(1), EnvelopeOptions{.corr_id = "order-42"});
  EXPECT_EQ(envelope.corr_id, "order-42");
  EXPECT_EQ(envelope.tenant_id, default_tenant_id);
}

TEST(Envelope, MakeRefusesBadNamesWithTheField) {
  try {
    (void)make_envelope("bad type", 1);
    FAIL() << "no throw";
  } catch (const std::invalid_argument& failure) {
    EXPECT_STREQ(failure.what(),
                 "envelope field \"type\": may hold only letters, digits, '_', '-' and dots between segments");
  }
  EXPECT_THROW((void)make_envelope("x", 1, EnvelopeOptions{.tenant_id = "a:b"}), std::invalid_argument);
  EXPECT_THROW((void)make_envelope("x", 1, EnvelopeOptions{.corr_id = "has space"}), std::invalid_argument);
}

TEST(Envelope, RetryKeepsIdentityAndCountsTheAttempt) {
  const auto first = make_envelope("x", boost::json::value("p"));
  const auto second = retry_envelope(first);
  const auto third = retry_envelope(second);
  EXPECT_EQ(third.id, first.id);
  EXPECT_EQ(third.corr_id, first.corr_id);
  EXPECT_EQ(third.ts, first.ts);
  EXPECT_EQ(third.payload, first.payload);
  EXPECT_EQ(second.attempts, 2u);
  EXPECT_EQ(third.attempts, 3u);
}

TEST(Envelope, ChildContinuesTheStory) {
  auto parent = make_envelope("phase.plan.in", boost::json::value("task"),
                              EnvelopeOptions{.tenant_id = "acme", .headers = {{"traceparent", "00-1-2-01"}}});
  parent = retry_envelope(parent);
  const auto child = child_envelope(parent, "phase.code.in", boost::json::value("plan"));
  EXPECT_NE(child.id, parent.id);
  EXPECT_EQ(child.corr_id, parent.corr_id);
  EXPECT_EQ(child.tenant_id, "acme");
  EXPECT_EQ(child.causation_id, parent.id);
  EXPECT_EQ(child.attempts, 1u);
  EXPECT_EQ(child.headers, parent.headers);
  EXPECT_EQ(child.type, "phase.code.in");
}

TEST(Envelope, TypedPayloadConvertsThroughTagInvoke) {
  const auto typed = make_envelope("phase.code.in", demo::Plan{"parser", {"a.cpp", "b.cpp"}});
  const JsonEnvelope untyped = to_untyped(typed);
  EXPECT_EQ(untyped.id, typed.id);
  EXPECT_EQ(untyped.payload.at("goal"), "parser");
  auto back = to_typed<demo::Plan>(untyped);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->payload.goal, "parser");
  EXPECT_EQ(back->payload.files, (std::vector<std::string>{"a.cpp", "b.cpp"}));
  EXPECT_EQ(back->corr_id, typed.corr_id);
}

TEST(Envelope, TypedPayloadOfWrongShapeIsADecodeError) {
  const auto untyped = make_envelope("phase.code.in", boost::json::value{{"goal", 5}});
  auto typed = to_typed<demo::Plan>(untyped);
  ASSERT_FALSE(typed);
  EXPECT_EQ(typed.error().field, "payload");
  EXPECT_EQ(typed.error().problem, DecodeProblem::wrong_type);
  EXPECT_EQ(typed.error().message().rfind("envelope field \"payload\": does not convert to the handler's type: ", 0), 0u)
      << typed.error().message();
}

TEST(Envelope, CheckFunctionsExplainTheProblem) {
  EXPECT_FALSE(check_type_name("phase.plan.in"));
  EXPECT_EQ(check_type_name(".x"), "has an empty segment (\"..\", or a leading or trailing dot)");
  EXPECT_EQ(check_type_name(std::string(129, 'a')), "longer than 128 characters");
  EXPECT_FALSE(check_tenant_id("tenant_1-a"));
  EXPECT_EQ(check_tenant_id("{x}"), "may hold only letters, digits, '_' and '-'");
  EXPECT_EQ(check_tenant_id(std::string(65, 'a')), "longer than 64 characters");
  EXPECT_FALSE(check_corr_id("order:42.v1"));
}

// Every byte is classified as the documented character sets say.
TEST(Envelope, CheckFunctionsAcceptExactlyTheirCharacters) {
  for (int byte = 0; byte < 256; ++byte) {
    const char c = static_cast<char>(byte);
    const bool name = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    const std::string one(1, c);
    EXPECT_EQ(!check_tenant_id(one), name) << "byte " << byte;
    EXPECT_EQ(!check_type_name("a" + one), name) << "byte " << byte;
    EXPECT_EQ(!check_corr_id(one), name || c == '.' || c == ':') << "byte " << byte;
  }
}

}  // namespace
}  // namespace baton
