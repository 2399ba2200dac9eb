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

#include <chrono>
#include <cstddef>
#include <string>

namespace baton::app {

struct BenchOptions {
  std::string bus;                  // empty: a private redis-server (AOF off); memory:// has no baseline
  std::string mode = "bus";         // bus | pipeline
  std::size_t messages = 200'000;
  int producers = 1;
  int consumers = 4;                // handlers at once (per phase in pipeline mode)
  std::size_t payload_bytes = 256;
  double rate = 0;                  // messages per second over all producers; 0: as fast as possible
  bool json = false;                // one JSON object as the last line, no progress bar
  std::chrono::seconds timeout{600};
};

int run_bench(const BenchOptions& options);

}  // namespace baton::app
