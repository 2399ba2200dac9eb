#include "baton/adapters/redis/redis_baseline.hpp"

#include "connection/connection.hpp"

namespace baton::adapters::redis {

Result<std::chrono::nanoseconds> time_pipelined_xadd(const RedisOptions& options, const std::string& key, std::size_t count,
                                                     std::string_view payload, std::size_t window) {
  detail::Connection connection(options, detail::Connection::Driver::caller);
  if (auto cleared = connection.execute({"DEL", key}); !cleared) return std::move(cleared).error();
  const std::string body(payload);
  const auto started = std::chrono::steady_clock::now();
  for (std::size_t sent = 0; sent < count;) {
    const auto batch = std::min(window, count - sent);
    // Encoded exactly as the bus encodes a publish (detail::append_xadd), one pipeline per window.
    std::string pipeline;
    for (std::size_t i = 0; i < batch; ++i) detail::append_xadd(pipeline, key, "e", body);
    auto replies = connection.execute_encoded(std::move(pipeline), batch, "pipeline of XADD");
    if (!replies) return std::move(replies).error();
    for (const auto& reply : *replies) {
      if (reply.is_error()) return detail::error_from_reply("XADD", reply);
    }
    sent += batch;
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  (void)connection.execute({"DEL", key});
  return std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed);
}

}  // namespace baton::adapters::redis
