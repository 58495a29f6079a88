#pragma once
// The checks a request passes before the server routes it, kept free of Beast so that they
// compile fast, are unit-tested on their own and are shared with the fuzz target:
//   - message framing (RFC 9112 §6): which Transfer-Encoding values the server accepts;
//   - the Host allow-list (Django's ALLOWED_HOSTS);
//   - the client allow-list of /metrics;
//   - the default connection limit, derived from the process's descriptor limit.
// Functions are pure (default_max_connections() reads getrlimit) and thread-safe.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cachekit::server::detail {

// The verdict on one Transfer-Encoding field value: 0 when it is exactly the chunked coding
// (OWS around it allowed); 501 when it names codings the server does not decode ("gzip",
// "gzip, chunked", "xchunked"); 400 when it is not a well-formed coding list ("chunked, ",
// "chunked;x", "chunked, chunked", "chunked, identity").
[[nodiscard]] int transfer_encoding_verdict(std::string_view value) noexcept;

// True when `value` is one Content-Length: 1 to 18 decimal digits, nothing else (no sign, no
// list, no OWS inside).
[[nodiscard]] bool plain_content_length(std::string_view value) noexcept;

// Splits a Host value into its lower-cased name and its port ("" when absent), like Django's
// split_domain_port: "[::1]:80" → "[::1]", "80". False when the value is not a host
// (empty, bad characters, a non-numeric port).
[[nodiscard]] bool split_host(std::string_view host, std::string& name, std::string& port);

// True when `host` (a Host field value) matches one of `allowed`: "*" matches any host,
// ".example.com" matches example.com and every subdomain, anything else the name exactly
// (case-insensitive, port ignored, a trailing dot ignored). An empty `allowed` means the
// development default: ".localhost", "127.0.0.1" and "[::1]".
[[nodiscard]] bool host_allowed(std::string_view host, const std::vector<std::string>& allowed);

// True when a client at `address` (an IP literal as Asio prints it) may read the metrics:
// `allowed` holds IP literals, "loopback" or "*".
[[nodiscard]] bool client_allowed(std::string_view address, bool is_loopback,
                                  const std::vector<std::string>& allowed);

// The connection limit used when ServerOptions::max_connections is 0: the soft RLIMIT_NOFILE
// minus a quarter of it (at least 64) for backends, files and the listener; at least 16.
[[nodiscard]] std::size_t default_max_connections() noexcept;

// True when `location` is a path a browser resolves against the same origin: it starts with
// one '/', not "//" nor "/\", and has no backslash, control character or space anywhere
// (browsers treat '\' as '/' and strip tabs and newlines).
[[nodiscard]] bool same_origin_path(std::string_view location) noexcept;

}  // namespace cachekit::server::detail
