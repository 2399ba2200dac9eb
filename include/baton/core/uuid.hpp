#pragma once
// UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a counter and randomness, so ids sort by
// creation time as text.

#include <string>
#include <string_view>

#include "baton/core/clock.hpp"

namespace baton {

// A new UUIDv7 in its 36-character lower-case text form. Within one process, ids made in the same
// millisecond still sort in creation order (a 12-bit counter in rand_a). Thread-safe.
std::string new_uuid_v7(const Clock& clock = SystemClock::instance());

// True for the 8-4-4-4-12 hexadecimal text form of any UUID version.
bool is_uuid_text(std::string_view text) noexcept;

}  // namespace baton
