#include "backends/file/entry_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <new>
#include <system_error>

#include "core/log.h"

namespace cachekit::file_internal {

Status os_error(std::string_view what, std::string_view path, int err) {
  const bool bug = err == EBADF || err == EINVAL || err == EFAULT;
  return Status(
      bug ? StatusCode::kInternal : StatusCode::kUnavailable,
      fmt::format("file cache: {} {}: {}", what, path, std::generic_category().message(err)));
}

void store_le(char* out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out[i] = static_cast<char>(value >> (8 * i));
}

std::uint64_t load_le(const char* in, std::size_t bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  }
  return value;
}

std::string entry_name(std::string_view key) {
  const XXH128_hash_t hash = XXH3_128bits(key.data(), key.size());
  return fmt::format("{:016x}{:016x}{}", hash.high64, hash.low64, kSuffix);
}

bool is_entry_name(std::string_view name) {
  return name.size() == kHashHexDigits + kSuffix.size() && name.ends_with(kSuffix) &&
         std::all_of(name.begin(), name.begin() + kHashHexDigits,
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

timespec to_timespec(TimePoint t) {
  const auto ms = std::max<std::int64_t>(0, t.time_since_epoch().count());
  timespec out{};
  out.tv_sec = static_cast<time_t>(ms / 1000);
  out.tv_nsec = static_cast<long>((ms % 1000) * 1'000'000);
  return out;
}

namespace {

// Entries are trusted as this process's own, and the lock file decides who may write: a
// directory another user owns or can write could hold forged entries, or a lock held forever.
Status check_trusted_directory(const std::string& dir, const struct stat& st) {
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    return invalid_argument_error(fmt::format(
        "{} is owned by uid {}, not by this process's uid {}: another user's directory could "
        "hold forged entries or a lock that blocks every write; use a directory of your own",
        dir, st.st_uid, me));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return invalid_argument_error(fmt::format(
        "{} is writable by its group or by others (mode {:04o}), who could forge entries or "
        "hold its lock; make it private (chmod 700)",
        dir, st.st_mode & 07777));
  }
  return {};
}

}  // namespace

Status make_directories(const std::string& dir) {
  for (std::size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    const std::string prefix = dir.substr(0, end);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return os_error("cannot create directory", prefix, errno);
    }
    if (end == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return os_error("cannot stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) {
    return invalid_argument_error(fmt::format("{} is not a directory", dir));
  }
  return check_trusted_directory(dir, st);
}

Result<std::vector<std::string>> list_directory(const std::string& dir) {
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    if (errno == ENOENT) return std::vector<std::string>{};
    return os_error("cannot list", dir, errno);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  const int err = errno;
  ::closedir(stream);
  if (err != 0) return os_error("cannot list", dir, err);
  return names;
}

Result<bool> read_exact(int fd, char* out, std::size_t size, std::uint64_t offset,
                        const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("cannot read", path, errno);
    if (n == 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

Status write_all(int fd, std::span<iovec> parts, const std::string& path) {
  std::size_t next = 0;
  while (next < parts.size()) {
    const ssize_t n = ::writev(fd, &parts[next], static_cast<int>(parts.size() - next));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return os_error("cannot write", path, n < 0 ? errno : EIO);
    auto done = static_cast<std::size_t>(n);
    while (next < parts.size() && done >= parts[next].iov_len) done -= parts[next++].iov_len;
    if (next < parts.size()) {
      parts[next].iov_base = static_cast<char*>(parts[next].iov_base) + done;
      parts[next].iov_len -= done;
    }
  }
  return {};
}

SharedBuffer::SharedBuffer(std::size_t size) {
  void* raw = ::operator new(sizeof(detail::SharedBlock) + size);
  block_ = new (raw) detail::SharedBlock();
  data_ = static_cast<char*>(raw) + sizeof(detail::SharedBlock);
}

std::optional<Header> parse_header(const std::array<char, kHeaderSize>& head,
                                   std::uint64_t file_size) {
  if (std::string_view(head.data(), kMagic.size()) != kMagic) return std::nullopt;
  const Header header{Expiry::from_epoch_ms(static_cast<std::int64_t>(load_le(&head[4], 8))),
                      load_le(&head[12], 4), load_le(&head[16], 8)};
  const std::uint64_t body = file_size - kHeaderSize;
  if (header.key_size > body || header.value_size != body - header.key_size) return std::nullopt;
  return header;
}

Result<bool> read_body(int fd, const Header& header, const std::string& path,
                       std::optional<std::string_view> expected_key, bool with_value,
                       StoredEntry& entry) {
  if (!with_value) {
    entry.key.resize(header.key_size);
    Result<bool> complete = read_exact(fd, entry.key.data(), header.key_size, kHeaderSize, path);
    if (!complete.ok() || !*complete) return complete;
    return !expected_key || entry.key == *expected_key;
  }
  SharedBuffer body(header.key_size + header.value_size);
  Result<bool> complete =
      read_exact(fd, body.data(), header.key_size + header.value_size, kHeaderSize, path);
  if (!complete.ok() || !*complete) return complete;
  if (std::string_view(body.data(), header.key_size) != expected_key.value_or("")) return false;
  entry.value = body.slice(header.key_size, header.value_size);
  return true;
}

Result<StoredEntry> read_entry(const std::string& path,
                               std::optional<std::string_view> expected_key, bool with_value) {
  StoredEntry entry;
  // O_NONBLOCK: a FIFO left under a cache-file name must not hang a reader.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) return entry;
    return os_error("cannot open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return os_error("cannot stat", path, errno);
  entry.id = {st.st_dev, st.st_ino};
  entry.written = st.st_mtim;
  entry.state = EntryState::kCorrupt;  // until every check below passes
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || file_size < kHeaderSize) return entry;
  std::array<char, kHeaderSize> head{};
  Result<bool> complete = read_exact(fd.get(), head.data(), kHeaderSize, 0, path);
  if (!complete.ok()) return complete.status();
  const std::optional<Header> header = *complete ? parse_header(head, file_size) : std::nullopt;
  if (!header) return entry;
  entry.expiry = header->expiry;
  complete = read_body(fd.get(), *header, path, expected_key, with_value, entry);
  if (!complete.ok()) return complete.status();
  if (*complete) entry.state = EntryState::kFound;
  return entry;
}

Status DirectoryLock::acquire() {
  mu_.lock();
  Status s = lock_file();
  if (!s.ok()) mu_.unlock();
  return s;
}

void DirectoryLock::release() {
  ::flock(fd_, LOCK_UN);
  mu_.unlock();
}

std::optional<std::int64_t> DirectoryLock::shared_count() const {
  std::array<char, 8> raw{};
  if (::pread(fd_, raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size())) return {};
  const auto count = static_cast<std::int64_t>(load_le(raw.data(), raw.size()));
  return count < 0 ? std::nullopt : std::optional<std::int64_t>(count);
}

void DirectoryLock::store_shared_count(std::optional<std::int64_t> count) const {
  std::array<char, 8> raw{};
  store_le(raw.data(), static_cast<std::uint64_t>(count.value_or(-1)), raw.size());
  if (::pwrite(fd_, raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size())) {
    detail::logger()->debug("file cache: cannot update the entry count in {}", path_);
  }
}

Status DirectoryLock::lock_file() {
  // A child of fork() shares the parent's open file description, hence its flock: it needs
  // its own. (Closing the inherited descriptor does not release the parent's lock.)
  if (fd_ >= 0 && owner_ != ::getpid()) ::close(std::exchange(fd_, -1));
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd_ < 0 && errno == ENOENT) {
        if (Status s = make_directories(dir_); !s.ok()) return s;
        continue;
      }
      if (fd_ < 0) return os_error("cannot open lock file", path_, errno);
      owner_ = ::getpid();
    }
    int rc = 0;
    while ((rc = ::flock(fd_, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (rc != 0) return os_error("cannot lock", path_, errno);
    struct stat held {};
    struct stat current {};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &current) == 0 &&
        held.st_dev == current.st_dev && held.st_ino == current.st_ino) {
      return {};
    }
    // The lock file was removed (the directory was deleted behind our back): a lock on the
    // old inode excludes nobody, so lock the file that is there now.
    ::close(std::exchange(fd_, -1));
  }
  return unavailable_error(fmt::format("file cache: lock file {} keeps disappearing", path_));
}

}  // namespace cachekit::file_internal
