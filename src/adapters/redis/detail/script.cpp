#include "detail/script.hpp"

#include <openssl/evp.h>

namespace baton::adapters::redis::detail {

Script::Script(std::string text) : text_(std::move(text)) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text_.data(), text_.size(), digest, &length, EVP_sha1(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < length; ++i) {
    sha1_.push_back(hex[digest[i] >> 4]);
    sha1_.push_back(hex[digest[i] & 0x0F]);
  }
}

std::string Script::encode(std::string_view verb, const std::string& body, const std::vector<std::string>& keys,
                           const std::vector<std::string>& arguments) const {
  std::size_t size = 64 + body.size();
  for (const auto& key : keys) size += key.size() + 16;
  for (const auto& argument : arguments) size += argument.size() + 16;
  std::string out;
  out.reserve(size);
  append_command_header(out, 3 + keys.size() + arguments.size());
  append_argument(out, verb);
  append_argument(out, body);
  append_argument(out, std::to_string(keys.size()));
  for (const auto& key : keys) append_argument(out, key);
  for (const auto& argument : arguments) append_argument(out, argument);
  return out;
}

Result<Reply> Script::run(Connection& connection, const std::vector<std::string>& keys,
                          const std::vector<std::string>& arguments) const {
  const auto once = [&](std::string_view verb, const std::string& body) -> Result<Reply> {
    auto replies = connection.execute_encoded(encode(verb, body, keys, arguments), 1, std::string(verb));
    if (!replies) return std::move(replies).error();
    auto& reply = replies->front();
    if (reply.is_error()) return error_from_reply(verb, reply);
    return std::move(reply);
  };
  auto reply = once("EVALSHA", sha1_);
  if (!reply && reply.error() == errc::not_found && reply.error().detail.find("NOSCRIPT") != std::string::npos) {
    return once("EVAL", text_);
  }
  return reply;
}

}  // namespace baton::adapters::redis::detail
