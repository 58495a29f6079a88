// The configuration factories of the "sqlite" and "postgres" backends: BackendSpec (location
// and options from the TOML file or a URL) → SqliteOptions / PostgresOptions.
//
// As with every backend, unknown or malformed options are refused at startup.
//
//   [caches.default]
//   backend = "sqlite"               # url = "sqlite:///var/tmp/cache.db"
//   location = "cache.db"            # relative to the configuration file's directory
//   options = { table = "cachekit_cache", max_entries = 10000, cull_frequency = 3,
//               call_timeout_ms = 1000, pool_size = 4 }
//
//   [caches.shared]
//   url = "postgresql://app@db.internal:5432/app"    # or backend = "postgres", location = URL
//   options = { table = "cache", call_timeout_ms = 200, connect_timeout_ms = 200,
//               pool_size = 8, unlogged = true, down_after_failures = 3,
//               retry_after_ms = 1000 }
#include <fmt/format.h>

#include <filesystem>
#include <limits>

#include "cachekit/backends/sql.h"
#include "cachekit/caches.h"
#include "config/builtin_backends.h"
#include "config/option_names.h"

namespace cachekit {
namespace {

constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxUnsigned = std::numeric_limits<unsigned>::max();
constexpr std::int64_t kMaxTimeoutMs = 3'600'000;  // an hour: longer is surely a mistake

std::string one_location(const BackendSpec& spec, std::string_view example) {
  if (spec.locations.size() != 1) {
    throw spec.error("location", spec.locations.empty()
                                     ? fmt::format("the {} backend needs a location, e.g. {}",
                                                   spec.backend, example)
                                     : fmt::format("the {} backend takes one location, got {}",
                                                   spec.backend, spec.locations.size()));
  }
  return spec.locations.front();
}

// "sqlite:///abs/path" arrives as the path; a relative path is taken relative to the
// configuration file's directory (as the file backend does), so a service started from another
// working directory still opens the same database.
std::filesystem::path sqlite_path(const BackendSpec& spec) {
  std::filesystem::path path(one_location(spec, "location = \"/var/tmp/cachekit.db\""));
  if (path == ":memory:") {
    throw spec.error("location",
                     "an in-memory SQLite database is private to one connection; give a file "
                     "(or use the locmem backend)");
  }
  if (path.is_relative()) path = std::filesystem::path(spec.file).parent_path() / path;
  std::error_code error;
  auto absolute = std::filesystem::absolute(path, error);
  return error ? path.lexically_normal() : absolute.lexically_normal();
}

// The options both engines share, read into either options struct.
template <class Options>
void read_common(const BackendSpec& spec, Options& options) {
  if (auto table = spec.string_option("table")) options.table = *table;
  if (auto n = spec.integer_option("max_entries", 0, kMaxInt64)) {
    options.max_entries = static_cast<std::size_t>(*n);
  }
  if (auto n = spec.integer_option("cull_frequency", 0, kMaxUnsigned)) {
    options.cull_frequency = static_cast<unsigned>(*n);
  }
  if (auto ms = spec.integer_option("call_timeout_ms", 1, kMaxTimeoutMs)) {
    options.call_timeout = std::chrono::milliseconds(*ms);
  }
  if (auto n = spec.integer_option("pool_size", 1, 1024)) {
    options.pool_size = static_cast<std::size_t>(*n);
  }
  options.clock = spec.clock;
  // Keys are "<key_prefix>:<version>:<key>"; caches with other prefixes may share the table.
  if (!spec.key_prefix.empty()) options.clear_prefix = spec.key_prefix + ":";
}

template <class Make>
std::shared_ptr<Backend> built(const BackendSpec& spec, Result<std::shared_ptr<Backend>> backend,
                               Make field) {
  if (!backend.ok()) throw spec.error(field(backend.status()), backend.status().message());
  return std::move(backend).value();
}

std::shared_ptr<Backend> make_sqlite(const BackendSpec& given) {
  const BackendSpec spec = with_current_option_names(
      given, {{"timeout_ms", "call_timeout_ms"}, {"max_connections", "pool_size"}});
  spec.reject_unknown_options(
      {"table", "max_entries", "cull_frequency", "call_timeout_ms", "pool_size"});
  SqliteOptions options;
  options.path = sqlite_path(spec);
  read_common(spec, options);
  return built(spec, make_sqlite_backend(options), [](const Status& s) {
    return s.message().find("table") != std::string::npos ? "options.table" : "location";
  });
}

std::shared_ptr<Backend> make_postgres(const BackendSpec& given) {
  const BackendSpec spec =
      with_current_option_names(given, {{"timeout_ms", "call_timeout_ms"},
                                        {"max_connections", "pool_size"},
                                        {"failure_threshold", "down_after_failures"},
                                        {"retry_interval_ms", "retry_after_ms"}});
  spec.reject_unknown_options({"table", "max_entries", "cull_frequency", "call_timeout_ms",
                               "connect_timeout_ms", "pool_size", "unlogged", "down_after_failures",
                               "retry_after_ms"});
  PostgresOptions options;
  options.url = one_location(spec, "url = \"postgresql://user@host:5432/dbname\"");
  read_common(spec, options);
  options.connect_timeout = options.call_timeout;
  if (auto ms = spec.integer_option("connect_timeout_ms", 1, kMaxTimeoutMs)) {
    options.connect_timeout = std::chrono::milliseconds(*ms);
  }
  options.unlogged = spec.bool_option("unlogged").value_or(options.unlogged);
  // The circuit breaker, with the Redis backend's names and bounds.
  if (auto n = spec.integer_option("down_after_failures", 1, 1'000)) {
    options.down_after_failures = static_cast<unsigned>(*n);
  }
  if (auto ms = spec.integer_option("retry_after_ms", 0, kMaxTimeoutMs)) {
    options.retry_after = std::chrono::milliseconds(*ms);
  }
  return built(spec, make_postgres_backend(options), [](const Status& s) {
    return s.message().find("table") != std::string::npos ? "options.table" : "location";
  });
}

}  // namespace

void register_sql_backend(BackendRegistry& registry) {
  registry.add("sqlite", make_sqlite);
  registry.add("postgres", make_postgres);
}

}  // namespace cachekit
