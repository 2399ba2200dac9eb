#include "baton/app/bootstrap.hpp"

#include "baton/adapters/env/env_secrets.hpp"
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

  auto pipeline = orchestrator::Pipeline::make(config.phases, config.space);
  if (!pipeline) return Error{errc::invalid_argument, "config key \"pipeline.phases\": " + pipeline.error().detail};
  runtime.pipeline = std::move(*pipeline);
  return runtime;
}

}  // namespace baton::app
