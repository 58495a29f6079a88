#pragma once
// A private Redis Cluster for the tests that reshard it or kill its nodes (never the shared
// one of scripts/test-servers, which other test processes use at the same time): every node
// a redis-server with its own directory, joined by `redis-cli --cluster create`.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_test_support.h"

namespace cachekit::testing {

class PrivateCluster {
 public:
  // `primaries` primaries with `replicas` replicas each; waits until every node answers
  // cluster_state:ok. Throws std::runtime_error when the cluster does not form.
  PrivateCluster(int primaries, int replicas) {
    std::string create = "redis-cli --cluster create";
    for (int i = 0; i < primaries * (1 + replicas); ++i) {
      char dir_template[] = "/tmp/cachekit-cluster-XXXXXX";
      dirs_.emplace_back(::mkdtemp(dir_template));
      // The bus port is given: the default, port + 10000, does not exist above 55535.
      nodes_.push_back(ServerProcess::start({"redis-server",
                                             "--port",
                                             "{port}",
                                             "--bind",
                                             "127.0.0.1",
                                             "--cluster-enabled",
                                             "yes",
                                             "--cluster-port",
                                             std::to_string(free_port()),
                                             "--cluster-config-file",
                                             "nodes.conf",
                                             "--cluster-node-timeout",
                                             "2000",
                                             "--save",
                                             "",
                                             "--appendonly",
                                             "no",
                                             "--dir",
                                             dirs_.back(),
                                             "--loglevel",
                                             "warning"}));
      create += " 127.0.0.1:" + std::to_string(nodes_.back().port());
    }
    create += " --cluster-replicas " + std::to_string(replicas) + " --cluster-yes >/dev/null 2>&1";
    if (std::system(create.c_str()) != 0)
      throw std::runtime_error("redis-cli --cluster create failed");
    wait_until_ok();
  }
  ~PrivateCluster() {
    nodes_.clear();
    for (const auto& dir : dirs_) std::filesystem::remove_all(dir);
  }

  ServerProcess& node(std::size_t i) { return nodes_[i]; }
  [[nodiscard]] std::size_t size() const { return nodes_.size(); }
  [[nodiscard]] std::vector<std::string> seeds() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_) out.push_back("redis://127.0.0.1:" + std::to_string(n.port()));
    return out;
  }
  RawRedis raw(std::size_t i) { return RawRedis("127.0.0.1", nodes_[i].port()); }
  // The index of the node that `asked` says serves `slot` (from its CLUSTER SLOTS).
  std::size_t owner_of(int slot, std::size_t asked = 0) {
    auto slots = raw(asked).command({"CLUSTER", "SLOTS"});
    for (const auto& range : slots.elements) {
      if (range.elements.size() < 3 || range.elements[0].integer > slot ||
          range.elements[1].integer < slot)
        continue;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].port() == range.elements[2].elements[1].integer) return i;
      }
    }
    throw std::runtime_error("no node serves the slot");
  }
  // A field of CLUSTER INFO on node i ("" if it does not answer).
  std::string cluster_info(std::size_t i, std::string_view field) {
    std::string info = raw(i).command({"CLUSTER", "INFO"}).str;
    auto at = info.find(std::string(field) + ":");
    if (at == std::string::npos) return "";
    auto start = at + field.size() + 1;
    return info.substr(start, info.find('\r', start) - start);
  }
  // Polls (with a deadline) until every running node says cluster_state:ok and every replica
  // has synchronised with its primary (a replica that never did cannot be promoted).
  void wait_until_ok(std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      while (nodes_[i].running() && cluster_info(i, "cluster_state") != "ok") {
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("cluster not ok");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      while (nodes_[i].running() && raw(i).info_field("replication", "role") == "slave" &&
             raw(i).info_field("replication", "master_link_status") != "up") {
        if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("replica not up");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

 private:
  std::vector<std::string> dirs_;
  std::vector<ServerProcess> nodes_;
};

}  // namespace cachekit::testing
