#pragma once
// `baton demo`: the reference pipeline end to end, with faults, counted from what it left behind.
//
// With no --bus: a private redis-server (AOF, appendfsync always) on a free loopback port in a
// temporary folder, one worker process per phase (`baton run --phase P`), a batch of tasks
// submitted, and while they run redis-server is killed (SIGKILL) and restarted on its AOF once and
// one worker is killed and restarted once. With --bus memory:// everything runs in this process,
// without faults. Some tasks are poison on purpose (the offline provider cannot plan them), so the
// dead-letter path is part of every run.
//
// The summary counts from the storage (releases/<corr_id>/), the KV store (release records,
// traces), the dead-letter queues and a ledger consumer of the completed topic; nothing is assumed.
// Every process it started is ended by PID and its folder removed (unless keep).

#include <chrono>
#include <cstdint>
#include <string>

namespace baton::app {

struct DemoOptions {
  int tasks = 200;
  std::string bus;                   // empty: a private redis-server; memory://: one process
  int poison_every = 40;             // every Nth task cannot be planned (0: none)
  bool faults = true;                // kill redis-server and a worker once each (Redis only)
  std::uint64_t seed = 0;            // which worker is killed; 0: random (printed either way)
  std::chrono::seconds timeout{240}; // for the whole batch to settle
  bool keep = false;                 // keep the temporary folder (logs, storage) and say where
};

// Returns the exit code: 0 when nothing was lost or duplicated, 1 otherwise, 2 for bad options.
int run_demo(const DemoOptions& options);

}  // namespace baton::app
