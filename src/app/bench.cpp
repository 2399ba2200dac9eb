#include "baton/app/bench.hpp"

#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <optional>
#include <string_view>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/adapters/redis/redis_baseline.hpp"
#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/adapters/redis/redis_kv.hpp"
#include "baton/app/bootstrap.hpp"
#include "baton/app/local_redis.hpp"
#include "baton/app/percentile.hpp"
#include "baton/app/phase_registry.hpp"
#include "baton/app/process_lifetime.hpp"
#include "baton/core/codec.hpp"
#include "baton/core/log.hpp"
#include "baton/core/uuid.hpp"
#include "baton/orchestrator/reference/phases.hpp"
#include "baton/orchestrator/trace.hpp"

namespace baton::app {
namespace {

namespace json = boost::json;
namespace stdfs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}

constexpr std::int64_t not_yet = -1;
constexpr int max_bench_producers = 256;
constexpr int max_bench_consumers = 1024;

// Modes pipeline and handoff: the correlation ids of a run's tasks, a UUID each: the first 24
// characters of one UUIDv7 of the run's, then the task's index in 12 hex digits. A completion is
// matched to its task by parsing its id, not by a table of every id (which held some 200 bytes per
// task and grew the bench's peak RSS with --messages).
class TaskCorrIds {
 public:
  explicit TaskCorrIds(std::size_t count) : prefix_(new_uuid_v7().substr(0, 24)), count_(count) {}

  std::string of(std::size_t index) const {
    char digits[24];  // up to 16 hex digits and the NUL
    std::snprintf(digits, sizeof digits, "%012zx", index);
    return prefix_ + digits;
  }

  // The index of a task of this run, or nothing for any other id.
  std::optional<std::size_t> index_of(std::string_view corr_id) const {
    if (corr_id.size() != prefix_.size() + 12 || !corr_id.starts_with(prefix_)) return std::nullopt;
    const auto digits = corr_id.substr(prefix_.size());
    std::size_t index = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index, 16);
    if (error != std::errc{} || end != digits.data() + digits.size() || index >= count_ || of(index) != corr_id) return std::nullopt;
    return index;
  }

  std::size_t size() const { return count_; }

 private:
  std::string prefix_;
  std::size_t count_;
};

// Messages of each latency floor run (two per paced run): 2 s at 10k msg/s.
constexpr std::size_t floor_messages = 20'000;

// Per message: how often it was handled, and its latencies in microseconds; with `keep_published`
// also when it was published (modes pipeline and handoff, whose completions carry no publish time,
// and mode bus for --samples).
struct Ledger {
  Ledger(std::size_t n, bool keep_published) : handled(n), received_us(n), handler_us(n), acked_us(n), published_ns(keep_published ? n : 0) {
    for (auto& value : received_us) value = not_yet;
    for (auto& value : handler_us) value = not_yet;
    for (auto& value : acked_us) value = not_yet;
  }
  std::vector<std::atomic<std::uint32_t>> handled;
  std::vector<std::atomic<std::int64_t>> received_us;  // publish -> the consumer's read (mode bus)
  std::vector<std::atomic<std::int64_t>> handler_us;
  std::vector<std::atomic<std::int64_t>> acked_us;
  std::vector<std::atomic<std::int64_t>> published_ns;  // empty unless kept
  std::atomic<std::size_t> distinct{0};
  std::atomic<std::size_t> acks{0};
  std::atomic<std::int64_t> last_ack_ns{0};
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0;
};

Percentiles percentiles(std::vector<std::int64_t> values) {
  std::sort(values.begin(), values.end());
  return {percentile(values, 0.50), percentile(values, 0.90), percentile(values, 0.99), percentile(values, 0.999)};
}

// Of the messages [first, last).
Percentiles percentiles(const std::vector<std::atomic<std::int64_t>>& samples, std::size_t first, std::size_t last) {
  std::vector<std::int64_t> values;
  values.reserve(last - first);
  for (std::size_t i = first; i < last; ++i) {
    if (const auto v = samples[i].load(); v != not_yet) values.push_back(v);
  }
  return percentiles(std::move(values));
}

// --samples: one line per measured message, times in microseconds, its publish time from the start
// of the measured run; a latency it has none of (mode pipeline has no read) is left empty.
bool write_samples(std::FILE* file, const Ledger& ledger, std::size_t first, std::size_t last, std::int64_t measured_from_ns) {
  const auto field = [&](std::int64_t value) { return value == not_yet ? std::string() : std::to_string(value); };
  bool ok = std::fputs("index,published_us,received_us,handler_us,ack_us\n", file) >= 0;
  for (std::size_t i = first; ok && i < last; ++i) {
    const auto published = ledger.published_ns[i].load();
    const std::string line = std::to_string(i) + "," + (published > 0 ? std::to_string((published - measured_from_ns) / 1000) : std::string()) +
                             "," + field(ledger.received_us[i].load()) + "," + field(ledger.handler_us[i].load()) + "," +
                             field(ledger.acked_us[i].load()) + "\n";
    ok = std::fputs(line.c_str(), file) >= 0;
  }
  return ok && std::fflush(file) == 0;
}

struct Usage {
  double cpu_seconds = 0;
  double peak_rss_mb = 0;
};

Usage usage() {
  rusage self{};
  ::getrusage(RUSAGE_SELF, &self);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return {seconds(self.ru_utime) + seconds(self.ru_stime), static_cast<double>(self.ru_maxrss) / 1024.0};
}

// "[#########           ]  45%  90000/200000  85310 msg/s" on stderr, until stopped.
class ProgressBar {
 public:
  ProgressBar(bool enabled, std::size_t total, const std::atomic<std::size_t>& done) : total_(total), done_(done) {
    if (!enabled) return;
    thread_ = std::jthread([this](std::stop_token stop) {
      const auto started = SteadyClock::now();
      while (!stop.stop_requested()) {
        draw(std::chrono::duration<double>(SteadyClock::now() - started).count());
        std::this_thread::sleep_for(200ms);
      }
      draw(std::chrono::duration<double>(SteadyClock::now() - started).count());
      std::fputc('\n', stderr);
    });
  }
  ~ProgressBar() { stop(); }
  void stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }

 private:
  void draw(double seconds) const {
    const auto done = std::min(done_.load(), total_);
    const double share = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    std::string bar(30, ' ');
    std::fill_n(bar.begin(), static_cast<std::size_t>(share * 30), '#');
    std::fprintf(stderr, "\r[%s] %3.0f%%  %zu/%zu  %.0f msg/s   ", bar.c_str(), share * 100, done, total_,
                 seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
    std::fflush(stderr);
  }
  std::size_t total_;
  const std::atomic<std::size_t>& done_;
  std::jthread thread_;
};

// Publishes messages [first, last) step `step`, in batches, paced to `rate` per second when set;
// calls `measuring()` before the first batch that holds an index from `measured` on. A batch's
// messages are made by `make(index)` and given their publish time by `stamp`, right before the
// batch is published.
template <class Make, class Stamp, class Measuring>
Result<void> produce(ports::MessageBus& bus, const std::string& topic, std::size_t first, std::size_t count, std::size_t step,
                     double rate, std::size_t measured, Make make, Stamp stamp, Measuring measuring) {
  const std::size_t batch = rate > 0 ? std::max<std::size_t>(1, static_cast<std::size_t>(rate / 1000)) : 256;
  const auto started = SteadyClock::now();
  std::vector<std::size_t> indexes;
  std::vector<JsonEnvelope> envelopes;
  std::size_t sent = 0;
  bool measuring_called = false;
  for (std::size_t index = first; index < count; index += step) {
    indexes.push_back(index);
    if (indexes.size() < batch && index + step < count) continue;
    if (rate > 0) {
      const auto due = started + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(static_cast<double>(sent) / rate));
      std::this_thread::sleep_until(due);
    }
    if (!measuring_called && index >= measured) {
      measuring_called = true;
      measuring();
    }
    for (const auto each : indexes) envelopes.push_back(make(each));
    stamp(std::span<JsonEnvelope>(envelopes), std::span<const std::size_t>(indexes));
    indexes.clear();
    for (int attempt = 0;; ++attempt) {
      auto published = bus.publish_batch(topic, envelopes);
      if (published) break;
      if (attempt == 20 || !is_retryable(published.error())) return published;
      std::this_thread::sleep_for(50ms);
    }
    sent += envelopes.size();
    envelopes.clear();
  }
  return {};
}

std::string redis_url_of(const BenchOptions& options, std::unique_ptr<LocalRedisServer>& private_server) {
  if (!options.bus.empty()) return options.bus;
  private_server = std::make_unique<LocalRedisServer>(LocalRedisOptions{.append_only = false});
  return private_server->url();
}

// What kind of filesystem holds `folder`, by name for the common ones: a pipeline run on tmpfs
// and one on a disk differ by the cost of every fsync.
std::string filesystem_name(const stdfs::path& folder) {
  struct statfs info {};
  if (::statfs(folder.c_str(), &info) != 0) return "unknown";
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0x01021994: return "tmpfs";
    case 0xEF53: return "ext4";  // ext2 and ext3 share the number
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    case 0x6969: return "nfs";
    default: break;
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(info.f_type));
  return hex;
}

// A phase of mode handoff: hands its input on unchanged.
class RelayPhase final : public orchestrator::BaseOrchestrator<json::value, json::value> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~RelayPhase() override { stop(); }

 protected:
  Result<json::value> handle(const json::value& input, orchestrator::Context&) override { return input; }
};

std::uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) : 0;
}

}  // namespace

std::optional<std::string> bench_options_error(const BenchOptions& options, std::uint64_t local_memory_bytes) {
  if (options.mode != "bus" && options.mode != "pipeline" && options.mode != "handoff") {
    return "--mode must be bus, pipeline or handoff, got \"" + options.mode + "\"";
  }
  if (options.messages == 0) return "--messages must be at least 1";
  if (options.producers < 1 || options.producers > max_bench_producers) {
    return "--producers must be 1-" + std::to_string(max_bench_producers) + ", got " + std::to_string(options.producers);
  }
  // The same bound as a phase's concurrency in the config: each is a thread.
  if (options.consumers < 1 || options.consumers > max_bench_consumers) {
    return "--consumers must be 1-" + std::to_string(max_bench_consumers) + ", got " + std::to_string(options.consumers);
  }
  if (!std::isfinite(options.rate) || options.rate < 0) {
    std::ostringstream given;
    given << options.rate;
    return "--rate must be a number of messages per second, 0 (flat out) or more, got " + given.str();
  }
  if (!options.samples.empty()) {
    std::error_code error;
    const auto folder = stdfs::absolute(options.samples, error).parent_path();
    if (error || !stdfs::is_directory(folder, error) || stdfs::is_directory(options.samples, error)) {
      return "--samples must name a file in an existing folder, got \"" + options.samples + "\"";
    }
  }
  if (!options.scratch.empty()) {
    std::error_code error;
    if (!stdfs::is_directory(options.scratch, error)) return "--scratch must be an existing folder, got \"" + options.scratch + "\"";
  }
  // A payload the bus would refuse to publish is refused here, before the baseline spends minutes on it.
  if (const auto limit = CodecLimits{}.max_payload_bytes; options.payload_bytes > limit) {
    return "--payload-bytes must be at most " + std::to_string(limit) + " (the largest payload an envelope may carry), got " +
           std::to_string(options.payload_bytes);
  }
  // Every message of a run stays in its stream until the run ends (acked entries are kept for a
  // while), next to the baseline's of the same size, and the bench keeps a ledger entry for each.
  if (local_memory_bytes > 0) {
    const auto total = static_cast<long double>(options.warm_up.value_or(options.messages / 10)) + static_cast<long double>(options.messages);
    const auto needed = total * (2.0L * (static_cast<long double>(options.payload_bytes) + 256.0L) + 64.0L);
    if (needed > static_cast<long double>(local_memory_bytes) / 2) {
      const auto mb = [](long double bytes) { return std::to_string(static_cast<std::uint64_t>(bytes / (1024.0L * 1024.0L))); };
      return "--messages (with the warm-up) times --payload-bytes would hold about " + mb(needed) +
             " MB during the run, over half of this machine's " + mb(static_cast<long double>(local_memory_bytes)) +
             " MB: ask for fewer or smaller messages";
    }
  }
  return std::nullopt;
}

int run_bench(const BenchOptions& options) {
  if (const auto error = bench_options_error(options, options.bus.empty() || options.bus == "memory://" ? physical_memory_bytes() : 0)) {
    std::cerr << "baton bench: " << *error << "\n";
    return 2;
  }
  // Opened before anything runs, so that a file that cannot be written does not cost a whole run.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> samples_file(nullptr, &std::fclose);
  if (!options.samples.empty()) {
    samples_file.reset(std::fopen(options.samples.c_str(), "w"));
    if (!samples_file) {
      std::cerr << "baton bench: --samples: cannot write \"" << options.samples << "\": " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  // Indices [0, warm_up) are the warm-up, [warm_up, total) the measured messages.
  const std::size_t warm_up = options.warm_up.value_or(options.messages / 10);
  const std::size_t total = warm_up + options.messages;
  const stdfs::path scratch = !options.scratch.empty() ? stdfs::path(options.scratch)
                              : stdfs::exists("/dev/shm") ? stdfs::path("/dev/shm")
                                                          : stdfs::temp_directory_path();
  const std::string scratch_filesystem = filesystem_name(scratch);
  auto made = make_scratch_folder(scratch, "baton-bench-");
  if (!made) {
    std::cerr << "baton bench: " << made.error().message() << "\n";
    return 1;
  }
  const stdfs::path folder = *made;
  log::log_to_file(folder / "bench.log");  // warnings of a run go to a file, not over the progress bar
  log::set_level(log::Level::warn);

  std::unique_ptr<LocalRedisServer> private_server;
  const bool memory = options.bus == "memory://";
  std::string url;
  try {
    url = memory ? options.bus : redis_url_of(options, private_server);
  } catch (const std::exception& failure) {
    std::cerr << "baton bench: " << failure.what() << "\n";
    return 1;
  }
  const std::string run_id = new_uuid_v7().substr(24);
  const std::string space = "bench-" + run_id;

  // The same bytes the bus writes: an encoded envelope with a payload of the requested size.
  // Sized by counting digits, not by serialising each payload: the producer shares the machine
  // with what it measures, and the baseline pays for no such work.
  const auto make_payload = [&](std::size_t index) {
    const auto digits = [](std::uint64_t number) {
      std::size_t count = 1;
      for (; number >= 10; number /= 10) ++count;
      return count;
    };
    const auto now = now_ns();
    // {"i":<index>,"t":<now>} is 11 characters and the digits; ,"pad":"" and a margin are 10.
    const auto base = 11 + digits(index) + digits(static_cast<std::uint64_t>(now)) + 10;
    json::object payload;
    payload.reserve(3);
    payload.emplace("i", index);
    payload.emplace("t", now);
    payload.emplace("pad", json::string(options.payload_bytes > base ? options.payload_bytes - base : 0, 'x'));
    return payload;
  };

  // The baseline runs twice, before and after the measured run, and the ratio uses their mean: on
  // a shared VM the speed of the machine drifts within seconds, and one short baseline run on one
  // side of the measured run was seen to move the ratio by half.
  std::optional<adapters::redis::RedisOptions> redis_options;
  if (!memory) {
    auto parsed = adapters::redis::parse_redis_url(url);
    if (!parsed) {
      std::cerr << "baton bench: --bus: " << parsed.error().message() << "\n";
      return 2;
    }
    redis_options = *parsed;
  }
  // The server's CPU time so far (null for memory://, or when the server will not say: an ACL user
  // without INFO, say; the run goes on without the figure).
  bool server_cpu_unavailable = memory;
  const auto server_cpu = [&]() -> std::optional<double> {
    if (server_cpu_unavailable) return std::nullopt;
    auto read = adapters::redis::server_cpu_seconds(*redis_options);
    if (!read) {
      std::cerr << "baton bench: no server CPU figures: " << read.error().message() << "\n";
      server_cpu_unavailable = true;
      return std::nullopt;
    }
    return *read;
  };
  // Microseconds of the server's CPU per message between two readings.
  const auto server_us_per_message = [](std::optional<double> before, std::optional<double> after, std::size_t messages) {
    return before && after && messages > 0 ? std::optional(std::max(0.0, *after - *before) * 1e6 / static_cast<double>(messages))
                                           : std::nullopt;
  };
  struct BaselineRun {
    double per_s = 0;
    std::optional<double> server_us_per_xadd;
  };
  const auto measure_baseline = [&]() -> std::optional<BaselineRun> {
    const auto sample = encode(make_envelope(space + ".load", json::value(make_payload(0))));
    const auto cpu_before = server_cpu();
    auto took = adapters::redis::time_pipelined_xadd(*redis_options, "baton:{" + space + "}:baseline", options.messages, sample);
    if (!took) {
      std::cerr << "baton bench: baseline: " << took.error().message() << "\n";
      return std::nullopt;
    }
    return BaselineRun{static_cast<double>(options.messages) / std::chrono::duration<double>(*took).count(),
                       server_us_per_message(cpu_before, server_cpu(), options.messages)};
  };
  std::vector<double> baseline_runs;
  std::vector<double> baseline_server_us;  // per XADD, of the counted baseline runs that have the figure
  const auto count_baseline = [&](const BaselineRun& run) {
    baseline_runs.push_back(run.per_s);
    if (run.server_us_per_xadd) baseline_server_us.push_back(*run.server_us_per_xadd);
  };
  // One more run first, not counted: a new server (the private one always is) was measured 20-30 %
  // slower in the first run than in the second, and the measured run too was faster after it, which
  // a long-running server would be (docs/BENCHMARKS.md, round 10).
  std::optional<double> warm_up_per_s;
  if (!memory) {
    const auto warm_up_run = measure_baseline();
    if (!warm_up_run) return 1;
    warm_up_per_s = warm_up_run->per_s;
    const auto before = measure_baseline();
    if (!before) return 1;
    count_baseline(*before);
  }
  // A paced run gets a latency floor too, before and after like the throughput baseline: the same
  // rate and batches through the same server to a bare XREADGROUP reader, nothing of the bus in
  // between. On this VM a wake-up of Redis or of a thread on the other, idle vCPU was seen to take
  // 80-180 us (docs/BENCHMARKS.md, round 7), and this shows how much of the bus's latency is that.
  const bool measure_floor = !memory && options.mode == "bus" && options.rate > 0;
  std::vector<std::int64_t> floor_samples;
  const auto measure_floor_once = [&]() -> bool {
    const auto sample = encode(make_envelope(space + ".load", json::value(make_payload(0))));
    auto took = adapters::redis::time_paced_xadd_to_reader(*redis_options, "baton:{" + space + "}:floor",
                                                           std::min<std::size_t>(options.messages, floor_messages), sample, options.rate);
    if (!took) {
      std::cerr << "baton bench: latency floor: " << took.error().message() << "\n";
      return false;
    }
    floor_samples.insert(floor_samples.end(), took->begin(), took->end());
    return true;
  };
  if (measure_floor && !measure_floor_once()) return 1;

  Ledger ledger(total, samples_file != nullptr || options.mode != "bus");
  std::unique_ptr<Runtime> runtime;
  std::unique_ptr<ports::MessageBus> bus;
  std::vector<std::unique_ptr<RunnablePhase>> phases;
  orchestrator::MetricsRegistry metrics;
  ports::Subscription subscription;
  std::string topic;
  // Modes pipeline and handoff: a task's envelope is made as it is published; kept is only when
  // it was published (in the ledger). Its correlation id tells which task a completion is.
  const TaskCorrIds task_corr_ids(options.mode == "bus" ? 0 : total);

  if (options.mode == "bus") {
    topic = space + ".load";
    if (memory) {
      bus = adapters::memory::make_memory_bus();
    } else {
      adapters::redis::RedisBusOptions bus_options;
      bus_options.redis = *adapters::redis::parse_redis_url(url);
      bus_options.redis.request_timeout = 10s;
      bus = adapters::redis::make_redis_bus(bus_options);
    }
    ports::SubscribeOptions subscribe;
    subscribe.group = "bench";
    subscribe.concurrency = options.consumers;
    // The marks need to outlive the run only: on a server the bench was pointed at, they are what
    // it leaves behind (remove_topic_keys cannot list them), so they go soon after it.
    subscribe.dedup_window = std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout) + 10min;
    subscribe.on_acked = [&](const JsonEnvelope& envelope) {
      const auto index = envelope.payload.at("i").to_number<std::size_t>();
      const auto now = now_ns();
      ledger.acked_us[index] = (now - envelope.payload.at("t").to_number<std::int64_t>()) / 1000;
      ledger.last_ack_ns = now;
      ++ledger.acks;
    };
    auto subscribed = bus->subscribe(topic, [&](const JsonEnvelope& envelope, const ports::DeliveryInfo& info) -> Result<void> {
      const auto now = now_ns();
      const auto index = envelope.payload.at("i").to_number<std::size_t>();
      if (ledger.handled[index]++ == 0) {
        const auto published = envelope.payload.at("t").to_number<std::int64_t>();
        // The bus's steady clock, as now_ns() is.
        const auto received = std::chrono::duration_cast<std::chrono::nanoseconds>(info.received_at.time_since_epoch()).count();
        ledger.received_us[index] = (received - published) / 1000;
        ledger.handler_us[index] = (now - published) / 1000;
        if (!ledger.published_ns.empty()) ledger.published_ns[index] = published;
        ++ledger.distinct;
      }
      return {};
    }, subscribe);
    if (!subscribed) {
      std::cerr << "baton bench: " << subscribed.error().message() << "\n";
      return 1;
    }
    subscription = std::move(*subscribed);
  } else {
    Config config;
    config.bus = config.kv = url;
    config.space = space;
    config.storage_root = (folder / "storage").string();
    config.log_level = "warn";
    for (const auto& phase : config.phases) config.phase_settings[phase].concurrency = options.consumers;
    auto booted = bootstrap(config, {.request_timeout = 10s});
    if (!booted) {
      std::cerr << "baton bench: " << booted.error().message() << "\n";
      return 2;
    }
    runtime = std::make_unique<Runtime>(std::move(*booted));
    // Mode handoff: the pipeline's phases, each handing its input on unchanged, so that what is
    // measured is the runtime's own work per hop (read, begin, trace, atomic hand-off).
    PhaseRegistry relays;
    for (const auto& phase : runtime->pipeline->phases()) relays.add(phase, phase_factory<RelayPhase>());
    PhaseRegistry& registry = options.mode == "handoff" ? relays : linked_phases();
    if (options.mode != "handoff") register_reference_phases(registry, *runtime);
    auto started = start_phases(*runtime, {}, registry, metrics);
    if (!started) {
      std::cerr << "baton bench: " << started.error().message() << "\n";
      return 1;
    }
    phases = std::move(*started);
    topic = runtime->pipeline->first_topic();
    ports::SubscribeOptions ledger_options;
    ledger_options.group = "bench-ledger";
    ledger_options.concurrency = 2;
    auto subscribed = runtime->bus->subscribe(runtime->pipeline->completed_topic(), [&](const JsonEnvelope& envelope, const ports::DeliveryInfo&) -> Result<void> {
      const auto found = task_corr_ids.index_of(envelope.corr_id);
      if (!found) return {};
      const auto index = *found;
      const auto now = now_ns();
      if (ledger.handled[index]++ == 0) {
        ledger.acked_us[index] = ledger.handler_us[index] = (now - ledger.published_ns[index].load()) / 1000;
        ++ledger.distinct;
        ++ledger.acks;
        ledger.last_ack_ns = now;
      }
      return {};
    }, ledger_options);
    if (!subscribed) {
      std::cerr << "baton bench: " << subscribed.error().message() << "\n";
      return 1;
    }
    subscription = std::move(*subscribed);
  }
  ports::MessageBus& target = runtime ? *runtime->bus : *bus;

  // Where the measured run starts: the first batch holding a measured message, and the acks by then.
  std::once_flag measuring_once;
  std::int64_t measured_from_ns = 0;
  std::size_t acks_before_measured = 0;
  std::optional<double> measured_server_cpu;
  const auto measuring = [&] {
    std::call_once(measuring_once, [&] {
      measured_server_cpu = server_cpu();  // first: its round trip is not the run's time
      measured_from_ns = now_ns();
      acks_before_measured = ledger.acks.load();
    });
  };
  ProgressBar progress(!options.json, total, ledger.acks);
  std::vector<std::thread> producers;
  std::atomic<bool> produce_failed{false};
  for (int p = 0; p < options.producers; ++p) {
    producers.emplace_back([&, p] {
      const auto make = [&](std::size_t index) {
        if (runtime) {
          // A tenant of the run's own: what the phases keep in the KV store sits apart from a
          // server's other data, under a prefix of its own, until it expires.
          return make_envelope(topic, json::value{{"task", "bench task " + std::to_string(index)}, {"i", index}},
                               EnvelopeOptions{.corr_id = task_corr_ids.of(index), .tenant_id = space});
        }
        return make_envelope(topic, json::value(make_payload(index)));
      };
      const auto stamp = [&](std::span<JsonEnvelope> envelopes, std::span<const std::size_t> indexes) {
        const auto now = now_ns();
        for (std::size_t k = 0; k < envelopes.size(); ++k) {
          if (runtime) {
            ledger.published_ns[indexes[k]] = now;
          } else {
            envelopes[k].payload.as_object()["t"] = now;
          }
        }
      };
      auto produced = produce(target, topic, static_cast<std::size_t>(p), total, static_cast<std::size_t>(options.producers),
                              options.rate / options.producers, warm_up, make, stamp, measuring);
      if (!produced) {
        produce_failed = true;
        std::cerr << "baton bench: publish failed: " << produced.error().message() << "\n";
      }
    });
  }
  for (auto& producer : producers) producer.join();
  const auto deadline = SteadyClock::now() + options.timeout;
  while (!produce_failed && ledger.acks.load() < total && SteadyClock::now() < deadline) std::this_thread::sleep_for(5ms);
  // Modes pipeline and handoff: the phases' trace events are written behind their hand-offs, and a
  // run that ended at its last completion would leave that work (up to the writers' queues) out
  // of its time and of the server's CPU. It ends when they are written too.
  std::int64_t run_end_ns = ledger.last_ack_ns.load();
  std::optional<double> trace_drain_ms;
  if (!phases.empty() && !produce_failed) {
    std::int64_t drained_ns = 0;
    for (auto& phase : phases) {
      const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()), 1000ms);
      const auto drained = phase->drain_traces(left);
      if (!drained) {
        std::cerr << "baton bench: trace events still unwritten " << left.count() << " ms after the run\n";
        drained_ns = now_ns();
        break;
      }
      drained_ns = std::max(drained_ns, std::chrono::duration_cast<std::chrono::nanoseconds>(drained->time_since_epoch()).count());
    }
    trace_drain_ms = static_cast<double>(std::max<std::int64_t>(0, drained_ns - run_end_ns)) / 1e6;
    run_end_ns = std::max(run_end_ns, drained_ns);
  }
  const auto server_cpu_after_run = server_cpu();
  // Anything delivered twice would show up now; give it a moment to arrive.
  std::this_thread::sleep_for(200ms);
  progress.stop();
  subscription.stop();
  for (auto& phase : phases) phase->stop();

  std::optional<double> baseline_per_s;
  if (!memory) {
    const auto after = measure_baseline();
    if (!after) return 1;
    count_baseline(*after);
    baseline_per_s = (baseline_runs.front() + baseline_runs.back()) / 2;
  }
  if (measure_floor && !measure_floor_once()) return 1;
  const std::optional<Percentiles> floor = measure_floor ? std::optional(percentiles(floor_samples)) : std::nullopt;

  std::size_t duplicates = 0;
  for (const auto& count : ledger.handled) {
    if (const auto times = count.load(); times > 1) duplicates += times - 1;
  }
  const std::size_t lost = total - ledger.distinct.load();
  // A run that failed to publish may not have reached its measured messages.
  if (measured_from_ns == 0) measured_from_ns = now_ns();
  // No measured message acked (a run whose publishing failed): no time to speak of, not a negative one.
  const double seconds = std::max(0.0, static_cast<double>(run_end_ns - measured_from_ns) / 1e9);
  const double throughput = seconds > 0 ? static_cast<double>(ledger.acks.load() - acks_before_measured) / seconds : 0;
  const auto server_us = server_us_per_message(measured_server_cpu, server_cpu_after_run, ledger.acks.load() - acks_before_measured);
  // Plain values with a flag, not optionals: g++ 12 at -O2 takes a read of such an optional for a
  // read of uninitialised memory (-Wmaybe-uninitialized) in the TSan build.
  const bool server_figures = server_us.has_value() && !baseline_server_us.empty() && baseline_server_us.size() == baseline_runs.size();
  const double server_us_value = server_figures ? *server_us : 0;
  const double baseline_server_us_mean = server_figures ? (baseline_server_us.front() + baseline_server_us.back()) / 2 : 0;
  const auto to_handler = percentiles(ledger.handler_us, warm_up, total);
  const bool split = options.mode == "bus";  // publish -> received -> handler
  const auto to_received = percentiles(ledger.received_us, warm_up, total);
  const auto to_ack = percentiles(ledger.acked_us, warm_up, total);
  const auto warm_up_to_handler = percentiles(ledger.handler_us, 0, warm_up);
  // A figure of percentiles that a run may not have (no floor without --rate, say): null then.
  const auto field_of = [](const Percentiles* measured, double Percentiles::*field) {
    return measured ? json::value(measured->*field) : json::value(nullptr);
  };
  const Percentiles* const floor_measured = floor ? &*floor : nullptr;
  const Percentiles* const received_measured = split ? &to_received : nullptr;
  const Percentiles* const warm_up_measured = warm_up > 0 ? &warm_up_to_handler : nullptr;
  const auto used = usage();
  bool samples_failed = false;
  if (samples_file) {
    samples_failed = !write_samples(samples_file.get(), ledger, warm_up, total, measured_from_ns) || std::fclose(samples_file.release()) != 0;
    if (samples_failed) std::cerr << "baton bench: --samples: could not write \"" << options.samples << "\": " << std::strerror(errno) << "\n";
  }

  json::object report{{"mode", options.mode}, {"messages", options.messages}, {"warm_up_messages", warm_up}, {"producers", options.producers},
                      {"consumers", options.consumers}, {"payload_bytes", options.payload_bytes}, {"rate", options.rate},
                      {"bus", memory ? "memory://" : (private_server ? "private redis-server (AOF off)" : "redis")},
                      {"scratch", scratch.string()}, {"scratch_filesystem", scratch_filesystem},
                      {"seconds", seconds}, {"throughput_msgs_per_s", throughput},
                      {"trace_drain_ms", trace_drain_ms ? json::value(*trace_drain_ms) : json::value(nullptr)},
                      {"baseline_xadd_per_s", baseline_per_s ? json::value(*baseline_per_s) : json::value(nullptr)},
                      {"ratio_to_baseline", baseline_per_s ? json::value(throughput / *baseline_per_s) : json::value(nullptr)},
                      {"baseline_runs_per_s", json::value_from(baseline_runs)},
                      {"warm_up_xadd_per_s", warm_up_per_s ? json::value(*warm_up_per_s) : json::value(nullptr)},
                      {"server_cpu_us_per_msg", server_figures ? json::value(server_us_value) : json::value(nullptr)},
                      {"baseline_server_cpu_us_per_xadd", server_figures ? json::value(baseline_server_us_mean) : json::value(nullptr)},
                      {"p50_us", to_handler.p50}, {"p90_us", to_handler.p90}, {"p99_us", to_handler.p99}, {"p999_us", to_handler.p999},
                      {"received_p50_us", field_of(received_measured, &Percentiles::p50)},
                      {"received_p90_us", field_of(received_measured, &Percentiles::p90)},
                      {"received_p99_us", field_of(received_measured, &Percentiles::p99)},
                      {"received_p999_us", field_of(received_measured, &Percentiles::p999)},
                      {"ack_p50_us", to_ack.p50}, {"ack_p90_us", to_ack.p90}, {"ack_p99_us", to_ack.p99}, {"ack_p999_us", to_ack.p999},
                      {"floor_p50_us", field_of(floor_measured, &Percentiles::p50)},
                      {"floor_p90_us", field_of(floor_measured, &Percentiles::p90)},
                      {"floor_p99_us", field_of(floor_measured, &Percentiles::p99)},
                      {"floor_p999_us", field_of(floor_measured, &Percentiles::p999)},
                      {"warm_up_p50_us", field_of(warm_up_measured, &Percentiles::p50)},
                      {"warm_up_p99_us", field_of(warm_up_measured, &Percentiles::p99)},
                      {"lost", lost}, {"duplicates", duplicates}, {"cpu_seconds", used.cpu_seconds}, {"peak_rss_mb", used.peak_rss_mb}};
  if (!options.json) {
    std::printf("mode %s: %zu messages of %zu bytes after a warm-up of %zu, %d producer(s), %d consumer(s)%s\n", options.mode.c_str(),
                options.messages, options.payload_bytes, warm_up, options.producers, options.consumers, options.rate > 0 ? ", paced" : "");
    std::printf("  files (storage, log) under   %s (%s)\n", scratch.c_str(), scratch_filesystem.c_str());
    if (baseline_per_s) {
      std::printf("  raw pipelined XADD baseline  %10.0f /s (same server, same client, same bytes; mean of %.0f before and %.0f after,\n"
                  "                               following a warm-up run of %.0f)\n",
                  *baseline_per_s, baseline_runs.front(), baseline_runs.back(), *warm_up_per_s);
    }
    std::printf("  throughput                   %10.0f msg/s%s\n", throughput, baseline_per_s ? "" : " (no baseline for memory://)");
    if (baseline_per_s) std::printf("  ratio to the baseline        %10.3f\n", throughput / *baseline_per_s);
    if (trace_drain_ms) {
      std::printf("  traces written               %10.1f ms after the last completion (counted in the run's time)\n", *trace_drain_ms);
    }
    if (server_figures) {
      std::printf("  server CPU per %-13s %10.2f us (per XADD of the baseline: %.2f us)\n", options.mode == "bus" ? "message" : "task",
                  server_us_value, baseline_server_us_mean);
    }
    const char* first_label = options.mode == "bus" ? "publish -> handler" : "submit -> completed";
    std::printf("  latency %-20s p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us\n", first_label, to_handler.p50, to_handler.p90,
                to_handler.p99, to_handler.p999);
    if (split) {
      std::printf("  latency %-20s p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us (read by the consumer; the rest is the bus's begin\n"
                  "                               and hand-over to a worker)\n",
                  "publish -> received", to_received.p50, to_received.p90, to_received.p99, to_received.p999);
    }
    if (floor) {
      std::printf("  latency %-20s p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us (raw XADD -> XREADGROUP floor, same rate)\n",
                  "floor", floor->p50, floor->p90, floor->p99, floor->p999);
    }
    if (options.mode == "bus") {
      std::printf("  latency %-20s p50 %.0f us  p90 %.0f us  p99 %.0f us  p99.9 %.0f us\n", "publish -> ack", to_ack.p50, to_ack.p90,
                  to_ack.p99, to_ack.p999);
    }
    if (warm_up > 0) {
      std::printf("  latency %-20s p50 %.0f us  p99 %.0f us (the warm-up's own, not in the figures above)\n", "warm-up",
                  warm_up_to_handler.p50, warm_up_to_handler.p99);
    }
    std::printf("  lost %zu, duplicates %zu (warm-up included), cpu %.2f s, peak rss %.1f MB\n", lost, duplicates, used.cpu_seconds,
                used.peak_rss_mb);
  }
  std::cout << json::serialize(report) << std::endl;
  log::flush();
  log::log_to_stderr();
  // On a server the bench was pointed at, its streams go with it (a private server goes anyway).
  if (!memory && !private_server) {
    std::vector<std::string> topics{topic};
    if (runtime) {
      topics.clear();
      for (const auto& phase : runtime->pipeline->phases()) topics.push_back(runtime->pipeline->input_topic(phase));
      topics.push_back(runtime->pipeline->completed_topic());
    }
    adapters::redis::RedisBusOptions removal;
    removal.redis = *redis_options;
    for (const auto& name : topics) {
      if (auto removed = adapters::redis::remove_topic_keys(removal, name); !removed) {
        std::cerr << "baton bench: could not remove the keys of " << name << ": " << removed.error().message() << "\n";
      }
    }
    // The tasks' release records are kept for good and their traces for a week; the rest of what
    // the phases keep expires within a day.
    std::vector<std::string> task_keys;
    task_keys.reserve(2 * task_corr_ids.size());
    for (std::size_t index = 0; index < task_corr_ids.size(); ++index) {
      const auto corr_id = task_corr_ids.of(index);
      task_keys.push_back(orchestrator::trace_key(space, corr_id));
      task_keys.push_back(reference::release_key(space, corr_id));
    }
    if (auto removed = task_keys.empty() ? Result<std::size_t>{0} : adapters::redis::remove_kv_keys(*redis_options, task_keys); !removed) {
      std::cerr << "baton bench: could not remove every task's trace and release record: " << removed.error().message() << "\n";
    }
  }
  bus.reset();
  runtime.reset();
  private_server.reset();
  std::error_code ignored;
  stdfs::remove_all(folder, ignored);
  forget_scratch_folder(folder.string());
  if (lost > 0 || duplicates > 0 || produce_failed) {
    std::cerr << "baton bench: FAILED: " << lost << " lost, " << duplicates << " duplicated\n";
    return 1;
  }
  return samples_failed ? 1 : 0;
}

}  // namespace baton::app
