// Scratch folders (app::make_scratch_folder): a folder whose owner was killed before it could remove
// it is removed by the next owner of the same kind; every other folder is left alone.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "baton/app/process_lifetime.hpp"
#include "support/proc_stat.hpp"
#include "support/recorder.hpp"

namespace baton::app {
namespace {

namespace stdfs = std::filesystem;

// The start time (field 22 of its stat) of `pid` once /proc shows it as a zombie; empty if it does
// not become one within 5 s.
std::string zombie_start_time(pid_t pid) {
  std::string start;
  test::eventually([&] {
    const auto fields = test::proc_stat_fields(pid);
    if (fields.size() < 20 || fields[0] != "Z") return false;
    start = fields[22 - 3];
    return true;
  }, std::chrono::seconds{5});
  return start;
}

class ScratchFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (stdfs::temp_directory_path() / "baton-scratch-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    parent_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    stdfs::remove_all(parent_, ignored);
  }

  // A folder as make_scratch_folder leaves it, with the owner mark given (none when empty).
  stdfs::path folder(const std::string& name, const std::string& owner) {
    const auto path = parent_ / name;
    stdfs::create_directory(path);
    std::ofstream(path / "redis.log") << "something left behind\n";
    if (!owner.empty()) std::ofstream(path / ".owner") << owner << "\n";
    return path;
  }

  stdfs::path parent_;
};

// The pid of a process that has ended (and been reaped).
pid_t ended_process() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return child;
}

// A folder whose owner has ended but is not reaped yet (a zombie: killed, its parent not done).
TEST_F(ScratchFolder, AFolderOfAnOwnerWaitingToBeReapedIsRemoved) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  // Until it is reaped, /proc still shows it, in state Z.
  const auto start = zombie_start_time(child);
  ASSERT_FALSE(start.empty()) << "the child did not become a zombie";
  const auto zombie_owner = folder("t-ZZZZZZ", std::to_string(child) + " " + start);
  auto made = make_scratch_folder(parent_, "t-");
  ASSERT_TRUE(made) << made.error().message();
  EXPECT_FALSE(stdfs::exists(zombie_owner));
  ::waitpid(child, nullptr, 0);
  forget_scratch_folder(made->string());
}

TEST_F(ScratchFolder, AFolderWhoseOwnerEndedIsRemovedAndNothingElse) {
  const auto dead_owner = folder("t-AAAAAA", std::to_string(ended_process()) + " 12345");
  // Our pid, but another start time: a process that had this pid before us.
  const auto reused_pid = folder("t-BBBBBB", std::to_string(::getpid()) + " 1");
  const auto unmarked = folder("t-CCCCCC", "");
  const auto other_kind = folder("u-DDDDDD", std::to_string(ended_process()) + " 12345");
  const auto other_length = folder("t-EEEEEEE", std::to_string(ended_process()) + " 12345");
  auto live = make_scratch_folder(parent_, "t-");
  ASSERT_TRUE(live) << live.error().message();

  auto next = make_scratch_folder(parent_, "t-");
  ASSERT_TRUE(next) << next.error().message();
  EXPECT_FALSE(stdfs::exists(dead_owner));
  EXPECT_FALSE(stdfs::exists(reused_pid));
  EXPECT_TRUE(stdfs::exists(unmarked)) << "a folder without an owner mark is not litter to judge";
  EXPECT_TRUE(stdfs::exists(other_kind)) << "only folders of the same prefix";
  EXPECT_TRUE(stdfs::exists(other_length)) << "only names the prefix and six characters make";
  EXPECT_TRUE(stdfs::exists(*live / ".owner")) << "a live owner's folder stays";
  EXPECT_TRUE(stdfs::exists(*next / ".owner"));
  forget_scratch_folder(live->string());
  forget_scratch_folder(next->string());
}

TEST_F(ScratchFolder, AFolderKeptOnPurposeHasNoOwnerMark) {
  auto kept = make_scratch_folder(parent_, "t-", false);
  ASSERT_TRUE(kept) << kept.error().message();
  EXPECT_TRUE(stdfs::is_directory(*kept));
  EXPECT_FALSE(stdfs::exists(*kept / ".owner"));
  EXPECT_EQ(kept->filename().string().substr(0, 2), "t-");
}

TEST_F(ScratchFolder, AParentThatCannotHoldFoldersIsAClearError) {
  auto made = make_scratch_folder(parent_ / "missing", "t-");
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find((parent_ / "missing").string()), std::string::npos) << made.error().message();
}

}  // namespace
}  // namespace baton::app
