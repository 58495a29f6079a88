// Redis URLs, following redis-py's grammar (which Django's LOCATION uses) with two
// deliberate differences: anything not understood is refused instead of ignored — a
// misspelt query parameter would otherwise silently connect to database 0 — and
// "redis://secret@host" (userinfo without ':') is refused as ambiguous: some clients read it
// as a password, others as a user name. Messages never contain the password.
#include "backends/redis/url.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <limits>
#include <optional>

#include "cachekit/redact.h"
#include "core/text.h"

namespace cachekit::redis_internal {
namespace {

constexpr std::string_view kExamples =
    "expected redis://[[user]:password@]host[:port][/db] or unix:///path/to/socket[?db=N]";

// The problem for messages about a URL that carries a secret: a password containing '/', '?' or
// ',' is cut apart by the parser, so a fragment quoted in the problem may be part of it.
std::string without_quoted_fragments(std::string_view problem) {
  std::string out;
  bool quoted = false;
  for (char c : problem) {
    if (c == '"') {
      out += quoted ? "***\"" : "\"";
      quoted = !quoted;
    } else if (!quoted) {
      out += c;
    }
  }
  return out;
}

// `invalid Redis URL "<url, password masked>": <problem>`.
Status url_error(std::string_view url, std::string_view problem) {
  const std::string shown = redact(url);
  return invalid_argument_error(
      fmt::format("invalid Redis URL \"{}\": {}", shown,
                  shown == url ? std::string(problem) : without_quoted_fragments(problem)));
}

std::optional<std::string> percent_decode(std::string_view text) {
  return cachekit::text::percent_decode(text, cachekit::text::kStrictUrl);
}

std::optional<int> parse_int(std::string_view text, int min, int max) {
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return {};
  if (value < min || value > max) return {};
  return value;
}

// Builds an Endpoint piece by piece; the first problem found is kept.
class Parser {
 public:
  explicit Parser(std::string_view url) : url_(url) {}

  Result<Endpoint> parse() {
    if (!parse_parts()) return error_;
    return endpoint_;
  }

 private:
  bool parse_parts() {
    auto scheme_end = url_.find("://");
    if (scheme_end == std::string_view::npos) return fail(std::string(kExamples));
    std::string scheme = cachekit::text::to_lower(url_.substr(0, scheme_end));
    if (scheme == "rediss") {
      return fail(
          "rediss:// (TLS) is not supported: hiredis 0.14 has no TLS; reach the server "
          "through a local TLS tunnel (e.g. stunnel) with redis://");
    }
    if (scheme != "redis" && scheme != "unix") {
      return fail(fmt::format("unsupported scheme \"{}\"; {}", scheme, kExamples));
    }
    std::string_view rest = url_.substr(scheme_end + 3);
    if (rest.find('#') != std::string_view::npos) return fail("a fragment ('#') is not allowed");
    auto query_start = rest.find('?');
    std::string_view query =
        query_start == std::string_view::npos ? std::string_view() : rest.substr(query_start + 1);
    rest = rest.substr(0, query_start);
    auto path_start = rest.find('/');
    std::string_view authority = rest.substr(0, path_start);
    std::string_view path =
        path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    if (!userinfo(authority)) return false;
    bool ok = scheme == "unix" ? unix_socket(authority, path) : tcp(authority, path);
    return ok && query_db(query);
  }

  // Records the problem; returns false so that callers can `return fail(...)`.
  bool fail(std::string_view problem) {
    error_ = url_error(url_, problem);
    return false;
  }

  // Removes "[user]:password@" from the front of `authority`.
  bool userinfo(std::string_view& authority) {
    auto at = authority.rfind('@');
    if (at == std::string_view::npos) return true;
    std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = info.find(':');
    if (colon == std::string_view::npos) {
      return fail(
          "write redis://:password@host for a password, or redis://user:password@host for an "
          "ACL user");
    }
    auto user = percent_decode(info.substr(0, colon));
    auto password = percent_decode(info.substr(colon + 1));
    if (!user || !password) {
      return fail(
          "bad percent-encoding in the user or password ('%' must be followed by two hex "
          "digits)");
    }
    endpoint_.user = std::move(*user);
    endpoint_.password = std::move(*password);
    return true;
  }

  bool tcp(std::string_view authority, std::string_view path) {
    std::string_view port;
    if (authority.starts_with('[')) {  // [IPv6]:port
      auto close = authority.find(']');
      if (close == std::string_view::npos) return fail("unclosed '[' in the host");
      endpoint_.host = std::string(authority.substr(1, close - 1));
      std::string_view after = authority.substr(close + 1);
      if (!after.empty() && !after.starts_with(':')) return fail("junk after ']'");
      if (!after.empty()) port = after.substr(1);
      if (!after.empty() && port.empty()) return fail("empty port after ':'");
    } else {
      auto colon = authority.find(':');
      endpoint_.host = std::string(authority.substr(0, colon));
      if (colon != std::string_view::npos) port = authority.substr(colon + 1);
      if (colon != std::string_view::npos && port.empty()) {
        return fail("empty port after ':'");
      }
    }
    if (endpoint_.host.empty()) return fail("missing host, e.g. redis://127.0.0.1:6379/0");
    if (!port.empty()) {
      auto value = parse_int(port, 1, 65535);
      if (!value) return fail(fmt::format("the port must be 1-65535, got \"{}\"", port));
      endpoint_.port = *value;
    }
    if (path.empty() || path == "/") return true;
    return database(path.substr(1),
                    fmt::format("the path must be a database number, got \"{}\"", path));
  }

  bool unix_socket(std::string_view authority, std::string_view path) {
    if (!authority.empty()) {
      return fail("a unix:// URL has no host; write unix:///path/to/socket");
    }
    if (path.size() < 2) return fail("missing socket path, e.g. unix:///run/redis.sock");
    auto decoded = percent_decode(path);
    if (!decoded) return fail("bad percent-encoding in the socket path");
    endpoint_.socket_path = std::move(*decoded);
    return true;
  }

  bool query_db(std::string_view query) {
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view item = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (!item.starts_with("db=")) {
        return fail(fmt::format("unknown query parameter \"{}\"; only db=N is understood",
                                item.substr(0, item.find('='))));
      }
      if (db_given_) return fail("the database is given twice");
      if (!database(item.substr(3), "")) return false;
    }
    return true;
  }

  bool database(std::string_view text, std::string_view problem) {
    auto value = parse_int(text, 0, std::numeric_limits<int>::max());
    if (!value) {
      return fail(problem.empty()
                      ? fmt::format("the database must be a non-negative integer, got \"{}\"", text)
                      : std::string(problem));
    }
    endpoint_.db = *value;
    db_given_ = true;
    return true;
  }

  std::string_view url_;
  Endpoint endpoint_;
  bool db_given_ = false;
  Status error_;
};

constexpr std::string_view kSentinelExample =
    "e.g. sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2";

// sentinel://[[user]:password@]host[:port][,...]/<master-name>[/db][?replicas=...]. The
// userinfo ends at the last '@' before the first '/', as in redis:// URLs.
class SentinelParser {
 public:
  explicit SentinelParser(std::string_view url) : url_(url) {}

  Result<SentinelLocation> parse() {
    if (!parse_parts()) return error_;
    return location_;
  }

 private:
  bool fail(std::string_view problem) {
    error_ = url_error(url_, problem);
    return false;
  }

  bool parse_parts() {
    std::string_view rest = url_.substr(url_.find("://") + 3);
    if (rest.find('#') != std::string_view::npos) return fail("a fragment ('#') is not allowed");
    auto query_start = rest.find('?');
    std::string_view query =
        query_start == std::string_view::npos ? std::string_view() : rest.substr(query_start + 1);
    rest = rest.substr(0, query_start);
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    return userinfo(authority) && addresses(authority) && master_and_db(path) && options(query);
  }

  bool userinfo(std::string_view& authority) {
    auto at = authority.rfind('@');
    if (at == std::string_view::npos) return true;
    std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = info.find(':');
    if (colon == std::string_view::npos) {
      return fail(
          "write sentinel://:password@host for a password, or sentinel://user:password@host");
    }
    auto user = percent_decode(info.substr(0, colon));
    auto password = percent_decode(info.substr(colon + 1));
    if (!user || !password) return fail("bad percent-encoding in the user or password");
    location_.user = std::move(*user);
    location_.password = std::move(*password);
    return true;
  }

  bool addresses(std::string_view list) {
    if (list.empty())
      return fail(fmt::format("missing the sentinel addresses, {}", kSentinelExample));
    while (true) {
      auto comma = list.find(',');
      if (!address(list.substr(0, comma))) return false;
      if (comma == std::string_view::npos) return true;
      list = list.substr(comma + 1);
    }
  }

  bool address(std::string_view item) {
    if (item.empty()) return fail("an empty sentinel address in the list (two ',' in a row?)");
    SentinelLocation::Address out;
    std::string_view port;
    if (item.starts_with('[')) {  // [IPv6]:port
      auto close = item.find(']');
      if (close == std::string_view::npos) return fail("unclosed '[' in a sentinel address");
      out.host = std::string(item.substr(1, close - 1));
      std::string_view after = item.substr(close + 1);
      if (!after.empty() && !after.starts_with(':')) return fail("junk after ']'");
      if (!after.empty()) port = after.substr(1);
    } else {
      auto colon = item.find(':');
      out.host = std::string(item.substr(0, colon));
      if (colon != std::string_view::npos) port = item.substr(colon + 1);
      if (colon != std::string_view::npos && port.empty()) return fail("empty port after ':'");
    }
    if (out.host.empty())
      return fail(fmt::format("a sentinel address without a host, {}", kSentinelExample));
    if (!port.empty()) {
      auto value = parse_int(port, 1, 65535);
      if (!value) return fail(fmt::format("the port must be 1-65535, got \"{}\"", port));
      out.port = *value;
    }
    location_.sentinels.push_back(std::move(out));
    return true;
  }

  // "/<master-name>[/db]".
  bool master_and_db(std::string_view path) {
    if (path.size() < 2) {
      return fail(fmt::format("missing the master name after the sentinel addresses, {}",
                              kSentinelExample));
    }
    path.remove_prefix(1);
    auto slash = path.find('/');
    auto name = percent_decode(path.substr(0, slash));
    if (!name || name->empty()) return fail("the master name is empty or badly percent-encoded");
    location_.master_name = std::move(*name);
    if (slash == std::string_view::npos || slash + 1 == path.size()) return true;
    std::string_view db = path.substr(slash + 1);
    auto value = parse_int(db, 0, std::numeric_limits<int>::max());
    if (!value) {
      return fail(fmt::format("after the master name comes a database number, got \"{}\"", db));
    }
    location_.db = *value;
    return true;
  }

  bool options(std::string_view query) {
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view item = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (!item.starts_with("replicas=")) {
        return fail(
            fmt::format("unknown query parameter \"{}\"; only replicas=true|false is understood",
                        item.substr(0, item.find('='))));
      }
      std::string_view value = item.substr(9);
      if (value != "true" && value != "false") {
        return fail(fmt::format("replicas must be true or false, got \"{}\"", value));
      }
      location_.read_from_replicas = value == "true";
    }
    return true;
  }

  std::string_view url_;
  SentinelLocation location_;
  Status error_;
};

}  // namespace

std::string Endpoint::describe() const {
  if (is_unix())
    return db == 0 ? "unix:" + socket_path : fmt::format("unix:{}?db={}", socket_path, db);
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}/{}", host, port, db);
  return fmt::format("{}:{}/{}", host, port, db);
}

Result<Endpoint> parse_url(std::string_view url) { return Parser(url).parse(); }

}  // namespace cachekit::redis_internal

namespace cachekit::redis_internal {

Endpoint SentinelLocation::endpoint(std::string host, int port) const {
  Endpoint out;
  out.host = std::move(host);
  out.port = port;
  out.db = db;
  out.user = user;
  out.password = password;
  return out;
}

std::string SentinelLocation::describe() const {
  std::string out = "sentinel://";
  for (std::size_t i = 0; i < sentinels.size(); ++i) {
    if (i > 0) out += ',';
    const auto& s = sentinels[i];
    out += s.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", s.host, s.port)
                                                 : fmt::format("{}:{}", s.host, s.port);
  }
  return fmt::format("{}/{}/{}", out, master_name, db);
}

bool is_sentinel_url(std::string_view url) {
  auto end = url.find("://");
  return end != std::string_view::npos &&
         cachekit::text::to_lower(url.substr(0, end)) == "sentinel";
}

Result<SentinelLocation> parse_sentinel_url(std::string_view url) {
  if (!is_sentinel_url(url))
    return url_error(url, fmt::format("expected a sentinel:// URL, {}", kSentinelExample));
  return SentinelParser(url).parse();
}

}  // namespace cachekit::redis_internal
