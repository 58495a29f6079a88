// End-to-end tests of cachekit::server::Server: a real server on 127.0.0.1:<ephemeral>, real
// HTTP/1.1 over real sockets (e2e/http_client.h). Page-cache behaviour is in
// page_cache_e2e_test.cc.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <set>
#include <sstream>
#include <thread>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/server/server.h"
#include "e2e/http_client.h"

namespace cachekit::server {
namespace {

using namespace std::chrono_literals;
using cachekit::testing::HttpClient;
using ::testing::HasSubstr;

ServerOptions test_options() {
  ServerOptions o;
  o.port = 0;
  o.io_threads = 1;
  o.handler_threads = 2;
  o.access_log = false;
  return o;
}

http::Response hello(http::Request&) { return http::Response::text("hello"); }

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(ServerE2E, ServesSeveralRequestsOnOneKeepAliveConnection) {
  Server server(test_options());
  std::atomic<int> calls{0};
  server.router().get("/hello/", [&](http::Request&) {
    return http::Response::text("hello " + std::to_string(++calls));
  });
  server.start();
  ASSERT_NE(server.port(), 0);
  HttpClient client(server.port());
  std::set<std::string> ids;
  for (int i = 1; i <= 5; ++i) {
    auto r = client.get("/hello/");
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello " + std::to_string(i));
    EXPECT_FALSE(r->header("Connection").has_value());
    ASSERT_TRUE(r->header("X-Request-Id"));
    ids.insert(*r->header("X-Request-Id"));
    EXPECT_TRUE(r->header("Date"));
  }
  EXPECT_EQ(ids.size(), 5U) << "each request gets its own id";
  EXPECT_EQ(server.stats().connections, 1U);
}

TEST(ServerE2E, EchoesAClientRequestIdToTheHandlerAndTheResponse) {
  Server server(test_options());
  server.router().get("/id/", [](http::Request& r) { return http::Response::text(r.request_id); });
  server.start();
  auto r = cachekit::testing::fetch(server.port(), "GET", "/id/", {{"X-Request-Id", "abc-123"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "abc-123");
  EXPECT_EQ(r->header("X-Request-Id"), "abc-123");
  auto bad = cachekit::testing::fetch(server.port(), "GET", "/id/", {{"X-Request-Id", "a b\"c"}});
  ASSERT_TRUE(bad);
  EXPECT_NE(bad->body, "a b\"c") << "an id with unsafe characters is replaced";
  EXPECT_EQ(bad->header("X-Request-Id"), bad->body);
}

TEST(ServerE2E, AnswersNotFoundMethodNotAllowedAndAppendSlash) {
  Server server(test_options());
  server.router().get("/foo/", hello).post("/foo/", hello);
  server.start();
  HttpClient client(server.port());

  auto missing = client.get("/nothing/");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  auto wrong_method = client.request("PUT", "/foo/", {}, "x");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(wrong_method->header("Allow"), "GET, HEAD, POST, OPTIONS");

  auto redirect = client.get("/foo?page=2&q=a%20b");
  ASSERT_TRUE(redirect);
  EXPECT_EQ(redirect->status, 301);
  EXPECT_EQ(redirect->header("Location"), "/foo/?page=2&q=a%20b");

  auto post_no_slash = client.request("POST", "/foo", {}, "x");
  ASSERT_TRUE(post_no_slash);
  EXPECT_EQ(post_no_slash->status, 404) << "a redirect would lose the POST body";

  auto options = client.request("OPTIONS", "/foo/");
  ASSERT_TRUE(options);
  EXPECT_EQ(options->status, 200);
  EXPECT_EQ(options->header("Allow"), "GET, HEAD, POST, OPTIONS");
}

TEST(ServerE2E, FillsPathParametersDecoded) {
  Server server(test_options());
  server.router().get("/store/products/{id}/reviews/{review}/", [](http::Request& r) {
    return http::Response::text(r.path_params.at("id") + "|" + r.path_params.at("review"));
  });
  server.start();
  HttpClient client(server.port());
  auto r = client.get("/store/products/42/reviews/caf%C3%A9/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "42|caf\xC3\xA9");
  auto too_short = client.get("/store/products//reviews/1/");
  ASSERT_TRUE(too_short);
  EXPECT_EQ(too_short->status, 404) << "a parameter matches a non-empty segment only";
}

class ProductView : public View {
 public:
  http::Response get(http::Request& r) override {
    return http::Response::text("product " + r.path_params.at("id"));
  }
  http::Response post(http::Request& r) override {
    return http::Response::text("posted " + r.body, 201);
  }
};

TEST(ServerE2E, ServesClassBasedViewsAndRefusesMethodsTheyDoNotDefine) {
  Server server(test_options());
  server.router().view("/products/{id}/", std::make_shared<ProductView>());
  server.start();
  HttpClient client(server.port());

  auto got = client.get("/products/7/");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "product 7");

  auto posted = client.request("POST", "/products/7/", {}, "data");
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 201);
  EXPECT_EQ(posted->body, "posted data");

  auto deleted = client.request("DELETE", "/products/7/");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 405);
  EXPECT_EQ(deleted->header("Allow"), "GET, HEAD, POST, OPTIONS");

  auto head = client.request("HEAD", "/products/7/");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "9") << "the GET body's length, without the body";
  auto after_head = client.get("/products/8/");  // the connection is still in sync
  ASSERT_TRUE(after_head);
  EXPECT_EQ(after_head->body, "product 8");
}

TEST(ServerE2E, RunsMiddlewareInOrderFirstIsOutermost) {
  Server server(test_options());
  auto tracer = [](std::string name) {
    return [name](http::Request& r, const http::Next& next) {
      r.headers.add("X-Trace", name + "-in");
      http::Response response = next(r);
      response.headers.add("X-Trace", name + "-out");
      return response;
    };
  };
  server.use(tracer("outer")).use(tracer("inner"));
  server.router().get("/trace/", [](http::Request& r) {
    std::string seen;
    for (auto v : r.headers.get_all("X-Trace")) seen += std::string(v) + ",";
    return http::Response::text(seen);
  });
  server.start();
  HttpClient client(server.port());
  auto r = client.get("/trace/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "outer-in,inner-in,");
  std::vector<std::string> out;
  for (const auto& [n, v] : r->headers) {
    if (n == "X-Trace") out.push_back(v);
  }
  EXPECT_THAT(out, ::testing::ElementsAre("inner-out", "outer-out"));
  auto missing = client.get("/missing/");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->count("X-Trace"), 2U) << "middleware wraps the router's own answers too";
}

TEST(ServerE2E, AnswersOversizedHeaderWith431AndOversizedBodyWith413) {
  ServerOptions o = test_options();
  o.max_header_bytes = 1024;
  o.max_body_bytes = 100;
  Server server(o);
  server.router().post("/upload/", [](http::Request& r) {
    return http::Response::text(std::to_string(r.body.size()));
  });
  server.start();
  {
    HttpClient client(server.port());
    auto r = client.request("POST", "/upload/", {{"X-Big", std::string(2000, 'a')}}, "x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
    EXPECT_EQ(r->header("Connection"), "close");
  }
  {
    HttpClient client(server.port());
    auto r = client.request("POST", "/upload/", {}, std::string(101, 'b'));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(client.wait_closed(2s));
  }
  {  // announced only: answered before the body is sent
    HttpClient client(server.port());
    ASSERT_TRUE(client.send_raw(
        "POST /upload/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n"));
    auto r = client.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  auto fits =
      cachekit::testing::fetch(server.port(), "POST", "/upload/", {}, std::string(100, 'c'));
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->body, "100");
}

TEST(ServerE2E, AnswersGarbageWith400) {
  Server server(test_options());
  server.start();
  HttpClient client(server.port());
  ASSERT_TRUE(client.send_raw("NOT HTTP AT ALL\r\n\r\n"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

TEST(ServerE2E, DisconnectsASlowClientAfterTheReadTimeout) {
  ServerOptions o = test_options();
  o.read_timeout = 400ms;
  Server server(o);
  server.router().get("/", hello);
  server.start();
  HttpClient client(server.port());
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.send_raw("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "));  // then nothing
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(client.wait_closed(2s));
  double elapsed = seconds_since(started);
  EXPECT_GE(elapsed, 0.35);
  EXPECT_LT(elapsed, 1.5) << "read timeout 0.4 s plus one sweep tick";
  // The server still serves others.
  auto ok = cachekit::testing::fetch(server.port(), "GET", "/");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(ServerE2E, ClosesAnIdleKeepAliveConnectionAfterTheIdleTimeout) {
  ServerOptions o = test_options();
  o.idle_timeout = 300ms;
  Server server(o);
  server.router().get("/", hello);
  server.start();
  HttpClient client(server.port());
  ASSERT_TRUE(client.get("/"));
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.wait_closed(3s));
  double elapsed = seconds_since(started);
  EXPECT_GE(elapsed, 0.25);
  EXPECT_LT(elapsed, 1.5);
}

TEST(ServerE2E, AnswersAHandlerExceptionWith500AndKeepsServing) {
  Server server(test_options());
  server.router().get("/boom/",
                      [](http::Request&) -> http::Response { throw std::runtime_error("boom"); });
  server.router().get("/", hello);
  server.start();
  HttpClient client(server.port());
  auto r = client.get("/boom/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  auto after = client.get("/");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST(ServerE2E, HonoursExpectContinue) {
  Server server(test_options());
  server.router().post("/echo/", [](http::Request& r) { return http::Response::text(r.body); });
  server.start();
  HttpClient client(server.port());
  ASSERT_TRUE(
      client.send_raw("POST /echo/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: "
                      "100-continue\r\n\r\n"));
  auto interim = client.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.send_raw("hello"));
  auto r = client.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "hello");
}

// A handler that holds its thread until released, announcing when it started.
struct Gate {
  std::promise<void> entered;
  std::promise<void> release;  // before release_signal, which is made from it
  std::shared_future<void> release_signal;
  std::atomic<int> calls{0};
  Gate() : release_signal(release.get_future().share()) {}
  http::Handler handler() {
    return [this](http::Request&) {
      if (calls.fetch_add(1) == 0) entered.set_value();
      release_signal.wait();
      return http::Response::text("done");
    };
  }
};

TEST(ServerE2E, RejectsWith503AndRetryAfterWhenTheHandlerPoolIsFull) {
  ServerOptions o = test_options();
  o.handler_threads = 1;
  o.handler_queue = 1;
  o.retry_after = 7s;
  Server server(o);
  Gate gate;
  server.router().get("/slow/", gate.handler());
  server.start();
  HttpClient running(server.port()), queued(server.port()), refused(server.port());
  ASSERT_TRUE(running.send_raw("GET /slow/ HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  gate.entered.get_future().wait();
  ASSERT_TRUE(queued.send_raw("GET /slow/ HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  for (int i = 0; i < 500 && server.stats().pool_queued == 0; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(server.stats().pool_queued, 1U);

  auto r = refused.get("/slow/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("Retry-After"), "7");
  gate.release.set_value();
  auto first = running.read_response();
  auto second = queued.read_response();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(server.stats().rejected_by_pool, 1U);
}

TEST(ServerE2E, GracefulStopFinishesTheInFlightRequestAndRefusesNewOnes) {
  Server server(test_options());
  Gate gate;
  server.router().get("/slow/", gate.handler());
  server.start();
  const auto port = server.port();
  HttpClient busy(port);
  HttpClient idle(port);
  ASSERT_TRUE(idle.send_raw(""));  // connected, never sends a request
  ASSERT_TRUE(busy.send_raw("GET /slow/ HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  gate.entered.get_future().wait();

  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  EXPECT_TRUE(idle.wait_closed(2s)) << "idle keep-alive connections are closed at once";
  EXPECT_EQ(stopped.wait_for(200ms), std::future_status::timeout) << "waits for the request";
  EXPECT_THROW(HttpClient{port}, std::runtime_error) << "no longer accepting";

  gate.release.set_value();
  auto r = busy.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
}

TEST(ServerE2E, ShutdownTimeoutBoundsTheStop) {
  ServerOptions o = test_options();
  o.shutdown_timeout = 300ms;
  Server server(o);
  Gate gate;
  server.router().get("/slow/", gate.handler());
  server.start();
  HttpClient busy(server.port());
  ASSERT_TRUE(busy.send_raw("GET /slow/ HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  gate.entered.get_future().wait();
  auto started = std::chrono::steady_clock::now();
  auto stopped = std::async(std::launch::async, [&] { server.stop(); });
  EXPECT_TRUE(busy.wait_closed(3s)) << "the connection is closed after the shutdown timeout";
  EXPECT_GE(seconds_since(started), 0.25);
  gate.release.set_value();  // stop() then only waits for the handler itself
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
}

TEST(ServerE2E, RunStopsGracefullyOnSigterm) {
  Server server(test_options());
  server.router().get("/", hello);
  std::promise<void> ready;
  std::thread runner([&] { server.run([&](Server&) { ready.set_value(); }); });
  ready.get_future().wait();
  auto r = cachekit::testing::fetch(server.port(), "GET", "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  runner.join();  // returns only if SIGTERM reached the server
  EXPECT_THROW(HttpClient{server.port()}, std::runtime_error);
}

TEST(ServerE2E, ExposesPrometheusMetrics) {
  Server server(test_options());
  Cache cache(make_locmem_backend(), CacheOptions{.alias = "watched"});
  server.watch_cache("watched", cache);
  server.router().get("/hello/", hello);
  server.router().get("/items/{id}/", [](http::Request&) {
    auto response = http::Response::text("item");
    response.headers.set("Cache-Status", "edge; fwd=uri-miss; stored, cachekit; hit; ttl=5");
    return response;
  });
  server.start();
  HttpClient client(server.port());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.get("/hello/"));
  ASSERT_TRUE(client.get("/items/1/"));
  ASSERT_TRUE(client.get("/items/2/"));
  ASSERT_TRUE(client.get("/missing/"));
  auto r = client.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(*r->header("Content-Type"), HasSubstr("version=0.0.4"));
  const std::string& text = r->body;
  EXPECT_THAT(text,
              HasSubstr("cachekit_http_requests_total{route=\"/hello/\",status=\"200\"} 3\n"));
  EXPECT_THAT(text,
              HasSubstr("cachekit_http_requests_total{route=\"/items/{id}/\",status=\"200\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("cachekit_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_http_request_duration_seconds_count 6\n"));
  EXPECT_THAT(
      text, HasSubstr("cachekit_page_cache_requests_total{cache=\"cachekit\",result=\"hit\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("cachekit_page_cache_requests_total{cache=\"edge\",result=\"miss\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_page_cache_stores_total{cache=\"edge\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_backend_errors_total{cache=\"watched\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_http_connections 1\n"));
  auto again = client.get("/metrics");
  ASSERT_TRUE(again);
  EXPECT_THAT(again->body,
              HasSubstr("cachekit_http_requests_total{route=\"/metrics\",status=\"200\"} 1\n"));
}

TEST(ServerE2E, AppendsAddedMetricsTextToEveryScrape) {
  Server server(test_options());
  std::atomic<int> scrapes{0};
  server.add_metrics_text([&scrapes] {
    return "# TYPE app_jobs_total counter\napp_jobs_total{job=\"a\"} " + std::to_string(++scrapes) +
           "\n";
  });
  server.start();
  HttpClient client(server.port());
  auto first = client.get("/metrics");
  auto second = client.get("/metrics");
  ASSERT_TRUE(first && second);
  EXPECT_THAT(first->body, HasSubstr("cachekit_http_connections 1\n"));
  EXPECT_THAT(first->body,
              HasSubstr("\n# TYPE app_jobs_total counter\napp_jobs_total{job=\"a\"} 1\n"));
  EXPECT_THAT(second->body, HasSubstr("app_jobs_total{job=\"a\"} 2\n"));
  EXPECT_THAT(server.metrics_text(), HasSubstr("app_jobs_total{job=\"a\"} 3\n"));
}

TEST(ServerE2E, WritesOneAccessLogLinePerRequestUnlessDisabled) {
  std::ostringstream lines;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(lines);
  spdlog::register_logger(std::make_shared<spdlog::logger>("cachekit.access", sink));
  {
    ServerOptions o = test_options();
    o.access_log = true;
    Server server(o);
    server.router().get("/hello/", hello);
    server.start();
    auto r = cachekit::testing::fetch(server.port(), "GET", "/hello/?x=1",
                                      {{"X-Request-Id", "trace-42"}});
    ASSERT_TRUE(r);
    server.stop();  // the line is written after the response
  }
  {
    Server quiet(test_options());  // access_log = false
    quiet.router().get("/hello/", hello);
    quiet.start();
    ASSERT_TRUE(cachekit::testing::fetch(quiet.port(), "GET", "/hello/?quiet=1"));
    quiet.stop();
  }
  spdlog::drop("cachekit.access");
  const std::string log = lines.str();
  EXPECT_THAT(log, HasSubstr("trace-42 127.0.0.1:"));
  EXPECT_THAT(log, HasSubstr("\"GET /hello/?x=1 HTTP/1.1\" 200 5 "));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
}

TEST(ServerE2E, RefusesToStartOnABusyPort) {
  Server first(test_options());
  first.start();
  ServerOptions o = test_options();
  o.port = first.port();
  Server second(o);
  EXPECT_THROW(second.start(), std::system_error);
}

TEST(ServerE2E, ConcurrentClientsOnSeveralIoThreadsAreAllAnswered) {
  ServerOptions o = test_options();
  o.io_threads = 2;
  o.handler_threads = 4;
  Server server(o);
  std::atomic<int> calls{0};
  server.router().get("/n/{i}/", [&](http::Request& r) {
    ++calls;
    return http::Response::text(r.path_params.at("i"));
  });
  server.start();
  constexpr int kClients = 6, kRequests = 40;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient client(server.port());
      for (int i = 0; i < kRequests; ++i) {
        std::string n = std::to_string(c * 1000 + i);
        auto r = client.get("/n/" + n + "/");
        if (r && r->status == 200 && r->body == n) ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(calls.load(), kClients * kRequests);
  server.stop();  // a request is counted after its response is written: let the last ones land
  EXPECT_EQ(server.stats().requests, static_cast<std::uint64_t>(kClients * kRequests));
}

}  // namespace
}  // namespace cachekit::server
