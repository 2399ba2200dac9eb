#include "resp.hpp"

#include <algorithm>
#include <charconv>

namespace baton::adapters::redis::detail {

namespace {
void append_line(std::string& out, char kind, std::size_t number) {
  char digits[24];
  const auto end = std::to_chars(std::begin(digits), std::end(digits), number).ptr;
  out.push_back(kind);
  out.append(digits, end);
  out.append("\r\n");
}
}  // namespace

void append_command_header(std::string& out, std::size_t count) { append_line(out, '*', count); }

void append_argument(std::string& out, std::string_view argument) {
  append_line(out, '$', argument.size());
  out.append(argument);
  out.append("\r\n");
}

void append_xadd(std::string& out, std::string_view stream, std::string_view field, std::string_view value) {
  append_command_header(out, 5);
  append_argument(out, "XADD");
  append_argument(out, stream);
  append_argument(out, "*");
  append_argument(out, field);
  append_argument(out, value);
}

void encode_command(std::string& out, const std::vector<std::string>& arguments) {
  append_command_header(out, arguments.size());
  for (const auto& argument : arguments) append_argument(out, argument);
}

std::string encode_command(const std::vector<std::string>& arguments) {
  std::string out;
  encode_command(out, arguments);
  return out;
}

namespace {

constexpr std::size_t max_reserved_elements = 256;

Error protocol_error(std::string what) { return {errc::decode_failed, "redis protocol: " + std::move(what)}; }

std::optional<std::int64_t> parse_integer(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

Result<std::optional<std::string_view>> RespParser::line() {
  const auto end = buffer_.find("\r\n", consumed_);
  if (end == std::string::npos) {
    if (buffer_.size() - consumed_ > limits_.max_line_bytes) {
      return protocol_error("a line longer than " + std::to_string(limits_.max_line_bytes) + " bytes");
    }
    return std::optional<std::string_view>{};
  }
  std::string_view text(buffer_.data() + consumed_, end - consumed_);
  return std::optional<std::string_view>{text};
}

void RespParser::compact() {
  if (consumed_ > 0 && (consumed_ == buffer_.size() || consumed_ > 64 * 1024)) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
}

Result<std::optional<Reply>> RespParser::next() {
  if (broken_) return protocol_error("the stream was already found broken");
  auto fail = [&](Error error) -> Result<std::optional<Reply>> {
    broken_ = true;
    return error;
  };
  while (true) {
    auto header = line();
    if (!header) return fail(std::move(header).error());
    if (!*header) {
      compact();
      return std::optional<Reply>{};
    }
    const std::string_view text = **header;
    if (text.empty()) return fail(protocol_error("an empty line where a reply type was expected"));
    const char type = text.front();
    const std::string_view body = text.substr(1);
    const std::size_t after_line = consumed_ + text.size() + 2;

    Reply reply;
    bool complete = true;
    switch (type) {
      case '+':
        reply.kind = Reply::Kind::simple_string;
        reply.text.assign(body);
        consumed_ = after_line;
        break;
      case '-':
        reply.kind = Reply::Kind::error;
        reply.text.assign(body);
        consumed_ = after_line;
        break;
      case ':': {
        const auto value = parse_integer(body);
        if (!value) return fail(protocol_error("integer reply \"" + std::string(body) + "\" is not a number"));
        reply.kind = Reply::Kind::integer;
        reply.integer = *value;
        consumed_ = after_line;
        break;
      }
      case '$': {
        const auto length = parse_integer(body);
        if (!length || *length < -1) return fail(protocol_error("bulk length \"" + std::string(body) + "\" is not valid"));
        if (*length == -1) {
          reply.kind = Reply::Kind::nil;
          consumed_ = after_line;
          break;
        }
        if (static_cast<std::uint64_t>(*length) > limits_.max_bulk_bytes) {
          return fail(protocol_error("a bulk string of " + std::to_string(*length) + " bytes is over the limit of " +
                                     std::to_string(limits_.max_bulk_bytes)));
        }
        const auto size = static_cast<std::size_t>(*length);
        if (buffer_.size() < after_line + size + 2) {  // the body has not fully arrived: wait, keep the header
          compact();
          return std::optional<Reply>{};
        }
        if (buffer_.compare(after_line + size, 2, "\r\n") != 0) {
          return fail(protocol_error("a bulk string is not followed by CRLF"));
        }
        reply.kind = Reply::Kind::bulk_string;
        reply.text.assign(buffer_, after_line, size);
        consumed_ = after_line + size + 2;
        break;
      }
      case '*': {
        const auto count = parse_integer(body);
        if (!count || *count < -1) return fail(protocol_error("array length \"" + std::string(body) + "\" is not valid"));
        consumed_ = after_line;
        if (*count == -1) {
          reply.kind = Reply::Kind::nil_array;
          break;
        }
        if (static_cast<std::uint64_t>(*count) > limits_.max_array_elements) {
          return fail(protocol_error("an array of " + std::to_string(*count) + " elements is over the limit of " +
                                     std::to_string(limits_.max_array_elements)));
        }
        reply.kind = Reply::Kind::array;
        if (*count > 0) {
          if (stack_.size() >= limits_.max_depth) {
            return fail(protocol_error("arrays nest deeper than " + std::to_string(limits_.max_depth)));
          }
          // Room for what the peer declared, up to a small cap: a peer's word alone never buys
          // more than that (later elements are appended as they arrive), while the common replies
          // (pairs, and reads of a few hundred entries) are not reallocated element by element.
          reply.elements.reserve(std::min(static_cast<std::size_t>(*count), max_reserved_elements));
          stack_.push_back(Frame{std::move(reply), static_cast<std::size_t>(*count)});
          complete = false;
        }
        break;
      }
      default:
        return fail(protocol_error(std::string("unknown reply type byte '") + type + "'"));
    }
    if (!complete) continue;

    // Hand the finished reply to the array it belongs to, closing every array it completes.
    bool inside_open_array = false;
    while (!stack_.empty()) {
      auto& parent = stack_.back();
      parent.reply.elements.push_back(std::move(reply));
      if (--parent.remaining > 0) {
        inside_open_array = true;
        break;
      }
      reply = std::move(parent.reply);
      stack_.pop_back();
    }
    if (!inside_open_array) {
      compact();
      return std::optional<Reply>{std::move(reply)};
    }
  }
}

}  // namespace baton::adapters::redis::detail
