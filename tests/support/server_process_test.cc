#include "support/server_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <ios>
#include <iterator>
#include <string>

namespace cachekit::testing {
namespace {

// A child that has exited and been reaped, with its /proc/<pid>/stat opened before the reaping,
// both as a file descriptor and as a std::ifstream: reading either now fails with ESRCH — what a
// scan of /proc meets when a process exits between opening and reading its file.
struct ReapedChild {
  int fd = -1;
  std::ifstream stream;

  ReapedChild() {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
    const std::string stat = "/proc/" + std::to_string(pid) + "/stat";
    fd = ::open(stat.c_str(), O_RDONLY | O_CLOEXEC);
    stream.open(stat);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  ~ReapedChild() {
    if (fd >= 0) ::close(fd);
  }
};

TEST(ReadProcFile, AProcessThatExitedBetweenOpenAndReadReadsAsEmptyNotAnException) {
  ReapedChild child;
  ASSERT_GE(child.fd, 0);
  ASSERT_TRUE(child.stream.is_open());
  // What the /proc scans did before: libstdc++'s filebuf throws on the failed read.
  EXPECT_THROW(
      std::string((std::istreambuf_iterator<char>(child.stream)), std::istreambuf_iterator<char>()),
      std::ios_base::failure);
  std::string text = "unchanged";
  EXPECT_NO_THROW(text = read_proc_fd(child.fd));
  EXPECT_EQ(text, "");
}

TEST(ReadProcFile, ReadsALiveProcessAndAMissingOne) {
  const std::string self = read_proc_file("/proc/self/stat");
  EXPECT_NE(self.find(')'), std::string::npos);
  EXPECT_EQ(read_proc_file("/proc/0/stat"), "");
}

}  // namespace
}  // namespace cachekit::testing
