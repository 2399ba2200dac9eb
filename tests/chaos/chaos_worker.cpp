// A worker process for the chaos suite: the phases of a four-phase pipeline ("chaos.<phase>.in")
// as BaseOrchestrators that pass their input on, with behaviours the scenarios need. Every handler
// call is appended to the calls ledger (one write per line, O_APPEND) as
//   <phase> <corr_id> <attempt> <ok|fail|poison> <pid>
// so re-executions and attempts are counted outside the system under test. Stops gracefully on
// SIGTERM; the tests also SIGKILL, SIGSTOP and SIGCONT it.
//
//   baton_chaos_worker URL PHASES(comma list, the ones to run) LEDGER FAIL_PER_10000 HANDLER_MS RECLAIM_MS CONCURRENCY CURED(0|1) RETAIN_MS

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json/value.hpp>
#include <charconv>
#include <iostream>
#include <sstream>
#include <thread>

#include "baton/adapters/redis/redis_bus.hpp"
#include "baton/core/log.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"

namespace {

using namespace baton;

int number(const char* text) {
  int value = 0;
  std::from_chars(text, text + std::char_traits<char>::length(text), value);
  return value;
}

struct Behaviour {
  int ledger_fd = -1;
  int fail_per_10000 = 0;
  std::chrono::milliseconds handler_time{0};
  bool cured = false;  // poison no longer fails: "the cause was fixed"
};

std::uint64_t mix(std::string_view text, std::uint64_t salt) {
  std::uint64_t hash = 1469598103934665603ull ^ salt;
  for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash ^ (hash >> 29);
}

class ChaosPhase final : public orchestrator::BaseOrchestrator<boost::json::value, boost::json::value> {
 public:
  ChaosPhase(orchestrator::Ports ports, orchestrator::PhaseOptions options, const Behaviour& behaviour)
      : BaseOrchestrator(ports, std::move(options)), behaviour_(behaviour) {}
  ~ChaosPhase() override { stop(); }

 protected:
  Result<boost::json::value> handle(const boost::json::value& input, orchestrator::Context& context) override {
    if (behaviour_.handler_time.count() > 0) std::this_thread::sleep_for(behaviour_.handler_time);
    const auto& envelope = context.envelope;
    const auto* poison = input.is_object() ? input.get_object().if_contains("poison") : nullptr;
    const bool is_poison = poison && poison->is_bool() && poison->get_bool() && options().name == "code" && !behaviour_.cured;
    // Failing calls are chosen by a hash of (message, attempt): the same on every run of a seed.
    const bool flaky = behaviour_.fail_per_10000 > 0 &&
                       mix(envelope.id, envelope.attempts) % 10000 < static_cast<std::uint64_t>(behaviour_.fail_per_10000);
    const char* outcome = is_poison ? "poison" : flaky ? "fail" : "ok";
    std::ostringstream line;
    line << options().name << ' ' << envelope.corr_id << ' ' << envelope.attempts << ' ' << outcome << ' ' << ::getpid() << '\n';
    const auto text = line.str();
    if (::write(behaviour_.ledger_fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return retryable_failure("the calls ledger could not be written");
    }
    if (is_poison) return permanent_failure("poison task: it cannot be handled until the cause is fixed");
    if (flaky) return retryable_failure("flaky dependency (chaos)");
    return input;
  }

 private:
  Behaviour behaviour_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 10) {
    std::cerr << "usage: baton_chaos_worker URL PHASES LEDGER FAIL_PER_10000 HANDLER_MS RECLAIM_MS CONCURRENCY CURED RETAIN_MS\n";
    return 2;
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto redis = adapters::redis::parse_redis_url(argv[1]);
  if (!redis) return 2;
  Behaviour behaviour;
  behaviour.ledger_fd = ::open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  behaviour.fail_per_10000 = number(argv[4]);
  behaviour.handler_time = std::chrono::milliseconds{number(argv[5])};
  behaviour.cured = number(argv[8]) != 0;
  adapters::redis::RedisBusOptions options;
  options.redis = *redis;
  options.redis.client_name = "chaos-" + std::to_string(::getpid());
  options.reclaim_idle = std::chrono::milliseconds{number(argv[6])};
  options.reclaim_interval = std::max(std::chrono::milliseconds{50}, options.reclaim_idle / 5);
  options.retain_acked = std::chrono::milliseconds{number(argv[9])};
  auto bus = adapters::redis::make_redis_bus(options);
  auto pipeline = orchestrator::Pipeline::make({"plan", "code", "certify", "deploy"}, "chaos").value();

  std::vector<std::unique_ptr<ChaosPhase>> phases;
  std::stringstream wanted(argv[2]);
  std::string name;
  while (std::getline(wanted, name, ',')) {
    auto phase_options = orchestrator::phase_options(pipeline, name).value();
    phase_options.consumer = "chaos-" + std::to_string(::getpid());
    phase_options.concurrency = number(argv[7]);
    phase_options.retry.base_delay = std::chrono::milliseconds{5};
    phase_options.retry.max_delay = std::chrono::milliseconds{100};
    phase_options.retry.max_attempts = 30;  // 5 % flaky calls never exhaust this
    phase_options.timeout = std::chrono::minutes{5};
    phases.push_back(std::make_unique<ChaosPhase>(orchestrator::Ports{bus.get()}, phase_options, behaviour));
    if (auto started = phases.back()->start(); !started) {
      std::cerr << "chaos worker: " << started.error().message() << "\n";
      return 1;
    }
  }
  std::cout << "ready " << ::getpid() << std::endl;
  int received = 0;
  sigwait(&stop_signals, &received);
  for (auto& phase : phases) phase->stop();
  log::flush();
  return 0;
}
