#pragma once
// One pipelined connection to Redis, shared by any number of threads.
//
// Callers block on a reply (the ports are blocking); underneath, an Asio io thread writes every
// queued command in one batch and matches replies in order. A connection driven by its caller has
// no io thread: the thread waiting for a reply runs the I/O itself, which saves the two thread
// wake-ups of every round trip (hand the request to the io thread, hand the reply back).
// The connection reconnects by itself
// with the configured backoff, re-running AUTH, SELECT and CLIENT SETNAME; requests made while it is
// away wait for it up to their timeout. A request that times out on a live connection closes it
// (the late reply would shift every later one), so the next requests get a fresh one.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/adapters/redis/redis_options.hpp"
#include "baton/core/result.hpp"
#include "baton/ports/health.hpp"
#include "detail/resp.hpp"

namespace baton::adapters::redis::detail {

using Command = std::vector<std::string>;

// A message pushed by the server on a subscriber connection: (channel, payload).
using PushHandler = std::function<void(std::string channel, std::string payload)>;

class Connection {
 public:
  // Who runs the connection's I/O. `caller` suits a connection that one thread uses (a
  // subscription's reader, its committer): calls from several threads are served one after the
  // other, not pipelined together, and nothing is read while no call is waiting.
  enum class Driver { io_thread, caller };

  explicit Connection(RedisOptions options, Driver driver = Driver::io_thread);
  // A subscriber connection (Redis requires pub/sub on a connection of its own): messages go to
  // `on_push`, and the channels subscribed are subscribed again after every reconnect.
  Connection(RedisOptions options, PushHandler on_push);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One command; an error reply becomes an Error typed by error_from_reply.
  Result<Reply> execute(Command command, std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // Several commands written together; the replies in order. Error replies stay replies here, so
  // the caller can tell which command failed.
  Result<std::vector<Reply>> execute_pipeline(std::vector<Command> commands,
                                              std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // A pipeline already encoded as RESP (`count` commands, see append_command_header), for hot paths
  // that encode straight from their own data. `name` is what errors call it.
  Result<std::vector<Reply>> execute_encoded(std::string encoded, std::size_t count, std::string name,
                                             std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // A request written behind another and answered later (execute_encoded_then).
  class Later {
   public:
    // Waits for its replies, up to the connection's request timeout from when it was written.
    Result<std::vector<Reply>> collect();

   private:
    friend class Connection;
    struct State;
    explicit Later(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };

  // For a caller-driven connection's hot path: writes `encoded` and `later` together (one write),
  // returns the replies to `encoded` and leaves `later` in flight, for Later::collect(). Replies come
  // in order, so until `later` is answered the connection serves nothing else: a call made
  // meanwhile waits behind it (behind a blocking read, for its whole BLOCK time).
  std::pair<Result<std::vector<Reply>>, Later> execute_encoded_then(std::string encoded, std::size_t count, std::string name,
                                                                    std::string later, std::size_t later_count, std::string later_name);

  // Subscriber connections only. Returns once Redis confirmed the subscription.
  Result<void> subscribe(const std::string& channel);
  Result<void> unsubscribe(const std::string& channel);

  ports::Health health();
  const RedisOptions& options() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// A Redis error reply as a typed Error: NOAUTH/WRONGPASS -> auth_failed, NOPERM -> permission_denied,
// OOM -> resource_exhausted, LOADING/BUSY/MASTERDOWN/TRYAGAIN/CLUSTERDOWN/READONLY -> unavailable,
// WRONGTYPE -> wrong_type, NOSCRIPT/NOGROUP -> not_found, BUSYGROUP -> conflict, anything else ->
// invalid_argument. The detail is "<COMMAND>: <Redis's message>"; a cluster redirect (MOVED, ASK)
// also says that Baton does not follow them yet.
Error error_from_reply(std::string_view command, const Reply& reply);

}  // namespace baton::adapters::redis::detail
