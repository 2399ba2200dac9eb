#pragma once
// The reference pipeline's coordinators, each a BaseOrchestrator:
//
//   plan:    TaskRequest -> AI -> CodeRequest (a validated plan). An invalid plan is asked for again
//            with the validation error fed back, up to answer_attempts answers, then dead-lettered.
//   code:    CodeRequest -> AI -> files under workspaces/<corr_id>/ -> Workspace. The model's answer
//            for a (task, round) is kept with once(), so a redelivery writes the same files again
//            instead of asking for new ones; files of an earlier round that are not in this one are
//            removed.
//   certify: Workspace -> structural checks (every planned file there and non-empty, nothing else)
//            and the configured command run over a copy of the workspace with a timeout. Passing:
//            Certified to deploy. Failing: a CodeRequest with the findings back to code, up to
//            max_rounds versions, then dead-lettered with the findings.
//   deploy:  Certified -> the workspace published at once as releases/<corr_id>/ (staged, then one
//            rename), the Release recorded in the KV store (set-if-absent), -> pipeline.completed.
//
// AI calls are counted in the phase's metrics (requests, errors, input and output tokens).

#include <boost/json/value.hpp>
#include <chrono>
#include <string>

#include "baton/orchestrator/base_orchestrator.hpp"
#include "baton/orchestrator/reference/documents.hpp"

namespace baton::reference {

struct ReferenceSettings {
  std::string model;                     // empty: the provider's default
  int max_tokens = 4096;
  std::chrono::milliseconds ai_timeout{120'000};
  int answer_attempts = 3;               // answers asked for per message before an invalid one is final
  std::string certify_command;           // empty: structural checks only
  std::chrono::milliseconds certify_timeout{60'000};
  int max_rounds = 3;                    // versions code may make before certify gives up
  std::string revise_topic;              // where certify sends work back (code's input topic)
};

// What the four coordinators share: their settings. Each stops in its own destructor, because
// handle() is its own.
template <class In, class Out>
class ReferencePhase : public orchestrator::BaseOrchestrator<In, Out> {
 public:
  ReferencePhase(orchestrator::Ports ports, orchestrator::PhaseOptions options, ReferenceSettings settings)
      : orchestrator::BaseOrchestrator<In, Out>(ports, std::move(options)), settings_(std::move(settings)) {}

 protected:
  ReferenceSettings settings_;
};

class PlanPhase final : public ReferencePhase<TaskRequest, CodeRequest> {
 public:
  using ReferencePhase::ReferencePhase;
  ~PlanPhase() override { stop(); }

 protected:
  Result<CodeRequest> handle(const TaskRequest& input, orchestrator::Context& context) override;
};

class CodePhase final : public ReferencePhase<CodeRequest, Workspace> {
 public:
  using ReferencePhase::ReferencePhase;
  ~CodePhase() override { stop(); }

 protected:
  Result<Workspace> handle(const CodeRequest& input, orchestrator::Context& context) override;
};

// Its output is a Certified (to deploy) or a CodeRequest (back to code), hence a JSON value.
class CertifyPhase final : public ReferencePhase<Workspace, boost::json::value> {
 public:
  using ReferencePhase::ReferencePhase;
  ~CertifyPhase() override { stop(); }

 protected:
  Result<boost::json::value> handle(const Workspace& input, orchestrator::Context& context) override;
};

class DeployPhase final : public ReferencePhase<Certified, Release> {
 public:
  using ReferencePhase::ReferencePhase;
  ~DeployPhase() override { stop(); }

 protected:
  Result<Release> handle(const Certified& input, orchestrator::Context& context) override;
};

// The KV key of a task's release record.
std::string release_key(std::string_view tenant_id, std::string_view corr_id);

}  // namespace baton::reference
