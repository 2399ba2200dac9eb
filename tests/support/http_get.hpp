#pragma once
// A minimal HTTP/1.1 request to 127.0.0.1 for tests: the whole raw response, or "" if no answer.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace baton::test {

inline std::string http_request(std::uint16_t port, const std::string& target, const std::string& method = "GET") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char chunk[4096];
      ssize_t got = 0;
      while ((got = ::read(fd, chunk, sizeof chunk)) > 0) response.append(chunk, static_cast<std::size_t>(got));
    }
  }
  ::close(fd);
  return response;
}

}  // namespace baton::test
