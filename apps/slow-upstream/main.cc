// slow-upstream: a slow third-party API on loopback, compatible with httpbin.org's /delay/{n},
// and a cacheable origin with httpbin-like /bytes/{n}.
//
//   slow-upstream --port 8001
//   curl http://127.0.0.1:8001/delay/2        # JSON after two seconds (fractions allowed)
//   curl http://127.0.0.1:8001/bytes/1024?max_age=3600&delay=0.5
//                                             # 1024 fixed bytes after half a second, with
//                                             # Cache-Control: public, max-age=3600
//   curl http://127.0.0.1:8001/stats          # {"delay_calls": 1, "bytes_calls": 1, ...}
//
// The storefront demo calls it to play the lesson's https://httpbin.org/delay/2; /stats lets the
// demo and the tests count how often the storefront really reached "the third party" — the
// number caching is meant to bring down. The peer benchmark (bench/peers/) puts caching proxies
// in front of /bytes/{n} and counts, the same way, the requests that got through them.
//
// A delay is served by sleeping on a handler thread: the server runs handlers on a pool that may
// block, so the pool must be as large as the number of requests that may wait at once
// (--threads, 512 by default; a sleeping thread costs a stack and nothing else).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "cachekit/http/message.h"
#include "cachekit/server/server.h"

namespace {

namespace http = cachekit::http;

// httpbin refuses nothing and caps the delay at 10 s; so does this service.
constexpr double kMaxDelaySeconds = 10.0;
// httpbin caps /bytes at 100 KiB; this service allows larger bodies for benchmarks.
constexpr std::size_t kMaxBytes = 16 * 1024 * 1024;

// The calls served, since start or the last POST /stats/reset.
struct Counters {
  std::atomic<std::uint64_t> delay_calls{0};
  std::atomic<std::uint64_t> delay_in_flight{0};
  std::atomic<std::uint64_t> bytes_calls{0};
};

// "2", "0.5", "1.25" → seconds; nullopt for anything else (negative, not a number, inf).
std::optional<double> parse_delay(const std::string& text) {
  double seconds = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, seconds);
  if (error != std::errc() || ptr != end || !std::isfinite(seconds) || seconds < 0) {
    return std::nullopt;
  }
  return std::min(seconds, kMaxDelaySeconds);
}

// "1024" → 1024; nullopt for anything but a decimal integer in [0, limit].
std::optional<std::uint64_t> parse_count(const std::string& text, std::uint64_t limit) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end || value > limit) return std::nullopt;
  return value;
}

// n bytes that depend only on n: the alphabet and digits, repeated. (httpbin's /bytes sends
// random bytes unless given a seed; a proxy benchmark wants every answer for a URL identical, so
// that a cached copy can be compared with a fresh one byte for byte.)
std::string fixed_bytes(std::size_t n) {
  static constexpr std::string_view kPattern = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string body(n, '\0');
  for (std::size_t i = 0; i < n; ++i) body[i] = kPattern[i % kPattern.size()];
  return body;
}

// GET /bytes/{n}?max_age=S&delay=D: n fixed bytes, after D seconds (default 0), cacheable for S
// seconds (`Cache-Control: public, max-age=S`; without max_age, no Cache-Control at all, as
// httpbin). Other query parameters are ignored, so `&key=...` makes a URL no cache has seen.
// The ETag depends on n alone; a matching If-None-Match gets 304. Every answer is one call.
http::Response serve_bytes(const http::Request& request, Counters& counters) {
  auto n = parse_count(request.path_params.at("n"), kMaxBytes);
  if (!n) {
    return http::Response::json(
        {{"error", fmt::format("the size must be a whole number of bytes, at most {}", kMaxBytes)}},
        400);
  }
  std::optional<std::uint64_t> max_age;
  if (auto text = request.query_param("max_age")) {
    max_age = parse_count(*text, std::uint64_t{10} * 365 * 24 * 3600);
    if (!max_age) {
      return http::Response::json({{"error", "max_age must be a whole number of seconds"}}, 400);
    }
  }
  double seconds = 0;
  if (auto text = request.query_param("delay")) {
    auto parsed = parse_delay(*text);
    if (!parsed) {
      return http::Response::json(
          {{"error", "the delay must be a non-negative number of seconds, e.g. 2 or 0.5"}}, 400);
    }
    seconds = *parsed;
  }
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  counters.bytes_calls.fetch_add(1, std::memory_order_relaxed);

  const std::string etag = fmt::format("\"bytes-{}\"", *n);
  auto if_none_match = request.headers.get("If-None-Match");
  const bool not_modified = if_none_match && (*if_none_match == etag || *if_none_match == "*");
  http::Response response;
  response.status = not_modified ? 304 : 200;
  if (!not_modified) response.body = fixed_bytes(*n);
  response.headers.set("Content-Type", "application/octet-stream");
  response.headers.set("ETag", etag);
  if (max_age) response.headers.set("Cache-Control", fmt::format("public, max-age={}", *max_age));
  return response;
}

// httpbin's answer: the request as the service saw it.
nlohmann::json describe(const http::Request& request) {
  nlohmann::json headers = nlohmann::json::object();
  for (const auto& [name, value] : request.headers) headers[name] = value;
  nlohmann::json args = nlohmann::json::object();
  return {{"args", args},
          {"data", ""},
          {"files", nlohmann::json::object()},
          {"form", nlohmann::json::object()},
          {"headers", headers},
          {"origin", "127.0.0.1"},
          {"url", request.absolute_uri()}};
}

void add_routes(cachekit::server::Router& router, Counters& counters) {
  router.route({"GET", "POST", "PUT", "PATCH", "DELETE"}, "/delay/{n}",
               [&counters](http::Request& request) {
                 auto seconds = parse_delay(request.path_params.at("n"));
                 if (!seconds) {
                   return http::Response::json(
                       {{"error",
                         "the delay must be a non-negative number of seconds, e.g. 2 "
                         "or 0.5"}},
                       400);
                 }
                 counters.delay_in_flight.fetch_add(1, std::memory_order_relaxed);
                 std::this_thread::sleep_for(std::chrono::duration<double>(*seconds));
                 counters.delay_in_flight.fetch_sub(1, std::memory_order_relaxed);
                 counters.delay_calls.fetch_add(1, std::memory_order_relaxed);
                 return http::Response::json(describe(request));
               });
  router.get("/bytes/{n}",
             [&counters](http::Request& request) { return serve_bytes(request, counters); });
  router.get("/stats", [&counters](http::Request&) {
    return http::Response::json(
        {{"delay_calls", counters.delay_calls.load(std::memory_order_relaxed)},
         {"delay_in_flight", counters.delay_in_flight.load(std::memory_order_relaxed)},
         {"bytes_calls", counters.bytes_calls.load(std::memory_order_relaxed)}});
  });
  router.post("/stats/reset", [&counters](http::Request&) {
    counters.delay_calls.store(0, std::memory_order_relaxed);
    counters.bytes_calls.store(0, std::memory_order_relaxed);
    return http::Response::json({{"delay_calls", 0}, {"bytes_calls", 0}});
  });
  router.get("/", [](http::Request&) {
    return http::Response::text(
        "slow-upstream: GET /delay/{seconds} answers JSON after that many seconds (fractions "
        "allowed, at most 10); GET /bytes/{n}?max_age=S&delay=D answers n fixed bytes after D "
        "seconds, cacheable for S seconds; GET /stats counts the calls served; POST /stats/reset "
        "zeroes the counts.\n");
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "slow-upstream: an httpbin-compatible /delay/{n} and /bytes/{n} service that counts its "
      "calls"};
  std::string address = "127.0.0.1";
  std::uint16_t port = 8001;
  std::size_t threads = 512;
  bool access_log = false;
  app.add_option("--address", address, "the address to listen on")->capture_default_str();
  app.add_option("-p,--port", port, "the port to listen on (0: any free port)")
      ->capture_default_str();
  app.add_option("--threads", threads, "requests that may wait at once (handler threads)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_flag("--access-log", access_log, "log every request on stderr");
  CLI11_PARSE(app, argc, argv);

  Counters counters;
  try {
    cachekit::server::Server server({.address = address,
                                     .port = port,
                                     .io_threads = 1,
                                     .handler_threads = threads,
                                     .handler_queue = 4096,
                                     .access_log = access_log});
    add_routes(server.router(), counters);
    server.run([](cachekit::server::Server& s) {
      std::printf("slow-upstream listening on http://127.0.0.1:%u\n", s.port());
      std::fflush(stdout);
    });
  } catch (const std::exception& error) {
    std::fprintf(stderr, "slow-upstream: %s\n", error.what());
    return 2;
  }
  return 0;
}
