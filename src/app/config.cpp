#include "baton/app/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <functional>
#include <sstream>
#include <toml++/toml.h>

#include "baton/adapters/redis/redis_options.hpp"
#include "baton/core/log.hpp"

extern char** environ;

namespace baton::app {
namespace {

Error config_error(const std::string& key, const std::string& source, const std::string& why) {
  return {errc::invalid_argument, "config key \"" + key + "\" (" + source + "): " + why};
}

std::string env_name(const std::string& key) {
  std::string name = "BATON_";
  for (const char c : key) name.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return name;
}

// A setter per key: takes the value as text (from the environment) or as TOML (from the file).
struct Setting {
  enum class Kind { text, number, list };
  Kind kind;
  std::function<std::optional<std::string>(Config&, const std::string& text)> set_text;
  std::function<void(Config&, std::int64_t)> set_integer;
  std::function<void(Config&, std::vector<std::string>)> set_list;
};

// An integer setting in [low, high]; from the environment it is parsed from text.
Setting number(std::int64_t Config::*field, std::int64_t low, std::int64_t high) {
  return {Setting::Kind::number, [field, low, high](Config& c, const std::string& v) -> std::optional<std::string> {
            std::int64_t value = 0;
            const auto [end, error] = std::from_chars(v.data(), v.data() + v.size(), value);
            if (v.empty() || error != std::errc{} || end != v.data() + v.size()) return "expected an integer, got \"" + v + "\"";
            if (value < low || value > high) return "must be " + std::to_string(low) + "-" + std::to_string(high);
            c.*field = value;
            return std::nullopt;
          }, nullptr, nullptr};
}

Setting text(std::string Config::*field) {
  return {Setting::Kind::text, [field](Config& c, const std::string& v) -> std::optional<std::string> {
            c.*field = v;
            return std::nullopt;
          }, nullptr, nullptr};
}

std::map<std::string, Setting> top_level_settings() {
  std::map<std::string, Setting> settings;
  settings["bus"] = text(&Config::bus);
  settings["kv"] = text(&Config::kv);
  settings["pipeline.space"] = text(&Config::space);
  settings["pipeline.phases"] = {Setting::Kind::list, nullptr, nullptr,
                                 [](Config& c, std::vector<std::string> v) { c.phases = std::move(v); }};
  settings["storage.root"] = text(&Config::storage_root);
  settings["storage.leftovers_after_ms"] = number(&Config::storage_leftovers_after_ms, 0, 2'592'000'000);
  settings["secrets.source"] = text(&Config::secrets_source);
  settings["ai.provider"] = text(&Config::ai_provider);
  settings["ai.base_url"] = text(&Config::ai_base_url);
  settings["ai.model"] = text(&Config::ai_model);
  settings["ai.api_key_secret"] = text(&Config::ai_api_key_secret);
  settings["ai.ca_file"] = text(&Config::ai_ca_file);
  settings["ai.timeout_ms"] = number(&Config::ai_timeout_ms, 1, 3'600'000);
  settings["ai.connect_timeout_ms"] = number(&Config::ai_connect_timeout_ms, 1, 600'000);
  settings["ai.requests_per_second"] = number(&Config::ai_requests_per_second, 0, 1'000'000);
  settings["ai.max_concurrent"] = number(&Config::ai_max_concurrent, 1, 1024);
  settings["ai.max_tokens"] = number(&Config::ai_max_tokens, 1, 1'000'000);
  settings["ai.answer_attempts"] = number(&Config::ai_answer_attempts, 1, 20);
  settings["certify.command"] = text(&Config::certify_command);
  settings["certify.timeout_ms"] = number(&Config::certify_timeout_ms, 1, 3'600'000);
  settings["certify.max_rounds"] = number(&Config::certify_max_rounds, 1, 100);
  settings["delivery.reclaim_idle_ms"] = number(&Config::reclaim_idle_ms, 100, 86'400'000);
  settings["delivery.readers"] = number(&Config::readers, 1, 16);
  settings["delivery.read_count"] = number(&Config::read_count, 1, 10'000);
  settings["delivery.direct_publishers"] = number(&Config::direct_publishers, 0, 256);
  settings["log.level"] = text(&Config::log_level);
  return settings;
}

constexpr const char* phase_fields[] = {"concurrency", "timeout_ms", "max_attempts", "base_delay_ms"};

Result<void> set_phase_field(Config& config, const std::string& phase, const std::string& field, std::int64_t value,
                             const std::string& key, const std::string& source) {
  if (value < 0 || value > 100'000'000) return config_error(key, source, "must be between 0 and 100000000");
  auto& settings = config.phase_settings[phase];
  if (field == "concurrency") {
    if (value < 1 || value > 1024) return config_error(key, source, "must be 1-1024");
    settings.concurrency = static_cast<int>(value);
  } else if (field == "timeout_ms") {
    if (value < 1) return config_error(key, source, "must be at least 1");
    settings.timeout = std::chrono::milliseconds{value};
  } else if (field == "max_attempts") {
    settings.max_attempts = static_cast<int>(value);
  } else {
    settings.base_delay = std::chrono::milliseconds{value};
  }
  return {};
}

bool is_phase_field(const std::string& field) {
  return std::any_of(std::begin(phase_fields), std::end(phase_fields), [&](const char* f) { return field == f; });
}

std::optional<std::int64_t> parse_integer(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

Result<void> apply_file(Config& config, const std::string& path) {
  if (std::FILE* probe = std::fopen(path.c_str(), "r")) {
    std::fclose(probe);
  } else {
    return Error{errc::invalid_argument, "config file " + path + ": cannot be read"};
  }
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    std::ostringstream where;
    where << error.source().begin;
    return Error{errc::invalid_argument, "config file " + path + ": " + std::string(error.description()) + " at " + where.str()};
  }
  const auto settings = top_level_settings();
  const std::string source = path;
  std::optional<Error> failure;

  // Walks the tables: every leaf must be a known key of the right type.
  std::function<void(const toml::table&, const std::string&)> walk = [&](const toml::table& node, const std::string& prefix) {
    for (const auto& [name, value] : node) {
      if (failure) return;
      const std::string key = prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
      const auto line = " (line " + std::to_string(value.source().begin.line) + ")";
      if (key.rfind("phases.", 0) == 0 && std::count(key.begin(), key.end(), '.') == 2) {
        const auto phase = key.substr(7, key.find('.', 7) - 7);
        const auto field = key.substr(key.rfind('.') + 1);
        if (!is_phase_field(field)) {
          failure = config_error(key, source + line, "unknown key (a phase takes concurrency, timeout_ms, max_attempts, base_delay_ms)");
          return;
        }
        const auto* number = value.as_integer();
        if (!number) {
          failure = config_error(key, source + line, "expected an integer");
          return;
        }
        if (auto set = set_phase_field(config, phase, field, number->get(), key, source + line); !set) failure = set.error();
        continue;
      }
      if (const auto* child = value.as_table()) {
        walk(*child, key);
        continue;
      }
      const auto found = settings.find(key);
      if (found == settings.end()) {
        failure = config_error(key, source + line, "unknown key");
        return;
      }
      const auto& setting = found->second;
      if (setting.kind == Setting::Kind::list) {
        const auto* array = value.as_array();
        std::vector<std::string> items;
        bool all_strings = array != nullptr;
        if (array) {
          for (const auto& element : *array) {
            if (const auto* item = element.as_string()) items.push_back(item->get());
            else all_strings = false;
          }
        }
        if (!all_strings) {
          failure = config_error(key, source + line, "expected an array of strings");
          return;
        }
        setting.set_list(config, std::move(items));
      } else if (setting.kind == Setting::Kind::number) {
        const auto* integer = value.as_integer();
        if (!integer) {
          failure = config_error(key, source + line, "expected an integer");
          return;
        }
        if (auto problem = setting.set_text(config, std::to_string(integer->get()))) failure = config_error(key, source + line, *problem);
      } else {
        const auto* string = value.as_string();
        if (!string) {
          failure = config_error(key, source + line, "expected a string");
          return;
        }
        setting.set_text(config, string->get());
      }
    }
  };
  walk(table, "");
  if (failure) return *failure;
  return {};
}

Result<void> apply_environment(Config& config, const Environment& environment) {
  const auto settings = top_level_settings();
  std::vector<std::pair<std::string, std::string>> phase_variables;
  for (const auto& [name, value] : environment) {
    if (name.rfind("BATON_", 0) != 0) continue;
    bool matched = false;
    for (const auto& [key, setting] : settings) {
      if (env_name(key) != name) continue;
      matched = true;
      if (setting.kind == Setting::Kind::list) {
        setting.set_list(config, split_list(value));
      } else if (auto problem = setting.set_text(config, value)) {
        return config_error(key, "environment " + name, *problem);
      }
    }
    if (matched) continue;
    if (name.rfind("BATON_PHASES_", 0) == 0) {
      phase_variables.emplace_back(name, value);  // after BATON_PIPELINE_PHASES, which names the phases
      continue;
    }
    return Error{errc::invalid_argument, "environment " + name + ": not a Baton setting"};
  }
  for (const auto& [name, value] : phase_variables) {
    bool matched = false;
    for (const auto& phase : config.phases) {
      for (const char* field : phase_fields) {
        const std::string key = "phases." + phase + "." + field;
        if (env_name(key) != name) continue;
        const auto number = parse_integer(value);
        if (!number) return config_error(key, "environment " + name, "expected an integer, got \"" + value + "\"");
        if (auto set = set_phase_field(config, phase, field, *number, key, "environment " + name); !set) return set;
        matched = true;
      }
    }
    if (!matched) return Error{errc::invalid_argument, "environment " + name + ": not a Baton setting"};
  }
  return {};
}

Result<void> check_url(const std::string& key, const std::string& url) {
  if (url == "memory://") return {};
  auto parsed = adapters::redis::parse_redis_url(url);
  if (!parsed) return config_error(key, "value", parsed.error().detail + " (memory:// is the other choice)");
  return {};
}

Result<void> check(const Config& config) {
  if (auto bus = check_url("bus", config.bus); !bus) return bus;
  if (auto kv = check_url("kv", config.kv); !kv) return kv;
  if (config.phases.empty()) return config_error("pipeline.phases", "value", "at least one phase is required");
  for (const auto& [phase, settings] : config.phase_settings) {
    if (std::find(config.phases.begin(), config.phases.end(), phase) == config.phases.end()) {
      return config_error("phases." + phase, "value", "not a phase of pipeline.phases");
    }
  }
  if (config.storage_root.empty()) return config_error("storage.root", "value", "required");
  // The store tells a leftover's age in whole seconds.
  if (config.storage_leftovers_after_ms > 0 && config.storage_leftovers_after_ms < 1000) {
    return config_error("storage.leftovers_after_ms", "value", "must be 0 (never) or at least 1000");
  }
  if (config.secrets_source != "env") return config_error("secrets.source", "value", "must be \"env\"");
  if (config.ai_provider != "offline" && config.ai_provider != "anthropic" && config.ai_provider != "openai") {
    return config_error("ai.provider", "value", "must be offline, anthropic or openai, got \"" + config.ai_provider + "\"");
  }
  if (config.ai_provider != "offline" && config.ai_base_url.empty()) {
    return config_error("ai.base_url", "value", "required for provider " + config.ai_provider);
  }
  if (!log::parse_level(config.log_level)) {
    return config_error("log.level", "value", "must be debug, info, warn or error, got \"" + config.log_level + "\"");
  }
  return {};
}

std::string masked_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto at = url.find('@');
  if (scheme_end == std::string::npos || at == std::string::npos || at < scheme_end) return url;
  const auto colon = url.find(':', scheme_end + 3);
  if (colon != std::string::npos && colon < at) return url.substr(0, colon + 1) + "***" + url.substr(at);
  return url.substr(0, scheme_end + 3) + "***" + url.substr(at);
}

std::string quoted(const std::string& text) {
  std::ostringstream out;
  out << toml::value<std::string>(text);
  return out.str();
}

}  // namespace

PhaseSettings Config::settings_for(const std::string& phase) const {
  const auto found = phase_settings.find(phase);
  return found == phase_settings.end() ? PhaseSettings{} : found->second;
}

Environment baton_environment() {
  Environment environment;
  for (char** entry = environ; entry && *entry; ++entry) {
    const std::string_view text(*entry);
    if (!text.starts_with("BATON_")) continue;
    const auto equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    environment.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return environment;
}

Result<Config> load_config(const std::optional<std::string>& path, const Environment& environment) {
  Config config;
  if (path) {
    if (auto read = apply_file(config, *path); !read) return read.error();
  }
  if (auto applied = apply_environment(config, environment); !applied) return applied.error();
  if (auto valid = check(config); !valid) return valid.error();
  return config;
}

std::string render_config(const Config& config) {
  std::ostringstream out;
  out << "bus = " << quoted(masked_url(config.bus)) << "\n";
  out << "kv = " << quoted(masked_url(config.kv)) << "\n\n[pipeline]\nphases = [";
  for (std::size_t i = 0; i < config.phases.size(); ++i) out << (i ? ", " : "") << quoted(config.phases[i]);
  out << "]\nspace = " << quoted(config.space) << "\n\n[storage]\nroot = " << quoted(config.storage_root)
      << "\nleftovers_after_ms = " << config.storage_leftovers_after_ms
      << "\n\n[secrets]\nsource = " << quoted(config.secrets_source) << "\n\n[ai]\nprovider = " << quoted(config.ai_provider)
      << "\nbase_url = " << quoted(config.ai_base_url) << "\nmodel = " << quoted(config.ai_model)
      << "\napi_key_secret = " << quoted(config.ai_api_key_secret) << "\nca_file = " << quoted(config.ai_ca_file)
      << "\ntimeout_ms = " << config.ai_timeout_ms << "\nconnect_timeout_ms = " << config.ai_connect_timeout_ms
      << "\nrequests_per_second = " << config.ai_requests_per_second << "\nmax_concurrent = " << config.ai_max_concurrent
      << "\nmax_tokens = " << config.ai_max_tokens << "\nanswer_attempts = " << config.ai_answer_attempts
      << "\n\n[certify]\ncommand = " << quoted(config.certify_command) << "\ntimeout_ms = " << config.certify_timeout_ms
      << "\nmax_rounds = " << config.certify_max_rounds << "\n\n[delivery]\nreclaim_idle_ms = " << config.reclaim_idle_ms
      << "\nreaders = " << config.readers << "\nread_count = " << config.read_count << "\ndirect_publishers = " << config.direct_publishers
      << "\n\n[log]\nlevel = " << quoted(config.log_level) << "\n";
  for (const auto& phase : config.phases) {
    const auto settings = config.settings_for(phase);
    out << "\n[phases." << phase << "]\nconcurrency = " << settings.concurrency << "\ntimeout_ms = " << settings.timeout.count()
        << "\nmax_attempts = " << settings.max_attempts << "\nbase_delay_ms = " << settings.base_delay.count() << "\n";
  }
  return out.str();
}

}  // namespace baton::app
