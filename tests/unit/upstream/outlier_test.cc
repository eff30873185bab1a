#include "ringway/upstream/outlier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace ringway::upstream {
namespace {

constexpr uint64_t kS = kNsPerSecond;

TEST(Outlier, EjectsAfterExactlyNConsecutiveFailures) {
  OutlierConfig cfg{.consecutive_failures = 3, .base_ejection_ns = 5 * kS};
  std::vector<HostState> h(4);
  ClusterState c;
  c.size = 4;
  EXPECT_FALSE(Outlier::report_failure(cfg, h[0], c, 100));
  EXPECT_FALSE(Outlier::report_failure(cfg, h[0], c, 100));
  Outlier::report_success(h[0]);  // the streak starts over
  EXPECT_FALSE(Outlier::report_failure(cfg, h[0], c, 100));
  EXPECT_FALSE(Outlier::report_failure(cfg, h[0], c, 100));
  EXPECT_TRUE(Outlier::report_failure(cfg, h[0], c, 100));
  EXPECT_EQ(h[0].ejected_until_ns.load(), 100 + 5 * kS);
  EXPECT_EQ(c.ejected.load(), 1u);
  EXPECT_FALSE(is_available(h[0], c, 100 + 5 * kS - 1));
  // Late failures of requests sent before the ejection do not extend it.
  EXPECT_FALSE(Outlier::report_failure(cfg, h[0], c, 200));
  EXPECT_EQ(h[0].ejected_until_ns.load(), 100 + 5 * kS);
  // It comes back after its time, with a fresh streak.
  EXPECT_TRUE(is_available(h[0], c, 100 + 5 * kS));
  EXPECT_EQ(c.ejected.load(), 0u);
  EXPECT_EQ(h[0].consecutive_failures.load(), 0u);
}

TEST(Outlier, EjectionTimeGrowsAndIsCapped) {
  OutlierConfig cfg{.base_ejection_ns = 5 * kS, .max_ejection_ns = 30 * kS};
  EXPECT_EQ(ejection_time_ns(cfg, 1), 5 * kS);
  EXPECT_EQ(ejection_time_ns(cfg, 2), 10 * kS);
  EXPECT_EQ(ejection_time_ns(cfg, 3), 20 * kS);
  EXPECT_EQ(ejection_time_ns(cfg, 4), 30 * kS);
  EXPECT_EQ(ejection_time_ns(cfg, 200), 30 * kS);

  OutlierConfig one{.consecutive_failures = 1, .base_ejection_ns = 5 * kS, .max_ejection_ns = 300 * kS};
  HostState h;
  ClusterState c;
  c.size = 1;
  uint64_t now = 1;
  for (uint64_t expect : {5 * kS, 10 * kS, 20 * kS}) {
    ASSERT_TRUE(Outlier::report_failure(one, h, c, now));
    EXPECT_EQ(h.ejected_until_ns.load() - now, expect);
    now = h.ejected_until_ns.load();
  }
}

TEST(Outlier, MaxEjectedShare) {
  EXPECT_EQ(max_ejected({.max_ejected_percent = 50}, 4), 2u);
  EXPECT_EQ(max_ejected({.max_ejected_percent = 10}, 4), 1u);  // at least one, as Envoy
  EXPECT_EQ(max_ejected({.max_ejected_percent = 0}, 4), 0u);
  EXPECT_EQ(max_ejected({.max_ejected_percent = 100}, 4), 4u);

  OutlierConfig cfg{.consecutive_failures = 1, .max_ejected_percent = 50};
  std::vector<HostState> h(4);
  ClusterState c;
  c.size = 4;
  EXPECT_TRUE(Outlier::report_failure(cfg, h[0], c, 1));
  EXPECT_TRUE(Outlier::report_failure(cfg, h[1], c, 1));
  EXPECT_FALSE(Outlier::report_failure(cfg, h[2], c, 1));  // the cap
  EXPECT_EQ(c.ejected.load(), 2u);
  EXPECT_EQ(h[2].ejected_until_ns.load(), 0u);
  // Once one returns, the next failure of the capped instance ejects it.
  EXPECT_TRUE(is_available(h[0], c, 1 + cfg.base_ejection_ns));
  EXPECT_TRUE(Outlier::report_failure(cfg, h[2], c, 1 + cfg.base_ejection_ns));
}

TEST(Outlier, SweepReturnsExpired) {
  OutlierConfig cfg{.consecutive_failures = 1, .max_ejected_percent = 100};
  std::vector<HostState> h(3);
  ClusterState c;
  c.size = 3;
  for (auto& x : h) ASSERT_TRUE(Outlier::report_failure(cfg, x, c, 1));
  Outlier::sweep(h.data(), c, 1 + cfg.base_ejection_ns);
  EXPECT_EQ(c.ejected.load(), 0u);
  for (auto& x : h) EXPECT_EQ(x.ejected_until_ns.load(), 0u);
}

// Four threads report failures on the same instance: the ejection happens after exactly N
// failures in all, not N per thread: N - 1 leave it in, the N-th (whichever thread) ejects.
TEST(OutlierThreads, StreakIsProcessWide) {
  constexpr uint32_t kN = 1000;
  OutlierConfig cfg{.consecutive_failures = kN, .max_ejected_percent = 100};
  HostState h;
  ClusterState c;
  c.size = 1;
  std::atomic<uint32_t> ejections{0};
  auto hammer = [&](uint32_t per_thread) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
      ts.emplace_back([&] {
        for (uint32_t i = 0; i < per_thread; ++i) {
          if (Outlier::report_failure(cfg, h, c, 1)) ejections.fetch_add(1);
        }
      });
    }
    for (auto& t : ts) t.join();
  };
  hammer(kN / 4 - 1);
  Outlier::report_failure(cfg, h, c, 1);
  Outlier::report_failure(cfg, h, c, 1);
  Outlier::report_failure(cfg, h, c, 1);
  EXPECT_EQ(ejections.load(), 0u);  // N - 1 failures
  EXPECT_EQ(h.ejected_until_ns.load(), 0u);
  hammer(1);                        // N, N + 1, N + 2, N + 3
  EXPECT_EQ(ejections.load(), 1u);
  EXPECT_NE(h.ejected_until_ns.load(), 0u);
  EXPECT_EQ(c.ejected.load(), 1u);
}

// Threads hammer 16 instances of one cluster with failures while time moves forward, so
// instances are ejected and return all the time: the cap is never exceeded, and at the end the
// cluster count matches the instances actually out.
TEST(OutlierThreads, EjectionCapNeverExceeded) {
  constexpr uint32_t kHosts = 16;
  OutlierConfig cfg{.consecutive_failures = 2, .base_ejection_ns = 50, .max_ejection_ns = 400,
                    .max_ejected_percent = 25};
  const uint32_t cap = max_ejected(cfg, kHosts);
  ASSERT_EQ(cap, 4u);
  std::vector<HostState> h(kHosts);
  ClusterState c;
  c.size = kHosts;
  std::atomic<uint64_t> clock{1};
  std::atomic<uint32_t> max_seen{0};
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> start{0};
  std::thread watcher([&] {
    while (!stop.load()) {
      uint32_t e = c.ejected.load();
      uint32_t m = max_seen.load();
      while (e > m && !max_seen.compare_exchange_weak(m, e)) {
      }
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back([&, t] {
      start.fetch_add(1);
      while (start.load() < 3) std::this_thread::yield();  // overlap as much as possible
      uint64_t x = t + 1;
      for (int i = 0; i < 200000; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        HostState& host = h[(x >> 33) % kHosts];
        const uint64_t now = clock.fetch_add(1);
        if ((x >> 20) % 5 == 0) {
          Outlier::report_success(host);
        } else {
          Outlier::report_failure(cfg, host, c, now);
        }
        is_available(host, c, now);
        uint32_t e = c.ejected.load();
        uint32_t m = max_seen.load();
        while (e > m && !max_seen.compare_exchange_weak(m, e)) {
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  stop = true;
  watcher.join();
  EXPECT_LE(max_seen.load(), cap);
  EXPECT_GT(max_seen.load(), 0u);
  uint32_t out = 0;
  for (auto& x : h) out += x.ejected_until_ns.load() != 0;
  EXPECT_EQ(out, c.ejected.load());
  Outlier::sweep(h.data(), c, UINT64_MAX / 2);
  EXPECT_EQ(c.ejected.load(), 0u);
}

}  // namespace
}  // namespace ringway::upstream
