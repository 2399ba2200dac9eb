#pragma once
// Wires adapters to ports from a Config: the bus and the KV store are chosen by their URL scheme
// (memory:// embeds everything in this process; redis://, rediss://, unix:// use Redis). No hidden
// globals: whoever runs phases gets the ports from here and hands them on.

#include <memory>
#include <optional>

#include "baton/app/config.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"
#include "baton/orchestrator/pipeline.hpp"

namespace baton::app {

struct Runtime {
  Config config;
  std::unique_ptr<ports::MessageBus> bus;
  std::unique_ptr<ports::KVStore> kv;
  std::unique_ptr<ports::Storage> storage;  // files under storage.root
  std::unique_ptr<ports::Secrets> secrets;  // from the environment (NAME or NAME_FILE)
  std::unique_ptr<ports::AiApi> ai;          // offline, or an HTTP provider
  std::unique_ptr<ports::CommandRunner> commands;  // local processes, for certify's command
  std::optional<orchestrator::Pipeline> pipeline;

  orchestrator::Ports ports() const {
    return orchestrator::Ports{bus.get(), kv.get(), ai.get(), storage.get(), secrets.get(), commands.get()};
  }
};

struct BootstrapOptions {
  std::chrono::milliseconds request_timeout{3'000};  // how long a Redis call may take before it fails
};

Result<Runtime> bootstrap(const Config& config, const BootstrapOptions& options = {});

}  // namespace baton::app
