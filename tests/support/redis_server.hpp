#pragma once
// A private redis-server for a test (app::LocalRedisServer); a TLS one gets test certificates made
// by openssl in its folder (see certificates.hpp).

#include <chrono>
#include <optional>
#include <string>

#include "baton/app/local_redis.hpp"
#include "support/certificates.hpp"
#include "support/recorder.hpp"

namespace baton::test {

using RedisServerOptions = app::LocalRedisOptions;

class RedisServer : public app::LocalRedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {}) : LocalRedisServer(with_certificates(std::move(options))) {}

 private:
  static RedisServerOptions with_certificates(RedisServerOptions options) {
    if (options.tls && !options.prepare) options.prepare = [](const std::filesystem::path& folder) { make_certificates(folder); };
    return options;
  }
};

// A one-node Redis Cluster: a server in cluster mode (its node file in its own folder) that owns
// every slot once serve_every_slot() has said so. Cluster mode refuses what a sharded deployment
// could not do (CROSSSLOT: a script, transaction or multi-key command whose keys hash to different
// slots), so a test that passes on it shows that each step it took stays within one slot.
inline RedisServerOptions one_node_cluster_options() {
  return RedisServerOptions{.append_only = false, .extra_arguments = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}};
}

// Gives the node every slot and waits until it says the cluster is up (a node does so about two
// seconds after its start at the soonest). When it does not, returns what the node said.
inline std::optional<std::string> serve_every_slot(const RedisServer& server) {
  if (const auto added = server.cli({"CLUSTER", "ADDSLOTSRANGE", "0", "16383"}); added != "OK\n") return "CLUSTER ADDSLOTSRANGE: " + added;
  std::string info;
  if (eventually([&] { return (info = server.cli({"CLUSTER", "INFO"})).find("cluster_state:ok") != std::string::npos; },
                 std::chrono::seconds{15})) {
    return std::nullopt;
  }
  return "the cluster did not come up: " + info;
}

}  // namespace baton::test
