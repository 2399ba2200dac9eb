#include "baton/adapters/redis/redis_options.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>

namespace baton::adapters::redis {
namespace {

Error bad_url(std::string_view url, const std::string& why) {
  // The URL may hold a password: say where the problem is, never echo the whole URL.
  const auto scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string_view::npos ? std::string("?") : std::string(url.substr(0, scheme_end));
  return {errc::invalid_argument, "redis URL (" + scheme + "://...): " + why};
}

std::optional<int> parse_number(std::string_view text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

std::string RedisOptions::endpoint() const {
  return unix_socket.empty() ? host + ":" + std::to_string(port) : "unix:" + unix_socket;
}

Result<RedisOptions> parse_redis_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri(boost::core::string_view(url.data(), url.size()));
  if (!parsed) return bad_url(url, "not a URL: " + parsed.error().message());
  const boost::urls::url_view& view = *parsed;
  RedisOptions options;

  const std::string scheme = view.scheme();
  if (scheme != "redis" && scheme != "rediss" && scheme != "unix") {
    return bad_url(url, "scheme \"" + scheme + "\" is not redis, rediss or unix");
  }

  if (view.has_userinfo()) {
    options.user = view.user();
    options.password = view.password();
    if (!view.has_password()) {
      // "redis://secret@host" is the common password-only form.
      options.password = options.user;
      options.user.clear();
    }
  }

  std::string db_text;
  if (scheme == "unix") {
    options.unix_socket = view.path();
    if (options.unix_socket.empty() || options.unix_socket.front() != '/') {
      return bad_url(url, "a unix:// URL needs an absolute socket path");
    }
    for (const auto& param : view.params()) {
      if (param.key == "db") {
        db_text = param.value;
      } else {
        return bad_url(url, "unknown query parameter \"" + std::string(param.key) + "\"");
      }
    }
  } else {
    if (!view.has_authority() || view.host().empty()) return bad_url(url, "no host");
    options.host = view.host();
    if (view.has_port()) {
      const auto port = parse_number(std::string(view.port()));
      if (!port || *port < 1 || *port > 65535) return bad_url(url, "port \"" + std::string(view.port()) + "\" is not 1-65535");
      options.port = static_cast<std::uint16_t>(*port);
    }
    std::string path = view.path();
    if (!path.empty() && path != "/") db_text = path.substr(1);
    options.tls = scheme == "rediss";
    if (view.has_query() && !options.tls) return bad_url(url, "query parameters are only for rediss:// URLs");
    for (const auto& param : view.params()) {
      const std::string key = param.key;
      if (key == "ca_file") options.tls_ca_file = param.value;
      else if (key == "cert_file") options.tls_cert_file = param.value;
      else if (key == "key_file") options.tls_key_file = param.value;
      else if (key == "server_name") options.tls_server_name = param.value;
      else return bad_url(url, "unknown query parameter \"" + key + "\" (rediss:// takes ca_file, cert_file, key_file, server_name)");
    }
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return bad_url(url, "cert_file and key_file go together");
    }
  }
  if (!db_text.empty()) {
    const auto db = parse_number(db_text);
    if (!db || *db < 0) return bad_url(url, "database \"" + db_text + "\" is not a non-negative number");
    options.db = *db;
  }
  return options;
}

}  // namespace baton::adapters::redis
