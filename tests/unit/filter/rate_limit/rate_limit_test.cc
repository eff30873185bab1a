// Rate-limit filter: spec parsing, the bucket arithmetic through the filter interface with an
// injected clock, several worker filters in one thread (simulated workers) and real threads on
// one key, table bounds under key spraying, and the emitted fields.
#include "filter/rate_limit/rate_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "filter/rate_limit/token_pool.h"

namespace ringway::filter::rate_limit {
namespace {

constexpr uint64_t kSec = 1'000'000'000ull;
constexpr uint64_t kMs = 1'000'000ull;
// An arbitrary, large monotonic origin (about 200 days of uptime): no test depends on now being
// small, and long uptimes must not skew anything.
constexpr uint64_t kT0 = 200ull * 86400 * kSec;

RateLimitSpec spec_of(std::string_view text) {
  RateLimitSpec s;
  std::string err;
  EXPECT_TRUE(parse_rate_limit_spec(text, s, err)) << text << ": " << err;
  return s;
}

RateLimitOptions opts(bool on_allowed = false, HeaderStyle style = HeaderStyle::kDraft) {
  RateLimitOptions o;
  o.headers_on_allowed = on_allowed;
  o.style = style;
  o.hash_seed = 12345;
  return o;
}

// One request through a filter; keeps the request, edits and context alive for inspection.
struct Call {
  http::Request req;
  http::HeaderEdits edits;
  route::Match match;
  std::optional<RequestContext> ctx;
  Verdict verdict = Verdict::kContinue;

  std::string_view reply_header(std::string_view name) const {
    for (uint8_t i = 0; i < ctx->reply.header_count; ++i) {
      if (ctx->reply.headers[i].name == name) return ctx->reply.headers[i].value;
    }
    return {};
  }
  std::string_view response_header(std::string_view name) const {
    for (uint8_t i = 0; i < ctx->response_header_count; ++i) {
      if (ctx->response_headers[i].name == name) return ctx->response_headers[i].value;
    }
    return {};
  }
};

struct Req {
  std::string_view ip = "192.0.2.1";
  std::string_view path = "/";
  std::vector<http::Header> headers;
  std::vector<http::Header> added;  // edits made by earlier filters
};

std::unique_ptr<Call> run(Filter& f, uint64_t now, const Req& r) {
  auto c = std::make_unique<Call>();
  c->req.path = r.path;
  for (const auto& h : r.headers) c->req.headers[c->req.header_count++] = h;
  for (const auto& h : r.added) c->edits.push_add(h.name, h.value);
  c->ctx.emplace(c->req, c->match, r.ip, now, c->edits);
  c->verdict = f.on_request(*c->ctx);
  return c;
}

bool admitted(Filter& f, uint64_t now, std::string_view ip = "192.0.2.1", std::string_view path = "/") {
  Req r;
  r.ip = ip;
  r.path = path;
  return run(f, now, r)->verdict == Verdict::kContinue;
}

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(RateLimitSpecTest, ParsesAllFields) {
  RateLimitSpec s = spec_of("100/s,burst=20,key=ip");
  EXPECT_EQ(s.rate, 100u);
  EXPECT_EQ(s.unit_s, 1u);
  EXPECT_EQ(s.burst, 20u);
  EXPECT_EQ(s.key, KeySource::kIp);
  EXPECT_TRUE(s.route.empty());

  s = spec_of("5/m,route=/api/,key=header:X-Tenant");
  EXPECT_EQ(s.rate, 5u);
  EXPECT_EQ(s.unit_s, 60u);
  EXPECT_EQ(s.burst, 5u);  // defaults to the rate
  EXPECT_EQ(s.key, KeySource::kHeader);
  EXPECT_EQ(s.header_name, "X-Tenant");
  EXPECT_EQ(s.route, "/api/");

  EXPECT_EQ(spec_of("7/h,key=api-key").key, KeySource::kApiKey);
  EXPECT_EQ(spec_of("7/h").unit_s, 3600u);
  EXPECT_EQ(spec_of("1/s,key=jwt-sub").key, KeySource::kJwtSub);
  EXPECT_EQ(spec_of("1000000000/s").burst, 1000000000u);
}

TEST(RateLimitSpecTest, RejectsBadSpecs) {
  const char* bad[] = {
      "", "100", "/s", "100/", "100/x", "100/sec", "0/s", "-1/s", "1e3/s", "abc/s", "100/s,",
      "100/s,burst", "100/s,burst=", "100/s,burst=0", "100/s,burst=x", "100/s,burst=1,burst=2",
      "100/s,foo=1", "100/s,key=", "100/s,key=mac", "100/s,key=header:", "100/s,key=header:a b",
      "100/s,key=ip,key=ip", "100/s,route=api", "100/s,route=/a,route=/b", "2000000000/s",
      "100/s,burst=4000000000", " 100/s", "100/s ,burst=1",
      "1/h,burst=1000000000",  // burst / rate would be 114155 years
  };
  for (const char* text : bad) {
    RateLimitSpec s;
    std::string err;
    EXPECT_FALSE(parse_rate_limit_spec(text, s, err)) << "accepted: '" << text << "'";
    EXPECT_FALSE(err.empty()) << text;
  }
}

// ---------------------------------------------------------------------------------------------
// Bucket behaviour through the filter

TEST(RateLimitTest, BurstExactlyAsConfigured) {
  for (unsigned workers : {1u, 3u, 4u}) {
    RateLimitFilterFactory fac({spec_of("10/s,burst=37")}, opts());
    std::vector<std::unique_ptr<Filter>> w;
    for (unsigned i = 0; i < workers; ++i) w.push_back(fac.create(i, workers));
    int ok = 0;
    for (int i = 0; i < 1000; ++i) ok += admitted(*w[i % workers], kT0);  // frozen clock
    EXPECT_EQ(ok, 37) << workers << " workers";
  }
}

// Offered load at `factor` times the limit for `seconds`, requests spread over simulated
// workers round-robin or at random; admitted must be within 5% of rate*D + burst.
void check_accuracy(const char* spec_text, unsigned workers, double factor, uint64_t seconds, bool random_spread) {
  RateLimitSpec spec = spec_of(spec_text);
  RateLimitFilterFactory fac({spec}, opts());
  std::vector<std::unique_ptr<Filter>> w;
  for (unsigned i = 0; i < workers; ++i) w.push_back(fac.create(i, workers));
  const double rate_per_s = static_cast<double>(spec.rate) / spec.unit_s;
  const uint64_t total = static_cast<uint64_t>(rate_per_s * factor * static_cast<double>(seconds));
  const uint64_t step = seconds * kSec / total;
  std::mt19937 rng(7);
  uint64_t ok = 0;
  for (uint64_t i = 0; i < total; ++i) {
    const unsigned wi = random_spread ? rng() % workers : i % workers;
    ok += admitted(*w[wi], kT0 + i * step);
  }
  const double expected = rate_per_s * static_cast<double>(seconds) + spec.burst;
  EXPECT_GE(static_cast<double>(ok), expected * 0.95) << spec_text << " W=" << workers << " x" << factor;
  EXPECT_LE(static_cast<double>(ok), expected * 1.05) << spec_text << " W=" << workers << " x" << factor;
}

TEST(RateLimitTest, AccuracyOneWorker) {
  check_accuracy("100/s,burst=20", 1, 3, 10, false);
  check_accuracy("100/s,burst=20", 1, 10, 10, false);
  check_accuracy("600/m,burst=50", 1, 4, 120, false);
  check_accuracy("3/s,burst=3", 1, 5, 100, false);  // burst 1 would lose the phase remainder
  check_accuracy("1/s,burst=2", 1, 7, 300, true);
}

TEST(RateLimitTest, AccuracyManyWorkers) {
  check_accuracy("100/s,burst=20", 4, 3, 10, false);
  check_accuracy("100/s,burst=20", 4, 10, 10, true);
  check_accuracy("1000/s,burst=200", 8, 5, 5, true);
  check_accuracy("7200/h,burst=100", 3, 3, 60, true);
}

TEST(RateLimitTest, KeysAreIsolated) {
  RateLimitFilterFactory fac({spec_of("1/s,burst=3")}, opts());
  auto f = fac.create(0, 1);
  int a = 0, b = 0;
  for (int i = 0; i < 10; ++i) a += admitted(*f, kT0, "10.0.0.1");
  for (int i = 0; i < 10; ++i) b += admitted(*f, kT0, "10.0.0.2");
  EXPECT_EQ(a, 3);
  EXPECT_EQ(b, 3);
}

TEST(RateLimitTest, RejectedRequestsDoNotConsumeQuota) {
  // T = 100 ms. Drain the burst, hammer while empty, and the token due at +100 ms is still there.
  RateLimitFilterFactory fac({spec_of("10/s,burst=5")}, opts());
  auto f = fac.create(0, 1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(admitted(*f, kT0));
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(admitted(*f, kT0 + i * 99'000));  // up to +98.9 ms
  EXPECT_TRUE(admitted(*f, kT0 + 100 * kMs));
  EXPECT_FALSE(admitted(*f, kT0 + 100 * kMs));
}

TEST(RateLimitTest, RejectionBySecondSpecRefundsTheFirst) {
  RateLimitFilterFactory fac({spec_of("1/h,burst=10"), spec_of("1/h,burst=1,route=/b")}, opts());
  auto f = fac.create(0, 1);
  EXPECT_TRUE(admitted(*f, kT0, "10.0.0.1", "/b"));  // spec 1: 9 left, spec 2: 0 left
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(admitted(*f, kT0, "10.0.0.1", "/b/x"));
  int ok = 0;
  for (int i = 0; i < 20; ++i) ok += admitted(*f, kT0, "10.0.0.1", "/a");  // spec 1 only
  EXPECT_EQ(ok, 9);
}

TEST(RateLimitTest, IdleForHoursRefillsToBurstOnly) {
  RateLimitFilterFactory fac({spec_of("50/s,burst=25")}, opts());
  auto w0 = fac.create(0, 2);
  auto w1 = fac.create(1, 2);
  for (int i = 0; i < 100; ++i) admitted(i % 2 ? *w1 : *w0, kT0);
  for (uint64_t idle : {uint64_t{3600} * kSec, uint64_t{36000} * kSec, uint64_t{400} * 86400 * kSec}) {
    const uint64_t now = kT0 + idle;
    int ok = 0;
    for (int i = 0; i < 200; ++i) ok += admitted(i % 2 ? *w1 : *w0, now);
    EXPECT_EQ(ok, 25) << idle / kSec << " s idle";
  }
}

TEST(RateLimitTest, RouteScopesTheSpec) {
  RateLimitFilterFactory fac({spec_of("1/h,burst=1,route=/api")}, opts());
  auto f = fac.create(0, 1);
  EXPECT_TRUE(admitted(*f, kT0, "10.0.0.1", "/api/x"));
  EXPECT_FALSE(admitted(*f, kT0, "10.0.0.1", "/api"));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(admitted(*f, kT0, "10.0.0.1", "/apix"));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(admitted(*f, kT0, "10.0.0.1", "/other"));
}

// ---------------------------------------------------------------------------------------------
// Keys

TEST(RateLimitTest, ApiKeyPrefersConsumerEditThenHeader) {
  RateLimitFilterFactory fac({spec_of("1/h,burst=1,key=api-key")}, opts());
  auto f = fac.create(0, 1);
  Req a;
  a.headers = {{"x-api-key", "key-A"}};
  EXPECT_EQ(run(*f, kT0, a)->verdict, Verdict::kContinue);
  a.ip = "10.9.9.9";  // another address, same key: same bucket
  EXPECT_EQ(run(*f, kT0, a)->verdict, Verdict::kRespond);
  Req b;
  b.headers = {{"X-API-Key", "key-B"}};
  EXPECT_EQ(run(*f, kT0, b)->verdict, Verdict::kContinue);
  // The auth filter's consumer name wins over the raw header value.
  Req c;
  c.headers = {{"X-API-Key", "key-A"}};
  c.added = {{"X-Consumer", "alice"}};
  EXPECT_EQ(run(*f, kT0, c)->verdict, Verdict::kContinue);
  EXPECT_EQ(run(*f, kT0, c)->verdict, Verdict::kRespond);
  // No key at all: one shared anonymous bucket.
  EXPECT_EQ(run(*f, kT0, Req{})->verdict, Verdict::kContinue);
  Req anon2;
  anon2.ip = "10.1.1.1";
  EXPECT_EQ(run(*f, kT0, anon2)->verdict, Verdict::kRespond);
}

TEST(RateLimitTest, JwtSubTrustsOnlyEdits) {
  RateLimitFilterFactory fac({spec_of("1/h,burst=1,key=jwt-sub")}, opts());
  auto f = fac.create(0, 1);
  Req u1;
  u1.added = {{"X-User-Id", "u1"}};
  Req u2;
  u2.added = {{"x-user-id", "u2"}};
  EXPECT_EQ(run(*f, kT0, u1)->verdict, Verdict::kContinue);
  EXPECT_EQ(run(*f, kT0, u2)->verdict, Verdict::kContinue);
  EXPECT_EQ(run(*f, kT0, u1)->verdict, Verdict::kRespond);
  // Client-sent X-User-Id values are ignored: both land on the anonymous key.
  Req spoof1;
  spoof1.headers = {{"X-User-Id", "s1"}};
  Req spoof2;
  spoof2.headers = {{"X-User-Id", "s2"}};
  EXPECT_EQ(run(*f, kT0, spoof1)->verdict, Verdict::kContinue);
  EXPECT_EQ(run(*f, kT0, spoof2)->verdict, Verdict::kRespond);
}

TEST(RateLimitTest, HeaderKeyIsCaseInsensitiveByName) {
  RateLimitFilterFactory fac({spec_of("1/h,burst=1,key=header:X-Tenant")}, opts());
  auto f = fac.create(0, 1);
  Req t1;
  t1.headers = {{"Accept", "*/*"}, {"x-tenant", "t1"}};
  Req t1b;
  t1b.ip = "10.2.2.2";
  t1b.headers = {{"X-TENANT", "t1"}};
  Req t2;
  t2.headers = {{"X-Tenant", "t2"}};
  EXPECT_EQ(run(*f, kT0, t1)->verdict, Verdict::kContinue);
  EXPECT_EQ(run(*f, kT0, t1b)->verdict, Verdict::kRespond);
  EXPECT_EQ(run(*f, kT0, t2)->verdict, Verdict::kContinue);
}

// ---------------------------------------------------------------------------------------------
// Table bounds

TEST(RateLimitTest, KeySprayingStaysWithinTheBound) {
  RateLimitOptions o = opts();
  o.max_keys = 64;
  o.max_local_keys = 32;
  const uint32_t burst = 2;
  RateLimitFilterFactory fac({spec_of("1/h,burst=2")}, o);
  auto w0 = fac.create(0, 2);
  auto w1 = fac.create(1, 2);
  ASSERT_EQ(fac.shared_capacity(0), 64u);
  int ok = 0;
  const int sprayed = 5000;
  for (int i = 0; i < sprayed; ++i) {
    const std::string ip = "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
                           std::to_string(i % 256);
    ok += admitted(i % 2 ? *w1 : *w0, kT0 + static_cast<uint64_t>(i), ip);
    ASSERT_LE(fac.shared_entry_count(0), 64u);
    ASSERT_LE(static_cast<RateLimitFilter&>(*w0).local_entry_count(0), 32u);
  }
  EXPECT_EQ(fac.shared_entry_count(0), 64u);
  EXPECT_EQ(static_cast<RateLimitFilter&>(*w0).local_entry_count(0), 32u);
  // Every table key is active (its bucket is not full again for an hour), so the rest shared
  // the overflow bucket: admissions are bounded by capacity*burst + burst, not by the spray.
  EXPECT_LE(ok, static_cast<int>(64 * burst + burst));
  EXPECT_GE(ok, static_cast<int>(burst));
  // Two hours later every bucket is full again, so their slots are reclaimable: a new key gets
  // its own full bucket instead of the (drained, then refilled) overflow.
  const uint64_t later = kT0 + 2 * 3600 * kSec;
  EXPECT_TRUE(admitted(*w0, later, "203.0.113.7"));
  EXPECT_TRUE(admitted(*w1, later, "203.0.113.7"));
  EXPECT_FALSE(admitted(*w0, later, "203.0.113.7"));
  EXPECT_LE(fac.shared_entry_count(0), 64u);
}

TEST(RateLimitTest, SharedTableReclaimsOnlyFullBuckets) {
  // Fill one group (8 slots), then a ninth key in the same group must not take an active slot.
  SharedBuckets pool(8, BucketParams{kSec, 2 * kSec, 2});
  for (uint64_t k = 1; k <= 8; ++k) {
    const uint32_t s = pool.find_or_insert(k, kT0);
    ASSERT_NE(s, SharedBuckets::kOverflow);
    uint64_t wait = 0;
    ASSERT_EQ(pool.take(s, kT0, 1, &wait), 1u);
  }
  EXPECT_EQ(pool.find_or_insert(99, kT0), SharedBuckets::kOverflow);
  EXPECT_EQ(pool.entry_count(), 8u);
  // After one T every bucket is full again (TAT <= now): the slot is reused.
  const uint32_t s = pool.find_or_insert(99, kT0 + kSec);
  EXPECT_NE(s, SharedBuckets::kOverflow);
  EXPECT_TRUE(pool.owns(s, 99));
  EXPECT_EQ(pool.available(s, kT0 + kSec), 2u);
  EXPECT_EQ(pool.entry_count(), 8u);
}

TEST(RateLimitTest, LeaseGoesBackWhenIdle) {
  // Two workers, burst 64: a lease is 64/(2*8) = 4. Worker 0 takes a lease and goes quiet; after
  // the TTL its sweep hands the unspent 3 back, so worker 1 can use the whole bucket.
  RateLimitOptions o = opts();
  o.max_local_keys = 8;  // sweep covers the table in 8 requests
  RateLimitFilterFactory fac({spec_of("1/h,burst=64")}, o);
  auto w0 = fac.create(0, 2);
  auto w1 = fac.create(1, 2);
  ASSERT_EQ(static_cast<RateLimitFilter&>(*w0).lease_size(0), 4u);
  ASSERT_TRUE(admitted(*w0, kT0, "10.0.0.1"));
  const uint64_t later = kT0 + 200 * kMs;
  for (int i = 0; i < 8; ++i) admitted(*w0, later, "10.7.7." + std::to_string(i));  // sweep w0
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += admitted(*w1, later, "10.0.0.1");
  EXPECT_EQ(ok, 63);
}

// ---------------------------------------------------------------------------------------------
// Fields

TEST(RateLimitHeadersTest, RejectionCarriesDraftFieldsAndHonestRetryAfter) {
  RateLimitFilterFactory fac({spec_of("100/s,burst=20")}, opts());
  auto f = fac.create(0, 1);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(admitted(*f, kT0));
  auto c = run(*f, kT0, Req{});
  ASSERT_EQ(c->verdict, Verdict::kRespond);
  EXPECT_EQ(c->ctx->reply.status, 429);
  EXPECT_EQ(c->ctx->reply.detail, "rate limit of 100/s exceeded");
  EXPECT_EQ(c->reply_header("Retry-After"), "1");
  EXPECT_EQ(c->reply_header("RateLimit-Policy"), "\"default\";q=100;w=1");
  EXPECT_EQ(c->reply_header("RateLimit"), "\"default\";r=0;t=1");
  EXPECT_EQ(c->ctx->response_header_count, 0);
}

TEST(RateLimitHeadersTest, RetryAfterIsHonest) {
  for (unsigned workers : {1u, 4u}) {
    RateLimitFilterFactory fac({spec_of("1/m,burst=2")}, opts());
    std::vector<std::unique_ptr<Filter>> w;
    for (unsigned i = 0; i < workers; ++i) w.push_back(fac.create(i, workers));
    uint64_t now = kT0;
    ASSERT_TRUE(admitted(*w[0], now));
    now += 10 * kSec;
    ASSERT_TRUE(admitted(*w[1 % workers], now));
    now += 5 * kSec;
    auto c = run(*w[2 % workers], now, Req{});
    ASSERT_EQ(c->verdict, Verdict::kRespond);
    // The first token comes back 60 s after the first request, i.e. 45 s from now.
    EXPECT_EQ(c->reply_header("Retry-After"), "45");
    EXPECT_EQ(c->reply_header("RateLimit"), "\"default\";r=0;t=45");
    const uint64_t retry = std::strtoull(std::string(c->reply_header("Retry-After")).c_str(), nullptr, 10);
    EXPECT_FALSE(admitted(*w[0], now + (retry - 1) * kSec));
    EXPECT_TRUE(admitted(*w[3 % workers], now + retry * kSec));
  }
}

TEST(RateLimitHeadersTest, AllowedResponsesCarryFieldsWhenAsked) {
  RateLimitFilterFactory fac({spec_of("10/s,burst=5")}, opts(true));
  auto f = fac.create(0, 1);
  auto c = run(*f, kT0, Req{});
  ASSERT_EQ(c->verdict, Verdict::kContinue);
  EXPECT_EQ(c->response_header("RateLimit-Policy"), "\"default\";q=10;w=1");
  EXPECT_EQ(c->response_header("RateLimit"), "\"default\";r=4;t=1");  // full again in 100 ms
  for (int i = 0; i < 3; ++i) run(*f, kT0, Req{});
  c = run(*f, kT0, Req{});
  EXPECT_EQ(c->response_header("RateLimit"), "\"default\";r=0;t=1");

  RateLimitFilterFactory quiet({spec_of("10/s,burst=5")}, opts(false));
  auto g = quiet.create(0, 1);
  EXPECT_EQ(run(*g, kT0, Req{})->ctx->response_header_count, 0);
}

TEST(RateLimitHeadersTest, LegacyStyle) {
  RateLimitFilterFactory fac({spec_of("2/m,burst=2")}, opts(true, HeaderStyle::kLegacy));
  auto f = fac.create(0, 1);
  auto c = run(*f, kT0, Req{});
  EXPECT_EQ(c->response_header("X-RateLimit-Limit"), "2");
  EXPECT_EQ(c->response_header("X-RateLimit-Remaining"), "1");
  EXPECT_EQ(c->response_header("X-RateLimit-Reset"), "30");
  EXPECT_EQ(c->response_header("RateLimit"), "");
  run(*f, kT0, Req{});
  c = run(*f, kT0 + kSec, Req{});
  ASSERT_EQ(c->verdict, Verdict::kRespond);
  EXPECT_EQ(c->reply_header("Retry-After"), "29");
  EXPECT_EQ(c->reply_header("X-RateLimit-Limit"), "2");
  EXPECT_EQ(c->reply_header("X-RateLimit-Remaining"), "0");
  EXPECT_EQ(c->reply_header("X-RateLimit-Reset"), "29");
  EXPECT_EQ(c->ctx->reply.header_count, 4);
}

TEST(RateLimitHeadersTest, SeveralSpecsNameTheirPolicies) {
  RateLimitFilterFactory fac({spec_of("100/s"), spec_of("1000/h,burst=3")}, opts(true));
  auto f = fac.create(0, 1);
  auto c = run(*f, kT0, Req{});
  // The hourly spec has the least room, so it is the one described.
  EXPECT_EQ(c->response_header("RateLimit-Policy"), "\"rl2\";q=1000;w=3600");
  EXPECT_EQ(c->response_header("RateLimit"), "\"rl2\";r=2;t=4");  // T = 3.6 s
  run(*f, kT0, Req{});
  run(*f, kT0, Req{});
  c = run(*f, kT0, Req{});
  ASSERT_EQ(c->verdict, Verdict::kRespond);
  EXPECT_EQ(c->reply_header("RateLimit-Policy"), "\"rl2\";q=1000;w=3600");
}

// ---------------------------------------------------------------------------------------------
// Real threads, one filter per thread (as workers), same key

TEST(RateLimitThreadsTest, FrozenClockAdmitsExactlyTheBurst) {
  for (unsigned threads : {2u, 4u}) {
    RateLimitFilterFactory fac({spec_of("10/s,burst=5000")}, opts());
    std::atomic<uint64_t> ok{0};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        auto f = fac.create(t, threads);
        uint64_t mine = 0;
        for (int i = 0; i < 20000; ++i) mine += admitted(*f, kT0);
        ok += mine;
      });
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok.load(), 5000u) << threads << " threads";
  }
}

TEST(RateLimitThreadsTest, SharedVirtualClockStaysWithinBound) {
  // Threads advance one shared clock by 50 us per request (20000 req/s offered, 10x the limit)
  // over 10 virtual seconds; whatever the interleaving, admissions stay within 5% of R*D + B.
  for (unsigned threads : {2u, 4u}) {
    RateLimitFilterFactory fac({spec_of("2000/s,burst=400")}, opts());
    std::atomic<uint64_t> clock{kT0};
    std::atomic<uint64_t> ok{0};
    const uint64_t step = 50'000, end = kT0 + 10 * kSec;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        auto f = fac.create(t, threads);
        uint64_t mine = 0;
        for (;;) {
          const uint64_t now = clock.fetch_add(step);
          if (now >= end) break;
          mine += admitted(*f, now);
        }
        ok += mine;
      });
    }
    for (auto& t : ts) t.join();
    const double expected = 2000.0 * 10 + 400;
    EXPECT_GE(static_cast<double>(ok.load()), expected * 0.95) << threads;
    EXPECT_LE(static_cast<double>(ok.load()), expected * 1.05) << threads;
  }
}

TEST(RateLimitThreadsTest, RealClockNeverExceedsTheLimit) {
  // Upper bound only: how many requests the threads manage to make depends on the machine.
  RateLimitFilterFactory fac({spec_of("5000/s,burst=100")}, opts());
  const unsigned threads = 3;
  std::atomic<uint64_t> ok{0};
  auto mono = [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  };
  const uint64_t start = mono();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      auto f = fac.create(t, threads);
      uint64_t mine = 0;
      for (int i = 0; i < 200000; ++i) mine += admitted(*f, mono());
      ok += mine;
    });
  }
  for (auto& t : ts) t.join();
  const double elapsed_s = static_cast<double>(mono() - start) / 1e9;
  // token_pool.h: admitted <= B + R*D + min(W*L, R*TTL); here W*L = 3*4.
  EXPECT_LE(static_cast<double>(ok.load()), 100 + 5000 * elapsed_s + 12 + 1);
  EXPECT_GE(ok.load(), 100u);
}

}  // namespace
}  // namespace ringway::filter::rate_limit
