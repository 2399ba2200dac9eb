// What the reference pipeline accepts from a model, and the offline provider's answers.

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include "baton/adapters/ai/offline_ai.hpp"
#include "baton/orchestrator/reference/documents.hpp"

namespace baton::reference {
namespace {

std::string problem_of(std::string_view answer) {
  auto plan = parse_plan(answer);
  return plan ? std::string() : plan.error().detail;
}

TEST(ReferenceDocuments, APlanIsReadFromTheAnswerEvenInsideAFence) {
  auto plan = parse_plan("Here it is:\n```json\n{\"summary\":\"s\",\"steps\":[\"a\"],\"files\":[{\"path\":\"src/x.cpp\",\"purpose\":\"p\"}]}\n```\n");
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->files.at(0).path, "src/x.cpp");
}

TEST(ReferenceDocuments, EveryInvalidPlanSaysWhatAndWhere) {
  EXPECT_EQ(problem_of("not json"), "the answer is not one JSON object: syntax error");
  EXPECT_EQ(problem_of("[1]"), "the answer is JSON but not an object");
  EXPECT_EQ(problem_of(R"({"steps":[],"files":[]})"), "plan.summary: missing");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":"one","files":[]})"), "plan.steps: expected an array");
  EXPECT_EQ(problem_of(R"({"summary":"","steps":["a"],"files":[{"path":"a","purpose":"p"}]})"), "plan.summary: must not be empty");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":[],"files":[{"path":"a","purpose":"p"}]})"), "plan.steps: at least one step is required");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":["a"],"files":[]})"), "plan.files: 1 to 20 files are required, got 0");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":["a"],"files":[{"path":"a","purpose":"p"},{"path":"../b","purpose":"p"}]})"),
            "plan.files[1].path \"../b\": may not hold \".\" or \"..\" (it must stay in the workspace)");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":["a"],"files":[{"path":"/etc/x","purpose":"p"}]})"),
            "plan.files[0].path \"/etc/x\": must be relative (no leading '/')");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":["a"],"files":[{"path":"a","purpose":"p"},{"path":"a","purpose":"q"}]})"),
            "plan.files[1].path \"a\": named twice");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":["a"],"files":[{"path":"a b","purpose":"p"}]})"),
            "plan.files[0].path \"a b\": may hold only letters, digits, '.', '_', '-' and '/'");
  EXPECT_EQ(problem_of(R"({"summary":"s","steps":["a"],"files":[{"purpose":"p"}]})"), "plan.files[0].path: missing");
}

TEST(ReferenceDocuments, FilesMustBeThePlansOwn) {
  const Plan plan{"s", {"a"}, {{"a.txt", "p"}, {"b.txt", "p"}}};
  EXPECT_TRUE(parse_files(R"({"files":[{"path":"a.txt","content":"x"}]})", plan)) << "a missing file is certify's finding";
  EXPECT_EQ(parse_files(R"({"files":[{"path":"c.txt","content":"x"}]})", plan).error().detail,
            "answer.files[0].path \"c.txt\": is not a file of the plan");
  EXPECT_EQ(parse_files(R"({"files":[{"path":"a.txt"}]})", plan).error().detail, "answer.files[0].content: missing");
}

TEST(ReferenceDocuments, PayloadsRoundTripAndMissingFieldsAreNamed) {
  const CodeRequest request{"t", Plan{"s", {"a"}, {{"a.txt", "p"}}}, 2, {"missing file b"}};
  const auto back = boost::json::value_to<CodeRequest>(boost::json::value_from(request));
  EXPECT_EQ(back.round, 2);
  EXPECT_EQ(back.findings.at(0), "missing file b");
  EXPECT_EQ(back.plan.files.at(0).path, "a.txt");
  try {
    (void)boost::json::value_to<CodeRequest>(boost::json::value{{"task", "t"}, {"round", 0}, {"findings", boost::json::array{}}});
    FAIL() << "a CodeRequest without a plan was accepted";
  } catch (const std::exception& error) {
    EXPECT_STREQ(error.what(), "plan: missing");
  }
}

TEST(OfflineAi, AnswersThePlanFormatDeterministicallyAndNamesItself) {
  auto ai = adapters::ai::make_offline_ai();
  ports::CompletionRequest request;
  request.system = "plan please\nbaton-format: plan/v1\n";
  request.messages = {{"user", "Task: write a greeting"}};
  auto first = ai->complete(request);
  auto second = ai->complete(request);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->text, second->text);
  EXPECT_EQ(first->model, "baton-offline");
  EXPECT_EQ(ai->provider(), "offline");
  EXPECT_GT(first->usage.input_tokens, 0u);
  auto plan = parse_plan(first->text);
  ASSERT_TRUE(plan) << plan.error().message();
  EXPECT_EQ(plan->files.size(), 3u);

  request.messages = {{"user", "Task: an unplannable mess"}};
  EXPECT_FALSE(parse_plan(ai->complete(request)->text)) << "a poison task gets an invalid plan";
}

TEST(OfflineAi, AnswersTheFilesFormatWithThePlannedFiles) {
  auto ai = adapters::ai::make_offline_ai();
  const Plan plan{"s", {"a"}, {{"README.md", "p"}, {"bin/x.sh", "p"}}};
  ports::CompletionRequest request;
  request.system = "baton-format: files/v1";
  request.messages = {{"user", "Task: t\nPlan: " + boost::json::serialize(boost::json::value_from(plan)) +
                                   "\nThe previous version failed certification:\n- missing file bin/x.sh\n"}};
  auto answer = ai->complete(request);
  ASSERT_TRUE(answer);
  auto files = parse_files(answer->text, plan);
  ASSERT_TRUE(files) << files.error().message();
  EXPECT_EQ(files->size(), 2u) << "an answer to findings is complete";
}

}  // namespace
}  // namespace baton::reference
