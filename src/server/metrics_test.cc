#include "cachekit/server/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"

namespace cachekit::server {
namespace {

using testing::HasSubstr;

TEST(CacheStatus, ReadsTheOutcomeOfOneMember) {
  auto hit = parse_cache_status_member(" cachekit; hit; ttl=30 ");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->cache, "cachekit");
  EXPECT_EQ(outcome_of(hit->status), CacheOutcome::kHit);
  EXPECT_FALSE(hit->status.stored);

  auto stored = parse_cache_status_member("cachekit; fwd=uri-miss; stored; ttl=300");
  ASSERT_TRUE(stored);
  EXPECT_EQ(outcome_of(stored->status), CacheOutcome::kMiss);
  EXPECT_TRUE(stored->status.stored);

  auto bypass = parse_cache_status_member("cachekit; fwd=miss; detail=set-cookie");
  ASSERT_TRUE(bypass);
  EXPECT_EQ(bypass->status.detail, "set-cookie");
  EXPECT_EQ(outcome_of(bypass->status), CacheOutcome::kBypass);

  auto collapsed = parse_cache_status_member("cachekit; fwd=miss; collapsed");
  ASSERT_TRUE(collapsed);
  EXPECT_EQ(outcome_of(collapsed->status), CacheOutcome::kCollapsed);

  auto plain = parse_cache_status_member("cachekit; fwd=method");
  ASSERT_TRUE(plain);
  EXPECT_EQ(outcome_of(plain->status), CacheOutcome::kMiss);

  EXPECT_FALSE(parse_cache_status_member("  "));
  EXPECT_FALSE(parse_cache_status_member("; hit"));
}

TEST(Metrics, CountsThePageCachesOutcomeFromItsValue) {
  using Fwd = http::CacheStatus::Fwd;
  Metrics m({});
  m.record_cache_status("cachekit", http::CacheStatus::hit(30));
  m.record_cache_status("cachekit", {.fwd = Fwd::kUriMiss, .stored = true, .ttl = 600});
  m.record_cache_status("cachekit", {.fwd = Fwd::kUriMiss, .collapsed = true});
  m.record_cache_status("cachekit", {.fwd = Fwd::kMethod, .detail = "invalidated"});
  m.record_cache_status("cachekit", {.fwd = Fwd::kMiss});
  EXPECT_EQ(m.cache_outcomes("cachekit", CacheOutcome::kHit), 1U);
  EXPECT_EQ(m.cache_outcomes("cachekit", CacheOutcome::kMiss), 2U);
  EXPECT_EQ(m.cache_outcomes("cachekit", CacheOutcome::kCollapsed), 1U);
  EXPECT_EQ(m.cache_outcomes("cachekit", CacheOutcome::kBypass), 1U);
  EXPECT_EQ(m.cache_stores("cachekit"), 1U);
}

TEST(Histogram, CountsIntoLessOrEqualBuckets) {
  Histogram h({0.1, 1, 10});
  h.observe(0.1);
  h.observe(0.5);
  h.observe(20);
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{1, 2, 2, 3}));
  EXPECT_EQ(s.count, 3U);
  EXPECT_NEAR(s.sum, 20.6, 1e-9);
  EXPECT_THROW(Histogram({1, 0.5}), std::invalid_argument);
}

TEST(Metrics, RendersRequestsLatencyAndCacheOutcomes) {
  Metrics m({"/a/", "/b/{id}/"});
  m.record_request(0, 200, std::chrono::microseconds(50));
  m.record_request(0, 200, std::chrono::milliseconds(3));
  m.record_request(1, 404, std::chrono::milliseconds(3));
  m.record_request(7, 404, std::chrono::milliseconds(3));  // past the end: unmatched
  m.record_request(0, 999, std::chrono::milliseconds(3));  // nonsense status counts as 500
  m.record_cache_status("cachekit; hit; ttl=3, edge; fwd=miss; stored");
  m.record_cache_status("cachekit; fwd=uri-miss; detail=private");
  EXPECT_EQ(m.requests(0, 200), 2U);
  EXPECT_EQ(m.requests(2, 404), 1U);
  EXPECT_EQ(m.cache_outcomes("cachekit", CacheOutcome::kHit), 1U);
  EXPECT_EQ(m.cache_outcomes("cachekit", CacheOutcome::kBypass), 1U);
  EXPECT_EQ(m.cache_stores("edge"), 1U);
  std::array<Sample, 1> extra = {Sample{"x_gauge", "A gauge.", "gauge", 4}};
  std::string text = m.render(extra);
  EXPECT_THAT(text, HasSubstr("# TYPE cachekit_http_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_http_requests_total{route=\"/a/\",status=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_http_requests_total{route=\"/a/\",status=\"500\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("cachekit_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_http_request_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_http_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_http_request_duration_seconds_count 5\n"));
  EXPECT_THAT(text,
              HasSubstr("cachekit_page_cache_requests_total{cache=\"edge\",result=\"miss\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_page_cache_stores_total{cache=\"edge\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE x_gauge gauge\nx_gauge 4\n"));
}

TEST(Metrics, RendersTheLoadCountersOfAWatchedCache) {
  ManualClock clock;
  Cache cache(make_locmem_backend({.clock = &clock}), {.clock = &clock});
  Metrics m({"/"});
  m.watch_cache("quotes", cache);
  RefreshPolicy policy{.fresh_for = std::chrono::seconds(10),
                       .stale_if_error = std::chrono::seconds(60)};
  (void)cache.get_or_refresh(
      "k", [] { return std::string("v1"); }, policy);
  clock.advance(std::chrono::seconds(11));
  (void)cache.get_or_refresh(
      "k", []() -> std::string { throw std::runtime_error("down"); }, policy);
  std::string text = m.render();
  EXPECT_THAT(text, HasSubstr("# TYPE cachekit_collapsed_waits_total counter\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_collapsed_waits_total{cache=\"quotes\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_lease_waits_total{cache=\"quotes\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_lease_takeovers_total{cache=\"quotes\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("cachekit_stale_served_total{cache=\"quotes\",reason=\"error\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("cachekit_stale_served_total{cache=\"quotes\",reason=\"revalidate\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_early_refreshes_total{cache=\"quotes\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_refreshes_total{cache=\"quotes\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_refresh_failures_total{cache=\"quotes\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_refreshes_skipped_total{cache=\"quotes\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("cachekit_backend_errors_total{cache=\"quotes\"} 0\n"));
}

TEST(Metrics, EscapesLabelValues) {
  Metrics m({"/q\"uote\\/"});
  m.record_request(0, 200, std::chrono::milliseconds(1));
  EXPECT_THAT(m.render(), HasSubstr("route=\"/q\\\"uote\\\\/\""));
}

TEST(Metrics, FoldsCachesBeyondTheLimitIntoOther) {
  Metrics m({});
  for (std::size_t i = 0; i < Metrics::kMaxCaches + 5; ++i) {
    m.record_cache_status("c" + std::to_string(i) + "; hit");
  }
  EXPECT_EQ(m.cache_outcomes("c0", CacheOutcome::kHit), 1U);
  EXPECT_EQ(m.cache_outcomes("other", CacheOutcome::kHit), 6U);
}

TEST(Metrics, ConcurrentRecordingLosesNothing) {
  Metrics m({"/a/"});
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        m.record_request(0, 200, std::chrono::microseconds(100));
        m.record_cache_status(t % 2 == 0 ? "even; hit" : "odd; fwd=miss; stored");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.requests(0, 200), static_cast<std::uint64_t>(kThreads * kEach));
  EXPECT_EQ(m.cache_outcomes("even", CacheOutcome::kHit), static_cast<std::uint64_t>(2 * kEach));
  EXPECT_EQ(m.cache_stores("odd"), static_cast<std::uint64_t>(2 * kEach));
  EXPECT_THAT(m.render(), HasSubstr("cachekit_http_request_duration_seconds_count 80000\n"));
}

}  // namespace
}  // namespace cachekit::server
