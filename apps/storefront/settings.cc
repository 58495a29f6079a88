#include "settings.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>

namespace storefront {
namespace {

// Reports a field's problem with the file and the line it is on.
[[noreturn]] void fail(const std::filesystem::path& file, std::string_view field,
                       const toml::node& node, std::string_view problem) {
  throw SettingsError(fmt::format("{}:{}: [storefront] field '{}': {}", file.string(),
                                  node.source().begin.line, field, problem));
}

double number(const std::filesystem::path& file, std::string_view field, const toml::node& node,
              double min, double max) {
  double value = 0;
  if (const auto* i = node.as_integer()) {
    value = static_cast<double>(i->get());
  } else if (const auto* f = node.as_floating_point()) {
    value = f->get();
  } else {
    fail(file, field, node, "expected a number");
  }
  if (!std::isfinite(value) || value < min || value > max) {
    fail(file, field, node, fmt::format("must be between {} and {}", min, max));
  }
  return value;
}

std::int64_t integer(const std::filesystem::path& file, std::string_view field,
                     const toml::node& node, std::int64_t min, std::int64_t max) {
  const auto* i = node.as_integer();
  if (i == nullptr) fail(file, field, node, "expected an integer");
  if (i->get() < min || i->get() > max) {
    fail(file, field, node, fmt::format("must be between {} and {}", min, max));
  }
  return i->get();
}

std::string text(const std::filesystem::path& file, std::string_view field,
                 const toml::node& node) {
  const auto* s = node.as_string();
  if (s == nullptr || s->get().empty()) fail(file, field, node, "expected a non-empty string");
  return s->get();
}

std::vector<std::string> texts(const std::filesystem::path& file, std::string_view field,
                               const toml::node& node) {
  const auto* array = node.as_array();
  if (array == nullptr) fail(file, field, node, "expected an array of strings");
  std::vector<std::string> values;
  for (const auto& element : *array) values.push_back(text(file, field, element));
  return values;
}

std::chrono::milliseconds seconds_as_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

}  // namespace

void apply_file(const std::filesystem::path& file, Settings& settings) {
  toml::table root;
  try {
    root = toml::parse_file(file.string());
  } catch (const toml::parse_error& error) {
    throw SettingsError(
        fmt::format("{}:{}: {}", file.string(), error.source().begin.line, error.description()));
  }
  const auto* node = root.get("storefront");
  if (node == nullptr) return;
  const auto* table = node->as_table();
  if (table == nullptr) fail(file, "storefront", *node, "expected a table");
  const auto base = file.parent_path();
  auto path = [&](std::string_view field, const toml::node& n) {
    std::filesystem::path p = text(file, field, n);
    return p.is_relative() ? base / p : p;
  };

  using Apply = std::function<void(std::string_view, const toml::node&)>;
  const std::map<std::string, Apply, std::less<>> fields = {
      {"address", [&](auto f, auto& n) { settings.address = text(file, f, n); }},
      {"port",
       [&](auto f, auto& n) {
         settings.port = static_cast<std::uint16_t>(integer(file, f, n, 0, 65535));
       }},
      {"upstream", [&](auto f, auto& n) { settings.upstream = text(file, f, n); }},
      {"upstream_delay",
       [&](auto f, auto& n) { settings.upstream_delay = number(file, f, n, 0, 10); }},
      {"upstream_timeout",
       [&](auto f, auto& n) {
         settings.upstream_timeout = seconds_as_ms(number(file, f, n, 0.001, 600));
       }},
      {"upstream_connect_timeout",
       [&](auto f, auto& n) {
         settings.upstream_connect_timeout = seconds_as_ms(number(file, f, n, 0.001, 600));
       }},
      {"hello_timeout",
       [&](auto f, auto& n) {
         settings.hello_timeout = std::chrono::seconds(integer(file, f, n, 1, 31'536'000));
       }},
      {"hello_stale_while_revalidate",
       [&](auto f, auto& n) {
         settings.hello_stale_while_revalidate =
             std::chrono::seconds(integer(file, f, n, 0, 31'536'000));
       }},
      {"hello_stale_if_error",
       [&](auto f, auto& n) {
         settings.hello_stale_if_error = std::chrono::seconds(integer(file, f, n, 0, 31'536'000));
       }},
      {"store_timeout",
       [&](auto f, auto& n) {
         settings.store_timeout = std::chrono::seconds(integer(file, f, n, 1, 31'536'000));
       }},
      {"database", [&](auto f, auto& n) { settings.database = path(f, n); }},
      {"seed_products",
       [&](auto f, auto& n) { settings.seed_products = integer(file, f, n, 1, 1'000'000); }},
      {"seed_orders",
       [&](auto f, auto& n) { settings.seed_orders = integer(file, f, n, 1, 10'000'000); }},
      {"templates", [&](auto f, auto& n) { settings.templates = path(f, n); }},
      {"io_threads",
       [&](auto f, auto& n) {
         settings.io_threads = static_cast<std::size_t>(integer(file, f, n, 0, 256));
       }},
      {"handler_threads",
       [&](auto f, auto& n) {
         settings.handler_threads = static_cast<std::size_t>(integer(file, f, n, 1, 4096));
       }},
      {"handler_queue",
       [&](auto f, auto& n) {
         settings.handler_queue = static_cast<std::size_t>(integer(file, f, n, 0, 1'000'000));
       }},
      {"allowed_hosts", [&](auto f, auto& n) { settings.allowed_hosts = texts(file, f, n); }},
      {"access_log",
       [&](auto f, auto& n) {
         const auto* b = n.as_boolean();
         if (b == nullptr) fail(file, f, n, "expected true or false");
         settings.access_log = b->get();
       }},
  };
  for (const auto& [key, value] : *table) {
    auto it = fields.find(key.str());
    if (it == fields.end()) {
      std::string known;
      for (const auto& [name, apply] : fields) known += (known.empty() ? "" : ", ") + name;
      fail(file, key.str(), value, "unknown field; the known fields are " + known);
    }
    it->second(key.str(), value);
  }
}

}  // namespace storefront
