#pragma once
// Helpers for the Redis tests: a private redis-server, a raw hiredis connection that checks
// what actually reached the server (independently of cachekit's code), and the URL of the
// shared test server.

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/server_process.h"

namespace cachekit::testing {

// The shared server's URL; fails the test (never skips) when the variable is missing.
inline std::string shared_redis_url(const char* variable = "CACHEKIT_TEST_REDIS_URL") {
  const char* value = std::getenv(variable);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << variable
                  << " is not set: run the tests with `make test` (scripts/run-tests), which "
                     "starts the test servers and sets it";
    return "redis://127.0.0.1:1/0";
  }
  return value;
}

// A key namespace no other test process uses.
inline std::string unique_namespace(std::string_view what) {
  static std::atomic<int> counter{0};
  return std::string(what) + ":" + std::to_string(::getpid()) + ":" + std::to_string(counter++) +
         ":";
}

// A throwaway redis-server on a free port: no persistence, quiet. `extra` adds arguments.
inline ServerProcess start_private_redis(std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   "{port}",
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   std::filesystem::temp_directory_path().string(),
                                   "--loglevel",
                                   "warning"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ServerProcess server = ServerProcess::start(std::move(argv));
  // The server accepts on its TCP port (what start() waits for) a moment before it creates a
  // --unixsocket; a test that connects through the socket waits for it too.
  auto socket = std::find(extra.begin(), extra.end(), "--unixsocket");
  if (socket != extra.end() && std::next(socket) != extra.end()) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!std::filesystem::exists(*std::next(socket)) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return server;
}

inline std::string url_of(const ServerProcess& server, int db = 0) {
  return "redis://127.0.0.1:" + std::to_string(server.port()) + "/" + std::to_string(db);
}

// A plain hiredis connection, as redis-cli or another language's client would use.
class RawRedis {
 public:
  RawRedis(const std::string& host, int port, int db = 0) {
    timeval tv{2, 0};
    context_ = redisConnectWithTimeout(host.c_str(), port, tv);
    if (context_ == nullptr || context_->err != 0) {
      throw std::runtime_error("raw connect failed: " +
                               std::string(context_ ? context_->errstr : "out of memory"));
    }
    redisSetTimeout(context_, tv);
    if (db != 0) command({"SELECT", std::to_string(db)});
  }
  // From "redis://host:port/db" (no password).
  static RawRedis from_url(std::string_view url) {
    auto rest = url.substr(url.find("://") + 3);
    auto colon = rest.find(':');
    auto slash = rest.find('/');
    int port = std::stoi(std::string(rest.substr(colon + 1, slash - colon - 1)));
    int db = slash == std::string_view::npos ? 0 : std::stoi(std::string(rest.substr(slash + 1)));
    return RawRedis(std::string(rest.substr(0, colon)), port, db);
  }
  RawRedis(RawRedis&& o) noexcept : context_(std::exchange(o.context_, nullptr)) {}
  ~RawRedis() {
    if (context_ != nullptr) redisFree(context_);
  }

  struct Reply {
    int type = 0;
    long long integer = 0;
    std::string str;
    std::vector<Reply> elements;
  };
  Reply command(std::initializer_list<std::string_view> args) {
    return command(std::vector<std::string_view>(args));
  }
  Reply command(const std::vector<std::string_view>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (auto a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto* raw = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
    if (raw == nullptr)
      throw std::runtime_error("raw command failed: " + std::string(context_->errstr));
    Reply out = convert(*raw);
    freeReplyObject(raw);
    return out;
  }
  // One "field:value" of INFO <section> (e.g. "cmdstat_scan" gives "calls=12,usec=...").
  std::string info_field(std::string_view section, std::string_view field) {
    std::string info = command({"INFO", section}).str;
    auto at = info.find("\n" + std::string(field) + ":");
    if (at == std::string::npos) return "";
    auto start = at + field.size() + 2;
    return info.substr(start, info.find('\r', start) - start);
  }
  // The calls=N of a command in INFO commandstats (0 if never called).
  long long calls(std::string_view command_name) {
    std::string stats = info_field("commandstats", "cmdstat_" + std::string(command_name));
    if (stats.empty()) return 0;
    return std::stoll(stats.substr(6, stats.find(',') - 6));
  }

 private:
  static Reply convert(const redisReply& r) {
    Reply out{r.type, r.integer, {}, {}};
    if (r.str != nullptr) out.str.assign(r.str, r.len);
    for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
    return out;
  }
  redisContext* context_ = nullptr;
};

}  // namespace cachekit::testing
