#pragma once
// `baton bench`: throughput and latency of the real adapters, against a raw baseline measured in the
// same run on the same server (pipelined XADD of the same bytes by the same client).
//
// mode bus: N envelopes through one durable topic (consumer group, ack per message, dedup on) with
//   a handler that does nothing but count; latency from publish to handler start and to the ack.
// mode pipeline: N tasks through the four reference phases (offline AI, files on tmpfs when there
//   is one), a hand-off at every hop; latency from submit to the completed message.
// Lost and duplicated messages are counted (every message carries its index); either one makes the
// run fail (exit 1).
//
// A warm-up goes first: more messages (a tenth of N unless told), published just before the N
// without a pause, so that the N meet a subscription in its steady state (connections made, threads
// running, reads at their size) as the baseline's XADDs meet a warmed-up server. They are counted
// for lost and duplicated like the rest; latencies and throughput are the N's.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace baton::app {

struct BenchOptions {
  std::string bus;                  // empty: a private redis-server (AOF off); memory:// has no baseline
  std::string mode = "bus";         // bus | pipeline | handoff
  std::size_t messages = 200'000;
  std::optional<std::size_t> warm_up;  // messages published first, not measured; unset: messages / 10
  int producers = 1;
  int consumers = 4;                // handlers at once (per phase in pipeline mode)
  std::size_t payload_bytes = 256;
  double rate = 0;                  // messages per second over all producers; 0: as fast as possible
  bool json = false;                // one JSON object as the last line, no progress bar
  std::chrono::seconds timeout{600};
  // Where the run's files go (the pipeline's storage and the log); empty:
  // /dev/shm when there is one, so that a run measures baton and Redis, not the disk.
  std::string scratch;
  // A CSV file to write every measured message's timings to (docs/BENCHMARKS.md, "Reproducing"):
  // where a tail comes from shows in when its slow messages were published. Empty: none.
  std::string samples;
};

// Why these options cannot make a run, naming the option; nullopt when they can. `local_memory_bytes`
// is the memory of the machine that will hold the run's streams (this one, for a private server or
// memory://); 0 when the server is elsewhere and its own limits apply.
std::optional<std::string> bench_options_error(const BenchOptions& options, std::uint64_t local_memory_bytes);

int run_bench(const BenchOptions& options);

}  // namespace baton::app
