#pragma once
// For a test's forked children: a child dies with the test that forked it, so a test ended by a
// timeout or a crash leaves no worker running on the machine (one left spinning once skewed every
// benchmark run after it). Call in the child right after fork(), before exec, with the test's pid
// taken before the fork. PR_SET_PDEATHSIG fires when the forking *thread* ends, so only children
// forked on a test's own thread may use it.

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace baton::test {

inline void die_with_parent(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);  // the parent was gone before the request took effect
}

}  // namespace baton::test
