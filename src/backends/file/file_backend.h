#pragma once
// FileBackend, the class behind make_file_backend (cachekit/backends/file.h): one directory per
// cache, one file per entry. entry_file.h holds the entry-file format and the OS helpers;
// file.cc the calls, locking, counting and culling (its opening comment explains them) and the
// factory. Users see only include/cachekit/backends/file.h.

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/file/entry_file.h"
#include "cachekit/backend.h"
#include "cachekit/backends/file.h"
#include "cachekit/clock.h"

namespace cachekit::file_internal {

class FileBackend final : public Backend {
 public:
  FileBackend(std::string dir, const FileOptions& options);

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }

  Result<std::optional<Bytes>> get(std::string_view key) override;
  Status set(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> touch(std::string_view key, Expiry expiry) override;
  Result<bool> erase(std::string_view key) override;
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
  Status clear() override;
  Result<Ttl> ttl(std::string_view key) override;
  Result<bool> contains(std::string_view key) override;
  Result<std::vector<std::string>> keys(std::string_view pattern) override;
  Result<StatPairs> stats() override;

 private:
  [[nodiscard]] TimePoint now() const noexcept { return clock_->now(); }
  [[nodiscard]] std::string entry_path(std::string_view key) const {
    return dir_ + '/' + entry_name(key);
  }
  [[nodiscard]] bool is_live(const StoredEntry& entry) const noexcept {
    return entry.state == EntryState::kFound && !entry.expiry.expired(now());
  }
  // A lock-free pre-check that lets erase/touch/incr of a missing key skip the lock. Any
  // error but "no such file" answers true, so the locked path reports it.
  static bool may_exist(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0 || errno != ENOENT;
  }

  template <class Body>
  auto locked(Body&& body) -> decltype(body()) {
    if (Status s = lock_.acquire(); !s.ok()) return s;
    struct Release {
      DirectoryLock& lock;
      ~Release() { lock.release(); }
    } release{lock_};
    return body();
  }

  Result<std::vector<std::string>> list_entries() const {
    Result<std::vector<std::string>> names = list_directory(dir_);
    if (names.ok()) std::erase_if(*names, [](const std::string& n) { return !is_entry_name(n); });
    return names;
  }

  Result<std::string> write_temp(std::string_view key, std::string_view value, Expiry expiry);
  Result<bool> commit(const std::string& temp, const std::string& path, std::string_view key,
                      bool only_if_absent);
  Result<bool> commit_locked(const std::string& temp, const std::string& path, std::string_view key,
                             bool only_if_absent);
  Status rewrite_locked(const std::string& path, std::string_view key, std::string_view value,
                        Expiry expiry);
  Result<bool> remove_locked(const std::string& path);
  void drop_locked(const std::string& path, const StoredEntry& entry);
  void discard(const std::string& path, const StoredEntry& entry);
  Result<std::int64_t> make_room_locked();
  std::int64_t cull_locked(const std::vector<std::string>& names);

  const std::string dir_;
  const std::int64_t max_entries_;
  const unsigned cull_frequency_;
  const Clock* const clock_;
  BackendInfo info_;
  DirectoryLock lock_;
  std::int64_t creates_since_listing_ = 0;  // guarded by lock_
};

}  // namespace cachekit::file_internal
