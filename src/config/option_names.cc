// Old option names → current ones, with a deprecation warning (see option_names.h).
#include "config/option_names.h"

#include <fmt/format.h>

#include <limits>
#include <string>

#include "core/log.h"

namespace cachekit {
namespace {

// The old value, multiplied by the rename's scale, as TOML text.
std::string scaled_value(const BackendSpec& spec, const OptionRename& rename) {
  const std::string& text = spec.options.find(rename.old_name)->second;
  if (rename.scale == 1) return text;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  auto value = spec.integer_option(rename.old_name, -kMax / rename.scale, kMax / rename.scale);
  return std::to_string(*value * rename.scale);
}

void warn_deprecated(const BackendSpec& spec, const OptionRename& rename) {
  detail::logger()->warn(
      "{}: cache '{}': option '{}' is deprecated and will be removed in the next release; "
      "use '{}'{}",
      spec.file, spec.alias, rename.old_name, rename.new_name,
      rename.scale == 1 ? "" : fmt::format(" (the value times {})", rename.scale));
}

}  // namespace

BackendSpec with_current_option_names(const BackendSpec& spec,
                                      std::initializer_list<OptionRename> renames) {
  BackendSpec current = spec;
  for (const OptionRename& rename : renames) {
    auto old_option = spec.options.find(rename.old_name);
    if (old_option == spec.options.end()) continue;
    if (spec.options.contains(rename.new_name)) {
      throw spec.error("options." + std::string(rename.old_name),
                       fmt::format("is the old name of options.{}; give only {}", rename.new_name,
                                   rename.new_name));
    }
    std::string value = scaled_value(spec, rename);
    warn_deprecated(spec, rename);
    current.options.erase(std::string(rename.old_name));
    current.options.insert_or_assign(std::string(rename.new_name), std::move(value));
  }
  return current;
}

}  // namespace cachekit
