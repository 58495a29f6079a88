#pragma once
// The database backends: one SQL cache backend over two engines, SQLite ("sqlite") and
// PostgreSQL ("postgres") — Django's DatabaseCache, with its quirks fixed.
//
// A cache is one table (default "cachekit_cache"; any name works, it is always quoted):
//
//   key     TEXT primary key        the final key (PostgreSQL: COLLATE "C", byte order)
//   value   BLOB / BYTEA            the value's bytes
//   expires INTEGER / BIGINT NULL   ms since the Unix epoch; NULL = never expires
//   written INTEGER / BIGINT        ms since the epoch of the last write (culling's tie-break)
//   + an index on expires
//
// The table is created by `cachekit createcachetable` (or create_cache_table() below), never
// implicitly; using a cache whose table is missing fails with kFailedPrecondition and a
// message naming the table and that command.
//
// Time: expiry is compared with the backend's Clock (the application's clock), passed to the
// database as a parameter; the database's own clock is never read. Processes that share a
// table should have synchronised clocks, as with Django.
//
// Semantics: incr is one atomic UPDATE that keeps the expiry; add is one atomic
// INSERT … ON CONFLICT DO UPDATE … WHERE the existing row has expired; get_many, set_many
// and erase_many are one statement per batch of up to 500 keys. Expired rows are deleted
// lazily (a get that finds one deletes it) and in batches of at most 1000 rows when the
// backend checks its size. Above max_entries, expired rows go first, then the entries
// closest to expiry (never-expiring entries last; ties: least recently written first) —
// never key order (Django's quirk), and without turning reads into writes as LRU would.
// clear() deletes only this cache's rows: those whose key starts with clear_prefix (a
// configuration file sets it to "<key_prefix>:", so caches with different prefixes can share a
// table), or every row of the table when clear_prefix is empty.
//
// Connections: each backend has a bounded pool (pool_size) shared by its threads; a
// connection is used by one thread at a time. SQLite connections run in WAL mode with a busy
// handler bounded by call_timeout, so several processes can share one file; writers within one
// process queue on a mutex instead of sleeping in SQLite's busy handler. PostgreSQL
// connections prepare each statement once (PQprepare) and are discarded when broken; the
// pool reconnects on demand, so the cache resumes by itself after a server restart.
//
// Failure: every call finishes within `call_timeout` (pool wait + connect + statement): a down
// server is kUnavailable (in microseconds when the port refuses), a hung or locked one
// kDeadlineExceeded. The Cache façade turns these into misses/no-ops and logs them; strict
// calls return them.
//
// Thread-safety: a backend may be used from many threads at once. Processes may share a
// table (SQLite file or PostgreSQL database); add and incr stay atomic across them.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "cachekit/backend.h"
#include "cachekit/clock.h"

namespace cachekit {

struct SqliteOptions {
  std::filesystem::path path{};          // the database file (created when missing)
  std::string table = "cachekit_cache";  // any name; quoted in every statement
  std::size_t max_entries = 300;         // culled above this (Django's MAX_ENTRIES); 0: no bound
  unsigned cull_frequency = 3;           // when full, cull 1/N of the entries; 0: all of them
  std::chrono::milliseconds call_timeout{1000};  // the most a call waits (pool, others' locks)
  std::size_t pool_size = 4;     // open connections at most (readers run in parallel)
  const Clock* clock = nullptr;  // nullptr: SystemClock
  std::string clear_prefix{};    // clear() deletes only keys starting with this
};

struct PostgresOptions {
  // A libpq URL, "postgresql://user:password@host:port/dbname?param=value" (also "postgres://"
  // or a "key=value ..." connection string).
  std::string url{};
  std::string table = "cachekit_cache";
  std::size_t max_entries = 300;
  unsigned cull_frequency = 3;
  std::chrono::milliseconds call_timeout{1000};     // the most a call waits, all included
  std::chrono::milliseconds connect_timeout{1000};  // the most connecting may take (≤ call_timeout)
  std::size_t pool_size = 8;
  bool unlogged = false;  // createcachetable makes an UNLOGGED table (faster writes; emptied
                          // after a crash; not replicated)
  const Clock* clock = nullptr;
  std::string clear_prefix{};  // clear() deletes only keys starting with this; "": every row
  // The circuit breaker: a refused connect, or down_after_failures calls in a row that time out
  // or lose their connection, mark the server down; calls then fail at once (kUnavailable,
  // "marked down") until one probe call per retry_after finds it again.
  unsigned down_after_failures = 3;
  std::chrono::milliseconds retry_after{1000};
};

// Neither factory touches the database: a cache whose database is down at startup still
// starts (and fails open). kInvalidArgument for an empty path or URL, a malformed URL, an
// empty table name, a name with a NUL byte, a PostgreSQL table name longer than 63 bytes,
// pool_size == 0 or down_after_failures == 0.
[[nodiscard]] Result<std::shared_ptr<Backend>> make_sqlite_backend(const SqliteOptions& options);
[[nodiscard]] Result<std::shared_ptr<Backend>> make_postgres_backend(
    const PostgresOptions& options);

// What create_cache_table() did or would do.
struct CacheTableReport {
  std::string table;     // the table's name
  bool existed = false;  // the table was already there (then nothing was done)
  std::string sql;       // the statements that create it (also when it existed)
};

// Creates the table and index of an SQL cache backend when the table is missing; with
// `dry_run`, only reports whether it exists and the SQL that would create it. Errors:
// kUnimplemented when `backend` is not an SQL backend; kUnavailable / kDeadlineExceeded when
// the database cannot be reached. Safe to run while other processes use the database.
[[nodiscard]] Result<CacheTableReport> create_cache_table(Backend& backend, bool dry_run);

}  // namespace cachekit
