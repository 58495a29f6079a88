#pragma once
// The seam between the SQL cache backend's shared logic (sql.cc) and a database engine
// (sqlite_engine.cc, postgres_engine.cc).
//
// The shared logic decides *what* to run: it builds every statement's text once, with the
// engine's Dialect, and executes them through a Connection. An engine decides *how*: binding,
// statement preparation and caching, timeouts, and how its errors map to Status codes. A
// Connection is used by one thread at a time (the pool hands it out); an Engine is shared.
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "cachekit/status.h"

namespace cachekit::sql_internal {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// A statement parameter. The type is declared even for a NULL, because PostgreSQL prepares a
// statement with its parameter types.
struct Param {
  enum class Type : std::uint8_t { kText, kBytes, kInt64 };
  Type type = Type::kText;
  bool null = false;
  std::string_view bytes{};
  std::int64_t number = 0;

  static Param text(std::string_view s) { return {Type::kText, false, s, 0}; }
  static Param blob(std::string_view s) { return {Type::kBytes, false, s, 0}; }
  static Param integer(std::int64_t n) { return {Type::kInt64, false, {}, n}; }
  static Param null_integer() { return {Type::kInt64, true, {}, 0}; }
};

// One result row; valid only during the callback that receives it.
class Row {
 public:
  virtual ~Row() = default;
  [[nodiscard]] virtual bool is_null(int column) const = 0;
  [[nodiscard]] virtual std::string_view bytes(int column) const = 0;
  [[nodiscard]] virtual std::int64_t integer(int column) const = 0;
};

// A non-owning reference to a callable (what absl::FunctionRef is): no allocation on the hot
// path, unlike std::function.
class RowFn {
 public:
  RowFn() = default;
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, RowFn>) RowFn(F& f)  // NOLINT: a reference type
      : object_(&f), call_([](void* o, const Row& r) { (*static_cast<F*>(o))(r); }) {}
  void operator()(const Row& row) const {
    if (call_ != nullptr) call_(object_, row);
  }

 private:
  void* object_ = nullptr;
  void (*call_)(void*, const Row&) = nullptr;
};

// A statement the backend runs. `id` >= 0 names one of the backend's fixed statements, which
// an engine prepares once per connection; -1 is a one-off text (a batch whose length varies).
struct Statement {
  int id = -1;
  std::string sql;
  bool writes = false;      // changes the table (SQLite serialises these within the process)
  bool idempotent = true;   // safe to run again after a connection broke mid-call
  bool single_row = false;  // returns at most one row (a primary-key SELECT)
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Runs `statement` with `params`, calling `on_row` for each result row; `affected` (may be
  // null) receives the number of rows inserted, updated or deleted. Returns kDeadlineExceeded
  // when `deadline` passes, kUnavailable when the database cannot be reached (or is locked
  // past the deadline), kFailedPrecondition when the cache table is missing.
  virtual Status execute(const Statement& statement, std::span<const Param> params, RowFn on_row,
                         std::int64_t* affected, Deadline deadline) = 0;
  // Runs several ';'-separated statements without parameters in one transaction (DDL).
  virtual Status execute_script(std::string_view sql, Deadline deadline) = 0;
  // True once the connection must not be used again (the pool then closes it).
  [[nodiscard]] virtual bool broken() const = 0;
  // A cheap check, before reusing an idle connection, that the server has not closed it.
  [[nodiscard]] virtual bool still_usable() { return !broken(); }
};

// What differs in the SQL text between engines.
struct Dialect {
  // "?" (SQLite: ?1, ?2, ...) or "$" (PostgreSQL: $1, $2, ...).
  char placeholder = '?';
  std::string key_type;    // the key column's type
  std::string value_type;  // BLOB / BYTEA
  std::string int_type;    // INTEGER / BIGINT
  // incr: the new value computed from `value` and $2 (the delta), and the guard that makes the
  // UPDATE skip a value that is not a decimal integer or would overflow ($4..$5 bounds it).
  std::string incr_value;
  std::string incr_guard;
  std::string create_table_prefix;  // "CREATE TABLE" or "CREATE UNLOGGED TABLE"

  [[nodiscard]] std::string p(int n) const { return placeholder + std::to_string(n); }
};

class Engine {
 public:
  virtual ~Engine() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;  // "sqlite" or "postgres"
  [[nodiscard]] virtual const Dialect& dialect() const = 0;
  // Where the data lives, for stats and error messages (never a password).
  [[nodiscard]] virtual const std::string& location() const = 0;
  // False when the database certainly does not exist yet (an SQLite file not created), so a
  // dry run can say so without creating it by connecting.
  [[nodiscard]] virtual bool storage_exists() const { return true; }
  // A new connection, or kUnavailable / kDeadlineExceeded.
  virtual Result<std::unique_ptr<Connection>> connect(Deadline deadline) = 0;
  // A query that returns a row when `table` exists, and the text to bind as its one parameter.
  [[nodiscard]] virtual std::pair<std::string, std::string> table_exists_query(
      std::string_view table) const = 0;
};

// Quotes an identifier for both engines: "name", with embedded quotes doubled.
[[nodiscard]] inline std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

// The message every engine gives when the cache table does not exist.
[[nodiscard]] inline Status missing_table_error(std::string_view table) {
  return Status(StatusCode::kFailedPrecondition,
                "Cache table '" + std::string(table) +
                    "' does not exist; create it with `cachekit createcachetable`");
}

}  // namespace cachekit::sql_internal
