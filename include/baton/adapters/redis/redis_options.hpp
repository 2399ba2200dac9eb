#pragma once
// Where and how to reach Redis. Built from a URL or field by field.
//
//   redis://[user:password@]host:port[/db]      TCP
//   unix:///path/to/redis.sock[?db=N]          Unix socket (user/password as in redis://)
//   rediss://[user:password@]host:port[/db][?ca_file=..&cert_file=..&key_file=..&server_name=..]
//                                              TLS: the server's certificate is verified against
//                                              ca_file (or the system's CAs) and its name against
//                                              server_name (default: host); cert_file/key_file give
//                                              a client certificate when the server asks for one
//
// Only the options struct lives here: the connection itself is hidden behind the adapters.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "baton/core/result.hpp"
#include "baton/core/retry.hpp"

namespace baton::adapters::redis {

struct RedisOptions {
  std::string host = "127.0.0.1";        // TCP host (ignored with unix_socket)
  std::uint16_t port = 6379;
  std::string unix_socket;                // a socket path; when set, TCP host/port are not used
  std::string user;                       // ACL user; empty = "default" (password-only AUTH)
  std::string password;                   // empty = no AUTH
  int db = 0;                             // SELECT on every (re)connect
  std::string client_name = "baton";      // CLIENT SETNAME, so CLIENT LIST shows who is who
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds request_timeout{5'000};  // a reply later than this fails its request
  RetryPolicy reconnect{.base_delay = std::chrono::milliseconds{50},
                        .max_delay = std::chrono::milliseconds{2'000},
                        .max_attempts = 0,
                        .jitter = Jitter::full};  // backoff between connection attempts
  std::string key_prefix = "baton";       // every key the adapters write starts with "<prefix>:"
  bool tls = false;                       // rediss://
  std::string tls_ca_file;                // PEM CA bundle that signs the server's certificate; empty = system CAs
  std::string tls_cert_file;              // PEM client certificate, when the server requires one
  std::string tls_key_file;               // its private key
  std::string tls_server_name;            // the name the certificate must carry; empty = host

  // "127.0.0.1:6379" or the socket path: for errors and logs (never the password).
  std::string endpoint() const;
};

// Parses a redis://, rediss:// or unix:// URL into options (other fields keep their defaults).
// Errors name the part of the URL at fault (errc::invalid_argument).
Result<RedisOptions> parse_redis_url(std::string_view url);

}  // namespace baton::adapters::redis
