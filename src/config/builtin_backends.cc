// What a backend factory sees (BackendSpec and its typed option readers), the registry of
// factories, and the factories of the backends built into cachekit: locmem, file and dummy.
//
// Unlike Django, which ignores unknown OPTIONS and silently falls back to defaults for bad
// MAX_ENTRIES/CULL_FREQUENCY values, every factory here refuses them: a misspelt
// `max_entires` would otherwise leave a cache at its default size without anyone noticing.
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>

#include "cachekit/backends/dummy.h"
#include "cachekit/backends/file.h"
#include "cachekit/backends/locmem.h"
#include "cachekit/backends/memcached.h"
#include "cachekit/backends/redis.h"
#include "cachekit/backends/sql.h"
#include "cachekit/caches.h"

namespace cachekit {

namespace {

constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxUnsigned = std::numeric_limits<unsigned>::max();

// An option's text — canonical TOML, as the loader renders it ("10000", "true", "\"x\"") —
// parsed back into a one-value table, so every reader accepts exactly TOML's syntax.
std::optional<toml::table> option_value(const BackendSpec& spec, std::string_view name) {
  auto it = spec.options.find(name);
  if (it == spec.options.end()) return std::nullopt;
  try {
    auto table = toml::parse(std::string_view("v = " + it->second));
    if (table.size() == 1 && table.contains("v")) return table;
  } catch (const toml::parse_error&) {
  }
  throw spec.error("options." + std::string(name), "not a TOML value: " + it->second);
}

ConfigError wrong_type(const BackendSpec& spec, std::string_view name, std::string_view wanted) {
  return spec.error("options." + std::string(name),
                    fmt::format("expected {}, got {}", wanted, spec.options.find(name)->second));
}

}  // namespace

// ---- BackendSpec ----

std::optional<std::int64_t> BackendSpec::integer_option(std::string_view name, std::int64_t min,
                                                        std::int64_t max) const {
  auto table = option_value(*this, name);
  if (!table) return std::nullopt;
  auto value = (*table)["v"].value_exact<std::int64_t>();
  if (!value) throw wrong_type(*this, name, "an integer");
  if (*value < min || *value > max) {
    throw error("options." + std::string(name),
                fmt::format("must be between {} and {}, got {}", min, max, *value));
  }
  return value;
}

std::optional<double> BackendSpec::number_option(std::string_view name) const {
  auto table = option_value(*this, name);
  if (!table) return std::nullopt;
  const auto& node = *table->get("v");
  if (!node.is_number()) throw wrong_type(*this, name, "a number");
  return node.value<double>();
}

std::optional<bool> BackendSpec::bool_option(std::string_view name) const {
  auto table = option_value(*this, name);
  if (!table) return std::nullopt;
  auto value = (*table)["v"].value_exact<bool>();
  if (!value) throw wrong_type(*this, name, "true or false");
  return value;
}

std::optional<std::string> BackendSpec::string_option(std::string_view name) const {
  auto table = option_value(*this, name);
  if (!table) return std::nullopt;
  auto value = (*table)["v"].value_exact<std::string>();
  if (!value) throw wrong_type(*this, name, "a string");
  return value;
}

void BackendSpec::reject_unknown_options(std::initializer_list<std::string_view> known) const {
  for (const auto& [name, text] : options) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    throw error("options." + name, fmt::format("unknown option for the {} backend; {}", backend,
                                               list.empty() ? "it takes no options"
                                                            : "the known options are " + list));
  }
}

ConfigError BackendSpec::error(std::string field, std::string problem) const {
  return ConfigError(file, alias, std::move(field), std::move(problem));
}

// ---- BackendRegistry ----

void BackendRegistry::add(std::string name, BackendFactory factory) {
  factories_.insert_or_assign(std::move(name), std::move(factory));
}

const BackendFactory* BackendRegistry::find(std::string_view name) const {
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> BackendRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

// ---- the built-in factories ----

namespace {

// locmem's location is only a name (for logs and stats); which aliases share a store is
// decided by the registry, which hands equal settings the same backend object.
std::shared_ptr<Backend> make_locmem(const BackendSpec& spec) {
  spec.reject_unknown_options({"max_entries", "max_bytes", "cull_frequency", "shards"});
  if (spec.locations.size() > 1) {
    throw spec.error("location", fmt::format("the locmem backend takes one name, got {}",
                                             spec.locations.size()));
  }
  LocmemOptions options;
  if (!spec.locations.empty()) options.location = spec.locations.front();
  options.max_entries = spec.integer_option("max_entries", 1, kMaxInt64).value_or(300);
  options.max_bytes = spec.integer_option("max_bytes", 0, kMaxInt64).value_or(0);
  if (auto n = spec.integer_option("cull_frequency", 0, kMaxUnsigned)) {
    options.cull_frequency = static_cast<unsigned>(*n);
  }
  // 0 lets the backend choose; it rounds other counts up to a power of two.
  options.shards = static_cast<unsigned>(spec.integer_option("shards", 0, 1024).value_or(0));
  options.clock = spec.clock;
  return make_locmem_backend(options);
}

// A relative directory is taken relative to the configuration file's directory, not to the
// process's working directory: a service started from another directory (systemd, cron)
// then still finds the same cache. It is made absolute here so a later chdir() changes
// nothing.
std::filesystem::path file_directory(const BackendSpec& spec) {
  if (spec.locations.size() != 1) {
    throw spec.error("location", spec.locations.empty()
                                     ? "the file backend needs a directory, e.g. location = "
                                       "\"/var/tmp/cachekit\""
                                     : fmt::format("the file backend takes one directory, got {}",
                                                   spec.locations.size()));
  }
  std::filesystem::path directory(spec.locations.front());
  if (directory.is_relative()) {
    directory = std::filesystem::path(spec.file).parent_path() / directory;
  }
  std::error_code error;
  auto absolute = std::filesystem::absolute(directory, error);
  return error ? directory.lexically_normal() : absolute.lexically_normal();
}

std::shared_ptr<Backend> make_file(const BackendSpec& spec) {
  spec.reject_unknown_options({"max_entries", "cull_frequency"});
  FileOptions options;
  options.directory = file_directory(spec);
  options.max_entries = spec.integer_option("max_entries", 1, kMaxInt64).value_or(300);
  options.cull_frequency =
      static_cast<unsigned>(spec.integer_option("cull_frequency", 0, kMaxUnsigned).value_or(3));
  options.clock = spec.clock;
  auto backend = make_file_backend(options);
  if (!backend.ok()) {
    throw spec.error("location",
                     fmt::format("cannot use {} as a file cache: {}", options.directory.string(),
                                 backend.status().message()));
  }
  return std::move(backend).value();
}

// Django's DummyCache ignores LOCATION; so does this.
std::shared_ptr<Backend> make_dummy(const BackendSpec& spec) {
  spec.reject_unknown_options({});
  return make_dummy_backend();
}

}  // namespace

BackendRegistry BackendRegistry::with_builtins() {
  BackendRegistry registry;
  registry.add("locmem", make_locmem);
  registry.add("file", make_file);
  registry.add("dummy", make_dummy);
  register_redis_backends(registry);
  register_sql_backends(registry);
  register_memcached_backends(registry);
  return registry;
}

}  // namespace cachekit
