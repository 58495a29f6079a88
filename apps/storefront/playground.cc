// The playground: the lesson's say_hello view, once per step of the lesson.
//
//   /playground/hello/nocache/    step 1: every request calls the slow API (the baseline)
//   /playground/hello/lowlevel/   step 2: the low-level API — get, on a miss call and set
//   /playground/hello/function/   step 3: cache_page on a function handler
//   /playground/hello/class/      step 4: cache_page on a class-based view's get()
//   /playground/hello/            the lesson's URL: the step 3 version
//
// Each renders templates/hello.html with the upstream's answer. A page that could not reach
// the upstream is a 502, which neither the page cache nor the low-level step stores, so the
// next request tries again — unless the cached pages have a stale-if-error window
// ([storefront] hello_stale_if_error): then the last good page stands in for the 502 until
// the window ends. hello_stale_while_revalidate serves an expired page at once while one
// request refreshes it in the background.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <kainjow/mustache.hpp>
#include <memory>
#include <string>

#include "cachekit/http/page_cache.h"
#include "cachekit/server/view.h"
#include "views.h"

namespace storefront {
namespace {

namespace http = cachekit::http;

// What one step shows about itself on the page.
struct Step {
  const char* title;
  const char* how;
};

constexpr Step kNoCache = {"Step 1: no caching",
                           "Every request calls the third-party API and waits for it."};
constexpr Step kLowLevel = {
    "Step 2: the low-level cache API",
    "cache.get(\"httpbin_result\"); on a miss call the API, then cache.set(key, data) with the "
    "cache's default timeout."};
constexpr Step kFunction = {
    "Step 3: cache_page on a function handler",
    "http::cache_page(timeout, say_hello, {.cache = &cache}) stores the whole response."};
constexpr Step kClass = {
    "Step 4: cache_page on a class-based view",
    "router.view(path, std::make_shared<HelloView>(), server::cache_get(timeout, {...})) caches "
    "the view's get()."};

std::string delay_path(const HelloContext& hello) {
  return fmt::format("/delay/{}", hello.settings.upstream_delay);
}

// hello.html rendered with the upstream's data. kainjow's mustache::render is not const, so
// each render parses its own copy of the template (microseconds, and only on a cache miss).
http::Response render_hello(const HelloContext& hello, const Step& step, const nlohmann::json& data,
                            std::string_view source) {
  kainjow::mustache::mustache page(hello.hello_template);
  kainjow::mustache::data values;
  values.set("name", data.value("url", std::string("the upstream")));
  values.set("step", step.title);
  values.set("how", step.how);
  values.set("source", std::string(source));
  values.set("rendered_at",
             fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", std::chrono::floor<std::chrono::milliseconds>(
                                                         std::chrono::system_clock::now())));
  values.set("upstream_json", data.dump(2));
  auto response = http::Response::html(page.render(values));
  response.headers.set("X-Data-Source", std::string(source));
  return response;
}

http::Response upstream_failed(const UpstreamReply& reply) {
  return http::Response::json({{"error", "the upstream API failed"}, {"detail", reply.error}}, 502);
}

// The lesson's say_hello before caching (and inside cache_page, which adds the caching).
http::Response say_hello(const HelloContext& hello, const Step& step) {
  auto reply = hello.upstream.get_json(delay_path(hello));
  if (!reply.ok) return upstream_failed(reply);
  return render_hello(hello, step, reply.data, "upstream");
}
http::Response say_hello(const App& app, const Step& step) { return say_hello(app.hello(), step); }

// Step 2, the lesson's low-level version — without its second cache.get(), which a concurrent
// expiry could turn into a miss.
http::Response say_hello_low_level(App& app) {
  constexpr std::string_view kKey = kHttpbinResultKey;
  if (auto cached = app.cache.get(kKey)) {
    auto data = nlohmann::json::parse(cached->view(), nullptr, /*allow_exceptions=*/false);
    if (!data.is_discarded()) return render_hello(app.hello(), kLowLevel, data, "cache");
  }
  auto reply = app.upstream.get_json(delay_path(app.hello()));
  if (!reply.ok) return upstream_failed(reply);
  // No timeout given: the cache's default ([caches.default] timeout). cache.set(kKey, value,
  // 10min) would set it here instead.
  app.cache.set(kKey, reply.data.dump());
  return render_hello(app.hello(), kLowLevel, reply.data, "upstream");
}

// Step 4: Django's HelloView(APIView) with @method_decorator(cache_page(...)) on get.
class HelloView : public cachekit::server::View {
 public:
  explicit HelloView(const App& app) : app_(app) {}
  http::Response get(http::Request& /*request*/) override { return say_hello(app_, kClass); }

 private:
  const App& app_;
};

}  // namespace

cachekit::Result<nlohmann::json> fetch_hello_data(const HelloContext& hello) {
  auto reply = hello.upstream.get_json(delay_path(hello));
  if (!reply.ok) return cachekit::unavailable_error("the upstream API failed: " + reply.error);
  return std::move(reply.data);
}

http::Response render_hello_page(const HelloContext& hello, const nlohmann::json& data) {
  return render_hello(hello, kFunction, data, "upstream");
}

void add_playground_routes(cachekit::server::Router& router, App& app) {
  const auto timeout = app.settings.hello_timeout;
  // The cache_page options of every cached hello page, with its stale windows.
  auto options = [&app] {
    return http::CachePageOptions{
        .cache = &app.cache,
        .stale_while_revalidate = app.settings.hello_stale_while_revalidate,
        .stale_if_error = app.settings.hello_stale_if_error};
  };
  router.get("/playground/hello/nocache/",
             [&app](http::Request&) { return say_hello(app, kNoCache); });
  router.get("/playground/hello/lowlevel/",
             [&app](http::Request&) { return say_hello_low_level(app); });
  router.get("/playground/hello/function/",
             http::cache_page(
                 timeout, [&app](http::Request&) { return say_hello(app, kFunction); }, options()));
  router.view("/playground/hello/class/", std::make_shared<HelloView>(app),
              cachekit::server::cache_get(timeout, options()));
  // The lesson's own URL serves the cache_page function version.
  router.get("/playground/hello/",
             http::cache_page(
                 timeout, [&app](http::Request&) { return say_hello(app, kFunction); }, options()));
}

}  // namespace storefront
