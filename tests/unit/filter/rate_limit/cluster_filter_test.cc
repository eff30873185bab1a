// The rate-limit filter's cluster path (issue 15) against a fake LeaseChannel: admit from the
// lease pool without asking, ask ahead of need, pause on an empty pool and resume on the answer,
// Redis' denials served without asking again, lost answers retried, and the failure policies.
// The engine's side (sockets, timeouts) is tested end to end in tests/integration/test_redis_limit.py.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "filter/rate_limit/rate_limit.h"
#include "ringway/core/clock.h"

namespace ringway::filter::rate_limit {
namespace {

constexpr uint64_t kMs = 1'000'000ull;

struct FakeChannel final : LeaseChannel {
  struct Take {
    LeaseListener* listener;
    uint64_t tag;
    std::string key;
    uint32_t want;
    uint64_t queued_ns;
  };
  bool is_up = true;
  std::vector<Take> takes;
  std::vector<uint32_t> gives;
  RedisStats counters;
  bool up(uint64_t) const override { return is_up; }
  bool take(LeaseListener* l, uint64_t tag, std::string_view key, uint64_t, uint64_t, uint32_t want,
            uint64_t now) override {
    if (!is_up) return false;
    takes.push_back(Take{l, tag, std::string(key), want, now});
    return true;
  }
  void give(std::string_view, uint64_t, uint64_t, uint64_t, uint32_t n, uint64_t) override { gives.push_back(n); }
  RedisStats& stats() override { return counters; }
  // Answers the oldest take.
  void answer(uint32_t count, uint64_t now, uint64_t retry_ns = 0, bool ok = true, bool lost = false) {
    ASSERT_FALSE(takes.empty());
    Take t = takes.front();
    takes.erase(takes.begin());
    LeaseAnswer a;
    a.tag = t.tag;
    a.ok = ok;
    a.lost = lost;
    a.count = count;
    a.retry_ns = retry_ns;
    a.stamp = 7;
    a.queued_ns = t.queued_ns;
    a.now_ns = now;
    t.listener->on_lease(a);
  }
};

struct Resumed final : ResumeTarget {
  struct Call {
    uint32_t slot;
    Verdict v;
    uint16_t status;
    std::string retry_after;
  };
  std::vector<Call> calls;
  void resume(uint32_t slot, uint32_t, Verdict v, const LocalReply* r) override {
    Call c{slot, v, r != nullptr ? r->status : uint16_t{0}, {}};
    if (r != nullptr) {
      for (uint8_t i = 0; i < r->header_count; ++i) {
        if (r->headers[i].name == "Retry-After") c.retry_after = std::string(r->headers[i].value);
      }
    }
    calls.push_back(c);
  }
};

struct Call {
  http::Request req;
  http::HeaderEdits edits;
  route::Match match;
  std::optional<RequestContext> ctx;
  Verdict verdict = Verdict::kContinue;
};

class ClusterFilterTest : public ::testing::Test {
 protected:
  void make(std::string_view spec_text, std::string_view policy = "deny", uint32_t max_keys = 65536) {
    RateLimitSpec spec;
    std::string err;
    ASSERT_TRUE(parse_rate_limit_spec(spec_text, spec, err)) << err;
    RateLimitOptions o;
    o.hash_seed = 99;
    o.max_keys = max_keys;
    ASSERT_TRUE(parse_failure_policy(policy, o.failure, err)) << err;
    factory_ = std::make_unique<RateLimitFilterFactory>(std::vector<RateLimitSpec>{spec}, o);
    filter_ = factory_->create(0, 1);
    filter_->attach(&ch_);
  }
  std::unique_ptr<Call> request(uint64_t now, uint32_t slot = 0, std::string_view ip = "192.0.2.1") {
    auto c = std::make_unique<Call>();
    c->req.path = "/";
    c->ctx.emplace(c->req, c->match, ip, now, c->edits);
    c->ctx->resumer = Resumer{&resumed_, slot, 1};
    c->verdict = filter_->on_request(*c->ctx);
    return c;
  }
  uint64_t t0_ = core::monotonic_ns() + 1000 * kMs;
  FakeChannel ch_;
  Resumed resumed_;
  std::unique_ptr<RateLimitFilterFactory> factory_;
  std::unique_ptr<Filter> filter_;
};

TEST_F(ClusterFilterTest, PausesOnAnEmptyPoolThenAdmitsFromTheLeaseWithoutAsking) {
  make("100/s,burst=80,scope=cluster");  // lease L = 80 / 8 = 10
  auto first = request(t0_, 1);
  EXPECT_EQ(first->verdict, Verdict::kPause);
  ASSERT_EQ(ch_.takes.size(), 1u);
  EXPECT_EQ(ch_.takes[0].want, 10u);
  EXPECT_EQ(ch_.takes[0].key, "rw:rl:100/s,b=80,ip:192.0.2.1");
  auto second = request(t0_, 2);  // joins the request in flight
  EXPECT_EQ(second->verdict, Verdict::kPause);
  EXPECT_EQ(ch_.takes.size(), 1u);
  ch_.answer(10, t0_ + kMs);
  ASSERT_EQ(resumed_.calls.size(), 2u);
  EXPECT_EQ(resumed_.calls[0].slot, 1u);  // in arrival order
  EXPECT_EQ(resumed_.calls[0].v, Verdict::kContinue);
  EXPECT_EQ(resumed_.calls[1].v, Verdict::kContinue);
  // 8 left: three more are admitted at once, no round trip; at 5 left (L/2) the next lease is
  // asked for ahead of need, once.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(request(t0_ + 2 * kMs)->verdict, Verdict::kContinue);
  ASSERT_EQ(ch_.takes.size(), 1u);
  EXPECT_EQ(ch_.takes[0].want, 10u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(request(t0_ + 3 * kMs)->verdict, Verdict::kContinue);
  EXPECT_EQ(ch_.takes.size(), 1u);
  ch_.answer(10, t0_ + 4 * kMs);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(request(t0_ + 5 * kMs)->verdict, Verdict::kContinue);
  EXPECT_EQ(ch_.counters.waited.load(), 2u);
}

TEST_F(ClusterFilterTest, RedisDenialIsA429AndLaterRejectionsDoNotAsk) {
  make("100/s,burst=80,scope=cluster");
  auto r = request(t0_, 3);
  ASSERT_EQ(r->verdict, Verdict::kPause);
  ch_.answer(0, t0_ + kMs, 1500 * kMs);  // empty for 1.5 s
  ASSERT_EQ(resumed_.calls.size(), 1u);
  EXPECT_EQ(resumed_.calls[0].v, Verdict::kRespond);
  EXPECT_EQ(resumed_.calls[0].status, 429);
  EXPECT_EQ(resumed_.calls[0].retry_after, "2");
  for (int i = 0; i < 20; ++i) {
    auto c = request(t0_ + 10 * kMs);
    EXPECT_EQ(c->verdict, Verdict::kRespond);
    EXPECT_EQ(c->ctx->reply.status, 429);
  }
  EXPECT_TRUE(ch_.takes.empty());  // rejections cost Redis nothing
  EXPECT_EQ(ch_.counters.denied.load(), 21u);
}

TEST_F(ClusterFilterTest, ALostAnswerIsAskedAgainWhileTheChannelIsUp) {
  make("100/s,burst=80,scope=cluster");
  ASSERT_EQ(request(t0_, 4)->verdict, Verdict::kPause);
  ch_.answer(0, t0_ + kMs, 0, false, true);
  EXPECT_TRUE(resumed_.calls.empty());
  ASSERT_EQ(ch_.takes.size(), 1u);
  ch_.answer(10, t0_ + 2 * kMs);
  ASSERT_EQ(resumed_.calls.size(), 1u);
  EXPECT_EQ(resumed_.calls[0].v, Verdict::kContinue);
}

TEST_F(ClusterFilterTest, RedisDownAppliesThePolicy) {
  make("100/s,burst=80,scope=cluster", "deny");
  ASSERT_EQ(request(t0_, 5)->verdict, Verdict::kPause);
  ch_.is_up = false;
  ch_.answer(0, t0_ + 500 * kMs, 0, false, true);  // the channel timed out and dropped it
  ASSERT_EQ(resumed_.calls.size(), 1u);
  EXPECT_EQ(resumed_.calls[0].status, 429);
  EXPECT_EQ(request(t0_ + 501 * kMs)->verdict, Verdict::kRespond);
  EXPECT_EQ(ch_.counters.policy_deny.load(), 2u);
}

TEST_F(ClusterFilterTest, RedisDownPolicyAllow) {
  ch_.is_up = false;
  make("100/s,burst=80,scope=cluster", "allow");
  for (int i = 0; i < 200; ++i) EXPECT_EQ(request(t0_)->verdict, Verdict::kContinue);
  EXPECT_EQ(ch_.counters.policy_allow.load(), 200u);
}

TEST_F(ClusterFilterTest, RedisDownPolicyLocalShare) {
  ch_.is_up = false;
  make("100/s,burst=80,scope=cluster", "local:4");  // this instance: 25/s, burst 20
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += request(t0_)->verdict == Verdict::kContinue;
  EXPECT_EQ(ok, 20);
  EXPECT_TRUE(ch_.takes.empty());
}

TEST_F(ClusterFilterTest, LeasedTokensAreSpentBeforeThePolicy) {
  make("100/s,burst=80,scope=cluster", "deny");
  ASSERT_EQ(request(t0_, 6)->verdict, Verdict::kPause);
  ch_.answer(10, t0_ + kMs);
  ch_.is_up = false;
  int ok = 0;
  for (int i = 0; i < 30; ++i) ok += request(t0_ + 2 * kMs)->verdict == Verdict::kContinue;
  EXPECT_EQ(ok, 9);  // the 9 left of the lease, then deny
  // The lease dies with its lifetime: nothing is admitted on it after that.
  ch_.is_up = true;
  ch_.takes.clear();
  EXPECT_EQ(request(t0_ + 600 * kMs, 7)->verdict, Verdict::kPause);
}

TEST_F(ClusterFilterTest, AnExpiredLeasesLeftoverIsGivenBack) {
  make("100/s,burst=80,scope=cluster");
  ASSERT_EQ(request(t0_, 8)->verdict, Verdict::kPause);
  ch_.answer(10, t0_ + kMs);  // 9 left after the waiter
  EXPECT_EQ(request(t0_ + 2 * kMs)->verdict, Verdict::kContinue);
  EXPECT_TRUE(ch_.gives.empty());
  EXPECT_EQ(request(t0_ + 600 * kMs, 9)->verdict, Verdict::kPause);  // the lease (500 ms) is over
  EXPECT_EQ(ch_.gives, std::vector<uint32_t>{8});
}

// A key whose slot group is full of live leases has no pool to lease into: it asks Redis for one
// token of its own and spends it (cluster_lease.h), rather than falling to the policy.
TEST_F(ClusterFilterTest, AKeyWithoutAPoolSlotAsksForOneTokenOfItsOwn) {
  make("100/s,burst=80,scope=cluster", "deny", 8);  // one group of 8 slots
  std::vector<std::string> ips;
  for (int i = 0; i < 8; ++i) ips.push_back("198.51.100." + std::to_string(i));
  for (const std::string& ip : ips) {
    ASSERT_EQ(request(t0_, 0, ip)->verdict, Verdict::kPause) << ip;
    ch_.answer(10, t0_ + kMs);
  }
  resumed_.calls.clear();
  auto c = request(t0_ + 2 * kMs, 20, "203.0.113.9");
  ASSERT_EQ(c->verdict, Verdict::kPause);
  ASSERT_EQ(ch_.takes.size(), 1u);
  EXPECT_EQ(ch_.takes[0].want, 1u);
  EXPECT_EQ(ch_.takes[0].key, "rw:rl:100/s,b=80,ip:203.0.113.9");
  ch_.answer(1, t0_ + 3 * kMs);
  ASSERT_EQ(resumed_.calls.size(), 1u);
  EXPECT_EQ(resumed_.calls[0].slot, 20u);
  EXPECT_EQ(resumed_.calls[0].v, Verdict::kContinue);
  // Redis says empty: a 429 with its retry time.
  ASSERT_EQ(request(t0_ + 4 * kMs, 21, "203.0.113.9")->verdict, Verdict::kPause);
  ch_.answer(0, t0_ + 5 * kMs, 2500 * kMs);
  ASSERT_EQ(resumed_.calls.size(), 2u);
  EXPECT_EQ(resumed_.calls[1].status, 429);
  EXPECT_EQ(resumed_.calls[1].retry_after, "3");
  EXPECT_EQ(ch_.counters.policy_deny.load(), 0u);
}

}  // namespace
}  // namespace ringway::filter::rate_limit
