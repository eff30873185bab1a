#include "ringway/upstream/host_state.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace ringway::upstream {
namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kTau = 10'000 * kMs;

TEST(PeakEwma, FirstSampleIsTakenAsIs) {
  HostState h;
  EXPECT_EQ(latency_ewma(h, 0), 0.0);
  record_latency(h, 5 * kMs, 1000 * kMs, kTau);
  EXPECT_DOUBLE_EQ(latency_ewma(h, 1000 * kMs, kTau), 5.0 * kMs);
}

TEST(PeakEwma, JumpsUpOnASlowSample) {
  HostState h;
  record_latency(h, 5 * kMs, 1000 * kMs, kTau);
  record_latency(h, 80 * kMs, 1001 * kMs, kTau);
  EXPECT_DOUBLE_EQ(latency_ewma(h, 1001 * kMs, kTau), 80.0 * kMs);
}

TEST(PeakEwma, FastSamplesAverageWithTimeDecay) {
  HostState h;
  record_latency(h, 100 * kMs, 0 + 1, kTau);
  // One tau later: w = e^-1, ewma = 100 * w + 10 * (1 - w).
  record_latency(h, 10 * kMs, 1 + kTau, kTau);
  const double w = std::exp(-1.0);
  EXPECT_NEAR(latency_ewma(h, 1 + kTau, kTau), (100 * w + 10 * (1 - w)) * kMs, 1.0);
  // Samples at the same instant do not move a larger value (w = 1).
  HostState g;
  record_latency(g, 100 * kMs, 5, kTau);
  record_latency(g, 10 * kMs, 5, kTau);
  EXPECT_DOUBLE_EQ(latency_ewma(g, 5, kTau), 100.0 * kMs);
}

TEST(PeakEwma, ReadingDecaysTowardZeroWithIdleTime) {
  HostState h;
  record_latency(h, 50 * kMs, 7, kTau);
  EXPECT_NEAR(latency_ewma(h, 7 + kTau, kTau), 50.0 * kMs * std::exp(-1.0), 1.0);
  EXPECT_NEAR(latency_ewma(h, 7 + 2 * kTau, kTau), 50.0 * kMs * std::exp(-2.0), 1.0);
  EXPECT_DOUBLE_EQ(latency_ewma(h, 3, kTau), 50.0 * kMs);  // a clock behind the stamp: no decay
}

TEST(HostState, OneRecordPerCacheLine) {
  std::vector<HostState> v(3);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(&v[1]) % 64, 0u);
  EXPECT_GE(reinterpret_cast<uintptr_t>(&v[1]) - reinterpret_cast<uintptr_t>(&v[0]), 64u);
}

TEST(HostState, InFlightReturnsToZeroUnderThreads) {
  HostState h;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 200000; ++i) {
        request_started(h);
        if (i % 3 == 0) request_started(h), request_finished(h);
        request_finished(h);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(h.in_flight.load(), 0u);
}

TEST(HostState, ExpiredEjectionReturnsExactlyOnce) {
  ClusterState c;
  c.size = 1;
  HostState h;
  c.ejected = 1;
  h.ejected_until_ns = 100;
  h.consecutive_failures = 7;
  EXPECT_FALSE(is_available(h, c, 99));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back([&] { for (int i = 0; i < 1000; ++i) is_available(h, c, 100); });
  for (auto& t : ts) t.join();
  EXPECT_TRUE(is_available(h, c, 100));
  EXPECT_EQ(c.ejected.load(), 0u);  // not wrapped below zero by the losers
  EXPECT_EQ(h.consecutive_failures.load(), 0u);
}

TEST(HostState, AvailableEstimate) {
  ClusterState c;
  c.size = 4;
  EXPECT_EQ(available_estimate(c), 4u);
  c.ejected = 1;
  c.unhealthy = 2;
  EXPECT_EQ(available_estimate(c), 1u);
  c.unhealthy = 5;
  EXPECT_EQ(available_estimate(c), 0u);
}

}  // namespace
}  // namespace ringway::upstream
