#pragma once
// A process as /proc/<pid>/stat shows it, for tests that watch processes come and go.

#include <sys/types.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace baton::test {

// The fields after the name, from field 3 (the state) on, so field N is at N - 3; empty when there
// is no such process. The name may hold spaces and parentheses, so it is skipped up to the last ')'.
inline std::vector<std::string> proc_stat_fields(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return {};
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) return {};
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// Alive and not a zombie (a zombie has ended; this machine's init may be slow to reap it).
inline bool running(pid_t pid) {
  const auto fields = proc_stat_fields(pid);
  return !fields.empty() && fields[0] != "Z";
}

}  // namespace baton::test
