#pragma once
// A pipeline names its phases in order; each phase consumes "<space>.<phase>.in" and hands off to
// the next phase's input, the last one to "<space>.completed" (envelope type "pipeline.completed").
// All topics of a pipeline share their first segment, so on Redis they share a hash slot and every
// hand-off is one atomic script. A partitioned deployment uses one space per partition, for example
// "acme-3.phase".

#include <optional>
#include <string>
#include <vector>

#include "baton/core/result.hpp"

namespace baton::orchestrator {

inline constexpr std::string_view completed_type = "pipeline.completed";

class Pipeline {
 public:
  // Phase names follow envelope type rules (no dots) and must be unique; errors name the phase.
  static Result<Pipeline> make(std::vector<std::string> phases, std::string space = "phase");

  const std::vector<std::string>& phases() const noexcept { return phases_; }
  std::string input_topic(std::string_view phase) const;     // "<space>.<phase>.in"
  std::string completed_topic() const;                        // "<space>.completed"
  // The topic a phase hands its output to, and the envelope type of that output.
  std::optional<std::string> output_topic(std::string_view phase) const;
  std::optional<std::string> output_type(std::string_view phase) const;
  std::string first_topic() const { return input_topic(phases_.front()); }

 private:
  Pipeline(std::vector<std::string> phases, std::string space) : phases_(std::move(phases)), space_(std::move(space)) {}
  std::optional<std::size_t> index_of(std::string_view phase) const;

  std::vector<std::string> phases_;
  std::string space_;
};

}  // namespace baton::orchestrator
