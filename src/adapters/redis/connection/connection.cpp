#include "connection.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/multiple_exceptions.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace baton::adapters::redis::detail {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using Socket = asio::generic::stream_protocol::socket;

struct Request {
  std::string command_name;  // for errors
  std::string encoded;
  std::size_t expected = 1;
  std::vector<Reply> replies;

  // The first outcome wins: a reply, a timeout or a lost connection. (Not a std::promise: its
  // set_value goes through std::call_once, which costs a futex system call every time, even when
  // nobody waits, as with every caller-driven request.)
  void settle(Result<std::vector<Reply>> result) {
    if (settled.exchange(true)) return;
    {
      std::lock_guard lock(mutex);
      outcome = std::move(result);
      ready.store(true, std::memory_order_release);
    }
    done.notify_all();
  }
  bool is_ready() const { return ready.load(std::memory_order_acquire); }
  bool is_settled() const { return settled.load(); }
  // False when the deadline passed first.
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex);
    return done.wait_until(lock, deadline, [&] { return outcome.has_value(); });
  }
  // Once settled (give_up settles too). Waits for a settle that another thread has begun: its
  // outcome is stored just after it won.
  Result<std::vector<Reply>> take() {
    std::unique_lock lock(mutex);
    done.wait(lock, [&] { return outcome.has_value(); });
    return std::move(*outcome);
  }

 private:
  std::atomic<bool> settled{false};
  std::atomic<bool> ready{false};
  std::mutex mutex;
  std::condition_variable done;
  std::optional<Result<std::vector<Reply>>> outcome;
};

// Thrown inside the io coroutines to end a connection with a reason; caught in run(). `refused`
// marks the server's own no to our handshake (wrong password, no permission, bad database): waiting
// will not change it, so requests fail at once until a later attempt succeeds.
struct ConnectionFailure {
  Error error;
  bool refused = false;
};

std::string upper_name(const std::string& name) {
  std::string out = name;
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Error error_from_reply(std::string_view command, const Reply& reply) {
  const std::string_view text = reply.text;
  const auto prefix = text.substr(0, text.find(' '));
  errc code = errc::invalid_argument;
  if (prefix == "NOAUTH" || prefix == "WRONGPASS") code = errc::auth_failed;
  else if (prefix == "NOPERM") code = errc::permission_denied;
  else if (prefix == "OOM") code = errc::resource_exhausted;
  else if (prefix == "LOADING" || prefix == "BUSY" || prefix == "MASTERDOWN" || prefix == "TRYAGAIN" ||
           prefix == "CLUSTERDOWN" || prefix == "READONLY") code = errc::unavailable;
  else if (prefix == "WRONGTYPE") code = errc::wrong_type;
  else if (prefix == "NOSCRIPT" || prefix == "NOGROUP") code = errc::not_found;
  else if (prefix == "BUSYGROUP") code = errc::conflict;
  // A node of a Redis Cluster of several shards, pointing elsewhere: said in words, since the
  // reply alone reads like a fault of the key or the command. Waiting does not change it.
  if (prefix == "MOVED" || prefix == "ASK") {
    return {code, std::string(command) + ": " + std::string(text) +
                      " (the key's slot is served by another node of this Redis Cluster; Baton does not follow cluster"
                      " redirects yet: use a standalone server or a cluster of one shard)"};
  }
  return {code, std::string(command) + ": " + std::string(text)};
}

// A pushed pub/sub message: ["message", channel, payload].
bool is_pushed_message(const Reply& reply) {
  return reply.is_array() && reply.elements.size() == 3 && reply.elements[0].text == "message";
}

struct Connection::Impl : std::enable_shared_from_this<Connection::Impl> {
  Impl(RedisOptions redis_options, PushHandler push, Driver io_driver)
      : options(std::move(redis_options)), on_push(std::move(push)), driver(io_driver),
        io(driver == Driver::caller ? 1 : BOOST_ASIO_CONCURRENCY_HINT_DEFAULT), writer_wake(io, 1), retry_timer(io) {
    if (options.tls) set_up_tls();
  }

  // The TLS context, once: a CA or certificate file that cannot be read is a configuration error
  // that no reconnect fixes, so every request is refused with it.
  void set_up_tls() {
    auto fail = [&](const std::string& what, const boost::system::error_code& error) {
      permanent_error = Error{errc::invalid_argument, "TLS to " + options.endpoint() + ": " + what + ": " + error.message()};
    };
    if (!options.unix_socket.empty()) {
      permanent_error = Error{errc::invalid_argument, "TLS over a unix socket is not supported"};
      return;
    }
    ssl_context.emplace(asio::ssl::context::tls_client);
    boost::system::error_code error;
    ssl_context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_tlsv1 |
                             asio::ssl::context::no_tlsv1_1, error);
    ssl_context->set_verify_mode(asio::ssl::verify_peer, error);
    if (options.tls_ca_file.empty()) {
      ssl_context->set_default_verify_paths(error);
      if (error) return fail("cannot load the system CA certificates", error);
    } else {
      ssl_context->load_verify_file(options.tls_ca_file, error);
      if (error) return fail("cannot read CA file " + options.tls_ca_file, error);
    }
    if (!options.tls_cert_file.empty()) {
      ssl_context->use_certificate_chain_file(options.tls_cert_file, error);
      if (error) return fail("cannot read certificate file " + options.tls_cert_file, error);
      ssl_context->use_private_key_file(options.tls_key_file, asio::ssl::context::pem, error);
      if (error) return fail("cannot read key file " + options.tls_key_file, error);
    }
  }

  RedisOptions options;
  PushHandler on_push;               // set on subscriber connections
  std::set<std::string> channels;    // subscribed channels, guarded by mutex; renewed on reconnect
  Driver driver;
  std::mutex driving;                // Driver::caller: held by the one caller that runs `io`
  asio::io_context io;
  // Wakes the writer: a channel, not a timer cancelled, since re-arming a timer costs a system call
  // (timerfd_settime) on every round trip. One wake-up held is enough: the writer takes all queued.
  asio::experimental::channel<void(boost::system::error_code)> writer_wake;
  asio::steady_timer retry_timer;
  std::optional<Socket> socket;
  std::optional<asio::ssl::context> ssl_context;        // when options.tls
  std::optional<asio::ssl::stream<Socket&>> tls;         // over *socket, for each TLS connection
  RespParser parser;
  std::thread thread;

  std::mutex mutex;  // guards queued, last_error, permanent_error
  std::deque<std::shared_ptr<Request>> queued;
  std::string last_error = "not connected yet";
  std::optional<Error> permanent_error;  // a wrong password: fail at once instead of waiting
  std::deque<std::shared_ptr<Request>> in_flight;  // io thread only
  std::atomic<bool> stopping{false};
  std::atomic<bool> connected{false};

  void start() {
    asio::co_spawn(io, [self = shared_from_this()] { return self->run(); }, asio::detached);
    if (driver == Driver::io_thread) thread = std::thread([this] { io.run(); });
  }

  void stop() {
    stopping = true;
    asio::post(io, [this] {
      writer_wake.cancel();
      retry_timer.cancel();
      if (socket) {
        boost::system::error_code ignored;
        socket->close(ignored);
      }
    });
    if (driver == Driver::caller) {
      // The io coroutines end once they see the closed socket and the cancelled timers.
      std::lock_guard lock(driving);
      if (io.stopped()) io.restart();
      io.run();
    }
    if (thread.joinable()) thread.join();
    fail_queued(Error{errc::closed, "redis connection to " + options.endpoint() + " was closed"});
  }

  void fail_queued(const Error& error) {
    std::deque<std::shared_ptr<Request>> failed;
    {
      std::lock_guard lock(mutex);
      failed.swap(queued);
    }
    for (auto& request : failed) request->settle(error);
  }

  // Each error names its request's command: a caller may have more than one in flight.
  void fail_in_flight(const Error& error) {
    for (auto& request : in_flight) request->settle(Error{error.code, request->command_name + ": " + error.detail});
    in_flight.clear();
  }

  // With `then` (caller-driven connections only), `then` is queued right behind `request`, written
  // with it, and left in flight when `request` is answered: collect it with drive().
  Result<std::vector<Reply>> submit(std::shared_ptr<Request> request, std::chrono::milliseconds timeout,
                                    const std::shared_ptr<Request>& then = nullptr) {
    if (driver == Driver::caller) {
      std::lock_guard lock(driving);
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      // Nothing was read while no call waited: take in what came meanwhile (a close by the server,
      // of an idle client say) before this request is queued, so that nothing run now (a writer
      // finishing its last write, say) can write it into the closed connection; it goes out on a
      // fresh one. One non-blocking epoll_wait.
      if (io.stopped()) io.restart();
      io.poll();
      if (auto refused = enqueue(request, then)) {
        if (then) then->settle(*refused);
        return *refused;
      }
      wake_writer();  // the writer sends what was queued as soon as the io runs
      return run_until_settled(*request, deadline, timeout);
    }
    if (auto refused = enqueue(request)) return *refused;
    asio::post(io, [self = shared_from_this()] { self->wake_writer(); });
    if (!request->wait_until(std::chrono::steady_clock::now() + timeout)) give_up(*request, timeout);
    return request->take();
  }

  // On the io's thread (or with `driving` held): a wake-up already held is enough.
  void wake_writer() { (void)writer_wake.try_send(boost::system::error_code{}); }

  // Driver::caller: runs the io until the request has its outcome or its time is up.
  Result<std::vector<Reply>> drive(Request& request, std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds timeout) {
    std::lock_guard lock(driving);
    return run_until_settled(request, deadline, timeout);
  }

  // With `driving` held.
  Result<std::vector<Reply>> run_until_settled(Request& request, std::chrono::steady_clock::time_point deadline,
                                               std::chrono::milliseconds timeout) {
    while (!request.is_ready()) {
      if (io.stopped()) io.restart();
      // Zero handlers run: the time is up, or the io coroutines have ended (the connection closes).
      if (io.run_one_until(deadline) == 0 && (std::chrono::steady_clock::now() >= deadline || io.stopped())) {
        give_up(request, timeout);
        break;
      }
    }
    return request.take();
  }

  // Queues a request (and the one to follow it, if any) for the writer, unless the connection
  // refuses every request now.
  std::optional<Error> enqueue(const std::shared_ptr<Request>& request, const std::shared_ptr<Request>& then = nullptr) {
    std::lock_guard lock(mutex);
    if (permanent_error) return *permanent_error;
    if (stopping) return Error{errc::closed, "redis connection to " + options.endpoint() + " was closed"};
    queued.push_back(request);
    if (then) queued.push_back(then);
    return std::nullopt;
  }

  // A request without its reply in time: a timeout on a live connection, unavailable otherwise.
  // (A reply that came meanwhile wins: the first outcome settles the request.)
  void give_up(Request& request, std::chrono::milliseconds timeout) {
    if (connected) {
      request.settle(Error{errc::timeout, request.command_name + ": no reply from " + options.endpoint() + " within " +
                                              std::to_string(timeout.count()) + " ms"});
      // Replies come in order: with this one abandoned, the connection must start afresh.
      if (driver == Driver::caller) {
        drop("a request timed out");
      } else {
        asio::post(io, [self = shared_from_this()] { self->drop("a request timed out"); });
      }
      return;
    }
    std::string reason;
    {
      std::lock_guard lock(mutex);
      reason = stopping ? "closing" : last_error;
    }
    request.settle(Error{errc::unavailable, request.command_name + ": not connected to " + options.endpoint() + " (" + reason + ")"});
  }

  void drop(const std::string& reason) {
    if (socket && socket->is_open()) {
      {
        std::lock_guard lock(mutex);
        last_error = reason;
      }
      boost::system::error_code ignored;
      socket->close(ignored);
    }
  }

  Error describe(std::exception_ptr failure) const {
    try {
      std::rethrow_exception(failure);
    } catch (const ConnectionFailure& ended) {
      return ended.error;
    } catch (const boost::system::system_error& ended) {
      return {errc::unavailable, "connection to " + options.endpoint() + ": " + ended.code().message()};
    } catch (const std::exception& ended) {
      return {errc::unavailable, "connection to " + options.endpoint() + ": " + ended.what()};
    } catch (...) {
      return {errc::unavailable, "connection to " + options.endpoint() + " ended"};
    }
  }

  // Every exception ends one connection, never this loop: it runs until the Connection is destroyed.
  asio::awaitable<void> run() {
    RetrySchedule backoff(options.reconnect);
    int failures = 0;
    {
      std::lock_guard lock(mutex);
      if (permanent_error) co_return;  // the TLS set-up failed: every request is refused with its reason
    }
    while (!stopping) {
      std::optional<Error> failure;
      bool refused = false;
      try {
        co_await connect();
        co_await handshake();
        failures = 0;
        {
          std::lock_guard lock(mutex);
          permanent_error.reset();
        }
        connected = true;
        // `&&` ends at the first failure of either loop and cancels the other (`||` would wait for a
        // success, which these loops never have).
        co_await (write_loop() && read_loop());
      } catch (const ConnectionFailure& ended) {
        failure = ended.error;
        refused = ended.refused;
      } catch (const asio::multiple_exceptions& both) {
        // Both loops failed (the second because the first ended the connection): the first says why.
        failure = describe(both.first_exception());
      } catch (...) {
        failure = describe(std::current_exception());
      }
      connected = false;
      if (socket) {
        boost::system::error_code ignored;
        socket->close(ignored);
      }
      const Error error = failure.value_or(Error{errc::unavailable, "connection to " + options.endpoint() + " ended"});
      {
        std::lock_guard lock(mutex);
        last_error = error.message();
        if (refused) permanent_error = error;
      }
      // In flight: the command may or may not have run; the caller decides (it is retryable).
      fail_in_flight(Error{errc::unavailable, "connection to " + options.endpoint() + " lost with the request in flight: " +
                                                  error.message()});
      if (refused) fail_queued(error);
      if (stopping) break;
      const auto delay = backoff.next_delay(++failures);
      retry_timer.expires_after(delay);
      boost::system::error_code ignored;
      co_await retry_timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    fail_in_flight(Error{errc::closed, "redis connection to " + options.endpoint() + " was closed"});
  }

  // Reads and writes go through TLS when it is on, straight to the socket otherwise.
  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buffer, boost::system::error_code& error) {
    if (tls) co_return co_await tls->async_read_some(buffer, asio::redirect_error(asio::use_awaitable, error));
    co_return co_await socket->async_read_some(buffer, asio::redirect_error(asio::use_awaitable, error));
  }

  template <class Buffers>
  asio::awaitable<void> write_all(const Buffers& buffer) {
    if (tls) {
      co_await asio::async_write(*tls, buffer, asio::use_awaitable);
    } else {
      co_await asio::async_write(*socket, buffer, asio::use_awaitable);
    }
  }

  asio::awaitable<void> start_tls(asio::steady_timer& deadline) {
    tls.emplace(*socket, *ssl_context);
    const std::string name = options.tls_server_name.empty() ? options.host : options.tls_server_name;
    // SNI, and the name the certificate must carry.
    SSL_set_tlsext_host_name(tls->native_handle(), name.c_str());
    tls->set_verify_callback(asio::ssl::host_name_verification(name));
    boost::system::error_code error;
    auto outcome = co_await (tls->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, error)) ||
                             deadline.async_wait(asio::use_awaitable));
    if (outcome.index() == 1) throw ConnectionFailure{Error{errc::unavailable, "TLS handshake with " + options.endpoint() + " timed out"}};
    if (error) {
      // A certificate the client cannot trust will not become trustworthy by trying again.
      const bool refused = error.category() == asio::error::get_ssl_category();
      throw ConnectionFailure{Error{refused ? errc::permission_denied : errc::unavailable,
                                    "TLS handshake with " + options.endpoint() + " (as " + name + "): " + error.message()},
                              refused};
    }
  }

  // An address is used as it is: Asio's resolver runs getaddrinfo on a thread of its own, started on
  // first use, and that was about 2 ms of the 3.3 ms a bus's first publish to 127.0.0.1 took. A name
  // is looked up within the connect deadline (a lookup that hangs would otherwise outlast it).
  asio::awaitable<std::vector<asio::ip::tcp::endpoint>> addresses(asio::steady_timer& deadline) {
    boost::system::error_code not_an_address;
    const auto address = asio::ip::make_address(options.host, not_an_address);
    std::vector<asio::ip::tcp::endpoint> found;
    if (!not_an_address) {
      found.emplace_back(address, options.port);
      co_return found;
    }
    asio::ip::tcp::resolver resolver(io);
    boost::system::error_code error;
    auto outcome = co_await (resolver.async_resolve(options.host, std::to_string(options.port), asio::redirect_error(asio::use_awaitable, error)) ||
                             deadline.async_wait(asio::use_awaitable));
    if (outcome.index() == 1) throw ConnectionFailure{Error{errc::unavailable, "looking up " + options.host + " timed out"}};
    if (error) throw ConnectionFailure{Error{errc::unavailable, "looking up " + options.host + ": " + error.message()}};
    for (const auto& entry : std::get<0>(outcome)) found.push_back(entry.endpoint());
    co_return found;
  }

  asio::awaitable<void> connect() {
    parser = RespParser{};
    tls.reset();
    socket.emplace(io);
    asio::steady_timer deadline(io);
    deadline.expires_after(options.connect_timeout);
    if (!options.unix_socket.empty()) {
      const asio::local::stream_protocol::endpoint local(options.unix_socket);
      auto outcome = co_await (socket->async_connect(local, asio::use_awaitable) || deadline.async_wait(asio::use_awaitable));
      if (outcome.index() == 1) throw ConnectionFailure{Error{errc::unavailable, "connect to " + options.endpoint() + " timed out"}};
      co_return;
    }
    std::string last = "no address";
    const auto targets = co_await addresses(deadline);
    for (const auto& tcp : targets) {
      socket.emplace(io);
      boost::system::error_code error;
      auto outcome = co_await (socket->async_connect(tcp, asio::redirect_error(asio::use_awaitable, error)) ||
                               deadline.async_wait(asio::use_awaitable));
      if (outcome.index() == 1) throw ConnectionFailure{Error{errc::unavailable, "connect to " + options.endpoint() + " timed out"}};
      if (!error) {
        socket->set_option(asio::ip::tcp::no_delay(true));
        if (ssl_context) co_await start_tls(deadline);
        co_return;
      }
      last = error.message();
    }
    throw ConnectionFailure{Error{errc::unavailable, "connect to " + options.endpoint() + ": " + last}};
  }

  // AUTH, SELECT and CLIENT SETNAME, written together before any queued request.
  asio::awaitable<void> handshake() {
    std::vector<Command> commands;
    if (!options.password.empty()) {
      if (options.user.empty()) {
        commands.push_back(Command{"AUTH", options.password});
      } else {
        commands.push_back(Command{"AUTH", options.user, options.password});
      }
    }
    if (options.db != 0) commands.push_back(Command{"SELECT", std::to_string(options.db)});
    if (!options.client_name.empty()) commands.push_back(Command{"CLIENT", "SETNAME", options.client_name});
    {
      std::lock_guard lock(mutex);
      for (const auto& channel : channels) commands.push_back(Command{"SUBSCRIBE", channel});
    }
    if (commands.empty()) co_return;
    std::string buffer;
    for (const auto& command : commands) encode_command(buffer, command);
    asio::steady_timer deadline(io);
    deadline.expires_after(options.connect_timeout);
    co_await write_all(asio::buffer(buffer));
    std::array<char, 4096> chunk{};
    std::size_t answered = 0;
    while (answered < commands.size()) {
      auto next = parser.next();
      if (!next) throw ConnectionFailure{next.error()};
      if (*next) {
        const Reply& reply = **next;
        if (on_push && is_pushed_message(reply)) {
          on_push(reply.elements[1].text, reply.elements[2].text);
          continue;
        }
        if (reply.is_error()) {
          // "AUTH" alone, never its arguments: they hold the password.
          throw ConnectionFailure{error_from_reply(commands[answered].front(), reply), true};
        }
        ++answered;
        continue;
      }
      boost::system::error_code read_error;
      auto read = co_await (read_some(asio::buffer(chunk), read_error) ||
                            deadline.async_wait(asio::use_awaitable));
      if (read.index() == 1) throw ConnectionFailure{Error{errc::unavailable, "handshake with " + options.endpoint() + " timed out"}};
      if (read_error) throw boost::system::system_error(read_error);
      parser.feed(std::string_view(chunk.data(), std::get<0>(read)));
    }
  }

  // Writes every queued request in one gather write: the requests' own bytes, not a copy of them
  // (`batch` keeps them alive while the write runs, even if the connection fails meanwhile).
  asio::awaitable<void> write_loop() {
    std::vector<asio::const_buffer> buffers;
    while (true) {
      std::deque<std::shared_ptr<Request>> batch;
      {
        std::lock_guard lock(mutex);
        batch.swap(queued);
      }
      buffers.clear();
      for (const auto& request : batch) {
        if (request->is_settled()) continue;  // timed out while it waited
        buffers.push_back(asio::buffer(request->encoded));
        in_flight.push_back(request);
      }
      if (buffers.empty()) {
        if (stopping) throw ConnectionFailure{Error{errc::closed, "closing"}};
        boost::system::error_code woken;
        co_await writer_wake.async_receive(asio::redirect_error(asio::use_awaitable, woken));
        // Whether the reader ended the connection (closing the socket, cancelling this coroutine)
        // or the connection is stopping (the channel cancelled) is asked directly.
        const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
        if (cancelled != asio::cancellation_type::none || !socket->is_open()) {
          throw ConnectionFailure{Error{errc::unavailable, "connection to " + options.endpoint() + " closed"}};
        }
        continue;
      }
      co_await write_all(buffers);
    }
  }

  asio::awaitable<void> read_loop() {
    std::vector<char> chunk(64 * 1024);
    while (true) {
      boost::system::error_code error;
      const auto size = co_await read_some(asio::buffer(chunk), error);
      if (error) throw boost::system::system_error(error);
      parser.feed(std::string_view(chunk.data(), size));
      while (true) {
        auto next = parser.next();
        if (!next) throw ConnectionFailure{next.error()};
        if (!*next) break;
        deliver(std::move(**next));
      }
    }
  }

  void deliver(Reply reply) {
    if (on_push && is_pushed_message(reply)) {
      on_push(std::move(reply.elements[1].text), std::move(reply.elements[2].text));
      return;
    }
    if (in_flight.empty()) {
      throw ConnectionFailure{Error{errc::decode_failed, "redis protocol: a reply nobody asked for from " + options.endpoint()}};
    }
    auto& request = in_flight.front();
    request->replies.push_back(std::move(reply));
    if (request->replies.size() == request->expected) {
      request->settle(std::move(request->replies));
      in_flight.pop_front();
    }
  }
};

Connection::Connection(RedisOptions options, Driver driver)
    : impl_(std::make_shared<Impl>(std::move(options), nullptr, driver)) {
  impl_->start();
}

Connection::Connection(RedisOptions options, PushHandler on_push)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(on_push), Driver::io_thread)) {
  impl_->start();
}

Result<void> Connection::subscribe(const std::string& channel) {
  if (!impl_->on_push) return Error{errc::invalid_argument, "SUBSCRIBE on a connection that is not a subscriber"};
  {
    std::lock_guard lock(impl_->mutex);
    impl_->channels.insert(channel);
  }
  auto confirmed = execute(Command{"SUBSCRIBE", channel});
  if (!confirmed) return std::move(confirmed).error();
  return {};
}

Result<void> Connection::unsubscribe(const std::string& channel) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->channels.erase(channel);
  }
  auto confirmed = execute(Command{"UNSUBSCRIBE", channel});
  if (!confirmed) return std::move(confirmed).error();
  return {};
}

Connection::~Connection() { impl_->stop(); }

const RedisOptions& Connection::options() const noexcept { return impl_->options; }

Result<Reply> Connection::execute(Command command, std::optional<std::chrono::milliseconds> timeout) {
  if (command.empty()) return Error{errc::invalid_argument, "redis: an empty command"};
  auto request = std::make_shared<Request>();
  request->command_name = upper_name(command.front());
  encode_command(request->encoded, command);
  auto replies = impl_->submit(request, timeout.value_or(impl_->options.request_timeout));
  if (!replies) return std::move(replies).error();
  auto& reply = replies->front();
  if (reply.is_error()) return error_from_reply(request->command_name, reply);
  return std::move(reply);
}

Result<std::vector<Reply>> Connection::execute_pipeline(std::vector<Command> commands,
                                                       std::optional<std::chrono::milliseconds> timeout) {
  if (commands.empty()) return std::vector<Reply>{};
  auto request = std::make_shared<Request>();
  request->command_name = "pipeline of " + std::to_string(commands.size()) + " (" + upper_name(commands.front().front()) + ", ...)";
  request->expected = commands.size();
  for (const auto& command : commands) encode_command(request->encoded, command);
  return impl_->submit(request, timeout.value_or(impl_->options.request_timeout));
}

Result<std::vector<Reply>> Connection::execute_encoded(std::string encoded, std::size_t count, std::string name,
                                                      std::optional<std::chrono::milliseconds> timeout) {
  if (count == 0) return std::vector<Reply>{};
  auto request = std::make_shared<Request>();
  request->command_name = std::move(name);
  request->expected = count;
  request->encoded = std::move(encoded);
  return impl_->submit(request, timeout.value_or(impl_->options.request_timeout));
}

struct Connection::Later::State {
  std::shared_ptr<Connection::Impl> impl;
  std::shared_ptr<Request> request;
  std::chrono::steady_clock::time_point deadline;
  std::chrono::milliseconds timeout;
};

std::pair<Result<std::vector<Reply>>, Connection::Later> Connection::execute_encoded_then(
    std::string encoded, std::size_t count, std::string name, std::string later, std::size_t later_count, std::string later_name) {
  auto first = std::make_shared<Request>();
  first->command_name = std::move(name);
  first->expected = count;
  first->encoded = std::move(encoded);
  auto then = std::make_shared<Request>();
  then->command_name = std::move(later_name);
  then->expected = later_count;
  then->encoded = std::move(later);
  const auto timeout = impl_->options.request_timeout;
  auto state = std::make_shared<Later::State>(Later::State{impl_, then, std::chrono::steady_clock::now() + timeout, timeout});
  if (impl_->driver != Driver::caller || count == 0 || later_count == 0) {
    const Error misuse{errc::invalid_argument, "redis: a request written behind another needs a caller-driven connection and two requests"};
    then->settle(misuse);
    return {misuse, Later(std::move(state))};
  }
  auto replies = impl_->submit(std::move(first), timeout, then);
  return {std::move(replies), Later(std::move(state))};
}

Result<std::vector<Reply>> Connection::Later::collect() {
  if (!state_) return Error{errc::invalid_argument, "redis: nothing written to collect"};
  auto state = std::move(state_);
  if (state->request->is_ready()) return state->request->take();
  return state->impl->drive(*state->request, state->deadline, state->timeout);
}

ports::Health Connection::health() {
  const auto started = std::chrono::steady_clock::now();
  auto pong = execute(Command{"PING"});
  const auto latency = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  if (!pong) return {false, latency, pong.error().message()};
  return {true, latency, pong->text + " from " + impl_->options.endpoint()};
}

}  // namespace baton::adapters::redis::detail
