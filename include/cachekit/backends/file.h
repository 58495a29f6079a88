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
  std::filesystem::path directory{};  // created (mode 0700) when missing; see make_file_backend
  std::size_t max_entries = 300;      // culled above this
  unsigned cull_frequency = 3;        // when full, remove expired files, then 1/N of the rest
                                      // (least recently written first); 0: remove all
  const Clock* clock = nullptr;       // nullptr: SystemClock
};

// Fails with kInvalidArgument, naming the directory and why, when it cannot be created, is not a
// directory, is owned by another user than this process's, or is writable by its group or
// others: entries are trusted as the process's own, and whoever can write the directory could
// forge them or hold its lock so that every write blocks.
[[nodiscard]] Result<std::shared_ptr<Backend>> make_file_backend(const FileOptions& options);

}  // namespace cachekit
