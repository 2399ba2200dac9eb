#pragma once
// What a command's private processes and scratch folders do when the command ends early: the
// private redis-server of `bench` and `demo` and demo's workers end with the command, and an
// interrupted command removes its scratch folders.

#include <string>

namespace baton::app {

// For commands that run long without `run`'s graceful stop (bench, demo): a thread that waits for
// SIGINT or SIGTERM (blocked by block_stop_signals), removes the scratch folders registered by
// then, says so on stderr and ends the process with 130. Private child processes (a redis-server,
// demo workers) end with it: they are started with die_with_parent.
void exit_on_stop_signal(const char* command);

// Scratch folders removed by exit_on_stop_signal when the command is interrupted; the command
// removes them itself (and forgets them) when it ends normally.
void remember_scratch_folder(const std::string& path);
void forget_scratch_folder(const std::string& path);

// In a forked child, before exec: the child gets SIGKILL when the thread that forked it ends (with
// its process, however that ends), so no private server or worker outlives the command. `parent`
// is getpid() taken before the fork. Only for children forked on a thread that lives as long as
// they should.
void die_with_parent(int parent);

}  // namespace baton::app
