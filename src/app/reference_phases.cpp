#include "baton/app/phase_registry.hpp"
#include "baton/orchestrator/reference/phases.hpp"

namespace baton::app {

void register_reference_phases(PhaseRegistry& registry, const Runtime& runtime) {
  const auto& config = runtime.config;
  reference::ReferenceSettings settings;
  settings.model = config.ai_model;
  settings.max_tokens = static_cast<int>(config.ai_max_tokens);
  settings.ai_timeout = std::chrono::milliseconds{config.ai_timeout_ms};
  settings.answer_attempts = static_cast<int>(config.ai_answer_attempts);
  settings.certify_command = config.certify_command;
  settings.certify_timeout = std::chrono::milliseconds{config.certify_timeout_ms};
  settings.max_rounds = static_cast<int>(config.certify_max_rounds);
  if (runtime.pipeline) {
    const auto& phases = runtime.pipeline->phases();
    if (std::find(phases.begin(), phases.end(), "code") != phases.end()) settings.revise_topic = runtime.pipeline->input_topic("code");
  }
  const auto add = [&](const std::string& name, PhaseFactory factory) {
    if (!registry.contains(name)) registry.add(name, std::move(factory));
  };
  add("plan", phase_factory<reference::PlanPhase>(settings));
  add("code", phase_factory<reference::CodePhase>(settings));
  add("certify", phase_factory<reference::CertifyPhase>(settings));
  add("deploy", phase_factory<reference::DeployPhase>(settings));
}

}  // namespace baton::app
