#include "server/request_checks.h"

#include <gtest/gtest.h>

namespace cachekit::server::detail {
namespace {

TEST(TransferEncodingVerdict, AcceptsOnlyALoneChunked) {
  EXPECT_EQ(transfer_encoding_verdict("chunked"), 0);
  EXPECT_EQ(transfer_encoding_verdict("Chunked"), 0);
  EXPECT_EQ(transfer_encoding_verdict(" chunked\t"), 0);
  EXPECT_EQ(transfer_encoding_verdict("gzip"), 501);
  EXPECT_EQ(transfer_encoding_verdict("xchunked"), 501);
  EXPECT_EQ(transfer_encoding_verdict("gzip, chunked"), 501);
  EXPECT_EQ(transfer_encoding_verdict("chunked, identity"), 400);
  EXPECT_EQ(transfer_encoding_verdict("chunked, chunked"), 400);
  EXPECT_EQ(transfer_encoding_verdict("chunked,"), 400);
  EXPECT_EQ(transfer_encoding_verdict("chunked;q=1"), 400);
  EXPECT_EQ(transfer_encoding_verdict(""), 400);
}

TEST(PlainContentLength, IsDigitsOnly) {
  EXPECT_TRUE(plain_content_length("0"));
  EXPECT_TRUE(plain_content_length("12345"));
  EXPECT_FALSE(plain_content_length("+5"));
  EXPECT_FALSE(plain_content_length("-5"));
  EXPECT_FALSE(plain_content_length("5, 5"));
  EXPECT_FALSE(plain_content_length(""));
  EXPECT_FALSE(plain_content_length("1234567890123456789"));
}

TEST(HostAllowed, DevelopmentDefaultIsLoopbackNames) {
  EXPECT_TRUE(host_allowed("localhost", {}));
  EXPECT_TRUE(host_allowed("LOCALHOST:8000", {}));
  EXPECT_TRUE(host_allowed("api.localhost", {}));
  EXPECT_TRUE(host_allowed("127.0.0.1:80", {}));
  EXPECT_TRUE(host_allowed("[::1]:8000", {}));
  EXPECT_FALSE(host_allowed("example.com", {}));
  EXPECT_FALSE(host_allowed("127.0.0.2", {}));
}

TEST(HostAllowed, MatchesPatternsLikeDjango) {
  const std::vector<std::string> allowed = {".example.com", "shop.test"};
  EXPECT_TRUE(host_allowed("example.com", allowed));
  EXPECT_TRUE(host_allowed("a.b.example.com:443", allowed));
  EXPECT_TRUE(host_allowed("example.com.", allowed));
  EXPECT_TRUE(host_allowed("Shop.Test", allowed));
  EXPECT_FALSE(host_allowed("badexample.com", allowed));
  EXPECT_FALSE(host_allowed("www.shop.test", allowed));
  EXPECT_FALSE(host_allowed("example.com:abc", allowed));
  EXPECT_FALSE(host_allowed("exa mple.com", allowed));
  EXPECT_FALSE(host_allowed("", allowed));
  EXPECT_TRUE(host_allowed("anything.org", {"*"}));
}

TEST(ClientAllowed, KnowsLoopbackAndLiterals) {
  EXPECT_TRUE(client_allowed("127.0.0.1", true, {"loopback"}));
  EXPECT_FALSE(client_allowed("10.0.0.1", false, {"loopback"}));
  EXPECT_TRUE(client_allowed("10.0.0.1", false, {"loopback", "10.0.0.1"}));
  EXPECT_TRUE(client_allowed("10.0.0.2", false, {"*"}));
  EXPECT_FALSE(client_allowed("127.0.0.1", true, {}));
}

TEST(DefaultMaxConnections, LeavesHeadroomBelowTheDescriptorLimit) {
  EXPECT_GE(default_max_connections(), 16U);
}

TEST(SameOriginPath, RefusesWhatABrowserReadsAsAnotherOrigin) {
  EXPECT_TRUE(same_origin_path("/products/7"));
  EXPECT_FALSE(same_origin_path("//evil.com"));
  EXPECT_FALSE(same_origin_path("/\\evil.com"));
  EXPECT_FALSE(same_origin_path("/a\\b"));
  EXPECT_FALSE(same_origin_path("/\t/evil.com"));
  EXPECT_FALSE(same_origin_path("evil.com"));
}

}  // namespace
}  // namespace cachekit::server::detail
