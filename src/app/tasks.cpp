#include "baton/app/tasks.hpp"

#include <boost/json/serialize.hpp>

#include "baton/orchestrator/trace.hpp"

namespace baton::app {

std::optional<std::string> check_task_text(std::string_view text) {
  if (text.empty()) return "the task is empty";
  if (text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos) return "the task is only whitespace";
  return std::nullopt;
}

Result<Submitted> submit_task(const Runtime& runtime, const std::string& tenant, const std::string& text) {
  if (auto problem = check_task_text(text)) return Error{errc::invalid_argument, "task: " + *problem};
  const auto& pipeline = *runtime.pipeline;
  Submitted submitted{make_envelope(pipeline.first_topic(), boost::json::value{{"task", text}}, EnvelopeOptions{.tenant_id = tenant}), {}};
  if (auto sent = runtime.bus->publish(pipeline.first_topic(), submitted.envelope); !sent) return std::move(sent).error();
  if (auto traced = orchestrator::record_trace_event(*runtime.kv, tenant, submitted.envelope.corr_id,
                                                     {{"event", "submitted"}, {"msg_id", submitted.envelope.id}, {"to", pipeline.first_topic()}});
      !traced) {
    submitted.note = "submitted, but its trace was not recorded: " + traced.error().message();
  }
  return submitted;
}

std::string whereabouts(const orchestrator::Pipeline& pipeline, const boost::json::array& events) {
  if (events.empty()) return "nothing recorded";
  const auto& last = events.back().as_object();
  const std::string event(last.at("event").as_string());
  if (event == "submitted") return "waiting for phase " + pipeline.phases().front();
  const std::string phase(last.at("phase").as_string());
  if (event == "dead_lettered") return "in the dead letters of phase " + phase + " (baton dlq list --phase " + phase + ")";
  if (event == "handled") {
    // The hand-off names where it went: usually the next phase, sometimes back (certify to code).
    if (const auto* to = last.if_contains("to"); to && to->is_string()) {
      if (to->get_string() == pipeline.completed_topic()) return "completed";
      for (const auto& candidate : pipeline.phases()) {
        if (to->get_string() == pipeline.input_topic(candidate)) return "waiting for phase " + candidate;
      }
    }
    const auto& phases = pipeline.phases();
    const auto at = std::find(phases.begin(), phases.end(), phase);
    if (at != phases.end() && at + 1 != phases.end()) return "waiting for phase " + *(at + 1);
    return "completed";
  }
  return "waiting for another attempt of phase " + phase;
}

std::string trace_text(const orchestrator::Pipeline& pipeline, const boost::json::array& events) {
  std::string out;
  for (const auto& item : events) {
    const auto& event = item.as_object();
    const auto text = [&](const char* field) -> std::string {
      const auto* value = event.if_contains(field);
      return value && value->is_string() ? std::string(value->as_string()) : std::string();
    };
    out += text("at") + "  " + text("event");
    if (event.contains("phase")) out += "  phase=" + text("phase");
    if (event.contains("attempt")) out += " attempt=" + boost::json::serialize(event.at("attempt"));
    if (event.contains("elapsed_ms")) out += " elapsed_ms=" + boost::json::serialize(event.at("elapsed_ms"));
    if (event.contains("to")) out += "  to=" + text("to");
    if (event.contains("error")) out += "  error: " + text("error");
    out += "\n";
  }
  return out + "now: " + whereabouts(pipeline, events) + "\n";
}

}  // namespace baton::app
