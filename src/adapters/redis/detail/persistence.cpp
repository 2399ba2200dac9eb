#include "detail/persistence.hpp"

namespace baton::adapters::redis::detail {

std::optional<std::string> persistence_gap(Connection& connection) {
  const std::string server = "redis-server " + connection.options().endpoint();
  auto persistence = connection.execute(Command{"INFO", "persistence"});
  if (!persistence || !persistence->is_string()) return std::nullopt;
  if (persistence->text.find("aof_enabled:0") != std::string::npos) {
    return server + " keeps no append-only file (appendonly no): a restart of it loses every write since its last snapshot, "
                    "acknowledged or not";
  }
  auto fsync = connection.execute(Command{"CONFIG", "GET", "appendfsync"});
  if (!fsync || !fsync->is_array() || fsync->elements.size() != 2 || !fsync->elements[1].is_string()) return std::nullopt;
  const std::string& policy = fsync->elements[1].text;
  if (policy == "always") return std::nullopt;
  return server + " has appendfsync " + policy + ": a crash of it can forget writes it acknowledged (" +
         (policy == "everysec" ? "up to about 2 s of them behind a slow disk" : "as many as the operating system had not flushed") + ")";
}

}  // namespace baton::adapters::redis::detail
