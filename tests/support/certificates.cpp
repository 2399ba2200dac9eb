#include "support/certificates.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace baton::test {
namespace {

void run_or_throw(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) throw std::runtime_error("failed: " + command);
}

}  // namespace

void make_certificates(const std::filesystem::path& directory) {
  const std::string dir = directory.string();
  const auto make_ca = [&](const std::string& name) {
    run_or_throw("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + " -keyout " + dir + "/" + name +
                 ".key -out " + dir + "/" + name + ".crt");
  };
  const auto make_signed = [&](const std::string& name, const std::string& subject_alt_names) {
    run_or_throw("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + dir + "/" + name + ".key -out " +
                 dir + "/" + name + ".csr");
    run_or_throw("sh -c 'printf \"subjectAltName=" + subject_alt_names + "\\n\" > " + dir + "/" + name + ".ext'");
    run_or_throw("openssl x509 -req -days 2 -in " + dir + "/" + name + ".csr -CA " + dir + "/ca.crt -CAkey " + dir +
                 "/ca.key -CAcreateserial -out " + dir + "/" + name + ".crt -extfile " + dir + "/" + name + ".ext");
  };
  make_ca("ca");
  make_ca("other-ca");
  make_signed("server", "DNS:localhost,IP:127.0.0.1");
  make_signed("client", "DNS:baton-client");
}

}  // namespace baton::test
