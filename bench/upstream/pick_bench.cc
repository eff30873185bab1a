// The cost of choosing an upstream instance (issue 14's target: well under 100 ns per pick, so
// balancing by load does not show in the small-GET comparison). Each case builds the cluster's
// shared records and its Balancer once, then times pick() with a worker-owned cursor and Rng;
// "_1ejected" cases have one instance ejected (the pick skips it), "_threads" cases run the
// whole per-request bookkeeping (pick, in-flight +1/-1, EWMA sample) from 2 threads on the same
// records, which is where cache-line sharing would show.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "ringway/upstream/balancer.h"
#include "ringway/upstream/circuit.h"
#include "ringway/upstream/host_state.h"
#include "ringway/upstream/outlier.h"

namespace {

using namespace ringway::upstream;

struct Cluster {
  Cluster(uint32_t n, BalancerOptions opt, bool one_ejected) : hosts(n) {
    state.size = n;
    for (uint32_t i = 0; i < n; ++i) names.push_back("10.0.0." + std::to_string(i + 1) + ":80");
    views.assign(names.begin(), names.end());
    for (uint32_t i = 0; i < n; ++i) {
      hosts[i].in_flight = i % 3;
      record_latency(hosts[i], 1'000'000 + i * 100'000, 1);
    }
    if (one_ejected) {
      hosts[1].ejected_until_ns = UINT64_MAX / 2;
      state.ejected = 1;
    }
    balancer = std::make_unique<Balancer>(opt, std::span<HostState>(hosts), state,
                                          std::span<const uint32_t>{}, views);
  }
  std::vector<HostState> hosts;
  ClusterState state;
  std::vector<std::string> names;
  std::vector<std::string_view> views;
  std::unique_ptr<Balancer> balancer;
};

void run_pick(benchmark::State& st, BalanceKind kind, bool ewma) {
  const uint32_t n = static_cast<uint32_t>(st.range(0));
  Cluster c(n, {.kind = kind, .peak_ewma = ewma}, st.range(1) != 0);
  uint32_t cursor = 0;
  Rng rng(42);
  PickInput in{.now_ns = 2'000'000'000};
  uint64_t key = 0;
  for (auto _ : st) {
    in.hash = kind == BalanceKind::kHash ? hash_key(std::string_view(reinterpret_cast<const char*>(&key), 8)) : 0;
    ++key;
    benchmark::DoNotOptimize(c.balancer->pick(in, cursor, rng));
  }
}

void BM_pick_round_robin(benchmark::State& st) { run_pick(st, BalanceKind::kRoundRobin, false); }
void BM_pick_random(benchmark::State& st) { run_pick(st, BalanceKind::kRandom, false); }
void BM_pick_least_request(benchmark::State& st) { run_pick(st, BalanceKind::kLeastRequest, false); }
void BM_pick_least_request_ewma(benchmark::State& st) { run_pick(st, BalanceKind::kLeastRequest, true); }
void BM_pick_hash(benchmark::State& st) { run_pick(st, BalanceKind::kHash, false); }

#define RW_PICK_ARGS ArgNames({"instances", "ejected"})->Args({4, 0})->Args({4, 1})->Args({10, 0})->Args({10, 1})
BENCHMARK(BM_pick_round_robin)->RW_PICK_ARGS;
BENCHMARK(BM_pick_random)->RW_PICK_ARGS;
BENCHMARK(BM_pick_least_request)->RW_PICK_ARGS;
BENCHMARK(BM_pick_least_request_ewma)->RW_PICK_ARGS;
BENCHMARK(BM_pick_hash)->RW_PICK_ARGS;

// The whole per-request bookkeeping on shared records: pick, breaker acquire, in-flight +1,
// EWMA sample, in-flight -1, breaker release, outlier success.
Cluster* g_shared = nullptr;
std::vector<CircuitCounters>* g_breakers = nullptr;

void BM_request_bookkeeping(benchmark::State& st) {
  if (st.thread_index() == 0) {
    g_shared = new Cluster(4, {.kind = BalanceKind::kLeastRequest, .peak_ewma = true}, false);
    g_breakers = new std::vector<CircuitCounters>(4);
  }
  // Google Benchmark starts the timed loops of all threads together, after setup above.
  uint32_t cursor = 0;
  Rng rng(1 + st.thread_index());
  CircuitLimits limits;
  uint64_t now = 2'000'000'000;
  for (auto _ : st) {
    const uint32_t i = g_shared->balancer->pick({.now_ns = now}, cursor, rng);
    CircuitCounters& b = (*g_breakers)[i];
    if (try_acquire(b, limits, CircuitResource::kRequest)) {
      HostState& h = g_shared->hosts[i];
      request_started(h);
      record_latency(h, 1'000'000, now);
      request_finished(h);
      Outlier::report_success(h);
      release(b, CircuitResource::kRequest);
    }
    now += 1000;
  }
  // The timed loop ends at a barrier of all threads, so thread 0 may free the shared records.
  if (st.thread_index() == 0) {
    delete g_shared;
    delete g_breakers;
  }
}
BENCHMARK(BM_request_bookkeeping)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
