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

Command Script::command(const char* verb, const std::string& body, const std::vector<std::string>& keys,
                        const std::vector<std::string>& arguments) const {
  Command command{verb, body, std::to_string(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), arguments.begin(), arguments.end());
  return command;
}

Result<Reply> Script::run(Connection& connection, const std::vector<std::string>& keys,
                          const std::vector<std::string>& arguments) const {
  auto reply = connection.execute(command("EVALSHA", sha1_, keys, arguments));
  if (!reply && reply.error() == errc::not_found && reply.error().detail.find("NOSCRIPT") != std::string::npos) {
    return connection.execute(command("EVAL", text_, keys, arguments));
  }
  return reply;
}

}  // namespace baton::adapters::redis::detail
