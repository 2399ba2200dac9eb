#include "baton/orchestrator/reference/documents.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace baton::reference {
namespace {

namespace json = boost::json;

// Strict readers: each failure names the field's path.
const json::object& object_at(const json::value& value, const std::string& where) {
  if (!value.is_object()) throw std::invalid_argument((where.empty() ? std::string("payload") : where) + ": expected an object");
  return value.get_object();
}

const json::value& field(const json::value& value, const std::string& where, std::string_view name) {
  const auto* found = object_at(value, where).if_contains(name);
  if (!found) throw std::invalid_argument((where.empty() ? "" : where + ".") + std::string(name) + ": missing");
  return *found;
}

std::string text_field(const json::value& value, const std::string& where, std::string_view name) {
  const auto& found = field(value, where, name);
  if (!found.is_string()) throw std::invalid_argument((where.empty() ? "" : where + ".") + std::string(name) + ": expected a string");
  return std::string(found.get_string());
}

std::int64_t integer_field(const json::value& value, const std::string& where, std::string_view name) {
  const auto& found = field(value, where, name);
  if (found.is_int64()) return found.get_int64();
  if (found.is_uint64() && found.get_uint64() <= INT64_MAX) return static_cast<std::int64_t>(found.get_uint64());
  throw std::invalid_argument((where.empty() ? "" : where + ".") + std::string(name) + ": expected an integer");
}

template <class T, class Read>
std::vector<T> array_field(const json::value& value, const std::string& where, std::string_view name, Read read) {
  const std::string path = (where.empty() ? "" : where + ".") + std::string(name);
  const auto& found = field(value, where, name);
  if (!found.is_array()) throw std::invalid_argument(path + ": expected an array");
  std::vector<T> items;
  std::size_t index = 0;
  for (const auto& item : found.get_array()) items.push_back(read(item, path + "[" + std::to_string(index++) + "]"));
  return items;
}

std::string read_text(const json::value& value, const std::string& where) {
  if (!value.is_string()) throw std::invalid_argument(where + ": expected a string");
  return std::string(value.get_string());
}

PlannedFile read_planned_file(const json::value& value, const std::string& where) {
  return {text_field(value, where, "path"), text_field(value, where, "purpose")};
}

Plan read_plan(const json::value& value, const std::string& where) {
  return {text_field(value, where, "summary"), array_field<std::string>(value, where, "steps", read_text),
          array_field<PlannedFile>(value, where, "files", read_planned_file)};
}

FileDigest read_digest(const json::value& value, const std::string& where) {
  return {text_field(value, where, "path"), static_cast<std::uint64_t>(integer_field(value, where, "bytes")),
          text_field(value, where, "digest")};
}

json::array digests_json(const std::vector<FileDigest>& files) {
  json::array out;
  for (const auto& file : files) out.push_back(json::value_from(file));
  return out;
}

// The JSON object in a model's answer: the text itself, or the inside of a ``` fence.
Result<json::value> answer_json(std::string_view answer) {
  std::string_view body = answer;
  if (const auto fence = body.find("```"); fence != std::string_view::npos) {
    const auto start = body.find('\n', fence);
    const auto end = start == std::string_view::npos ? std::string_view::npos : body.find("```", start);
    if (end != std::string_view::npos) body = body.substr(start + 1, end - start - 1);
  }
  boost::system::error_code error;
  auto parsed = json::parse(body, error);
  if (error) return Error{errc::decode_failed, "the answer is not one JSON object: " + error.message()};
  if (!parsed.is_object()) return Error{errc::decode_failed, "the answer is JSON but not an object"};
  return parsed;
}

}  // namespace

std::string workspace_path_problem(std::string_view path) {
  if (path.empty()) return "is empty";
  if (path.size() > 200) return "is longer than 200 bytes";
  if (path.front() == '/') return "must be relative (no leading '/')";
  for (const char c : path) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-' && c != '/') {
      return "may hold only letters, digits, '.', '_', '-' and '/'";
    }
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    const auto segment = path.substr(start, end - start);
    if (segment.empty()) return "has an empty segment";
    if (segment == "." || segment == "..") return "may not hold \".\" or \"..\" (it must stay in the workspace)";
    start = end + 1;
  }
  return {};
}

std::string content_digest(std::string_view content) {
  std::uint64_t hash = 1469598103934665603ull;
  for (const unsigned char c : content) hash = (hash ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

Result<Plan> parse_plan(std::string_view answer) {
  auto value = answer_json(answer);
  if (!value) return std::move(value).error();
  Plan plan;
  try {
    plan = read_plan(*value, "plan");
  } catch (const std::invalid_argument& problem) {
    return Error{errc::decode_failed, problem.what()};
  }
  if (plan.summary.empty()) return Error{errc::invalid_argument, "plan.summary: must not be empty"};
  if (plan.steps.empty()) return Error{errc::invalid_argument, "plan.steps: at least one step is required"};
  if (plan.files.empty() || plan.files.size() > 20) {
    return Error{errc::invalid_argument, "plan.files: 1 to 20 files are required, got " + std::to_string(plan.files.size())};
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < plan.files.size(); ++i) {
    const auto& path = plan.files[i].path;
    const auto where = "plan.files[" + std::to_string(i) + "].path \"" + path + "\": ";
    if (const auto problem = workspace_path_problem(path); !problem.empty()) return Error{errc::invalid_argument, where + problem};
    if (!seen.insert(path).second) return Error{errc::invalid_argument, where + "named twice"};
  }
  return plan;
}

Result<std::vector<GeneratedFile>> parse_files(std::string_view answer, const Plan& plan) {
  auto value = answer_json(answer);
  if (!value) return std::move(value).error();
  std::vector<GeneratedFile> files;
  try {
    files = array_field<GeneratedFile>(*value, "answer", "files", [](const json::value& item, const std::string& where) {
      return GeneratedFile{text_field(item, where, "path"), text_field(item, where, "content")};
    });
  } catch (const std::invalid_argument& problem) {
    return Error{errc::decode_failed, problem.what()};
  }
  std::set<std::string> planned, seen;
  for (const auto& file : plan.files) planned.insert(file.path);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto where = "answer.files[" + std::to_string(i) + "].path \"" + files[i].path + "\": ";
    if (!planned.contains(files[i].path)) return Error{errc::invalid_argument, where + "is not a file of the plan"};
    if (!seen.insert(files[i].path).second) return Error{errc::invalid_argument, where + "named twice"};
  }
  return files;
}

void tag_invoke(json::value_from_tag, json::value& out, const TaskRequest& task) { out = {{"task", task.task}}; }
TaskRequest tag_invoke(json::value_to_tag<TaskRequest>, const json::value& value) { return {text_field(value, "", "task")}; }

void tag_invoke(json::value_from_tag, json::value& out, const PlannedFile& file) {
  out = {{"path", file.path}, {"purpose", file.purpose}};
}
PlannedFile tag_invoke(json::value_to_tag<PlannedFile>, const json::value& value) { return read_planned_file(value, "file"); }

void tag_invoke(json::value_from_tag, json::value& out, const Plan& plan) {
  json::array steps(plan.steps.begin(), plan.steps.end());
  json::array files;
  for (const auto& file : plan.files) files.push_back(json::value_from(file));
  out = {{"summary", plan.summary}, {"steps", std::move(steps)}, {"files", std::move(files)}};
}
Plan tag_invoke(json::value_to_tag<Plan>, const json::value& value) { return read_plan(value, "plan"); }

void tag_invoke(json::value_from_tag, json::value& out, const CodeRequest& request) {
  out = {{"task", request.task}, {"plan", json::value_from(request.plan)}, {"round", request.round},
         {"findings", json::array(request.findings.begin(), request.findings.end())}};
}
CodeRequest tag_invoke(json::value_to_tag<CodeRequest>, const json::value& value) {
  return {text_field(value, "", "task"), read_plan(field(value, "", "plan"), "plan"),
          static_cast<int>(integer_field(value, "", "round")), array_field<std::string>(value, "", "findings", read_text)};
}

void tag_invoke(json::value_from_tag, json::value& out, const FileDigest& file) {
  out = {{"path", file.path}, {"bytes", file.bytes}, {"digest", file.digest}};
}
FileDigest tag_invoke(json::value_to_tag<FileDigest>, const json::value& value) { return read_digest(value, "file"); }

void tag_invoke(json::value_from_tag, json::value& out, const Workspace& workspace) {
  out = {{"task", workspace.task}, {"plan", json::value_from(workspace.plan)}, {"round", workspace.round},
         {"folder", workspace.folder}, {"files", digests_json(workspace.files)}};
}
Workspace tag_invoke(json::value_to_tag<Workspace>, const json::value& value) {
  return {text_field(value, "", "task"), read_plan(field(value, "", "plan"), "plan"),
          static_cast<int>(integer_field(value, "", "round")), text_field(value, "", "folder"),
          array_field<FileDigest>(value, "", "files", read_digest)};
}

void tag_invoke(json::value_from_tag, json::value& out, const Certified& certified) {
  out = {{"task", certified.task}, {"rounds", certified.rounds}, {"folder", certified.folder},
         {"files", digests_json(certified.files)}, {"check", certified.check}};
}
Certified tag_invoke(json::value_to_tag<Certified>, const json::value& value) {
  return {text_field(value, "", "task"), static_cast<int>(integer_field(value, "", "rounds")), text_field(value, "", "folder"),
          array_field<FileDigest>(value, "", "files", read_digest), text_field(value, "", "check")};
}

void tag_invoke(json::value_from_tag, json::value& out, const Release& release) {
  out = {{"corr_id", release.corr_id}, {"tenant_id", release.tenant_id}, {"release", release.release},
         {"files", digests_json(release.files)}, {"rounds", release.rounds}, {"deployed_at", release.deployed_at}};
}
Release tag_invoke(json::value_to_tag<Release>, const json::value& value) {
  return {text_field(value, "", "corr_id"), text_field(value, "", "tenant_id"), text_field(value, "", "release"),
          array_field<FileDigest>(value, "", "files", read_digest), static_cast<int>(integer_field(value, "", "rounds")),
          text_field(value, "", "deployed_at")};
}

}  // namespace baton::reference
