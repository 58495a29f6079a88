#pragma once
// Backend: what a store implements. Users rarely touch it; they call Cache (cache.h).
//
// A Backend stores opaque bytes under *final* keys (already prefixed, versioned and
// validated by the Cache façade) with an *absolute* Expiry. A miss is a value (an empty
// optional), never an error; errors are Status codes and are never thrown. Every Backend
// must be safe to call from many threads at once.
//
// The batch forms have default implementations that loop over the single-key forms;
// a store with a native batch (MGET, pipelines, multi-get, one SQL statement) overrides
// them. Optional capabilities (keys by pattern, stats) answer kUnimplemented by default,
// and a backend declares what it can do in info().

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cachekit/bytes.h"
#include "cachekit/status.h"
#include "cachekit/timeout.h"

namespace boost::asio {
class io_context;  // an event loop that AsyncReads run on (only servers built on Asio use them)
}  // namespace boost::asio

namespace cachekit {

// How a backend treats final keys that memcached could not hold (over 250 bytes, control
// characters or spaces): warn and store them, or refuse them with kInvalidArgument.
enum class KeyPolicy : std::uint8_t { kWarn, kRefuse };

struct BackendInfo {
  std::string name;               // "locmem", "file", "dummy", ...
  bool stores_values = true;      // false only for dummy
  bool outlives_process = false;  // entries survive the process (file, redis, ...)
  bool supports_keys = false;     // keys(pattern) works
  bool supports_stats = false;    // stats() works
  bool has_change_feed = false;   // watch_changes() works
  // Some reads are answered from process memory although the entries outlive the process
  // (a local tier in front of a shared store): get_if_in_process() answers those.
  bool has_local_copies = false;
  KeyPolicy key_policy = KeyPolicy::kWarn;
  std::size_t max_key_bytes = 250;  // the length above which a key is warned about/refused
};

// One statistic a backend reports: a name and its value as text.
using StatPairs = std::vector<std::pair<std::string, std::string>>;

struct KeyValue {
  std::string_view key;
  std::string_view value;
};

// A live value with its remaining lifetime (what get_entry returns).
struct StoredEntry {
  Bytes value;
  Ttl ttl;  // never, or the time left; never missing
};

// Told by a backend's change feed (Backend::watch_changes) which keys other clients changed.
// Called from the feed's own thread: implementations must be thread-safe and quick.
class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  // The final key `key` was written, erased, expired or evicted, by any client.
  virtual void changed(std::string_view key) = 0;
  // Every key may have changed (the store was flushed).
  virtual void all_changed() = 0;
  // The feed started (true) or stopped (false) delivering changes. While it is stopped,
  // changes are lost: whatever was derived from the store must be dropped and not rebuilt
  // until it is delivering again. Called with false once before the first connection.
  virtual void feed_live(bool live) = 0;
};

// A running change feed; destroying it stops the feed (no listener call after that returns).
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  ChangeFeed() = default;
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;
};

// Reads that never block the thread that asks: the GETs are written on a connection of their
// own, driven by an event loop (a server's io thread), and pipelined with the loop's other
// reads; the answer comes on the loop's thread. One per loop, used only from its thread, and
// destroyed on it (or after it stopped). Made by Backend::async_reads.
class AsyncReads {
 public:
  using Values = std::vector<std::optional<Bytes>>;
  // One value per key, in order (nullopt: missing); the whole set is nullopt when the store
  // could not answer in time (down, slow, an error reply): the caller then takes its blocking
  // path, which fails open as every call does.
  using Done = std::function<void(std::optional<Values>)>;
  virtual ~AsyncReads() = default;
  AsyncReads() = default;
  AsyncReads(const AsyncReads&) = delete;
  AsyncReads& operator=(const AsyncReads&) = delete;
  // GETs the final keys `keys` in one round trip; `done` runs later on the loop's thread, never
  // inside this call.
  virtual void get_many(std::span<const std::string> keys, Done done) = 0;
  // Answers what is pending with nullopt and closes the connection, so that the loop can run
  // out of work; later calls are answered nullopt.
  virtual void close() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  [[nodiscard]] virtual const BackendInfo& info() const noexcept = 0;

  // The live value, or nullopt when missing or expired.
  virtual Result<std::optional<Bytes>> get(std::string_view key) = 0;
  // Stores unconditionally. An expiry in the past removes any live value.
  virtual Status set(std::string_view key, std::string_view value, Expiry expiry) = 0;
  // Stores only if the key is missing or expired; true if it stored.
  virtual Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) = 0;
  // Gives a live key a new expiry; false if the key is missing.
  virtual Result<bool> touch(std::string_view key, Expiry expiry) = 0;
  // Removes the key; true if a live value was removed.
  virtual Result<bool> erase(std::string_view key) = 0;
  // Adds `delta` to a stored decimal integer atomically, keeping the key's expiry, and stores
  // the result as decimal text. kNotFound if missing, kFailedPrecondition if the value is not
  // a decimal integer, kOutOfRange on overflow.
  virtual Result<std::int64_t> incr(std::string_view key, std::int64_t delta) = 0;
  // Removes every entry of this cache (and nothing else).
  virtual Status clear() = 0;
  // Remaining lifetime of a live key, Ttl::never(), or Ttl::missing().
  virtual Result<Ttl> ttl(std::string_view key) = 0;

  virtual Result<bool> contains(std::string_view key);
  // One entry per key, in the order given.
  virtual Result<std::vector<std::optional<Bytes>>> get_many(
      std::span<const std::string_view> keys);
  // The indices of `items` that were not stored.
  virtual Result<std::vector<std::size_t>> set_many(std::span<const KeyValue> items, Expiry expiry);
  // How many live keys were removed.
  virtual Result<std::size_t> erase_many(std::span<const std::string_view> keys);
  // Removes the key only while its stored value is exactly `expected` (a lease's token); true if
  // it removed it. The default reads, compares and erases — two calls, so a writer in between
  // can lose its value; a store that can compare and delete in one step overrides it.
  virtual Result<bool> erase_if_value(std::string_view key, std::string_view expected);

  // What get() would answer, when that needs no I/O; nullopt when only a round trip can tell.
  // The default answers for a store that keeps its entries in the process
  // (!info().outlives_process) and never otherwise; a local tier answers for its copies.
  virtual std::optional<Result<std::optional<Bytes>>> get_if_in_process(std::string_view key);
  // The value and its remaining lifetime. The default calls get() then ttl(); a store that
  // can read both in one round trip overrides it. A key that expires or goes between the two
  // reads is missing.
  virtual Result<std::optional<StoredEntry>> get_entry(std::string_view key);
  // Starts delivering to `listener` the keys that any client changes, until the returned feed
  // is destroyed (`listener` must outlive it). kUnimplemented for a store that cannot tell
  // (the default); info().has_change_feed says which can.
  virtual Result<std::unique_ptr<ChangeFeed>> watch_changes(ChangeListener& listener);
  // Reads run by `loop` without blocking (see AsyncReads), or nullptr for a store that has
  // none (the default): its reads are made on a thread that may wait.
  virtual std::unique_ptr<AsyncReads> async_reads(boost::asio::io_context& loop);
  // Final keys matching a glob pattern (`*`, `?`, `[...]`, `\` escapes).
  virtual Result<std::vector<std::string>> keys(std::string_view pattern);
  virtual Result<StatPairs> stats();
};

// Glob matching as Redis' KEYS/SCAN MATCH does it: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`, `\x`.
[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;

// `text` with the glob metacharacters escaped, so that it matches only itself (a key prefix
// followed by a caller's pattern: escape_glob(prefix) + "*").
[[nodiscard]] std::string escape_glob(std::string_view text);

// Parses a whole decimal integer as stored by incr (optional '-', digits). nullopt otherwise.
[[nodiscard]] std::optional<std::int64_t> parse_decimal(std::string_view text) noexcept;

// `value + delta`, or kOutOfRange on overflow.
Result<std::int64_t> checked_add(std::int64_t value, std::int64_t delta);

}  // namespace cachekit
