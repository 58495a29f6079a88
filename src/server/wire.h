#pragma once
// The byte-level parts of serving HTTP/1.1 that need no Beast: the response head writer,
// the Date header, request ids and request-target splitting. Kept out of server.cc so they
// compile fast and are unit-tested on their own. Functions are thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "cachekit/http/message.h"

namespace cachekit::server::detail {

struct HeadParams {
  std::string_view request_id{};  // echoed as X-Request-Id unless the response has one
  bool keep_alive = true;         // false: "Connection: close"
  bool http10 = false;            // a keep-alive HTTP/1.0 client needs "Connection: keep-alive"
  bool head_request = false;      // HEAD: Content-Length of the GET body, no body bytes
};

// True when a response with this status carries a body (not 1xx, 204 or 304).
[[nodiscard]] bool status_has_body(int status) noexcept;

// The number of body bytes the server writes for `response` (0 for HEAD and bodiless statuses).
[[nodiscard]] std::size_t body_bytes_to_write(const http::Response& response,
                                              const HeadParams& params) noexcept;

// Replaces `out` with the status line and header block (ending in an empty line) of
// `response`. The server owns framing: the response's Content-Length, Transfer-Encoding,
// Connection and Keep-Alive fields are replaced by its own, and a field whose name or value
// contains CR, LF or NUL is dropped (response splitting). Date is added unless present.
void write_head(std::string& out, const http::Response& response, const HeadParams& params);

// The current time as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), formatted at most
// once per second per thread.
[[nodiscard]] std::string_view http_date();

// Replaces `out` with a new request id: 16 hex digits, unique within the process.
void new_request_id(std::string& out);
// True for a client-sent X-Request-Id worth echoing: 1..128 of [A-Za-z0-9._:-].
[[nodiscard]] bool acceptable_request_id(std::string_view id) noexcept;

// Splits a request-target into path and query. An absolute-form target
// ("http://host/p?q") is reduced to its path; an empty path becomes "/".
void split_target(std::string_view target, std::string& path, std::string& query);

}  // namespace cachekit::server::detail
