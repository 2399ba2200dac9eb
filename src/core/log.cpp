#include "baton/core/log.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <mutex>
#include <shared_mutex>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <vector>

#include "baton/core/time.hpp"

namespace baton::log {

namespace detail {
struct Context {
  std::string scope;
  Fields fields;  // inherited context: corr_id, tenant_id, msg_id and anything added with with()
};
}  // namespace detail

namespace {

constexpr std::string_view mask = "***";

class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(std::function<void(std::string_view)> callback) : callback_(std::move(callback)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    callback_(std::string_view(message.payload.data(), message.payload.size()));
  }
  void flush_() override {}

 private:
  std::function<void(std::string_view)> callback_;
};

struct Output {
  std::shared_mutex mutex;  // guards `logger` replacement, not writes (spdlog sinks lock themselves)
  std::shared_ptr<spdlog::logger> logger;
  std::atomic<Level> level{Level::info};

  Output() { install(std::make_shared<spdlog::sinks::stderr_sink_mt>()); }

  void install(spdlog::sink_ptr sink) {
    // The JSON object is built here, so spdlog writes the payload alone.
    sink->set_pattern("%v");
    auto next = std::make_shared<spdlog::logger>("baton", std::move(sink));
    next->set_level(spdlog::level::trace);
    next->flush_on(spdlog::level::warn);
    std::unique_lock lock(mutex);
    if (logger) logger->flush();
    logger = std::move(next);
  }

  std::shared_ptr<spdlog::logger> current() {
    std::shared_lock lock(mutex);
    return logger;
  }
};

Output& output() {
  static Output instance;
  return instance;
}

struct SecretRegistry {
  std::shared_mutex mutex;
  std::vector<std::string> values;
};

SecretRegistry& secrets() {
  static SecretRegistry registry;
  return registry;
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

boost::json::value redact_value(std::string_view name, const boost::json::value& value);

boost::json::object redact_object(const boost::json::object& object) {
  boost::json::object out;
  out.reserve(object.size());
  for (const auto& member : object) {
    const std::string_view name(member.key().data(), member.key().size());
    out.emplace(member.key(), redact_value(name, member.value()));
  }
  return out;
}

boost::json::value redact_value(std::string_view name, const boost::json::value& value) {
  if (is_secret_field_name(name) && !value.is_null()) return boost::json::string(mask);
  switch (value.kind()) {
    case boost::json::kind::string: {
      const auto& text = value.get_string();
      return boost::json::string(redact(std::string_view(text.data(), text.size())));
    }
    case boost::json::kind::object:
      return redact_object(value.get_object());
    case boost::json::kind::array: {
      boost::json::array out;
      for (const auto& element : value.get_array()) out.push_back(redact_value("", element));
      return out;
    }
    default:
      return value;
  }
}

constexpr std::array<std::string_view, 4> reserved_fields = {"ts", "level", "scope", "msg"};

bool is_reserved(std::string_view name) {
  return std::find(reserved_fields.begin(), reserved_fields.end(), name) != reserved_fields.end();
}

void put_field(boost::json::object& line, std::string_view name, const boost::json::value& value) {
  // Caller fields never overwrite the line's own: they move aside under an "x_" prefix.
  std::string key = is_reserved(name) ? "x_" + std::string(name) : std::string(name);
  line.insert_or_assign(key, redact_value(name, value));
}

}  // namespace

const char* to_string(Level level) noexcept {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

std::optional<Level> parse_level(std::string_view text) noexcept {
  for (const auto level : {Level::debug, Level::info, Level::warn, Level::error}) {
    if (text == to_string(level)) return level;
  }
  return std::nullopt;
}

Logger::Logger() : context_(std::make_shared<const detail::Context>(detail::Context{"baton", {}})) {}

Logger Logger::child(std::string_view scope) const {
  auto context = std::make_shared<detail::Context>(*context_);
  context->scope.append(".").append(scope);
  return Logger(std::move(context));
}

Logger Logger::with(std::string_view key, boost::json::value value) const {
  auto context = std::make_shared<detail::Context>(*context_);
  context->fields.insert_or_assign(key, std::move(value));
  return Logger(std::move(context));
}

Logger Logger::for_message(const EnvelopeMeta& envelope) const {
  auto context = std::make_shared<detail::Context>(*context_);
  context->fields.insert_or_assign("corr_id", envelope.corr_id);
  context->fields.insert_or_assign("tenant_id", envelope.tenant_id);
  context->fields.insert_or_assign("msg_id", envelope.id);
  return Logger(std::move(context));
}

std::string_view Logger::scope() const noexcept { return context_->scope; }

bool Logger::enabled(Level level) const noexcept {
  return static_cast<int>(level) >= static_cast<int>(output().level.load(std::memory_order_relaxed));
}

std::string Logger::render(Level level, std::string_view message, const Fields& extra) const {
  boost::json::object line;
  line.reserve(4 + context_->fields.size() + extra.size());
  line.emplace("ts", format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now())));
  line.emplace("level", to_string(level));
  line.emplace("scope", context_->scope);
  line.emplace("msg", redact(message));
  for (const auto& field : context_->fields) {
    put_field(line, std::string_view(field.key().data(), field.key().size()), field.value());
  }
  for (const auto& field : extra) {
    put_field(line, std::string_view(field.key().data(), field.key().size()), field.value());
  }
  return boost::json::serialize(line);
}

void Logger::log(Level level, std::string_view message, const Fields& extra) const {
  if (!enabled(level)) return;
  const auto line = render(level, message, extra);
  output().current()->log(to_spdlog(level), "{}", line);
}

void log_to_stderr() { output().install(std::make_shared<spdlog::sinks::stderr_sink_mt>()); }

void log_to_file(const std::filesystem::path& path) {
  output().install(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path.string()));
}

void log_to_callback(std::function<void(std::string_view line)> sink) {
  output().install(std::make_shared<CallbackSink>(std::move(sink)));
}

void set_level(Level level) { output().level.store(level, std::memory_order_relaxed); }

Level level() noexcept { return output().level.load(std::memory_order_relaxed); }

void flush() { output().current()->flush(); }

void register_secret(std::string value) {
  if (value.empty()) return;
  auto& registry = secrets();
  std::unique_lock lock(registry.mutex);
  if (std::find(registry.values.begin(), registry.values.end(), value) != registry.values.end()) return;
  registry.values.push_back(std::move(value));
  // Longest first, so a secret that contains another is masked whole.
  std::sort(registry.values.begin(), registry.values.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

bool is_secret_field_name(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 9> markers = {
      "password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key"};
  std::string lowered(name);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return c == '-' ? '_' : static_cast<char>(std::tolower(c)); });
  return std::any_of(markers.begin(), markers.end(),
                     [&](std::string_view marker) { return lowered.find(marker) != std::string::npos; });
}

std::string redact(std::string_view text) {
  std::string out(text);
  auto& registry = secrets();
  std::shared_lock lock(registry.mutex);
  for (const auto& secret : registry.values) {
    for (auto at = out.find(secret); at != std::string::npos; at = out.find(secret, at + mask.size())) {
      out.replace(at, secret.size(), mask);
    }
  }
  return out;
}

}  // namespace baton::log
