// The configuration registry: TOML (or a URL) → checked settings → one Cache per alias.
//
// Loading happens in two passes so that every error can name its file, cache and field:
// parse_settings() checks the shape of each [caches.<alias>] table into CacheSettings, and
// build() asks the BackendRegistry for each backend. Everything is built eagerly, once, so
// that a broken configuration fails at startup (as Django's system checks do) rather than
// on the first request, and so that at() is a lookup in a map nobody writes to any more —
// thread-safe without a lock.
#include "cachekit/caches.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <utility>

#include "cachekit/redact.h"
#include "core/text.h"

namespace cachekit {

// ---- ConfigError ----

namespace {

std::string config_message(const std::string& file, const std::string& alias,
                           const std::string& field, const std::string& problem) {
  std::string out;
  auto append = [&](const std::string& part) { out += (out.empty() ? "" : ": ") + part; };
  if (!file.empty()) append(file);
  if (!alias.empty()) append("cache '" + alias + "'");
  if (!field.empty()) append("field '" + field + "'");
  append(problem);
  return out;
}

}  // namespace

// `problem` is taken by value like the other parts, so that callers may move into any of them.
ConfigError::ConfigError(std::string file, std::string alias, std::string field,
                         std::string problem)  // NOLINT(performance-unnecessary-value-param)
    : std::runtime_error(config_message(file, alias, field, problem)),
      file_(std::move(file)),
      alias_(std::move(alias)),
      field_(std::move(field)) {}

// ---- loading: TOML → Settings ----

namespace {

// Timeouts beyond a century are almost certainly a typo for "never"; refusing them also keeps
// `now + timeout` far away from overflowing the millisecond clock.
constexpr double kMaxTimeoutSeconds = 100.0 * 365.25 * 24 * 3600;
constexpr char kUrlVariable[] = "CACHEKIT_CACHE_URL";
constexpr std::string_view kKnownFields =
    "backend, url, location, timeout, key_prefix, version, serializer, compress_min_bytes, "
    "compress_level, decompress_max_bytes, options";

// One cache's settings once the TOML has been checked, before its backend exists: what its
// backend is built from, and the façade's options, whose defaults are CacheOptions' own.
struct CacheSettings {
  std::string origin;  // the file (or variable) named in this cache's errors
  std::string backend;
  std::vector<std::string> locations;
  std::map<std::string, std::string, std::less<>> backend_options;  // the `options` table
  CacheOptions cache_options;  // alias, clock: set when the Cache is built
};

struct Settings {
  std::string source;
  std::map<std::string, CacheSettings, std::less<>> caches;
};

// Where a value came from, for error messages.
struct Where {
  std::string_view file;
  std::string_view alias;
  [[noreturn]] void fail(std::string_view field, std::string problem) const {
    throw ConfigError(std::string(file), std::string(alias), std::string(field),
                      std::move(problem));
  }
};

std::string_view trim(std::string_view s) { return cachekit::text::trim(s, " \t\r\n"); }

// Django's LOCATION rule: one string holding several servers split on ';' or ','.
std::vector<std::string> split_locations(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    auto end = text.find_first_of(";,");
    auto part = trim(text.substr(0, end));
    if (!part.empty()) out.emplace_back(part);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string line_of(const toml::node& node) {
  return fmt::format(" (line {})", node.source().begin.line);
}

// "a string", "an integer", "a floating-point", "a table", ... for "expected X, got Y".
std::string type_name(const toml::node& node) {
  std::ostringstream out;
  out << node.type();
  std::string name = out.str();
  return (name.front() == 'a' || name.front() == 'i' ? "an " : "a ") + name;
}

// The canonical TOML text of a value (decimal integers, basic strings, inline arrays and
// tables), which BackendSpec's option readers parse back.
std::string render(const toml::node& node) {
  std::ostringstream out;
  out << toml::toml_formatter(node, toml::format_flags::none);
  return out.str();
}

std::string expect_string(const Where& where, std::string_view field, const toml::node& node) {
  if (const auto* s = node.as_string()) return s->get();
  where.fail(field, "expected a string, got " + type_name(node) + line_of(node));
}

std::vector<std::string> read_locations(const Where& where, const toml::node& node) {
  if (const auto* s = node.as_string()) return split_locations(s->get());
  const auto* array = node.as_array();
  if (array == nullptr) {
    where.fail("location",
               "expected a string or an array of strings, got " + type_name(node) + line_of(node));
  }
  std::vector<std::string> out;
  for (const auto& item : *array) {
    std::string text = expect_string(where, "location", item);
    if (auto part = trim(text); !part.empty()) out.emplace_back(part);
  }
  return out;
}

Timeout seconds_to_timeout(const Where& where, const toml::node& node, double seconds) {
  if (!std::isfinite(seconds) || std::fabs(seconds) > kMaxTimeoutSeconds) {
    where.fail("timeout",
               "must be a number of seconds within 100 years, or \"never\"" + line_of(node));
  }
  return std::chrono::milliseconds(std::llround(seconds * 1000));
}

// Seconds (integer or float; zero and negative mean "already expired", as in Django) or
// "never" — TOML has no null, so the string stands for Django's None.
Timeout read_timeout(const Where& where, const toml::node& node) {
  if (const auto* i = node.as_integer()) {
    return seconds_to_timeout(where, node, static_cast<double>(i->get()));
  }
  if (const auto* f = node.as_floating_point()) return seconds_to_timeout(where, node, f->get());
  if (const auto* s = node.as_string(); s != nullptr && s->get() == "never") return kNever;
  where.fail("timeout", "expected a number of seconds or \"never\", got " + type_name(node) +
                            (node.is_string() ? " \"" + *node.value<std::string>() + "\"" : "") +
                            line_of(node));
}

Serializer read_serializer(const Where& where, const toml::node& node) {
  auto name = expect_string(where, "serializer", node);
  if (name == "json") return Serializer::kJson;
  if (name == "msgpack") return Serializer::kMsgpack;
  where.fail("serializer",
             "expected \"json\" or \"msgpack\", got \"" + name + "\"" + line_of(node));
}

std::map<std::string, std::string, std::less<>> read_options(const Where& where,
                                                             const toml::node& node) {
  const auto* table = node.as_table();
  if (table == nullptr) {
    where.fail("options", "expected a table, got " + type_name(node) + line_of(node));
  }
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& [name, value] : *table) out.emplace(std::string(name.str()), render(value));
  return out;
}

std::string percent_decode(const Where& where, std::string_view text) {
  auto decoded = cachekit::text::percent_decode(text, cachekit::text::kStrictUrl);
  if (!decoded) where.fail("url", "a '%' must be followed by two hex digits");
  return std::move(*decoded);
}

// "scheme://rest". The built-in schemes take their location from `rest` (locmem://name,
// file:///absolute/dir, dummy://); any other scheme keeps the whole URL as its location, so
// a registered network backend receives "redis://host:6379/0" as Django's LOCATION would.
void apply_url(const Where& where, std::string_view url, CacheSettings& cache) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    where.fail("url", fmt::format("\"{}\" is not a cache URL; expected e.g. \"locmem://name\", "
                                  "\"file:///var/tmp/cache\" or \"dummy://\"",
                                  redact(url)));
  }
  std::string scheme = cachekit::text::to_lower(url.substr(0, scheme_end));
  auto rest = percent_decode(where, url.substr(scheme_end + 3));
  cache.backend = scheme;
  cache.locations.clear();
  if (scheme == "file" || scheme == "sqlite") {
    if (rest.empty() || rest.front() != '/') {
      where.fail(
          "url",
          fmt::format("a {0} URL needs an absolute path, e.g. \"{0}:///var/tmp/cache\"", scheme));
    }
    cache.locations.push_back(rest);
  } else if (scheme == "locmem" || scheme == "dummy") {
    if (!rest.empty()) cache.locations.push_back(rest);
  } else {
    if (scheme == "postgresql") cache.backend = "postgres";  // libpq's scheme; one backend name
    cache.locations.emplace_back(url);
  }
}

std::int64_t read_integer_in(const Where& where, std::string_view field, const toml::node& node,
                             std::int64_t low, std::int64_t high) {
  const auto* v = node.as_integer();
  if (v == nullptr) {
    where.fail(field, "expected an integer, got " + type_name(node) + line_of(node));
  }
  if (v->get() < low || v->get() > high) {
    where.fail(field, fmt::format("must be between {} and {}, got {}{}", low, high, v->get(),
                                  line_of(node)));
  }
  return v->get();
}

void apply_field(const Where& where, std::string_view field, const toml::node& node,
                 CacheSettings& cache) {
  if (field == "backend") {
    cache.backend = expect_string(where, field, node);
  } else if (field == "location") {
    cache.locations = read_locations(where, node);
  } else if (field == "timeout") {
    cache.cache_options.default_timeout = read_timeout(where, node);
  } else if (field == "key_prefix") {
    cache.cache_options.key_prefix = expect_string(where, field, node);
  } else if (field == "version") {
    const auto* v = node.as_integer();
    if (v == nullptr) {
      where.fail(field, "expected an integer, got " + type_name(node) + line_of(node));
    }
    cache.cache_options.version = v->get();
  } else if (field == "serializer") {
    cache.cache_options.serializer = read_serializer(where, node);
  } else if (field == "compress_min_bytes") {
    cache.cache_options.compress_min_bytes =
        static_cast<std::size_t>(read_integer_in(where, field, node, 0, std::int64_t{1} << 40));
  } else if (field == "compress_level") {
    cache.cache_options.compress_level =
        static_cast<int>(read_integer_in(where, field, node, 1, 19));
  } else if (field == "decompress_max_bytes") {
    cache.cache_options.decompress_max_bytes =
        static_cast<std::size_t>(read_integer_in(where, field, node, 1, std::int64_t{1} << 40));
  } else if (field == "options") {
    cache.backend_options = read_options(where, node);
  } else if (field != "url") {  // url is applied last, once conflicts have been checked
    where.fail(field, fmt::format("unknown field{}; the known fields are {}", line_of(node),
                                  kKnownFields));
  }
}

CacheSettings parse_cache(const Where& where, const toml::node& node) {
  const auto* table = node.as_table();
  if (table == nullptr) {
    where.fail("", "expected a table ([caches." + std::string(where.alias) + "]), got " +
                       type_name(node) + line_of(node));
  }
  CacheSettings cache;
  cache.origin = std::string(where.file);
  for (const auto& [name, value] : *table) apply_field(where, name.str(), value, cache);
  if (const auto* url = table->get("url")) {
    if (table->contains("backend")) {
      where.fail("url", "give either url or backend, not both" + line_of(*url));
    }
    if (table->contains("location")) {
      where.fail("url", "a url already sets the location; remove location" + line_of(*url));
    }
    apply_url(where, expect_string(where, "url", *url), cache);
  }
  if (cache.backend.empty()) {
    where.fail("backend",
               "missing; set backend = \"locmem\" (or \"file\", ...) or url = "
               "\"locmem://name\"");
  }
  return cache;
}

Settings parse_settings(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    throw ConfigError(source, "", "",
                      fmt::format("TOML syntax error at line {}, column {}: {}",
                                  e.source().begin.line, e.source().begin.column, e.description()));
  }
  // Other top-level tables are left alone, so an application can keep its own settings in
  // the same file.
  const auto* caches = root.get("caches");
  if (caches == nullptr) {
    throw ConfigError(source, "", "caches",
                      "no [caches] table; define at least [caches.default] (Django E001)");
  }
  if (!caches->is_table()) {
    throw ConfigError(source, "", "caches",
                      "expected a table, got " + type_name(*caches) + line_of(*caches));
  }
  Settings settings{source, {}};
  for (const auto& [alias, node] : *caches->as_table()) {
    Where where{source, alias.str()};
    if (alias.str().empty()) where.fail("", "a cache alias must not be empty" + line_of(node));
    settings.caches.emplace(std::string(alias.str()), parse_cache(where, node));
  }
  return settings;
}

std::string read_file(const std::filesystem::path& path) {
  auto fail = [&](int error) {
    return ConfigError(path.string(), "", "",
                       fmt::format("cannot read the configuration file: {}", std::strerror(error)));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) throw fail(errno);
  std::string text;
  char buffer[8192];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  if (std::ferror(file.get())) throw fail(errno);
  return text;
}

// CACHEKIT_CACHE_URL replaces the default cache's backend and location and keeps the rest.
// Options are kept only when the backend stays the same: they are backend-specific, and a
// locmem's max_bytes would only make the file backend refuse to start.
void apply_cache_url(Settings& settings, std::string_view url) {
  auto [it, created] = settings.caches.try_emplace("default");
  CacheSettings& cache = it->second;
  cache.origin = created ? std::string(kUrlVariable)
                         : fmt::format("{} with {}", settings.source, kUrlVariable);
  std::string old_backend = cache.backend;
  apply_url(Where{kUrlVariable, "default"}, url, cache);
  if (cache.backend != old_backend) cache.backend_options.clear();
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

// ---- Caches ----

namespace {

struct BuiltCaches {
  std::string source;
  // Written only while building; afterwards only read, which is what makes at() lock-free.
  std::map<std::string, std::unique_ptr<Cache>, std::less<>> caches;
};

std::shared_ptr<Backend> make_backend(const BackendSpec& spec, const BackendRegistry& registry) {
  const BackendFactory* factory = registry.find(spec.backend);
  if (factory == nullptr) {
    throw spec.error("backend", fmt::format("unknown backend \"{}\"; the known backends are {}",
                                            spec.backend, join(registry.names())));
  }
  std::shared_ptr<Backend> backend;
  try {
    backend = (*factory)(spec);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw spec.error("", fmt::format("the {} backend failed to start: {}", spec.backend, e.what()));
  }
  if (!backend) throw spec.error("backend", "the " + spec.backend + " factory made no backend");
  return backend;
}

// Aliases with the same backend, locations and options share one backend object: two aliases
// naming one locmem location see the same entries, as in Django, while different locations
// (or different bounds) never share.
std::string sharing_key(const CacheSettings& cache) {
  std::string key = cache.backend;
  for (const auto& l : cache.locations) key += '\0' + l;
  key += '\x01';
  for (const auto& [name, text] : cache.backend_options)
    key.append(name).append(1, '\0').append(text).append(1, '\0');
  // A store shared with other data scopes clear() to its cache's key prefix, so caches with
  // different prefixes need backend objects of their own.
  key += '\x02' + cache.cache_options.key_prefix;
  return key;
}

BuiltCaches build(const Settings& settings, const Clock* clock, const BackendRegistry& registry) {
  if (!settings.caches.contains("default")) {
    throw ConfigError(settings.source, "default", "",
                      "the default cache is not configured; add [caches.default] (Django E001)");
  }
  BuiltCaches built{settings.source, {}};
  std::map<std::string, std::shared_ptr<Backend>> backends;
  for (const auto& [alias, cache] : settings.caches) {
    auto& backend = backends[sharing_key(cache)];
    if (!backend) {
      BackendSpec spec{.file = cache.origin,
                       .alias = alias,
                       .backend = cache.backend,
                       .locations = cache.locations,
                       .options = cache.backend_options,
                       .clock = clock,
                       .key_prefix = cache.cache_options.key_prefix,
                       .registry = &registry};
      backend = make_backend(spec, registry);
    }
    CacheOptions options = cache.cache_options;
    options.alias = alias;
    options.clock = clock;
    built.caches.emplace(alias, std::make_unique<Cache>(backend, std::move(options)));
  }
  return built;
}

Settings built_in_settings() {
  Settings settings{"<built-in>", {}};
  CacheSettings& cache = settings.caches["default"];
  cache.origin = settings.source;
  cache.backend = "locmem";
  return settings;
}

}  // namespace

struct Caches::Impl : BuiltCaches {
  explicit Impl(BuiltCaches built) : BuiltCaches(std::move(built)) {}
};

Caches::Caches(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Caches::Caches(Caches&&) noexcept = default;
Caches& Caches::operator=(Caches&&) noexcept = default;
Caches::~Caches() = default;

Caches Caches::from_file(const std::filesystem::path& path, const Clock* clock,
                         const BackendRegistry& registry) {
  return from_toml(read_file(path), path.string(), clock, registry);
}

Caches Caches::from_toml(std::string_view text, std::string_view source_name, const Clock* clock,
                         const BackendRegistry& registry) {
  return Caches(std::make_unique<Impl>(
      build(parse_settings(text, std::string(source_name)), clock, registry)));
}

Caches Caches::from_environment(const std::filesystem::path& fallback_file, const Clock* clock) {
  std::string file = env("CACHEKIT_CONFIG");
  if (file.empty()) file = fallback_file.string();
  std::string url = env(kUrlVariable);
  Settings settings;
  if (!file.empty()) {
    settings = parse_settings(read_file(file), file);
  } else if (!url.empty()) {
    settings.source = std::string(kUrlVariable);
  } else {
    settings = built_in_settings();
  }
  if (!url.empty()) apply_cache_url(settings, url);
  return Caches(std::make_unique<Impl>(build(settings, clock, BackendRegistry::with_builtins())));
}

Caches Caches::from_url(std::string_view url, const Clock* clock) {
  Settings settings{"<url>", {}};
  CacheSettings& cache = settings.caches["default"];
  cache.origin = "<url>";
  apply_url(Where{"<url>", "default"}, url, cache);
  return Caches(std::make_unique<Impl>(build(settings, clock, BackendRegistry::with_builtins())));
}

Cache& Caches::at(std::string_view alias) const {
  if (Cache* cache = find(alias)) return *cache;
  throw ConfigError(impl_->source, std::string(alias), "",
                    "is not configured; the configured caches are " + join(aliases()));
}

Cache* Caches::find(std::string_view alias) const noexcept {
  auto it = impl_->caches.find(alias);
  return it == impl_->caches.end() ? nullptr : it->second.get();
}

std::vector<std::string> Caches::aliases() const {
  std::vector<std::string> out;
  for (const auto& [alias, cache] : impl_->caches) out.push_back(alias);
  return out;
}

const std::string& Caches::source() const noexcept { return impl_->source; }

}  // namespace cachekit
