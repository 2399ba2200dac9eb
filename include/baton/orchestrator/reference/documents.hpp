#pragma once
// The payloads the reference pipeline (plan -> code -> certify -> deploy) hands from phase to phase,
// with their JSON shapes, and the checks of what an AI answers. Converting from JSON is strict: a
// missing field or a field of the wrong type is an error naming its path ("plan.files[1].path").

#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/result.hpp"

namespace baton::reference {

// What `baton submit` sends: {"task": "..."}.
struct TaskRequest {
  std::string task;
};

struct PlannedFile {
  std::string path;     // relative to the workspace
  std::string purpose;
};

struct Plan {
  std::string summary;
  std::vector<std::string> steps;
  std::vector<PlannedFile> files;
};

// Plan -> Code, and Certify -> Code for another round with what failed.
struct CodeRequest {
  std::string task;
  Plan plan;
  int round = 0;                       // 0 for the first version
  std::vector<std::string> findings;   // why the previous round failed certification
};

struct FileDigest {
  std::string path;        // relative to the workspace
  std::uint64_t bytes = 0;
  std::string digest;      // FNV-1a 64 of the content, hex: tells versions apart, not a security hash
};

// Code -> Certify.
struct Workspace {
  std::string task;
  Plan plan;
  int round = 0;
  std::string folder;               // "workspaces/<corr_id>"
  std::vector<FileDigest> files;
};

// Certify -> Deploy.
struct Certified {
  std::string task;
  int rounds = 1;                   // how many versions it took
  std::string folder;
  std::vector<FileDigest> files;
  std::string check;                // what certification ran and saw
};

// Deploy -> pipeline.completed, and the release record kept in the KV store.
struct Release {
  std::string corr_id;
  std::string tenant_id;
  std::string release;              // "releases/<corr_id>"
  std::vector<FileDigest> files;
  int rounds = 1;
  std::string deployed_at;          // RFC 3339
};

struct GeneratedFile {
  std::string path;
  std::string content;
};

// A model's answer as a plan: one JSON object (a ```json fence around it is tolerated), a summary,
// at least one step, 1-20 files with distinct workspace-relative paths. The error says what and where.
Result<Plan> parse_plan(std::string_view answer);

// A model's answer as files: {"files":[{"path","content"}]}, every path one of the plan's, none twice.
Result<std::vector<GeneratedFile>> parse_files(std::string_view answer, const Plan& plan);

// Why `path` cannot be a workspace path (relative, '/'-separated, no "."/".." or empty segments,
// letters, digits and "._-" only, at most 200 bytes), or empty when it can.
std::string workspace_path_problem(std::string_view path);

std::string content_digest(std::string_view content);

#define BATON_REFERENCE_JSON(Type)                                                 \
  void tag_invoke(boost::json::value_from_tag, boost::json::value&, const Type&); \
  Type tag_invoke(boost::json::value_to_tag<Type>, const boost::json::value&);
BATON_REFERENCE_JSON(TaskRequest)
BATON_REFERENCE_JSON(PlannedFile)
BATON_REFERENCE_JSON(Plan)
BATON_REFERENCE_JSON(CodeRequest)
BATON_REFERENCE_JSON(FileDigest)
BATON_REFERENCE_JSON(Workspace)
BATON_REFERENCE_JSON(Certified)
BATON_REFERENCE_JSON(Release)
#undef BATON_REFERENCE_JSON

}  // namespace baton::reference
