// Cost of one rate-limit decision through RateLimitFilter::on_request: uncontended (one worker,
// one key), the same key from 2 threads (two workers sharing one bucket), the reject path, and
// with RateLimit fields on allowed responses. The clock is a per-thread counter (1 ns per
// request), so the measurement is the filter, not clock_gettime.
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <string>

#include "filter/rate_limit/rate_limit.h"

namespace {

using namespace ringway;
using namespace ringway::filter;
using namespace ringway::filter::rate_limit;

RateLimitSpec spec(const char* text) {
  RateLimitSpec s;
  std::string err;
  if (!parse_rate_limit_spec(text, s, err)) std::abort();
  return s;
}

// A request shaped like a small API call: a few headers, keyed by client IP.
struct Fixture {
  http::Request req;
  http::HeaderEdits edits;
  route::Match match;
  Fixture() {
    req.path = "/api/v1/items";
    req.headers[0] = {"Host", "api.example.com"};
    req.headers[1] = {"User-Agent", "bench/1.0"};
    req.headers[2] = {"Accept", "application/json"};
    req.headers[3] = {"X-API-Key", "k-0123456789abcdef"};
    req.header_count = 4;
  }
};

// Virtual CLOCK_MONOTONIC shared by all runs: the factories are static (shared by the threads of
// a run), so time must never go back between runs or later runs would find drained buckets.
std::atomic<uint64_t> g_clock{1'000'000'000'000ull};

void advance_clock(uint64_t now) {
  uint64_t seen = g_clock.load();
  while (seen < now && !g_clock.compare_exchange_weak(seen, now)) {
  }
}

void run_decisions(benchmark::State& state, Filter& f, std::string_view ip, uint64_t step = 1) {
  Fixture fx;
  RequestContext ctx(fx.req, fx.match, ip, g_clock.load(), fx.edits);
  uint64_t now = ctx.now_ns;
  uint64_t admitted = 0;
  for (auto _ : state) {
    ctx.now_ns = now += step;
    ctx.scratch_used = 0;
    ctx.response_header_count = 0;
    admitted += f.on_request(ctx) == Verdict::kContinue;
  }
  advance_clock(now);
  state.counters["admitted%"] = benchmark::Counter(
      100.0 * static_cast<double>(admitted) / static_cast<double>(state.iterations()), benchmark::Counter::kAvgThreads);
}

// Rate far above what one core can offer: every decision is an admission.
const char* kAllowAll = "1000000000/s,burst=1000000000";

void BM_Allowed_Uncontended(benchmark::State& state) {
  static RateLimitFilterFactory fac({spec(kAllowAll)}, RateLimitOptions{});
  auto f = fac.create(0, 1);
  run_decisions(state, *f, "198.51.100.23");
}
BENCHMARK(BM_Allowed_Uncontended);

void BM_Allowed_SameKey(benchmark::State& state) {
  static RateLimitFilterFactory fac({spec(kAllowAll)}, RateLimitOptions{});
  auto f = fac.create(static_cast<unsigned>(state.thread_index()), static_cast<unsigned>(state.threads()));
  run_decisions(state, *f, "198.51.100.23");
}
BENCHMARK(BM_Allowed_SameKey)->Threads(2);

// Same key with leases of 1 token (lease_divisor raised): every admission is a CAS on the shared
// word, the worst case for contention. The large burst absorbs the skew between the threads'
// private clocks, so every decision is still an admission.
RateLimitOptions lease1() {
  RateLimitOptions o;
  o.lease_divisor = 1'000'000'000;
  return o;
}
void BM_Allowed_SameKey_Lease1(benchmark::State& state) {
  static RateLimitFilterFactory fac({spec(kAllowAll)}, lease1());
  auto f = fac.create(static_cast<unsigned>(state.thread_index()), static_cast<unsigned>(state.threads()));
  run_decisions(state, *f, "198.51.100.23", 4);
}
BENCHMARK(BM_Allowed_SameKey_Lease1)->Threads(1)->Threads(2);

void BM_Allowed_WithFields(benchmark::State& state) {
  RateLimitOptions o;
  o.headers_on_allowed = true;
  static RateLimitFilterFactory fac({spec(kAllowAll)}, o);
  auto f = fac.create(0, 1);
  run_decisions(state, *f, "198.51.100.23");
}
BENCHMARK(BM_Allowed_WithFields);

// Over the limit: every decision reads the shared word and formats a 429.
void BM_Rejected(benchmark::State& state) {
  static RateLimitFilterFactory fac({spec("1/h,burst=1")}, RateLimitOptions{});
  auto f = fac.create(0, 1);
  run_decisions(state, *f, "198.51.100.23");
}
BENCHMARK(BM_Rejected);

// Many distinct keys (4096 IPs, round-robin): table lookups miss the L1 cache.
void BM_Allowed_ManyKeys(benchmark::State& state) {
  static RateLimitFilterFactory fac({spec(kAllowAll)}, RateLimitOptions{});
  auto f = fac.create(0, 1);
  static std::string ips[4096];
  for (int i = 0; i < 4096; ++i) ips[i] = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
  Fixture fx;
  RequestContext ctx(fx.req, fx.match, ips[0], g_clock.load(), fx.edits);
  uint64_t now = ctx.now_ns;
  unsigned i = 0;
  for (auto _ : state) {
    ctx.now_ns = ++now;
    ctx.client_ip = ips[i++ & 4095];
    ctx.scratch_used = 0;
    benchmark::DoNotOptimize(f->on_request(ctx));
  }
  advance_clock(now);
}
BENCHMARK(BM_Allowed_ManyKeys);

}  // namespace

BENCHMARK_MAIN();
