#pragma once
// The file-system backend: one directory per cache, one file per key.
//
// A file's name is a hash of the final key; it holds a header (format tag, expiry, key)
// followed by the value. Writes go to a temporary file that is renamed over the target,
// so readers in any process see either the old or the new entry, never half of one.
// add/touch/incr take an advisory lock on the directory so they are atomic across
// processes. A truncated, empty or foreign file is a miss and is removed. clear() removes
// only this backend's files. Entries survive restarts. Thread- and process-safe.

#include <cstddef>
#include <filesystem>
#include <memory>

#include "cachekit/backend.h"
#include "cachekit/clock.h"

namespace cachekit {

struct FileOptions {
  std::filesystem::path directory{};  // created (mode 0700) when missing
  std::size_t max_entries = 300;      // culled above this
  unsigned cull_frequency = 3;        // when full, remove expired files, then 1/N of the rest
                                      // (least recently written first); 0: remove all
  const Clock* clock = nullptr;       // nullptr: SystemClock
};

// Fails with kInvalidArgument when the directory cannot be created or is not a directory.
[[nodiscard]] Result<std::shared_ptr<Backend>> make_file_backend(const FileOptions& options);

}  // namespace cachekit
