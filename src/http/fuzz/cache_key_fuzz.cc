// libFuzzer target: arbitrary bytes become a Request (method, Host, target, headers) and a
// Response (status, Vary, Cache-Control, other headers, body), which go through the key
// functions, the header helpers, the storage rules, and serve/fetch/update/invalidate on a
// locmem page cache — plus arbitrary bytes written straight into a page entry. Beyond "no
// crash, no sanitizer report" it checks the safety invariants: a hit never replays
// Set-Cookie, never serves a Vary: * response, and never answers an unkeyable request.
//
// Build: see src/http/CMakeLists.txt (CACHEKIT_FUZZ=ON, clang only).

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/http/cache_control.h"
#include "cachekit/http/cache_key.h"
#include "cachekit/http/cache_policy.h"
#include "cachekit/http/page_cache.h"
#include "http/entry.h"

namespace {

using namespace cachekit;
using namespace cachekit::http;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

struct World {
  ManualClock clock;
  std::unique_ptr<Cache> cache;
  std::unique_ptr<PageCache> pages;
  World() {
    LocmemOptions lo;
    lo.max_entries = 512;
    lo.clock = &clock;
    CacheOptions co;
    co.clock = &clock;
    co.max_error_logs_per_second = 0;
    cache = std::make_unique<Cache>(make_locmem_backend(lo), co);
    pages =
        std::make_unique<PageCache>(PageCacheOptions{.cache = cache.get(),
                                                     .key_prefix = "fz",
                                                     .coalesce_wait = std::chrono::milliseconds(0),
                                                     .clock = &clock});
  }
};

World& world() {
  static World* w = new World();  // lives for the whole run; never torn down mid-input
  return *w;
}

std::string field(FuzzedDataProvider& in, std::size_t max = 64) {
  return in.ConsumeRandomLengthString(max);
}

Request make_request(FuzzedDataProvider& in) {
  static const char* kMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  Request r;
  r.method = in.ConsumeBool() ? kMethods[in.ConsumeIntegralInRange<int>(0, 6)] : field(in, 8);
  r.scheme = in.ConsumeBool() ? "http" : (in.ConsumeBool() ? "https" : field(in, 8));
  r.path = "/" + field(in);
  r.query = field(in);
  if (in.ConsumeBool()) r.headers.add("Host", in.ConsumeBool() ? "www.example.com" : field(in));
  static const char* kNames[] = {
      "Accept-Language",   "Cookie",   "Authorization",   "If-None-Match",
      "If-Modified-Since", "If-Match", "Accept_Language", "Host"};
  for (int n = in.ConsumeIntegralInRange<int>(0, 6); n > 0; --n) {
    std::string name =
        in.ConsumeBool() ? kNames[in.ConsumeIntegralInRange<int>(0, 7)] : field(in, 16);
    r.headers.add(name, field(in));
  }
  return r;
}

Response make_response(FuzzedDataProvider& in) {
  static const char* kNames[] = {"Vary",       "Cache-Control", "Set-Cookie",    "Expires",
                                 "Date",       "ETag",          "Last-Modified", "Age",
                                 "Connection", "Cache-Status"};
  Response r;
  r.status = in.ConsumeIntegralInRange<int>(0, 700);
  for (int n = in.ConsumeIntegralInRange<int>(0, 6); n > 0; --n) {
    std::string name =
        in.ConsumeBool() ? kNames[in.ConsumeIntegralInRange<int>(0, 9)] : field(in, 16);
    r.headers.add(name, field(in));
  }
  r.body = Bytes(field(in, 512));
  return r;
}

void exercise_helpers(const Request& req, const Response& res) {
  auto uri = cache_uri(req);
  auto list = vary_header_list(res);
  for (const std::string& name : list) (void)request_header_value(req, name);
  if (uri) {
    (void)cache_header_key("p", *uri);
    (void)cache_page_key("p", req.method, *uri, req, list);
  }
  Response patched = res;
  patch_cache_control(patched, parse_cache_control(res.headers.get("Cache-Control").value_or("")));
  patch_vary_headers(patched, {"Cookie", "Accept-Language"});
  (void)get_max_age(patched);
  (void)has_vary_header(patched, "cookie");
  (void)get_conditional_response(req, res);
  (void)parse_http_date(res.headers.get("Expires").value_or(""));
  (void)parse_etags(req.headers.get("If-None-Match").value_or(""));
  (void)storability(req, res, {}, world().clock.now());
}

void check_hit(const Request& req, const std::optional<Response>& hit) {
  if (!hit) return;
  require(cache_uri(req).has_value());
  require(!hit->headers.contains("Set-Cookie"));
  auto vary = vary_header_list(*hit);
  require(vary.empty() || vary.front() != "*");
  require(hit->status == 304 || hit->status == 412 || (hit->status >= 200 && hit->status < 500));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  World& w = world();
  Request req = make_request(in);
  Response res = make_response(in);
  exercise_helpers(req, res);

  w.clock.advance(std::chrono::milliseconds(in.ConsumeIntegralInRange<int>(0, 700000)));
  Response served = w.pages->serve(req, [&res](Request&) { return res; });
  // Our Cache-Status member is the last one (appended after any the handler's response
  // carried, which the fuzzer may have filled with look-alikes).
  std::string status(served.headers.get("Cache-Status").value_or(""));
  std::size_t ours = status.rfind("cachekit;");
  if (ours == std::string::npos || status.compare(ours, 19, "cachekit; hit; ttl=") != 0) {
    require(served.status == res.status && served.body == res.body);  // the handler's own
  } else {
    check_hit(req, served);
  }
  check_hit(req, w.pages->fetch(req));

  Response updated = make_response(in);
  w.pages->update(req, updated);
  check_hit(req, w.pages->fetch(req));

  // Arbitrary bytes where a page entry lives must read as a miss, never crash.
  if (auto key = get_cache_key(req, *w.cache, {.key_prefix = "fz"}, "GET")) {
    w.cache->set(*key, field(in, 256), 60);
    check_hit(req, w.pages->fetch(req));
  }
  (void)cachekit::http::detail::decode_entry(Bytes(field(in, 256)));
  if (in.ConsumeBool()) (void)w.pages->invalidate(req.absolute_uri());
  if (in.ConsumeIntegralInRange<int>(0, 255) == 0) (void)w.pages->invalidate_all();
  return 0;
}
