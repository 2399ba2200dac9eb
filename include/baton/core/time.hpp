#pragma once
// RFC 3339 timestamps in UTC with millisecond precision, as envelopes carry them.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace baton {

using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

// "2026-11-27T20:37:34.123Z"
std::string format_rfc3339(Timestamp ts);

// Accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`; digits past milliseconds are truncated
// and offsets are converted to UTC. Returns nullopt for anything else (including impossible dates).
std::optional<Timestamp> parse_rfc3339(std::string_view text) noexcept;

}  // namespace baton
