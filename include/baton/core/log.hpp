#pragma once
// Structured logs: one JSON object per line, written through spdlog.
//
//   {"ts":"2026-11-27T20:37:34.123Z","level":"info","scope":"baton.plan","msg":"handled",
//    "corr_id":"...","tenant_id":"acme","msg_id":"...","elapsed_ms":12}
//
// A Logger is a cheap immutable value: `child("plan")` extends the scope, `with(key, value)` and
// `for_message(envelope)` add context that every line of it (and of its children) carries.
// Redaction: values registered with register_secret() are replaced by "***" wherever they appear
// (message and string fields), and fields whose name looks secret (password, token, api_key,
// secret, authorization, credential...) are masked whatever their value.
// Thread-safe throughout.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "baton/core/envelope.hpp"

namespace baton::log {

enum class Level { debug, info, warn, error };

const char* to_string(Level level) noexcept;
std::optional<Level> parse_level(std::string_view text) noexcept;  // "debug", "info", "warn", "error"

using Fields = boost::json::object;

namespace detail {
struct Context;
}

class Logger {
 public:
  // The root logger, scope "baton".
  Logger();

  Logger child(std::string_view scope) const;                         // scope "baton.<...>.<scope>"
  Logger with(std::string_view key, boost::json::value value) const;  // adds one context field
  Logger for_message(const EnvelopeMeta& envelope) const;             // corr_id, tenant_id, msg_id

  bool enabled(Level level) const noexcept;
  void log(Level level, std::string_view message, const Fields& extra = {}) const;
  void debug(std::string_view message, const Fields& extra = {}) const { log(Level::debug, message, extra); }
  void info(std::string_view message, const Fields& extra = {}) const { log(Level::info, message, extra); }
  void warn(std::string_view message, const Fields& extra = {}) const { log(Level::warn, message, extra); }
  void error(std::string_view message, const Fields& extra = {}) const { log(Level::error, message, extra); }

  // The JSON line log() would write (without the newline), for tests and tools.
  std::string render(Level level, std::string_view message, const Fields& extra = {}) const;

  std::string_view scope() const noexcept;

 private:
  explicit Logger(std::shared_ptr<const detail::Context> context) : context_(std::move(context)) {}
  std::shared_ptr<const detail::Context> context_;
};

// Where lines go. The default is standard error.
void log_to_stderr();
void log_to_file(const std::filesystem::path& path);                 // appends
void log_to_callback(std::function<void(std::string_view line)> sink);  // for tests and embedding
void set_level(Level level);                                          // default info
Level level() noexcept;
// Writes out what is buffered; call before exit (the file sink otherwise may lose its tail).
void flush();

// Masks `value` in every line from now on. Empty values are ignored. Thread-safe.
void register_secret(std::string value);
// True when a field of this name is masked whatever its value.
bool is_secret_field_name(std::string_view name) noexcept;
// The text with every registered secret replaced by "***".
std::string redact(std::string_view text);

}  // namespace baton::log
