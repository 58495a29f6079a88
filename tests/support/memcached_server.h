#pragma once
// Private memcached processes for the memcached tests (on ServerProcess, server_process.h):
// a free loopback port, no UDP, no persistence to begin with. Not thread-safe, like
// ServerProcess.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/server_process.h"

namespace cachekit::testing {

// `extra` adds memcached flags, e.g. {"-I", "2m"} for a 2 MB item limit.
inline ServerProcess start_memcached(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{"memcached", "-l", "127.0.0.1", "-p", "{port}", "-U",
                                "0",         "-m", "64",        "-t", "2"};
  if (::geteuid() == 0) {  // memcached refuses to run as root without -u
    argv.emplace_back("-u");
    argv.emplace_back("root");
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return ServerProcess::start(std::move(argv));
}

// "127.0.0.1:<port>", as a memcached location.
inline std::string location_of(const ServerProcess& server) {
  return "127.0.0.1:" + std::to_string(server.port());
}

// SIGSTOP, then waits until every thread of the server is really stopped: the signal is
// delivered asynchronously, and a worker thread already running on the other CPU can still
// answer a request sent right after kill() returned.
inline void stop_and_wait(ServerProcess& server) {
  server.stop();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto all_stopped = [&] {
    std::filesystem::path tasks = "/proc/" + std::to_string(server.pid()) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
      const std::string line = read_proc_file(task.path() / "stat");
      auto close = line.rfind(')');  // "pid (comm) S ...": the state follows the name
      if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') {
        return false;
      }
    }
    return true;
  };
  while (!all_stopped()) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("SIGSTOP ignored");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace cachekit::testing
