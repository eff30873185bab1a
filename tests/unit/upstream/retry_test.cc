#include "ringway/upstream/retry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ringway::upstream {
namespace {

TEST(Retry, Causes) {
  EXPECT_EQ(retry_cause(FailureKind::kConnectRefused), kRetryConnectFailure);
  EXPECT_EQ(retry_cause(FailureKind::kConnectTimeout), kRetryConnectFailure);
  EXPECT_EQ(retry_cause(FailureKind::kResetBeforeResponse), kRetryReset);
  EXPECT_EQ(retry_cause(FailureKind::kClosedBeforeResponse), kRetryReset);
  EXPECT_EQ(retry_cause(FailureKind::kResponseTimeout), kRetryTimeout);
  EXPECT_EQ(retry_cause(FailureKind::kClosedMidResponse), 0);
  EXPECT_EQ(retry_cause(FailureKind::kInvalidHead), 0);
  EXPECT_EQ(retry_cause_status(503), kRetry503);
  EXPECT_EQ(retry_cause_status(502), kRetry502);
  EXPECT_EQ(retry_cause_status(504), kRetry504);
  EXPECT_EQ(retry_cause_status(500), 0);
}

TEST(Retry, MayRetryRules) {
  RetryPolicy p{.attempts = 2, .on = kRetryConnectFailure | kRetryReset | kRetry503};
  // Idempotent: covered causes, while attempts remain.
  EXPECT_TRUE(may_retry(p, kRetryReset, 1, true, true));
  EXPECT_FALSE(may_retry(p, kRetryReset, 2, true, true));
  EXPECT_FALSE(may_retry(p, kRetryTimeout, 1, true, true));  // not in the policy
  EXPECT_FALSE(may_retry(p, 0, 1, true, false));
  // Not idempotent: only when no byte reached the upstream.
  EXPECT_TRUE(may_retry(p, kRetryConnectFailure, 1, false, false));
  EXPECT_FALSE(may_retry(p, kRetryReset, 1, false, true));
  EXPECT_FALSE(may_retry(p, kRetry503, 1, false, true));
  // Default policy: one attempt, never retried.
  EXPECT_FALSE(may_retry(RetryPolicy{}, kRetryConnectFailure, 1, true, false));
}

TEST(RetryBudget, PercentOfRequestsOrMinimum) {
  RetryBudget b(20, 3);
  // No requests: the minimum (3) still allows a few retries.
  EXPECT_TRUE(b.try_start_retry());
  EXPECT_TRUE(b.try_start_retry());
  EXPECT_TRUE(b.try_start_retry());
  EXPECT_FALSE(b.try_start_retry());
  for (int i = 0; i < 100; ++i) b.request_started();
  // 100 in flight: 20 retries.
  for (int i = 3; i < 20; ++i) EXPECT_TRUE(b.try_start_retry()) << i;
  EXPECT_FALSE(b.try_start_retry());
  EXPECT_EQ(b.retries_in_flight(), 20u);
  b.retry_finished();
  EXPECT_TRUE(b.try_start_retry());
  for (int i = 0; i < 20; ++i) b.retry_finished();
  for (int i = 0; i < 100; ++i) b.request_finished();
  EXPECT_EQ(b.retries_in_flight(), 0u);
  EXPECT_EQ(b.requests_in_flight(), 0u);
}

// A total outage: every request fails and wants a retry, from four threads. Retries in flight
// never pass the budget, and every counter returns to zero.
TEST(RetryBudgetThreads, HoldsUnderTotalOutage) {
  RetryBudget b(20, 2);
  constexpr uint32_t kBaseline = 50;  // requests kept in flight throughout: allowance 10
  for (uint32_t i = 0; i < kBaseline; ++i) b.request_started();
  std::atomic<uint32_t> max_seen{0}, granted{0}, refused{0}, start{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      start.fetch_add(1);
      while (start.load() < 4) std::this_thread::yield();  // overlap as much as possible
      for (int i = 0; i < 20000; ++i) {
        // Each thread wants 12 retries at once (48 in all against an allowance of 10), holds
        // them, then lets them finish: the allowance is contested all the time, and even a
        // thread running alone meets it.
        uint32_t held = 0;
        while (held < 12 && b.try_start_retry()) {
          ++held;
          granted.fetch_add(1);
          uint32_t now = b.retries_in_flight();
          uint32_t m = max_seen.load();
          while (now > m && !max_seen.compare_exchange_weak(m, now)) {
          }
        }
        if (held < 12) refused.fetch_add(1);
        for (; held > 0; --held) b.retry_finished();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_LE(max_seen.load(), kBaseline * 20 / 100);
  EXPECT_GT(granted.load(), 0u);
  EXPECT_GT(refused.load(), 0u);
  EXPECT_EQ(b.retries_in_flight(), 0u);
  for (uint32_t i = 0; i < kBaseline; ++i) b.request_finished();
  EXPECT_EQ(b.requests_in_flight(), 0u);
}

}  // namespace
}  // namespace ringway::upstream
