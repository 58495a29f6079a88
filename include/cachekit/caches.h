#pragma once
// Caches: an application's named caches, built from a TOML file — Django's CACHES setting.
//
//   # cachekit.toml
//   [caches.default]
//   backend = "locmem"
//   timeout = 300                  # seconds, or "never"
//   key_prefix = "shop"
//   version = 1
//   options = { max_entries = 10000, cull_frequency = 3, max_bytes = 67108864 }
//
//   [caches.pages]
//   url = "file:///var/tmp/cachekit-pages"   # or: backend = "file", location = "/var/tmp/..."
//
// CACHEKIT_CONFIG names the file; CACHEKIT_CACHE_URL (e.g. "locmem://", "file:///tmp/c",
// "dummy://") replaces the default cache's backend and location. Every error — unreadable
// file, bad TOML, unknown backend, bad or unknown field — throws ConfigError at startup with
// the file, the cache and the field in its message. A Caches is built once and shared:
// every method is safe to call from many threads, and each alias hands out the same Cache.

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/backend.h"
#include "cachekit/cache.h"
#include "cachekit/clock.h"

namespace cachekit {

class ConfigError : public std::runtime_error {
 public:
  // "<file>: cache '<alias>': field '<field>': <problem>" (parts that are empty are left out).
  ConfigError(std::string file, std::string alias, std::string field, std::string problem);
  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] const std::string& alias() const noexcept { return alias_; }
  [[nodiscard]] const std::string& field() const noexcept { return field_; }

 private:
  std::string file_, alias_, field_;
};

class BackendRegistry;

// What a backend factory is given: one cache's settings, already checked for shape.
struct BackendSpec {
  std::string file;  // for error messages
  std::string alias;
  std::string backend;                 // "locmem", "file", ...
  std::vector<std::string> locations;  // a list, or one string split on ';' and ','
  // The `options` table, as TOML-typed values rendered to text ("10000", "true", "\"x\"").
  std::map<std::string, std::string, std::less<>> options;
  const Clock* clock = nullptr;
  // The cache's key_prefix: a shared store (Redis, SQL) scopes clear() to "<key_prefix>:".
  std::string key_prefix{};
  // The registry the cache is built from: a backend made of other backends (tiered) builds
  // its parts from it. nullptr: the built-in backends.
  const BackendRegistry* registry = nullptr;

  // Typed option readers; they throw ConfigError naming `options.<name>` on a bad value.
  [[nodiscard]] std::optional<std::int64_t> integer_option(std::string_view name, std::int64_t min,
                                                           std::int64_t max) const;
  [[nodiscard]] std::optional<double> number_option(std::string_view name) const;
  [[nodiscard]] std::optional<bool> bool_option(std::string_view name) const;
  [[nodiscard]] std::optional<std::string> string_option(std::string_view name) const;
  // A table option's entries, each rendered as `options` holds them.
  [[nodiscard]] std::optional<std::map<std::string, std::string, std::less<>>> table_option(
      std::string_view name) const;
  // Throws ConfigError for the first option not in `known`.
  void reject_unknown_options(std::initializer_list<std::string_view> known) const;
  [[nodiscard]] ConfigError error(std::string field, std::string problem) const;
};

using BackendFactory = std::function<std::shared_ptr<Backend>(const BackendSpec&)>;

// Backend name → factory. with_builtins() knows every backend this build of cachekit has.
class BackendRegistry {
 public:
  static BackendRegistry with_builtins();
  void add(std::string name, BackendFactory factory);
  [[nodiscard]] const BackendFactory* find(std::string_view name) const;
  [[nodiscard]] std::vector<std::string> names() const;

 private:
  std::map<std::string, BackendFactory, std::less<>> factories_;
};

class Caches {
 public:
  // Throws ConfigError.
  static Caches from_file(const std::filesystem::path& path, const Clock* clock = nullptr,
                          const BackendRegistry& registry = BackendRegistry::with_builtins());
  static Caches from_toml(std::string_view text, std::string_view source_name,
                          const Clock* clock = nullptr,
                          const BackendRegistry& registry = BackendRegistry::with_builtins());
  // CACHEKIT_CONFIG (or `fallback_file` when that is unset and non-empty; or else a single
  // locmem default cache), then CACHEKIT_CACHE_URL applied to the default cache.
  static Caches from_environment(const std::filesystem::path& fallback_file = {},
                                 const Clock* clock = nullptr);
  // A default-only configuration from a URL such as "locmem://", "file:///tmp/x", "dummy://".
  static Caches from_url(std::string_view url, const Clock* clock = nullptr);

  Caches(Caches&&) noexcept;
  Caches& operator=(Caches&&) noexcept;
  ~Caches();

  // The cache for `alias`; throws ConfigError("The cache '<alias>' is not configured").
  [[nodiscard]] Cache& at(std::string_view alias) const;
  [[nodiscard]] Cache& operator[](std::string_view alias) const { return at(alias); }
  [[nodiscard]] Cache* find(std::string_view alias) const noexcept;
  [[nodiscard]] Cache& default_cache() const { return at("default"); }
  [[nodiscard]] std::vector<std::string> aliases() const;
  // Where the configuration came from (a path, "CACHEKIT_CACHE_URL", or "<built-in>").
  [[nodiscard]] const std::string& source() const noexcept;

 private:
  struct Impl;
  explicit Caches(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachekit
