// Django's django.utils.cache header helpers and the view decorators built on them. The merge
// rules follow Django 5's patch_cache_control line by line (including keeping the position of
// a directive that is overwritten, since Python dicts keep insertion order), so the outputs
// of Django's own test table come out the same.

#include "cachekit/http/cache_control.h"

#include <algorithm>
#include <utility>

#include "http/text.h"

namespace cachekit::http {

namespace {

using detail::lower;

std::string directive_name(std::string_view name) {
  std::string out = lower(detail::trim(name));
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

// An ordered Cache-Control under construction: `no-cache` keeps a set of field names (a bare
// no-cache is the nullopt member), every other directive one value.
class DirectiveMap {
 public:
  using Values = std::vector<std::optional<std::string>>;

  void put(const std::string& name, std::optional<std::string> value) {
    Values* slot = find(name);
    if (slot == nullptr) {
      entries_.emplace_back(name, Values{std::move(value)});
    } else if (name == "no-cache") {
      if (std::find(slot->begin(), slot->end(), value) == slot->end()) {
        slot->push_back(std::move(value));
      }
    } else {
      *slot = Values{std::move(value)};
    }
  }
  Values* find(std::string_view name) {
    for (auto& [n, v] : entries_) {
      if (n == name) return &v;
    }
    return nullptr;
  }
  void erase(std::string_view name) {
    std::erase_if(entries_, [&](const auto& e) { return e.first == name; });
  }
  [[nodiscard]] std::string str() const {
    std::string out;
    auto emit = [&](const std::string& name, const std::optional<std::string>& value) {
      if (!out.empty()) out += ", ";
      out += name;
      if (value) out += "=" + *value;
    };
    for (const auto& [name, values] : entries_) {
      bool bare = std::find(values.begin(), values.end(), std::nullopt) != values.end();
      if (name == "no-cache" && bare) {
        emit(name, std::nullopt);  // a bare no-cache supersedes field names
        continue;
      }
      for (const auto& v : values) emit(name, v);
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, Values>> entries_;
};

bool mentions(const CacheDirectives& directives, std::string_view name) {
  return std::any_of(directives.begin(), directives.end(),
                     [&](const CacheDirective& d) { return directive_name(d.name) == name; });
}

std::vector<std::string> vary_members(const Response& response) {
  std::string vary = detail::joined(response.headers, "Vary");  // outlives the views below
  std::vector<std::string> out;
  for (std::string_view m : detail::split_list(vary)) out.emplace_back(m);
  return out;
}

}  // namespace

CacheDirectives parse_cache_control(std::string_view value) {
  CacheDirectives out;
  for (std::string_view member : detail::split_list(value)) {
    std::size_t eq = member.find('=');
    std::string name = lower(detail::trim(member.substr(0, eq)));
    if (name.empty()) continue;
    if (eq == std::string_view::npos) {
      out.emplace_back(std::move(name));
    } else {
      out.emplace_back(std::move(name), std::string(detail::trim(member.substr(eq + 1))));
    }
  }
  return out;
}

void patch_cache_control(Response& response, const CacheDirectives& directives) {
  DirectiveMap cc;
  for (CacheDirective& d : parse_cache_control(detail::joined(response.headers, "Cache-Control"))) {
    cc.put(d.name, std::move(d.value));
  }
  // Allow overriding private caching and vice versa (Django checks the request as a whole).
  if (cc.find("private") != nullptr && mentions(directives, "public")) {
    cc.erase("private");
  } else if (cc.find("public") != nullptr && mentions(directives, "private")) {
    cc.erase("public");
  }
  for (const CacheDirective& d : directives) {
    std::string name = directive_name(d.name);
    std::optional<std::string> value = d.value;
    if (name == "max-age") {
      // A decorator and a middleware both setting max-age: the smaller one wins.
      const auto* existing = cc.find("max-age");
      if (existing != nullptr && !existing->empty() && existing->front() && value) {
        auto old_age = detail::parse_int(*existing->front());
        auto new_age = detail::parse_int(*value);
        if (old_age && new_age && *old_age < *new_age) value = std::to_string(*old_age);
      }
    }
    cc.put(name, std::move(value));
  }
  response.headers.set("Cache-Control", cc.str());
}

std::optional<std::int64_t> get_max_age(const Response& response) {
  std::optional<std::int64_t> age;
  bool found = false;
  for (const CacheDirective& d :
       parse_cache_control(detail::joined(response.headers, "Cache-Control"))) {
    if (d.name != "max-age") continue;
    found = true;  // as a Python dict: the last max-age is the one that counts
    age = d.value ? detail::parse_int(*d.value) : std::nullopt;
  }
  return found ? age : std::nullopt;
}

void patch_response_headers(Response& response, std::chrono::seconds timeout, const Clock& clock) {
  timeout = std::max(timeout, std::chrono::seconds(0));
  if (!response.headers.contains("Expires")) {
    response.headers.set("Expires", format_http_date(clock.now() + timeout));
  }
  patch_cache_control(response, {{"max-age", timeout}});
}

void add_never_cache_headers(Response& response, const Clock& clock) {
  patch_response_headers(response, std::chrono::seconds(-1), clock);
  patch_cache_control(response, {{"no-cache"}, {"no-store"}, {"must-revalidate"}, {"private"}});
}

void patch_vary_headers(Response& response, const std::vector<std::string>& names) {
  std::vector<std::string> vary = vary_members(response);
  for (const std::string& name : names) {
    bool present = std::any_of(vary.begin(), vary.end(),
                               [&](const std::string& v) { return iequals(v, name); });
    if (!present) vary.push_back(name);
  }
  if (std::find(vary.begin(), vary.end(), "*") != vary.end()) {
    response.headers.set("Vary", "*");
    return;
  }
  std::string value;
  for (const std::string& v : vary) {
    if (!value.empty()) value += ", ";
    value += v;
  }
  response.headers.set("Vary", std::move(value));
}

void patch_vary_headers(Response& response, std::initializer_list<std::string_view> names) {
  patch_vary_headers(response, std::vector<std::string>(names.begin(), names.end()));
}

bool has_vary_header(const Response& response, std::string_view name) {
  std::vector<std::string> vary = vary_members(response);
  return std::any_of(vary.begin(), vary.end(),
                     [&](const std::string& v) { return iequals(v, name); });
}

Handler never_cache(Handler handler, const Clock& clock) {
  return [handler = std::move(handler), &clock](Request& request) {
    Response response = handler(request);
    add_never_cache_headers(response, clock);
    return response;
  };
}

Handler cache_control(CacheDirectives directives, Handler handler) {
  return [directives = std::move(directives), handler = std::move(handler)](Request& request) {
    Response response = handler(request);
    patch_cache_control(response, directives);
    return response;
  };
}

Handler vary_on_headers(std::vector<std::string> names, Handler handler) {
  return [names = std::move(names), handler = std::move(handler)](Request& request) {
    Response response = handler(request);
    patch_vary_headers(response, names);
    return response;
  };
}

Handler vary_on_cookie(Handler handler) { return vary_on_headers({"Cookie"}, std::move(handler)); }

}  // namespace cachekit::http
