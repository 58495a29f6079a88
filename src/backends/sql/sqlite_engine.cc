// The SQLite engine of the SQL cache backend.
//
// Sharing one file between processes: the database runs in WAL mode, so readers never wait for
// a writer and a writer never waits for readers; writers take turns on SQLite's write lock.
// synchronous=NORMAL is WAL's recommended setting: a commit is not fsync'ed (a power cut may
// lose the last writes, never corrupt the file) — the right trade for a cache.
//
// Waiting for the lock: SQLite's own busy timeout sleeps in steps of up to 100 ms, so two
// processes contending for the write lock would see 10–100 ms stalls. The busy handler here
// sleeps 50 µs, doubling to 1.6 ms, and gives up at the call's deadline (kDeadlineExceeded).
// Within one process, writers queue on a mutex before they even try for the lock: SQLite
// admits one writer at a time anyway, and a mutex hands the turn over without sleeping.
//
// Connections are opened NOMUTEX (SQLite's "multi-thread" mode): the pool guarantees one
// thread per connection at a time, so SQLite's per-connection mutex would be pure overhead.
// Each connection prepares the backend's fixed statements once (SQLITE_PREPARE_PERSISTENT) and
// keeps a few of the variable-length batch statements.
#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "backends/sql/engine.h"
#include "backends/sql/sql_backend.h"
#include "backends/sql/statements.h"
#include "cachekit/backends/sql.h"

namespace cachekit::sql_internal {
namespace {

constexpr std::size_t kOneOffCache = 8;

// "the value as a decimal integer, plus the delta", or NULL when the value is not a decimal
// integer (as parse_decimal decides) or the sum would overflow. Registered on every
// connection, so incr is one UPDATE whose arithmetic matches every other backend's exactly.
void incr_function(sqlite3_context* context, int, sqlite3_value** argv) {
  const auto* data = static_cast<const char*>(sqlite3_value_blob(argv[0]));
  const int size = sqlite3_value_bytes(argv[0]);
  auto number = parse_decimal(std::string_view(data == nullptr ? "" : data, size));
  std::int64_t sum = 0;
  if (!number || __builtin_add_overflow(*number, sqlite3_value_int64(argv[1]), &sum)) {
    sqlite3_result_null(context);
    return;
  }
  char text[24];
  auto [end, ec] = std::to_chars(std::begin(text), std::end(text), sum);
  sqlite3_result_blob(context, text, static_cast<int>(end - text), SQLITE_TRANSIENT);
}

class SqliteRow final : public Row {
 public:
  explicit SqliteRow(sqlite3_stmt* stmt) : stmt_(stmt) {}
  [[nodiscard]] bool is_null(int column) const override {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  [[nodiscard]] std::string_view bytes(int column) const override {
    // sqlite3_column_blob before sqlite3_column_bytes, as SQLite documents.
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string_view("") : std::string_view(data, size);
  }
  [[nodiscard]] std::int64_t integer(int column) const override {
    return sqlite3_column_int64(stmt_, column);
  }

 private:
  sqlite3_stmt* stmt_;
};

// The turn to write, within one process: a flag under a mutex, waited for with a deadline.
// (Not std::timed_mutex: libstdc++ implements its timed wait with pthread_mutex_clocklock, which
// ThreadSanitizer cannot see, so every concurrency test would report a false race.)
class WriterTurn {
 public:
  bool take(Deadline deadline) {
    std::unique_lock lock(mutex_);
    if (!free_.wait_until(lock, deadline, [this] { return !taken_; })) return false;
    taken_ = true;
    return true;
  }
  void give() {
    {
      std::lock_guard lock(mutex_);
      taken_ = false;
    }
    free_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable free_;
  bool taken_ = false;
};

class SqliteEngine;

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(SqliteEngine& engine, sqlite3* db) : engine_(engine), db_(db) {}
  ~SqliteConnection() override;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  Status configure(Deadline deadline);
  Status execute(const Statement& statement, std::span<const Param> params, RowFn on_row,
                 std::int64_t* affected, Deadline deadline) override;
  Status execute_script(std::string_view sql, Deadline deadline) override;
  [[nodiscard]] bool broken() const override { return broken_; }

 private:
  static int on_busy(void* self, int attempts);
  Status run(const Statement& statement, std::span<const Param> params, RowFn on_row,
             std::int64_t* affected);
  Result<sqlite3_stmt*> prepared(const Statement& statement);
  Status bind(sqlite3_stmt* stmt, std::span<const Param> params);
  Status error(int code);

  SqliteEngine& engine_;
  sqlite3* db_;
  Deadline deadline_{};
  bool broken_ = false;
  std::array<sqlite3_stmt*, kStatementCount> fixed_{};
  std::vector<std::pair<std::string, sqlite3_stmt*>> one_offs_;  // most recent last
};

class SqliteEngine final : public Engine {
 public:
  explicit SqliteEngine(const SqliteOptions& options)
      : path_(options.path.string()), table_(options.table), timeout_(options.call_timeout) {
    dialect_.placeholder = '?';
    dialect_.key_type = "TEXT";
    dialect_.value_type = "BLOB";
    dialect_.int_type = "INTEGER";
    dialect_.incr_value = "cachekit_incr(value, ?2)";
    dialect_.incr_guard = "cachekit_incr(value, ?2) IS NOT NULL";
    dialect_.create_table_prefix = "CREATE TABLE";
  }
  [[nodiscard]] std::string_view name() const override { return "sqlite"; }
  [[nodiscard]] const Dialect& dialect() const override { return dialect_; }
  [[nodiscard]] const std::string& location() const override { return path_; }
  [[nodiscard]] std::pair<std::string, std::string> table_exists_query(
      std::string_view table) const override {
    return {"SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", std::string(table)};
  }
  [[nodiscard]] bool storage_exists() const override {
    std::error_code error;
    return std::filesystem::exists(path_, error);
  }
  Result<std::unique_ptr<Connection>> connect(Deadline deadline) override;

  [[nodiscard]] const std::string& table() const noexcept { return table_; }
  [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return timeout_; }
  WriterTurn& writer_turn() noexcept { return writer_turn_; }

 private:
  std::string path_;
  std::string table_;
  std::chrono::milliseconds timeout_;
  Dialect dialect_;
  WriterTurn writer_turn_;
};

// SQLite creates a missing database file with mode 0644 (less the umask), and gives its -wal
// and -shm files the database file's mode. A cache holds application data (sessions, pages
// rendered for a user), so the file is created here first, owner-only, with O_EXCL so that an
// existing file (and the mode its owner chose) is left alone. Changing the umask instead
// would affect every thread of the process.
static Status create_owner_only(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  if (errno == EEXIST) return {};
  return unavailable_error(fmt::format("sqlite: cannot create {}: {}", path, std::strerror(errno)));
}

Result<std::unique_ptr<Connection>> SqliteEngine::connect(Deadline deadline) {
  if (Status s = create_owner_only(path_); !s.ok()) return s;
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return unavailable_error(fmt::format("sqlite: cannot open {}: {}", path_, message));
  }
  auto connection = std::make_unique<SqliteConnection>(*this, db);
  if (Status s = connection->configure(deadline); !s.ok()) return s;
  return std::unique_ptr<Connection>(std::move(connection));
}

SqliteConnection::~SqliteConnection() {
  for (auto* stmt : fixed_) sqlite3_finalize(stmt);
  for (auto& [sql, stmt] : one_offs_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status SqliteConnection::configure(Deadline deadline) {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_handler(db_, &SqliteConnection::on_busy, this);
  const int rc = sqlite3_create_function(db_, "cachekit_incr", 2,
                                         SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
                                         nullptr, &incr_function, nullptr, nullptr);
  if (rc != SQLITE_OK) return error(rc);
  // Outside a transaction: journal_mode cannot change inside one.
  deadline_ = deadline;
  const int pragmas = sqlite3_exec(db_, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                                   nullptr, nullptr, nullptr);
  return pragmas == SQLITE_OK ? Status() : error(pragmas);
}

int SqliteConnection::on_busy(void* self, int attempts) {
  auto* connection = static_cast<SqliteConnection*>(self);
  const auto now = SteadyClock::now();
  if (now >= connection->deadline_) return 0;
  const auto pause = std::chrono::microseconds(50 << std::min(attempts, 5));
  std::this_thread::sleep_for(std::min<SteadyClock::duration>(pause, connection->deadline_ - now));
  return 1;
}

Status SqliteConnection::error(int code) {
  const std::string message = sqlite3_errmsg(db_);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("sqlite: {} is locked by another connection ({} ms): {}",
                                engine_.location(), engine_.timeout().count(), message));
    case SQLITE_ERROR:
      if (message.starts_with("no such table")) return missing_table_error(engine_.table());
      break;
    case SQLITE_TOOBIG:
      return Status(StatusCode::kResourceExhausted, "sqlite: " + message);
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      broken_ = true;  // reopened on the next call, which also picks up a replaced file
      [[fallthrough]];
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return unavailable_error(fmt::format("sqlite: {}: {}", engine_.location(), message));
    default:
      break;
  }
  return internal_error(fmt::format("sqlite: {} (code {})", message, code));
}

Status SqliteConnection::execute(const Statement& statement, std::span<const Param> params,
                                 RowFn on_row, std::int64_t* affected, Deadline deadline) {
  deadline_ = deadline;
  if (!statement.writes) return run(statement, params, on_row, affected);
  if (!engine_.writer_turn().take(deadline)) {
    return Status(StatusCode::kDeadlineExceeded,
                  fmt::format("sqlite: other writers in this process held {} for {} ms",
                              engine_.location(), engine_.timeout().count()));
  }
  struct Give {
    WriterTurn& turn;
    ~Give() { turn.give(); }
  } give{engine_.writer_turn()};
  return run(statement, params, on_row, affected);
}

Status SqliteConnection::run(const Statement& statement, std::span<const Param> params,
                             RowFn on_row, std::int64_t* affected) {
  auto stmt = prepared(statement);
  if (!stmt.ok()) return stmt.status();
  if (Status s = bind(*stmt, params); !s.ok()) return s;
  const SqliteRow row(*stmt);
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    on_row(row);
    // A primary-key lookup has no second row: resetting now ends the read transaction without
    // another trip into the B-tree (what a hand-written loop does too).
    if (statement.single_row) {
      rc = SQLITE_DONE;
      break;
    }
  }
  Status status = rc == SQLITE_DONE ? Status() : error(rc);
  if (status.ok() && affected != nullptr) *affected = sqlite3_changes64(db_);
  sqlite3_reset(*stmt);
  return status;
}

Result<sqlite3_stmt*> SqliteConnection::prepared(const Statement& statement) {
  if (statement.id >= 0 && fixed_[statement.id] != nullptr) return fixed_[statement.id];
  auto cached = std::find_if(one_offs_.begin(), one_offs_.end(),
                             [&](const auto& entry) { return entry.first == statement.sql; });
  if (cached != one_offs_.end()) {
    std::rotate(cached, cached + 1, one_offs_.end());  // most recently used last
    return one_offs_.back().second;
  }
  sqlite3_stmt* stmt = nullptr;
  const unsigned flags = statement.id >= 0 ? SQLITE_PREPARE_PERSISTENT : 0;
  const int rc = sqlite3_prepare_v3(db_, statement.sql.data(),
                                    static_cast<int>(statement.sql.size()), flags, &stmt, nullptr);
  if (rc != SQLITE_OK) return error(rc);
  if (statement.id >= 0) return fixed_[statement.id] = stmt;
  if (one_offs_.size() == kOneOffCache) {
    sqlite3_finalize(one_offs_.front().second);
    one_offs_.erase(one_offs_.begin());
  }
  one_offs_.emplace_back(statement.sql, stmt);
  return stmt;
}

// Values are bound SQLITE_STATIC: the caller's bytes outlive the statement's execution, so
// SQLite need not copy them. Parameters beyond the statement's own are left out (incr passes
// PostgreSQL's overflow bounds, which SQLite's incr function does not need).
Status SqliteConnection::bind(sqlite3_stmt* stmt, std::span<const Param> params) {
  const int count = std::min(static_cast<int>(params.size()), sqlite3_bind_parameter_count(stmt));
  for (int i = 0; i < count; ++i) {
    const Param& p = params[i];
    int rc = SQLITE_OK;
    if (p.null) {
      rc = sqlite3_bind_null(stmt, i + 1);
    } else if (p.type == Param::Type::kInt64) {
      rc = sqlite3_bind_int64(stmt, i + 1, p.number);
    } else if (p.bytes.empty()) {
      // A null data pointer would bind SQL NULL, not an empty string.
      rc = p.type == Param::Type::kText ? sqlite3_bind_text(stmt, i + 1, "", 0, SQLITE_STATIC)
                                        : sqlite3_bind_zeroblob(stmt, i + 1, 0);
    } else if (p.type == Param::Type::kText) {
      rc = sqlite3_bind_text64(stmt, i + 1, p.bytes.data(), p.bytes.size(), SQLITE_STATIC,
                               SQLITE_UTF8);
    } else {
      rc = sqlite3_bind_blob64(stmt, i + 1, p.bytes.data(), p.bytes.size(), SQLITE_STATIC);
    }
    if (rc != SQLITE_OK) return error(rc);
  }
  return {};
}

Status SqliteConnection::execute_script(std::string_view sql, Deadline deadline) {
  deadline_ = deadline;
  const std::string script = fmt::format("BEGIN IMMEDIATE; {} COMMIT;", sql);
  const int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return {};
  Status status = error(rc);
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

}  // namespace
}  // namespace cachekit::sql_internal

namespace cachekit {

Result<std::shared_ptr<Backend>> make_sqlite_backend(const SqliteOptions& options) {
  if (options.path.empty()) return invalid_argument_error("sqlite: the database path is empty");
  if (options.path == ":memory:") {
    return invalid_argument_error(
        "sqlite: give a file path; an in-memory database is private to one connection (use "
        "the locmem backend for an in-process cache)");
  }
  if (options.table.empty() || options.table.find('\0') != std::string::npos) {
    return invalid_argument_error("sqlite: the table name must be non-empty, without NUL bytes");
  }
  if (options.pool_size == 0) {
    return invalid_argument_error("sqlite: pool_size must be at least 1");
  }
  sql_internal::SqlSettings settings{
      options.table,     options.max_entries, options.cull_frequency, options.call_timeout,
      options.pool_size, options.clock,       options.clear_prefix};
  return std::shared_ptr<Backend>(std::make_shared<sql_internal::SqlBackend>(
      std::make_unique<sql_internal::SqliteEngine>(options), std::move(settings)));
}

}  // namespace cachekit
