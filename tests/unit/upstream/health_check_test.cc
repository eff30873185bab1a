#include "ringway/upstream/health_check.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ringway::upstream {
namespace {

TEST(HealthCheck, ExpectedStatuses) {
  HealthCheckConfig cfg;
  EXPECT_TRUE(HealthChecker::expected(cfg, 200));
  EXPECT_TRUE(HealthChecker::expected(cfg, 399));
  EXPECT_FALSE(HealthChecker::expected(cfg, 404));
  EXPECT_FALSE(HealthChecker::expected(cfg, 503));
  cfg.expect[0] = {200, 200};
  cfg.expect[1] = {204, 204};
  cfg.expect_count = 2;
  EXPECT_TRUE(HealthChecker::expected(cfg, 204));
  EXPECT_FALSE(HealthChecker::expected(cfg, 201));
}

TEST(HealthCheck, ThresholdsTakeOutAndBringBack) {
  HealthCheckConfig cfg{.healthy_threshold = 2, .unhealthy_threshold = 3};
  HostState h;
  ClusterState c;
  c.size = 2;
  using T = HealthTransition;
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, false, 1), T::kNone);
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, false, 2), T::kNone);
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, true, 3), T::kNone);  // breaks the streak
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, false, 4), T::kNone);
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, false, 5), T::kNone);
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, false, 6), T::kBecameUnhealthy);
  EXPECT_EQ(h.healthy.load(), 0);
  EXPECT_EQ(c.unhealthy.load(), 1u);
  EXPECT_FALSE(is_available(h, c, 6));
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, false, 7), T::kNone);  // counted once
  EXPECT_EQ(c.unhealthy.load(), 1u);
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, true, 8), T::kNone);
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, true, 9), T::kBecameHealthy);
  EXPECT_EQ(c.unhealthy.load(), 0u);
  EXPECT_EQ(h.healthy_since_ns.load(), 9u);
  EXPECT_TRUE(is_available(h, c, 9));
  EXPECT_EQ(HealthChecker::report_probe(cfg, h, c, true, 10), T::kNone);
  EXPECT_EQ(c.unhealthy.load(), 0u);
}

TEST(HealthCheck, FirstProbeDueAtOnceThenOncePerInterval) {
  HealthCheckConfig cfg{.interval_ns = 1000};
  HostState h;
  EXPECT_TRUE(HealthChecker::claim_probe(cfg, h, 5000));
  EXPECT_FALSE(HealthChecker::claim_probe(cfg, h, 5000));
  EXPECT_FALSE(HealthChecker::claim_probe(cfg, h, 5999));
  EXPECT_TRUE(HealthChecker::claim_probe(cfg, h, 6000));
  EXPECT_FALSE(HealthChecker::claim_probe(cfg, h, 6500));
}

// Four "workers" race to claim probes of 8 instances over 2,000 intervals of a shared clock:
// every interval, every instance is claimed by exactly one of them.
TEST(HealthCheckThreads, ExactlyOneProberPerInterval) {
  constexpr uint32_t kHosts = 8, kIntervals = 2000, kThreads = 4;
  HealthCheckConfig cfg{.interval_ns = 100};
  std::vector<HostState> h(kHosts);
  std::vector<std::atomic<uint32_t>> claims(kHosts * kIntervals);
  std::atomic<uint32_t> ready{0};
  std::atomic<uint32_t> interval{0};
  std::vector<std::thread> ts;
  for (uint32_t t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (uint32_t iv = 0; iv < kIntervals; ++iv) {
        // Every thread tries every instance several times within the interval.
        const uint64_t now = 1 + iv * cfg.interval_ns;
        for (int rep = 0; rep < 3; ++rep) {
          for (uint32_t i = 0; i < kHosts; ++i) {
            if (HealthChecker::claim_probe(cfg, h[i], now + rep)) claims[iv * kHosts + i].fetch_add(1);
          }
        }
        // A barrier so no thread runs an interval ahead (a later now would claim early).
        ready.fetch_add(1);
        while (ready.load() < (iv + 1) * kThreads) std::this_thread::yield();
      }
    });
  }
  for (auto& t : ts) t.join();
  for (uint32_t k = 0; k < kHosts * kIntervals; ++k) ASSERT_EQ(claims[k].load(), 1u) << k;
  (void)interval;
}

TEST(HealthCheck, SlowStartRamp) {
  HostState h;
  EXPECT_EQ(HealthChecker::weight_percent(0, h, 5), 100u);
  EXPECT_EQ(HealthChecker::weight_percent(1000, h, 5), 100u);  // healthy from the start
  h.healthy_since_ns = 10'000;
  EXPECT_EQ(HealthChecker::weight_percent(1000, h, 10'000), 10u);
  EXPECT_EQ(HealthChecker::weight_percent(1000, h, 10'500), 55u);
  EXPECT_EQ(HealthChecker::weight_percent(1000, h, 11'000), 100u);
  EXPECT_EQ(HealthChecker::weight_percent(0, h, 10'000), 100u);
}

}  // namespace
}  // namespace ringway::upstream
