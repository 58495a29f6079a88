#pragma once
// Lease: a short-lived claim on a name, held in a cache's store, so that one process of a fleet
// (one thread of a process, too) does a piece of work — computes a missing key, refreshes a
// page, runs a scheduled job — while the others wait for its result or serve what they have.
//
//   if (auto lease = cachekit::Lease::try_acquire(cache, "lease:product:1", 10s)) {
//     if (lease->held()) { compute and store; }   // released when `lease` goes out of scope
//     else { another holder is at work: wait for the value or serve the stale one }
//   } else { the store failed: fail open, compute here }
//
// The claim is an add() of a random token under the name, with the lease's lifetime as its
// timeout: the store's own "only if missing" makes it exclusive (Redis SET NX PX, memcached add,
// SQL INSERT ... ON CONFLICT DO NOTHING, locmem's lock), and a holder that dies — SIGKILL, a
// lost machine — leaves a claim that expires on its own. release() and renew() act only while
// the stored token is still this lease's (Backend::erase_if_value / a checked touch), so a
// holder that outlived its lease never frees or extends the next holder's.
//
// The name is a caller key of `cache` (its prefix and version apply), so leases live beside the
// data they guard; give them their own prefix ("lease:...") to keep them apart from it. On a
// store that does not keep values (dummy) every acquire is held: nothing to coordinate.
//
// Thread-safety: a Lease object is used by one thread; any number of threads and processes may
// contend for one name.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "cachekit/status.h"

namespace cachekit {

class Cache;

class Lease {
 public:
  // Tries once to claim `name` for `ttl` (at least 1 ms). The Lease says whether it was held;
  // an error is the store's (the caller decides: usually, fail open and do the work).
  static Result<Lease> try_acquire(Cache& cache, std::string_view name,
                                   std::chrono::milliseconds ttl);

  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();  // release()

  // True when this process holds the claim (it did when acquired; it may have expired since).
  [[nodiscard]] bool held() const noexcept { return held_; }
  [[nodiscard]] const std::string& token() const noexcept { return token_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  // Extends a held claim to `ttl` from now, if the stored token is still this lease's. False
  // when it is not (expired, taken over) or the store failed; the lease is then no longer held.
  bool renew(std::chrono::milliseconds ttl);
  // Gives the claim up now if it is still this lease's. Never throws; idempotent.
  void release() noexcept;

  // A fresh random token: 128 bits as hex, unique across processes and machines.
  static std::string make_token();

 private:
  Lease(Cache* cache, std::string name, std::string token, bool held)
      : cache_(cache), name_(std::move(name)), token_(std::move(token)), held_(held) {}

  Cache* cache_ = nullptr;
  std::string name_;
  std::string token_;
  bool held_ = false;
};

}  // namespace cachekit
