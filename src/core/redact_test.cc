// redact(): every shape of secret in a URL is masked, and nothing else is lost needlessly.

#include "cachekit/redact.h"

#include <gtest/gtest.h>

namespace cachekit {
namespace {

TEST(Redact, MasksTheUserinfoPassword) {
  EXPECT_EQ(redact("redis://user:secret@host:6379/0"), "redis://user:***@host:6379/0");
  EXPECT_EQ(redact("redis://:secret@host"), "redis://:***@host");
  EXPECT_EQ(redact("postgresql://app:pw@db.local/cache"), "postgresql://app:***@db.local/cache");
}

TEST(Redact, MasksPasswordsContainingDelimiters) {
  for (const char* password :
       {"pa/ss", "pa?ss", "pa,ss", "pa#ss", "pa@ss", "pa:ss", "p%40ss", "a/b?c#d@e:f,g"}) {
    const std::string url = std::string("redis://user:") + password + "@host:6379/2";
    const std::string masked = redact(url);
    EXPECT_EQ(masked, "redis://user:***@host:6379/2") << url;
  }
}

TEST(Redact, MasksSecretQueryParameters) {
  EXPECT_EQ(redact("redis://host/0?password=hunter2&db=1"), "redis://host/0?password=***&db=1");
  EXPECT_EQ(redact("http://h/p?a=1&Token=abc#frag"), "http://h/p?a=1&Token=***#frag");
  EXPECT_EQ(redact("unix:///tmp/r.sock?db=2;pwd=x"), "unix:///tmp/r.sock?db=2;pwd=***");
  EXPECT_EQ(redact("http://h/p?passenger=1"), "http://h/p?passenger=1");
}

TEST(Redact, MasksMoreWhenTheFormIsUnclear) {
  EXPECT_EQ(redact("redis://secret@host"), "redis://***@host");
  EXPECT_EQ(redact("user:secret@host:11211"), "user:***@host:11211");
  EXPECT_EQ(redact("redis:/user:secret@host"), "redis:***@host");
  EXPECT_EQ(redact("http://host/x?mail=a@b"), "http://***@b");
  EXPECT_EQ(redact("password=x"), "password=x") << "no delimiter: not a parameter";
  EXPECT_EQ(redact("?password=x"), "?password=***");
}

TEST(Redact, LeavesUrlsWithoutSecretsAlone) {
  for (const char* url : {"redis://127.0.0.1:6379/0", "http://127.0.0.1:8001", "locmem://x",
                          "file:///var/tmp/cache", "", "not a url"}) {
    EXPECT_EQ(redact(url), url);
  }
}

}  // namespace
}  // namespace cachekit
