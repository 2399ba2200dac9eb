#pragma once
// The raw speed of a Redis server, measured by this adapter's own client, as the yardsticks for
// `baton bench`.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "baton/adapters/redis/redis_options.hpp"
#include "baton/core/result.hpp"

namespace baton::adapters::redis {

// Throughput: `count` XADDs of `payload` (field "e", as the bus writes it) to `key`, pipelined
// `window` at a time on one connection. The key is deleted before and after.
Result<std::chrono::nanoseconds> time_pipelined_xadd(const RedisOptions& options, const std::string& key, std::size_t count,
                                                     std::string_view payload, std::size_t window = 1000);

// Latency at a steady rate: `count` XADDs of `payload` published as the bus publishes a batch
// (MULTI, XADDs, EXEC), `rate / 1000` per millisecond, while a reader on its own connection and
// thread waits in XREADGROUP ... BLOCK for them. Returns, per entry, the microseconds from just
// before its batch was written to the reader having parsed it: the floor under the bus's
// publish -> handler latency on this server and machine, with nothing of the bus in between. The
// key is deleted before and after. An entry the reader did not get within `timeout` is an error.
Result<std::vector<std::int64_t>> time_paced_xadd_to_reader(const RedisOptions& options, const std::string& key, std::size_t count,
                                                            std::string_view payload, double rate,
                                                            std::chrono::milliseconds timeout = std::chrono::seconds{30});

// The CPU time the server has used since it started (INFO cpu: used_cpu_sys + used_cpu_user, all
// of its threads), in seconds. Two readings around a run give the server's time per message, which a
// shared machine's drifting speed moves much less than the run's wall-clock time; on a server that
// others use too, their work counts as well.
Result<double> server_cpu_seconds(const RedisOptions& options);

// The same from the text of an INFO reply; an error names the field that is missing or not a number.
Result<double> server_cpu_seconds_of_info(std::string_view info);

}  // namespace baton::adapters::redis
