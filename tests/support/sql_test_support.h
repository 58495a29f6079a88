#pragma once
// Helpers shared by the SQL backend's tests: a backend of either engine on a table of its own.
//
// PostgreSQL comes from CACHEKIT_TEST_POSTGRES_URL, which scripts/run-tests always sets; when it
// is missing the test fails (never skips) and says how to run it. SQLite uses a file in a
// scratch directory the fixture owns.
#include <cachekit/backends/sql.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace cachekit::sql_testing {

enum class Engine { kSqlite, kPostgres };

inline std::string engine_name(Engine e) { return e == Engine::kSqlite ? "sqlite" : "postgres"; }

inline std::string postgres_url() {
  const char* value = std::getenv("CACHEKIT_TEST_POSTGRES_URL");
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(
        "CACHEKIT_TEST_POSTGRES_URL is not set: run the tests with `make test` "
        "(scripts/run-tests), which starts the test servers and sets it");
  }
  return value;
}

// Unique across the processes ctest runs in parallel and across runs on one server.
inline std::string unique_table(std::string_view tag) {
  static std::atomic<int> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'000;
  return std::string(tag) + " " + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
         "-" + std::to_string(now);
}

struct BackendSetup {
  std::string table{};  // empty: a unique one
  std::size_t max_entries = 100'000;
  unsigned cull_frequency = 3;
  std::chrono::milliseconds timeout{5000};
  std::size_t max_connections = 4;
  bool create_table = true;
  const Clock* clock = nullptr;
};

// A fresh backend; `setup.table` is filled in with the table it uses.
inline std::shared_ptr<Backend> make_backend(Engine engine, const std::filesystem::path& scratch,
                                             BackendSetup& setup) {
  if (setup.table.empty()) setup.table = unique_table("sql test");
  Result<std::shared_ptr<Backend>> backend = invalid_argument_error("unset");
  if (engine == Engine::kSqlite) {
    SqliteOptions o;
    o.path = scratch / "cache.db";
    o.table = setup.table;
    o.max_entries = setup.max_entries;
    o.cull_frequency = setup.cull_frequency;
    o.call_timeout = setup.timeout;
    o.pool_size = setup.max_connections;
    o.clock = setup.clock;
    backend = make_sqlite_backend(o);
  } else {
    PostgresOptions o;
    o.url = postgres_url();
    o.table = setup.table;
    o.max_entries = setup.max_entries;
    o.cull_frequency = setup.cull_frequency;
    o.call_timeout = setup.timeout;
    o.connect_timeout = setup.timeout;
    o.pool_size = setup.max_connections;
    o.clock = setup.clock;
    backend = make_postgres_backend(o);
  }
  if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
  if (setup.create_table) {
    auto created = create_cache_table(**backend, false);
    if (!created.ok()) throw std::runtime_error(created.status().to_string());
  }
  return *backend;
}

// A scratch directory removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "cachekit-sql-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string stat(const StatPairs& stats, std::string_view name) {
  for (const auto& [key, value] : stats) {
    if (key == name) return value;
  }
  return "<missing " + std::string(name) + ">";
}

}  // namespace cachekit::sql_testing
