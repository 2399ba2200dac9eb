#include "baton/app/bootstrap.hpp"

#include "baton/adapters/ai/http_ai.hpp"
#include "baton/adapters/ai/offline_ai.hpp"
#include "baton/adapters/env/env_secrets.hpp"
#include "baton/adapters/process/process_runner.hpp"
#include "baton/adapters/fs/fs_storage.hpp"
#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/memory/memory_kv.hpp"
#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/adapters/redis/redis_kv.hpp"

namespace baton::app {
namespace {

Result<adapters::redis::RedisOptions> redis_options(const std::string& key, const std::string& url,
                                                    const BootstrapOptions& options) {
  auto parsed = adapters::redis::parse_redis_url(url);
  if (!parsed) return Error{errc::invalid_argument, "config key \"" + key + "\": " + parsed.error().detail};
  parsed->request_timeout = options.request_timeout;
  parsed->connect_timeout = std::min(parsed->connect_timeout, options.request_timeout);
  return parsed;
}

Result<std::unique_ptr<ports::AiApi>> make_ai(const Config& config, ports::Secrets& secrets) {
  if (config.ai_provider == "offline") return adapters::ai::make_offline_ai();
  adapters::ai::HttpAiOptions ai;
  ai.protocol = config.ai_provider == "anthropic" ? adapters::ai::Protocol::anthropic : adapters::ai::Protocol::openai;
  ai.base_url = config.ai_base_url;
  ai.default_model = config.ai_model;
  ai.ca_file = config.ai_ca_file;
  ai.connect_timeout = std::chrono::milliseconds{config.ai_connect_timeout_ms};
  ai.requests_per_second = static_cast<double>(config.ai_requests_per_second);
  ai.max_concurrent = static_cast<int>(config.ai_max_concurrent);
  auto key = secrets.get(config.ai_api_key_secret);
  if (key) {
    ai.api_key = std::move(*key);
  } else if (config.ai_provider == "anthropic" || key.error() != errc::not_found) {
    // OpenAI-compatible local servers often need no key; Anthropic always does.
    return Error{errc::invalid_argument, "config key \"ai.api_key_secret\": " + key.error().message()};
  }
  auto made = adapters::ai::make_http_ai(std::move(ai));
  if (!made) return Error{errc::invalid_argument, "config [ai]: " + made.error().detail};
  return made;
}

}  // namespace

Result<Runtime> bootstrap(const Config& config, const BootstrapOptions& options) {
  Runtime runtime;
  runtime.config = config;
  if (auto level = log::parse_level(config.log_level)) log::set_level(*level);

  if (config.bus == "memory://") {
    runtime.bus = adapters::memory::make_memory_bus();
  } else {
    auto redis = redis_options("bus", config.bus, options);
    if (!redis) return std::move(redis).error();
    adapters::redis::RedisBusOptions bus_options;
    bus_options.redis = *redis;
    bus_options.reclaim_idle = std::chrono::milliseconds{config.reclaim_idle_ms};
    bus_options.reclaim_interval = std::min(bus_options.reclaim_interval, bus_options.reclaim_idle / 4);
    bus_options.readers = static_cast<std::size_t>(config.readers);
    bus_options.read_count = static_cast<std::size_t>(config.read_count);
    bus_options.direct_publishers = static_cast<std::size_t>(config.direct_publishers);
    runtime.bus = adapters::redis::make_redis_bus(bus_options);
  }

  if (config.kv == "memory://") {
    runtime.kv = adapters::memory::make_memory_kv();
  } else {
    auto redis = redis_options("kv", config.kv, options);
    if (!redis) return std::move(redis).error();
    runtime.kv = adapters::redis::make_redis_kv(*redis);
  }

  auto storage = adapters::fs::make_fs_storage({config.storage_root});
  if (!storage) return Error{errc::invalid_argument, "config key \"storage.root\": " + storage.error().message()};
  runtime.storage = std::move(*storage);
  runtime.secrets = adapters::env::make_env_secrets();
  auto ai = make_ai(config, *runtime.secrets);
  if (!ai) return std::move(ai).error();
  runtime.ai = std::move(*ai);
  runtime.commands = adapters::process::make_process_runner();

  auto pipeline = orchestrator::Pipeline::make(config.phases, config.space);
  if (!pipeline) return Error{errc::invalid_argument, "config key \"pipeline.phases\": " + pipeline.error().detail};
  runtime.pipeline = std::move(*pipeline);
  return runtime;
}

}  // namespace baton::app
