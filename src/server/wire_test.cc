#include "server/wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace cachekit::server::detail {
namespace {

using testing::HasSubstr;
using testing::Not;

TEST(WriteHead, WritesStatusFieldsAndFraming) {
  auto response = http::Response::text("hello");
  response.headers.add("Set-Cookie", "a=1");
  response.headers.add("Set-Cookie", "b=2");
  std::string out;
  write_head(out, response, {.request_id = "rid", .keep_alive = true});
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(out, HasSubstr("\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"));
  EXPECT_THAT(out, HasSubstr("\r\nContent-Length: 5\r\n"));
  EXPECT_THAT(out, HasSubstr("\r\nX-Request-Id: rid\r\n"));
  EXPECT_THAT(out, HasSubstr("\r\nDate: "));
  EXPECT_THAT(out, Not(HasSubstr("Connection")));
  EXPECT_TRUE(out.ends_with("\r\n\r\n"));
}

TEST(WriteHead, ReplacesFramingFieldsAndDropsUnsafeOnes) {
  auto response = http::Response::text("hello");
  response.headers.add("Content-Length", "999");
  response.headers.add("Transfer-Encoding", "chunked");
  response.headers.add("Connection", "upgrade");
  response.headers.add("X-Evil", "a\r\nInjected: yes");
  std::string out;
  write_head(out, response, {.keep_alive = false});
  EXPECT_THAT(out, HasSubstr("Content-Length: 5\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("999")));
  EXPECT_THAT(out, Not(HasSubstr("chunked")));
  EXPECT_THAT(out, Not(HasSubstr("Injected")));
  EXPECT_THAT(out, HasSubstr("Connection: close\r\n"));
}

TEST(WriteHead, KeepsAResponsesOwnDateAndRequestId) {
  auto response = http::Response::text("x");
  response.headers.set("Date", "Sun, 06 Nov 1994 08:49:37 GMT");
  response.headers.set("X-Request-Id", "mine");
  std::string out;
  write_head(out, response, {.request_id = "server"});
  EXPECT_THAT(out, HasSubstr("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
  EXPECT_THAT(out, HasSubstr("X-Request-Id: mine\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("server")));
}

TEST(WriteHead, HeadAndBodilessStatuses) {
  auto head_hit = http::Response::text("");
  head_hit.headers.set("Content-Length", "1234");  // a cached GET's length, body dropped
  std::string out;
  HeadParams head{.head_request = true};
  write_head(out, head_hit, head);
  EXPECT_THAT(out, HasSubstr("Content-Length: 1234\r\n"));
  auto with_body = http::Response::text("abc");
  EXPECT_EQ(body_bytes_to_write(with_body, head), 0U);
  write_head(out, with_body, head);
  EXPECT_THAT(out, HasSubstr("Content-Length: 3\r\n"));

  http::Response not_modified;
  not_modified.status = 304;
  write_head(out, not_modified, {});
  EXPECT_TRUE(out.starts_with("HTTP/1.1 304 Not Modified\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("Content-Length")));
  EXPECT_EQ(body_bytes_to_write(not_modified, {}), 0U);
}

TEST(WriteHead, Http10KeepAliveIsExplicit) {
  std::string out;
  write_head(out, http::Response::text("x"), {.keep_alive = true, .http10 = true});
  EXPECT_THAT(out, HasSubstr("Connection: keep-alive\r\n"));
}

TEST(HttpDate, IsAnImfFixdate) {
  std::string_view date = http_date();
  ASSERT_EQ(date.size(), 29U);
  EXPECT_TRUE(date.ends_with(" GMT"));
  EXPECT_EQ(date[3], ',');
}

TEST(RequestId, IsUniqueAndValidatesClientIds) {
  std::set<std::string> seen;
  std::string id;
  for (int i = 0; i < 10000; ++i) {
    new_request_id(id);
    EXPECT_EQ(id.size(), 16U);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10000U);
  EXPECT_TRUE(acceptable_request_id("abc-123_x.y:z"));
  EXPECT_FALSE(acceptable_request_id(""));
  EXPECT_FALSE(acceptable_request_id("a b"));
  EXPECT_FALSE(acceptable_request_id(std::string(129, 'a')));
}

TEST(SplitTarget, SeparatesPathAndQuery) {
  std::string path, query;
  split_target("/a/b?x=1&y=2", path, query);
  EXPECT_EQ(path, "/a/b");
  EXPECT_EQ(query, "x=1&y=2");
  split_target("/plain", path, query);
  EXPECT_EQ(path, "/plain");
  EXPECT_EQ(query, "");
  split_target("http://example.com/p?q", path, query);
  EXPECT_EQ(path, "/p");
  EXPECT_EQ(query, "q");
  split_target("http://example.com", path, query);
  EXPECT_EQ(path, "/");
  split_target("/r?next=http://x/", path, query);
  EXPECT_EQ(path, "/r");
  EXPECT_EQ(query, "next=http://x/");
}

}  // namespace
}  // namespace cachekit::server::detail
