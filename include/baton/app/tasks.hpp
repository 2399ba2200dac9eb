#pragma once
// Tasks as an operator sees them: submitting one, and reading where it went (its trace).

#include <boost/json/array.hpp>
#include <string>

#include "baton/app/bootstrap.hpp"

namespace baton::app {

// Publishes {"task": text} to the pipeline's first phase for `tenant` and records "submitted" in
// its trace (a trace that cannot be written is not a failure of the submit: the note says so).
struct Submitted {
  JsonEnvelope envelope;
  std::string note;  // non-empty when something besides the publish went wrong
};
Result<Submitted> submit_task(const Runtime& runtime, const std::string& tenant, const std::string& text);

// Where a task is now, from its trace events: "waiting for phase code", "completed",
// "in the dead letters of phase plan (...)".
std::string whereabouts(const orchestrator::Pipeline& pipeline, const boost::json::array& events);

// The trace as text, one line per event, then "now: <whereabouts>".
std::string trace_text(const orchestrator::Pipeline& pipeline, const boost::json::array& events);

}  // namespace baton::app
