#pragma once
// Tasks as an operator sees them: submitting one, and reading where it went (its trace).

#include <boost/json/array.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "baton/app/bootstrap.hpp"

namespace baton::app {

// Publishes {"task": text} to the pipeline's first phase for `tenant` and records "submitted" in
// its trace (a trace that cannot be written is not a failure of the submit: the note says so).
struct Submitted {
  JsonEnvelope envelope;
  std::string note;  // non-empty when something besides the publish went wrong
};
// A task with no text (empty, or only whitespace) is refused here, errc::invalid_argument, with
// nothing published: no phase could plan it.
Result<Submitted> submit_task(const Runtime& runtime, const std::string& tenant, const std::string& text);

// What is wrong with a task's text, or nothing.
std::optional<std::string> check_task_text(std::string_view text);

// Where a task is now, from its trace events: "waiting for phase code", "completed",
// "in the dead letters of phase plan (...)".
std::string whereabouts(const orchestrator::Pipeline& pipeline, const boost::json::array& events);

// The trace as text, one line per event, then "now: <whereabouts>".
std::string trace_text(const orchestrator::Pipeline& pipeline, const boost::json::array& events);

}  // namespace baton::app
