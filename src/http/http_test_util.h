#pragma once
// Shared pieces of the http tests: requests, a Cache on an injected clock, and Backend
// decorators that fail every call or hide the keys() capability.

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/http/message.h"

namespace cachekit::http::testing {

inline Request make_request(std::string method, std::string target,
                            std::vector<std::pair<std::string, std::string>> headers = {},
                            std::string host = "www.example.com") {
  Request r;
  r.method = std::move(method);
  auto q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  if (!host.empty()) r.headers.add("Host", std::move(host));
  for (auto& [n, v] : headers) r.headers.add(n, std::move(v));
  return r;
}

inline Request get(std::string target, std::vector<std::pair<std::string, std::string>> h = {}) {
  return make_request("GET", std::move(target), std::move(h));
}

// A Backend that fails every call with kUnavailable, as a store that is down does.
class FailingBackend final : public Backend {
 public:
  FailingBackend() { info_.name = "failing"; }
  const BackendInfo& info() const noexcept override { return info_; }
  Result<std::optional<Bytes>> get(std::string_view) override { return down(); }
  Status set(std::string_view, std::string_view, Expiry) override { return down(); }
  Result<bool> add(std::string_view, std::string_view, Expiry) override { return down(); }
  Result<bool> touch(std::string_view, Expiry) override { return down(); }
  Result<bool> erase(std::string_view) override { return down(); }
  Result<std::int64_t> incr(std::string_view, std::int64_t) override { return down(); }
  Status clear() override { return down(); }
  Result<Ttl> ttl(std::string_view) override { return down(); }
  Result<std::vector<std::string>> keys(std::string_view) override { return down(); }
  std::atomic<int> calls{0};

 private:
  Status down() {
    ++calls;
    return unavailable_error("connection refused (test)");
  }
  BackendInfo info_;
};

// Forwards every primitive to another backend; the decorators below override what they change.
class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}
  const BackendInfo& info() const noexcept override { return inner_->info(); }
  Result<std::optional<Bytes>> get(std::string_view k) override { return inner_->get(k); }
  Status set(std::string_view k, std::string_view v, Expiry e) override {
    return inner_->set(k, v, e);
  }
  Result<bool> add(std::string_view k, std::string_view v, Expiry e) override {
    return inner_->add(k, v, e);
  }
  Result<bool> touch(std::string_view k, Expiry e) override { return inner_->touch(k, e); }
  Result<bool> erase(std::string_view k) override { return inner_->erase(k); }
  Result<std::int64_t> incr(std::string_view k, std::int64_t d) override {
    return inner_->incr(k, d);
  }
  Status clear() override { return inner_->clear(); }
  Result<Ttl> ttl(std::string_view k) override { return inner_->ttl(k); }

 protected:
  std::shared_ptr<Backend> inner_;
};

// Forwards to another backend but cannot list keys (as memcached cannot).
class NoKeysBackend final : public ForwardingBackend {
 public:
  explicit NoKeysBackend(std::shared_ptr<Backend> inner) : ForwardingBackend(std::move(inner)) {
    info_ = inner_->info();
    info_.name = "nokeys";
    info_.supports_keys = false;
  }
  const BackendInfo& info() const noexcept override { return info_; }

 private:
  BackendInfo info_;
};

// Forwards every call to another backend and counts keys() (store listings), so a test can
// prove a path never lists the store.
class KeysCountingBackend final : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  Result<std::vector<std::string>> keys(std::string_view pattern) override {
    ++keys_calls;
    return inner_->keys(pattern);
  }
  std::atomic<int> keys_calls{0};
};

// A locmem Cache whose store, façade and page cache all read one ManualClock.
struct ClockedCache {
  explicit ClockedCache(bool hide_keys = false) {
    LocmemOptions o;
    o.max_entries = 10000;
    o.clock = &clock;
    backend = make_locmem_backend(o);
    if (hide_keys) backend = std::make_shared<NoKeysBackend>(backend);
    CacheOptions co;
    co.clock = &clock;
    cache = std::make_unique<Cache>(backend, co);
  }
  ManualClock clock;
  std::shared_ptr<Backend> backend;
  std::unique_ptr<Cache> cache;
};

}  // namespace cachekit::http::testing
