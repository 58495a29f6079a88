// The file-system backend (Django's FileBasedCache, with its known races fixed).
//
// Layout. One flat directory per cache, one file per entry, named by a hash of the final key.
// The entry-file format, the reading of entry files and the OS helpers (errno → Status, exact
// reads and writes, directory listing, the directory lock) are in entry_file.h / entry_file.cc;
// this file holds the Backend: when files are written, renamed, removed and culled. Corrupt
// files (truncated, foreign, or holding another key) are misses and are removed.
//
// Writes. An entry file is never modified in place: a new version is written to a temporary
// `.ckc-tmp-XXXXXX` in the same directory (so rename stays within one file system) and renamed
// over the target, so readers — who take no lock — see the old or the new file, never half of
// one. A temporary's mtime is set from the injected Clock, so culling's "least recently
// written" order follows the same time as expiry (and tests need no sleeps).
//
// Locking. Every change of an entry's *name* (rename, unlink) happens under one advisory lock:
// flock() on `.ckc-lock` in the directory, plus an in-process mutex because flock belongs to an
// open file description that all threads of a backend share. Holding the lock for renames (not
// only for add/touch/incr) is what makes add/touch/incr atomic against a concurrent set, and
// lets lazy removal of an expired file check — by inode — that it removes the file it read
// and not a fresher one. The lock is held only for metadata work (stat, rename, unlink) except
// in touch/incr, which rewrite the entry under it; values are written before it is taken.
// Lock-free pre-checks answer the common "key is missing" cases of erase/touch/incr without it.
//
// Counting. Django lists the directory on every set to decide whether to cull. Here the
// number of entries is kept in the lock file itself (8 bytes, read and written under the
// lock), so every process sharing the directory sees one count and only writes that create a
// file pay two small syscalls. The count is trusted until it reaches max_entries — then a
// listing confirms it before culling — and each process re-lists every max_entries of its own
// creations to correct drift from files removed or added behind cachekit's back. Listing cost
// is therefore amortised O(1) per write instead of O(entries). Culling itself runs under the
// lock (it must not race renames) and opens each entry to read its expiry: O(entries) work,
// but only once per max_entries / cull_frequency creations.
//
// Temporaries. Culling never touches them (one may be the write that triggered it). clear()
// removes all of them — including those a crashed writer left — and a writer whose temporary
// vanished treats its write as done just before that clear.
#include "cachekit/backends/file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/file/file_backend.h"
#include "core/log.h"

namespace cachekit::file_internal {

FileBackend::FileBackend(std::string dir, const FileOptions& options)
    : dir_(std::move(dir)),
      max_entries_(static_cast<std::int64_t>(
          std::min<std::size_t>(options.max_entries, std::numeric_limits<std::int64_t>::max()))),
      cull_frequency_(options.cull_frequency),
      clock_(options.clock != nullptr ? options.clock : &SystemClock::instance()),
      lock_(dir_) {
  info_.name = "file";
  info_.outlives_process = true;
  info_.supports_keys = true;
  info_.supports_stats = true;
  info_.key_policy = KeyPolicy::kWarn;
}

Result<std::optional<Bytes>> FileBackend::get(std::string_view key) {
  const std::string path = entry_path(key);
  Result<StoredEntry> entry = read_entry(path, key, /*with_value=*/true);
  if (!entry.ok()) return entry.status();
  if (!is_live(*entry)) {
    discard(path, *entry);
    return std::nullopt;
  }
  return std::optional<Bytes>(std::move(entry->value));
}

Status FileBackend::set(std::string_view key, std::string_view value, Expiry expiry) {
  const std::string path = entry_path(key);
  if (expiry.expired(now())) {
    return locked([&]() -> Status { return remove_locked(path).status(); });
  }
  Result<std::string> temp = write_temp(key, value, expiry);
  if (!temp.ok()) return temp.status();
  return commit(*temp, path, key, /*only_if_absent=*/false).status();
}

Result<bool> FileBackend::add(std::string_view key, std::string_view value, Expiry expiry) {
  const std::string path = entry_path(key);
  // Without the lock first: a live entry seen now means add fails now, and most add()s of
  // get_or_set-style code meet a live key.
  Result<StoredEntry> current = read_entry(path, key, /*with_value=*/false);
  if (!current.ok()) return current.status();
  if (is_live(*current)) return false;
  if (expiry.expired(now())) {  // Django: reports success, stores nothing
    discard(path, *current);
    return true;
  }
  Result<std::string> temp = write_temp(key, value, expiry);
  if (!temp.ok()) return temp.status();
  return commit(*temp, path, key, /*only_if_absent=*/true);
}

Result<bool> FileBackend::touch(std::string_view key, Expiry expiry) {
  const std::string path = entry_path(key);
  if (!may_exist(path)) return false;
  return locked([&]() -> Result<bool> {
    Result<StoredEntry> current = read_entry(path, key, /*with_value=*/true);
    if (!current.ok()) return current.status();
    if (!is_live(*current)) {
      drop_locked(path, *current);
      return false;
    }
    if (expiry.expired(now())) {  // Django: touch(0) expires the key and reports true
      Result<bool> removed = remove_locked(path);
      return removed.ok() ? Result<bool>(true) : removed;
    }
    Status s = rewrite_locked(path, key, current->value, expiry);
    return s.ok() ? Result<bool>(true) : Result<bool>(s);
  });
}

Result<bool> FileBackend::erase(std::string_view key) {
  const std::string path = entry_path(key);
  if (!may_exist(path)) return false;
  return locked([&]() -> Result<bool> {
    Result<StoredEntry> current = read_entry(path, key, /*with_value=*/false);
    if (!current.ok()) return current.status();
    if (current->state == EntryState::kMissing) return false;
    const bool live = is_live(*current);
    Result<bool> removed = remove_locked(path);
    if (!removed.ok()) return removed;
    return live && *removed;
  });
}

Result<std::int64_t> FileBackend::incr(std::string_view key, std::int64_t delta) {
  const std::string path = entry_path(key);
  const auto missing = [&] { return not_found_error(fmt::format("key '{}' not found", key)); };
  if (!may_exist(path)) return missing();
  return locked([&]() -> Result<std::int64_t> {
    Result<StoredEntry> current = read_entry(path, key, /*with_value=*/true);
    if (!current.ok()) return current.status();
    if (!is_live(*current)) {
      drop_locked(path, *current);
      return missing();
    }
    const std::optional<std::int64_t> number = parse_decimal(current->value.view());
    if (!number) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the value of '{}' is not a decimal integer", key));
    }
    Result<std::int64_t> sum = checked_add(*number, delta);
    if (!sum.ok()) return sum;
    Status s = rewrite_locked(path, key, std::to_string(*sum), current->expiry);
    return s.ok() ? sum : Result<std::int64_t>(s);
  });
}

// Removes every entry file and every temporary, including a concurrent writer's: that writer
// then finds its temporary gone at rename, and its write counts as done before this clear.
Status FileBackend::clear() {
  return locked([&]() -> Status {
    Result<std::vector<std::string>> names = list_directory(dir_);
    if (!names.ok()) return names.status();
    Status result;
    for (const std::string& name : *names) {
      if (!is_entry_name(name) && !is_temp_name(name)) continue;
      const std::string path = dir_ + '/' + name;
      if (::unlink(path.c_str()) != 0 && errno != ENOENT && result.ok()) {
        result = os_error("cannot remove", path, errno);
      }
    }
    lock_.store_shared_count(result.ok() ? std::optional<std::int64_t>(0) : std::nullopt);
    creates_since_listing_ = 0;
    return result;
  });
}

Result<Ttl> FileBackend::ttl(std::string_view key) {
  const std::string path = entry_path(key);
  Result<StoredEntry> entry = read_entry(path, key, /*with_value=*/false);
  if (!entry.ok()) return entry.status();
  if (!is_live(*entry)) {
    discard(path, *entry);
    return Ttl::missing();
  }
  return Ttl::of(entry->expiry, now());
}

Result<bool> FileBackend::contains(std::string_view key) {
  const std::string path = entry_path(key);
  Result<StoredEntry> entry = read_entry(path, key, /*with_value=*/false);
  if (!entry.ok()) return entry.status();
  if (!is_live(*entry)) discard(path, *entry);
  return is_live(*entry);
}

Result<std::vector<std::string>> FileBackend::keys(std::string_view pattern) {
  Result<std::vector<std::string>> names = list_entries();
  if (!names.ok()) return names.status();
  std::vector<std::string> keys;
  const TimePoint now = this->now();
  for (const std::string& name : *names) {
    Result<StoredEntry> entry = read_entry(dir_ + '/' + name, std::nullopt, false);
    if (!entry.ok()) return entry.status();
    if (entry->state == EntryState::kFound && !entry->expiry.expired(now) &&
        glob_match(pattern, entry->key)) {
      keys.push_back(std::move(entry->key));
    }
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

// Counts files, without opening them: expired files not yet removed are included.
Result<StatPairs> FileBackend::stats() {
  Result<std::vector<std::string>> names = list_entries();
  if (!names.ok()) return names.status();
  std::uint64_t bytes = 0;
  for (const std::string& name : *names) {
    struct stat st {};
    if (::stat((dir_ + '/' + name).c_str(), &st) == 0) {
      bytes += static_cast<std::uint64_t>(st.st_size);
    }
  }
  return StatPairs{{"entries", std::to_string(names->size())},
                   {"bytes", std::to_string(bytes)},
                   {"directory", dir_},
                   {"max_entries", std::to_string(max_entries_)},
                   {"cull_frequency", std::to_string(cull_frequency_)}};
}

// Writes a complete entry file under a temporary name and returns that name. No fsync: this
// is a cache, and after a crash a half-written file fails the size check and reads as a miss.
Result<std::string> FileBackend::write_temp(std::string_view key, std::string_view value,
                                            Expiry expiry) {
  if (key.size() > std::numeric_limits<std::uint32_t>::max()) {
    return invalid_argument_error("file cache: key longer than 4 GiB");
  }
  const std::string pattern = fmt::format("{}/{}XXXXXX", dir_, kTempPrefix);
  std::string temp = pattern;
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {  // deleted behind our back: recreate, as Django does
    if (Status s = make_directories(dir_); !s.ok()) return s;
    temp = pattern;
    fd = ::mkostemp(temp.data(), O_CLOEXEC);
  }
  if (fd < 0) return os_error("cannot create a file in", dir_, errno);
  Fd file(fd);
  std::array<char, kHeaderSize> head{};
  std::copy(kMagic.begin(), kMagic.end(), head.begin());
  store_le(&head[4], static_cast<std::uint64_t>(expiry.epoch_ms()), 8);
  store_le(&head[12], key.size(), 4);
  store_le(&head[16], value.size(), 8);
  std::array<iovec, 3> parts{{{head.data(), head.size()},
                              {const_cast<char*>(key.data()), key.size()},
                              {const_cast<char*>(value.data()), value.size()}}};
  const timespec written = to_timespec(now());
  const std::array<timespec, 2> times{written, written};
  Status s = write_all(file.get(), parts, temp);
  if (s.ok() && ::futimens(file.get(), times.data()) != 0) {
    s = os_error("cannot set the time of", temp, errno);
  }
  if (s.ok() && file.close() != 0) s = os_error("cannot write", temp, errno);
  if (s.ok()) return temp;
  ::unlink(temp.c_str());
  return s;
}

// Renames a written temporary into place (set; add when `only_if_absent`); true if stored.
// The temporary is removed whenever it was not used.
Result<bool> FileBackend::commit(const std::string& temp, const std::string& path,
                                 std::string_view key, bool only_if_absent) {
  Result<bool> stored = locked([&] { return commit_locked(temp, path, key, only_if_absent); });
  if (!stored.ok() || !*stored) ::unlink(temp.c_str());
  return stored;
}

Result<bool> FileBackend::commit_locked(const std::string& temp, const std::string& path,
                                        std::string_view key, bool only_if_absent) {
  bool creates = false;
  if (only_if_absent) {
    Result<StoredEntry> current = read_entry(path, key, /*with_value=*/false);
    if (!current.ok()) return current.status();
    if (is_live(*current)) return false;
    creates = current->state == EntryState::kMissing;
  } else {
    struct stat st {};
    creates = ::stat(path.c_str(), &st) != 0;
    if (creates && errno != ENOENT) return os_error("cannot stat", path, errno);
  }
  std::optional<std::int64_t> count;
  if (creates) {
    Result<std::int64_t> room = make_room_locked();
    if (!room.ok()) return room.status();
    count = *room;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    // ENOENT: a clear() removed the temporary before we took the lock (see clear()).
    if (errno == ENOENT) return true;
    return os_error("cannot rename into", path, errno);
  }
  if (count) {
    lock_.store_shared_count(*count + 1);
    ++creates_since_listing_;
  }
  return true;
}

Status FileBackend::rewrite_locked(const std::string& path, std::string_view key,
                                   std::string_view value, Expiry expiry) {
  Result<std::string> temp = write_temp(key, value, expiry);
  if (!temp.ok()) return temp.status();
  if (::rename(temp->c_str(), path.c_str()) == 0) return {};
  Status s = os_error("cannot rename into", path, errno);
  ::unlink(temp->c_str());
  return s;
}

// Unlinks an entry file and keeps the shared count in step; true if it existed.
Result<bool> FileBackend::remove_locked(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    return os_error("cannot remove", path, errno);
  }
  if (std::optional<std::int64_t> count = lock_.shared_count()) {
    lock_.store_shared_count(std::max<std::int64_t>(0, *count - 1));
  }
  return true;
}

// Lazily removes an expired or corrupt file read under the lock. Failing to remove it only
// delays the removal, so the error is logged, not returned.
void FileBackend::drop_locked(const std::string& path, const StoredEntry& entry) {
  if (entry.state == EntryState::kMissing) return;
  if (entry.state == EntryState::kCorrupt) {
    detail::logger()->warn("file cache: removing unreadable entry file {}", path);
  }
  if (Result<bool> removed = remove_locked(path); !removed.ok()) {
    detail::logger()->debug("{}", removed.status().to_string());
  }
}

// The same for a file read without the lock: it is removed only if it is still the file that
// was read (same inode), or a concurrent set's fresh entry would be lost.
void FileBackend::discard(const std::string& path, const StoredEntry& entry) {
  if (entry.state == EntryState::kMissing) return;
  Status s = locked([&]() -> Status {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && FileId{st.st_dev, st.st_ino} == entry.id) {
      drop_locked(path, entry);
    }
    return {};
  });
  if (!s.ok()) detail::logger()->debug("{}", s.to_string());
}

// Called before a write creates a file: trusts the shared count while it is below the limit,
// confirms it by listing when it is not (or every max_entries creations of this process), and
// culls when the listing says the cache is full. Returns the count after culling.
Result<std::int64_t> FileBackend::make_room_locked() {
  std::optional<std::int64_t> count = lock_.shared_count();
  if (count && *count < max_entries_ && creates_since_listing_ < max_entries_) return *count;
  Result<std::vector<std::string>> names = list_entries();
  if (!names.ok()) return names.status();
  creates_since_listing_ = 0;
  const auto listed = static_cast<std::int64_t>(names->size());
  return listed < max_entries_ ? listed : cull_locked(*names);
}

// Culling, as Django's CULL_FREQUENCY but deterministic: 0 removes every entry; otherwise
// expired (and corrupt) files go first, then, if the cache is still full, the 1/N least
// recently written of the rest — at least one, so a small cache with a large N still makes
// room. Best effort: a file that cannot be read or removed is skipped. Returns what is left.
std::int64_t FileBackend::cull_locked(const std::vector<std::string>& names) {
  const auto remove = [&](const std::string& name) {
    const std::string path = dir_ + '/' + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      detail::logger()->debug("cannot cull {}", path);
    }
  };
  if (cull_frequency_ == 0) {
    std::for_each(names.begin(), names.end(), remove);
    return 0;
  }
  struct Survivor {
    timespec written;
    const std::string* name;
  };
  std::vector<Survivor> live;
  const TimePoint now = this->now();
  for (const std::string& name : names) {
    Result<StoredEntry> entry = read_entry(dir_ + '/' + name, std::nullopt, false);
    if (!entry.ok() || entry->state == EntryState::kMissing) continue;
    if (entry->state == EntryState::kFound && !entry->expiry.expired(now)) {
      live.push_back({entry->written, &name});
    } else {
      remove(name);
    }
  }
  if (static_cast<std::int64_t>(live.size()) < max_entries_) return std::ssize(live);
  const std::size_t victims = std::max<std::size_t>(1, live.size() / cull_frequency_);
  const auto older = [](const Survivor& a, const Survivor& b) {
    return std::tie(a.written.tv_sec, a.written.tv_nsec, *a.name) <
           std::tie(b.written.tv_sec, b.written.tv_nsec, *b.name);
  };
  std::nth_element(live.begin(), live.begin() + static_cast<std::ptrdiff_t>(victims - 1),
                   live.end(), older);
  for (std::size_t i = 0; i < victims; ++i) remove(*live[i].name);
  return std::ssize(live) - static_cast<std::int64_t>(victims);
}

}  // namespace cachekit::file_internal

namespace cachekit {

Result<std::shared_ptr<Backend>> make_file_backend(const FileOptions& options) {
  if (options.directory.empty()) return invalid_argument_error("file cache: no directory given");
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(options.directory, ec);
  std::string dir = absolute.lexically_normal().string();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  Status s = ec ? file_internal::os_error("cannot resolve", options.directory.string(), ec.value())
                : file_internal::make_directories(dir);
  if (!s.ok()) {
    return invalid_argument_error(
        fmt::format("file cache: cannot use '{}' as the cache directory: {}", dir, s.message()));
  }
  return std::shared_ptr<Backend>(
      std::make_shared<file_internal::FileBackend>(std::move(dir), options));
}

}  // namespace cachekit
