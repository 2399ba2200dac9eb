#pragma once
// A Lua script sent by its SHA1 (EVALSHA), so each call carries a few dozen bytes instead of the
// whole script; when the server does not know it (NOSCRIPT: after a restart or SCRIPT FLUSH), the
// call falls back to EVAL, which also teaches the server the script again.

#include <string>
#include <vector>

#include "connection/connection.hpp"

namespace baton::adapters::redis::detail {

class Script {
 public:
  explicit Script(std::string text);
  const std::string& text() const noexcept { return text_; }
  const std::string& sha1() const noexcept { return sha1_; }

  Result<Reply> run(Connection& connection, const std::vector<std::string>& keys,
                    const std::vector<std::string>& arguments) const;

  // The EVALSHA call as RESP, to send in a pipeline with other commands. Its reply may be a NOSCRIPT
  // error: run() once then teaches the server the script.
  std::string encode_call(const std::vector<std::string>& keys, const std::vector<std::string>& arguments) const {
    return encode("EVALSHA", sha1_, keys, arguments);
  }

 private:
  std::string encode(std::string_view verb, const std::string& body, const std::vector<std::string>& keys,
                     const std::vector<std::string>& arguments) const;

  std::string text_;
  std::string sha1_;
};

}  // namespace baton::adapters::redis::detail
