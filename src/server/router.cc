#include "cachekit/server/router.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include "core/text.h"
#include "server/request_checks.h"

namespace cachekit::server {
namespace {

constexpr std::string_view kUnmatched = "unmatched";

// The methods Allow lists first, in this order (Django lists them in http_method_names order).
constexpr std::array<std::string_view, 7> kKnownMethods = {"GET",   "HEAD",   "POST",   "PUT",
                                                           "PATCH", "DELETE", "OPTIONS"};

std::string upper(std::string_view method) {
  std::string out(method);
  for (char& c : out) c = text::ascii_upper(c);
  return out;
}

// Path parameters are matched against the raw path (so an encoded '/' cannot split a segment)
// and handed to the handler decoded, as Django does. '+' stays '+': that rule is the query's.
std::string decode_path_parameter(std::string_view raw) {
  return text::percent_decode(raw, text::kLenientPath).value_or(std::string());  // never nullopt
}

// Splits "/a/b/" into {"a", "b", ""}: the empty last segment is the trailing slash.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.empty() || path.front() != '/') return segments;
  path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

struct Segment {
  std::string text;  // the literal, or the parameter name
  bool parameter = false;
};

struct Transparent {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

}  // namespace

struct Router::Impl {
  struct Route {
    std::string pattern;
    std::vector<Segment> segments;
    bool has_parameters = false;
    std::vector<std::pair<std::string, Endpoint>> methods;
    std::string allow;  // rebuilt on every registration
  };

  RouterOptions options;
  std::vector<std::unique_ptr<Route>> routes;  // stable addresses for Endpoint pointers
  std::unordered_map<std::string, std::size_t, Transparent, std::equal_to<>> literal;
  std::vector<std::size_t> parameterised;  // indices, registration order
  std::vector<http::Middleware> middleware;
  std::optional<Endpoint> fallback;

  // The index of the route for `pattern`, added (and its pattern parsed) when it is new.
  std::size_t route_for(std::string pattern);
  // The index of the route matching `path`, or routes.size(); fills `params` when non-null.
  std::size_t match(std::string_view path,
                    std::map<std::string, std::string, std::less<>>* params) const;
};

namespace {

std::vector<Segment> parse_pattern(const std::string& pattern, bool& has_parameters) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  std::vector<Segment> segments;
  for (std::string_view s : split_path(pattern)) {
    bool open = s.find('{') != std::string_view::npos;
    bool close = s.find('}') != std::string_view::npos;
    if (!open && !close) {
      segments.push_back({std::string(s), false});
      continue;
    }
    if (s.size() < 3 || s.front() != '{' || s.back() != '}' ||
        s.substr(1, s.size() - 2).find_first_of("{}") != std::string_view::npos) {
      throw std::invalid_argument("route parameter must be a whole segment \"{name}\": " + pattern);
    }
    segments.push_back({std::string(s.substr(1, s.size() - 2)), true});
    has_parameters = true;
  }
  return segments;
}

std::string build_allow(const std::vector<std::pair<std::string, Endpoint>>& methods) {
  auto has = [&](std::string_view m) {
    return std::any_of(methods.begin(), methods.end(), [&](const auto& e) { return e.first == m; });
  };
  std::string allow;
  auto append = [&](std::string_view m) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  };
  for (std::string_view m : kKnownMethods) {
    if (has(m) || (m == "HEAD" && has("GET")) || m == "OPTIONS") append(m);
  }
  for (const auto& [m, endpoint] : methods) {
    if (std::find(kKnownMethods.begin(), kKnownMethods.end(), m) == kKnownMethods.end()) {
      append(m);
    }
  }
  return allow;
}

}  // namespace

std::size_t Router::Impl::route_for(std::string pattern) {
  for (std::size_t i = 0; i < routes.size(); ++i) {
    if (routes[i]->pattern == pattern) return i;
  }
  auto route = std::make_unique<Route>();
  route->segments = parse_pattern(pattern, route->has_parameters);
  std::size_t index = routes.size();
  if (route->has_parameters) {
    parameterised.push_back(index);
  } else {
    literal.emplace(pattern, index);
  }
  route->pattern = std::move(pattern);
  routes.push_back(std::move(route));
  return index;
}

std::size_t Router::Impl::match(std::string_view path,
                                std::map<std::string, std::string, std::less<>>* params) const {
  if (auto it = literal.find(path); it != literal.end()) return it->second;
  if (parameterised.empty()) return routes.size();
  auto segments = split_path(path);
  for (std::size_t index : parameterised) {
    const Route& route = *routes[index];
    if (route.segments.size() != segments.size()) continue;
    bool ok = true;
    for (std::size_t i = 0; ok && i < segments.size(); ++i) {
      const Segment& want = route.segments[i];
      ok = want.parameter ? !segments[i].empty() : want.text == segments[i];
    }
    if (!ok) continue;
    if (params != nullptr) {
      for (std::size_t i = 0; i < segments.size(); ++i) {
        if (route.segments[i].parameter) {
          (*params)[route.segments[i].text] = decode_path_parameter(segments[i]);
        }
      }
    }
    return index;
  }
  return routes.size();
}

Router::Router(RouterOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

Router& Router::route(std::initializer_list<std::string_view> methods, std::string pattern,
                      http::Handler handler) {
  return add(methods, std::move(pattern), Endpoint{std::move(handler), nullptr});
}

Router& Router::route(std::initializer_list<std::string_view> methods, std::string pattern,
                      http::CachedHandler handler) {
  auto page_cache = handler.page_cache;
  return add(methods, std::move(pattern), Endpoint{std::move(handler), std::move(page_cache)});
}

Router& Router::add(std::initializer_list<std::string_view> methods, std::string pattern,
                    const Endpoint& endpoint) {
  if (!endpoint.handler) throw std::invalid_argument("empty handler for route " + pattern);
  Impl::Route& route = *impl_->routes[impl_->route_for(std::move(pattern))];
  for (std::string_view raw : methods) {
    std::string method = upper(raw);
    if (method.empty()) throw std::invalid_argument("empty method for route " + route.pattern);
    for (const auto& existing : route.methods) {
      if (existing.first == method) {
        throw std::invalid_argument(method + " registered twice for route " + route.pattern);
      }
    }
    route.methods.emplace_back(std::move(method), endpoint);
  }
  route.allow = build_allow(route.methods);
  return *this;
}

Router& Router::add_view(std::string pattern, const std::shared_ptr<View>& view,
                         std::uint8_t methods, const ViewOptions& options) {
  if (!view) throw std::invalid_argument("null view for route " + pattern);
  // The route exists even when the view serves nothing, so that it answers 405.
  Impl::Route& route = *impl_->routes[impl_->route_for(std::move(pattern))];
  using Member = http::Response (View::*)(http::Request&);
  const std::array<std::tuple<std::uint8_t, std::string_view, Member>, 5> table = {{
      {kViewGet, "GET", &View::get},
      {kViewPost, "POST", &View::post},
      {kViewPut, "PUT", &View::put},
      {kViewPatch, "PATCH", &View::patch},
      {kViewDelete, "DELETE", &View::delete_},
  }};
  for (const auto& [bit, method, member] : table) {
    if ((methods & bit) == 0) continue;
    // Calling through the pointer to View's member dispatches virtually to the override.
    http::Handler handler = [view, member = member](http::Request& r) {
      return ((*view).*member)(r);
    };
    if (options.cache_get) {
      add({method}, route.pattern,
          Endpoint{http::CachedHandler{std::move(handler), options.cache_get}, options.cache_get});
    } else {
      add({method}, route.pattern, Endpoint{std::move(handler), nullptr});
    }
  }
  view->allow_ = route.allow;
  if (view->allow_.empty()) view->allow_ = "OPTIONS";
  return *this;
}

Router& Router::fallback(http::Handler handler) {
  if (!handler) throw std::invalid_argument("empty fallback handler");
  if (impl_->fallback) throw std::invalid_argument("fallback registered twice");
  impl_->fallback = Endpoint{std::move(handler), nullptr};
  return *this;
}

Router& Router::fallback(http::CachedHandler handler) {
  if (impl_->fallback) throw std::invalid_argument("fallback registered twice");
  auto page_cache = handler.page_cache;
  impl_->fallback = Endpoint{std::move(handler), std::move(page_cache)};
  return *this;
}

Router& Router::use(http::Middleware middleware) {
  if (!middleware) throw std::invalid_argument("empty middleware");
  impl_->middleware.push_back(std::move(middleware));
  return *this;
}

Resolution Router::resolve(http::Request& request) const {
  Resolution r;
  std::size_t index = impl_->match(request.path, &request.path_params);
  r.route = index;
  if (index == impl_->routes.size()) {
    if (impl_->fallback) {
      r.kind = Resolution::Kind::kFound;
      r.endpoint = &*impl_->fallback;
      return r;
    }
    const bool safe = request.method == "GET" || request.method == "HEAD";
    // Never a Location a browser reads as another origin: "/\evil.com/" is "//evil.com/" to
    // it (WHATWG URL treats a backslash as a slash), so such a path gets the 404 it would get.
    if (impl_->options.append_slash && safe && !request.path.ends_with('/') &&
        detail::same_origin_path(request.path) &&
        impl_->match(request.path + "/", nullptr) != impl_->routes.size()) {
      r.kind = Resolution::Kind::kRedirect;
      r.location = request.path + "/";
      if (!request.query.empty()) r.location += "?" + request.query;
    }
    return r;
  }
  const Impl::Route& route = *impl_->routes[index];
  auto find = [&](std::string_view method) -> const Endpoint* {
    for (const auto& [m, endpoint] : route.methods) {
      if (m == method) return &endpoint;
    }
    return nullptr;
  };
  r.endpoint = find(request.method);
  if (r.endpoint == nullptr && request.method == "HEAD") r.endpoint = find("GET");
  if (r.endpoint != nullptr) {
    r.kind = Resolution::Kind::kFound;
  } else {
    r.kind = request.method == "OPTIONS" ? Resolution::Kind::kOptions
                                         : Resolution::Kind::kMethodNotAllowed;
    r.allow = route.allow;
  }
  return r;
}

http::Response Router::own_answer(const Resolution& resolution) {
  switch (resolution.kind) {
    case Resolution::Kind::kRedirect:
      return http::Response::redirect(resolution.location, 301);
    case Resolution::Kind::kMethodNotAllowed: {
      auto response = http::Response::text("Method Not Allowed", 405);
      response.headers.set("Allow", std::string(resolution.allow));
      return response;
    }
    case Resolution::Kind::kOptions: {
      http::Response response;
      response.status = 200;
      response.headers.set("Allow", std::string(resolution.allow));
      return response;
    }
    case Resolution::Kind::kFound:  // not the router's to answer; treat as a routing bug
    case Resolution::Kind::kNotFound:
      break;
  }
  return http::Response::text("Not Found", 404);
}

http::Response Router::run_chain(std::size_t index, const Resolution& resolution,
                                 http::Request& request) const {
  if (index == impl_->middleware.size()) {
    if (resolution.kind == Resolution::Kind::kFound) return resolution.endpoint->handler(request);
    return own_answer(resolution);
  }
  // Two pointers' worth of captures fit std::function's inline buffer: no allocation per layer.
  struct Chain {
    const Router* router;
    const Resolution* resolution;
  } chain{this, &resolution};
  const Chain* at = &chain;
  http::Next next = [at, index](http::Request& inner) {
    return at->router->run_chain(index + 1, *at->resolution, inner);
  };
  return impl_->middleware[index](request, next);
}

http::Response Router::respond(const Resolution& resolution, http::Request& request) const {
  return run_chain(0, resolution, request);
}

http::Response Router::handle(http::Request& request) const {
  Resolution resolution = resolve(request);
  return respond(resolution, request);
}

bool Router::has_middleware() const noexcept { return !impl_->middleware.empty(); }

std::size_t Router::route_count() const noexcept { return impl_->routes.size(); }

std::string_view Router::route_pattern(std::size_t index) const noexcept {
  if (index >= impl_->routes.size()) return kUnmatched;
  return impl_->routes[index]->pattern;
}

}  // namespace cachekit::server
