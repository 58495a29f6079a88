#pragma once
// ServerProcess: a private server (redis-server, memcached, ...) that one test starts, kills,
// freezes and restarts at will — so fault tests never disturb the shared test servers.
//
//   auto redis = ServerProcess::start({"redis-server", "--port", "{port}", "--save", ""});
//   redis.stop();     // SIGSTOP: connections are accepted by the kernel, nothing answers
//   redis.resume();   // SIGCONT
//   redis.kill();     // SIGKILL: gone, the port refuses connections
//   redis.terminate();  // SIGTERM, waited for: the server's clean shutdown
//   redis.restart();  // the same command on the same port, waited for
//
// "{port}" in the arguments is replaced by a free loopback port chosen at start. The
// process's stdout and stderr go to /dev/null. Not thread-safe: one test thread drives it.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace cachekit::testing {

// A loopback TCP port that was free a moment ago (bound to port 0, then released).
int free_port();

class ServerProcess {
 public:
  // Spawns the server and waits (up to `ready_timeout`) until 127.0.0.1:<port> accepts a
  // TCP connection. Throws std::runtime_error if it cannot be started or never answers.
  static ServerProcess start(std::vector<std::string> argv,
                             std::chrono::milliseconds ready_timeout = std::chrono::seconds(10));

  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess& operator=(ServerProcess&&) = delete;
  ~ServerProcess();  // kills and reaps the process

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

  void kill();       // SIGKILL and reap; no-op if not running
  void terminate();  // SIGTERM (a clean shutdown) and reap; SIGKILL after 10 s
  void stop();       // SIGSTOP
  void resume();     // SIGCONT
  void restart();    // kill() if running, then spawn again on the same port and wait

 private:
  ServerProcess(std::vector<std::string> argv, int port, std::chrono::milliseconds ready_timeout)
      : argv_(std::move(argv)), port_(port), ready_timeout_(ready_timeout) {}
  void spawn();

  std::vector<std::string> argv_;  // with {port} replaced
  int port_;
  std::chrono::milliseconds ready_timeout_;
  pid_t pid_ = -1;
};

// The text of a /proc file such as /proc/<pid>/stat, or what could be read of it: "" when the
// process went away — between listing /proc and opening the file, or between opening and
// reading it (read() then fails with ESRCH, which std::ifstream turns into an exception).
[[nodiscard]] std::string read_proc_file(const std::string& path);
// The same for a file already open as `fd` (not closed here).
[[nodiscard]] std::string read_proc_fd(int fd);

}  // namespace cachekit::testing
