#include "ringway/upstream/balancer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringway::upstream {
namespace {

struct Fixture {
  explicit Fixture(uint32_t n) : hosts(n) { cluster.size = n; }
  std::vector<HostState> hosts;
  ClusterState cluster;
  std::span<HostState> span() { return hosts; }
  void set_unhealthy(uint32_t i) {
    hosts[i].healthy = 0;
    cluster.unhealthy.fetch_add(1);
  }
};

std::vector<uint32_t> counts(const Balancer& b, uint32_t n, int picks, PickInput in = {},
                             uint64_t seed = 1) {
  std::vector<uint32_t> c(n, 0);
  uint32_t cursor = 0;
  Rng rng(seed);
  for (int i = 0; i < picks; ++i) {
    uint32_t k = b.pick(in, cursor, rng);
    EXPECT_LT(k, n);
    if (k < n) ++c[k];
  }
  return c;
}

TEST(Balancer, RoundRobinCyclesInOrder) {
  Fixture f(3);
  Balancer b({.kind = BalanceKind::kRoundRobin}, f.span(), f.cluster);
  uint32_t cursor = 0;
  Rng rng(1);
  std::vector<uint32_t> seq;
  for (int i = 0; i < 6; ++i) seq.push_back(b.pick({}, cursor, rng));
  EXPECT_EQ(seq, (std::vector<uint32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(Balancer, RoundRobinWeightsInterleaved) {
  Fixture f(3);
  const uint32_t w[] = {5, 1, 1};
  Balancer b({.kind = BalanceKind::kRoundRobin}, f.span(), f.cluster, w);
  EXPECT_EQ(b.slot_count(), 7u);
  uint32_t cursor = 0;
  Rng rng(1);
  std::vector<uint32_t> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(b.pick({}, cursor, rng));
  EXPECT_EQ(seq, (std::vector<uint32_t>{0, 0, 1, 0, 2, 0, 0}));  // smooth WRR, as nginx
}

TEST(Balancer, RoundRobinSkipsUnavailableEvenly) {
  Fixture f(3);
  f.set_unhealthy(1);
  Balancer b({.kind = BalanceKind::kRoundRobin}, f.span(), f.cluster);
  auto c = counts(b, 3, 1000);
  EXPECT_EQ(c[1], 0u);
  EXPECT_EQ(c[0], 500u);  // the dead one's turns are not all given to its successor
  EXPECT_EQ(c[2], 500u);
}

TEST(Balancer, RandomFollowsWeights) {
  Fixture f(2);
  const uint32_t w[] = {3, 1};
  Balancer b({.kind = BalanceKind::kRandom}, f.span(), f.cluster, w);
  auto c = counts(b, 2, 40000);
  EXPECT_NEAR(c[0] / 40000.0, 0.75, 0.02);
}

TEST(Balancer, LeastRequestPrefersTheLessLoaded) {
  Fixture f(2);
  f.hosts[0].in_flight = 10;
  Balancer b({.kind = BalanceKind::kLeastRequest}, f.span(), f.cluster);
  auto c = counts(b, 2, 1000);
  EXPECT_EQ(c[1], 1000u);

  Fixture g(4);
  g.hosts[0].in_flight = 0;
  g.hosts[1].in_flight = 5;
  g.hosts[2].in_flight = 5;
  g.hosts[3].in_flight = 100;
  Balancer b4({.kind = BalanceKind::kLeastRequest}, g.span(), g.cluster);
  auto c4 = counts(b4, 4, 20000);
  EXPECT_EQ(c4[3], 0u);                       // the most loaded never wins a comparison
  EXPECT_NEAR(c4[0] / 20000.0, 0.5, 0.03);    // the least loaded wins whenever drawn: P = 1/2
}

TEST(Balancer, LeastRequestWeightedByPeakEwma) {
  Fixture f(2);
  const uint64_t now = 1'000'000'000;
  record_latency(f.hosts[0], 1'000'000, now);
  record_latency(f.hosts[1], 50'000'000, now);
  f.hosts[0].in_flight = 3;  // more requests, but 50x faster
  Balancer plain({.kind = BalanceKind::kLeastRequest}, f.span(), f.cluster);
  Balancer ewma({.kind = BalanceKind::kLeastRequest, .peak_ewma = true}, f.span(), f.cluster);
  PickInput in{.now_ns = now};
  EXPECT_EQ(counts(plain, 2, 100, in)[1], 100u);
  EXPECT_EQ(counts(ewma, 2, 100, in)[0], 100u);
}

TEST(Balancer, LeastRequestSlowStartRamps) {
  Fixture f(2);
  const uint64_t now = 100'000'000'000;
  f.hosts[1].healthy_since_ns = now - 1;  // just recovered: ~10 % of its weight
  Balancer b({.kind = BalanceKind::kLeastRequest, .slow_start_ns = 10'000'000'000}, f.span(),
             f.cluster);
  EXPECT_EQ(counts(b, 2, 100, {.now_ns = now})[0], 100u);
  f.hosts[0].in_flight = 20;  // ramped fully after slow_start: plain load decides again
  EXPECT_EQ(counts(b, 2, 100, {.now_ns = now + 10'000'000'000})[1], 100u);
}

TEST(Balancer, ExcludeNeverReturnsTheFailedInstance) {
  for (BalanceKind k : {BalanceKind::kRoundRobin, BalanceKind::kRandom, BalanceKind::kLeastRequest,
                        BalanceKind::kHash}) {
    Fixture f(3);
    Balancer b({.kind = k}, f.span(), f.cluster);
    for (uint32_t ex = 0; ex < 3; ++ex) {
      PickInput in{.hash = hash_key("client-7"), .exclude = ex};
      EXPECT_EQ(counts(b, 3, 300, in)[ex], 0u) << int(k);
    }
  }
  Fixture one(1);
  Balancer b({.kind = BalanceKind::kLeastRequest}, one.span(), one.cluster);
  uint32_t cursor = 0;
  Rng rng(1);
  EXPECT_EQ(b.pick({}, cursor, rng), 0u);
  EXPECT_EQ(b.pick({.exclude = 0}, cursor, rng), Balancer::kNone);
}

TEST(Balancer, SkipsEjectedUntilItsTimeThenReturnsIt) {
  Fixture f(3);
  f.hosts[0].ejected_until_ns = 1000;
  f.cluster.ejected = 1;
  Balancer b({.kind = BalanceKind::kRandom}, f.span(), f.cluster);
  EXPECT_EQ(counts(b, 3, 300, {.now_ns = 999})[0], 0u);
  EXPECT_GT(counts(b, 3, 300, {.now_ns = 1000})[0], 0u);
  EXPECT_EQ(f.cluster.ejected.load(), 0u);
  EXPECT_EQ(f.hosts[0].ejected_until_ns.load(), 0u);
}

TEST(Balancer, PanicModeBalancesOverAll) {
  Fixture f(4);
  f.set_unhealthy(1);
  f.set_unhealthy(2);
  f.set_unhealthy(3);
  Balancer panic({.kind = BalanceKind::kRoundRobin, .panic_threshold_percent = 50}, f.span(),
                 f.cluster);
  auto c = counts(panic, 4, 400);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(c[i], 100u);
  Balancer strict({.kind = BalanceKind::kRoundRobin, .panic_threshold_percent = 0}, f.span(),
                  f.cluster);
  EXPECT_EQ(counts(strict, 4, 400)[0], 400u);
  // Above the threshold (2 of 4 = 50 % available): only the healthy ones.
  f.hosts[1].healthy = 1;
  f.cluster.unhealthy = 2;
  auto d = counts(panic, 4, 400);
  EXPECT_EQ(d[0] + d[1], 400u);
}

TEST(Balancer, NothingAvailableStillPicks) {
  Fixture f(2);
  f.set_unhealthy(0);
  f.set_unhealthy(1);
  Balancer b({.kind = BalanceKind::kLeastRequest, .panic_threshold_percent = 0}, f.span(),
             f.cluster);
  auto c = counts(b, 2, 100);
  EXPECT_EQ(c[0] + c[1], 100u);
}

// Consistent hash: owners of 20,000 keys before and after a change of the instance set.
std::vector<std::string> owners(const std::vector<std::string>& names, int keys,
                                const std::vector<uint32_t>& unhealthy = {}) {
  Fixture f(static_cast<uint32_t>(names.size()));
  for (uint32_t u : unhealthy) f.set_unhealthy(u);
  std::vector<std::string_view> views(names.begin(), names.end());
  Balancer b({.kind = BalanceKind::kHash}, f.span(), f.cluster, {}, views);
  std::vector<std::string> out;
  uint32_t cursor = 0;
  Rng rng(1);
  for (int k = 0; k < keys; ++k) {
    const std::string key = "user-" + std::to_string(k);
    out.push_back(names[b.pick({.hash = hash_key(key)}, cursor, rng)]);
  }
  return out;
}

std::vector<std::string> instance_names(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back("10.0.0." + std::to_string(i + 1) + ":8080");
  return v;
}

TEST(Balancer, HashIsStableWhenAnInstanceIsRemoved) {
  constexpr int kKeys = 20000;
  auto ten = instance_names(10);
  auto nine = ten;
  const std::string removed = nine[3];
  nine.erase(nine.begin() + 3);
  auto before = owners(ten, kKeys), after = owners(nine, kKeys);
  int moved = 0, owned_by_removed = 0;
  for (int k = 0; k < kKeys; ++k) {
    owned_by_removed += before[k] == removed;
    if (before[k] != after[k]) {
      ++moved;
      EXPECT_EQ(before[k], removed);  // only the removed instance's keys move
    }
  }
  EXPECT_EQ(moved, owned_by_removed);
  EXPECT_NEAR(moved / double(kKeys), 0.10, 0.04);
}

TEST(Balancer, HashIsStableWhenAnInstanceIsAdded) {
  constexpr int kKeys = 20000;
  auto ten = instance_names(10);
  auto eleven = instance_names(11);
  auto before = owners(ten, kKeys), after = owners(eleven, kKeys);
  int moved = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (before[k] != after[k]) {
      ++moved;
      EXPECT_EQ(after[k], eleven[10]);  // keys move only to the new instance
    }
  }
  EXPECT_NEAR(moved / double(kKeys), 1.0 / 11, 0.04);
}

TEST(Balancer, HashSkipsAnUnhealthyInstanceMovingOnlyItsKeys) {
  constexpr int kKeys = 20000;
  auto ten = instance_names(10);
  auto before = owners(ten, kKeys), after = owners(ten, kKeys, {6});
  int moved = 0;
  for (int k = 0; k < kKeys; ++k) {
    if (before[k] != after[k]) {
      ++moved;
      EXPECT_EQ(before[k], ten[6]);
    }
    EXPECT_NE(after[k], ten[6]);
  }
  EXPECT_GT(moved, 0);
}

TEST(Balancer, HashKeyIsStableAndSpreads) {
  EXPECT_EQ(hash_key("abc"), hash_key("abc"));
  EXPECT_NE(hash_key("abc"), hash_key("abd"));
  EXPECT_NE(hash_key(""), 0u);
}

}  // namespace
}  // namespace ringway::upstream
