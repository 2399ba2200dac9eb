#include "baton/core/uuid.hpp"

#include <array>
#include <cstdint>
#include <mutex>
#include <random>
#include <string_view>

namespace baton {
namespace {

struct Generator {
  std::mutex mutex;
  std::mt19937_64 random{std::random_device{}()};
  std::uint64_t last_ms = 0;
  std::uint32_t counter = 0;  // 12 bits used
};

Generator& generator() {
  static Generator instance;
  return instance;
}

}  // namespace

std::string new_uuid_v7(const Clock& clock) {
  auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch()).count());
  std::uint64_t random_bits = 0;
  std::uint32_t sequence = 0;
  {
    auto& state = generator();
    std::lock_guard lock(state.mutex);
    // Never step back in time (a wall clock can): reuse the last millisecond and keep counting.
    if (ms <= state.last_ms) {
      ms = state.last_ms;
      if (++state.counter > 0xFFF) {
        ++ms;
        state.counter = 0;
      }
    } else {
      state.counter = static_cast<std::uint32_t>(state.random() & 0x3FF);  // leave room to count
    }
    state.last_ms = ms;
    sequence = state.counter;
    random_bits = state.random();
  }

  std::array<std::uint8_t, 16> bytes{};
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  bytes[6] = static_cast<std::uint8_t>(0x70 | ((sequence >> 8) & 0x0F));
  bytes[7] = static_cast<std::uint8_t>(sequence & 0xFF);
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<std::uint8_t>(random_bits >> (56 - 8 * i));
  bytes[8] = static_cast<std::uint8_t>(0x80 | (bytes[8] & 0x3F));

  static constexpr char hex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
    text.push_back(hex[bytes[i] >> 4]);
    text.push_back(hex[bytes[i] & 0x0F]);
  }
  return text;
}

bool is_uuid_text(std::string_view text) noexcept {
  // A table instead of range tests: the digits of an id are random, so which test matches was
  // a branch the processor could not predict, and this runs for every envelope decoded.
  static constexpr std::array<bool, 256> hex_digit = [] {
    std::array<bool, 256> table{};
    for (const char c : std::string_view("0123456789abcdefABCDEF")) table[static_cast<unsigned char>(c)] = true;
    return table;
  }();
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') return false;
  bool all_hex = true;
  for (std::size_t i = 0; i < text.size(); ++i) {
    all_hex &= hex_digit[static_cast<unsigned char>(text[i])] || i == 8 || i == 13 || i == 18 || i == 23;
  }
  return all_hex;
}

}  // namespace baton
