#pragma once
// Baton's configuration: one TOML file plus environment overrides, checked strictly.
//
//   bus = "redis://127.0.0.1:6379"      # memory:// | redis://... | rediss://... | unix://...
//   kv  = "redis://127.0.0.1:6379"
//   [pipeline]  phases = ["plan", "code", "certify", "deploy"]   space = "phase"
//   [storage]   root = "./baton-data"  leftovers_after_ms = 3600000
//   [secrets]   source = "env"                                    # NAME, or the file named by NAME_FILE
//   [ai]        provider = "offline"  base_url = ""  model = ""  api_key_secret = "BATON_AI_API_KEY"
//               timeout_ms = 120000  connect_timeout_ms = 10000  requests_per_second = 0  max_concurrent = 8
//               max_tokens = 4096  answer_attempts = 3  ca_file = ""
//   [certify]   command = ""  timeout_ms = 60000  max_rounds = 3
//   [delivery]  reclaim_idle_ms = 30000  readers = 2  read_count = 256  direct_publishers = 4
//   [log]       level = "info"
//   [phases.plan]  concurrency = 4  timeout_ms = 60000  max_attempts = 5  base_delay_ms = 100
//
// Every key has an environment override named BATON_ and the key path in capitals with "_" for
// "." (BATON_BUS, BATON_STORAGE_ROOT, BATON_PHASES_PLAN_CONCURRENCY; lists are comma-separated).
// An unknown key (in the file or as a BATON_ variable), a value of the wrong type, a bad URL or a
// missing required value is an error that names the key and where it came from.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "baton/core/result.hpp"

namespace baton::app {

struct PhaseSettings {
  int concurrency = 1;
  std::chrono::milliseconds timeout{60'000};
  int max_attempts = 5;
  std::chrono::milliseconds base_delay{100};
};

struct Config {
  std::string bus = "memory://";
  std::string kv = "memory://";
  std::vector<std::string> phases = {"plan", "code", "certify", "deploy"};
  std::string space = "phase";
  std::string storage_root = "./baton-data";
  // `baton run` removes what writes cut short by a crash left in the storage once it has not
  // changed for this long, at start and then as often; 0: never.
  std::int64_t storage_leftovers_after_ms = 3'600'000;
  std::string secrets_source = "env";
  std::string ai_provider = "offline";
  std::string ai_base_url;
  std::string ai_model;
  std::string ai_api_key_secret = "BATON_AI_API_KEY";
  std::string ai_ca_file;                             // empty: the system's trusted CAs
  std::int64_t ai_timeout_ms = 120'000;               // one whole completion, retries included
  std::int64_t ai_connect_timeout_ms = 10'000;
  std::int64_t ai_requests_per_second = 0;            // client-side rate limit; 0 = none
  std::int64_t ai_max_concurrent = 8;                 // requests in flight at once per process
  std::int64_t ai_max_tokens = 4096;
  std::int64_t ai_answer_attempts = 3;                // answers asked for before an invalid one is final
  std::string certify_command;                        // run over the workspace; empty = structural checks only
  std::int64_t certify_timeout_ms = 60'000;
  std::int64_t certify_max_rounds = 3;
  std::int64_t reclaim_idle_ms = 30'000;              // an entry idle this long belongs to a dead worker
  // The Redis bus's speed settings (RedisBusOptions, docs/BENCHMARKS.md): reader threads per
  // subscription, entries per read, and publishing threads that get a connection of their own.
  std::int64_t readers = 2;
  std::int64_t read_count = 256;
  std::int64_t direct_publishers = 4;
  std::string log_level = "info";
  std::map<std::string, PhaseSettings> phase_settings;  // by phase name; absent = defaults

  PhaseSettings settings_for(const std::string& phase) const;
};

using Environment = std::map<std::string, std::string>;

// The process environment's BATON_* variables.
Environment baton_environment();

// Reads `path` (when given) and applies `environment` on top. Errors name the key and the source.
Result<Config> load_config(const std::optional<std::string>& path, const Environment& environment);

// The effective configuration as TOML, with passwords in URLs masked.
std::string render_config(const Config& config);

}  // namespace baton::app
