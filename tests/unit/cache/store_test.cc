// The shared store: byte limit, S3-FIFO, refcounted entries, Vary variants, purge, threads, and
// the collapsed-forwarding bookkeeping.
#include "ringway/cache/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "heads.h"

namespace ringway::cache {
namespace {

EntryRef make_entry(std::string_view key, size_t body_size, std::string_view secondary = "",
                    std::initializer_list<http::Header> headers = {}) {
  const std::string body(body_size, 'b');
  std::vector<http::Header> hs(headers);
  Entry::Init in;
  in.primary_key = key;
  in.secondary_key = secondary;
  in.status = 200;
  in.reason = "OK";
  in.headers = hs.data();
  in.header_count = static_cast<uint16_t>(hs.size());
  in.body = body.data();
  in.body_size = body.size();
  in.lifetime = 60;
  return Entry::make(in);
}

std::string key_of(int i) { return "http://h/k" + std::to_string(i); }

TEST(Entry, OneAllocationHeadersAndBodyCopied) {
  std::string name = "ETag", value = "\"v\"";
  EntryRef e = make_entry("http://h/a", 5, "accept:x\n", {{name, value}, {"Content-Type", "text/plain"}});
  name = "XXXX";  // the entry holds its own copies
  value = "YYY";
  EXPECT_EQ(e->primary_key(), "http://h/a");
  EXPECT_EQ(e->secondary_key(), "accept:x\n");
  ASSERT_EQ(e->header_count(), 2);
  EXPECT_EQ(e->headers()[0].name, "ETag");
  EXPECT_EQ(e->headers()[0].value, "\"v\"");
  EXPECT_EQ(e->facts().etag, "\"v\"");
  EXPECT_EQ(e->body(), "bbbbb");
  EXPECT_EQ(e->reason(), "OK");
  EXPECT_GT(e->charge(), 5u + Store::kNodeOverhead);
}

TEST(Store, HitMissAndReplace) {
  Store s(1 << 20, 4);
  EXPECT_FALSE(s.lookup("http://h/a", nullptr).entry);
  EXPECT_FALSE(s.lookup("http://h/a", nullptr).key_known);
  ASSERT_TRUE(s.insert(make_entry("http://h/a", 10)));
  Store::Found f = s.lookup("http://h/a", nullptr);
  ASSERT_TRUE(f.entry);
  EXPECT_EQ(f.entry->body().size(), 10u);
  ASSERT_TRUE(s.insert(make_entry("http://h/a", 20)));  // same key and variant: replaced
  EXPECT_EQ(s.lookup("http://h/a", nullptr).entry->body().size(), 20u);
  EXPECT_EQ(s.counters().entries, 1u);
  EXPECT_EQ(s.bytes(), s.lookup("http://h/a", nullptr).entry->charge());
}

TEST(Store, Rfc9111_4_1_VaryVariantsSideBySide) {
  test::Heads h;
  Store s(1 << 20, 2);
  const http::Request& gz = h.get({"Accept-Encoding: gzip"});
  const http::Request& br = h.get({"Accept-Encoding: br"});
  const http::Request& none = h.get({});
  ASSERT_TRUE(s.insert(make_entry("http://example.com/a", 3, "accept-encoding:gzip\n")));
  ASSERT_TRUE(s.insert(make_entry("http://example.com/a", 4, "accept-encoding:br\n")));
  EXPECT_EQ(s.lookup("http://example.com/a", &gz).entry->body().size(), 3u);
  EXPECT_EQ(s.lookup("http://example.com/a", &br).entry->body().size(), 4u);
  const Store::Found miss = s.lookup("http://example.com/a", &none);
  EXPECT_FALSE(miss.entry);
  EXPECT_TRUE(miss.key_known);  // a vary-miss, not a uri-miss
  EXPECT_EQ(s.counters().entries, 2u);
  EXPECT_EQ(s.purge("http://example.com/a"), 2u);  // purge drops every variant
  EXPECT_FALSE(s.lookup("http://example.com/a", &gz).key_known);
}

TEST(Store, ByteLimitNeverExceeded) {
  const size_t cap = 64 * 1024;
  Store s(cap, 4);
  size_t max_seen = 0;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(s.insert(make_entry(key_of(i), 100 + (i * 37) % 900)));
    max_seen = std::max(max_seen, s.bytes());
    ASSERT_LE(s.bytes(), cap);
  }
  EXPECT_GT(max_seen, cap * 8 / 10);  // and it is actually used
  EXPECT_GT(s.counters().evictions, 0u);
  EXPECT_FALSE(s.insert(make_entry("http://h/huge", cap)));  // larger than a shard's share
}

TEST(Store, S3FifoKeepsWorkingSetThroughAOneHitScan) {
  // One shard, room for ~100 entries of ~1 KiB. A working set of 40 keys is hit between
  // insertions of 5000 one-hit wonders; the working set must survive the scan.
  Store s(100 * (1024 + 300), 1);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(s.insert(make_entry(key_of(i), 1024)));
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(s.lookup(key_of(i), nullptr).entry);
  int lost = 0;
  for (int n = 0; n < 5000; ++n) {
    ASSERT_TRUE(s.insert(make_entry("http://h/scan" + std::to_string(n), 1024)));
    const int hot = n % 40;
    if (!s.lookup(key_of(hot), nullptr).entry) {
      ++lost;
      s.insert(make_entry(key_of(hot), 1024));
    }
  }
  EXPECT_EQ(lost, 0);
  for (int i = 0; i < 40; ++i) EXPECT_TRUE(s.lookup(key_of(i), nullptr).entry) << i;
  EXPECT_LE(s.bytes(), s.capacity());
}

TEST(Store, EntryBeingSentOutlivesEviction) {
  Store s(8 * 1024, 1);
  ASSERT_TRUE(s.insert(make_entry("http://h/held", 1000)));
  EntryRef held = s.lookup("http://h/held", nullptr).entry;  // a worker sending it
  ASSERT_TRUE(held);
  for (int i = 0; i < 100; ++i) s.insert(make_entry(key_of(i), 1000));
  s.purge("http://h/held");
  EXPECT_FALSE(s.lookup("http://h/held", nullptr).entry);
  EXPECT_EQ(held->use_count(), 1u);   // only ours is left
  EXPECT_EQ(held->body(), std::string(1000, 'b'));  // ASan: no use after free
}

TEST(Store, PurgeExactAndPrefix) {
  Store s(1 << 20, 8);
  for (std::string k : {"http://h/api/a", "http://h/api/b", "http://h/api", "http://h/other",
                        "http://g/api/a"}) {
    ASSERT_TRUE(s.insert(make_entry(k, 10)));
  }
  EXPECT_EQ(s.purge("http://h/api"), 1u);
  EXPECT_TRUE(s.lookup("http://h/api/a", nullptr).entry);
  EXPECT_EQ(s.purge_prefix("http://h/api/"), 2u);
  EXPECT_FALSE(s.lookup("http://h/api/b", nullptr).entry);
  EXPECT_TRUE(s.lookup("http://h/other", nullptr).entry);
  EXPECT_TRUE(s.lookup("http://g/api/a", nullptr).entry);
  EXPECT_EQ(s.purge("http://nope/"), 0u);
  EXPECT_EQ(s.counters().purged, 3u);
  EXPECT_EQ(s.counters().entries, 2u);
}

TEST(Store, ThreadsLookupInsertPurgeWithoutRaces) {
  Store s(256 * 1024, 4);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> checked{0};
  auto worker = [&](int t) {
    uint64_t n = 0;
    for (int i = 0; i < 20000; ++i) {
      const std::string k = key_of((i * 7 + t) % 300);
      if (EntryRef e = s.lookup(k, nullptr).entry) {
        // The bytes are whole and belong to this key, however others evict meanwhile.
        if (e->primary_key() != k || e->body().find('x') != std::string_view::npos) std::abort();
        ++n;
        s.count(Counter::kHits);
      } else {
        s.count(Counter::kMisses);
        s.insert(make_entry(k, 200 + (i % 7) * 100));
      }
      if (t == 0 && i % 1000 == 0) s.purge_prefix("http://h/k1");
    }
    checked += n;
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back(worker, t);
  for (auto& th : ts) th.join();
  stop = true;
  const CounterSnapshot c = s.counters();
  EXPECT_EQ(c.hits + c.misses, 80000u);
  EXPECT_EQ(c.hits, checked.load());
  EXPECT_LE(s.bytes(), s.capacity());
}

constexpr uint64_t kSec = 1'000'000'000;

TEST(Fills, FirstMissFillsLaterOnesWait) {
  FillTable f(5 * kSec, 30 * kSec, 4);
  EXPECT_EQ(f.begin("k", 1, 0), FillTable::Role::kFiller);
  EXPECT_EQ(f.begin("k", 2, 1), FillTable::Role::kWaiter);
  EXPECT_EQ(f.begin("k", 3, 2), FillTable::Role::kWaiter);
  EXPECT_EQ(f.begin("other", 4, 2), FillTable::Role::kFiller);
  EXPECT_EQ(f.in_progress(), 2u);
  EXPECT_EQ(f.collapsed_waiters(), 2u);
  EXPECT_TRUE(f.cancel("k", 3));
  EXPECT_FALSE(f.cancel("k", 3));
  EXPECT_EQ(f.finish("k", 1, true, 3), std::vector<FillTable::Waiter>{2});
  EXPECT_EQ(f.begin("k", 5, 4), FillTable::Role::kFiller);  // a new fill after completion
}

TEST(Fills, LockTimeoutHandsOverToOldestWaiter) {
  FillTable f(5 * kSec, 30 * kSec, 1);
  ASSERT_EQ(f.begin("k", 1, 0), FillTable::Role::kFiller);
  ASSERT_EQ(f.begin("k", 2, kSec), FillTable::Role::kWaiter);
  ASSERT_EQ(f.begin("k", 3, kSec), FillTable::Role::kWaiter);
  EXPECT_TRUE(f.expire(4 * kSec).empty());
  const auto h = f.expire(5 * kSec);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].key, "k");
  EXPECT_EQ(h[0].new_filler, 2u);
  // The old filler comes back late: it is no longer the filler and wakes nobody.
  EXPECT_TRUE(f.finish("k", 1, true, 6 * kSec).empty());
  EXPECT_EQ(f.finish("k", 2, true, 6 * kSec), std::vector<FillTable::Waiter>{3});
  // A fill with no waiters just expires.
  ASSERT_EQ(f.begin("j", 7, 0), FillTable::Role::kFiller);
  EXPECT_TRUE(f.expire(10 * kSec).empty());
  EXPECT_EQ(f.in_progress(), 0u);
  // A miss arriving after the deadline takes the fill over itself.
  ASSERT_EQ(f.begin("m", 8, 0), FillTable::Role::kFiller);
  EXPECT_EQ(f.begin("m", 9, 6 * kSec), FillTable::Role::kFiller);
}

TEST(Fills, UncacheableMarkerSkipsTheWaitUntilItsTtl) {
  FillTable f(5 * kSec, 30 * kSec, 2);
  ASSERT_EQ(f.begin("k", 1, 0), FillTable::Role::kFiller);
  ASSERT_EQ(f.begin("k", 2, 0), FillTable::Role::kWaiter);
  EXPECT_EQ(f.finish("k", 1, false, kSec), std::vector<FillTable::Waiter>{2});
  EXPECT_EQ(f.begin("k", 3, 2 * kSec), FillTable::Role::kBypass);
  EXPECT_EQ(f.begin("k", 4, 2 * kSec), FillTable::Role::kBypass);
  EXPECT_EQ(f.in_progress(), 0u);
  EXPECT_EQ(f.begin("k", 5, 31 * kSec), FillTable::Role::kFiller);  // the marker expired
}

TEST(Fills, ThreadsCollapseToOneFiller) {
  FillTable f(60 * kSec, 30 * kSec, 4);
  std::atomic<int> fillers{0}, waiters{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        const auto r = f.begin("k", static_cast<uint64_t>(t * 1000 + i), 1);
        (r == FillTable::Role::kFiller ? fillers : waiters)++;
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(fillers.load(), 1);
  EXPECT_EQ(waiters.load(), 999);
  EXPECT_EQ(f.collapsed_waiters(), 999u);
}

TEST(Store, CountersSummedAcrossThreads) {
  Store s(1 << 20, 2);
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        s.count(Counter::kHits);
        s.count(Counter::kStaleServed, 2);
        s.count(Counter::kRevalidations);
      }
    });
  }
  for (auto& th : ts) th.join();
  const CounterSnapshot c = s.counters();
  EXPECT_EQ(c.hits, 3000u);
  EXPECT_EQ(c.stale_served, 6000u);
  EXPECT_EQ(c.revalidations, 3000u);
}

}  // namespace
}  // namespace ringway::cache

namespace ringway::cache {
namespace {

TEST(EntryFromResponse, Rfc9111_3_1_StoredFieldsVaryKeyAndLifetime) {
  test::Heads h;
  Options opt;
  const http::Request& req = h.get({"Accept-Encoding: gzip"});
  const http::Response& r = h.response(200, {"Date: Thu, 03 Dec 2026 12:13:20 GMT",
                                             "Cache-Control: max-age=60", "Vary: Accept-Encoding",
                                             "Connection: X-Hop", "X-Hop: 1", "Keep-Alive: t=1",
                                             "ETag: \"e\"", "Age: 5"});
  EntryRef e = entry_from_response("http://example.com/a", req, r, "hello", 5, 1796300000,
                                   1796300000, opt);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->secondary_key(), "accept-encoding:gzip\n");
  EXPECT_EQ(e->lifetime(), 60);
  EXPECT_EQ(e->body(), "hello");
  std::string names;
  for (uint16_t i = 0; i < e->header_count(); ++i) names.append(e->headers()[i].name).append(",");
  // No hop-by-hop or Connection-named field, no framing field (Content-Length from the helper).
  EXPECT_EQ(names, "Date,Cache-Control,Vary,ETag,Age,");
  EXPECT_EQ(e->age(1796300010), 15);  // Age: 5 + 10 s resident (4.2.3)
  const http::Response& star = h.response(200, {"Cache-Control: max-age=60", "Vary: *"});
  EXPECT_FALSE(entry_from_response("http://example.com/a", req, star, "x", 1, 0, 0, opt));
}

TEST(EntryRefreshed, Rfc9111_4_3_4_NewHeadersSameBodyNewAge) {
  test::Heads h;
  Options opt;
  const http::Request& req = h.get({});
  const http::Response& r = h.response(200, {"Date: Thu, 03 Dec 2026 12:13:20 GMT",
                                             "Cache-Control: max-age=60", "ETag: \"e\"", "Age: 50",
                                             "X-Keep: yes"});
  EntryRef old = entry_from_response("http://example.com/a", req, r, "body", 4, 1796300000,
                                     1796300000, opt);
  ASSERT_TRUE(old);
  const http::Response& nm = h.response(304, {"Cache-Control: max-age=600", "ETag: \"e\""});
  ASSERT_TRUE(not_modified_selects(old->facts(), nm));
  EntryRef fresh = entry_refreshed(*old, nm, 1796300100, 1796300100, opt);
  EXPECT_EQ(fresh->lifetime(), 600);
  EXPECT_EQ(fresh->body(), "body");
  EXPECT_EQ(fresh->primary_key(), old->primary_key());
  // The old Date and Age no longer count: age restarts from the 304's arrival.
  EXPECT_EQ(fresh->age(1796300105), 5);
  bool keep = false;
  for (uint16_t i = 0; i < fresh->header_count(); ++i) {
    keep = keep || fresh->headers()[i].name == "X-Keep";
    EXPECT_NE(fresh->headers()[i].value, "max-age=60");
  }
  EXPECT_TRUE(keep);
}

}  // namespace
}  // namespace ringway::cache
