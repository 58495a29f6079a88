// Concurrency of the SQL backend: threads of one process (names with "Concurrent" also run
// under TSan) and separate processes (fork) sharing one SQLite file or PostgreSQL table, plus
// SQLite's behaviour when another process holds the database locked.
#include <cachekit/cache.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/sql_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using sql_testing::BackendSetup;
using sql_testing::Engine;

class SqlConcurrency : public ::testing::TestWithParam<Engine> {
 protected:
  // A backend on the test's table; every process and thread makes its own.
  std::shared_ptr<Backend> backend(std::size_t max_connections = 4) {
    BackendSetup s = setup_;
    s.max_connections = max_connections;
    s.create_table = table_created_.exchange(true) == false;
    auto made = sql_testing::make_backend(GetParam(), scratch_.path(), s);
    setup_.table = s.table;
    return made;
  }

  // Runs `work(child_index)` in `n` forked processes, each of which builds its own backend
  // (a connection must never cross a fork), and returns what each wrote to its pipe.
  template <class Work>
  std::vector<std::string> in_processes(int n, Work work) {
    std::vector<std::pair<pid_t, int>> children;
    for (int i = 0; i < n; ++i) {
      int fds[2];
      if (::pipe(fds) != 0) ADD_FAILURE() << "pipe";
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(fds[0]);
        const std::string out = work(i);
        const bool written = ::write(fds[1], out.data(), out.size()) == ssize_t(out.size());
        ::_exit(written ? 0 : 1);  // no destructors, no gtest teardown in the child
      }
      ::close(fds[1]);
      children.emplace_back(pid, fds[0]);
    }
    std::vector<std::string> outputs;
    for (auto [pid, fd] : children) {
      std::string out;
      char buffer[4096];
      for (ssize_t got; (got = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, got);
      ::close(fd);
      int status = 0;
      ::waitpid(pid, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed";
      outputs.push_back(out);
    }
    return outputs;
  }

  sql_testing::ScratchDir scratch_;
  BackendSetup setup_;
  std::atomic<bool> table_created_{false};
};

TEST_P(SqlConcurrency, CrossProcessIncrReachesTheExactTotal) {
  Cache(backend()).set("n", "0", kNever);
  constexpr int kProcesses = 2, kEach = 300;
  auto outputs = in_processes(kProcesses, [&](int) {
    Cache cache(backend());
    int failures = 0;
    for (int i = 0; i < kEach; ++i) failures += cache.strict().incr("n").ok() ? 0 : 1;
    return std::to_string(failures);
  });
  for (const auto& failures : outputs) EXPECT_EQ(failures, "0");
  EXPECT_EQ(Cache(backend()).get("n"), std::to_string(kProcesses * kEach));
}

TEST_P(SqlConcurrency, CrossProcessAddHasExactlyOneWinnerPerKey) {
  constexpr int kKeys = 150;
  (void)backend();  // creates the table before the race
  auto outputs = in_processes(2, [&](int child) {
    Cache cache(backend());
    std::string won(kKeys, '0');
    for (int k = 0; k < kKeys; ++k) {
      auto added = cache.strict().add("key" + std::to_string(k), std::to_string(child));
      if (!added.ok()) return std::string("error: ") + added.status().to_string();
      if (*added) won[k] = '1';
    }
    return won;
  });
  ASSERT_EQ(outputs.size(), 2u);
  ASSERT_EQ(outputs[0].size(), std::size_t(kKeys)) << outputs[0];
  ASSERT_EQ(outputs[1].size(), std::size_t(kKeys)) << outputs[1];
  Cache cache(backend());
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_NE(outputs[0][k], outputs[1][k]) << "key" << k << ": exactly one add must win";
    const char winner = outputs[0][k] == '1' ? '0' : '1';
    EXPECT_EQ(cache.get("key" + std::to_string(k)), std::string(1, winner));
  }
}

TEST_P(SqlConcurrency, ConcurrentAddHasExactlyOneWinnerPerKey) {
  Cache cache(backend());
  constexpr int kThreads = 4, kKeys = 100;
  std::vector<std::atomic<int>> wins(kKeys);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kKeys; ++k) {
        auto added = cache.strict().add("key" + std::to_string(k), "v");
        if (added.ok() && *added) wins[k]++;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(wins[k].load(), 1) << "key" << k;
}

TEST_P(SqlConcurrency, ConcurrentCallersShareABoundedPool) {
  auto shared = backend(/*max_connections=*/2);
  Cache cache(shared);
  cache.set("k", "v");
  std::atomic<int> misses{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) misses += cache.get("k").has_value() ? 0 : 1;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(cache.stats().errors, 0u);
  auto stats = shared->stats();
  ASSERT_OK(stats);
  EXPECT_LE(std::stoi(sql_testing::stat(*stats, "open_connections")), 2);
}

INSTANTIATE_TEST_SUITE_P(Engines, SqlConcurrency,
                         ::testing::Values(Engine::kSqlite, Engine::kPostgres),
                         [](const auto& info) { return sql_testing::engine_name(info.param); });

// ---- SQLite when the file is locked, missing or not a database ----

class SqliteFailure : public ::testing::Test {
 protected:
  std::shared_ptr<Backend> make(const std::filesystem::path& path,
                                std::chrono::milliseconds timeout) {
    SqliteOptions options;
    options.path = path;
    options.call_timeout = timeout;
    auto backend = make_sqlite_backend(options);
    if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
    return *backend;
  }
  sql_testing::ScratchDir scratch_;
};

TEST_F(SqliteFailure, ALockedDatabaseTimesOutWritesButNotReads) {
  const auto path = scratch_.path() / "locked.db";
  auto backend = make(path, 150ms);
  ASSERT_OK(create_cache_table(*backend, false));
  Cache cache(backend, {.max_error_logs_per_second = 0});
  ASSERT_TRUE(cache.set("k", "before"));
  sqlite3* other = nullptr;  // another process's connection, holding the write lock
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  const auto start = std::chrono::steady_clock::now();
  Status status = cache.strict().set("k", "during");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_STATUS(status, StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, 140ms);
  EXPECT_LT(took, 600ms);
  EXPECT_EQ(cache.get("k"), "before") << "WAL readers do not wait for a writer";
  EXPECT_FALSE(cache.set("k", "during"));  // fail-open: false, counted
  EXPECT_EQ(cache.stats().errors, 1u);

  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(cache.set("k", "after"));
  EXPECT_EQ(cache.get("k"), "after");
}

TEST_F(SqliteFailure, AnUnreachableFileIsUnavailable) {
  auto backend = make(scratch_.path() / "no-such-dir" / "cache.db", 1s);
  auto got = backend->get("k");
  EXPECT_STATUS(got, StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("no-such-dir"), std::string::npos);
}

TEST_F(SqliteFailure, AFileThatIsNotADatabaseIsUnavailable) {
  const auto path = scratch_.path() / "garbage.db";
  std::ofstream(path) << std::string(8192, 'x');
  auto backend = make(path, 1s);
  EXPECT_STATUS(backend->get("k"), StatusCode::kUnavailable);
  EXPECT_STATUS(backend->set("k", "v", Expiry::never()), StatusCode::kUnavailable);
}

TEST_F(SqliteFailure, OptionsAreChecked) {
  EXPECT_STATUS(make_sqlite_backend({}), StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_sqlite_backend({.path = ":memory:"}), StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_sqlite_backend({.path = "x.db", .table = ""}), StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_sqlite_backend({.path = "x.db", .pool_size = 0}),
                StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_postgres_backend({}), StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_postgres_backend({.url = "postgresql://h/db?nosuchparam=1"}),
                StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_postgres_backend({.url = "postgresql://h/db", .table = std::string(64, 't')}),
                StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cachekit
