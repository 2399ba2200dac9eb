// The reference pipeline (plan -> code -> certify -> deploy) on the in-memory bus and KV, files on a
// temporary folder, the offline AI provider and local processes for certify's command.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value_to.hpp>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "baton/adapters/ai/offline_ai.hpp"
#include "baton/adapters/fs/fs_storage.hpp"
#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/memory/memory_kv.hpp"
#include "baton/adapters/process/process_runner.hpp"
#include "baton/app/phase_registry.hpp"
#include "baton/orchestrator/reference/phases.hpp"
#include "support/recorder.hpp"
#include "support/unique_id.hpp"

namespace baton::reference {
namespace {

using namespace std::chrono_literals;
namespace stdfs = std::filesystem;

// A task text for which the offline provider's first set of files leaves one out (see offline_ai.hpp).
std::string task_with_a_first_draft_slip() {
  for (int n = 0;; ++n) {
    const auto text = "slip " + std::to_string(n);
    if ((std::stoull(content_digest(text), nullptr, 16) >> 32) % 8 == 0) return text;
  }
}

std::string task_without_a_slip(int n) {
  for (int k = n;; k += 1000) {
    const auto text = "task " + std::to_string(k);
    if ((std::stoull(content_digest(text), nullptr, 16) >> 32) % 8 != 0) return text;
  }
}

class ReferencePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = stdfs::temp_directory_path() / test::unique_name("reference");
    storage_ = adapters::fs::make_fs_storage({folder_}).value();
    kv_ = adapters::memory::make_memory_kv();
    ai_ = adapters::ai::make_offline_ai();
    commands_ = adapters::process::make_process_runner();
    pipeline_.emplace(orchestrator::Pipeline::make({"plan", "code", "certify", "deploy"}).value());
    settings_.revise_topic = pipeline_->input_topic("code");
  }

  void TearDown() override {
    phases_.clear();
    completions_.stop();
    bus_.reset();
    stdfs::remove_all(folder_);
  }

  void start(adapters::memory::MemoryBusOptions bus_options = {}) {
    bus_ = adapters::memory::make_memory_bus(std::move(bus_options));
    const orchestrator::Ports ports{bus_.get(), kv_.get(), ai_.get(), storage_.get(), nullptr, commands_.get()};
    const auto options = [&](const std::string& name) {
      auto phase = orchestrator::phase_options(*pipeline_, name).value();
      phase.retry.base_delay = 1ms;
      phase.retry.max_delay = 5ms;
      phase.retry.max_attempts = 3;
      phase.concurrency = 2;
      phase.metrics = &metrics_;
      return phase;
    };
    phases_.push_back(app::phase_factory<PlanPhase>(settings_)(ports, options("plan")));
    phases_.push_back(app::phase_factory<CodePhase>(settings_)(ports, options("code")));
    phases_.push_back(app::phase_factory<CertifyPhase>(settings_)(ports, options("certify")));
    phases_.push_back(app::phase_factory<DeployPhase>(settings_)(ports, options("deploy")));
    for (auto& phase : phases_) ASSERT_TRUE(phase->start());
    ports::SubscribeOptions sink;
    sink.group = "test-sink";
    completions_ = bus_->subscribe(pipeline_->completed_topic(), [this](const JsonEnvelope& e, const ports::DeliveryInfo&) -> Result<void> {
      completed_.add(e);
      return {};
    }, sink).value();
  }

  std::string submit(const std::string& text) {
    auto task = make_envelope(pipeline_->first_topic(), boost::json::value{{"task", text}});
    EXPECT_TRUE(bus_->publish(pipeline_->first_topic(), task));
    return task.corr_id;
  }

  // What the storage holds that is no blob: temporary files and folders of writes (a put's, a
  // publish's), which a crash may leave but a finished write never does.
  std::vector<std::string> temporaries() const {
    std::vector<std::string> found;
    for (const auto& entry : stdfs::recursive_directory_iterator(folder_)) {
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) found.push_back(entry.path().lexically_relative(folder_).string());
    }
    return found;
  }

  std::vector<ports::DeadLetter> dead_letters(const std::string& phase) {
    return bus_->dead_letters(pipeline_->input_topic(phase)).value();
  }

  // The phase's one dead letter, once there is exactly one; nothing if none comes within `within`.
  std::optional<ports::DeadLetter> only_dead_letter(const std::string& phase, std::chrono::milliseconds within = 10s) {
    if (!test::eventually([&] { return dead_letters(phase).size() == 1; }, within)) return std::nullopt;
    return dead_letters(phase).front();
  }

  stdfs::path folder_;
  std::unique_ptr<ports::Storage> storage_;
  std::unique_ptr<ports::KVStore> kv_;
  std::unique_ptr<ports::AiApi> ai_;
  std::unique_ptr<ports::CommandRunner> commands_;
  std::unique_ptr<ports::MessageBus> bus_;
  std::optional<orchestrator::Pipeline> pipeline_;
  ReferenceSettings settings_;
  orchestrator::MetricsRegistry metrics_;
  std::vector<std::unique_ptr<app::RunnablePhase>> phases_;
  ports::Subscription completions_;
  test::Recorder completed_;

  Release release_of(const JsonEnvelope& completed) { return boost::json::value_to<Release>(completed.payload); }

  std::uint64_t ai_requests(const std::string& phase) { return metrics_.phase(phase).ai_requests.load(); }
};

TEST_F(ReferencePipelineTest, ATaskGoesThroughTheFourPhasesIntoAPublishedRelease) {
  start();
  const auto corr_id = submit(task_without_a_slip(1));
  ASSERT_TRUE(completed_.wait_for_count(1)) << "the task did not complete";
  const auto completed = completed_.seen().front();
  EXPECT_EQ(completed.type, "pipeline.completed");
  EXPECT_EQ(completed.corr_id, corr_id);
  const auto release = release_of(completed);
  EXPECT_EQ(release.release, "releases/" + corr_id);
  EXPECT_EQ(release.rounds, 1);
  ASSERT_EQ(release.files.size(), 3u);

  // The release holds exactly the certified files, with the certified content.
  const auto published = storage_->list("releases/" + corr_id).value();
  ASSERT_EQ(published.size(), 3u);
  for (const auto& file : release.files) {
    const auto content = storage_->get("releases/" + corr_id + "/" + file.path).value();
    EXPECT_EQ(content_digest(content), file.digest) << file.path;
    EXPECT_EQ(storage_->get("workspaces/" + corr_id + "/" + file.path).value(), content);
  }
  EXPECT_EQ(temporaries(), std::vector<std::string>{}) << "a write left something temporary behind";

  // The release record in the KV store is the same release.
  const auto record = kv_->get(release_key(completed.tenant_id, corr_id)).value();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(boost::json::value_to<Release>(boost::json::parse(record->value)).files.size(), 3u);
  EXPECT_EQ(ai_requests("plan"), 1u);
  EXPECT_EQ(ai_requests("code"), 1u);
  EXPECT_GT(metrics_.phase("code").ai_output_tokens.load(), 0u);
}

TEST_F(ReferencePipelineTest, AnInvalidPlanIsAskedForAgainWithTheProblemThenDeadLettered) {
  start();
  submit("an unplannable task");
  const auto letter = only_dead_letter("plan");
  ASSERT_TRUE(letter) << "no dead letter in phase plan";
  EXPECT_EQ(letter->reason, "permanent_failure");
  EXPECT_NE(letter->error.find("no valid plan after 3 answers"), std::string::npos) << letter->error;
  EXPECT_NE(letter->error.find("plan.summary: must not be empty"), std::string::npos) << letter->error;
  EXPECT_EQ(ai_requests("plan"), 3u) << "each invalid answer is fed back once, up to answer_attempts";
  EXPECT_EQ(completed_.count(), 0u);
}

// A task with no text cannot be planned: it goes to the dead letters at once, saying so, with no
// model asked. Whitespace alone counts as no text.
TEST_F(ReferencePipelineTest, ATaskOfOnlyWhitespaceIsDeadLetteredWithoutAskingTheModel) {
  start();
  submit(" \n\t ");
  const auto letter = only_dead_letter("plan");
  ASSERT_TRUE(letter) << "no dead letter in phase plan";
  EXPECT_EQ(letter->reason, "permanent_failure");
  EXPECT_NE(letter->error.find("task: only whitespace"), std::string::npos) << letter->error;
  EXPECT_EQ(ai_requests("plan"), 0u);
}

TEST_F(ReferencePipelineTest, AFirstVersionThatMissesAFileGoesBackToCodeWithTheFindings) {
  start();
  const auto corr_id = submit(task_with_a_first_draft_slip());
  ASSERT_TRUE(completed_.wait_for_count(1));
  const auto release = release_of(completed_.seen().front());
  EXPECT_EQ(release.rounds, 2) << "certify should have sent the first version back once";
  EXPECT_EQ(release.files.size(), 3u);
  EXPECT_EQ(ai_requests("code"), 2u);
  EXPECT_EQ(storage_->list("releases/" + corr_id).value().size(), 3u);
}

TEST_F(ReferencePipelineTest, ACertifyCommandThatKeepsFailingEndsInTheDeadLettersAfterMaxRounds) {
  settings_.certify_command = "echo 'lint: 2 problems' >&2; exit 3";
  settings_.max_rounds = 2;
  start();
  const auto corr_id = submit(task_without_a_slip(2));
  const auto letter = only_dead_letter("certify");
  ASSERT_TRUE(letter) << "no dead letter in phase certify";
  EXPECT_NE(letter->error.find("certification failed after 2 round(s)"), std::string::npos) << letter->error;
  EXPECT_NE(letter->error.find("exited with 3"), std::string::npos) << letter->error;
  EXPECT_NE(letter->error.find("lint: 2 problems"), std::string::npos) << "the command's output is in the findings";
  EXPECT_EQ(ai_requests("code"), 2u);
  EXPECT_TRUE(storage_->list("releases/" + corr_id).value().empty());
}

TEST_F(ReferencePipelineTest, TheCertifyCommandRunsOverACopyOfTheWorkspace) {
  settings_.certify_command = "test -s README.md && sh bin/*.sh";
  start();
  submit(task_without_a_slip(3));
  ASSERT_TRUE(completed_.wait_for_count(1));
  EXPECT_EQ(dead_letters("certify").size(), 0u);
  EXPECT_EQ(release_of(completed_.seen().front()).rounds, 1);
}

TEST_F(ReferencePipelineTest, ACrashBeforeEachHandOffNeitherLosesNorRepeatsAnything) {
  // The process "dies" once in every phase, after handle() returned and before its hand-off committed.
  std::mutex mutex;
  std::set<std::string> crashed_once;
  adapters::memory::MemoryBusOptions options;
  options.crash_before_commit = [&](std::string_view topic, const JsonEnvelope& envelope) {
    if (topic == "phase.completed") return false;
    std::lock_guard lock(mutex);
    return crashed_once.insert(std::string(topic) + "/" + envelope.id).second;
  };
  start(std::move(options));
  constexpr int tasks = 12;
  std::set<std::string> submitted;
  for (int n = 0; n < tasks; ++n) submitted.insert(submit(task_without_a_slip(100 + n)));
  ASSERT_TRUE(completed_.wait_for_count(tasks, 30s));
  std::map<std::string, int> per_task;
  for (const auto& e : completed_.seen()) ++per_task[e.corr_id];
  EXPECT_EQ(per_task.size(), submitted.size()) << "a task was lost";
  for (const auto& [corr_id, times] : per_task) {
    EXPECT_EQ(times, 1) << corr_id;
    EXPECT_EQ(storage_->list("releases/" + corr_id).value().size(), 3u);
  }
  // Plan and code ran twice per task, but asked the model once: the redelivery reused the kept answer.
  EXPECT_EQ(ai_requests("plan"), static_cast<std::uint64_t>(tasks));
  EXPECT_EQ(ai_requests("code"), static_cast<std::uint64_t>(tasks));
  EXPECT_EQ(temporaries(), std::vector<std::string>{});
}

// The deploy phase's hand-off "crashes" once per task after its record was written: the
// redelivery finds the record (its write is refused as already there) and hands that same release
// on, without copying a file again, and a broken record is a clear permanent failure.
TEST_F(ReferencePipelineTest, ADeployRedeliveredAfterItsRecordHandsOnTheSameRelease) {
  std::mutex mutex;
  std::set<std::string> crashed_once;
  adapters::memory::MemoryBusOptions options;
  options.crash_before_commit = [&](std::string_view topic, const JsonEnvelope& envelope) {
    if (topic != "phase.deploy.in") return false;  // the topic consumed: deploy's input
    std::lock_guard lock(mutex);
    return crashed_once.insert(envelope.corr_id).second;
  };
  start(std::move(options));
  constexpr int tasks = 4;
  for (int n = 0; n < tasks; ++n) submit(task_without_a_slip(200 + n));
  ASSERT_TRUE(completed_.wait_for_count(tasks, 30s));
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(crashed_once.size(), static_cast<std::size_t>(tasks));
  }
  std::map<std::string, int> per_task;
  for (const auto& completed : completed_.seen()) {
    ++per_task[completed.corr_id];
    const auto release = release_of(completed);
    const auto record = kv_->get(release_key(completed.tenant_id, completed.corr_id)).value();
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(boost::json::value_to<Release>(boost::json::parse(record->value)).deployed_at, release.deployed_at)
        << "the redelivery made a release of its own instead of handing on the recorded one";
    EXPECT_EQ(storage_->list(release.release).value().size(), 3u);
  }
  for (const auto& [corr_id, times] : per_task) EXPECT_EQ(times, 1) << corr_id;
  EXPECT_EQ(temporaries(), std::vector<std::string>{});
}

TEST_F(ReferencePipelineTest, ABrokenReleaseRecordIsAPermanentFailureThatNamesIt) {
  start();
  auto task = make_envelope(pipeline_->first_topic(), boost::json::value{{"task", task_without_a_slip(300)}});
  const auto key = release_key(task.tenant_id, task.corr_id);
  ASSERT_TRUE(kv_->set(key, "{not json"));
  ASSERT_TRUE(bus_->publish(pipeline_->first_topic(), task));
  const auto letter = only_dead_letter("deploy", 30s);
  ASSERT_TRUE(letter) << "no dead letter in phase deploy";
  EXPECT_EQ(letter->reason, "permanent_failure");
  EXPECT_NE(letter->error.find("release record " + key + " does not decode"), std::string::npos) << letter->error;
  EXPECT_TRUE(completed_.seen().empty());
}

// The offline model, except that the first call for files "kills the worker" inside once(): the
// exception leaves once()'s lease behind, as a SIGKILL there would.
class DiesInsideTheFirstCodeCall final : public ports::AiApi {
 public:
  explicit DiesInsideTheFirstCodeCall(std::unique_ptr<ports::AiApi> inner) : inner_(std::move(inner)) {}
  Result<ports::CompletionResponse> complete(const ports::CompletionRequest& request) override {
    if (request.system.find(ports::files_format) != std::string::npos && !died_.exchange(true)) {
      throw std::runtime_error("the worker was killed inside the model call");
    }
    return inner_->complete(request);
  }
  std::string provider() const override { return inner_->provider(); }
  ports::Health health() override { return inner_->health(); }

 private:
  std::unique_ptr<ports::AiApi> inner_;
  std::atomic<bool> died_{false};
};

TEST_F(ReferencePipelineTest, ARedeliveryTakesOverTheAnswerLeaseOfADeliveryThatDiedInsideIt) {
  ai_ = std::make_unique<DiesInsideTheFirstCodeCall>(std::move(ai_));
  start();
  const auto corr_id = submit(task_without_a_slip(300));
  // The lease lives for ai_timeout x answer_attempts + 10 s (minutes by default): completing well
  // within this wait shows the redelivery took it over instead of waiting it out.
  ASSERT_TRUE(completed_.wait_for_count(1, 20s)) << "the task waited for its own dead delivery's lease";
  EXPECT_EQ(completed_.seen().front().corr_id, corr_id);
  EXPECT_EQ(storage_->list("releases/" + corr_id).value().size(), 3u);
}

}  // namespace
}  // namespace baton::reference
