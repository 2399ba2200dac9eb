#include "baton/orchestrator/reference/phases.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <functional>
#include <map>
#include <set>

#include "baton/core/keys.hpp"
#include "baton/core/once.hpp"
#include "baton/core/time.hpp"

namespace baton::reference {
namespace {

namespace json = boost::json;
using orchestrator::Context;

constexpr std::string_view plan_system_prompt =
    "You are the planning phase of a software pipeline: turn the task into a short plan.\n"
    "baton-format: plan/v1\n"
    "Answer with one JSON object and nothing else: {\"summary\": string, \"steps\": [string, ...], "
    "\"files\": [{\"path\": string, \"purpose\": string}, ...]}. 1 to 20 files; each path relative to the "
    "workspace, '/'-separated, letters, digits and ._- only, without '..'.";

constexpr std::string_view code_system_prompt =
    "You are the coding phase of a software pipeline: write the files of the plan.\n"
    "baton-format: files/v1\n"
    "Answer with one JSON object and nothing else: {\"files\": [{\"path\": string, \"content\": string}, ...]}, "
    "one entry for every file of the plan, with exactly the planned paths.";

// One completion, counted in the phase's metrics and logged with the provider and the usage.
Result<ports::CompletionResponse> ask(Context& context, const ReferenceSettings& settings, std::string_view system,
                                      const std::vector<ports::AiMessage>& messages) {
  if (!context.ports.ai) return permanent_failure("no AI provider is configured for this phase");
  ports::CompletionRequest request;
  request.model = settings.model;
  request.system = std::string(system);
  request.messages = messages;
  request.max_tokens = settings.max_tokens;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(context.deadline - std::chrono::steady_clock::now());
  request.timeout = std::max(std::chrono::milliseconds{1}, std::min(settings.ai_timeout, left));
  if (context.metrics) ++context.metrics->ai_requests;
  auto answer = context.ports.ai->complete(request);
  if (!answer) {
    if (context.metrics) ++context.metrics->ai_errors;
    context.logger.warn("ai call failed", {{"provider", context.ports.ai->provider()}, {"error", answer.error().message()}});
    return answer;
  }
  if (context.metrics) {
    context.metrics->ai_input_tokens += answer->usage.input_tokens;
    context.metrics->ai_output_tokens += answer->usage.output_tokens;
  }
  context.logger.info("ai answered", {{"provider", context.ports.ai->provider()}, {"model", answer->model},
                                      {"input_tokens", answer->usage.input_tokens}, {"output_tokens", answer->usage.output_tokens},
                                      {"stop_reason", answer->stop_reason}});
  return answer;
}

// Asks until `accept` takes an answer, feeding each rejection back, up to settings.answer_attempts.
template <class T, class Accept>
Result<T> ask_until_valid(Context& context, const ReferenceSettings& settings, std::string_view system,
                          std::vector<ports::AiMessage> messages, std::string_view what, Accept accept) {
  std::string last_problem;
  for (int answer_number = 1; answer_number <= std::max(1, settings.answer_attempts); ++answer_number) {
    if (context.stop.stop_requested()) return Error{errc::cancelled, "stopped"};
    auto answer = ask(context, settings, system, messages);
    if (!answer) return std::move(answer).error();
    auto accepted = accept(answer->text);
    if (accepted) return accepted;
    last_problem = accepted.error().detail;
    context.logger.warn("ai answer rejected", {{"what", what}, {"answer", answer_number}, {"problem", last_problem}});
    messages.push_back({"assistant", answer->text});
    messages.push_back({"user", "That answer is not valid: " + last_problem +
                                    ". Answer again with the corrected JSON object only."});
  }
  return permanent_failure("no valid " + std::string(what) + " after " + std::to_string(settings.answer_attempts) +
                           " answers; the last problem: " + last_problem);
}

std::string folder_of(const JsonEnvelope& envelope, std::string_view kind) { return std::string(kind) + "/" + envelope.corr_id; }

// The model's accepted answer, asked for once per `name` of this task and kept in the KV store
// with once(): a redelivery (the worker died, or the hand-off failed) gets the same answer instead
// of paying for another call and maybe getting a different one. The lease is owned by the
// message's envelope id, so a redelivery of a message whose worker died inside the call takes it
// over at once instead of waiting it out. Without a KV store, it just asks.
Result<json::value> kept_answer(Context& context, const ReferenceSettings& settings, std::string_view kind, const std::string& name,
                                const std::function<Result<json::value>()>& ask_for_it) {
  if (!context.ports.kv) return ask_for_it();
  OnceOptions once_options;
  once_options.lease_ttl = settings.ai_timeout * std::max(1, settings.answer_attempts) + std::chrono::seconds{10};
  once_options.stop = context.stop;
  once_options.owner = context.envelope.id;
  const auto key = keys::tenant_key(context.envelope.tenant_id, kind, name);
  auto outcome = once(*context.ports.kv, key, ask_for_it, once_options);
  if (!outcome) return std::move(outcome).error();
  return std::move(outcome->value);
}


}  // namespace

std::string release_key(std::string_view tenant_id, std::string_view corr_id) {
  return keys::tenant_key(tenant_id, "release", corr_id);
}

Result<CodeRequest> PlanPhase::handle(const TaskRequest& input, Context& context) {
  if (input.task.find_first_not_of(" \t\r\n\f\v") == std::string::npos) {
    return permanent_failure(input.task.empty() ? "task: empty" : "task: only whitespace");
  }
  auto plan = kept_answer(context, settings_, "plan-answer", context.envelope.corr_id, [&]() -> Result<json::value> {
    auto accepted = ask_until_valid<Plan>(context, settings_, plan_system_prompt, {{"user", "Task: " + input.task}}, "plan",
                                          [](const std::string& answer) { return parse_plan(answer); });
    if (!accepted) return std::move(accepted).error();
    return json::value_from(*accepted);
  });
  if (!plan) return std::move(plan).error();
  try {
    return CodeRequest{input.task, json::value_to<Plan>(*plan), 0, {}};
  } catch (const std::exception& broken) {
    return permanent_failure("kept plan answer " + context.envelope.corr_id + " does not decode: " + broken.what());
  }
}

Result<Workspace> CodePhase::handle(const CodeRequest& input, Context& context) {
  if (!context.ports.storage) return permanent_failure("the code phase needs a Storage port");
  std::string prompt = "Task: " + input.task + "\nPlan: " + json::serialize(json::value_from(input.plan)) + "\n";
  if (!input.findings.empty()) {
    prompt += "The previous version failed certification:\n";
    for (const auto& finding : input.findings) prompt += "- " + finding + "\n";
    prompt += "Write every file again with these fixed.\n";
  }
  const auto generate = [&]() -> Result<json::value> {
    auto files = ask_until_valid<std::vector<GeneratedFile>>(context, settings_, code_system_prompt, {{"user", prompt}}, "set of files",
                                                             [&](const std::string& answer) { return parse_files(answer, input.plan); });
    if (!files) return std::move(files).error();
    json::array stored;
    for (const auto& file : *files) stored.push_back({{"path", file.path}, {"content", file.content}});
    return json::value(std::move(stored));
  };
  // The answer for this (task, round) is kept, so a redelivery writes the very same files.
  auto answer = kept_answer(context, settings_, "code-answer", context.envelope.corr_id + ":" + std::to_string(input.round), generate);
  if (!answer) return std::move(answer).error();

  auto& storage = *context.ports.storage;
  Workspace workspace{input.task, input.plan, input.round, folder_of(context.envelope, "workspaces"), {}};
  std::set<std::string> written;
  std::vector<ports::BlobWrite> blobs;
  for (const auto& item : answer->as_array()) {
    const std::string path(item.at("path").as_string());
    const auto& content = item.at("content").as_string();
    blobs.push_back({*written.insert(workspace.folder + "/" + path).first, content});  // paths are unique (parse_files)
    workspace.files.push_back({path, content.size(), content_digest(content)});
  }
  // One call for all of them: the store flushes each folder once, not once per file.
  if (auto put = storage.put_all(blobs); !put) return std::move(put).error();
  // What an earlier round wrote and this one did not is not part of this version.
  auto existing = storage.list(workspace.folder);
  if (!existing) return std::move(existing).error();
  for (const auto& path : *existing) {
    if (!written.contains(path)) {
      if (auto removed = storage.remove(path); !removed) return std::move(removed).error();
    }
  }
  return workspace;
}

Result<json::value> CertifyPhase::handle(const Workspace& input, Context& context) {
  if (!context.ports.storage) return permanent_failure("the certify phase needs a Storage port");
  auto& storage = *context.ports.storage;
  std::vector<std::string> findings;
  auto listed = storage.list(input.folder);
  if (!listed) return std::move(listed).error();
  std::map<std::string, std::string> files;  // workspace-relative path -> content
  for (const auto& path : *listed) {
    auto content = storage.get(path);
    if (!content) return std::move(content).error();
    files.emplace(path.substr(input.folder.size() + 1), std::move(*content));
  }
  for (const auto& planned : input.plan.files) {
    const auto found = files.find(planned.path);
    if (found == files.end()) findings.push_back("missing file " + planned.path + " (" + planned.purpose + ")");
    else if (found->second.empty()) findings.push_back("empty file " + planned.path);
  }
  for (const auto& [path, content] : files) {
    const bool planned = std::any_of(input.plan.files.begin(), input.plan.files.end(), [&](const PlannedFile& f) { return f.path == path; });
    if (!planned) findings.push_back("unexpected file " + path + " (not in the plan)");
  }

  std::string check = "structural checks passed (" + std::to_string(files.size()) + " files)";
  if (findings.empty() && !settings_.certify_command.empty()) {
    if (!context.ports.commands) return permanent_failure("certify.command is set but no command runner is wired");
    ports::CommandRequest request{settings_.certify_command, files, settings_.certify_timeout};
    auto ran = context.ports.commands->run(request);
    if (!ran) return std::move(ran).error();
    const auto tail = ran->output.size() > 2000 ? ran->output.substr(ran->output.size() - 2000) : ran->output;
    if (ran->timed_out) {
      findings.push_back("`" + settings_.certify_command + "` timed out after " + std::to_string(settings_.certify_timeout.count()) +
                         " ms; output: " + tail);
    } else if (ran->exit_code != 0) {
      findings.push_back("`" + settings_.certify_command + "` exited with " + std::to_string(ran->exit_code) + "; output: " + tail);
    } else {
      check += "; `" + settings_.certify_command + "` exited 0 in " + std::to_string(ran->elapsed.count()) + " ms";
    }
  }

  const int rounds = input.round + 1;
  if (findings.empty()) {
    return json::value_from(Certified{input.task, rounds, input.folder, input.files, check});
  }
  context.logger.warn("certification failed", {{"round", input.round}, {"findings", json::array(findings.begin(), findings.end())}});
  if (rounds >= settings_.max_rounds || settings_.revise_topic.empty()) {
    std::string all;
    for (const auto& finding : findings) all += (all.empty() ? "" : "; ") + finding;
    return permanent_failure("certification failed after " + std::to_string(rounds) + " round(s): " + all);
  }
  context.route = orchestrator::Route{settings_.revise_topic, settings_.revise_topic};
  return json::value_from(CodeRequest{input.task, input.plan, rounds, std::move(findings)});
}

Result<Release> DeployPhase::handle(const Certified& input, Context& context) {
  if (!context.ports.storage || !context.ports.kv) return permanent_failure("the deploy phase needs Storage and KVStore ports");
  auto& storage = *context.ports.storage;
  auto& kv = *context.ports.kv;
  const auto& envelope = context.envelope;
  const auto key = release_key(envelope.tenant_id, envelope.corr_id);

  const auto release_folder = folder_of(envelope, "releases");
  auto published = storage.list(release_folder);
  if (!published) return std::move(published).error();
  if (published->empty()) {
    std::vector<std::string> contents;
    contents.reserve(input.files.size());
    for (const auto& file : input.files) {
      auto content = storage.get(input.folder + "/" + file.path);
      if (!content) return std::move(content).error();
      if (content_digest(*content) != file.digest) {
        return permanent_failure("workspace file " + file.path + " changed after certification (digest " + content_digest(*content) +
                                 ", certified " + file.digest + ")");
      }
      contents.push_back(std::move(*content));
    }
    std::vector<ports::BlobWrite> blobs;
    for (std::size_t i = 0; i < input.files.size(); ++i) blobs.push_back({input.files[i].path, contents[i]});
    // Published in one step: a reader sees all of the release or nothing. A conflict means another
    // delivery published first; its release stands (the same certified files).
    auto made = storage.publish_folder(release_folder, blobs);
    if (!made && made.error() != errc::conflict) return std::move(made).error();
  }

  Release release{envelope.corr_id, envelope.tenant_id, release_folder, input.files, input.rounds, format_rfc3339(std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()))};
  // Written only if absent, so the first delivery pays one round trip and a redelivery after the
  // record was written (its folder published, so no file is copied again) hands that release on.
  auto stored = kv.cas(key, ports::absent_version, json::serialize(json::value_from(release)));
  if (!stored && stored.error() == errc::conflict) {
    auto recorded = kv.get(key);
    if (!recorded) return std::move(recorded).error();
    if (*recorded) {
      try {
        return json::value_to<Release>(json::parse((*recorded)->value));
      } catch (const std::exception& broken) {
        return permanent_failure("release record " + key + " does not decode: " + broken.what());
      }
    }
  }
  if (!stored) return std::move(stored).error();
  context.logger.info("released", {{"release", release_folder}, {"files", release.files.size()}, {"rounds", release.rounds}});
  return release;
}

}  // namespace baton::reference
