// cachekit: the admin command line — read and change one configured cache from a shell.
//
//   cachekit [--config FILE] [--cache ALIAS] get KEY            # raw value bytes on stdout
//   printf 'v' | cachekit set KEY --timeout never               # value from stdin
//
// Every command goes through the strict API (Cache::strict()), so a store error is reported
// instead of being swallowed by the fail-open policy an application wants. Exit codes: 0 done,
// 1 missing key / not stored, 2 usage or configuration error, 3 the store failed the call.
// docs/cli.md is the user documentation.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "cachekit/backends/sql.h"
#include "cachekit/caches.h"
#include "cachekit/redact.h"
#include "proxy_command.h"

#ifndef CACHEKIT_VERSION
#define CACHEKIT_VERSION "0.1.0"
#endif

namespace {

using cachekit::Cache;
using cachekit::Result;
using cachekit::Status;
using cachekit::StatusCode;
using cachekit::Timeout;

enum Exit : int { kDone = 0, kMissing = 1, kUsage = 2, kFailed = 3 };

// What the command line asked for; CLI11 fills it in.
struct Request {
  std::string config;
  std::string alias = "default";
  std::string command;
  std::string key;
  std::optional<std::string> value;  // set/add: nullopt reads the value from stdin
  std::string timeout;               // "" is the cache's default timeout
  std::string pattern = "*";
  std::int64_t delta = 1;
  std::optional<std::int64_t> version;  // nullopt is the cache's version
  bool raw = false;
  bool dry_run = false;  // createcachetable
};

// Where a command writes its results, and the cache it works on.
struct Context {
  Cache& cache;
  cachekit::StrictCache strict;
  const Request& request;
  std::FILE* out;
};

int report(int code, std::string_view message) {
  fmt::print(stderr, "cachekit: {}\n", message);
  return code;
}

// kUnimplemented means the cache cannot do this at all (a backend without keys or stats, a
// custom key function): retrying cannot help, so it is reported like a configuration error.
int failed(std::string_view command, const Status& status) {
  if (status.code() == StatusCode::kUnimplemented) {
    return report(kUsage,
                  fmt::format("{}: this cache cannot do that: {}", command, status.message()));
  }
  return report(kFailed, fmt::format("{} failed: {}", command, status.to_string()));
}

int missing(const Context& c, std::string_view what) {
  return report(kMissing, fmt::format("{}: '{}' {}", c.request.command, c.request.key, what));
}

// Seconds (fractions allowed; zero or negative store an already-expired entry, as Django
// does), "never", or "" for the cache's default timeout.
Result<Timeout> parse_timeout(const std::string& text) {
  if (text.empty()) return Timeout();
  if (text == "never") return cachekit::kNever;
  char* end = nullptr;
  double seconds = std::strtod(text.c_str(), &end);
  constexpr double kCentury = 100.0 * 365.25 * 24 * 3600;
  if (end != text.c_str() + text.size() || !std::isfinite(seconds) ||
      std::fabs(seconds) > kCentury) {
    return cachekit::invalid_argument_error(
        fmt::format("--timeout: expected seconds or \"never\", got '{}'", text));
  }
  return Timeout(std::chrono::milliseconds(std::llround(seconds * 1000)));
}

std::optional<std::string> read_stdin() {
  if (isatty(STDIN_FILENO) != 0) {
    fmt::print(stderr, "cachekit: reading the value from stdin (end it with Ctrl-D)\n");
  }
  std::string value;
  char buffer[65536];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, stdin)) > 0) value.append(buffer, n);
  if (std::ferror(stdin)) return std::nullopt;
  return value;
}

int write_out(const Context& c, std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), c.out) != bytes.size() ||
      std::fflush(c.out) != 0) {
    return report(kFailed, "cannot write to stdout");
  }
  return kDone;
}

// ---- the commands ----

int run_get(Context& c) {
  auto value = c.strict.get(c.request.key, c.request.version);
  if (!value.ok()) return failed("get", value.status());
  if (!value->has_value()) return missing(c, "not found");
  return write_out(c, (*value)->view());  // exactly the stored bytes: no newline added
}

// set and add: the value comes from the command line or, binary-safe, from stdin.
int run_store(Context& c) {
  auto timeout = parse_timeout(c.request.timeout);
  if (!timeout.ok()) return report(kUsage, timeout.status().message());
  auto value = c.request.value ? c.request.value : read_stdin();
  if (!value) return report(kFailed, "cannot read the value from stdin");
  if (c.request.command == "set") {
    auto status = c.strict.set(c.request.key, *value, *timeout, c.request.version);
    return status.ok() ? kDone : failed("set", status);
  }
  auto stored = c.strict.add(c.request.key, *value, *timeout, c.request.version);
  if (!stored.ok()) return failed("add", stored.status());
  return *stored ? kDone : missing(c, "already exists; not stored");
}

int run_delete(Context& c) {
  auto removed = c.strict.erase(c.request.key, c.request.version);
  if (!removed.ok()) return failed("delete", removed.status());
  return *removed ? kDone : missing(c, "not found");
}

int run_touch(Context& c) {
  auto timeout = parse_timeout(c.request.timeout);
  if (!timeout.ok()) return report(kUsage, timeout.status().message());
  auto touched = c.strict.touch(c.request.key, *timeout, c.request.version);
  if (!touched.ok()) return failed("touch", touched.status());
  return *touched ? kDone : missing(c, "not found");
}

// Whole seconds, rounded up so that a key with 300 ms left does not read as 0 (expired).
int run_ttl(Context& c) {
  auto ttl = c.strict.ttl(c.request.key, c.request.version);
  if (!ttl.ok()) return failed("ttl", ttl.status());
  if (ttl->is_missing()) return missing(c, "not found");
  if (ttl->is_never()) return write_out(c, "never\n");
  auto ms = ttl->remaining().count();
  return write_out(c, fmt::format("{}\n", (ms + 999) / 1000));
}

int run_incr(Context& c) {
  bool up = c.request.command == "incr";
  auto value = up ? c.strict.incr(c.request.key, c.request.delta, c.request.version)
                  : c.strict.decr(c.request.key, c.request.delta, c.request.version);
  if (value.code() == StatusCode::kNotFound) return missing(c, "not found");
  if (!value.ok()) return failed(c.request.command, value.status());
  return write_out(c, fmt::format("{}\n", *value));
}

// Caller keys (this cache's prefix and version), or with --raw the store's final keys; one
// per line, sorted so that output is stable between runs and backends.
int run_keys(Context& c) {
  auto keys = c.request.raw ? c.cache.backend().keys(c.request.pattern)
                            : c.strict.keys(c.request.pattern, c.request.version);
  if (!keys.ok()) return failed("keys", keys.status());
  std::sort(keys->begin(), keys->end());
  std::string text;
  for (const auto& key : *keys) text += key + '\n';
  return write_out(c, text);
}

int run_clear(Context& c) {
  auto status = c.strict.clear();
  return status.ok() ? kDone : failed("clear", status);
}

// "name value" lines: this process's Cache counters, then whatever the backend reports.
int run_stats(Context& c) {
  auto backend = c.strict.backend_stats();
  if (!backend.ok()) return failed("stats", backend.status());
  auto s = c.cache.stats();
  std::string text = fmt::format(
      "cache.hits {}\ncache.misses {}\ncache.writes {}\ncache.errors {}\ncache.key_warnings {}\n",
      s.hits, s.misses, s.writes, s.errors, s.key_warnings);
  // Values may be URLs (a server, a database location): their passwords stay out of the output.
  for (const auto& [name, value] : *backend) {
    text += fmt::format("backend.{} {}\n", name, cachekit::redact(value));
  }
  return write_out(c, text);
}

using Command = int (*)(Context&);

const std::map<std::string, Command, std::less<>>& commands() {
  static const std::map<std::string, Command, std::less<>> table = {
      {"get", run_get},     {"set", run_store},   {"add", run_store},   {"delete", run_delete},
      {"touch", run_touch}, {"ttl", run_ttl},     {"incr", run_incr},   {"decr", run_incr},
      {"keys", run_keys},   {"clear", run_clear}, {"stats", run_stats},
  };
  return table;
}

// ---- the command line ----

// The arguments a command takes.
enum Arg : unsigned {
  kKey = 1,
  kValue = 2,
  kTimeout = 4,
  kDelta = 8,
  kVersion = 16,
  kPattern = 32
};

struct CommandSpec {
  const char* name;
  const char* help;
  unsigned args;
};

constexpr CommandSpec kCommandSpecs[] = {
    {"get", "Write the value's raw bytes to stdout (exit 1 if missing)", kKey | kVersion},
    {"set", "Store a value (from VALUE, or from stdin when omitted)",
     kKey | kValue | kTimeout | kVersion},
    {"add", "Store a value only if the key is missing (exit 1 if it exists)",
     kKey | kValue | kTimeout | kVersion},
    {"delete", "Remove a key (exit 1 if it was missing)", kKey | kVersion},
    {"touch", "Give a live key a new timeout (exit 1 if missing)", kKey | kTimeout | kVersion},
    {"ttl", "Print the seconds a key has left, or 'never' (exit 1 if missing)", kKey | kVersion},
    {"incr", "Add DELTA (default 1) to an integer value and print the result",
     kKey | kDelta | kVersion},
    {"decr", "Subtract DELTA (default 1) from an integer value and print the result",
     kKey | kDelta | kVersion},
    {"keys", "List the keys matching a glob PATTERN (default *), one per line",
     kPattern | kVersion},
    {"clear", "Remove every entry of the cache's store", 0},
    {"stats", "Print counters and the backend's statistics as 'name value' lines", 0},
};

void add_command(CLI::App& app, const CommandSpec& spec, Request& r) {
  auto* sub = app.add_subcommand(spec.name, spec.help);
  sub->callback([&r, name = std::string(spec.name)] { r.command = name; });
  if (spec.args & kKey) {
    sub->add_option("key", r.key, "The key, before prefix and version")->required();
  }
  if (spec.args & kValue) sub->add_option("value", r.value, "The value (default: stdin to EOF)");
  if (spec.args & kTimeout) {
    sub->add_option("-t,--timeout", r.timeout,
                    "Seconds (0 or less: already expired) or 'never' (default: the cache's)");
  }
  if (spec.args & kDelta) sub->add_option("delta", r.delta, "How much (default 1; may be < 0)");
  if (spec.args & kPattern) {
    sub->add_option("pattern", r.pattern, "Glob pattern: * ? [abc] [a-z] \\x (default *)");
    sub->add_flag("--raw", r.raw, "Match and print the store's final keys (prefix:version:key)");
  }
  if (spec.args & kVersion) {
    sub->add_option("--version", r.version, "The key version (default: the cache's version)");
  }
}

void describe(CLI::App& app, Request& r, cachekit::cli::ProxyRequest& proxy) {
  app.description(
      "Read and change a cachekit cache from the shell.\n"
      "Configuration: --config FILE, else $CACHEKIT_CONFIG, else ./cachekit.toml;\n"
      "$CACHEKIT_CACHE_URL replaces the default cache's backend (see docs/configuration.md).\n"
      "Exit codes: 0 done, 1 missing key / not stored, 2 usage or configuration error,\n"
      "3 the store failed.");
  app.set_version_flag("--version", "cachekit " CACHEKIT_VERSION);
  app.add_option("-c,--config", r.config, "The configuration file (TOML)");
  app.add_option("--cache", r.alias, "The cache alias to use")->capture_default_str();
  app.require_subcommand(1);
  for (const auto& spec : kCommandSpecs) add_command(app, spec, r);
  auto* create = app.add_subcommand(
      "createcachetable", "Create the table of every SQL cache (sqlite, postgres) lacking one");
  create->add_flag("--dry-run", r.dry_run, "Print the SQL instead of running it");
  create->callback([&r] { r.command = "createcachetable"; });
  cachekit::cli::add_proxy_command(app, proxy, r.command);
}

// ---- configuration ----

// --config wins over CACHEKIT_CONFIG, which wins over ./cachekit.toml. Passing the choice on
// through the environment lets Caches::from_environment apply CACHEKIT_CACHE_URL exactly as
// it does inside an application, so the CLI always sees the cache the application sees.
cachekit::Caches load_caches(const Request& r) {
  if (!r.config.empty()) ::setenv("CACHEKIT_CONFIG", r.config.c_str(), 1);
  std::filesystem::path fallback;
  std::error_code error;
  if (std::filesystem::is_regular_file("cachekit.toml", error)) fallback = "cachekit.toml";
  auto set = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0';
  };
  if (!set("CACHEKIT_CONFIG") && fallback.empty() && !set("CACHEKIT_CACHE_URL")) {
    throw cachekit::ConfigError(
        "", "", "",
        "no configuration: pass --config FILE, set CACHEKIT_CONFIG=FILE or "
        "CACHEKIT_CACHE_URL=file:///path, or create ./cachekit.toml (see docs/configuration.md)");
  }
  return cachekit::Caches::from_environment(fallback);
}

// An in-process cache would be created empty inside this CLI process and vanish with it, so
// any answer about it would be a lie about the application's cache.
std::optional<std::string> in_process_refusal(const Cache& cache) {
  const auto& info = cache.backend_info();
  if (info.outlives_process) return std::nullopt;
  std::string why = info.stores_values ? "lives inside one process; the CLI cannot reach an "
                                         "application's memory"
                                       : "stores nothing";
  return fmt::format(
      "cache '{}' uses the {} backend, which {} — use a file (or redis, memcached, ...) cache "
      "to inspect it from the command line",
      cache.options().alias, info.name, why);
}

// stdout carries only command results (raw value bytes, for get). Anything a library prints
// to stdout — say a rate-limited spdlog warning about an odd key — is sent to stderr instead,
// by giving results a private duplicate of stdout and pointing descriptor 1 at stderr.
std::FILE* private_stdout() {
  std::fflush(stdout);
  int fd = ::dup(STDOUT_FILENO);
  std::FILE* out = fd >= 0 ? ::fdopen(fd, "wb") : nullptr;
  if (out == nullptr) return stdout;
  ::dup2(STDERR_FILENO, STDOUT_FILENO);
  return out;
}

// Django's createcachetable: every SQL cache of the configuration (not only --cache), each
// table once even when several aliases share it. Existing tables are left alone.
int run_createcachetable(const cachekit::Caches& caches, bool dry_run, std::FILE* out) {
  std::vector<const cachekit::Backend*> seen;
  int code = kDone;
  for (const auto& alias : caches.aliases()) {
    cachekit::Backend& backend = caches.at(alias).backend();
    if (std::find(seen.begin(), seen.end(), &backend) != seen.end()) continue;
    seen.push_back(&backend);
    auto table = cachekit::create_cache_table(backend, dry_run);
    if (table.code() == StatusCode::kUnimplemented) continue;  // not an SQL cache
    if (!table.ok()) {
      code = failed("createcachetable", table.status());
    } else if (table->existed) {
      fmt::print(out, "Cache table '{}' already exists.\n", table->table);
    } else if (dry_run) {
      fmt::print(out, "{}", table->sql);
    } else {
      fmt::print(out, "Cache table '{}' created.\n", table->table);
    }
  }
  std::fflush(out);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Request request;
  cachekit::cli::ProxyRequest proxy;
  CLI::App app("", "cachekit");  // describe() writes the description
  describe(app, request, proxy);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kDone : kUsage;  // --help and --version exit 0
  }
  if (request.command == "proxy") {
    proxy.config = request.config;
    proxy.alias = request.alias;
    try {
      return cachekit::cli::run_proxy(proxy, [&request] { return load_caches(request); });
    } catch (const cachekit::ConfigError& e) {
      return report(kUsage, e.what());
    } catch (const std::exception& e) {
      return report(kUsage, fmt::format("proxy: {}", e.what()));
    }
  }
  std::FILE* out = private_stdout();
  try {
    auto caches = load_caches(request);
    if (request.command == "createcachetable") {
      return run_createcachetable(caches, request.dry_run, out);
    }
    Cache& cache = caches.at(request.alias);
    if (auto refusal = in_process_refusal(cache)) return report(kUsage, *refusal);
    Context context{cache, cache.strict(), request, out};
    return commands().at(request.command)(context);
  } catch (const cachekit::ConfigError& e) {
    return report(kUsage, e.what());
  } catch (const std::exception& e) {
    return report(kFailed, fmt::format("unexpected error: {}", e.what()));
  }
}
