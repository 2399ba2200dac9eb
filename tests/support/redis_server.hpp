#pragma once
// A private redis-server for a test (app::LocalRedisServer); a TLS one gets test certificates made
// by openssl in its folder (see certificates.hpp).

#include "baton/app/local_redis.hpp"
#include "support/certificates.hpp"

namespace baton::test {

using RedisServerOptions = app::LocalRedisOptions;

class RedisServer : public app::LocalRedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {}) : LocalRedisServer(with_certificates(std::move(options))) {}

 private:
  static RedisServerOptions with_certificates(RedisServerOptions options) {
    if (options.tls && !options.prepare) options.prepare = [](const std::filesystem::path& folder) { make_certificates(folder); };
    return options;
  }
};

}  // namespace baton::test
