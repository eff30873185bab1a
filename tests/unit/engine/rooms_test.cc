// The engine's rooms driven directly, without sockets or a running worker.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "ringway/config/config.h"
#include "ringway/net/buffers.h"
#include "ringway/net/conn.h"
#include "ringway/proxy/exchange.h"
#include "ringway/ring/loop.h"
#include "ringway/upstream/cluster.h"
#include "ringway/upstream/failure.h"
#include "ringway/upstream/upstream_conn.h"

namespace ringway {
namespace {

// --- net: buffers and the plain transport ---

class BuffersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(loop_.init(64, false, error)) << error;
    ASSERT_TRUE(buffers_.init(loop_.raw(), 7, 8, 64, 256, error)) << error;
  }
  ring::Loop loop_;
  net::Buffers buffers_;
};

TEST_F(BuffersTest, FirstReceiveIsKeptInPlaceLaterOnesAreGathered) {
  net::Conn c;
  c.open(-1, net::TransportKind::kPlain);
  char* b0 = buffers_.ring().data(0);
  std::memcpy(b0, "GET / HT", 8);
  ASSERT_EQ(c.received(buffers_, b0, 8, 0, 128), net::RecvResult::kData);
  EXPECT_EQ(c.in.data, b0);  // no copy: the provided buffer itself
  EXPECT_EQ(c.in.bid, 0);
  char* b1 = buffers_.ring().data(1);
  std::memcpy(b1, "TP/1.1\r\n", 8);
  ASSERT_EQ(c.received(buffers_, b1, 8, 1, 128), net::RecvResult::kData);
  EXPECT_TRUE(c.in.block);  // gathered so the parser sees the head whole
  EXPECT_EQ(std::string(c.in.begin(), c.in.len), "GET / HTTP/1.1\r\n");
  buffers_.consume(c.in, 4);
  EXPECT_EQ(std::string(c.in.begin(), c.in.len), "/ HTTP/1.1\r\n");
  buffers_.consume(c.in, c.in.len);
  EXPECT_TRUE(c.in.empty());
  EXPECT_EQ(c.in.data, nullptr);  // released once empty
}

TEST_F(BuffersTest, AppendBeyondTheLimitFails) {
  net::Conn c;
  c.open(-1, net::TransportKind::kPlain);
  ASSERT_EQ(c.received(buffers_, buffers_.ring().data(0), 40, 0, 64), net::RecvResult::kData);
  EXPECT_EQ(c.received(buffers_, buffers_.ring().data(1), 40, 1, 64), net::RecvResult::kTooLarge);
  EXPECT_EQ(c.in.len, 40u);
  buffers_.release(c.in);
}

TEST_F(BuffersTest, BlockCompactsWhenItsTailIsFull) {
  net::Buf in;
  ASSERT_TRUE(buffers_.append(in, buffers_.ring().data(0), 60, 0, 1000));
  ASSERT_TRUE(buffers_.append(in, buffers_.ring().data(1), 60, 1, 1000));  // now a 256-byte block
  buffers_.consume(in, 100);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(buffers_.append(in, buffers_.ring().data(2), 50, 2, 1000));
  EXPECT_EQ(in.len, 220u);
  EXPECT_LE(in.off + in.len, buffers_.block_size());
  buffers_.release(in);
}

TEST(Transport, PlainSplicesBothWaysAndIsReady) {
  net::Transport t;
  EXPECT_EQ(t.kind(), net::TransportKind::kPlain);
  EXPECT_TRUE(t.can_splice_in());
  EXPECT_TRUE(t.can_splice_out());
  EXPECT_TRUE(t.ready());
}

TEST(SendOp, ShortWritesResumeAcrossBothRanges) {
  char head[] = "HEAD";
  char body[] = "BODYBODY";
  net::SendOp s;
  s.hold[0] = net::Buf{head, 0, 4, -1, false};
  s.hold[1] = net::Buf{body, 0, 8, -1, false};
  s.count = 2;
  EXPECT_TRUE(s.advance(3));
  EXPECT_EQ(s.hold[0].len, 1u);
  EXPECT_TRUE(s.advance(5));
  EXPECT_EQ(s.hold[0].len, 0u);
  EXPECT_EQ(std::string(s.hold[1].begin(), s.hold[1].len), "BODY");
  EXPECT_FALSE(s.advance(4));
}

// --- upstream: failure classification, clusters, pools ---

TEST(Failure, OneTableForEveryUser) {
  using upstream::FailureKind;
  EXPECT_EQ(upstream::classify_connect(-ECONNREFUSED), FailureKind::kConnectRefused);
  EXPECT_EQ(upstream::classify_connect(-ENETUNREACH), FailureKind::kConnectFailed);
  EXPECT_EQ(upstream::classify_io(0, false), FailureKind::kClosedBeforeResponse);
  EXPECT_EQ(upstream::classify_io(-ECONNRESET, false), FailureKind::kResetBeforeResponse);
  EXPECT_EQ(upstream::classify_io(-ECONNREFUSED, false), FailureKind::kConnectRefused);
  EXPECT_EQ(upstream::classify_io(0, true), FailureKind::kClosedMidResponse);
  EXPECT_EQ(upstream::classify_io(-ECONNRESET, true), FailureKind::kClosedMidResponse);

  const upstream::Failure& refused = upstream::describe(FailureKind::kConnectRefused);
  EXPECT_EQ(refused.status, 502);
  EXPECT_EQ(refused.detail, "upstream refused the connection");
  EXPECT_TRUE(refused.counted);
  EXPECT_EQ(refused.metric, obs::UpstreamErrorKind::kConnectRefused);
  EXPECT_TRUE(refused.before_response);
  // Only failures before any response byte may be retried.
  EXPECT_FALSE(upstream::describe(FailureKind::kClosedMidResponse).before_response);
  EXPECT_FALSE(upstream::describe(FailureKind::kResponseTimeout).before_response);
  EXPECT_EQ(upstream::describe(FailureKind::kConnectTimeout).status, 504);
  EXPECT_EQ(upstream::describe(FailureKind::kNoSocket).status, 503);
  EXPECT_FALSE(upstream::describe(FailureKind::kNoSocket).counted);  // the gateway's own limit
  EXPECT_EQ(upstream::classify_tls("hostname_mismatch"), FailureKind::kTlsName);
  EXPECT_EQ(upstream::classify_tls("unknown_ca"), FailureKind::kTlsUntrusted);
  EXPECT_EQ(upstream::classify_tls("no_shared_cipher"), FailureKind::kTlsHandshake);
  for (int k = 0; k <= static_cast<int>(FailureKind::kTlsExpired); ++k) {
    const upstream::Failure& f = upstream::describe(static_cast<FailureKind>(k));
    EXPECT_GE(f.status, 502) << k;
    EXPECT_FALSE(f.detail.empty()) << k;
  }
}

config::Target target(const std::string& authority) {
  config::Target t;
  t.authority = authority;
  return t;
}

TEST(Clusters, RoutesThenAggregateBackendsAndRoundRobinPerCursor) {
  config::Config cfg;
  cfg.routes.resize(2);
  cfg.routes[0].targets = {target("a:1"), target("b:1"), target("c:1")};
  cfg.routes[1].targets = {target("d:1")};
  cfg.aggregates.resize(1);
  cfg.aggregates[0].targets = {target("x:1"), target("y:1")};
  upstream::Clusters cl(cfg);
  ASSERT_EQ(cl.instances().size(), 6u);
  ASSERT_EQ(cl.cluster_count(), 4u);  // two routes, two aggregate backends
  EXPECT_EQ(cl.instance(cl.leg(0, 1).first).authority, "y:1");
  EXPECT_EQ(cl.route(0).size, 3u);
  EXPECT_EQ(cl.instance(cl.route(1).first).authority, "d:1");
}

TEST(Pools, LifoPerInstanceBoundedAndTimedOut) {
  upstream::Pools pools;
  pools.init(2, 2, 1000);
  upstream::UpstreamConn a, b, c, d;
  a.instance = b.instance = c.instance = 0;
  d.instance = 1;
  EXPECT_TRUE(pools.put(a, 0));
  EXPECT_TRUE(pools.put(b, 10));
  EXPECT_FALSE(pools.put(c, 20));  // instance 0 holds two at most
  EXPECT_TRUE(pools.put(d, 30));
  EXPECT_EQ(pools.take(0), &b);  // the warmest first
  EXPECT_EQ(pools.expired(999'999'999), nullptr);
  EXPECT_EQ(pools.expired(1'000'000'000), &a);  // a's idle second is up
  pools.remove(a);  // the caller closes it; removing is idempotent
  pools.remove(a);
  EXPECT_EQ(pools.take(0), nullptr);
  EXPECT_EQ(pools.any(), &d);
  pools.remove(d);
  EXPECT_EQ(pools.any(), nullptr);
  EXPECT_EQ(pools.expired(2'000'000'000), nullptr);  // removing disarmed d's timer
}

// --- proxy: the exchange's bounded store of filter response fields ---

TEST(Exchange, KeepsWhatAFilterContextCanHoldAndRefusesMore) {
  http::Request req;
  route::Match m;
  http::HeaderEdits edits;
  filter::RequestContext ctx{req, m, "127.0.0.1", 0, edits};
  const std::string long_value(sizeof(ctx.scratch) - 1, 'v');
  for (uint8_t i = 0; i < filter::RequestContext::kMaxResponseHeaders; ++i) {
    ctx.response_headers[i] = http::Header{"RateLimit-Policy-Long-Name", i == 0 ? ctx.keep(long_value) : "x"};
  }
  ctx.response_header_count = filter::RequestContext::kMaxResponseHeaders;
  proxy::Exchange ex;
  ASSERT_TRUE(ex.keep_response_headers(ctx));
  EXPECT_EQ(ex.resp_headers[0].value, long_value);
  EXPECT_EQ(ex.resp_headers[3].name, "RateLimit-Policy-Long-Name");

  const std::string huge(proxy::Exchange::kResponseStore, 'n');
  ctx.response_headers[0] = http::Header{huge, "v"};
  proxy::Exchange ex2;
  EXPECT_FALSE(ex2.keep_response_headers(ctx));  // loud, never a silently dropped field
}

}  // namespace
}  // namespace ringway
