// Phase metrics and the worker's HTTP face: a real scrape of /metrics over loopback.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "baton/adapters/memory/memory_bus.hpp"
#include "baton/app/http_server.hpp"
#include "baton/orchestrator/base_orchestrator.hpp"
#include "support/http_get.hpp"
#include "support/recorder.hpp"

namespace baton::app {
namespace {

using namespace std::chrono_literals;

class Echo final : public orchestrator::BaseOrchestrator<int, int> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~Echo() override { stop(); }

 protected:
  Result<int> handle(const int& value, orchestrator::Context& context) override {
    if (value == 0) return permanent_failure("zero is not allowed");
    if (value == 1 && context.envelope.attempts == 1) return retryable_failure("one fails once");
    return value;
  }
};

TEST(Metrics, CountsWhatAPhaseDoesAndServesItToAScrape) {
  orchestrator::MetricsRegistry registry;
  auto bus = adapters::memory::make_memory_bus();
  auto pipeline = orchestrator::Pipeline::make({"echo"}).value();
  auto options = orchestrator::phase_options(pipeline, "echo").value();
  options.metrics = &registry;
  options.retry.base_delay = 1ms;
  Echo echo(orchestrator::Ports{bus.get()}, options);
  ASSERT_TRUE(echo.start());
  for (int value : {0, 1, 2}) ASSERT_TRUE(bus->publish(pipeline.first_topic(), make_envelope("phase.echo.in", boost::json::value(value))));
  ASSERT_TRUE(test::eventually([&] { return registry.phase("echo").handled.load() == 2 && registry.phase("echo").dead_lettered.load() == 1; }));

  bool ready = true;
  auto server = HttpServer::start("127.0.0.1", 0, HttpRoutes{
      [&] {
        return registry.render([&](std::string& out) {
          const auto stats = bus->topic_stats(pipeline.first_topic()).value();
          out += "# TYPE baton_pending gauge\n";
          for (const auto& group : stats.groups) out += "baton_pending{phase=\"echo\",group=\"" + group.name + "\"} " + std::to_string(group.pending) + "\n";
        });
      },
      [] { return true; }, [&] { return ready; }});
  ASSERT_TRUE(server) << server.error().message();
  const auto port = (*server)->port();

  const auto scrape = test::http_request(port, "/metrics");
  EXPECT_NE(scrape.find("HTTP/1.1 200 OK"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("text/plain; version=0.0.4"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_received_total{phase=\"echo\"} 4"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_handled_total{phase=\"echo\"} 2"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_failed_total{phase=\"echo\"} 2"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_retried_total{phase=\"echo\"} 1"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_dead_lettered_total{phase=\"echo\"} 1"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_handler_seconds_count{phase=\"echo\"} 4"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_handler_seconds_bucket{phase=\"echo\",le=\"+Inf\"} 4"), std::string::npos) << scrape;
  EXPECT_NE(scrape.find("baton_pending{phase=\"echo\",group=\"echo\"} 0"), std::string::npos) << scrape;

  EXPECT_NE(test::http_request(port, "/healthz").find("200 OK"), std::string::npos);
  EXPECT_NE(test::http_request(port, "/readyz").find("200 OK"), std::string::npos);
  ready = false;
  EXPECT_NE(test::http_request(port, "/readyz").find("503 Service Unavailable"), std::string::npos);
  EXPECT_NE(test::http_request(port, "/nope").find("404 Not Found"), std::string::npos);
  EXPECT_NE(test::http_request(port, "/metrics", "POST").find("405 Method Not Allowed"), std::string::npos);
}

TEST(Metrics, ABadAddressIsAClearError) {
  auto server = HttpServer::start("not-an-address", 0, {});
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error(), errc::invalid_argument);
  EXPECT_NE(server.error().detail.find("not-an-address"), std::string::npos);
}

}  // namespace
}  // namespace baton::app
