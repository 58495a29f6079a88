#pragma once
// The SQL text of the cache backend, built once per backend from the engine's Dialect and the
// (quoted) table name. Nothing the user controls is ever spliced in unquoted: the table name
// goes through quote_identifier(), and every key, value and time is a bound parameter.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "backends/sql/engine.h"

namespace cachekit::sql_internal {

// The fixed statements; an engine prepares each once per connection. The comment lists the
// parameters, then the result columns.
enum StatementId : int {
  kGet,              // key → value, expires
  kSet,              // key, value, expires, now
  kAdd,              // key, value, expires, now (rows affected: 1 if stored)
  kTouch,            // key, expires, now
  kErase,            // key → expires of the removed row
  kIncr,             // key, delta, now, lowest, highest → the new value
  kExpiry,           // key → expires
  kDeleteIfExpired,  // key, now
  kClear,            // –
  kCount,            // – → number of rows
  kDeleteExpired,    // now, limit
  kCullExpiring,     // limit: the expiring rows closest to expiry, least recently written first
  kCullNever,        // limit: never-expiring rows, least recently written first
  kStats,            // now → rows, expired rows
  kEraseIfValue,     // key, value → expires of the removed row
  kStatementCount
};

using Statements = std::array<Statement, kStatementCount>;

[[nodiscard]] Statements build_statements(const Dialect& dialect, std::string_view table);

// Batches: one statement per batch; the caller splits longer lists into kMaxBatch pieces.
inline constexpr std::size_t kMaxBatch = 500;
// keys $1..$n → key, value, expires
[[nodiscard]] Statement get_many_statement(const Dialect& d, std::string_view table, std::size_t n);
// keys $1..$n → expires of each removed row
[[nodiscard]] Statement erase_many_statement(const Dialect& d, std::string_view table,
                                             std::size_t n);
// expires $1, now $2, then (key, value) pairs
[[nodiscard]] Statement set_many_statement(const Dialect& d, std::string_view table, std::size_t n);
// lowest key $1, now $2 [, key upper bound $3] → key
[[nodiscard]] Statement keys_statement(const Dialect& d, std::string_view table, bool bounded);
// prefix $1, its length in characters $2 [, key upper bound $3]: deletes the prefix's rows
[[nodiscard]] Statement clear_prefix_statement(const Dialect& d, std::string_view table,
                                               bool bounded);

// CREATE TABLE IF NOT EXISTS … ; CREATE INDEX IF NOT EXISTS … ;
[[nodiscard]] std::string create_table_sql(const Dialect& d, std::string_view table);

}  // namespace cachekit::sql_internal
