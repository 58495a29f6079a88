#pragma once
// Shared pieces of the http tests: requests, and a Cache on an injected clock whose store can
// hide the keys() capability.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/http/message.h"
#include "support/backend_wrapper.h"

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

// The fault-injecting decorator (support/backend_wrapper.h), under the names the http tests use.
using ::cachekit::testing::BackendWrapper;
using ::cachekit::testing::BackendWrapperOptions;
using ::cachekit::testing::Op;

// A locmem Cache whose store, façade and page cache all read one ManualClock.
struct ClockedCache {
  explicit ClockedCache(bool hide_keys = false) {
    LocmemOptions o;
    o.max_entries = 10000;
    o.clock = &clock;
    backend = make_locmem_backend(o);
    if (hide_keys) {
      backend = std::make_shared<BackendWrapper>(
          backend, BackendWrapperOptions{.name = "nokeys", .hide_keys = true});
    }
    CacheOptions co;
    co.clock = &clock;
    cache = std::make_unique<Cache>(backend, co);
  }
  ManualClock clock;
  std::shared_ptr<Backend> backend;
  std::unique_ptr<Cache> cache;
};

}  // namespace cachekit::http::testing
