// sql_bench: read throughput of the SQL cache backend next to its peers (BENCHMARKS.md, "Database
// backends").
//
//   sql_bench fill-sqlite FILE [ROWS] [VALUE_BYTES]      # createcachetable + ROWS rows "k<i>"
//   sql_bench sqlite-raw FILE [SECONDS] [ROWS]           # peer: prepared SELECT via the C API
//   sql_bench sqlite FILE [SECONDS] [ROWS]               # Cache::get on the sqlite backend
//   sql_bench fill-postgres URL [ROWS] [VALUE_BYTES]
//   sql_bench postgres URL [SECONDS] [ROWS] [THREADS]    # Cache::get from THREADS threads
//
// Each reader walks a pre-shuffled array of row numbers (no RNG in the timed loop, every read
// a hit) and prints one line: "<mode> ops=<n> seconds=<s> ops_per_sec=<r>". The peer for
// PostgreSQL is `pgbench -S -M prepared`, run by bench/run-sql-bench.sh on the same server.
#include <cachekit/backends/sql.h>
#include <cachekit/cache.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Steady = std::chrono::steady_clock;
constexpr char kTable[] = "bench_cache";
constexpr std::size_t kWalk = 1 << 16;

// Row numbers in random order, a different order per reader.
std::vector<std::uint32_t> walk(std::size_t rows, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint32_t> out(kWalk);
  for (auto& i : out) i = static_cast<std::uint32_t>(rng() % rows);
  return out;
}

std::vector<std::string> caller_keys(std::size_t rows) {
  std::vector<std::string> keys(rows);
  for (std::size_t i = 0; i < rows; ++i) keys[i] = fmt::format("k{}", i);
  return keys;
}

// CPU time (user + system) of this process so far, in seconds. On a shared, loaded machine the
// ops per CPU-second of a single-threaded reader is steadier than its wall-clock rate.
double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

int report(const char* mode, std::uint64_t ops, Steady::duration took, double cpu) {
  const double seconds = std::chrono::duration<double>(took).count();
  fmt::print(
      "{} ops={} seconds={:.2f} ops_per_sec={:.0f} cpu_seconds={:.2f} ops_per_cpu_sec={:.0f}\n",
      mode, ops, seconds, ops / seconds, cpu, ops / cpu);
  return 0;
}

std::shared_ptr<cachekit::Backend> backend(bool sqlite, const std::string& where,
                                           std::size_t connections) {
  cachekit::Result<std::shared_ptr<cachekit::Backend>> made = cachekit::invalid_argument_error("");
  if (sqlite) {
    made = cachekit::make_sqlite_backend(
        {.path = where, .table = kTable, .max_entries = 0, .pool_size = connections});
  } else {
    made = cachekit::make_postgres_backend(
        {.url = where, .table = kTable, .max_entries = 0, .pool_size = connections});
  }
  if (!made.ok()) {
    fmt::print(stderr, "{}\n", made.status().to_string());
    std::exit(2);
  }
  return *made;
}

int fill(bool sqlite, const std::string& where, std::size_t rows, std::size_t value_bytes) {
  auto b = backend(sqlite, where, 1);
  if (auto created = cachekit::create_cache_table(*b, false); !created.ok()) {
    fmt::print(stderr, "{}\n", created.status().to_string());
    return 2;
  }
  cachekit::Cache cache(b);
  (void)cache.clear();
  const std::string value(value_bytes, 'v');
  std::vector<std::pair<std::string, std::string>> batch;
  for (std::size_t i = 0; i < rows; ++i) {
    batch.emplace_back(fmt::format("k{}", i), value);
    if (batch.size() == 1000 || i + 1 == rows) {
      if (!cache.set_many(batch, cachekit::kNever).empty()) return 2;
      batch.clear();
    }
  }
  fmt::print("filled {} rows of {} bytes\n", rows, value_bytes);
  return 0;
}

// The peer: what an application would write by hand — one prepared statement, bind, step,
// copy the value out, reset.
int sqlite_raw(const std::string& path, double seconds, std::size_t rows) {
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT value FROM \"bench_cache\" WHERE key = ?1", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    fmt::print(stderr, "sqlite: {}\n", sqlite3_errmsg(db));
    return 2;
  }
  std::vector<std::string> keys;  // the final keys, as the Cache façade makes them
  for (const auto& k : caller_keys(rows)) keys.push_back(fmt::format(":1:{}", k));
  const auto order = walk(rows, 1);
  std::string value;
  std::uint64_t ops = 0, misses = 0;
  const double cpu_start = cpu_seconds();
  const auto start = Steady::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (std::size_t i = 0;; ++i) {
    const std::string& key = keys[order[i & (kWalk - 1)]];
    sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      value.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                   static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    } else {
      ++misses;
    }
    sqlite3_reset(stmt);
    ++ops;
    if ((i & 1023) == 0 && Steady::now() >= end) break;
  }
  const auto took = Steady::now() - start;
  const double cpu = cpu_seconds() - cpu_start;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (misses != 0) fmt::print(stderr, "{} misses\n", misses);
  return report("sqlite-raw", ops, took, cpu);
}

// THREADS readers calling Cache::get through one Cache (one pool) until the time is up.
int cachekit_reads(const char* mode, bool sqlite, const std::string& where, double seconds,
                   std::size_t rows, unsigned threads) {
  cachekit::Cache cache(backend(sqlite, where, std::max(1u, threads)));
  const auto keys = caller_keys(rows);
  std::atomic<std::uint64_t> ops{0}, misses{0};
  const double cpu_start = cpu_seconds();
  const auto start = Steady::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> readers;
  for (unsigned t = 0; t < threads; ++t) {
    readers.emplace_back([&, t] {
      const auto order = walk(rows, t + 1);
      std::uint64_t mine = 0, missed = 0;
      for (std::size_t i = 0;; ++i) {
        missed += cache.get(keys[order[i & (kWalk - 1)]]).has_value() ? 0 : 1;
        ++mine;
        if ((i & 255) == 0 && Steady::now() >= end) break;
      }
      ops += mine;
      misses += missed;
    });
  }
  for (auto& r : readers) r.join();
  const auto took = Steady::now() - start;
  const double cpu = cpu_seconds() - cpu_start;
  if (misses != 0)
    fmt::print(stderr, "{} misses, {} errors\n", misses.load(), cache.stats().errors);
  return report(mode, ops, took, cpu);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: see the comment at the top of bench/sql_bench.cc\n");
    return 2;
  }
  const std::string mode = argv[1], where = argv[2];
  auto arg = [&](int i, double fallback) { return argc > i ? std::atof(argv[i]) : fallback; };
  if (mode == "fill-sqlite" || mode == "fill-postgres") {
    return fill(mode == "fill-sqlite", where, static_cast<std::size_t>(arg(3, 100000)),
                static_cast<std::size_t>(arg(4, 84)));
  }
  const double seconds = arg(3, 10);
  const auto rows = static_cast<std::size_t>(arg(4, 100000));
  if (mode == "sqlite-raw") return sqlite_raw(where, seconds, rows);
  if (mode == "sqlite") return cachekit_reads("sqlite-cachekit", true, where, seconds, rows, 1);
  if (mode == "postgres") {
    return cachekit_reads("postgres-cachekit", false, where, seconds, rows,
                          static_cast<unsigned>(arg(5, 8)));
  }
  fmt::print(stderr, "unknown mode {}\n", mode);
  return 2;
}
