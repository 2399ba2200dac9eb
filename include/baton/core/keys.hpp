#pragma once
// Key names shared by every adapter. Tenant data sits under "t:<tenant>:" so that a per-tenant
// Redis ACL key pattern (~baton:t:<tenant>:*) can fence it; adapters add their own namespace prefix.

#include <string>
#include <string_view>

namespace baton::keys {

// "t:<tenant>:<kind>:<name>", for example "t:acme:dedup:0192...". The tenant must pass
// check_tenant_id (it has no ':' '{' '}' '*'), so the prefix cannot be forged by a name.
std::string tenant_key(std::string_view tenant_id, std::string_view kind, std::string_view name);

// Where deduplicate() remembers that an envelope id was seen.
std::string dedup_key(std::string_view tenant_id, std::string_view envelope_id);

}  // namespace baton::keys
