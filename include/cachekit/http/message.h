#pragma once
// HTTP messages as cachekit's page cache and server see them: framework-neutral value types.
//
// Header names compare case-insensitively and keep their order and spelling; a field may
// repeat (Set-Cookie). Bodies are cachekit::Bytes, so a response served from the page cache
// shares the stored bytes instead of copying them. These are plain values: safe to read from
// many threads, not to mutate concurrently.
//
// Looking up Cookie (Request::cookie(), or headers.get / get_all / contains("Cookie")) is
// recorded, as Django's request.COOKIES is: the response then depends on the cookie, and the
// page cache adds `Vary: Cookie` to it so that no user is served another user's page.
// Iterating the fields does not count (the page cache itself reads them that way).

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cachekit/bytes.h"
#include "cachekit/http/cache_status.h"

namespace cachekit::http {

// ASCII case-insensitive equality, as HTTP field names need.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  Headers() = default;
  Headers(const Headers& other) : fields_(other.fields_), cookie_read_(other.cookie_read()) {}
  Headers(Headers&& other) noexcept
      : fields_(std::move(other.fields_)), cookie_read_(other.cookie_read()) {}
  Headers& operator=(const Headers& other);
  Headers& operator=(Headers&& other) noexcept;
  ~Headers() = default;

  // The first value of `name`, or nullopt.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept;
  // Every value of `name`, in order.
  [[nodiscard]] std::vector<std::string_view> get_all(std::string_view name) const;
  [[nodiscard]] bool contains(std::string_view name) const noexcept {
    return get(name).has_value();
  }
  // Replaces every field called `name` with one field.
  void set(std::string_view name, std::string value);
  // Appends one more field called `name`.
  void add(std::string_view name, std::string value);
  // Removes every field called `name`; returns how many were removed.
  std::size_t erase(std::string_view name);

  // True once Cookie was looked up through get(), get_all() or contains() — present or not
  // — on this object or the one it was copied from.
  [[nodiscard]] bool cookie_read() const noexcept {
    return cookie_read_.load(std::memory_order_relaxed);
  }

  [[nodiscard]] const std::vector<Field>& fields() const noexcept { return fields_; }
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
  [[nodiscard]] auto begin() const noexcept { return fields_.begin(); }
  [[nodiscard]] auto end() const noexcept { return fields_.end(); }

 private:
  void note_lookup(std::string_view name) const noexcept;

  std::vector<Field> fields_;
  // Written by const lookups, possibly from several threads: a relaxed atomic flag.
  mutable std::atomic<bool> cookie_read_{false};
};

struct PageLookup;  // page_cache_impl.h

struct Request {
  std::string method = "GET";  // upper case
  std::string scheme = "http";
  std::string path = "/";  // as sent (percent-encoding kept), without the query
  std::string query;       // the raw query string, without '?'
  Headers headers;
  std::string body;
  // Filled by the router: `/store/products/{id}/` matched against `/store/products/7/` gives
  // {"id": "7"}.
  std::map<std::string, std::string, std::less<>> path_params;
  std::string request_id;  // set by the server for the access log
  // The connected peer's IP address as the server saw it ("127.0.0.1", "::1"; "" outside a
  // server). A reverse proxy in front makes this the proxy's address (see X-Forwarded-For).
  std::string client_address;
  // What PageCache::fetch_and_keep() found when it was a miss, so that the PageCache's serve()
  // for this request continues from it instead of looking the page up again. Opaque.
  std::shared_ptr<PageLookup> page_lookup{};

  // The decoded value of the first query parameter `name` (`+` and %XX decoded), or nullopt.
  [[nodiscard]] std::optional<std::string> query_param(std::string_view name) const;
  // The value of cookie `name` from the Cookie header(s), or nullopt. Records the read
  // (cookies_read()): the page cache then varies the response on Cookie.
  [[nodiscard]] std::optional<std::string> cookie(std::string_view name) const;
  // True once the Cookie header was read through cookie() or the headers' accessors.
  [[nodiscard]] bool cookies_read() const noexcept { return headers.cookie_read(); }
  // The Host header ("" when absent).
  [[nodiscard]] std::string_view host() const noexcept;
  // path + ("?" + query when non-empty).
  [[nodiscard]] std::string target() const;
  // scheme://host/path?query — the URI the page cache keys on.
  [[nodiscard]] std::string absolute_uri() const;
};

// The rest of a body produced while the response is being sent — a proxied answer too large
// to hold whole. The server writes Response::body first, then every piece next() yields, until
// it returns false; next() runs on a handler thread (it may block on a socket). `length` is the
// whole body's size (body + the stream) when known: the server then sends Content-Length, else
// chunked (to HTTP/1.0 clients: until the connection closes). When next() throws, the
// connection is closed before the body's end, so the client sees a truncated answer, never a
// complete-looking one. A page cache never stores a response with a stream.
class BodyStream {
 public:
  BodyStream() = default;
  virtual ~BodyStream() = default;
  BodyStream(const BodyStream&) = delete;
  BodyStream& operator=(const BodyStream&) = delete;
  // Replaces `piece` with the next bytes of the body (possibly none); false at the end.
  virtual bool next(std::string& piece) = 0;
  [[nodiscard]] virtual std::optional<std::uint64_t> length() const noexcept = 0;
};

struct Response {
  int status = 200;
  Headers headers;
  Bytes body;
  // Set for a body that continues after `body` (see BodyStream); nullptr almost always.
  std::shared_ptr<BodyStream> stream{};
  // What the page cache did with this response's request (hit, why it went forward, stored,
  // ...), set by PageCache alongside the Cache-Status member it renders from it; nullopt when
  // no page cache saw the request. For counting outcomes without parsing the header.
  std::optional<CacheStatus> cache_status{};

  // A response with `Content-Type: text/plain; charset=utf-8`.
  static Response text(std::string body, int status = 200);
  // A response with `Content-Type: text/html; charset=utf-8`. Escape what you interpolate with
  // html_escape().
  static Response html(std::string body, int status = 200);
  // `Content-Type: application/json`, the serialized value.
  static Response json(const nlohmann::json& value, int status = 200);
  // A redirect with a Location header (301 permanent, 302 found, ...).
  static Response redirect(std::string location, int status = 302);
};

// &, <, >, " and ' replaced by entities: safe to put in HTML text and attribute values.
[[nodiscard]] std::string html_escape(std::string_view text);
// The reason phrase of a status code ("OK", "Not Found", ...), or "" when unknown.
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

}  // namespace cachekit::http
