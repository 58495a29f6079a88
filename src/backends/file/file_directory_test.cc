// The file backend only trusts a directory this process's user owns and nobody else can write:
// another user's directory could hold forged entries, or a lock that blocks every write.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "cachekit/backends/file.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;

class FileDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cachekit-dir-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    dir_ = root_ / "cache";
  }
  void TearDown() override { fs::remove_all(root_); }

  Result<std::shared_ptr<Backend>> make() const {
    FileOptions options;
    options.directory = dir_;
    return make_file_backend(options);
  }
  // Asserts construction is refused with a message naming the directory and `why`.
  void expect_refused(const std::string& why) const {
    auto b = make();
    ASSERT_STATUS(b, StatusCode::kInvalidArgument) << "accepted " << dir_;
    const std::string m = b.status().message();
    EXPECT_NE(m.find(dir_.string()), std::string::npos) << m;
    EXPECT_NE(m.find(why), std::string::npos) << m;
  }

  fs::path root_;
  fs::path dir_;
};

TEST_F(FileDirectory, RefusesADirectoryOwnedByAnotherUser) {
  ASSERT_EQ(::geteuid(), 0u) << "chown to nobody needs root, which the test runs as";
  fs::create_directory(dir_);
  ::chmod(dir_.c_str(), 0700);
  ASSERT_EQ(::chown(dir_.c_str(), kNobody, kNobody), 0);
  expect_refused("owned by uid 65534");
}

TEST_F(FileDirectory, RefusesADirectoryOthersCanWrite) {
  fs::create_directory(dir_);
  ::chmod(dir_.c_str(), 0777);
  expect_refused("writable by");
  ::chmod(dir_.c_str(), 0770);
  expect_refused("writable by");
  ::chmod(dir_.c_str(), 0702);
  expect_refused("writable by");
}

TEST_F(FileDirectory, RefusesASymlinkToAnotherUsersDirectory) {
  fs::path foreign = root_ / "foreign";
  fs::create_directory(foreign);
  ASSERT_EQ(::chown(foreign.c_str(), kNobody, kNobody), 0);
  fs::create_directory_symlink(foreign, dir_);
  expect_refused("owned by uid 65534");
}

TEST_F(FileDirectory, AcceptsItsOwnPrivateOrReadableDirectory) {
  fs::create_directory(dir_);
  ::chmod(dir_.c_str(), 0755);
  EXPECT_OK(make());
  ::chmod(dir_.c_str(), 0700);
  EXPECT_OK(make());
}

TEST_F(FileDirectory, CreatesANewDirectoryWithMode0700EvenUnderAPermissiveUmask) {
  const mode_t old = ::umask(0);
  auto b = make();
  ::umask(old);
  ASSERT_OK(b);
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

}  // namespace
}  // namespace cachekit
