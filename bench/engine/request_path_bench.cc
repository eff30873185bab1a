// The gateway's per-request CPU work measured in memory, no sockets: a ~450-byte browser-like
// GET head -> RequestParser::parse_head -> Router::match (10 and 1,000 routes) -> filter Chain
// (empty, or the builtin rate limit keyed by IP at a rate that always allows) ->
// write_upstream_head (X-Forwarded-For and one --add-header); and each stage alone.
// Besides ns per request, every benchmark reports heap allocations per request in steady state:
//   allocs_per_request   global operator new / new[] calls (all variants), replaced below
//   mallocs_per_request  malloc-family calls of this thread, by interposing malloc & co. in the
//                        executable and forwarding them to mimalloc (the allocator the binary
//                        links), so C code and operator new are both seen
// Everything (parser, router, chain, buffers, one warm-up request) is built before the timed loop.
#include <benchmark/benchmark.h>
#include <mimalloc.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filter/rate_limit/rate_limit.h"
#include "ringway/config/config.h"
#include "ringway/filter/filter.h"
#include "ringway/http/head_writer.h"
#include "ringway/http/parser.h"
#include "ringway/route/router.h"

// ---------------------------------------------------------------------------------------------
// Allocation counting. Per thread, so Google Benchmark's own bookkeeping on other threads (none
// today) could not leak into the numbers; the timed loop runs on this thread.

namespace {
thread_local uint64_t t_new_calls = 0;
thread_local uint64_t t_malloc_calls = 0;
}  // namespace

// malloc & co.: an executable's definitions take precedence over libc's and libmimalloc's for
// the whole process, so every malloc call (libstdc++'s, llhttp's, ours) lands here.
extern "C" {
void* malloc(size_t n) noexcept {
  ++t_malloc_calls;
  return mi_malloc(n);
}
void* calloc(size_t c, size_t n) noexcept {
  ++t_malloc_calls;
  return mi_calloc(c, n);
}
void* realloc(void* p, size_t n) noexcept {
  ++t_malloc_calls;
  return mi_realloc(p, n);
}
void* reallocarray(void* p, size_t c, size_t n) noexcept {
  ++t_malloc_calls;
  return mi_reallocarray(p, c, n);
}
void free(void* p) noexcept { mi_free(p); }
int posix_memalign(void** p, size_t a, size_t n) noexcept {
  ++t_malloc_calls;
  return mi_posix_memalign(p, a, n);
}
void* aligned_alloc(size_t a, size_t n) noexcept {
  ++t_malloc_calls;
  return mi_aligned_alloc(a, n);
}
void* memalign(size_t a, size_t n) noexcept {
  ++t_malloc_calls;
  return mi_memalign(a, n);
}
void* valloc(size_t n) noexcept {
  ++t_malloc_calls;
  return mi_valloc(n);
}
void* pvalloc(size_t n) noexcept {
  ++t_malloc_calls;
  return mi_pvalloc(n);
}
size_t malloc_usable_size(void* p) noexcept { return mi_malloc_usable_size(p); }
}

namespace {
void* counted_new(size_t n) {
  ++t_new_calls;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* counted_new(size_t n, std::align_val_t a) {
  ++t_new_calls;
  size_t align = static_cast<size_t>(a);
  if (align < sizeof(void*)) align = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, align, n == 0 ? 1 : n) == 0) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) { return counted_new(n); }
void* operator new[](size_t n) { return counted_new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  ++t_new_calls;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  ++t_new_calls;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new(size_t n, std::align_val_t a) { return counted_new(n, a); }
void* operator new[](size_t n, std::align_val_t a) { return counted_new(n, a); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n, a);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n, a);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

namespace config = ringway::config;
namespace filter = ringway::filter;
namespace http = ringway::http;
namespace route = ringway::route;

// A browser-ish API call: query string, cookies, fetch metadata; 10 fields,
// 460 bytes.
constexpr std::string_view kHead =
    "GET /api/svc7/users/12345/orders?status=open&limit=20&sort=-created_at HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://app.example.com/orders\r\n"
    "Origin: https://app.example.com\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=8f14e45f; theme=dark\r\n"
    "Sec-Fetch-Mode: cors\r\n"
    "\r\n";

constexpr std::string_view kClientIp = "203.0.113.45";

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// n routes /api/svcN/ (N < n) each with one upstream URL, plus a catch-all "/".
std::vector<config::Route> make_routes(int n) {
  std::vector<config::Route> routes;
  routes.reserve(n + 1);
  std::string error;
  for (int i = 0; i <= n; ++i) {
    config::Route r;
    r.prefix = i < n ? "/api/svc" + std::to_string(i) + "/" : "/";
    config::Target t;
    const std::string url = "http://127.0.0.1:" + std::to_string(8000 + i % 100) + "/v1";
    if (!config::parse_target_url(url, t, error)) {
      std::fprintf(stderr, "parse_target_url(%s): %s\n", url.c_str(), error.c_str());
      std::abort();
    }
    r.targets.push_back(std::move(t));
    routes.push_back(std::move(r));
  }
  return routes;
}

// Counts allocations between construction and report(); call report() right after the loop.
class AllocWindow {
 public:
  AllocWindow() : news_(t_new_calls), mallocs_(t_malloc_calls) {}
  void report(benchmark::State& state) {
    const uint64_t news = t_new_calls - news_;
    const uint64_t mallocs = t_malloc_calls - mallocs_;
    state.counters["allocs_per_request"] =
        benchmark::Counter(static_cast<double>(news), benchmark::Counter::kAvgIterations);
    state.counters["mallocs_per_request"] =
        benchmark::Counter(static_cast<double>(mallocs), benchmark::Counter::kAvgIterations);
    state.SetItemsProcessed(state.iterations());
  }

 private:
  uint64_t news_;
  uint64_t mallocs_;
};

// Everything a worker holds across requests, built once.
struct Pipeline {
  explicit Pipeline(int route_count, bool rate_limit)
      : routes(make_routes(route_count)), router(routes), parser(http::Limits{}) {
    add_headers_cfg.push_back({"X-Gateway", "ringway"});
    for (const auto& nv : add_headers_cfg) add_headers.push_back(http::Header{nv.name, nv.value});
    if (rate_limit) {
      filter::rate_limit::RateLimitSpec spec;
      std::string error;
      // 1e9/s with a burst of 1e9: no benchmark run gets near it, so every request is allowed.
      if (!filter::rate_limit::parse_rate_limit_spec("1000000000/s,key=ip", spec, error)) {
        std::fprintf(stderr, "rate limit spec: %s\n", error.c_str());
        std::abort();
      }
      filter::rate_limit::RateLimitOptions opts;
      opts.hash_seed = 0x9e3779b97f4a7c15ull;
      std::vector<filter::rate_limit::RateLimitSpec> specs;
      specs.push_back(std::move(spec));
      factory = std::make_unique<filter::rate_limit::RateLimitFilterFactory>(std::move(specs), opts);
      chain.add(factory->create(0, 1));
    }
  }

  // One request, as Worker::start_exchange does it. Returns bytes of the rebuilt head, 0 on any
  // failure (which the benchmark reports as an error rather than timing a short cut).
  size_t run(uint64_t now_ns) {
    if (parser.parse_head(kHead.data(), kHead.size(), req) != http::ParseStatus::kDone) return 0;
    const route::Match m = router.match(req);
    if (m.route == nullptr) return 0;
    http::HeaderEdits edits;
    filter::RequestContext ctx{req, m, kClientIp, now_ns, edits};
    if (!chain.empty() && chain.on_request(ctx) != filter::Verdict::kContinue) return 0;
    const config::Target& target = m.route->targets[0];
    http::UpstreamHeadParams p;
    p.base_path = target.base_path;
    p.path_remainder = m.remainder;
    p.authority = target.authority;
    p.client_addr = kClientIp;
    p.edits = &edits;
    p.add_headers = add_headers;
    return http::write_upstream_head(out, sizeof(out), req, p);
  }

  std::vector<config::Route> routes;
  route::Router router;
  http::RequestParser parser;
  http::Request req;
  std::vector<config::NameValue> add_headers_cfg;
  std::vector<http::Header> add_headers;
  std::unique_ptr<filter::rate_limit::RateLimitFilterFactory> factory;
  filter::Chain chain;
  char out[16 * 1024];
};

// args: route count, rate limit filter (0/1).
void BM_RequestPath(benchmark::State& state) {
  auto pl = std::make_unique<Pipeline>(static_cast<int>(state.range(0)), state.range(1) != 0);
  uint64_t now = monotonic_ns();
  const size_t first = pl->run(now);  // warm-up: rate-limit key entry and lease taken here
  if (first == 0) {
    state.SkipWithError("warm-up request failed");
    return;
  }
  uint64_t i = 0;
  AllocWindow window;
  for (auto _ : state) {
    // The worker reads the clock once per completion batch, not per request.
    if ((++i & 63) == 0) now = monotonic_ns();
    const size_t n = pl->run(now);
    if (n != first) {
      state.SkipWithError("request failed or changed inside the timed loop");
      break;
    }
    benchmark::DoNotOptimize(pl->out);
  }
  window.report(state);
  state.counters["head_in_bytes"] = static_cast<double>(kHead.size());
  state.counters["head_out_bytes"] = static_cast<double>(first);
}
BENCHMARK(BM_RequestPath)
    ->ArgNames({"routes", "rate_limit"})
    ->Args({10, 0})
    ->Args({1000, 0})
    ->Args({10, 1})
    ->Args({1000, 1});

void BM_ParseHead(benchmark::State& state) {
  http::RequestParser parser{http::Limits{}};
  auto req = std::make_unique<http::Request>();
  if (parser.parse_head(kHead.data(), kHead.size(), *req) != http::ParseStatus::kDone) {
    state.SkipWithError("parse failed");
    return;
  }
  AllocWindow window;
  for (auto _ : state) {
    if (parser.parse_head(kHead.data(), kHead.size(), *req) != http::ParseStatus::kDone) {
      state.SkipWithError("parse failed inside the timed loop");
      break;
    }
    benchmark::DoNotOptimize(req->header_count);
  }
  window.report(state);
}
BENCHMARK(BM_ParseHead);

// The parsed head of kHead, matched against n routes.
void BM_RouterMatch(benchmark::State& state) {
  auto pl = std::make_unique<Pipeline>(static_cast<int>(state.range(0)), false);
  if (pl->run(monotonic_ns()) == 0) {
    state.SkipWithError("warm-up request failed");
    return;
  }
  AllocWindow window;
  for (auto _ : state) {
    const route::Match m = pl->router.match(pl->req);
    benchmark::DoNotOptimize(m);
  }
  window.report(state);
}
BENCHMARK(BM_RouterMatch)->ArgName("routes")->Arg(10)->Arg(1000);

// write_upstream_head alone, for the parsed head of kHead routed to /api/svc7/.
void BM_WriteUpstreamHead(benchmark::State& state) {
  auto pl = std::make_unique<Pipeline>(10, false);
  if (pl->run(monotonic_ns()) == 0) {
    state.SkipWithError("warm-up request failed");
    return;
  }
  const route::Match m = pl->router.match(pl->req);
  const config::Target& target = m.route->targets[0];
  http::HeaderEdits edits;
  http::UpstreamHeadParams p;
  p.base_path = target.base_path;
  p.path_remainder = m.remainder;
  p.authority = target.authority;
  p.client_addr = kClientIp;
  p.edits = &edits;
  p.add_headers = pl->add_headers;
  AllocWindow window;
  for (auto _ : state) {
    const size_t n = http::write_upstream_head(pl->out, sizeof(pl->out), pl->req, p);
    if (n == 0) {
      state.SkipWithError("write_upstream_head failed");
      break;
    }
    benchmark::DoNotOptimize(pl->out);
  }
  window.report(state);
}
BENCHMARK(BM_WriteUpstreamHead);

// Proves the counters see what they claim: per iteration one std::string that does not fit the
// small-string buffer (1 operator new, hence 1 malloc) and one strdup (a malloc made inside libc).
// Expected: allocs_per_request=1, mallocs_per_request=2.
void BM_CounterSelfCheck(benchmark::State& state) {
  AllocWindow window;
  for (auto _ : state) {
    std::string s(100, 'x');
    benchmark::DoNotOptimize(s.data());
    char* d = strdup(s.c_str());
    benchmark::DoNotOptimize(d);
    std::free(d);
  }
  window.report(state);
}
BENCHMARK(BM_CounterSelfCheck);

// Prints the rebuilt head once, so a reader can see what the end-to-end case produces.
void BM_ShowUpstreamHead(benchmark::State& state) {
  auto pl = std::make_unique<Pipeline>(10, true);
  const size_t n = pl->run(monotonic_ns());
  for (auto _ : state) benchmark::DoNotOptimize(n);
  if (std::getenv("RW_BENCH_SHOW_HEAD") != nullptr) {
    std::fprintf(stderr, "--- in (%zu bytes)\n%.*s--- out (%zu bytes)\n%.*s", kHead.size(),
                 static_cast<int>(kHead.size()), kHead.data(), n, static_cast<int>(n), pl->out);
  }
}

}  // namespace

// Registered last and only on request: it times nothing useful.
static const bool kShowHead = [] {
  if (std::getenv("RW_BENCH_SHOW_HEAD") != nullptr)
    benchmark::RegisterBenchmark("ShowUpstreamHead", BM_ShowUpstreamHead)->Iterations(1);
  return true;
}();

BENCHMARK_MAIN();
