#include "baton/orchestrator/pipeline.hpp"

#include <set>

#include "baton/core/envelope.hpp"

namespace baton::orchestrator {

Result<Pipeline> Pipeline::make(std::vector<std::string> phases, std::string space) {
  if (phases.empty()) return Error{errc::invalid_argument, "pipeline: no phases"};
  if (auto problem = check_type_name(space)) return Error{errc::invalid_argument, "pipeline space \"" + space + "\": " + *problem};
  std::set<std::string> seen;
  for (const auto& phase : phases) {
    if (auto problem = check_type_name(phase)) return Error{errc::invalid_argument, "pipeline phase \"" + phase + "\": " + *problem};
    if (phase.find('.') != std::string::npos) {
      return Error{errc::invalid_argument, "pipeline phase \"" + phase + "\": a phase name is one segment (no dots)"};
    }
    if (phase == "completed") return Error{errc::invalid_argument, "pipeline phase \"completed\": the name is reserved"};
    if (!seen.insert(phase).second) return Error{errc::invalid_argument, "pipeline phase \"" + phase + "\" appears twice"};
  }
  return Pipeline(std::move(phases), std::move(space));
}

std::string Pipeline::input_topic(std::string_view phase) const { return space_ + "." + std::string(phase) + ".in"; }

std::string Pipeline::completed_topic() const { return space_ + ".completed"; }

std::optional<std::size_t> Pipeline::index_of(std::string_view phase) const {
  for (std::size_t i = 0; i < phases_.size(); ++i) {
    if (phases_[i] == phase) return i;
  }
  return std::nullopt;
}

std::optional<std::string> Pipeline::output_topic(std::string_view phase) const {
  const auto at = index_of(phase);
  if (!at) return std::nullopt;
  return *at + 1 < phases_.size() ? input_topic(phases_[*at + 1]) : completed_topic();
}

std::optional<std::string> Pipeline::output_type(std::string_view phase) const {
  const auto at = index_of(phase);
  if (!at) return std::nullopt;
  return *at + 1 < phases_.size() ? "phase." + phases_[*at + 1] + ".in" : std::string(completed_type);
}

}  // namespace baton::orchestrator
