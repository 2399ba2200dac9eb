#pragma once
// What a Redis server's persistence can lose of the writes it acknowledged, read from INFO
// persistence and CONFIG GET appendfsync. Only `appendonly yes` with `appendfsync always` keeps every
// acknowledged write through a crash of the server (docs/RELIABILITY.md); the bus and the KV store
// each say what of theirs that puts at risk.

#include <optional>
#include <string>

#include "connection/connection.hpp"

namespace baton::adapters::redis::detail {

// The server and what it can lose, as the start of a sentence ("redis-server 127.0.0.1:6379 has
// appendfsync everysec: a crash of it can forget writes it acknowledged (...)"), or nothing when it
// keeps every acknowledged write, or when it does not say: a server that refuses CONFIG (an ACL, a
// managed service) leaves the fsync policy unknown, and one out of reach is health's to report.
std::optional<std::string> persistence_gap(Connection& connection);

// What sets it right, to end the sentence.
inline constexpr const char* persistence_remedy = "set appendonly yes and appendfsync always";

}  // namespace baton::adapters::redis::detail
