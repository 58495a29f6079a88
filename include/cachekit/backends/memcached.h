#pragma once
// The memcached backend: one logical cache spread over one or more memcached servers with
// consistent (ketama) hashing, on libmemcached 1.1.4 and the binary protocol.
//
// Key → server mapping: libmemcached's MEMCACHED_BEHAVIOR_KETAMA = 1 (distribution
// MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA, unweighted, default key hash). Another client shares
// the same mapping only with the same setting and the same server names, written the same way
// ("10.0.0.1:11211" and "cache1:11211" are different points on the ring) — e.g. pylibmc with
// behaviors={"ketama": True}. docs/memcached.md has the details.
//
// What memcached cannot do, and what this backend does about it:
//  - keys: at most 250 bytes, no spaces or control characters. info() declares
//    KeyPolicy::kRefuse, so the Cache façade refuses such keys with Django's message.
//  - values above the server's item limit (1 MB by default): set() fails with
//    kResourceExhausted and removes the old value, so a stale one is never served (Django).
//  - clear() is flush_all on every server: it empties the servers, not just this cache's prefix.
//  - keys(pattern) is not supported (kUnimplemented); stats() reports each server's counters.
//  - expiry has one-second resolution on the server's own clock; an entry lives between its
//    timeout and about two seconds longer, never shorter (see docs/memcached.md).
//  - ttl(), and incr with a negative delta or on a negative value, use memcached's meta
//    protocol (memcached ≥ 1.6) on a small side connection: the classic protocols can neither
//    report a remaining lifetime nor do signed arithmetic. incr is signed 64-bit, keeps the
//    expiry, and answers kNotFound / kFailedPrecondition / kOutOfRange like every backend.
//
// Failures: a call waits at most pool_wait for a handle, then connect_timeout + io_timeout
// for each server it needs (set_many/get_many: until the server is skipped). A server that refuses
// connections is ejected from the ring (its keys move to the others) and retried after
// retry_after; a server that stops answering is skipped (its keys fail fast with
// kUnavailable) after down_after_failures timeouts in a row, and retried after retry_after.
// Thread-safe: calls borrow one of at most pool_size libmemcached handles.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/backend.h"
#include "cachekit/clock.h"

namespace cachekit {

struct MemcachedOptions {
  // "host:port", "host" (port 11211), "[v6addr]:port", "unix:/path" or "/path".
  std::vector<std::string> servers{};
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds io_timeout{200};  // per network wait (send or receive)
  unsigned pool_size = 8;  // libmemcached handles (each one connects to every server)
  std::chrono::milliseconds pool_wait{200};  // longest wait for a free handle
  unsigned down_after_failures = 2;          // failures in a row before a server is skipped
  // How long a failed server is left alone. libmemcached counts whole seconds: its ejection
  // retry is rounded up to the next second (at least 1 s).
  std::chrono::milliseconds retry_after{2000};
  bool remove_failed_servers = true;  // eject refused servers from the ring
  const Clock* clock = nullptr;       // nullptr: SystemClock
};

// "a:1;b:2,unix:/s" or "memcached://a:1,b:2" → {"a:1", "b:2", "unix:/s"}. Each part is checked;
// kInvalidArgument names the first bad one (empty host, bad port, ...).
[[nodiscard]] Result<std::vector<std::string>> parse_memcached_locations(std::string_view text);

// Fails with kInvalidArgument for bad options or server addresses. Connects lazily, so a server
// that is down at startup is not an error here.
[[nodiscard]] Result<std::shared_ptr<Backend>> make_memcached_backend(
    const MemcachedOptions& options);

}  // namespace cachekit
