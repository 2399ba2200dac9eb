#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "baton/adapters/fs/fs_storage.hpp"
#include "support/unique_id.hpp"

namespace baton::adapters::fs {
namespace {

namespace stdfs = std::filesystem;

class FsStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = stdfs::temp_directory_path() / test::unique_name("fs");
    root_ = base_ / "root";
    auto made = make_fs_storage({root_});
    ASSERT_TRUE(made) << made.error().message();
    storage_ = std::move(*made);
  }
  void TearDown() override { stdfs::remove_all(base_); }

  stdfs::path base_, root_;
  std::unique_ptr<ports::Storage> storage_;
};

TEST_F(FsStorageTest, PutThenGetInNestedFolders) {
  ASSERT_TRUE(storage_->put("workspaces/c1/src/main.cpp", "int main() {}\n"));
  auto bytes = storage_->get("workspaces/c1/src/main.cpp");
  ASSERT_TRUE(bytes) << bytes.error().message();
  EXPECT_EQ(*bytes, "int main() {}\n");
  ASSERT_TRUE(storage_->put("workspaces/c1/src/main.cpp", std::string("binary\0data", 11)));
  EXPECT_EQ(storage_->get("workspaces/c1/src/main.cpp").value(), std::string("binary\0data", 11));
}

TEST_F(FsStorageTest, RenameMovesAWholeFolderAndNeverReplaces) {
  ASSERT_TRUE(storage_->put("staging/r1/a.txt", "a"));
  ASSERT_TRUE(storage_->put("staging/r1/sub/b.txt", "b"));
  ASSERT_TRUE(storage_->rename("staging/r1", "releases/c1")) << "the target's parent folders are made";
  EXPECT_EQ(storage_->list("releases/c1").value(), (std::vector<std::string>{"releases/c1/a.txt", "releases/c1/sub/b.txt"}));
  EXPECT_TRUE(storage_->list("staging/r1").value().empty());

  ASSERT_TRUE(storage_->put("staging/r2/a.txt", "other"));
  auto replaced = storage_->rename("staging/r2", "releases/c1");
  ASSERT_FALSE(replaced);
  EXPECT_EQ(replaced.error(), errc::conflict);
  EXPECT_NE(replaced.error().message().find("releases/c1"), std::string::npos) << replaced.error().message();
  EXPECT_EQ(storage_->get("releases/c1/a.txt").value(), "a");

  auto missing = storage_->rename("staging/none", "releases/c2");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), errc::not_found);
  EXPECT_EQ(storage_->rename("staging/r2", "../out").error(), errc::invalid_argument);
}

TEST_F(FsStorageTest, AWriteLeavesNoTemporaryFileBehind) {
  ASSERT_TRUE(storage_->put("a/b.txt", "x"));
  std::size_t files = 0;
  for (const auto& entry : stdfs::recursive_directory_iterator(root_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1u);
}

// Every regular file and every folder below `folder`, relative to it, sorted: what is really there.
std::vector<std::string> entries_below(const stdfs::path& folder) {
  std::vector<std::string> found;
  if (!stdfs::exists(folder)) return found;
  for (const auto& entry : stdfs::recursive_directory_iterator(folder)) {
    found.push_back(entry.path().lexically_relative(folder).string() + (entry.is_directory() ? "/" : ""));
  }
  std::sort(found.begin(), found.end());
  return found;
}

TEST_F(FsStorageTest, PutAllWritesEveryBlobIntoFoldersItMakesAndLeavesNothingTemporary) {
  ASSERT_TRUE(storage_->put("w/c1/old.txt", "old"));
  const std::vector<ports::BlobWrite> blobs = {{"w/c1/README.md", "readme"}, {"w/c1/bin/run.sh", "#!/bin/sh\n"},
                                               {"w/c1/old.txt", "new"}, {"top.txt", std::string_view("a\0b", 3)}};
  auto written = storage_->put_all(blobs);
  ASSERT_TRUE(written) << written.error().message();
  EXPECT_EQ(storage_->get("w/c1/README.md").value(), "readme");
  EXPECT_EQ(storage_->get("w/c1/bin/run.sh").value(), "#!/bin/sh\n");
  EXPECT_EQ(storage_->get("w/c1/old.txt").value(), "new") << "a blob that was there is replaced";
  EXPECT_EQ(storage_->get("top.txt").value(), std::string("a\0b", 3));
  EXPECT_EQ(entries_below(root_), (std::vector<std::string>{"top.txt", "w/", "w/c1/", "w/c1/README.md", "w/c1/bin/", "w/c1/bin/run.sh",
                                                            "w/c1/old.txt"}));
  EXPECT_TRUE(storage_->put_all({})) << "nothing to write is not an error";
}

TEST_F(FsStorageTest, PutAllChecksEveryPathBeforeItWritesAny) {
  const std::vector<ports::BlobWrite> blobs = {{"w/fine.txt", "x"}, {"w/../../escape.txt", "x"}};
  auto written = storage_->put_all(blobs);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error(), errc::invalid_argument);
  EXPECT_EQ(written.error().detail, "storage path \"w/../../escape.txt\": may not hold \".\" or \"..\"");
  EXPECT_TRUE(entries_below(root_).empty()) << "the good blob before it was not written either";
}

TEST_F(FsStorageTest, PutAllRefusesASymlinkOutOfTheRoot) {
  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  stdfs::create_directory_symlink(outside, root_ / "link");
  const std::vector<ports::BlobWrite> blobs = {{"link/stolen.txt", "x"}};
  auto written = storage_->put_all(blobs);
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().detail.find("leads out of the storage root"), std::string::npos) << written.error().detail;
  EXPECT_TRUE(entries_below(outside).empty());
}

TEST_F(FsStorageTest, PublishFolderMakesTheFolderWithEveryBlobAndNothingElse) {
  const std::vector<ports::BlobWrite> blobs = {{"README.md", "readme"}, {"bin/deep/run.sh", "run"}, {"bin/other.sh", "other"}};
  auto published = storage_->publish_folder("releases/c1", blobs);
  ASSERT_TRUE(published) << published.error().message();
  EXPECT_EQ(storage_->list("releases/c1").value(),
            (std::vector<std::string>{"releases/c1/README.md", "releases/c1/bin/deep/run.sh", "releases/c1/bin/other.sh"}));
  EXPECT_EQ(storage_->get("releases/c1/bin/deep/run.sh").value(), "run");
  EXPECT_EQ(entries_below(root_ / "releases"), (std::vector<std::string>{"c1/", "c1/README.md", "c1/bin/", "c1/bin/deep/", "c1/bin/deep/run.sh",
                                                                         "c1/bin/other.sh"}))
      << "no temporary folder is left beside it";
  ASSERT_TRUE(storage_->publish_folder("empty", {}));
  EXPECT_TRUE(stdfs::is_directory(root_ / "empty")) << "a folder without blobs is still made";
}

TEST_F(FsStorageTest, PublishFolderNeverReplacesAFolderAndLeavesNothingOfItsOwn) {
  ASSERT_TRUE(storage_->put("releases/c1/a.txt", "first"));
  const std::vector<ports::BlobWrite> blobs = {{"a.txt", "second"}, {"b.txt", "second"}};
  auto published = storage_->publish_folder("releases/c1", blobs);
  ASSERT_FALSE(published);
  EXPECT_EQ(published.error(), errc::conflict);
  EXPECT_EQ(published.error().detail, "storage path \"releases/c1\": already exists");
  EXPECT_EQ(entries_below(root_ / "releases"), (std::vector<std::string>{"c1/", "c1/a.txt"}));
  EXPECT_EQ(storage_->get("releases/c1/a.txt").value(), "first");

  ASSERT_TRUE(storage_->put("releases/file", "x"));
  EXPECT_EQ(storage_->publish_folder("releases/file", blobs).error(), errc::conflict) << "a blob of that name counts too";
}

TEST_F(FsStorageTest, PublishFolderRefusesBadPathsNamingThemAndWritesNothing) {
  const std::vector<ports::BlobWrite> escaping = {{"fine.txt", "x"}, {"../../escape.txt", "x"}};
  auto published = storage_->publish_folder("releases/c1", escaping);
  ASSERT_FALSE(published);
  EXPECT_EQ(published.error(), errc::invalid_argument);
  EXPECT_EQ(published.error().detail, "storage path \"releases/c1/../../escape.txt\": may not hold \".\" or \"..\"");
  EXPECT_EQ(storage_->publish_folder("/releases", {}).error(), errc::invalid_argument);
  EXPECT_TRUE(entries_below(root_).empty());

  // Paths that only clash when written: a blob where another one needs a folder.
  const std::vector<ports::BlobWrite> clashing = {{"a", "file"}, {"a/b", "under a file"}};
  auto clashed = storage_->publish_folder("releases/c2", clashing);
  ASSERT_FALSE(clashed);
  EXPECT_NE(clashed.error().detail.find("/a"), std::string::npos) << clashed.error().detail;
  EXPECT_EQ(entries_below(root_ / "releases"), std::vector<std::string>{}) << "its temporary folder is removed";
}

TEST_F(FsStorageTest, PublishFolderRefusesAParentThatLeadsOutOfTheRoot) {
  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  stdfs::create_directory_symlink(outside, root_ / "link");
  const std::vector<ports::BlobWrite> blobs = {{"stolen.txt", "x"}};
  auto published = storage_->publish_folder("link/c1", blobs);
  ASSERT_FALSE(published);
  EXPECT_NE(published.error().detail.find("leads out of the storage root"), std::string::npos) << published.error().detail;
  EXPECT_TRUE(entries_below(outside).empty());
}

// What a crash in the middle of a publish or a put leaves is never listed as a blob.
TEST_F(FsStorageTest, ListingSkipsWhatAWriteInProgressLeft) {
  ASSERT_TRUE(storage_->put("releases/c1/a.txt", "a"));
  stdfs::create_directories(root_ / "releases" / ".c2.tmp-123" / "bin");
  std::ofstream(root_ / "releases" / ".c2.tmp-123" / "bin" / "half.sh") << "half";
  std::ofstream(root_ / "releases" / "c1" / ".b.txt.tmp-456") << "half";
  EXPECT_EQ(storage_->list("releases").value(), std::vector<std::string>{"releases/c1/a.txt"});
  EXPECT_EQ(storage_->list("").value(), std::vector<std::string>{"releases/c1/a.txt"});
}

// A leftover of a crash made to look its age: unchanged for `age`.
void age(const stdfs::path& path, std::chrono::seconds by) { stdfs::last_write_time(path, stdfs::file_time_type::clock::now() - by); }

// What writes cut short left behind goes once it has not changed for the given time; a write
// still in progress (a leftover changed lately), the blobs and their folders stay.
TEST_F(FsStorageTest, ASweepRemovesOnlyLeftoversUnchangedForTheGivenTime) {
  using namespace std::chrono_literals;
  ASSERT_TRUE(storage_->put("w/c1/a.txt", "a"));
  ASSERT_TRUE(storage_->put("releases/c1/b.txt", "b"));
  std::ofstream(root_ / "w" / "c1" / ".a.txt.tmp-123") << "half";
  stdfs::create_directories(root_ / "releases" / ".c2.tmp-456" / "bin");
  std::ofstream(root_ / "releases" / ".c2.tmp-456" / "bin" / "half.sh") << "half";
  std::ofstream(root_ / ".top.txt.tmp-7") << "half";
  std::ofstream(root_ / "w" / "c1" / ".b.txt.tmp-789") << "in progress";
  age(root_ / "w" / "c1" / ".a.txt.tmp-123", 2h);
  age(root_ / "releases" / ".c2.tmp-456", 2h);
  age(root_ / ".top.txt.tmp-7", 2h);
  age(root_ / "w" / "c1" / "a.txt", 2h);  // a blob is never a leftover, however old
  age(root_ / "releases" / "c1", 2h);

  auto swept = storage_->sweep_leftovers(1h);
  ASSERT_TRUE(swept) << swept.error().message();
  EXPECT_EQ(*swept, 3u);
  EXPECT_EQ(entries_below(root_), (std::vector<std::string>{"releases/", "releases/c1/", "releases/c1/b.txt", "w/", "w/c1/",
                                                            "w/c1/.b.txt.tmp-789", "w/c1/a.txt"}));
  EXPECT_EQ(storage_->sweep_leftovers(1h).value(), 0u) << "nothing more is old enough";
  age(root_ / "w" / "c1" / ".b.txt.tmp-789", 2h);
  EXPECT_EQ(storage_->sweep_leftovers(1h).value(), 1u);
  EXPECT_EQ(storage_->list("").value(), (std::vector<std::string>{"releases/c1/b.txt", "w/c1/a.txt"}));
}

// A process killed in the middle of its writes (by SIGXFSZ: a file size limit lower than the blob)
// leaves what a crash leaves: a temporary file of the put, a temporary folder of the publish. No
// listing shows them, the folder can still be published, and a sweep takes both once they are old.
TEST_F(FsStorageTest, WhatAWriterKilledMidWriteLeftIsSweptOnceOld) {
  using namespace std::chrono_literals;
  const std::string big(64 * 1024, 'x');
  const auto killed_writing = [&](auto write) {
    const pid_t child = ::fork();
    if (child == 0) {
      const rlimit limit{4096, 4096};
      ::setrlimit(RLIMIT_FSIZE, &limit);
      write();
      ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ;
  };
  ASSERT_TRUE(killed_writing([&] { (void)storage_->put("w/c1/main.cpp", big); }));
  const std::vector<ports::BlobWrite> blobs = {{"bin/run.sh", big}};
  ASSERT_TRUE(killed_writing([&] { (void)storage_->publish_folder("releases/c1", blobs); }));

  const auto left = entries_below(root_);
  ASSERT_EQ(left.size(), 7u) << "w/, w/c1/, its temporary file, releases/, the temporary folder, its bin/ and the file in it";
  EXPECT_TRUE(storage_->list("").value().empty());
  for (const auto& entry : left) {  // the two leftovers themselves, not what the temporary folder holds
    if (entry == "w/c1/" + stdfs::path(entry).filename().string() && entry.find(".tmp-") != std::string::npos) age(root_ / entry, 2h);
    if (entry.starts_with("releases/.c1.tmp-") && std::count(entry.begin(), entry.end(), '/') == 2) age(root_ / entry, 2h);
  }
  EXPECT_EQ(storage_->sweep_leftovers(1h).value(), 2u);
  EXPECT_EQ(entries_below(root_), (std::vector<std::string>{"releases/", "w/", "w/c1/"}));
  ASSERT_TRUE(storage_->publish_folder("releases/c1", blobs)) << "the leftover never stood in the folder's way";
  EXPECT_EQ(storage_->list("releases").value(), std::vector<std::string>{"releases/c1/bin/run.sh"});
}

// A sweep asked to stop removes nothing more: a worker shutting down does not wait for it.
TEST_F(FsStorageTest, ASweepStopsWhenAskedTo) {
  using namespace std::chrono_literals;
  std::ofstream(root_ / ".a.tmp-1") << "half";
  age(root_ / ".a.tmp-1", 2h);
  std::stop_source stopped;
  stopped.request_stop();
  EXPECT_EQ(storage_->sweep_leftovers(1h, stopped.get_token()).value(), 0u);
  EXPECT_TRUE(stdfs::exists(root_ / ".a.tmp-1"));
  EXPECT_EQ(storage_->sweep_leftovers(1h).value(), 1u);
}

// A symlinked folder is not walked: what lies outside the root is never the sweep's.
TEST_F(FsStorageTest, ASweepFollowsNoSymlink) {
  using namespace std::chrono_literals;
  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  std::ofstream(outside / ".x.txt.tmp-1") << "not ours";
  age(outside / ".x.txt.tmp-1", 2h);
  stdfs::create_directory_symlink(outside, root_ / "link");
  std::ofstream(root_ / ".y.tmp-2") << "ours";
  age(root_ / ".y.tmp-2", 2h);
  stdfs::create_symlink(outside / ".x.txt.tmp-1", root_ / ".z.tmp-3");
  const timespec two_hours_ago[2] = {{::time(nullptr) - 7200, 0}, {::time(nullptr) - 7200, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (root_ / ".z.tmp-3").c_str(), two_hours_ago, AT_SYMLINK_NOFOLLOW), 0) << "the link's own time";
  EXPECT_EQ(storage_->sweep_leftovers(1h).value(), 2u) << "the leftover and the symlink named like one";
  EXPECT_TRUE(stdfs::exists(outside / ".x.txt.tmp-1")) << "a link is removed, not what it leads to";
  EXPECT_FALSE(stdfs::exists(root_ / ".y.tmp-2"));
  EXPECT_FALSE(stdfs::is_symlink(root_ / ".z.tmp-3"));
}

// A blob may not take a name that only writes in progress have: it would never be listed, and a
// sweep would take it. A name that merely looks alike is a blob like any other.
TEST_F(FsStorageTest, APathNamedLikeAWriteInProgressIsRefused) {
  auto refused = storage_->put("w/.a.txt.tmp-123", "x");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::invalid_argument);
  EXPECT_EQ(refused.error().detail, "storage path \"w/.a.txt.tmp-123\": \".a.txt.tmp-123\" has the form .<name>.tmp-<digits>, kept for writes in progress");
  EXPECT_EQ(storage_->get(".c.tmp-1/a.txt").error(), errc::invalid_argument);
  ASSERT_TRUE(storage_->put("w/.notes.tmp-old", "kept"));
  ASSERT_TRUE(storage_->put("w/notes.tmp-1", "kept"));
  EXPECT_EQ(storage_->list("w").value(), (std::vector<std::string>{"w/.notes.tmp-old", "w/notes.tmp-1"}));
}

TEST_F(FsStorageTest, MissingBlobIsNotFound) {
  auto missing = storage_->get("nope.txt");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), errc::not_found);
  EXPECT_EQ(missing.error().detail, "storage path \"nope.txt\": no such blob");
}

TEST_F(FsStorageTest, ListsSortedUnderAPrefix) {
  ASSERT_TRUE(storage_->put("w/2/b.txt", "b"));
  ASSERT_TRUE(storage_->put("w/1/a.txt", "a"));
  ASSERT_TRUE(storage_->put("releases/x.txt", "x"));
  EXPECT_EQ(storage_->list("w").value(), (std::vector<std::string>{"w/1/a.txt", "w/2/b.txt"}));
  EXPECT_EQ(storage_->list("").value().size(), 3u);
  EXPECT_TRUE(storage_->list("nothing/here").value().empty());
}

TEST_F(FsStorageTest, RemoveSaysWhetherSomethingWentAway) {
  ASSERT_TRUE(storage_->put("r.txt", "x"));
  EXPECT_TRUE(storage_->remove("r.txt").value());
  EXPECT_FALSE(storage_->remove("r.txt").value());
}

TEST_F(FsStorageTest, PathsThatLeaveTheRootAreRefusedNamingThem) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"../escape.txt", "storage path \"../escape.txt\": may not hold \".\" or \"..\""},
      {"a/../../escape.txt", "storage path \"a/../../escape.txt\": may not hold \".\" or \"..\""},
      {"/etc/passwd", "storage path \"/etc/passwd\": must be relative (no leading '/')"},
      {"a//b", "storage path \"a//b\": has an empty segment"},
      {"", "storage path \"\": must not be empty"},
      {"./x", "storage path \"./x\": may not hold \".\" or \"..\""},
  };
  for (const auto& [path, message] : refused) {
    auto result = storage_->put(path, "x");
    ASSERT_FALSE(result) << path;
    EXPECT_EQ(result.error(), errc::invalid_argument) << path;
    EXPECT_EQ(result.error().detail, message);
  }
  EXPECT_FALSE(stdfs::exists(base_ / "escape.txt"));
}

TEST_F(FsStorageTest, ASymlinkOutOfTheRootIsRefused) {
  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  stdfs::create_directory_symlink(outside, root_ / "link");
  auto written = storage_->put("link/stolen.txt", "x");
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().detail.find("leads out of the storage root"), std::string::npos) << written.error().detail;
  EXPECT_FALSE(stdfs::exists(outside / "stolen.txt"));
  std::ofstream(outside / "secret.txt") << "secret";
  EXPECT_FALSE(storage_->get("link/secret.txt"));
}

// The quick check (no symlink on the way) must not miss one further down, or the file itself.
TEST_F(FsStorageTest, ASymlinkDeeperDownOrAsTheFileItselfIsRefused) {
  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  std::ofstream(outside / "secret.txt") << "secret";
  stdfs::create_directories(root_ / "a" / "b");
  stdfs::create_directory_symlink(outside, root_ / "a" / "b" / "deep");
  stdfs::create_symlink(outside / "secret.txt", root_ / "a" / "leak.txt");
  auto written = storage_->put("a/b/deep/stolen.txt", "x");
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().detail.find("leads out of the storage root"), std::string::npos) << written.error().detail;
  EXPECT_FALSE(stdfs::exists(outside / "stolen.txt"));
  auto read = storage_->get("a/leak.txt");
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().detail.find("leads out of the storage root"), std::string::npos) << read.error().detail;
  EXPECT_FALSE(storage_->list("a/b/deep/"));
}

TEST_F(FsStorageTest, ASymlinkInsideTheRootIsFine) {
  stdfs::create_directories(root_ / "real");
  stdfs::create_directory_symlink(root_ / "real", root_ / "alias");
  ASSERT_TRUE(storage_->put("alias/file.txt", "x"));
  EXPECT_EQ(storage_->get("real/file.txt").value(), "x");
}

TEST_F(FsStorageTest, ARelativeSymlinkInsideTheRootIsFine) {
  ASSERT_TRUE(storage_->put("real/file.txt", "x"));
  stdfs::create_directory_symlink("real", root_ / "alias");
  EXPECT_EQ(storage_->get("alias/file.txt").value(), "x");
  ASSERT_TRUE(storage_->put("alias/other.txt", "y"));
  EXPECT_EQ(storage_->get("real/other.txt").value(), "y");
}

// The write lands inside the root: the link is replaced, its target outside is left as it was.
TEST_F(FsStorageTest, APutOverASymlinkReplacesTheLinkNotItsTarget) {
  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  std::ofstream(outside / "target.txt") << "untouched";
  stdfs::create_symlink(outside / "target.txt", root_ / "link.txt");
  ASSERT_TRUE(storage_->put("link.txt", "mine"));
  EXPECT_FALSE(stdfs::is_symlink(root_ / "link.txt"));
  EXPECT_EQ(storage_->get("link.txt").value(), "mine");
  std::ifstream target(outside / "target.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(target), {}), "untouched");
}

// A symlink to a file is listed (get decides whether it may be read); a symlinked folder is not
// walked, so nothing outside the root is ever named; a write in progress is not listed.
TEST_F(FsStorageTest, ListingWalksNoSymlinkedFolder) {
  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  std::ofstream(outside / "secret.txt") << "secret";
  ASSERT_TRUE(storage_->put("w/a.txt", "a"));
  ASSERT_TRUE(storage_->put("w/sub/b.txt", "b"));
  stdfs::create_symlink(root_ / "w" / "a.txt", root_ / "w" / "alias.txt");
  stdfs::create_directory_symlink(outside, root_ / "w" / "out");
  stdfs::create_directory_symlink(root_ / "w" / "sub", root_ / "w" / "sub-alias");
  std::ofstream(root_ / "w" / ".c.txt.tmp-123") << "half";
  EXPECT_EQ(storage_->list("w").value(), (std::vector<std::string>{"w/a.txt", "w/alias.txt", "w/sub/b.txt"}));
  EXPECT_EQ(storage_->list("w/sub/").value(), (std::vector<std::string>{"w/sub/b.txt"}));
  auto listed_file = storage_->list("w/a.txt");
  ASSERT_FALSE(listed_file);
  EXPECT_NE(listed_file.error().detail.find("w/a.txt"), std::string::npos) << listed_file.error().detail;
}

TEST_F(FsStorageTest, RemoveTakesAnEmptyFolderAndRefusesAPathOutOfTheRoot) {
  ASSERT_TRUE(storage_->put("f/x.txt", "x"));
  ASSERT_TRUE(storage_->remove("f/x.txt").value());
  EXPECT_TRUE(storage_->remove("f").value());
  EXPECT_FALSE(stdfs::exists(root_ / "f"));
  EXPECT_FALSE(storage_->remove("missing/folder/x.txt").value());

  const auto outside = base_ / "outside";
  stdfs::create_directories(outside);
  std::ofstream(outside / "keep.txt") << "keep";
  stdfs::create_directory_symlink(outside, root_ / "out");
  auto removed = storage_->remove("out/keep.txt");
  ASSERT_FALSE(removed);
  EXPECT_NE(removed.error().detail.find("leads out of the storage root"), std::string::npos) << removed.error().detail;
  EXPECT_TRUE(stdfs::exists(outside / "keep.txt"));
  auto moved = storage_->rename("out/keep.txt", "inside.txt");
  ASSERT_FALSE(moved);
  EXPECT_NE(moved.error().detail.find("leads out of the storage root"), std::string::npos) << moved.error().detail;
  EXPECT_TRUE(stdfs::exists(outside / "keep.txt"));
}

TEST_F(FsStorageTest, AFileWhereAFolderShouldBeIsNamed) {
  ASSERT_TRUE(storage_->put("plain.txt", "x"));
  auto written = storage_->put("plain.txt/inner.txt", "y");
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().detail.find("plain.txt/inner.txt"), std::string::npos) << written.error().detail;
  EXPECT_EQ(storage_->get("plain.txt").value(), "x");
}

// The storage holds its root open; a root removed meanwhile is made again by the next write, as a
// fresh start would, instead of every write failing until a restart.
TEST_F(FsStorageTest, ARootRemovedMeanwhileIsMadeAgainByTheNextWrite) {
  ASSERT_TRUE(storage_->put("w/a.txt", "a"));
  stdfs::remove_all(root_);
  EXPECT_FALSE(storage_->health().ok);
  auto missing = storage_->get("w/a.txt");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), errc::not_found);
  ASSERT_TRUE(storage_->put("w/b.txt", "b"));
  ASSERT_TRUE(storage_->put("top.txt", "t"));
  EXPECT_TRUE(stdfs::exists(root_ / "w" / "b.txt"));
  EXPECT_EQ(storage_->get("w/b.txt").value(), "b");
  EXPECT_EQ(storage_->list("").value(), (std::vector<std::string>{"top.txt", "w/b.txt"}));
  EXPECT_TRUE(storage_->health().ok);
}

TEST_F(FsStorageTest, HealthChecksTheRoot) {
  EXPECT_TRUE(storage_->health().ok);
}

}  // namespace
}  // namespace baton::adapters::fs
