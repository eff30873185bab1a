#include "ringway/upstream/traffic.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "ringway/config/config.h"

namespace ringway::upstream {
namespace {

config::Target target(const std::string& authority) {
  config::Target t;
  t.authority = authority;
  return t;
}

config::Config two_routes_one_aggregate() {
  config::Config cfg;
  cfg.routes.resize(2);
  cfg.routes[0].targets = {target("a:1"), target("b:1"), target("c:1")};
  cfg.routes[1].targets = {target("d:1")};
  cfg.aggregates.resize(1);
  cfg.aggregates[0].targets = {target("x:1"), target("y:1")};
  return cfg;
}

TEST(Traffic, NumberingFollowsClusters) {
  auto cfg = two_routes_one_aggregate();
  Clusters cl(cfg);
  Traffic t(cl, {});
  EXPECT_EQ(t.instance_count(), 6u);
  EXPECT_EQ(t.cluster_count(), 4u);
  EXPECT_EQ(t.cluster_of(0), 0u);
  EXPECT_EQ(t.cluster_of(3), 1u);
  EXPECT_EQ(t.cluster_of(cl.leg(0, 1).first), 3u);
  uint32_t cursor = 0;
  Rng rng(1);
  for (int i = 0; i < 100; ++i) {
    uint32_t k = t.pick(cl.route(0), {}, cursor, rng);
    EXPECT_LT(k, 3u);
    EXPECT_EQ(t.pick(cl.route(1), {}, cursor, rng), 3u);
    EXPECT_EQ(t.pick(cl.leg(0, 1), {}, cursor, rng), cl.leg(0, 1).first);
  }
}

TEST(Traffic, RetryExcludesTheFailedInstanceByGlobalIndex) {
  auto cfg = two_routes_one_aggregate();
  Clusters cl(cfg);
  Traffic t(cl, {});
  uint32_t cursor = 0;
  Rng rng(3);
  for (int i = 0; i < 200; ++i) EXPECT_NE(t.pick(cl.route(0), {.exclude = 1}, cursor, rng), 1u);
  EXPECT_EQ(t.pick(cl.route(1), {.exclude = 3}, cursor, rng), Traffic::kNone);
}

TEST(Traffic, FailuresEjectAndThePickAvoidsIt) {
  auto cfg = two_routes_one_aggregate();
  Clusters cl(cfg);
  TrafficOptions opt;
  opt.outlier.consecutive_failures = 3;
  opt.balance.kind = BalanceKind::kRoundRobin;
  Traffic t(cl, opt);
  EXPECT_FALSE(t.report_failure(2, 10));
  EXPECT_FALSE(t.report_failure(2, 10));
  t.report_success(2, 1'000'000, 10);  // the streak starts over
  EXPECT_FALSE(t.report_failure(2, 10));
  EXPECT_FALSE(t.report_failure(2, 10));
  EXPECT_TRUE(t.report_failure(2, 10));
  EXPECT_EQ(t.cluster_state(0).ejected.load(), 1u);
  uint32_t cursor = 0;
  Rng rng(1);
  for (int i = 0; i < 30; ++i) EXPECT_NE(t.pick(cl.route(0), {.now_ns = 11}, cursor, rng), 2u);
  EXPECT_GT(t.host(2).ewma_bits.load(), 0u);
}

TEST(Traffic, BreakerLimitsAttemptsAndCountsReturnToZero) {
  auto cfg = two_routes_one_aggregate();
  Clusters cl(cfg);
  TrafficOptions opt;
  opt.limits.max_requests = 2;
  Traffic t(cl, opt);
  EXPECT_TRUE(t.begin_attempt(0));
  EXPECT_TRUE(t.begin_attempt(0));
  EXPECT_FALSE(t.begin_attempt(0));
  EXPECT_EQ(t.host(0).in_flight.load(), 2u);
  t.end_attempt(0);
  t.end_attempt(0);
  EXPECT_EQ(t.host(0).in_flight.load(), 0u);
  EXPECT_EQ(t.breaker(0).rejected.load(), 1u);

  std::vector<std::thread> ts;
  for (int w = 0; w < 3; ++w) {
    ts.emplace_back([&, w] {
      uint32_t cursor = 0;
      Rng rng(w + 1);
      for (int i = 0; i < 50000; ++i) {
        uint32_t k = t.pick(cl.route(0), {}, cursor, rng);
        if (t.begin_attempt(k)) t.end_attempt(k);
      }
    });
  }
  for (auto& th : ts) th.join();
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(t.host(i).in_flight.load(), 0u);
    EXPECT_EQ(t.breaker(i).requests.load(), 0u);
  }
}

TEST(Traffic, ProbesOnlyWhenChecksAreOn) {
  auto cfg = two_routes_one_aggregate();
  Clusters cl(cfg);
  TrafficOptions off;
  Traffic t(cl, off);
  EXPECT_FALSE(HealthChecker::claim_probe(t.options(0).health, t.host(0), 1'000'000'000));
  TrafficOptions on;
  on.health_checks = true;
  Traffic u(cl, on);
  EXPECT_TRUE(HealthChecker::claim_probe(u.options(0).health, u.host(0), 1'000'000'000));
}

}  // namespace
}  // namespace ringway::upstream
