#include "baton/core/once.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace baton {

namespace detail {

OnceRecord parse_once_record(const std::optional<std::string>& stored) {
  if (!stored) return {OnceState::absent, nullptr, {}};
  boost::system::error_code parse_error;
  auto value = boost::json::parse(*stored, parse_error);
  if (parse_error || !value.is_object()) return {OnceState::foreign, nullptr, {}};
  auto& object = value.get_object();
  const auto* state = object.if_contains("once");
  if (!state || !state->is_string()) return {OnceState::foreign, nullptr, {}};
  if (state->get_string() == "running") {
    const auto* owner = object.if_contains("owner");
    return {OnceState::running, nullptr, owner && owner->is_string() ? std::string(owner->get_string()) : std::string()};
  }
  if (state->get_string() == "done") {
    auto* result = object.if_contains("result");
    if (!result) return {OnceState::foreign, nullptr, {}};
    return {OnceState::done, std::move(*result), {}};
  }
  return {OnceState::foreign, nullptr, {}};
}

std::string running_once_record(std::string_view owner) {
  boost::json::object record;
  record.emplace("once", "running");
  record.emplace("owner", owner);
  return boost::json::serialize(record);
}

std::string done_once_record(const boost::json::value& result) {
  boost::json::object record;
  record.emplace("once", "done");
  record.emplace("result", result);
  return boost::json::serialize(record);
}

Error once_foreign_error(std::string_view key) {
  return {errc::wrong_type, "once(\"" + std::string(key) + "\"): the key holds a value that once() did not write"};
}

Error once_in_progress_error(std::string_view key, std::chrono::milliseconds waited) {
  return {errc::in_progress, "once(\"" + std::string(key) + "\") is running in another caller (waited " +
                                 std::to_string(waited.count()) + " ms)"};
}

}  // namespace detail
}  // namespace baton
