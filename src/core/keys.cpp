#include "baton/core/keys.hpp"

namespace baton {

namespace keys {

std::string tenant_key(std::string_view tenant_id, std::string_view kind, std::string_view name) {
  std::string key;
  key.reserve(4 + tenant_id.size() + kind.size() + name.size());
  key.append("t:").append(tenant_id).append(":").append(kind).append(":").append(name);
  return key;
}

std::string dedup_key(std::string_view tenant_id, std::string_view envelope_id) {
  return tenant_key(tenant_id, "dedup", envelope_id);
}

}  // namespace keys

}  // namespace baton
