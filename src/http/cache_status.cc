// The one place the page cache's Cache-Status member is spelled (RFC 9211 §2: a list member is
// the cache's name followed by `;`-separated parameters).
#include "cachekit/http/cache_status.h"

namespace cachekit::http {

std::string_view fwd_token(CacheStatus::Fwd fwd) noexcept {
  switch (fwd) {
    case CacheStatus::Fwd::kNone:
      return "";
    case CacheStatus::Fwd::kUriMiss:
      return "uri-miss";
    case CacheStatus::Fwd::kMiss:
      return "miss";
    case CacheStatus::Fwd::kVaryMiss:
      return "vary-miss";
    case CacheStatus::Fwd::kStale:
      return "stale";
    case CacheStatus::Fwd::kRequest:
      return "request";
    case CacheStatus::Fwd::kMethod:
      return "method";
    case CacheStatus::Fwd::kBypass:
      return "bypass";
  }
  return "";
}

std::string render_cache_status(const CacheStatus& status) {
  std::string out(kCacheStatusName);
  if (status.is_hit()) {
    out += "; hit";
  } else {
    out += "; fwd=";
    out += fwd_token(status.fwd);
    if (status.fwd_status) {
      out += "; fwd-status=";
      out += std::to_string(*status.fwd_status);
    }
  }
  if (!status.detail.empty()) {
    out += "; detail=";
    out += status.detail;
  }
  if (status.stored) out += "; stored";
  if (status.ttl) {
    out += "; ttl=";
    out += std::to_string(*status.ttl);
  }
  if (status.collapsed) out += "; collapsed";
  return out;
}

}  // namespace cachekit::http
