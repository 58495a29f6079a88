#include "cachekit/caches.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "cachekit/backends/locmem.h"

namespace cachekit {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Sets (or unsets, for nullptr) an environment variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~ScopedEnv() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class CachesConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "cachekit-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  // Expects `text` to be refused with an error naming the cache and field.
  ConfigError refused(const std::string& text, const std::string& alias, const std::string& field) {
    fs::path path = write("bad.toml", text);
    try {
      (void)Caches::from_file(path);
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file(), path.string()) << e.what();
      EXPECT_EQ(e.alias(), alias) << e.what();
      EXPECT_EQ(e.field(), field) << e.what();
      EXPECT_THAT(e.what(), StartsWith(path.string() + ": "));
      if (!alias.empty()) {
        EXPECT_THAT(e.what(), HasSubstr("cache '" + alias + "'"));
      }
      if (!field.empty()) {
        EXPECT_THAT(e.what(), HasSubstr("field '" + field + "'"));
      }
      return e;
    }
    ADD_FAILURE() << "accepted:\n" << text;
    return ConfigError("", "", "", "");
  }

  fs::path dir_;
};

TEST_F(CachesConfig, LoadsSeveralCachesFromFile) {
  fs::path path = write("cachekit.toml", R"(
[app]
unrelated = "settings of the application are left alone"

[caches.default]
backend = "locmem"
location = "main"
timeout = 60
key_prefix = "shop"
version = 3
serializer = "msgpack"
options = { max_entries = 1000, cull_frequency = 4, max_bytes = 1048576, shards = 4 }

[caches.pages]
backend = "file"
location = "page-cache"        # relative: resolved against this file's directory
timeout = "never"
options = { max_entries = 50, cull_frequency = 0 }

[caches.off]
url = "dummy://"
timeout = 1.5
)");
  Caches caches = Caches::from_file(path);
  EXPECT_EQ(caches.source(), path.string());
  EXPECT_EQ(caches.aliases(), (std::vector<std::string>{"default", "off", "pages"}));

  const CacheOptions& main = caches.default_cache().options();
  EXPECT_EQ(main.alias, "default");
  EXPECT_EQ(main.default_timeout, Timeout(std::chrono::seconds(60)));
  EXPECT_EQ(main.key_prefix, "shop");
  EXPECT_EQ(main.version, 3);
  EXPECT_EQ(main.serializer, Serializer::kMsgpack);
  EXPECT_EQ(caches.default_cache().backend_info().name, "locmem");

  EXPECT_EQ(caches["pages"].backend_info().name, "file");
  EXPECT_TRUE(caches["pages"].options().default_timeout.is_never());
  EXPECT_TRUE(fs::is_directory(dir_ / "page-cache"));
  EXPECT_TRUE(caches["pages"].set("k", "v"));
  EXPECT_EQ(caches["pages"].get("k"), Bytes("v"));

  EXPECT_EQ(caches["off"].backend_info().name, "dummy");
  EXPECT_EQ(caches["off"].options().default_timeout, Timeout(std::chrono::milliseconds(1500)));
  EXPECT_EQ(caches["off"].options().key_prefix, "");
  EXPECT_EQ(caches["off"].options().version, 1);
}

TEST_F(CachesConfig, DefaultsMatchDjango) {
  Caches caches = Caches::from_toml("[caches.default]\nbackend = \"locmem\"\n", "inline");
  const CacheOptions& options = caches.default_cache().options();
  EXPECT_EQ(options.default_timeout, Timeout(std::chrono::seconds(300)));
  EXPECT_EQ(options.key_prefix, "");
  EXPECT_EQ(options.version, 1);
  EXPECT_EQ(options.serializer, Serializer::kJson);
  EXPECT_EQ(caches.source(), "inline");
}

TEST_F(CachesConfig, UnsetFieldsKeepCacheOptionsDefaults) {
  Caches caches = Caches::from_toml("[caches.default]\nbackend = \"locmem\"\n", "inline");
  const CacheOptions& options = caches.default_cache().options();
  const CacheOptions defaults;
  EXPECT_EQ(options.alias, "default");
  EXPECT_EQ(options.default_timeout, defaults.default_timeout);
  EXPECT_EQ(options.compress_min_bytes, defaults.compress_min_bytes);
  EXPECT_EQ(options.compress_level, defaults.compress_level);
  EXPECT_EQ(options.decompress_max_bytes, defaults.decompress_max_bytes);
  EXPECT_EQ(options.max_error_logs_per_second, defaults.max_error_logs_per_second);
  EXPECT_FALSE(options.key_function);
}

TEST_F(CachesConfig, ZeroAndNegativeTimeoutsAreAllowedAndMeanExpired) {
  Caches caches = Caches::from_toml(R"(
[caches.default]
backend = "locmem"
timeout = 0
[caches.negative]
backend = "locmem"
location = "n"
timeout = -5
)",
                                    "inline");
  EXPECT_EQ(caches.default_cache().options().default_timeout, Timeout(0));
  EXPECT_EQ(caches["negative"].options().default_timeout, Timeout(-5));
  EXPECT_TRUE(caches["negative"].add("k", "v"));
  EXPECT_FALSE(caches["negative"].get("k").has_value());
}

// A spy factory sees exactly what a backend factory would be given.
TEST_F(CachesConfig, FactoriesReceiveLocationsAndOptionsAsCanonicalToml) {
  std::vector<BackendSpec> seen;
  BackendRegistry registry;
  registry.add("spy", [&](const BackendSpec& spec) {
    seen.push_back(spec);
    return make_locmem_backend();
  });
  (void)Caches::from_toml(R"(
[caches.default]
backend = "spy"
location = " a:1 ; b:2,c:3 ,"
options = { n = 0x10, flag = true, name = "x\"y", ratio = 0.5, list = [1, 'two'] }
[caches.listed]
backend = "spy"
location = ["one", " two "]
)",
                          "inline", nullptr, registry);
  ASSERT_EQ(seen.size(), 2U);
  const BackendSpec& spec = seen[0];
  EXPECT_EQ(spec.file, "inline");
  EXPECT_EQ(spec.alias, "default");
  EXPECT_EQ(spec.locations, (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  EXPECT_EQ(spec.options.at("n"), "16");
  EXPECT_EQ(spec.options.at("flag"), "true");
  EXPECT_EQ(spec.options.at("name"), "\"x\\\"y\"");
  EXPECT_EQ(spec.options.at("list"), "[ 1, \"two\" ]");
  EXPECT_EQ(spec.integer_option("n", 0, 100), 16);
  EXPECT_EQ(spec.bool_option("flag"), true);
  EXPECT_EQ(spec.string_option("name"), "x\"y");
  EXPECT_EQ(spec.number_option("ratio"), 0.5);
  EXPECT_EQ(spec.number_option("n"), 16.0);
  EXPECT_EQ(spec.integer_option("absent", 0, 1), std::nullopt);
  EXPECT_EQ(seen[1].locations, (std::vector<std::string>{"one", "two"}));
}

TEST_F(CachesConfig, OptionReadersNameTheOptionOnBadValues) {
  BackendSpec spec{"f.toml", "main", "spy", {}, {{"n", "7"}, {"s", "\"x\""}, {"b", "nope"}},
                   nullptr};
  auto field_of = [](auto&& read) {
    try {
      read();
    } catch (const ConfigError& e) {
      return e.field() + " | " + e.what();
    }
    return std::string("no error");
  };
  EXPECT_THAT(field_of([&] { (void)spec.integer_option("n", 0, 5); }),
              AllOf(StartsWith("options.n |"), HasSubstr("between 0 and 5, got 7")));
  EXPECT_THAT(field_of([&] { (void)spec.integer_option("s", 0, 5); }),
              AllOf(StartsWith("options.s |"), HasSubstr("expected an integer")));
  EXPECT_THAT(field_of([&] { (void)spec.bool_option("n"); }), StartsWith("options.n |"));
  EXPECT_THAT(field_of([&] { (void)spec.string_option("n"); }), StartsWith("options.n |"));
  EXPECT_THAT(field_of([&] { (void)spec.number_option("s"); }), StartsWith("options.s |"));
  EXPECT_THAT(field_of([&] { (void)spec.string_option("b"); }),
              AllOf(StartsWith("options.b |"), HasSubstr("not a TOML value")));
  EXPECT_THAT(field_of([&] {
                spec.reject_unknown_options({"n", "s"});
              }),
              AllOf(StartsWith("options.b |"), HasSubstr("f.toml: cache 'main'"),
                    HasSubstr("the known options are n, s")));
}

TEST_F(CachesConfig, UnknownBackendListsTheKnownOnes) {
  auto e = refused("[caches.default]\nbackend = \"memcache\"\n", "default", "backend");
  EXPECT_THAT(e.what(), HasSubstr("unknown backend \"memcache\""));
  EXPECT_THAT(e.what(), HasSubstr("dummy, file, locmem"));
}

TEST_F(CachesConfig, CompressionSettingsReachTheCacheAndAreChecked) {
  fs::path path = write("z.toml", R"(
[caches.default]
backend = "locmem"
compress_min_bytes = 512
compress_level = 9
decompress_max_bytes = 1048576
)");
  Caches caches = Caches::from_file(path);
  EXPECT_EQ(caches.default_cache().options().compress_min_bytes, 512u);
  EXPECT_EQ(caches.default_cache().options().compress_level, 9);
  EXPECT_EQ(caches.default_cache().options().decompress_max_bytes, 1048576u);
  auto e = refused("[caches.default]\nbackend = \"locmem\"\ncompress_level = 42\n", "default",
                   "compress_level");
  EXPECT_THAT(e.what(), HasSubstr("between 1 and 19, got 42"));
  refused("[caches.default]\nbackend = \"locmem\"\ncompress_min_bytes = \"1k\"\n", "default",
          "compress_min_bytes");
}

TEST_F(CachesConfig, UnknownFieldIsNamed) {
  auto e = refused("[caches.default]\nbackend = \"locmem\"\ntiemout = 5\n", "default", "tiemout");
  EXPECT_THAT(e.what(), HasSubstr("unknown field (line 3)"));
  EXPECT_THAT(e.what(), HasSubstr("timeout"));
}

TEST_F(CachesConfig, BadTimeoutsAreRefused) {
  auto e =
      refused("[caches.default]\nbackend = \"locmem\"\ntimeout = true\n", "default", "timeout");
  EXPECT_THAT(e.what(), HasSubstr("got a boolean (line 3)"));
  e = refused("[caches.default]\nbackend = \"locmem\"\ntimeout = \"soon\"\n", "default", "timeout");
  EXPECT_THAT(e.what(), HasSubstr("\"soon\""));
  refused("[caches.default]\nbackend = \"locmem\"\ntimeout = 1e300\n", "default", "timeout");
  refused("[caches.default]\nbackend = \"locmem\"\ntimeout = nan\n", "default", "timeout");
}

TEST_F(CachesConfig, BadFieldTypesAreRefused) {
  refused("[caches.default]\nbackend = 3\n", "default", "backend");
  refused("[caches.default]\nbackend = \"locmem\"\nversion = \"2\"\n", "default", "version");
  refused("[caches.default]\nbackend = \"locmem\"\nkey_prefix = 1\n", "default", "key_prefix");
  refused("[caches.default]\nbackend = \"locmem\"\nlocation = [1]\n", "default", "location");
  refused("[caches.default]\nbackend = \"locmem\"\noptions = 5\n", "default", "options");
  auto e = refused("[caches.default]\nbackend = \"locmem\"\nserializer = \"pickle\"\n", "default",
                   "serializer");
  EXPECT_THAT(e.what(), HasSubstr("\"json\" or \"msgpack\""));
  refused("[caches]\ndefault = 5\n", "default", "");
  refused("[caches.default]\n", "default", "backend");
}

TEST_F(CachesConfig, BadOptionValuesNameTheOption) {
  auto e = refused("[caches.default]\nbackend = \"locmem\"\noptions = { max_entries = \"many\" }\n",
                   "default", "options.max_entries");
  EXPECT_THAT(e.what(), HasSubstr("expected an integer, got \"many\""));
  refused("[caches.default]\nbackend = \"locmem\"\noptions = { max_entries = 0 }\n", "default",
          "options.max_entries");
  refused("[caches.default]\nbackend = \"locmem\"\noptions = { shards = 2000 }\n", "default",
          "options.shards");
  refused(
      "[caches.default]\nbackend = \"file\"\nlocation = \"d\"\noptions = { cull_frequency = -1 }\n",
      "default", "options.cull_frequency");
  e = refused(
      "[caches.default]\nbackend = \"file\"\nlocation = \"d\"\noptions = { max_bytes = 5 }\n",
      "default", "options.max_bytes");
  EXPECT_THAT(e.what(), HasSubstr("max_entries, cull_frequency"));
  refused("[caches.default]\nbackend = \"dummy\"\noptions = { x = 1 }\n", "default", "options.x");
}

TEST_F(CachesConfig, FileBackendNeedsOneDirectory) {
  auto e = refused("[caches.default]\nbackend = \"file\"\n", "default", "location");
  EXPECT_THAT(e.what(), HasSubstr("needs a directory"));
  refused("[caches.default]\nbackend = \"file\"\nlocation = \"a;b\"\n", "default", "location");
  write("not-a-dir", "x");
  refused("[caches.default]\nbackend = \"file\"\nlocation = \"not-a-dir\"\n", "default",
          "location");
}

TEST_F(CachesConfig, MissingDefaultIsRefused) {
  auto e = refused("[caches.other]\nbackend = \"locmem\"\n", "default", "");
  EXPECT_THAT(e.what(), HasSubstr("E001"));
  e = refused("[cache.default]\nbackend = \"locmem\"\n", "", "caches");
  EXPECT_THAT(e.what(), HasSubstr("no [caches] table"));
}

TEST_F(CachesConfig, BadTomlSyntaxNamesTheLine) {
  auto e = refused("[caches.default]\nbackend = \"locmem\"\ntimeout = = 3\n", "", "");
  EXPECT_THAT(e.what(), HasSubstr("TOML syntax error at line 3"));
}

TEST_F(CachesConfig, UnreadableFileIsNamed) {
  fs::path path = dir_ / "missing.toml";
  try {
    (void)Caches::from_file(path);
    FAIL() << "a missing file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), path.string());
    EXPECT_THAT(e.what(), HasSubstr("No such file or directory"));
  }
}

TEST_F(CachesConfig, UrlAndBackendTogetherAreRefused) {
  auto e =
      refused("[caches.default]\nurl = \"locmem://\"\nbackend = \"locmem\"\n", "default", "url");
  EXPECT_THAT(e.what(), HasSubstr("either url or backend"));
  refused("[caches.default]\nurl = \"locmem://\"\nlocation = \"x\"\n", "default", "url");
  refused("[caches.default]\nurl = \"locmem\"\n", "default", "url");
  refused("[caches.default]\nurl = \"file://relative/dir\"\n", "default", "url");
  refused("[caches.default]\nurl = \"file:///tmp/%zz\"\n", "default", "url");
}

TEST_F(CachesConfig, UnknownAliasIsAConfigError) {
  Caches caches = Caches::from_toml("[caches.default]\nbackend = \"locmem\"\n", "inline");
  try {
    (void)caches.at("sessions");
    FAIL() << "an unknown alias was found";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.alias(), "sessions");
    EXPECT_THAT(e.what(), HasSubstr("cache 'sessions': is not configured"));
    EXPECT_THAT(e.what(), HasSubstr("the configured caches are default"));
  }
  EXPECT_EQ(caches.find("sessions"), nullptr);
  EXPECT_EQ(caches.find("default"), &caches.default_cache());
}

TEST_F(CachesConfig, FromUrlBuildsADefaultCache) {
  EXPECT_EQ(Caches::from_url("locmem://").default_cache().backend_info().name, "locmem");
  EXPECT_EQ(Caches::from_url("dummy://").default_cache().backend_info().name, "dummy");
  Caches files = Caches::from_url("file://" + (dir_ / "by%20url").string());
  EXPECT_EQ(files.default_cache().backend_info().name, "file");
  EXPECT_TRUE(fs::is_directory(dir_ / "by url"));
  EXPECT_THROW((void)Caches::from_url("nosuch://localhost:6379/0"), ConfigError);
}

TEST_F(CachesConfig, CacheUrlVariableReplacesTheDefaultBackendAndKeepsItsSettings) {
  fs::path path = write("app.toml", R"(
[caches.default]
backend = "locmem"
key_prefix = "shop"
timeout = 42
options = { max_bytes = 1000 }
[caches.other]
backend = "locmem"
location = "other"
)");
  std::string url = "file://" + (dir_ / "from-env").string();
  ScopedEnv config("CACHEKIT_CONFIG", path.c_str());
  ScopedEnv cache_url("CACHEKIT_CACHE_URL", url.c_str());
  Caches caches = Caches::from_environment();
  EXPECT_EQ(caches.source(), path.string());
  const Cache& cache = caches.default_cache();
  EXPECT_EQ(cache.backend_info().name, "file");  // locmem's max_bytes was dropped with it
  EXPECT_EQ(cache.options().key_prefix, "shop");
  EXPECT_EQ(cache.options().default_timeout, Timeout(42));
  EXPECT_TRUE(fs::is_directory(dir_ / "from-env"));
  EXPECT_EQ(caches["other"].backend_info().name, "locmem");
}

TEST_F(CachesConfig, CacheUrlVariableSuppliesAMissingDefault) {
  fs::path path = write("app.toml", "[caches.other]\nbackend = \"locmem\"\n");
  ScopedEnv config("CACHEKIT_CONFIG", path.c_str());
  ScopedEnv cache_url("CACHEKIT_CACHE_URL", "dummy://");
  Caches caches = Caches::from_environment();
  EXPECT_EQ(caches.default_cache().backend_info().name, "dummy");
  EXPECT_EQ(caches.aliases(), (std::vector<std::string>{"default", "other"}));
}

TEST_F(CachesConfig, FromEnvironmentFallsBackToTheFileThenToLocmem) {
  ScopedEnv config("CACHEKIT_CONFIG", nullptr);
  ScopedEnv cache_url("CACHEKIT_CACHE_URL", nullptr);
  Caches built_in = Caches::from_environment();
  EXPECT_EQ(built_in.source(), "<built-in>");
  EXPECT_EQ(built_in.default_cache().backend_info().name, "locmem");

  fs::path path = write("fallback.toml", "[caches.default]\nurl = \"dummy://\"\n");
  EXPECT_EQ(Caches::from_environment(path).default_cache().backend_info().name, "dummy");
  {
    ScopedEnv only_url("CACHEKIT_CACHE_URL", "dummy://");
    Caches from_url = Caches::from_environment();
    EXPECT_EQ(from_url.source(), "CACHEKIT_CACHE_URL");
    EXPECT_EQ(from_url.default_cache().backend_info().name, "dummy");
  }
  ScopedEnv bad_url("CACHEKIT_CACHE_URL", "nonsense");
  try {
    (void)Caches::from_environment();
    FAIL() << "a bad CACHEKIT_CACHE_URL was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "CACHEKIT_CACHE_URL");
    EXPECT_EQ(e.field(), "url");
  }
}

TEST_F(CachesConfig, AliasesOnTheSameLocmemLocationShareData) {
  Caches caches = Caches::from_toml(R"(
[caches.default]
backend = "locmem"
location = "shared"
[caches.same]
url = "locmem://shared"
[caches.elsewhere]
backend = "locmem"
location = "elsewhere"
[caches.bigger]
backend = "locmem"
location = "shared"
options = { max_entries = 5000 }
)",
                                    "inline");
  ASSERT_TRUE(caches["default"].set("k", "v"));
  EXPECT_EQ(caches["same"].get("k"), Bytes("v"));
  EXPECT_EQ(&caches["same"].backend(), &caches["default"].backend());
  EXPECT_FALSE(caches["elsewhere"].get("k").has_value());
  EXPECT_NE(&caches["elsewhere"].backend(), &caches["default"].backend());
  EXPECT_NE(&caches["bigger"].backend(), &caches["default"].backend());
}

TEST_F(CachesConfig, AtReturnsTheSameCacheEveryTime) {
  Caches caches = Caches::from_toml("[caches.default]\nbackend = \"locmem\"\n", "inline");
  Cache* first = &caches.at("default");
  EXPECT_EQ(&caches.at("default"), first);
  EXPECT_EQ(&caches["default"], first);
  EXPECT_EQ(&caches.default_cache(), first);
  Caches moved = std::move(caches);
  EXPECT_EQ(&moved.default_cache(), first);
}

TEST_F(CachesConfig, ConcurrentAtReturnsTheSameCacheInEveryThread) {
  Caches caches = Caches::from_toml(R"(
[caches.default]
backend = "locmem"
[caches.other]
backend = "locmem"
location = "other"
)",
                                    "inline");
  const Cache* expected_default = &caches.at("default");
  const Cache* expected_other = &caches.at("other");
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (&caches.at("default") != expected_default) ++mismatches;
        if (&caches["other"] != expected_other) ++mismatches;
        caches.at("other").set("k" + std::to_string(t), "v");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_FALSE(caches.default_cache().get("k0").has_value());
  EXPECT_EQ(caches["other"].get("k7"), Bytes("v"));
}

TEST(BackendRegistry, KnowsTheBuiltinsAndAcceptsMore) {
  BackendRegistry registry = BackendRegistry::with_builtins();
  EXPECT_EQ(registry.names(),
            (std::vector<std::string>{"dummy", "file", "locmem", "memcached", "postgres", "redis",
                                      "redis-cluster", "rediss", "sentinel", "sqlite", "tiered"}));
  EXPECT_EQ(registry.find("custom"), nullptr);
  registry.add("custom", [](const BackendSpec&) { return make_locmem_backend(); });
  EXPECT_NE(registry.find("custom"), nullptr);
}

TEST(ConfigError, LeavesOutEmptyParts) {
  EXPECT_STREQ(ConfigError("f.toml", "a", "timeout", "bad").what(),
               "f.toml: cache 'a': field 'timeout': bad");
  EXPECT_STREQ(ConfigError("f.toml", "", "", "bad").what(), "f.toml: bad");
  EXPECT_STREQ(ConfigError("", "a", "", "bad").what(), "cache 'a': bad");
}

}  // namespace
}  // namespace cachekit

namespace cachekit {
namespace {

// Configuration errors quote URLs; a password in them must never reach the message.
class SecretsInConfigErrors : public CachesConfig {};

TEST_F(SecretsInConfigErrors, RedisPasswordsWithDelimitersAreMasked) {
  for (const std::string password : {"pa/ss", "pa?ss", "pa,ss"}) {
    auto e = refused(
        "[caches.default]\nurl = \"redis://user:" + password + "@127.0.0.1:6379/0?bogus=1\"\n",
        "default", "location");
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr(password))) << e.what();
    EXPECT_THAT(e.what(), HasSubstr("user:***@127.0.0.1")) << e.what();
  }
}

TEST_F(SecretsInConfigErrors, AMalformedUrlIsQuotedMasked) {
  auto e = refused("[caches.default]\nurl = \"user:hunter2@host\"\n", "default", "url");
  EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("hunter2"))) << e.what();
}

}  // namespace
}  // namespace cachekit
