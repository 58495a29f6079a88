#pragma once
// The entry-file format of the file backend (file.cc) and the I/O helpers it is built on.
// Private to the backend.
//
// Format. An entry lives in `<hex XXH3-128 of the final key>.ckc` (32 lowercase hex digits +
// ".ckc"); the exact name shape is how clear(), culling and keys() tell cache files from
// anything else a user keeps in the directory. A file is
//
//   "CKC1" | expiry: int64 LE, ms since the epoch, -1 = never | key size: uint32 LE
//          | value size: uint64 LE | key bytes | value bytes
//
// The key is stored so that a hash collision (or a foreign file with a cache-like name) is
// detected and so that keys(pattern) can list keys. The value size is stored so that a
// truncated file is detected: a file whose size disagrees with its header is corrupt.
// Temporaries are named `.ckc-tmp-XXXXXX`; the lock file `.ckc-lock` also holds the shared
// entry count (8 bytes, int64 LE, -1 = unknown).
//
// Also here: errno → Status mapping, a file-descriptor owner, directory creation and listing,
// exact reads and complete writes, reading an entry file (read_entry) and the directory lock
// (DirectoryLock).

#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cachekit/bytes.h"
#include "cachekit/clock.h"
#include "cachekit/status.h"
#include "cachekit/timeout.h"

namespace cachekit::file_internal {

inline constexpr std::string_view kMagic = "CKC1";
inline constexpr std::string_view kSuffix = ".ckc";
inline constexpr std::string_view kTempPrefix = ".ckc-tmp-";
inline constexpr std::string_view kLockName = ".ckc-lock";
inline constexpr std::size_t kHashHexDigits = 32;
inline constexpr std::size_t kHeaderSize = 24;  // magic, expiry, key size, value size

// An errno from the OS is the environment's doing (disk full, read-only, permissions, out of
// descriptors, the directory removed or replaced behind our back): kUnavailable. The few that
// can only come from a wrong call are bugs: kInternal.
Status os_error(std::string_view what, std::string_view path, int err);

// Little-endian integers of `bytes` bytes (at most 8).
void store_le(char* out, std::uint64_t value, std::size_t bytes);
std::uint64_t load_le(const char* in, std::size_t bytes);

// The file name of `key`'s entry (no directory).
std::string entry_name(std::string_view key);
// Whether `name` has the shape entry_name() gives.
bool is_entry_name(std::string_view name);
inline bool is_temp_name(std::string_view name) { return name.starts_with(kTempPrefix); }

// A file time; times before the epoch become the epoch.
timespec to_timespec(TimePoint t);

class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  // Closes now, so the caller sees the write error some file systems (NFS) report only here.
  int close() noexcept { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

// mkdir -p, giving every directory it creates mode 0700 (std::filesystem would use 0777); then
// kInvalidArgument unless `dir` is a directory owned by this process's user and not writable by
// its group or others.
Status make_directories(const std::string& dir);

// The names in `dir` other than "." and ".."; a missing directory has none.
Result<std::vector<std::string>> list_directory(const std::string& dir);

// Reads exactly `size` bytes at `offset`; false when the file ends first.
Result<bool> read_exact(int fd, char* out, std::size_t size, std::uint64_t offset,
                        const std::string& path);

// Writes every part, resuming after short writes (it adjusts `parts` as it goes).
Status write_all(int fd, std::span<iovec> parts, const std::string& path);

// One block holding a Bytes header and what is read from disk, so get() hands the value out
// without a second copy (the same layout Bytes itself allocates).
class SharedBuffer {
 public:
  explicit SharedBuffer(std::size_t size);
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;
  ~SharedBuffer() { detail::release(block_); }
  [[nodiscard]] char* data() const noexcept { return data_; }
  [[nodiscard]] Bytes slice(std::size_t offset, std::size_t size) const noexcept {
    return Bytes::share(block_, data_ + offset, size);
  }

 private:
  detail::SharedBlock* block_;
  char* data_;
};

enum class EntryState : std::uint8_t { kMissing, kCorrupt, kFound };

struct FileId {
  dev_t device = 0;
  ino_t inode = 0;
  friend bool operator==(const FileId&, const FileId&) = default;
};

struct StoredEntry {
  EntryState state = EntryState::kMissing;
  FileId id;           // of the file that was read (unless kMissing)
  timespec written{};  // its mtime
  Expiry expiry;
  std::string key;  // read without a value only
  Bytes value;      // read with a value only
};

struct Header {
  Expiry expiry;
  std::uint64_t key_size = 0;
  std::uint64_t value_size = 0;
};

// nullopt when `head` is not a cachekit header or disagrees with the file's size (truncated).
std::optional<Header> parse_header(const std::array<char, kHeaderSize>& head,
                                   std::uint64_t file_size);

// Reads the key (and, with an expected key, the value) after a valid header. False when the
// file ends early or holds another key.
Result<bool> read_body(int fd, const Header& header, const std::string& path,
                       std::optional<std::string_view> expected_key, bool with_value,
                       StoredEntry& entry);

// Reads the entry file at `path`. A file holding another key than `expected_key` (a hash
// collision or a foreign file) is corrupt. `with_value` requires `expected_key`.
Result<StoredEntry> read_entry(const std::string& path,
                               std::optional<std::string_view> expected_key, bool with_value);

// The directory's lock: an in-process mutex (threads share one open file description, and
// flock does not exclude its own description) around flock on the lock file (processes).
// The lock file also holds the shared entry count.
class DirectoryLock {
 public:
  explicit DirectoryLock(std::string dir) : dir_(std::move(dir)), path_(dir_ + '/') {
    path_ += kLockName;
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status acquire();
  void release();

  // The number of entry files, shared by every process; nullopt when unknown. Lock held.
  [[nodiscard]] std::optional<std::int64_t> shared_count() const;
  // A failed write only costs a directory listing later, so it is not an error.
  void store_shared_count(std::optional<std::int64_t> count) const;

 private:
  Status lock_file();

  const std::string dir_;
  std::string path_;
  std::mutex mu_;
  int fd_ = -1;      // guarded by mu_
  pid_t owner_ = 0;  // the process that opened fd_
};

}  // namespace cachekit::file_internal
