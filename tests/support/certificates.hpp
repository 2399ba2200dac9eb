#pragma once
// Test certificates made by openssl in `directory`: ca.crt signs server.crt (for 127.0.0.1 and
// localhost) and client.crt; other-ca.crt signs nothing used. Keys beside them (*.key).

#include <filesystem>

namespace baton::test {

void make_certificates(const std::filesystem::path& directory);

}  // namespace baton::test
