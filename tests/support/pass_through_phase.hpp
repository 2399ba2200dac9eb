#pragma once
// Test double: a phase that hands its input on unchanged.

#include <boost/json/value.hpp>

#include "baton/orchestrator/base_orchestrator.hpp"

namespace baton::test {

class PassThroughPhase final : public orchestrator::BaseOrchestrator<boost::json::value, boost::json::value> {
 public:
  using BaseOrchestrator::BaseOrchestrator;
  ~PassThroughPhase() override { stop(); }

 protected:
  Result<boost::json::value> handle(const boost::json::value& input, orchestrator::Context&) override { return input; }
};

}  // namespace baton::test
