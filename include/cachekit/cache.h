#pragma once
// Cache: the façade every caller uses — Django's low-level cache API in C++.
//
//   cachekit::Cache cache(cachekit::make_locmem_backend());
//   cache.set("greeting", "hello", 5min);
//   if (auto v = cache.get("greeting")) use(v->view());
//   auto n = cache.incr("hits");                       // Result<int64_t>: kNotFound if missing
//   auto p = cache.get_or_set("product:1", [] { return load_product(1); }, 300);
//
// The façade owns everything that is the same for every store: final keys
// (`prefix:version:key`, or a custom key function), key validation, timeouts (default /
// never / seconds; zero or negative means already expired), versions, typed values through
// Codec<T>, statistics and the failure policy.
//
// Failure policy: the plain methods fail open — a store error is a miss on read and a no-op
// on write (false), counted in stats() and logged at a bounded rate — so a broken cache
// makes a site slower, never down. incr/decr/incr_version return Result because a missing
// key must be told apart. strict() gives the same operations returning every error, for
// the CLI, health checks and tests. Nothing here throws after construction: a typed value its
// Codec<T> cannot encode is a failed write too. Only get_or_set's `compute` may throw, and its
// exception reaches the caller.
//
// Thread-safety: all methods may be called concurrently on one Cache.

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cachekit/backend.h"
#include "cachekit/bytes.h"
#include "cachekit/clock.h"
#include "cachekit/codec.h"
#include "cachekit/refresh.h"
#include "cachekit/status.h"
#include "cachekit/timeout.h"

namespace cachekit {

class Lease;
namespace detail {
class FlightTable;
class RefreshExecutor;
}  // namespace detail

// An explicit key version; nullopt means the cache's configured version.
using Version = std::optional<std::int64_t>;

// (caller key, key prefix, version) → final key.
using KeyFunction =
    std::function<std::string(std::string_view key, std::string_view prefix, std::int64_t)>;

// Django's default: "<prefix>:<version>:<key>".
[[nodiscard]] std::string default_key_function(std::string_view key, std::string_view prefix,
                                               std::int64_t version);

// The first problem memcached would have with `final_key`, in Django's words, or "".
[[nodiscard]] std::string key_problem(std::string_view final_key, std::size_t max_bytes = 250);

struct CacheOptions {
  std::string alias = "default";                        // the name in logs, stats and errors
  Timeout default_timeout = std::chrono::seconds(300);  // a duration or never
  std::string key_prefix{};
  std::int64_t version = 1;
  KeyFunction key_function{};                 // empty: default_key_function
  Serializer serializer = Serializer::kJson;  // for structured typed values
  const Clock* clock = nullptr;               // nullptr: SystemClock; must outlive the Cache
  std::size_t max_error_logs_per_second = 5;  // failure logging budget (0: never log)
  // zstd-compress values of at least this many bytes before storing them (0: off). Stored
  // compressed values are plain zstd frames; decimal integers are never compressed, so incr and
  // other clients' INCR keep working. Every process sharing a store should use the same setting.
  std::size_t compress_min_bytes = 0;
  int compress_level = 3;  // zstd level, 1 (fastest) to 19
  // The most a stored compressed value may expand to on a read (64 MiB). A stored frame is
  // another writer's data: one that declares or expands to more is a miss counted as an error
  // (strict: kResourceExhausted), found before anything that large is allocated. A value to be
  // stored compressed that is larger is refused (kResourceExhausted) instead of stored unreadable.
  std::size_t decompress_max_bytes = std::size_t{64} << 20;
  // get_or_set's single-flight: how long a caller that missed a key another thread of this
  // process is loading waits for that thread's value before loading it itself.
  std::chrono::milliseconds collapse_wait = std::chrono::seconds(10);
  // get_or_set's fleet lease, on stores that outlive the process (backend_info()
  // .outlives_process: redis, memcached, sql, file): how long a loader may hold the lease, and
  // how long a process that finds another process's lease polls the store for the value before
  // loading it anyway.
  std::chrono::milliseconds lease_ttl = std::chrono::seconds(10);
  std::chrono::milliseconds lease_wait = std::chrono::seconds(3);
};

// The façade's counts since the Cache was made. The load counts come from get_or_set and
// get_or_refresh (cachekit/refresh.h).
struct CacheStats {
  std::uint64_t hits = 0, misses = 0, writes = 0, errors = 0, key_warnings = 0;
  std::uint64_t collapsed_waits = 0;          // callers that waited for another thread's load
  std::uint64_t lease_waits = 0;              // loads that found another process's lease and waited
  std::uint64_t lease_takeovers = 0;          // leases taken after waiting on another holder's
  std::uint64_t stale_served_revalidate = 0;  // stale values served while a refresh ran
  std::uint64_t stale_served_error = 0;       // stale values served because the loader failed
  std::uint64_t early_refreshes = 0;          // refreshes started before fresh-until (XFetch)
  std::uint64_t refreshes = 0;                // background refreshes run
  std::uint64_t refresh_failures = 0;         // background refreshes whose loader threw
  std::uint64_t refreshes_skipped = 0;  // background refreshes left to another process's lease
};

class StrictCache;
class ConstStrictCache;

class Cache {
 public:
  // Throws std::invalid_argument if backend is null or default_timeout is Timeout() or NaN —
  // configuration errors are reported at startup only.
  explicit Cache(std::shared_ptr<Backend> backend, CacheOptions options = {});
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // ---- bytes ----
  // The live value, or nullopt (missing, expired, or the store failed).
  [[nodiscard]] std::optional<Bytes> get(std::string_view key, Version version = {}) const;
  // get() when the store can answer from process memory (Backend::get_if_in_process): the
  // outer nullopt means "only a round trip can tell" (or the store failed), and nothing was
  // counted; a server answers such reads on its io thread and leaves the rest to its pool.
  [[nodiscard]] std::optional<std::optional<Bytes>> get_if_in_process(std::string_view key,
                                                                      Version version = {}) const;
  // Reads for an event loop that must not block (Backend::async_reads), or nullptr when the
  // store has none. Used with get_many_async on that loop's thread only.
  [[nodiscard]] std::unique_ptr<AsyncReads> async_reads(boost::asio::io_context& loop) const;
  // get() of each key through `reads`, in one round trip: `done` gets, on the loop's thread,
  // what get() would return for each key in order, or nullopt when the store did not answer
  // (nothing is counted then; the caller takes the blocking path, which also reports a key
  // that cannot be made final).
  void get_many_async(AsyncReads& reads, std::span<const std::string> keys,
                      std::function<void(std::optional<std::vector<std::optional<Bytes>>>)> done,
                      Version version = {}) const;
  // True when stored.
  bool set(std::string_view key, std::string_view value, Timeout timeout = {},
           Version version = {});
  // Stores only when the key is missing or expired; true when it stored (also for a zero
  // timeout, which then stores nothing retrievable).
  bool add(std::string_view key, std::string_view value, Timeout timeout = {},
           Version version = {});
  // New expiry for a live key (Timeout() = the default, kNever = persistent); false if missing.
  bool touch(std::string_view key, Timeout timeout = {}, Version version = {});
  // True if a live key was removed.
  bool erase(std::string_view key, Version version = {});
  [[nodiscard]] bool contains(std::string_view key, Version version = {}) const;
  // Atomic add; the stored form stays a decimal integer and the expiry is kept.
  // kNotFound if the key is missing; kFailedPrecondition if its value is not an integer.
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta = 1, Version version = {});
  Result<std::int64_t> decr(std::string_view key, std::int64_t delta = 1, Version version = {});
  // Moves the value (with its expiry) from `version` (default: the cache's) to version+delta;
  // returns the new version. kNotFound if the key is missing.
  Result<std::int64_t> incr_version(std::string_view key, std::int64_t delta = 1,
                                    Version version = {});
  Result<std::int64_t> decr_version(std::string_view key, std::int64_t delta = 1,
                                    Version version = {});
  // Empties the store, or only this key_prefix on Redis/SQL (see their headers). True on success.
  bool clear();
  // Remaining lifetime, Ttl::never(), or Ttl::missing() (also when the store failed).
  [[nodiscard]] Ttl ttl(std::string_view key, Version version = {}) const;

  // Caller key → value for the live keys; missing keys are absent. Any input range of
  // string-like keys: the keys are read in place when the range holds them (or yields
  // string_views), and copied when it yields temporaries (std::views::transform making strings).
  template <std::ranges::input_range R>
  [[nodiscard]] std::unordered_map<std::string, Bytes> get_many(R&& keys,
                                                                Version version = {}) const {
    std::deque<std::string> owned;
    return get_many_views(to_views(keys, owned), version);
  }
  [[nodiscard]] std::unordered_map<std::string, Bytes> get_many(
      std::initializer_list<std::string_view> keys, Version version = {}) const {
    return get_many_views({keys.begin(), keys.end()}, version);
  }
  // Stores every (key, value) pair with one timeout; returns the caller keys not stored. Any
  // input range of pairs (or two-element tuples): string-like values are stored as given, others
  // through Codec<T> (a value it cannot encode is not stored and counted as an error);
  // temporaries the range yields are copied first, as in get_many.
  template <std::ranges::input_range R>
  std::vector<std::string> set_many(R&& items, Timeout timeout = {}, Version version = {}) {
    // Copies and encoded values live in a deque so the views taken of them stay valid as it grows.
    std::deque<std::string> owned;
    constexpr bool kTemporary = !std::is_lvalue_reference_v<std::ranges::range_reference_t<R>>;
    std::vector<std::pair<std::string_view, std::string_view>> pairs;
    std::vector<std::string> refused;  // values their codec could not encode
    for (auto&& item : items) {
      const auto& [k, v] = item;
      std::string_view key = stable_view<kTemporary>(k, owned);
      if constexpr (std::is_convertible_v<const decltype(v)&, std::string_view>) {
        pairs.emplace_back(key, stable_view<kTemporary>(v, owned));
      } else if (auto encoded = try_encode(key, v)) {
        pairs.emplace_back(key, std::string_view(owned.emplace_back(std::move(*encoded))));
      } else {
        refused.emplace_back(key);
      }
    }
    auto not_stored = set_many_views(pairs, timeout, version);
    not_stored.insert(not_stored.end(), refused.begin(), refused.end());
    return not_stored;
  }
  // Removes the keys (any input range, as in get_many); returns how many live keys were removed.
  template <std::ranges::input_range R>
  std::size_t erase_many(R&& keys, Version version = {}) {
    std::deque<std::string> owned;
    return erase_many_views(to_views(keys, owned), version);
  }
  std::size_t erase_many(std::initializer_list<std::string_view> keys, Version version = {}) {
    return erase_many_views({keys.begin(), keys.end()}, version);
  }

  // ---- typed values (Codec<T>) ----
  template <class T>
  [[nodiscard]] std::optional<T> get(std::string_view key, Version version = {}) const {
    auto bytes = get(key, version);
    if (!bytes) return std::nullopt;
    auto value = Codec<T>::decode(bytes->view(), options_.serializer);
    if (!value) note_decode_failure(key);
    return value;
  }
  // As the bytes forms; false (counted as an error) when Codec<T> cannot encode the value, as
  // nlohmann::json cannot a string that is not UTF-8.
  template <class T>
  requires(!std::is_convertible_v<const T&, std::string_view>) bool set(std::string_view key,
                                                                        const T& value,
                                                                        Timeout timeout = {},
                                                                        Version version = {}) {
    auto encoded = try_encode(key, value);
    return encoded && set(key, std::string_view(*encoded), timeout, version);
  }
  template <class T>
  requires(!std::is_convertible_v<const T&, std::string_view>) bool add(std::string_view key,
                                                                        const T& value,
                                                                        Timeout timeout = {},
                                                                        Version version = {}) {
    auto encoded = try_encode(key, value);
    return encoded && add(key, std::string_view(*encoded), timeout, version);
  }

  // The live value; on a miss calls `compute()` (only then), add()s its result and returns
  // what the cache then holds (a concurrent writer's value wins, as in Django). Bytes for
  // string-like results, otherwise the computed type through Codec<T>.
  //
  // Single-flight: concurrent misses of one final key in this process run `compute` once; the
  // other callers wait (at most options().collapse_wait, then compute themselves) and get the
  // leader's value directly, stored or not (timeout 0, store down). If `compute` throws, every
  // waiting caller gets the same exception and nothing is stored. A hit never touches the
  // flight table.
  //
  // Fleet lease: on a store that outlives the process, the leader first claims the Lease named
  // kLeasePrefix + key (see lease_name); if another process holds it, the leader polls the
  // store for that process's value (at most options().lease_wait) and computes only if none
  // appears, or if it takes over a lease that expired. A store error on the lease fails open:
  // compute here.
  template <class F>
  auto get_or_set(std::string_view key, F&& compute, Timeout timeout = {}, Version version = {}) {
    using R = std::decay_t<std::invoke_result_t<F&>>;
    if constexpr (std::is_convertible_v<const R&, std::string_view>) {
      if (auto hit = get(key, version)) return std::move(*hit);
      Loaded loaded = load_collapsed(key, timeout, version, [&]() -> std::optional<std::string> {
        return std::string(std::string_view(std::invoke(compute)));
      });
      if (loaded.bytes) return std::move(*loaded.bytes);
      return Bytes(std::string_view(std::invoke(compute)));
    } else {
      if (auto hit = get<R>(key, version)) return std::move(*hit);
      std::optional<R> computed;
      Loaded loaded = load_collapsed(key, timeout, version, [&]() -> std::optional<std::string> {
        computed.emplace(std::invoke(compute));
        return try_encode(key, *computed);
      });
      if (loaded.own && computed) return std::move(*computed);
      if (loaded.bytes) {
        if (auto value = Codec<R>::decode(loaded.bytes->view(), options_.serializer)) return *value;
        note_decode_failure(key);
      }
      if (computed) return std::move(*computed);
      return R(std::invoke(compute));
    }
  }

  // The value of `key`, kept fresh by `policy` (cachekit/refresh.h): fresh → returned; stale
  // inside stale_while_revalidate → returned at once while one background refresh (one per
  // process through the single-flight, one per fleet through the lease) reloads it; missing or
  // past that window → loaded in the foreground as get_or_set loads; the loader throwing →
  // the stale value if inside stale_if_error (counted), else the exception reaches the caller.
  // XFetch may refresh a fresh value early, in the background.
  //
  // The value is stored in an envelope (fresh-until, stale-until, compute time, payload) that
  // expires from the store at stale-until. Plain get() of such a key returns the payload while
  // it is fresh and a miss once it is stale; write such keys only through get_or_refresh.
  //
  // `loader` is copied and may run on the cache's refresh thread after this call returned (at
  // the latest before ~Cache returns): what it captures by reference must outlive the Cache.
  // Bytes for string-like results, otherwise the loader's type through Codec<T>.
  template <class F>
  auto get_or_refresh(std::string_view key, F loader, const RefreshPolicy& policy,
                      Version version = {}) {
    using R = std::decay_t<std::invoke_result_t<F&>>;
    if constexpr (std::is_convertible_v<const R&, std::string_view>) {
      auto bytes = refresh_bytes(key, version, policy, [loader]() mutable {
        return std::optional<std::string>(std::string_view(std::invoke(loader)));
      });
      if (bytes) return std::move(*bytes);
      return Bytes(std::string_view(std::invoke(loader)));
    } else {
      auto bytes =
          refresh_bytes(key, version, policy, [this, k = std::string(key), loader]() mutable {
            return try_encode(k, R(std::invoke(loader)));
          });
      if (bytes) {
        if (auto value = Codec<R>::decode(bytes->view(), options_.serializer)) return *value;
        note_decode_failure(key);
      }
      return R(std::invoke(loader));
    }
  }

  // Caller keys starting with this are reserved for the leases get_or_set and get_or_refresh
  // take: the lease guarding `key` is the caller key kLeasePrefix + key (same prefix and
  // version as the key itself).
  static constexpr std::string_view kLeasePrefix = "__cachekit_lease__:";
  [[nodiscard]] static std::string lease_name(std::string_view key) {
    return std::string(kLeasePrefix).append(key);
  }

  // ---- introspection ----
  [[nodiscard]] std::string make_key(std::string_view key, Version version = {}) const;
  [[nodiscard]] const CacheOptions& options() const noexcept { return options_; }
  [[nodiscard]] const BackendInfo& backend_info() const noexcept { return backend_->info(); }
  // The store, which caches with the same settings share: a const Cache still hands it out.
  [[nodiscard]] Backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] CacheStats stats() const noexcept;
  // The same operations, returning every error. A const Cache gives only the reads.
  [[nodiscard]] StrictCache strict() noexcept;
  [[nodiscard]] ConstStrictCache strict() const noexcept;

 private:
  friend class StrictCache;
  friend class ConstStrictCache;
  struct Counters;
  struct ErrorLog;

  // What load_collapsed hands get_or_set: the value to return (nullopt: none to share, the
  // caller computes itself), and whether it is this caller's own computation.
  struct Loaded {
    std::optional<Bytes> bytes;
    bool own = false;
  };
  // Loads a missing key once per process (single-flight) and once per fleet (lease). `load`
  // runs the caller's compute and returns the stored form (nullopt: could not encode).
  using LoadFunction = std::function<std::optional<std::string>()>;
  Loaded load_collapsed(std::string_view key, Timeout timeout, Version version,
                        const LoadFunction& load);
  // Claims the fleet lease guarding `key` into `lease`, or waits (lease_wait) for another
  // process's value: the value found, or nullopt (load here; `lease` holds the claim if any).
  std::optional<Bytes> claim_or_await(std::string_view key, Version version,
                                      std::optional<Lease>& lease);
  // get_or_refresh's implementation (src/core/refresh.cc): the payload to return, or nullopt
  // when `load` could not encode its value.
  std::optional<Bytes> refresh_bytes(std::string_view key, Version version,
                                     const RefreshPolicy& policy, const LoadFunction& load);
  std::optional<Bytes> load_fresh(std::string_view key, const std::string& final, Version version,
                                  const RefreshPolicy& policy, const LoadFunction& load);
  // Runs `load` and stores its value in an envelope; the payload (nullopt: not encodable).
  std::optional<Bytes> load_and_wrap(std::string_view key, Version version,
                                     const RefreshPolicy& policy, const LoadFunction& load);
  void start_background_refresh(std::string_view key, const std::string& final, Version version,
                                const RefreshPolicy& policy, const LoadFunction& load);
  // The leader's part: the fleet lease, the load, the add.
  Loaded lead_load(std::string_view key, Timeout timeout, Version version,
                   const LoadFunction& load);
  // Runs `load` and stores its result with add(); the value then held.
  Loaded load_and_add(std::string_view key, Timeout timeout, Version version,
                      const LoadFunction& load);

  // A view of `s` that outlives the loop iteration it came from: `s` itself when it lives in the
  // caller's range or is a view already, else a copy kept in `owned`.
  template <bool kTemporary, class S>
  static std::string_view stable_view(const S& s, std::deque<std::string>& owned) {
    using Plain = std::remove_cvref_t<S>;
    if constexpr (!kTemporary || std::is_same_v<Plain, std::string_view> ||
                  std::is_pointer_v<std::decay_t<Plain>>) {
      return std::string_view(s);
    } else {
      return owned.emplace_back(std::string_view(s));
    }
  }
  template <std::ranges::input_range R>
  static std::vector<std::string_view> to_views(R& keys, std::deque<std::string>& owned) {
    constexpr bool kTemporary = !std::is_lvalue_reference_v<std::ranges::range_reference_t<R>>;
    std::vector<std::string_view> views;
    if constexpr (std::ranges::sized_range<R>) views.reserve(std::ranges::size(keys));
    for (auto&& k : keys) views.push_back(stable_view<kTemporary>(k, owned));
    return views;
  }
  // The stored form of a typed value, or nullopt (counted and logged as an error) when its codec
  // throws: the fail-open API must not.
  template <class T>
  [[nodiscard]] std::optional<std::string> try_encode(std::string_view key, const T& value) const {
    try {
      return Codec<T>::encode(value, options_.serializer);
    } catch (const std::exception& e) {
      note_encode_failure(key, e.what());
      return std::nullopt;
    }
  }

  [[nodiscard]] std::unordered_map<std::string, Bytes> get_many_views(
      const std::vector<std::string_view>& keys, Version version) const;
  std::vector<std::string> set_many_views(
      const std::vector<std::pair<std::string_view, std::string_view>>& items, Timeout timeout,
      Version version);
  std::size_t erase_many_views(const std::vector<std::string_view>& keys, Version version);
  void note_decode_failure(std::string_view key) const;
  void note_encode_failure(std::string_view key, std::string_view reason) const;

  // The strict implementations; the plain methods apply the failure policy on top.
  [[nodiscard]] Result<std::string> final_key(std::string_view key, Version version) const;
  // The expiry `timeout` (Timeout() = the default) gives a value stored at `now`; a zero or
  // negative duration gives one that is already expired at `now`.
  [[nodiscard]] Expiry expiry_for(Timeout timeout, TimePoint now) const;
  Result<std::optional<Bytes>> strict_get(std::string_view key, Version version) const;
  // The stored form of a value (nullopt: as given), and back (compress_min_bytes).
  [[nodiscard]] Result<std::optional<std::string>> encode_for_store(std::string_view value) const;
  [[nodiscard]] Result<Bytes> decode_stored(Bytes stored) const;
  // What a plain read shows of a decoded stored value (get_or_refresh envelopes unwrapped).
  [[nodiscard]] std::optional<Bytes> visible(Bytes decoded) const;
  Status strict_set(std::string_view key, std::string_view value, Timeout t, Version v);
  Result<bool> strict_add(std::string_view key, std::string_view value, Timeout t, Version v);
  Result<bool> strict_touch(std::string_view key, Timeout t, Version v);
  Result<bool> strict_erase(std::string_view key, Version v);
  Result<bool> strict_erase_if_value(std::string_view key, std::string_view expected, Version v);
  Result<bool> strict_contains(std::string_view key, Version v) const;
  Result<std::int64_t> strict_incr(std::string_view key, std::int64_t delta, Version v);
  Result<std::int64_t> strict_incr_version(std::string_view key, std::int64_t delta, Version v);
  Status strict_clear();
  Result<Ttl> strict_ttl(std::string_view key, Version v) const;
  Result<std::unordered_map<std::string, Bytes>> strict_get_many(
      const std::vector<std::string_view>& keys, Version v) const;
  Result<std::vector<std::string>> strict_set_many(
      const std::vector<std::pair<std::string_view, std::string_view>>& items, Timeout t,
      Version v);
  Result<std::size_t> strict_erase_many(const std::vector<std::string_view>& keys, Version v);
  Result<std::vector<std::string>> strict_keys(std::string_view pattern, Version v) const;

  // Counts and logs a failed store call (rate-limited); passes the status through.
  void record_failure(const Status& status, std::string_view operation) const;

  std::shared_ptr<Backend> backend_;
  CacheOptions options_;
  const Clock* clock_;
  std::unique_ptr<Counters> counters_;
  std::unique_ptr<ErrorLog> error_log_;
  std::unique_ptr<detail::FlightTable> flights_;
  // Last: destroyed (its threads joined) first, while everything a refresh uses still lives.
  std::unique_ptr<detail::RefreshExecutor> refresher_;
};

// The reads of a Cache, returning every error instead of failing open: what strict() gives on a
// const Cache. Cheap to copy; must not outlive its Cache.
class ConstStrictCache {
 public:
  explicit ConstStrictCache(const Cache& cache) noexcept : cache_(&cache) {}

  [[nodiscard]] Result<std::optional<Bytes>> get(std::string_view key, Version v = {}) const {
    return cache_->strict_get(key, v);
  }
  [[nodiscard]] Result<bool> contains(std::string_view key, Version v = {}) const {
    return cache_->strict_contains(key, v);
  }
  [[nodiscard]] Result<Ttl> ttl(std::string_view key, Version v = {}) const {
    return cache_->strict_ttl(key, v);
  }
  [[nodiscard]] Result<std::unordered_map<std::string, Bytes>> get_many(
      const std::vector<std::string_view>& keys, Version v = {}) const {
    return cache_->strict_get_many(keys, v);
  }
  // Caller keys of this cache (its prefix and version) matching a glob pattern. Needs the
  // default key function and a backend that supports keys(); kUnimplemented otherwise.
  [[nodiscard]] Result<std::vector<std::string>> keys(std::string_view pattern = "*",
                                                      Version v = {}) const {
    return cache_->strict_keys(pattern, v);
  }
  [[nodiscard]] Result<StatPairs> backend_stats() const { return cache_->backend_->stats(); }

 private:
  const Cache* cache_;
};

// A view of a Cache whose methods return every error instead of failing open: the reads of
// ConstStrictCache and the writes. Cheap to copy; must not outlive its Cache.
class StrictCache : public ConstStrictCache {
 public:
  explicit StrictCache(Cache& cache) noexcept : ConstStrictCache(cache), writable_(&cache) {}

  Status set(std::string_view key, std::string_view value, Timeout t = {}, Version v = {}) {
    return writable_->strict_set(key, value, t, v);
  }
  Result<bool> add(std::string_view key, std::string_view value, Timeout t = {}, Version v = {}) {
    return writable_->strict_add(key, value, t, v);
  }
  Result<bool> touch(std::string_view key, Timeout t = {}, Version v = {}) {
    return writable_->strict_touch(key, t, v);
  }
  Result<bool> erase(std::string_view key, Version v = {}) {
    return writable_->strict_erase(key, v);
  }
  // Removes the key only while it holds exactly `expected` (stored uncompressed: a short token);
  // see Backend::erase_if_value for which stores do it in one step.
  Result<bool> erase_if_value(std::string_view key, std::string_view expected, Version v = {}) {
    return writable_->strict_erase_if_value(key, expected, v);
  }
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta = 1, Version v = {}) {
    return writable_->strict_incr(key, delta, v);
  }
  Result<std::int64_t> decr(std::string_view key, std::int64_t delta = 1, Version v = {});
  Status clear() { return writable_->strict_clear(); }
  Result<std::vector<std::string>> set_many(
      const std::vector<std::pair<std::string_view, std::string_view>>& items, Timeout t = {},
      Version v = {}) {
    return writable_->strict_set_many(items, t, v);
  }
  Result<std::size_t> erase_many(const std::vector<std::string_view>& keys, Version v = {}) {
    return writable_->strict_erase_many(keys, v);
  }

 private:
  Cache* writable_;
};

}  // namespace cachekit
