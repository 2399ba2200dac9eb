#pragma once
// Registers a table of contract cases as GoogleTest cases named Contract.<Adapter>.<Case>.

#include <gtest/gtest.h>

#include <functional>
#include <string>

namespace baton::contract::detail {

template <class Fixture>
struct NamedCase {
  const char* name;
  typename Fixture::Body body;
};

template <class Fixture, class Target, std::size_t N>
void register_cases(const std::string& adapter, const NamedCase<Fixture> (&cases)[N],
                    const std::function<Target()>& factory) {
  const std::string suite = "Contract." + adapter;
  for (const auto& test_case : cases) {
    ::testing::RegisterTest(suite.c_str(), test_case.name, nullptr, nullptr, __FILE__, __LINE__,
                            [factory, body = test_case.body]() -> ::testing::Test* { return new Fixture(factory, body); });
  }
}

}  // namespace baton::contract::detail
