#include "cachekit/lease.h"

#include <gtest/gtest.h>

#include <chrono>

#include "cachekit/backends/dummy.h"
#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using std::chrono::milliseconds;

struct LeaseTest : ::testing::Test {
  ManualClock clock;
  Cache cache{make_locmem_backend({.clock = &clock}), {.clock = &clock}};
};

TEST_F(LeaseTest, OnlyOneClaimOfANameIsHeldAtATime) {
  auto first = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  auto second = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_OK(first);
  ASSERT_OK(second);
  EXPECT_TRUE(first->held());
  EXPECT_FALSE(second->held());
  EXPECT_NE(first->token(), second->token());
}

TEST_F(LeaseTest, AClaimWhoseHolderVanishedExpiresOnItsOwn) {
  auto first = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_TRUE(first.ok() && first->held());
  clock.advance(milliseconds(1001));
  auto next = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_OK(next);
  EXPECT_TRUE(next->held());
}

TEST_F(LeaseTest, ReleaseFreesTheNameAndDestructionReleases) {
  {
    auto first = Lease::try_acquire(cache, "lease:k", milliseconds(60'000));
    ASSERT_TRUE(first.ok() && first->held());
  }
  auto next = Lease::try_acquire(cache, "lease:k", milliseconds(60'000));
  ASSERT_OK(next);
  EXPECT_TRUE(next->held());
  next->release();
  EXPECT_FALSE(next->held());
  EXPECT_FALSE(cache.contains("lease:k"));
}

TEST_F(LeaseTest, AnExpiredHolderNeitherReleasesNorRenewsTheNextHoldersClaim) {
  auto stale = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_TRUE(stale.ok() && stale->held());
  clock.advance(milliseconds(1500));
  auto current = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_TRUE(current.ok() && current->held());
  EXPECT_FALSE(stale->renew(milliseconds(5000)));
  stale->release();
  auto stored = cache.get("lease:k");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->view(), current->token());
}

TEST_F(LeaseTest, RenewExtendsAHeldClaim) {
  auto lease = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_TRUE(lease.ok() && lease->held());
  clock.advance(milliseconds(900));
  EXPECT_TRUE(lease->renew(milliseconds(1000)));
  clock.advance(milliseconds(900));
  auto other = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_OK(other);
  EXPECT_FALSE(other->held());
}

TEST(LeaseDummy, AStoreThatKeepsNothingHoldsEveryClaim) {
  Cache cache(make_dummy_backend());
  auto a = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  auto b = Lease::try_acquire(cache, "lease:k", milliseconds(1000));
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_TRUE(a->held());
  EXPECT_TRUE(b->held());
}

}  // namespace
}  // namespace cachekit
