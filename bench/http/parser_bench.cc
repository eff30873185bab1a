// The http glue alone: parse a typical ~400-byte browser-ish GET head and rebuild it for the
// upstream, as the gateway does once per request. Items processed = requests, so the report's
// items_per_second inverts to ns/request.
#include <benchmark/benchmark.h>

#include <string>

#include "ringway/http/head_writer.h"
#include "ringway/http/parser.h"

namespace {

using namespace ringway::http;

const std::string kHead =
    "GET /api/v1/users/12345/profile?fields=name,email&lang=en HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://app.example.com/dashboard\r\n"
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=0123456789abcdef\r\n"
    "\r\n";

void BM_FindHeadEnd(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(find_head_end(kHead.data(), kHead.size()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FindHeadEnd);

void BM_ParseHead(benchmark::State& state) {
  RequestParser parser(Limits{});
  Request req;
  for (auto _ : state) {
    const size_t n = find_head_end(kHead.data(), kHead.size());
    if (parser.parse_head(kHead.data(), n, req) != ParseStatus::kDone) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(req.header_count);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kHead.size()));
}
BENCHMARK(BM_ParseHead);

void BM_ParseAndWriteUpstreamHead(benchmark::State& state) {
  RequestParser parser(Limits{});
  Request req;
  char out[4096];
  const Header adds[] = {{"X-Gateway", "ringway"}};
  UpstreamHeadParams p;
  p.base_path = "/internal";
  p.path_remainder = "/users/12345/profile";
  p.authority = "users-svc:8080";
  p.client_addr = "192.0.2.10";
  p.add_headers = adds;
  for (auto _ : state) {
    const size_t n = find_head_end(kHead.data(), kHead.size());
    if (parser.parse_head(kHead.data(), n, req) != ParseStatus::kDone) {
      state.SkipWithError("parse failed");
      break;
    }
    const size_t w = write_upstream_head(out, sizeof(out), req, p);
    benchmark::DoNotOptimize(w);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseAndWriteUpstreamHead);

void BM_WriteProblem(benchmark::State& state) {
  char out[1024];
  for (auto _ : state) {
    benchmark::DoNotOptimize(write_problem(out, sizeof(out), 404, "no route for this path", false));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WriteProblem);

}  // namespace

BENCHMARK_MAIN();
