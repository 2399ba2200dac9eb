// Test double: pass-through phases linked into `baton_test_app` (the real command line plus these),
// so that `run` can be tested end to end before the reference coordinators exist.
// See tests/integration/cli_test.cpp.

#include "baton/app/phase_registry.hpp"
#include "support/pass_through_phase.hpp"

namespace {

const bool registered = [] {
  for (const char* name : {"plan", "code", "certify", "deploy"}) {
    baton::app::linked_phases().add(name, baton::app::phase_factory<baton::test::PassThroughPhase>());
  }
  return true;
}();

}  // namespace
