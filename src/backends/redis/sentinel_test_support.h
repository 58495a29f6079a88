#pragma once
// A private Sentinel setup for tests that fail servers over: a primary, a replica and N
// sentinels (quorum 2, or 1 for a single sentinel), down-after-milliseconds 1000,
// failover-timeout 5000, each sentinel with its own writable config file. Nothing is shared
// with the test servers of scripts/test-servers.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_test_support.h"

namespace cachekit::testing {

class PrivateSentinels {
 public:
  // `sentinel_acl`: an extra "user ..." line for every sentinel's config (e.g. to refuse
  // SUBSCRIBE to the default user), empty for none.
  explicit PrivateSentinels(int sentinels = 3, const std::string& sentinel_acl = "")
      : primary_(start_private_redis()),
        replica_(
            start_private_redis({"--replicaof", "127.0.0.1", std::to_string(primary_.port())})) {
    static int counter = 0;
    for (int i = 0; i < sentinels; ++i) {
      auto conf = std::filesystem::temp_directory_path() /
                  ("cachekit-sentinel-" + std::to_string(::getpid()) + "-" +
                   std::to_string(counter++) + ".conf");
      std::ofstream(conf) << "bind 127.0.0.1\n"
                          << (sentinel_acl.empty() ? "" : sentinel_acl + "\n")
                          << "sentinel monitor mymaster 127.0.0.1 " << primary_.port() << " "
                          << (sentinels == 1 ? 1 : 2) << "\n"
                          << "sentinel down-after-milliseconds mymaster 1000\n"
                          << "sentinel failover-timeout mymaster 5000\n";
      conf_files_.push_back(conf);
      sentinels_.push_back(ServerProcess::start(
          {"redis-server", conf.string(), "--sentinel", "--port", "{port}", "--dir",
           std::filesystem::temp_directory_path().string(), "--loglevel", "warning"}));
    }
  }
  ~PrivateSentinels() {
    sentinels_.clear();  // killed before their config files go
    for (const auto& f : conf_files_) std::filesystem::remove(f);
  }

  ServerProcess& primary() { return primary_; }
  ServerProcess& replica() { return replica_; }
  ServerProcess& sentinel(std::size_t i) { return sentinels_.at(i); }

  // sentinel://127.0.0.1:S1,...,127.0.0.1:SN/mymaster/<db>, or the first `count` sentinels.
  std::string url(int db, std::size_t count = 0) const {
    if (count == 0) count = sentinels_.size();
    std::string out = "sentinel://";
    for (std::size_t i = 0; i < count; ++i) {
      out += (i > 0 ? "," : "") + std::string("127.0.0.1:") + std::to_string(sentinels_[i].port());
    }
    return out + "/mymaster/" + std::to_string(db);
  }

  // The primary's port according to sentinel `i` (0 if it cannot say).
  int primary_port(std::size_t i = 0) {
    try {
      RawRedis raw("127.0.0.1", sentinels_.at(i).port());
      auto reply = raw.command({"SENTINEL", "get-master-addr-by-name", "mymaster"});
      return reply.elements.size() == 2 ? std::stoi(reply.elements[1].str) : 0;
    } catch (const std::exception&) {
      return 0;
    }
  }

  // Waits (polling, up to `deadline`) until every sentinel lists the replica and knows the
  // other sentinels: before that a failover answers NOGOODSLAVE (sentinels learn replicas
  // from the primary's INFO about every 10 s). True when ready.
  bool wait_until_ready(std::chrono::seconds deadline = std::chrono::seconds(40)) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      if (ready()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  // Polls `condition` until it holds or `deadline` passes.
  template <class F>
  static bool eventually(F condition, std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return condition();
  }

 private:
  bool ready() {
    for (auto& s : sentinels_) {
      try {
        RawRedis raw("127.0.0.1", s.port());
        if (raw.command({"SENTINEL", "replicas", "mymaster"}).elements.empty()) return false;
        if (raw.command({"SENTINEL", "sentinels", "mymaster"}).elements.size() + 1 <
            sentinels_.size()) {
          return false;
        }
      } catch (const std::exception&) {
        return false;
      }
    }
    return true;
  }

  ServerProcess primary_;
  ServerProcess replica_;
  std::vector<ServerProcess> sentinels_;
  std::vector<std::filesystem::path> conf_files_;
};

}  // namespace cachekit::testing
