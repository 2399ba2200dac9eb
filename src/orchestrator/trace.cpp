#include "baton/orchestrator/trace.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "baton/core/keys.hpp"
#include "baton/core/time.hpp"

namespace baton::orchestrator {
namespace {

// A trace recorded before traces were lists: one value holding a JSON array of the events.
// `which` names the trace in an error ("the trace of <corr_id>").
Result<std::optional<std::pair<boost::json::array, ports::Version>>> read_array_trace(ports::KVStore& kv, const std::string& key,
                                                                                    const std::string& which) {
  auto current = kv.get(key);
  if (!current) return std::move(current).error();
  if (!*current) return std::optional<std::pair<boost::json::array, ports::Version>>{};
  boost::system::error_code error;
  auto parsed = boost::json::parse((*current)->value, error);
  if (error || !parsed.is_array()) return Error{errc::decode_failed, which + " is not a JSON array"};
  return std::optional{std::pair{std::move(parsed.get_array()), (*current)->version}};
}

// Turns an array trace into a list with the same events, so that appending works again. Another
// writer converting it at the same time is fine: only one of them removes the array (del_if).
Result<void> convert_array_trace(ports::KVStore& kv, const std::string& key) {
  auto old = read_array_trace(kv, key, "the trace at " + key);
  if (!old) return old.error() == errc::wrong_type ? Result<void>{} : Result<void>{std::move(old).error()};
  if (!*old) return {};
  if (auto removed = kv.del_if(key, (*old)->second); !removed) {
    if (removed.error() == errc::conflict || removed.error() == errc::wrong_type) return {};
    return removed;
  }
  for (const auto& event : (*old)->first) {
    if (auto appended = kv.append(key, boost::json::serialize(event), max_trace_events, trace_ttl); !appended) return appended;
  }
  return {};
}

}  // namespace

std::string trace_key(std::string_view tenant_id, std::string_view corr_id) {
  return keys::tenant_key(tenant_id, "trace", corr_id);
}

std::string trace_item(boost::json::object event) {
  if (!event.contains("at")) {
    event["at"] = format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()));
  }
  return boost::json::serialize(event);
}

Result<void> append_trace_item(ports::KVStore& kv, const std::string& key, std::string_view item) {
  auto appended = kv.append(key, item, max_trace_events, trace_ttl);
  if (appended || appended.error() != errc::wrong_type) return appended;
  if (auto converted = convert_array_trace(kv, key); !converted) return converted;
  return kv.append(key, item, max_trace_events, trace_ttl);
}

Result<void> record_trace_event(ports::KVStore& kv, std::string_view tenant_id, std::string_view corr_id,
                                boost::json::object event) {
  return append_trace_item(kv, trace_key(tenant_id, corr_id), trace_item(std::move(event)));
}

Result<boost::json::array> read_trace(ports::KVStore& kv, std::string_view tenant_id, std::string_view corr_id) {
  const auto key = trace_key(tenant_id, corr_id);
  const auto nothing = [&] {
    return Error{errc::not_found, "no trace for correlation id " + std::string(corr_id) + " (tenant " + std::string(tenant_id) + ")"};
  };
  auto items = kv.items(key);
  if (!items) {
    if (items.error() != errc::wrong_type) return std::move(items).error();
    auto old = read_array_trace(kv, key, "the trace of " + std::string(corr_id));
    if (!old) return std::move(old).error();
    if (!*old) return nothing();
    return std::move((*old)->first);
  }
  if (items->empty()) return nothing();
  boost::json::array events;
  events.reserve(items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    boost::system::error_code error;
    auto parsed = boost::json::parse((*items)[i], error);
    if (error || !parsed.is_object()) {
      return Error{errc::decode_failed, "event " + std::to_string(i + 1) + " of the trace of " + std::string(corr_id) +
                                            " is not a JSON object"};
    }
    events.push_back(std::move(parsed));
  }
  return in_causal_order(std::move(events));
}

boost::json::array in_causal_order(boost::json::array events) {
  const auto text = [&](std::size_t i, const char* field) -> std::string_view {
    const auto* object = events[i].if_object();
    const auto* value = object ? object->if_contains(field) : nullptr;
    return value && value->is_string() ? std::string_view(value->get_string()) : std::string_view();
  };
  const auto attempt = [&](std::size_t i) -> std::int64_t {
    const auto* object = events[i].if_object();
    const auto* value = object ? object->if_contains("attempt") : nullptr;
    if (value && value->is_int64()) return value->get_int64();
    if (value && value->is_uint64()) return static_cast<std::int64_t>(value->get_uint64());
    return 0;
  };
  // Each message's events (a submit, then its attempts in order), and the messages some hand-off led to.
  std::vector<std::string_view> messages;  // in the order they first appear
  std::unordered_map<std::string_view, std::vector<std::size_t>> of_message;
  std::unordered_set<std::string_view> handed_on;
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto [group, added] = of_message.try_emplace(text(i, "msg_id"));
    if (added) messages.push_back(group->first);
    group->second.push_back(i);
    if (const auto next = text(i, "next_msg_id"); !next.empty()) handed_on.insert(next);
  }
  for (auto& [id, group] : of_message) {
    std::stable_sort(group.begin(), group.end(), [&](std::size_t a, std::size_t b) { return attempt(a) < attempt(b); });
  }
  std::vector<std::size_t> order;
  order.reserve(events.size());
  std::unordered_set<std::string_view> placed;
  // A message's events, each hand-off followed by what the message it made went through.
  const auto place = [&](std::string_view id, auto& self) -> void {
    if (!placed.insert(id).second) return;
    for (const auto i : of_message.at(id)) {
      order.push_back(i);
      if (const auto next = text(i, "next_msg_id"); !next.empty() && of_message.contains(next)) self(next, self);
    }
  };
  for (const auto id : messages) {
    if (!handed_on.contains(id)) place(id, place);
  }
  for (const auto id : messages) place(id, place);  // handed on by an event that is not kept (the oldest, beyond max_trace_events)
  boost::json::array ordered;
  ordered.reserve(events.size());
  for (const auto i : order) ordered.push_back(events[i]);
  return ordered;
}

}  // namespace baton::orchestrator
