// What a backend factory sees (BackendSpec and its typed option readers), the registry of
// factories, and the list of the backends built into cachekit (builtin_backends.h). Each
// backend's factory lives in its own folder, src/backends/<name>/config.cc.
//
// Unlike Django, which ignores unknown OPTIONS and silently falls back to defaults for bad
// MAX_ENTRIES/CULL_FREQUENCY values, every factory refuses them: a misspelt `max_entires`
// would otherwise leave a cache at its default size without anyone noticing.
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdint>
#include <sstream>

#include "cachekit/caches.h"
#include "config/builtin_backends.h"

namespace cachekit {

namespace {

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

std::optional<std::map<std::string, std::string, std::less<>>> BackendSpec::table_option(
    std::string_view name) const {
  auto table = option_value(*this, name);
  if (!table) return std::nullopt;
  const auto* inner = (*table)["v"].as_table();
  if (inner == nullptr) throw wrong_type(*this, name, "a table");
  std::map<std::string, std::string, std::less<>> out;
  for (const auto& [key, value] : *inner) {
    std::ostringstream text;
    text << toml::toml_formatter(value, toml::format_flags::none);
    out.emplace(std::string(key.str()), text.str());
  }
  return out;
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

BackendRegistry BackendRegistry::with_builtins() {
  BackendRegistry registry;
#define CACHEKIT_REGISTER_BACKEND(name) register_##name##_backend(registry);
  CACHEKIT_BUILTIN_BACKENDS(CACHEKIT_REGISTER_BACKEND)
#undef CACHEKIT_REGISTER_BACKEND
  return registry;
}

}  // namespace cachekit
