#pragma once
// SqlBackend: the cache logic both database engines share (see cachekit/backends/sql.h for the
// behaviour). It owns the engine, the connection pool and the size bookkeeping; each engine
// only executes statements.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "backends/sql/engine.h"
#include "backends/sql/pool.h"
#include "backends/sql/statements.h"
#include "cachekit/backend.h"
#include "cachekit/backends/sql.h"
#include "cachekit/clock.h"

namespace cachekit::sql_internal {

struct SqlSettings {
  std::string table;
  std::size_t max_entries = 300;  // 0: unbounded
  unsigned cull_frequency = 3;
  std::chrono::milliseconds timeout{1000};
  std::size_t max_connections = 4;
  const Clock* clock = nullptr;
  std::string clear_prefix{};  // "": clear() empties the table
  // The circuit breaker (a networked engine); 0: none.
  unsigned failure_threshold = 0;
  std::chrono::milliseconds retry_interval{1000};
};

// Rows deleted by one cleanup or cull statement at most, so that no single statement holds
// the table's write lock (SQLite) or many row locks (PostgreSQL) for long.
inline constexpr std::int64_t kCleanupBatch = 1000;

class SqlBackend final : public Backend {
 public:
  SqlBackend(std::unique_ptr<Engine> engine, SqlSettings settings);

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }
  Result<std::optional<Bytes>> get(std::string_view key) override;
  Status set(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> touch(std::string_view key, Expiry expiry) override;
  Result<bool> erase(std::string_view key) override;
  // One DELETE ... WHERE key = ? AND value = ?: atomic in the database.
  Result<bool> erase_if_value(std::string_view key, std::string_view expected) override;
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
  Status clear() override;
  Result<Ttl> ttl(std::string_view key) override;
  Result<bool> contains(std::string_view key) override;
  Result<std::vector<std::optional<Bytes>>> get_many(
      std::span<const std::string_view> keys) override;
  Result<std::vector<std::size_t>> set_many(std::span<const KeyValue> items,
                                            Expiry expiry) override;
  Result<std::size_t> erase_many(std::span<const std::string_view> keys) override;
  Result<std::vector<std::string>> keys(std::string_view pattern) override;
  Result<StatPairs> stats() override;

  Result<CacheTableReport> create_table(bool dry_run);

 private:
  // Runs a statement on a pooled connection within the backend's timeout. When a connection
  // that had been idle turns out to be dead (the server restarted) and the statement is
  // idempotent and returned nothing yet, it runs once more on a fresh connection.
  Status run(const Statement& statement, std::span<const Param> params, RowFn on_row = {},
             std::int64_t* affected = nullptr);
  [[nodiscard]] std::int64_t now_ms() const noexcept;
  [[nodiscard]] static bool live(const Row& row, int column, std::int64_t now);

  Result<std::int64_t> classify_failed_incr(std::string_view key, std::int64_t delta,
                                            std::int64_t now);
  Result<std::size_t> set_batch(std::span<const KeyValue> items, const Param& expires,
                                std::int64_t now);

  // Size bookkeeping (sql_maintenance.cc).
  void before_insert(std::int64_t rows);
  Result<std::int64_t> count_rows();
  Result<std::int64_t> delete_batches(StatementId id, std::span<const Param> params,
                                      std::int64_t wanted);
  Result<std::int64_t> shrink(std::int64_t count, std::int64_t incoming);
  Status clear_prefix(std::string_view prefix);

  std::unique_ptr<Engine> engine_;
  SqlSettings settings_;
  const Clock* clock_;
  BackendInfo info_;
  Statements statements_;
  ConnectionPool pool_;

  // Writes since the table was last counted, and how many more it can take before the next
  // count; one thread at a time counts and culls.
  std::atomic<std::int64_t> writes_since_count_{0};
  std::atomic<std::int64_t> writes_before_count_{1};
  std::mutex size_check_;
};

}  // namespace cachekit::sql_internal
