// Forwarding rules and the proxy's handler (proxy.h).

#include "cachekit/proxy/proxy.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "cachekit/http/cache_key.h"
#include "http/text.h"
#include "server/request_checks.h"

namespace cachekit::proxy {

namespace {

// RFC 9110 §7.6.1 and the fields meant for the proxy itself.
constexpr std::array<std::string_view, 9> kHopByHop = {
    "Connection", "Keep-Alive",          "Proxy-Connection",  "TE", "Trailer", "Transfer-Encoding",
    "Upgrade",    "Proxy-Authorization", "Proxy-Authenticate"};

constexpr std::array<std::string_view, 3> kForwarded = {"X-Forwarded-For", "X-Forwarded-Proto",
                                                        "X-Forwarded-Host"};

bool is_loopback(std::string_view address) {
  return address.starts_with("127.") || address == "::1";
}

}  // namespace

void strip_hop_by_hop(http::Headers& headers) {
  // The fields Connection names go too (read before Connection itself is erased).
  std::string connection = http::detail::joined(headers, "Connection");
  for (std::string_view token : http::detail::split_list(connection)) headers.erase(token);
  for (std::string_view name : kHopByHop) headers.erase(name);
}

http::Request forwarded_request(const http::Request& request, const ProxyOptions& options) {
  http::Request out;
  out.method = request.method;
  out.scheme = request.scheme;
  out.path = request.path;
  out.query = request.query;
  out.body = request.body;
  out.client_address = request.client_address;
  out.request_id = request.request_id;
  out.headers = request.headers;  // iterating would not count as reading Cookie; copying neither
  strip_hop_by_hop(out.headers);
  std::string forwarded_for;
  if (options.trust_forwarded) {
    forwarded_for = http::detail::joined(out.headers, "X-Forwarded-For");
  } else {
    for (std::string_view name : kForwarded) out.headers.erase(name);
  }
  if (!request.client_address.empty()) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for += request.client_address;
  }
  if (!forwarded_for.empty()) out.headers.set("X-Forwarded-For", std::move(forwarded_for));
  if (!out.headers.contains("X-Forwarded-Proto")) {
    out.headers.set("X-Forwarded-Proto", request.scheme);
  }
  if (!out.headers.contains("X-Forwarded-Host") && !request.host().empty()) {
    out.headers.set("X-Forwarded-Host", std::string(request.host()));
  }
  // Edge Architecture: tells the origin this is a surrogate it may target with
  // Surrogate-Control ("max-age=60;cachekit").
  out.headers.add("Surrogate-Capability", "cachekit=\"Surrogate/1.0\"");
  return out;
}

http::CachedHandler caching_handler(Upstreams& upstreams,
                                    std::shared_ptr<const http::PageCache> page_cache,
                                    ProxyOptions options) {
  const http::PageCache* cache = page_cache.get();
  http::Handler forward = [&upstreams, cache,
                           options = std::move(options)](http::Request& request) -> http::Response {
    if (request.method == "PURGE" && !options.purge_allowed_clients.empty()) {
      if (!server::detail::client_allowed(request.client_address,
                                          is_loopback(request.client_address),
                                          options.purge_allowed_clients)) {
        return http::Response::text("Forbidden", 403);
      }
      auto uri = http::cache_uri(request, cache->options().allowed_hosts);
      bool removed = uri && cache->invalidate(*uri);
      return removed ? http::Response::text("Purged\n", 200)
                     : http::Response::text("Not cached\n", 404);
    }
    http::Response response = upstreams.send(forwarded_request(request, options));
    // Content-Length stays (the server frames what it sends, and a HEAD states the GET's).
    strip_hop_by_hop(response.headers);
    return response;
  };
  return http::CachedHandler{std::move(forward), std::move(page_cache)};
}

}  // namespace cachekit::proxy
