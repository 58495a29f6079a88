#pragma once
// The option vocabulary every backend shares, and the names it replaced.
//
// One name means one thing in every backend's `options` table (and in the C++ option structs):
//   pool_size            connections (or handles) a backend keeps per server, at most
//   pool_wait_ms         the longest a call waits for a free connection
//   connect_timeout_ms   the longest connecting may take
//   io_timeout_ms        the longest one socket read or write may take (redis, memcached)
//   call_timeout_ms      the longest a whole call may take, all included (sqlite, postgres)
//   down_after_failures  timeouts or I/O errors in a row that mark a server down
//   retry_after_ms       how long a server marked down is left alone before one probe
// Durations are integers with their unit in the name (`_ms`); `timeout` alone means only an
// entry's lifetime (the cache's `timeout` field), never a network or call budget.
//
// The names these replaced still load for one release: each use logs a warning through the
// "cachekit" logger naming the file, the cache, the old and the new name; giving both names
// is a ConfigError.

#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "cachekit/caches.h"

namespace cachekit {

// An old option name and the one that replaced it. A value in the old name is multiplied by
// `scale` (e.g. 1000 for seconds → milliseconds); a scaled value must be an integer.
struct OptionRename {
  std::string_view old_name;
  std::string_view new_name;
  std::int64_t scale = 1;
};

// `spec` with every old option name in `renames` replaced by its new name (and its value
// scaled), warning once per old name used. Throws ConfigError naming the old option when both
// names are given, or when a scaled value is not an integer.
[[nodiscard]] BackendSpec with_current_option_names(const BackendSpec& spec,
                                                    std::initializer_list<OptionRename> renames);

}  // namespace cachekit
