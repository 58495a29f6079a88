// The option vocabulary shared by every backend: the current names load quietly, each old name
// still loads (for one release) with a warning naming the file, the cache, the old and the new
// name, and giving both names is a configuration error naming the file, cache and field.
#include "config/option_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cachekit/caches.h"
#include "core/log.h"

namespace cachekit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What the "cachekit" logger writes while this object lives.
class CapturedLog {
 public:
  CapturedLog()
      : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)),
        level_(detail::logger()->level()) {
    sink_->set_pattern("%l %v");
    detail::logger()->sinks().push_back(sink_);
    detail::logger()->set_level(std::min(level_, spdlog::level::warn));
  }
  ~CapturedLog() {
    detail::logger()->set_level(level_);
    std::erase(detail::logger()->sinks(), sink_);
  }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::string text() {
    sink_->flush();
    return text_.str();
  }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  spdlog::level::level_enum level_;
};

// A [caches.default] table for each backend that takes network or pool options; none of them
// connects while the configuration loads.
std::string cache_table(const std::string& backend) {
  if (backend == "redis") return "backend = \"redis\"\nlocation = \"redis://127.0.0.1:1/0\"\n";
  if (backend == "memcached") return "backend = \"memcached\"\nlocation = \"127.0.0.1:1\"\n";
  if (backend == "sqlite") return "backend = \"sqlite\"\nlocation = \"/nonexistent/cache.db\"\n";
  return "backend = \"postgres\"\nlocation = \"postgresql://nobody@127.0.0.1:1/db\"\n";
}

std::string config(const std::string& backend, const std::string& options) {
  return "[caches.default]\n" + cache_table(backend) + "options = { " + options + " }\n";
}

struct Rename {
  std::string backend;
  std::string old_option;  // "name = value"
  std::string old_name;
  std::string new_name;
};

const std::vector<Rename>& renames() {
  static const std::vector<Rename> all = {
      {"redis", "timeout_ms = 80", "timeout_ms", "io_timeout_ms"},
      {"redis", "max_connections = 4", "max_connections", "pool_size"},
      {"redis", "pool_timeout_ms = 30", "pool_timeout_ms", "pool_wait_ms"},
      {"redis", "retry_interval_ms = 500", "retry_interval_ms", "retry_after_ms"},
      {"redis", "failure_threshold = 2", "failure_threshold", "down_after_failures"},
      {"memcached", "timeout_ms = 80", "timeout_ms", "io_timeout_ms"},
      {"memcached", "server_failure_limit = 2", "server_failure_limit", "down_after_failures"},
      {"memcached", "retry_timeout_s = 3", "retry_timeout_s", "retry_after_ms"},
      {"sqlite", "timeout_ms = 250", "timeout_ms", "call_timeout_ms"},
      {"sqlite", "max_connections = 2", "max_connections", "pool_size"},
      {"postgres", "timeout_ms = 250", "timeout_ms", "call_timeout_ms"},
      {"postgres", "max_connections = 2", "max_connections", "pool_size"},
      {"postgres", "failure_threshold = 2", "failure_threshold", "down_after_failures"},
      {"postgres", "retry_interval_ms = 500", "retry_interval_ms", "retry_after_ms"},
  };
  return all;
}

TEST(OptionNames, EachOldNameLoadsAndWarnsNamingFileCacheOldAndNew) {
  for (const Rename& r : renames()) {
    SCOPED_TRACE(r.backend + ": " + r.old_option);
    CapturedLog log;
    EXPECT_NO_THROW(
        { auto caches = Caches::from_toml(config(r.backend, r.old_option), "caches.toml"); });
    EXPECT_THAT(log.text(), HasSubstr("warning caches.toml: cache 'default': option '" +
                                      r.old_name + "' is deprecated"));
    EXPECT_THAT(log.text(), HasSubstr("use '" + r.new_name + "'"));
  }
}

TEST(OptionNames, CurrentNamesLoadWithoutWarnings) {
  const std::pair<std::string, std::string> configs[] = {
      {"redis",
       "connect_timeout_ms = 50, io_timeout_ms = 80, pool_size = 4, pool_wait_ms = 30, "
       "retry_after_ms = 500, down_after_failures = 2"},
      {"memcached",
       "connect_timeout_ms = 50, io_timeout_ms = 80, pool_size = 4, pool_wait_ms = 30, "
       "retry_after_ms = 1500, down_after_failures = 2"},
      {"sqlite", "call_timeout_ms = 250, pool_size = 2"},
      {"postgres",
       "call_timeout_ms = 250, connect_timeout_ms = 100, pool_size = 2, "
       "down_after_failures = 2, retry_after_ms = 500"},
  };
  for (const auto& [backend, options] : configs) {
    SCOPED_TRACE(backend);
    CapturedLog log;
    EXPECT_NO_THROW({ auto caches = Caches::from_toml(config(backend, options), "caches.toml"); });
    EXPECT_THAT(log.text(), Not(HasSubstr("deprecated")));
  }
}

TEST(OptionNames, OldAndNewNameTogetherIsAnErrorNamingFileCacheAndField) {
  for (const Rename& r : renames()) {
    SCOPED_TRACE(r.backend + ": " + r.old_option);
    const std::string both = r.old_option + ", " + r.new_name + " = 5";
    try {
      auto caches = Caches::from_toml(config(r.backend, both), "caches.toml");
      ADD_FAILURE() << "loaded";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file(), "caches.toml");
      EXPECT_EQ(e.alias(), "default");
      EXPECT_EQ(e.field(), "options." + r.old_name);
      EXPECT_THAT(e.what(), HasSubstr("give only " + r.new_name));
    }
  }
}

TEST(OptionNames, OldValuesCarryOverAndSecondsBecomeMilliseconds) {
  BackendSpec spec;
  spec.file = "caches.toml";
  spec.alias = "default";
  spec.options = {{"retry_timeout_s", "3"}, {"timeout_ms", "80"}, {"pool_size", "4"}};
  CapturedLog log;
  BackendSpec current = with_current_option_names(
      spec, {{"timeout_ms", "io_timeout_ms"}, {"retry_timeout_s", "retry_after_ms", 1000}});
  const std::map<std::string, std::string, std::less<>> expected = {
      {"io_timeout_ms", "80"}, {"pool_size", "4"}, {"retry_after_ms", "3000"}};
  EXPECT_EQ(current.options, expected);
  EXPECT_THAT(log.text(), HasSubstr("use 'retry_after_ms' (the value times 1000)"));
}

TEST(OptionNames, AScaledOldValueThatIsNotAnIntegerNamesTheOldOption) {
  BackendSpec spec;
  spec.file = "caches.toml";
  spec.alias = "default";
  spec.options = {{"retry_timeout_s", "\"soon\""}};
  try {
    (void)with_current_option_names(spec, {{"retry_timeout_s", "retry_after_ms", 1000}});
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "options.retry_timeout_s");
  }
}

}  // namespace
}  // namespace cachekit
