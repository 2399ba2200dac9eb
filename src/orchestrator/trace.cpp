#include "baton/orchestrator/trace.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "baton/core/keys.hpp"
#include "baton/core/time.hpp"

namespace baton::orchestrator {

std::string trace_key(std::string_view tenant_id, std::string_view corr_id) {
  return keys::tenant_key(tenant_id, "trace", corr_id);
}

Result<void> record_trace_event(ports::KVStore& kv, std::string_view tenant_id, std::string_view corr_id,
                                boost::json::object event) {
  if (!event.contains("at")) {
    event["at"] = format_rfc3339(std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()));
  }
  const auto key = trace_key(tenant_id, corr_id);
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto current = kv.get(key);
    if (!current) return std::move(current).error();
    boost::json::array events;
    ports::Version version = ports::absent_version;
    if (*current) {
      version = (*current)->version;
      boost::system::error_code error;
      auto parsed = boost::json::parse((*current)->value, error);
      if (!error && parsed.is_array()) events = std::move(parsed.get_array());
    }
    if (events.size() >= max_trace_events) events.erase(events.begin());
    events.push_back(event);
    auto written = kv.cas(key, version, boost::json::serialize(events), trace_ttl);
    if (written) return {};
    if (written.error() != errc::conflict) return std::move(written).error();
  }
  return Error{errc::conflict, "trace of " + std::string(corr_id) + ": too many concurrent writers"};
}

Result<boost::json::array> read_trace(ports::KVStore& kv, std::string_view tenant_id, std::string_view corr_id) {
  auto current = kv.get(trace_key(tenant_id, corr_id));
  if (!current) return std::move(current).error();
  if (!*current) return Error{errc::not_found, "no trace for correlation id " + std::string(corr_id) + " (tenant " +
                                                   std::string(tenant_id) + ")"};
  boost::system::error_code error;
  auto parsed = boost::json::parse((*current)->value, error);
  if (error || !parsed.is_array()) return Error{errc::decode_failed, "the trace of " + std::string(corr_id) + " is not a JSON array"};
  return std::move(parsed.get_array());
}

}  // namespace baton::orchestrator
