#include "baton/adapters/redis/redis_baseline.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <limits>
#include <optional>
#include <thread>

#include "connection/connection.hpp"

namespace baton::adapters::redis {

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr std::string_view sent_field = "t";

// The send time an entry of an XREADGROUP reply carries (fields: t <ns> e <payload>).
std::optional<std::int64_t> sent_at(const detail::Reply& entry) {
  if (!entry.is_array() || entry.elements.size() != 2 || !entry.elements[1].is_array()) return std::nullopt;
  const auto& fields = entry.elements[1].elements;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].text != sent_field) continue;
    std::int64_t value = 0;
    const auto& text = fields[i + 1].text;
    if (std::from_chars(text.data(), text.data() + text.size(), value).ec == std::errc{}) return value;
  }
  return std::nullopt;
}

}  // namespace

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

Result<std::vector<std::int64_t>> time_paced_xadd_to_reader(const RedisOptions& options, const std::string& key, std::size_t count,
                                                            std::string_view payload, double rate,
                                                            std::chrono::milliseconds timeout) {
  if (rate <= 0) return Error{errc::invalid_argument, "time_paced_xadd_to_reader: the rate must be above 0"};
  detail::Connection publisher(options, detail::Connection::Driver::caller);
  RedisOptions blocking = options;
  blocking.request_timeout += std::chrono::seconds{1};  // the read blocks for up to a second
  detail::Connection reader(blocking, detail::Connection::Driver::caller);
  if (auto cleared = publisher.execute({"DEL", key}); !cleared) return std::move(cleared).error();
  if (auto created = publisher.execute({"XGROUP", "CREATE", key, "floor", "$", "MKSTREAM"}); !created) {
    return std::move(created).error();
  }

  std::vector<std::int64_t> micros;
  micros.reserve(count);
  std::optional<Error> read_failure;  // read after the join
  std::atomic<bool> reader_ended{false}, give_up{false};
  // Set once everything is published: the reader stops at its next read after it.
  std::atomic<std::int64_t> read_until{std::numeric_limits<std::int64_t>::max()};
  std::thread reading([&] {
    struct Ended {
      std::atomic<bool>& flag;
      ~Ended() { flag = true; }
    } ended{reader_ended};
    while (micros.size() < count && !give_up.load() && steady_ns() < read_until.load()) {
      auto replies = reader.execute_encoded(detail::encode_command({"XREADGROUP", "GROUP", "floor", "reader", "COUNT", "1000", "BLOCK", "1000",
                                                                    "STREAMS", key, ">"}),
                                            1, "XREADGROUP");
      const auto now = steady_ns();
      if (!replies) {
        read_failure = std::move(replies).error();
        return;
      }
      const auto& reply = replies->front();
      if (reply.is_error()) {
        read_failure = detail::error_from_reply("XREADGROUP", reply);
        return;
      }
      if (!reply.is_array()) continue;  // the block timed out
      for (const auto& stream : reply.elements) {
        if (!stream.is_array() || stream.elements.size() != 2) continue;
        for (const auto& entry : stream.elements[1].elements) {
          if (const auto sent = sent_at(entry)) micros.push_back((now - *sent) / 1000);
        }
      }
    }
  });

  const std::size_t per_batch = std::max<std::size_t>(1, static_cast<std::size_t>(rate / 1000));
  const std::string body(payload);
  const auto started = std::chrono::steady_clock::now();
  std::optional<Error> publish_failure;
  for (std::size_t sent = 0; sent < count && !publish_failure && !reader_ended.load();) {
    const auto batch = std::min(per_batch, count - sent);
    std::this_thread::sleep_until(started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                std::chrono::duration<double>(static_cast<double>(sent) / rate)));
    const std::string stamp = std::to_string(steady_ns());
    std::string pipeline;
    detail::append_command_header(pipeline, 1);
    detail::append_argument(pipeline, "MULTI");
    for (std::size_t i = 0; i < batch; ++i) {
      detail::append_command_header(pipeline, 7);
      for (const std::string_view argument : {std::string_view("XADD"), std::string_view(key), std::string_view("*"), sent_field,
                                              std::string_view(stamp), std::string_view("e"), std::string_view(body)}) {
        detail::append_argument(pipeline, argument);
      }
    }
    detail::append_command_header(pipeline, 1);
    detail::append_argument(pipeline, "EXEC");
    auto replies = publisher.execute_encoded(std::move(pipeline), batch + 2, "MULTI, XADDs, EXEC");
    if (!replies) {
      publish_failure = std::move(replies).error();
    } else if (const auto& exec = replies->back(); exec.is_error() || !exec.is_array()) {
      publish_failure = exec.is_error() ? detail::error_from_reply("EXEC", exec)
                                        : Error{errc::decode_failed, "EXEC of the latency floor: unexpected reply shape from redis"};
    }
    sent += batch;
  }
  if (publish_failure) give_up = true;
  read_until = steady_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  reading.join();
  (void)publisher.execute({"DEL", key});
  if (publish_failure) return *publish_failure;
  if (read_failure) return *read_failure;
  if (micros.size() < count) {
    return Error{errc::timeout, "latency floor: the reader got " + std::to_string(micros.size()) + " of " + std::to_string(count) +
                                    " entries on " + key + " within " + std::to_string(timeout.count()) + " ms"};
  }
  return micros;
}

Result<double> server_cpu_seconds_of_info(std::string_view info) {
  double total = 0;
  for (const std::string_view field : {std::string_view("used_cpu_sys"), std::string_view("used_cpu_user")}) {
    // A line "<field>:<seconds>", at the start of the text or of a line (used_cpu_sys_children follows).
    std::size_t at = 0;
    for (;;) {
      at = info.find(field, at);
      if (at == std::string_view::npos) return Error{errc::decode_failed, "INFO cpu: no " + std::string(field) + " in the reply"};
      const bool starts_line = at == 0 || info[at - 1] == '\n';
      const bool ends_name = at + field.size() < info.size() && info[at + field.size()] == ':';
      if (starts_line && ends_name) break;
      at += field.size();
    }
    const auto value_begin = at + field.size() + 1;
    const auto value_end = std::min(info.find_first_of("\r\n", value_begin), info.size());
    const auto text = info.substr(value_begin, value_end - value_begin);
    double seconds = 0;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (parsed.ec != std::errc{} || parsed.ptr != text.data() + text.size() || !(seconds >= 0)) {
      return Error{errc::decode_failed, "INFO cpu: " + std::string(field) + " is not a number of seconds: \"" + std::string(text) + "\""};
    }
    total += seconds;
  }
  return total;
}

Result<double> server_cpu_seconds(const RedisOptions& options) {
  detail::Connection connection(options, detail::Connection::Driver::caller);
  auto reply = connection.execute({"INFO", "cpu"});
  if (!reply) return std::move(reply).error();
  return server_cpu_seconds_of_info(reply->text);
}

}  // namespace baton::adapters::redis
