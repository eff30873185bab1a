// Router::match() cost with 10 and 1,000 routes of the shape /api/svcNNN/, against a linear scan
// over routes sorted by prefix length (the obvious alternative), so the choice stays measured.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ringway/route/router.h"

namespace {

using ringway::config::Route;

std::vector<Route> make_routes(int n) {
  std::vector<Route> routes;
  for (int i = 0; i < n; ++i) {
    Route r;
    r.prefix = "/api/svc" + std::to_string(i) + "/";
    routes.push_back(std::move(r));
  }
  Route root;
  root.prefix = "/";
  routes.push_back(std::move(root));
  return routes;
}

// Request paths spread over all routes; a few miss every /api/svc prefix and hit "/".
std::vector<std::string> make_paths(int n) {
  std::vector<std::string> paths;
  for (int i = 0; i < 256; ++i) {
    const int svc = (i * 7919) % (n + n / 10 + 1);
    paths.push_back("/api/svc" + std::to_string(svc) + "/users/" + std::to_string(i) + "/profile");
  }
  return paths;
}

void BM_RouterMatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::vector<Route> routes = make_routes(n);
  const std::vector<std::string> paths = make_paths(n);
  ringway::route::Router router(routes);
  ringway::http::Request req;
  req.method_name = "GET";
  req.host = "api.example.com";
  size_t i = 0;
  for (auto _ : state) {
    req.path = paths[i++ & 255];
    benchmark::DoNotOptimize(router.match(req));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RouterMatch)->Arg(10)->Arg(1000);

bool prefix_matches(std::string_view prefix, std::string_view path) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return prefix.back() == '/' || path.size() == prefix.size() || path[prefix.size()] == '/';
}

void BM_LinearScanBaseline(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<Route> routes = make_routes(n);
  std::stable_sort(routes.begin(), routes.end(),
                   [](const Route& a, const Route& b) { return a.prefix.size() > b.prefix.size(); });
  const std::vector<std::string> paths = make_paths(n);
  size_t i = 0;
  for (auto _ : state) {
    const std::string_view path = paths[i++ & 255];
    const Route* found = nullptr;
    for (const Route& r : routes) {
      if (prefix_matches(r.prefix, path)) {
        found = &r;
        break;
      }
    }
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LinearScanBaseline)->Arg(10)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();
