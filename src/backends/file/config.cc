// The "file" entry of the backend registry: BackendSpec (TOML or URL) → FileOptions.
#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <limits>

#include "cachekit/backends/file.h"
#include "cachekit/caches.h"
#include "config/builtin_backends.h"

namespace cachekit {
namespace {

constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxUnsigned = std::numeric_limits<unsigned>::max();

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
  // Unset options keep FileOptions' defaults, written only there.
  options.max_entries =
      spec.integer_option("max_entries", 1, kMaxInt64).value_or(options.max_entries);
  options.cull_frequency = static_cast<unsigned>(
      spec.integer_option("cull_frequency", 0, kMaxUnsigned).value_or(options.cull_frequency));
  options.clock = spec.clock;
  auto backend = make_file_backend(options);
  if (!backend.ok()) {
    throw spec.error("location",
                     fmt::format("cannot use {} as a file cache: {}", options.directory.string(),
                                 backend.status().message()));
  }
  return std::move(backend).value();
}

}  // namespace

void register_file_backend(BackendRegistry& registry) { registry.add("file", make_file); }

}  // namespace cachekit
