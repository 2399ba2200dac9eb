#include "baton/core/envelope.hpp"

#include <array>
#include <stdexcept>

#include "baton/core/uuid.hpp"

namespace baton {
namespace {

// One table lookup per character: every envelope's ids and names are checked on publish and on
// decode, and the comparisons showed in the bus's profile.
enum CharClass : unsigned char { name_char = 1, corr_char = 2 };

constexpr std::array<unsigned char, 256> char_classes = [] {
  std::array<unsigned char, 256> classes{};
  const auto mark = [&](char c, unsigned char what) { classes[static_cast<unsigned char>(c)] |= what; };
  for (char c = 'a'; c <= 'z'; ++c) mark(c, name_char | corr_char);
  for (char c = 'A'; c <= 'Z'; ++c) mark(c, name_char | corr_char);
  for (char c = '0'; c <= '9'; ++c) mark(c, name_char | corr_char);
  for (const char c : {'_', '-'}) mark(c, name_char | corr_char);
  for (const char c : {'.', ':'}) mark(c, corr_char);
  return classes;
}();

bool is_name_char(char c) noexcept { return (char_classes[static_cast<unsigned char>(c)] & name_char) != 0; }
bool is_corr_char(char c) noexcept { return (char_classes[static_cast<unsigned char>(c)] & corr_char) != 0; }

Timestamp now_ms(const Clock& clock) {
  return std::chrono::floor<std::chrono::milliseconds>(clock.now());
}

void require(const std::optional<std::string>& problem, std::string_view field) {
  if (problem) throw std::invalid_argument("envelope field \"" + std::string(field) + "\": " + *problem);
}

}  // namespace

std::optional<std::string> check_type_name(std::string_view type) {
  if (type.empty()) return "must not be empty";
  if (type.size() > 128) return "longer than 128 characters";
  bool segment_empty = true;
  for (const char c : type) {
    if (c == '.') {
      if (segment_empty) return "has an empty segment (\"..\", or a leading or trailing dot)";
      segment_empty = true;
    } else if (is_name_char(c)) {
      segment_empty = false;
    } else {
      return "may hold only letters, digits, '_', '-' and dots between segments";
    }
  }
  if (segment_empty) return "has an empty segment (\"..\", or a leading or trailing dot)";
  return std::nullopt;
}

std::optional<std::string> check_tenant_id(std::string_view tenant_id) {
  if (tenant_id.empty()) return "must not be empty";
  if (tenant_id.size() > 64) return "longer than 64 characters";
  for (const char c : tenant_id) {
    if (!is_name_char(c)) return "may hold only letters, digits, '_' and '-'";
  }
  return std::nullopt;
}

std::optional<std::string> check_corr_id(std::string_view corr_id) {
  if (corr_id.empty()) return "must not be empty";
  if (corr_id.size() > 128) return "longer than 128 characters";
  for (const char c : corr_id) {
    if (!is_corr_char(c)) return "may hold only letters, digits, '_', '-', '.' and ':'";
  }
  return std::nullopt;
}

namespace detail {

EnvelopeMeta new_meta(std::string type, EnvelopeOptions options) {
  require(check_type_name(type), "type");
  require(check_tenant_id(options.tenant_id), "tenant_id");
  const Clock& clock = options.clock ? *options.clock : SystemClock::instance();
  EnvelopeMeta meta;
  meta.id = new_uuid_v7(clock);
  meta.type = std::move(type);
  if (options.corr_id.empty()) {
    meta.corr_id = meta.id;
  } else {
    require(check_corr_id(options.corr_id), "corr_id");
    meta.corr_id = std::move(options.corr_id);
  }
  meta.tenant_id = std::move(options.tenant_id);
  meta.ts = now_ms(clock);
  meta.attempts = 1;
  meta.headers = std::move(options.headers);
  return meta;
}

EnvelopeMeta child_meta(const EnvelopeMeta& parent, std::string type, const Clock& clock) {
  require(check_type_name(type), "type");
  EnvelopeMeta meta;
  meta.id = new_uuid_v7(clock);
  meta.type = std::move(type);
  meta.corr_id = parent.corr_id;
  meta.causation_id = parent.id;
  meta.tenant_id = parent.tenant_id;
  meta.ts = now_ms(clock);
  meta.attempts = 1;
  meta.headers = parent.headers;
  return meta;
}

}  // namespace detail
}  // namespace baton
