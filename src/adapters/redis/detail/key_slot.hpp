#pragma once
// The Redis Cluster slot of a key: CRC16 (XMODEM) of the key, or of its hash tag (the text between
// the first "{" and the next "}", when not empty), modulo 16384. Keys of one slot may share a
// script call on a cluster; keys of different slots may not (CROSSSLOT).

#include <cstdint>
#include <string_view>

namespace baton::adapters::redis::detail {

inline constexpr std::uint16_t cluster_slots = 16384;

std::uint16_t key_slot(std::string_view key) noexcept;

}  // namespace baton::adapters::redis::detail
