// The memcached backend's storage calls on libmemcached (see cachekit/backends/memcached.h).
//
// Protocol facts this file relies on, checked against memcached 1.6.18 + libmemcached 1.1.4:
//  - binary protocol: add on a live key answers DATA_EXISTS (the text protocol: NOT_STORED);
//    a value over the item limit answers E2BIG, and the server also unlinks the old item;
//    keys may contain spaces (only the façade's kRefuse policy keeps them out).
//  - a handle ejecting a dead server answers SERVER_MARKED_DEAD without sending anything, and
//    has already rebuilt its ring without that server: the call can be repeated at once.
//  - a timed-out request closes its connection, so a late reply is never read as the answer to
//    the next request (tested in memcached_fault_test: SIGSTOP, timeout, SIGCONT, new key).
#include <fmt/format.h>

#include <cstdlib>
#include <memory>
#include <unordered_map>

#include "backends/memcached/memcached_backend.h"

namespace cachekit::memcached_internal {

namespace {

struct FreeDeleter {
  void operator()(char* p) const noexcept { std::free(p); }
};

StatusCode code_for(memcached_return_t rc) {
  switch (rc) {
    case MEMCACHED_TIMEOUT:
      return StatusCode::kDeadlineExceeded;
    case MEMCACHED_E2BIG:
    case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
      return StatusCode::kResourceExhausted;
    case MEMCACHED_BAD_KEY_PROVIDED:
    case MEMCACHED_KEY_TOO_BIG:
      return StatusCode::kInvalidArgument;
    case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
    case MEMCACHED_INVALID_ARGUMENTS:
    case MEMCACHED_NOT_SUPPORTED:
      return StatusCode::kInternal;
    default:
      return StatusCode::kUnavailable;
  }
}

}  // namespace

bool server_answered(memcached_return_t rc) noexcept {
  switch (rc) {
    case MEMCACHED_SUCCESS:
    case MEMCACHED_NOTFOUND:
    case MEMCACHED_NOTSTORED:
    case MEMCACHED_DATA_EXISTS:
    case MEMCACHED_STORED:
    case MEMCACHED_DELETED:
    case MEMCACHED_END:
    case MEMCACHED_E2BIG:
    case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
    case MEMCACHED_SERVER_ERROR:
    case MEMCACHED_CLIENT_ERROR:
      return true;
    default:
      return false;
  }
}

MemcachedBackend::MemcachedBackend(const MemcachedOptions& options,
                                   std::vector<ServerAddress> servers, memcached_st* master)
    : clock_(options.clock != nullptr ? options.clock : &SystemClock::instance()),
      cas_patience_(options.io_timeout),
      servers_(servers),
      pool_(master, options.pool_size, options.pool_wait),
      health_(servers.size(), options.down_after_failures, options.retry_after),
      meta_(std::move(servers), options.connect_timeout, options.io_timeout, options.pool_size) {
  info_.name = "memcached";
  info_.outlives_process = true;
  info_.supports_keys = false;
  info_.supports_stats = true;
  info_.key_policy = KeyPolicy::kRefuse;
  info_.max_key_bytes = 250;
}

// ---- per-call bookkeeping ----

std::size_t MemcachedBackend::index_of(const memcached_st* handle,
                                       const memcached_instance_st* instance) const {
  if (instance == nullptr) return kNoServer;
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    if (memcached_server_instance_by_position(handle, static_cast<std::uint32_t>(i)) == instance) {
      return i;
    }
  }
  return kNoServer;
}

std::size_t MemcachedBackend::server_of(memcached_st* handle, std::string_view key) const {
  memcached_return_t rc{};
  return index_of(handle, memcached_server_by_key(handle, key.data(), key.size(), &rc));
}

Status MemcachedBackend::admit(memcached_st* handle, std::string_view key) {
  if (health_.all_healthy()) return {};
  std::size_t server = server_of(handle, key);
  if (server == kNoServer || health_.admit(server, std::chrono::steady_clock::now())) return {};
  return unavailable_error(
      fmt::format("memcached {} is not answering; its keys fail at once until a retry succeeds",
                  servers_[server].display()));
}

void MemcachedBackend::observe(std::size_t server, bool timed_out) {
  if (server == kNoServer) return;
  if (timed_out) {
    health_.record_timeout(server, std::chrono::steady_clock::now());
  } else {
    health_.record_success(server);
  }
}

void MemcachedBackend::observe(memcached_st* handle, std::string_view key, memcached_return_t rc) {
  if (rc == MEMCACHED_TIMEOUT) {
    observe(server_of(handle, key), true);
  } else if (!health_.all_healthy() && server_answered(rc)) {
    observe(server_of(handle, key), false);
  }
}

Status MemcachedBackend::failure(memcached_st* handle, memcached_return_t rc,
                                 std::string_view operation, std::string_view key,
                                 std::size_t value_size) const {
  std::string where;
  if (std::size_t server = key.empty() ? kNoServer : server_of(handle, key); server != kNoServer) {
    where = " on " + servers_[server].display();
  }
  if (rc == MEMCACHED_E2BIG) {
    return Status(StatusCode::kResourceExhausted,
                  fmt::format("memcached {} '{}'{}: the value ({} bytes) is larger than the "
                              "server's item size limit (1 MB unless memcached runs with -I)",
                              operation, key, where, value_size));
  }
  return Status(code_for(rc), fmt::format("memcached {} '{}'{}: {}", operation, key, where,
                                          memcached_strerror(handle, rc)));
}

std::optional<std::int64_t> MemcachedBackend::exptime_of(Expiry expiry) const {
  return exptime_for(expiry, clock_->now(), SystemClock::instance().now());
}

// ---- storage calls ----

Result<std::optional<Bytes>> MemcachedBackend::get(std::string_view key) {
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  std::unique_ptr<char, FreeDeleter> value;
  std::size_t length = 0;
  memcached_return_t rc = call(m, key, [&] {
    std::uint32_t flags = 0;
    memcached_return_t r{};
    value.reset(memcached_get(m, key.data(), key.size(), &length, &flags, &r));
    return r;
  });
  if (rc == MEMCACHED_SUCCESS) {
    return std::optional<Bytes>(Bytes(std::string_view(value ? value.get() : "", length)));
  }
  if (rc == MEMCACHED_NOTFOUND) return std::optional<Bytes>();
  return failure(m, rc, "get", key);
}

Status MemcachedBackend::store(memcached_st* m, std::string_view key, std::string_view value,
                               std::int64_t exptime) {
  memcached_return_t rc = call(m, key, [&] {
    return memcached_set(m, key.data(), key.size(), value.data(), value.size(),
                         static_cast<time_t>(exptime), 0);
  });
  if (rc == MEMCACHED_SUCCESS) return {};
  // Django's rule: a set that failed must not leave the previous value to be served (the
  // cached-db session engine depends on it). Memcached already unlinks on E2BIG; other refusals
  // (out of memory) do not. After a transport failure there is no one to ask.
  if (server_answered(rc)) (void)memcached_delete(m, key.data(), key.size(), 0);
  return failure(m, rc, "set", key, value.size());
}

Status MemcachedBackend::set(std::string_view key, std::string_view value, Expiry expiry) {
  auto exptime = exptime_of(expiry);
  if (!exptime) return erase(key).status();
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  if (Status s = admit(lease->get(), key); !s.ok()) return s;
  return store(lease->get(), key, value, *exptime);
}

Result<bool> MemcachedBackend::add(std::string_view key, std::string_view value, Expiry expiry) {
  auto exptime = exptime_of(expiry);
  if (!exptime) {  // nothing retrievable would be stored; "succeeds" when the key is free
    auto exists = contains(key);
    if (!exists.ok()) return exists.status();
    return !*exists;
  }
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  memcached_return_t rc = call(m, key, [&] {
    return memcached_add(m, key.data(), key.size(), value.data(), value.size(),
                         static_cast<time_t>(*exptime), 0);
  });
  if (rc == MEMCACHED_SUCCESS) return true;
  if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS) return false;
  return failure(m, rc, "add", key, value.size());
}

Result<bool> MemcachedBackend::touch(std::string_view key, Expiry expiry) {
  auto exptime = exptime_of(expiry);
  if (!exptime) return erase(key);
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  memcached_return_t rc = call(m, key, [&] {
    return memcached_touch(m, key.data(), key.size(), static_cast<time_t>(*exptime));
  });
  if (rc == MEMCACHED_SUCCESS) return true;
  if (rc == MEMCACHED_NOTFOUND) return false;
  return failure(m, rc, "touch", key);
}

Result<bool> MemcachedBackend::erase(std::string_view key) {
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  memcached_return_t rc =
      call(m, key, [&] { return memcached_delete(m, key.data(), key.size(), 0); });
  if (rc == MEMCACHED_SUCCESS) return true;
  if (rc == MEMCACHED_NOTFOUND) return false;
  return failure(m, rc, "delete", key);
}

// flush_all on every server: memcached has no way to scope a clear to a prefix (neither does
// Django's memcached backend).
Status MemcachedBackend::clear() {
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_return_t rc = memcached_flush(lease->get(), 0);
  if (rc == MEMCACHED_SUCCESS) return {};
  return Status(code_for(rc), fmt::format("memcached flush_all failed on at least one server: {}",
                                          memcached_strerror(lease->get(), rc)));
}

namespace {

constexpr std::size_t kEnd = static_cast<std::size_t>(-1);

// Where each reply of a multi-get goes: first[key] is its first index, next[i] chains the
// repeats of keys[i] (a caller may ask for a key twice).
struct KeyIndex {
  explicit KeyIndex(std::span<const std::string_view> keys) : next(keys.size(), kEnd) {
    for (std::size_t i = keys.size(); i-- > 0;) {
      if (auto [it, inserted] = first.try_emplace(keys[i], i); !inserted) {
        next[i] = std::exchange(it->second, i);
      }
    }
  }
  std::unordered_map<std::string_view, std::size_t> first;
  std::vector<std::size_t> next;
};

// Reads every reply of the multi-get in flight on `m` into `out`; returns the final code.
memcached_return_t fetch_all(memcached_st* m, const KeyIndex& index,
                             std::vector<std::optional<Bytes>>& out) {
  // A caller-owned result: memcached_fetch_result frees a library-allocated one at the end.
  memcached_result_st storage;
  memcached_result_st* result = memcached_result_create(m, &storage);
  memcached_return_t rc = MEMCACHED_SUCCESS;
  while (memcached_fetch_result(m, result, &rc) != nullptr) {
    std::string_view key(memcached_result_key_value(result), memcached_result_key_length(result));
    auto it = index.first.find(key);
    if (it == index.first.end()) continue;
    Bytes value(std::string_view(memcached_result_value(result), memcached_result_length(result)));
    for (std::size_t i = it->second; i != kEnd; i = index.next[i]) out[i] = value;
  }
  memcached_result_free(result);
  return rc;
}

}  // namespace

// One multi-get for all keys: libmemcached sends one batch per server and reads the replies
// as they come.
Result<std::vector<std::optional<Bytes>>> MemcachedBackend::get_many(
    std::span<const std::string_view> keys) {
  std::vector<std::optional<Bytes>> out(keys.size());
  if (keys.empty()) return out;
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  std::vector<const char*> pointers(keys.size());
  std::vector<std::size_t> lengths(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (Status s = admit(m, keys[i]); !s.ok()) return s;
    pointers[i] = keys[i].data();
    lengths[i] = keys[i].size();
  }
  KeyIndex index(keys);
  memcached_return_t rc = memcached_mget(m, pointers.data(), lengths.data(), keys.size());
  if (rc == MEMCACHED_SERVER_MARKED_DEAD) {
    rc = memcached_mget(m, pointers.data(), lengths.data(), keys.size());
  }
  memcached_return_t fetched = fetch_all(m, index, out);
  if (rc == MEMCACHED_TIMEOUT || fetched == MEMCACHED_TIMEOUT) {
    observe(index_of(m, memcached_server_get_last_disconnect(m)), true);
  }
  if (rc != MEMCACHED_SUCCESS) return failure(m, rc, "get_many", "");
  if (fetched != MEMCACHED_END && fetched != MEMCACHED_SUCCESS && fetched != MEMCACHED_NOTFOUND) {
    return failure(m, fetched, "get_many", "");
  }
  return out;
}

// One set per item: with the binary protocol's quiet sets or NOREPLY, libmemcached cannot say
// which of the items failed, and the failed indices are the point of set_many (Django returns
// the failed keys so callers can react). Same-connection round trips are ~20-70 µs here.
Result<std::vector<std::size_t>> MemcachedBackend::set_many(std::span<const KeyValue> items,
                                                            Expiry expiry) {
  std::vector<std::size_t> failed;
  if (items.empty()) return failed;
  auto exptime = exptime_of(expiry);
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  Status last;
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string_view key = items[i].key;
    Status s = admit(m, key);
    if (s.ok() && exptime) s = store(m, key, items[i].value, *exptime);
    if (s.ok() && !exptime) {
      memcached_return_t rc =
          call(m, key, [&] { return memcached_delete(m, key.data(), key.size(), 0); });
      if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) s = failure(m, rc, "delete", key);
    }
    if (!s.ok()) {
      failed.push_back(i);
      last = std::move(s);
    }
  }
  // When nothing at all could be stored the store itself is failing: report that instead.
  if (failed.size() == items.size() && last.is_transient()) return last;
  return failed;
}

}  // namespace cachekit::memcached_internal

// ---- the factory ----

namespace cachekit {

namespace {

Status behave(memcached_st* m, memcached_behavior_t flag, std::uint64_t value, const char* name) {
  memcached_return_t rc = memcached_behavior_set(m, flag, value);
  if (rc == MEMCACHED_SUCCESS) return {};
  return invalid_argument_error(
      fmt::format("libmemcached refused {}={}: {}", name, value, memcached_strerror(m, rc)));
}

Status check_options(const MemcachedOptions& o) {
  if (o.servers.empty()) return invalid_argument_error("the memcached backend needs a server");
  if (o.connect_timeout.count() <= 0 || o.io_timeout.count() <= 0) {
    return invalid_argument_error("memcached timeouts must be positive");
  }
  if (o.pool_size == 0) return invalid_argument_error("pool_size must be at least 1");
  if (o.pool_wait.count() < 0) return invalid_argument_error("pool_wait must not be negative");
  if (o.down_after_failures == 0) {
    return invalid_argument_error("down_after_failures must be at least 1");
  }
  if (o.retry_after.count() <= 0) return invalid_argument_error("retry_after must be positive");
  return {};
}

// The master handle every pooled handle is cloned from.
Status configure(memcached_st* m, const MemcachedOptions& o,
                 const std::vector<memcached_internal::ServerAddress>& servers) {
  // libmemcached's retry and dead timeouts are whole seconds: round up, so a server is never
  // retried sooner than asked.
  auto retry = static_cast<std::uint64_t>((o.retry_after.count() + 999) / 1000);
  const std::pair<memcached_behavior_t, std::uint64_t> behaviours[] = {
      {MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1},
      {MEMCACHED_BEHAVIOR_KETAMA, 1},
      {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
      {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, static_cast<std::uint64_t>(o.connect_timeout.count())},
      {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, static_cast<std::uint64_t>(o.io_timeout.count())},
      {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, o.down_after_failures},
      {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry},
      {MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, retry},
      {MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, o.remove_failed_servers ? 1u : 0u},
  };
  for (const auto& [flag, value] : behaviours) {
    if (Status s = behave(m, flag, value, "behavior"); !s.ok()) return s;
  }
  for (const auto& server : servers) {
    memcached_return_t rc = server.unix_socket
                                ? memcached_server_add_unix_socket(m, server.host.c_str())
                                : memcached_server_add(m, server.host.c_str(), server.port);
    if (rc != MEMCACHED_SUCCESS) {
      return invalid_argument_error(fmt::format("cannot add memcached server {}: {}",
                                                server.display(), memcached_strerror(m, rc)));
    }
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<Backend>> make_memcached_backend(const MemcachedOptions& options) {
  if (Status s = check_options(options); !s.ok()) return s;
  std::vector<memcached_internal::ServerAddress> servers;
  for (const auto& text : options.servers) {
    auto address = memcached_internal::parse_server(text);
    if (!address.ok()) return address.status();
    servers.push_back(std::move(*address));
  }
  memcached_st* master = memcached_create(nullptr);
  if (master == nullptr) return internal_error("memcached_create failed");
  if (Status s = configure(master, options, servers); !s.ok()) {
    memcached_free(master);
    return s;
  }
  return std::shared_ptr<Backend>(
      std::make_shared<memcached_internal::MemcachedBackend>(options, std::move(servers), master));
}

}  // namespace cachekit
