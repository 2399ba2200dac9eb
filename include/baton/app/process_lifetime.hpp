#pragma once
// What a command's private processes and scratch folders do when the command ends early: the
// private redis-server of `bench` and `demo` and demo's workers end with the command, and an
// interrupted command removes its scratch folders.

#include <filesystem>
#include <string>
#include <string_view>

#include "baton/core/result.hpp"

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

// Makes a new folder "<parent>/<prefix>XXXXXX". An owned one is marked with this process (a file
// ".owner": its pid and start time) and registered with remember_scratch_folder; before it is
// made, the owned folders of the same prefix whose owner has ended without removing them (it was
// killed with SIGKILL, which leaves no chance to) are removed. Folders without the mark (kept on
// purpose, or made by older versions) are left alone.
Result<std::filesystem::path> make_scratch_folder(const std::filesystem::path& parent, std::string_view prefix, bool owned = true);

// In a forked child, before exec: the child gets SIGKILL when the thread that forked it ends (with
// its process, however that ends), so no private server or worker outlives the command. `parent`
// is getpid() taken before the fork. Only for children forked on a thread that lives as long as
// they should.
void die_with_parent(int parent);

}  // namespace baton::app
