// The "tiered" entry of the configuration registry:
//
//   [caches.default]
//   backend = "tiered"
//   options = { shared = "redis://127.0.0.1:6379/2", local = { max_entries = 10000 } }
//
//   [caches.pages]
//   backend = "tiered"
//   [caches.pages.options]
//   coherence = "ttl"          # "auto" (default), "changes" or "ttl"
//   local_ttl_ms = 2000
//   local = { max_entries = 5000, max_bytes = 67108864 }
//   shared = { backend = "memcached", location = "127.0.0.1:11211" }
//
// `shared` is a URL (its scheme names the backend and the whole URL is its location) or a
// table with backend, location (a string or a list) and options, as a cache's own fields.
// It is built by the same registry as every other cache, with this cache's key_prefix.
#include <fmt/format.h>
#include <toml++/toml.h>

#include <cstdint>
#include <limits>

#include "cachekit/backends/tiered.h"
#include "cachekit/caches.h"
#include "config/builtin_backends.h"

namespace cachekit {
namespace {

// A nested spec's error (its field relative to the nested table), renamed to the field it
// came from in this cache: `options.shared.location`, `options.local.max_entries`.
// `read_as_options`: the table was read as if it were an `options` table.
[[noreturn]] void rethrow_nested(const BackendSpec& spec, std::string_view table,
                                 const ConfigError& e, bool read_as_options) {
  std::string problem = e.what();
  const std::string marker = "field '" + e.field() + "': ";
  if (auto at = problem.find(marker); at != std::string::npos) {
    problem = problem.substr(at + marker.size());
  }
  std::string field = e.field();
  if (read_as_options && field.starts_with("options.")) field = field.substr(8);
  throw spec.error(fmt::format("options.{}{}{}", table, field.empty() ? "" : ".", field), problem);
}

// The text of a rendered TOML string value, or nullopt when it is not a string.
std::optional<std::string> string_of(std::string_view rendered) {
  try {
    auto table = toml::parse(std::string("v = ").append(rendered));
    if (auto s = table["v"].value_exact<std::string>()) return s;
  } catch (const toml::parse_error&) {
  }
  return std::nullopt;
}

BackendSpec shared_spec(const BackendSpec& spec) {
  BackendSpec shared = spec;
  shared.backend.clear();
  shared.locations.clear();
  shared.options.clear();
  auto given = spec.options.find("shared");
  if (auto url = given == spec.options.end() ? std::nullopt : string_of(given->second)) {
    auto scheme = url->find("://");
    if (scheme == std::string::npos || scheme == 0) {
      throw spec.error("options.shared", "expected a URL such as \"redis://127.0.0.1:6379/2\"");
    }
    shared.backend = url->substr(0, scheme);
    shared.locations = {*url};
    return shared;
  }
  auto table = spec.table_option("shared");
  if (!table) {
    throw spec.error("options.shared",
                     "the tiered backend needs a shared backend, e.g. options = { shared = "
                     "\"redis://127.0.0.1:6379/2\" }");
  }
  BackendSpec fields = spec;  // to read the table's entries with the typed readers
  fields.options = *table;
  try {
    fields.reject_unknown_options({"backend", "location", "options"});
    shared.backend = fields.string_option("backend").value_or("");
    if (auto options = fields.table_option("options")) shared.options = *options;
  } catch (const ConfigError& e) {
    rethrow_nested(spec, "shared", e, true);
  }
  if (shared.backend.empty()) {
    throw spec.error("options.shared.backend", "missing: name the shared backend");
  }
  if (auto it = table->find("location"); it != table->end()) {
    if (auto one = string_of(it->second)) {
      shared.locations = {*one};
    } else {
      auto list = toml::parse("v = " + it->second);
      for (const auto& item : *list["v"].as_array()) {
        if (!item.is_string()) throw spec.error("options.shared.location", "expected strings");
        shared.locations.push_back(*item.value<std::string>());
      }
    }
  }
  return shared;
}

std::shared_ptr<Backend> make_shared_tier(const BackendSpec& spec) {
  const BackendSpec shared = shared_spec(spec);
  if (shared.backend == "tiered") throw spec.error("options.shared", "cannot itself be tiered");
  const BackendRegistry builtins =
      spec.registry == nullptr ? BackendRegistry::with_builtins() : BackendRegistry();
  const BackendRegistry& registry = spec.registry != nullptr ? *spec.registry : builtins;
  const BackendFactory* factory = registry.find(shared.backend);
  if (factory == nullptr) {
    throw spec.error("options.shared.backend",
                     fmt::format("unknown backend \"{}\"", shared.backend));
  }
  try {
    return (*factory)(shared);
  } catch (const ConfigError& e) {
    rethrow_nested(spec, "shared", e, false);
  }
}

LocmemOptions local_options(const BackendSpec& spec) {
  LocmemOptions local{.max_entries = 10'000};
  auto table = spec.table_option("local");
  if (!table) return local;
  BackendSpec fields = spec;
  fields.options = *table;
  try {
    fields.reject_unknown_options({"max_entries", "max_bytes", "shards"});
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    local.max_entries = fields.integer_option("max_entries", 1, kMax).value_or(local.max_entries);
    local.max_bytes = fields.integer_option("max_bytes", 0, kMax).value_or(local.max_bytes);
    local.shards = static_cast<unsigned>(fields.integer_option("shards", 0, 1024).value_or(0));
  } catch (const ConfigError& e) {
    rethrow_nested(spec, "local", e, true);
  }
  local.location = spec.alias + " (local tier)";
  local.clock = spec.clock;
  return local;
}

std::shared_ptr<Backend> make_tiered(const BackendSpec& spec) {
  spec.reject_unknown_options({"shared", "local", "coherence", "local_ttl_ms"});
  if (!spec.locations.empty()) {
    throw spec.error("location", "the tiered backend takes no location; give options.shared");
  }
  TieredOptions options;
  options.local = local_options(spec);
  if (auto coherence = spec.string_option("coherence")) {
    if (*coherence == "auto") {
      options.coherence = TierCoherence::kAuto;
    } else if (*coherence == "changes") {
      options.coherence = TierCoherence::kChanges;
    } else if (*coherence == "ttl") {
      options.coherence = TierCoherence::kTtl;
    } else {
      throw spec.error(
          "options.coherence",
          fmt::format("expected \"auto\", \"changes\" or \"ttl\", got \"{}\"", *coherence));
    }
  }
  if (auto ms = spec.integer_option("local_ttl_ms", 1, 86'400'000)) {
    options.local_ttl = std::chrono::milliseconds(*ms);
  }
  options.shared = make_shared_tier(spec);
  auto backend = make_tiered_backend(std::move(options));
  if (!backend.ok()) throw spec.error("options", backend.status().message());
  return std::move(backend).value();
}

}  // namespace

void register_tiered_backend(BackendRegistry& registry) { registry.add("tiered", make_tiered); }

}  // namespace cachekit
