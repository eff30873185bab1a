// Cost of a cache hit's store work: the primary-key lookup (hash, shard lock, map probe, Vary
// match, reference count) from 1, 2 and 4 threads over a working set of 10,000 entries, the same
// with every thread hitting one hot key (the worst case for the shard lock and the entry's
// count), and the per-hit policy (Age, freshness, the reuse decision). The engine's send of the
// stored bytes is not included: that is kernel work the comparison tool measures end to end.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "ringway/cache/policy.h"
#include "ringway/cache/store.h"

namespace {

using namespace ringway;
using namespace ringway::cache;

constexpr int kKeys = 10000;

std::vector<std::string> make_keys() {
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back("http://api.example.com/v1/items/" + std::to_string(i) + "?fields=all");
  }
  return keys;
}

Store& shared_store() {
  static Store* store = [] {
    auto* s = new Store(256u << 20, 16);
    const std::string body(512, 'x');
    const http::Header hs[] = {{"Content-Type", "application/json"},
                               {"Cache-Control", "public, max-age=60"},
                               {"ETag", "\"abcdef\""}};
    for (const std::string& k : make_keys()) {
      Entry::Init in;
      in.primary_key = k;
      in.headers = hs;
      in.header_count = 3;
      in.body = body.data();
      in.body_size = body.size();
      in.reason = "OK";
      in.lifetime = 60;
      s->insert(Entry::make(in));
    }
    return s;
  }();
  return *store;
}

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = make_keys();
  return k;
}

void BM_HitLookup(benchmark::State& state) {
  Store& s = shared_store();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    Store::Found f = s.lookup(keys()[i % kKeys], nullptr);
    benchmark::DoNotOptimize(f.entry.get());
    i += 13;
  }
}
BENCHMARK(BM_HitLookup)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_HitLookup_OneHotKey(benchmark::State& state) {
  Store& s = shared_store();
  for (auto _ : state) {
    Store::Found f = s.lookup(keys()[42], nullptr);
    benchmark::DoNotOptimize(f.entry.get());
  }
}
BENCHMARK(BM_HitLookup_OneHotKey)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_HitPolicy(benchmark::State& state) {
  Store& s = shared_store();
  const EntryRef e = s.lookup(keys()[1], nullptr).entry;
  RequestDirectives none;
  int64_t now = 10;
  for (auto _ : state) {
    const int64_t age = e->age(now);
    const ReuseDecision d = decide_reuse(e->facts(), e->lifetime(), age, none);
    benchmark::DoNotOptimize(d);
    now = (now + 1) % 50;
  }
}
BENCHMARK(BM_HitPolicy);

void BM_CacheControlParse(benchmark::State& state) {
  for (auto _ : state) {
    CacheControl cc;
    parse_cache_control("public, max-age=60, s-maxage=300, stale-while-revalidate=30", cc);
    benchmark::DoNotOptimize(cc);
  }
}
BENCHMARK(BM_CacheControlParse);

}  // namespace

BENCHMARK_MAIN();
