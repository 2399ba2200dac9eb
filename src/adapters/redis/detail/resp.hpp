#pragma once
// RESP2: the request encoder and an incremental reply parser with caps on every declared size.
// No I/O here: the connection feeds bytes in and takes replies out.
//
// Why our own parser: hiredis 0.14's reader allocates whatever a reply declares (`*555555552\r\n`
// makes it try for ~4.4 GB) and has no element cap, so it would need a second pass over the bytes
// to be safe; checking the declared sizes while parsing is simpler and costs nothing extra.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/core/result.hpp"

namespace baton::adapters::redis::detail {

struct Reply {
  enum class Kind { simple_string, error, integer, bulk_string, nil, array, nil_array };
  Kind kind = Kind::nil;
  std::string text;              // simple_string, error, bulk_string
  std::int64_t integer = 0;      // integer
  std::vector<Reply> elements;   // array

  bool is_error() const noexcept { return kind == Kind::error; }
  bool is_nil() const noexcept { return kind == Kind::nil || kind == Kind::nil_array; }
  bool is_string() const noexcept { return kind == Kind::bulk_string || kind == Kind::simple_string; }
  bool is_array() const noexcept { return kind == Kind::array; }
};

// Appends one command (an array of bulk strings) to `out`.
void encode_command(std::string& out, const std::vector<std::string>& arguments);
// The same in pieces, for hot paths that encode straight from their own data instead of building a
// vector of strings first: a header for `count` arguments, then each argument.
void append_command_header(std::string& out, std::size_t count);
void append_argument(std::string& out, std::string_view argument);
// XADD <stream> * <field> <value>: the publish hot path, shared by the bus and its raw baseline so
// that both are encoded alike.
void append_xadd(std::string& out, std::string_view stream, std::string_view field, std::string_view value);
std::string encode_command(const std::vector<std::string>& arguments);

struct RespLimits {
  std::size_t max_bulk_bytes = 64u << 20;    // one string in a reply
  std::size_t max_array_elements = 1u << 20; // one array in a reply
  std::size_t max_depth = 16;                // nesting of arrays
  std::size_t max_line_bytes = 64u << 10;    // a +/-/:/$/* line
};

// Feed bytes as they arrive; take complete replies as they become available. A protocol violation
// or a size over a limit is an error that leaves the parser unusable (the connection must close).
class RespParser {
 public:
  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  void feed(std::string_view bytes) { buffer_.append(bytes.data(), bytes.size()); }

  // The next complete reply; nullopt when more bytes are needed; an Error (errc::decode_failed) when
  // the stream is not valid RESP or declares more than the limits allow.
  Result<std::optional<Reply>> next();

  std::size_t buffered() const noexcept { return buffer_.size() - consumed_; }

 private:
  struct Frame {
    Reply reply;
    std::size_t remaining = 0;
  };

  // Reads one line at consumed_; nullopt if incomplete.
  Result<std::optional<std::string_view>> line();
  void compact();

  RespLimits limits_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  std::vector<Frame> stack_;  // arrays being filled
  bool broken_ = false;
};

}  // namespace baton::adapters::redis::detail
