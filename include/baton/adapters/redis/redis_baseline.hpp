#pragma once
// The raw speed of a Redis server, measured by this adapter's own client, as the yardstick for
// `baton bench`: `count` XADDs of `payload` (field "e", as the bus writes it) to `key`, pipelined
// `window` at a time on one connection. The key is deleted before and after.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "baton/adapters/redis/redis_options.hpp"
#include "baton/core/result.hpp"

namespace baton::adapters::redis {

Result<std::chrono::nanoseconds> time_pipelined_xadd(const RedisOptions& options, const std::string& key, std::size_t count,
                                                     std::string_view payload, std::size_t window = 1000);

}  // namespace baton::adapters::redis
