#include "baton/core/time.hpp"

#include <cstdio>

namespace baton {
namespace {

bool read_digits(std::string_view text, std::size_t pos, std::size_t count, int& out) noexcept {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  return true;
}

bool expect(std::string_view text, std::size_t pos, char c) noexcept {
  return pos < text.size() && text[pos] == c;
}

}  // namespace

std::string format_rfc3339(Timestamp ts) {
  using namespace std::chrono;
  const auto day = floor<days>(ts);
  const year_month_day date{day};
  const hh_mm_ss time{ts - day};
  const int year = static_cast<int>(date.year());
  if (year < 0 || year > 9999) {  // beyond the four digits of the format: spelled out in full
    char buffer[48];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", year, static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), static_cast<int>(time.hours().count()),
                  static_cast<int>(time.minutes().count()), static_cast<int>(time.seconds().count()),
                  static_cast<int>(time.subseconds().count()));
    return buffer;
  }
  // Every envelope encode writes one: digits by hand, since snprintf costs more than the rest of the
  // envelope's header.
  std::string out = "0000-00-00T00:00:00.000Z";
  const auto put = [&](std::size_t at, int value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10) out[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
  };
  put(0, year, 4);
  put(5, static_cast<int>(static_cast<unsigned>(date.month())), 2);
  put(8, static_cast<int>(static_cast<unsigned>(date.day())), 2);
  put(11, static_cast<int>(time.hours().count()), 2);
  put(14, static_cast<int>(time.minutes().count()), 2);
  put(17, static_cast<int>(time.seconds().count()), 2);
  put(20, static_cast<int>(time.subseconds().count()), 3);
  return out;
}

std::optional<Timestamp> parse_rfc3339(std::string_view text) noexcept {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!read_digits(text, 0, 4, y) || !expect(text, 4, '-') || !read_digits(text, 5, 2, mo) ||
      !expect(text, 7, '-') || !read_digits(text, 8, 2, d) || !expect(text, 10, 'T') ||
      !read_digits(text, 11, 2, h) || !expect(text, 13, ':') || !read_digits(text, 14, 2, mi) ||
      !expect(text, 16, ':') || !read_digits(text, 17, 2, s)) {
    return std::nullopt;
  }
  if (h > 23 || mi > 59 || s > 59) return std::nullopt;  // no leap seconds in envelope stamps
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok()) return std::nullopt;

  std::size_t pos = 19;
  int millis = 0;
  if (expect(text, pos, '.')) {
    ++pos;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 3; ++i) millis *= 10;
  }

  minutes offset{0};
  if (expect(text, pos, 'Z')) {
    ++pos;
  } else if (expect(text, pos, '+') || expect(text, pos, '-')) {
    const int sign = text[pos] == '+' ? 1 : -1;
    int oh = 0, om = 0;
    if (!read_digits(text, pos + 1, 2, oh) || !expect(text, pos + 3, ':') ||
        !read_digits(text, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = minutes{sign * (oh * 60 + om)};
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  return Timestamp{sys_days{date}} + hours{h} + minutes{mi} + seconds{s} + milliseconds{millis} - offset;
}

}  // namespace baton
