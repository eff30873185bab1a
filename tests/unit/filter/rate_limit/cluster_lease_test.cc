// Cluster rate limits (issue 15) without the engine: the RESP codec on split and pipelined
// replies and on errors, the process lease pool, the failure policy, the scope=cluster spec; then
// the lease script against a real redis-server that each suite starts itself on a unix socket
// in a temporary directory (skipped only when redis-server is not installed).
#include "filter/rate_limit/cluster_lease.h"

#include <fcntl.h>
#include <hiredis.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "filter/rate_limit/rate_limit.h"

namespace ringway::filter::rate_limit {
namespace {

constexpr uint64_t kSec = 1'000'000'000ull;
constexpr uint64_t kMs = 1'000'000ull;
constexpr uint64_t kT0 = 200ull * 86400 * kSec;  // an arbitrary, large monotonic origin

RateLimitSpec spec_of(std::string_view text) {
  RateLimitSpec s;
  std::string err;
  EXPECT_TRUE(parse_rate_limit_spec(text, s, err)) << text << ": " << err;
  return s;
}

BucketParams params_of(std::string_view text) {
  BucketParams p;
  std::string err;
  EXPECT_TRUE(cluster_params(spec_of(text), p, err)) << err;
  return p;
}

// Built with += only: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries.
std::string bulk(std::string_view s) {
  std::string out = "$";
  out += std::to_string(s.size());
  out += "\r\n";
  out += s;
  out += "\r\n";
  return out;
}

std::string resp_command(std::initializer_list<std::string_view> args) {
  std::string out = "*";
  out += std::to_string(args.size());
  out += "\r\n";
  for (std::string_view a : args) out += bulk(a);
  return out;
}

std::string lease_reply(uint64_t count, uint64_t retry, uint64_t remaining, uint64_t full_in, uint64_t stamp) {
  std::string out = "*5\r\n";
  for (uint64_t v : {count, retry, remaining, full_in, stamp}) {
    out += ':';
    out += std::to_string(v);
    out += "\r\n";
  }
  return out;
}

std::vector<LeaseReply> drain(RedisLeaseCodec& c) {
  std::vector<LeaseReply> out;
  LeaseReply r;
  while (c.next_reply(r)) out.push_back(r);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Spec, parameters, keys

TEST(ClusterSpecTest, ScopeParses) {
  EXPECT_FALSE(spec_of("10/s").cluster);
  EXPECT_FALSE(spec_of("10/s,scope=local").cluster);
  EXPECT_TRUE(spec_of("100/s,burst=20,key=ip,scope=cluster").cluster);
  RateLimitSpec s;
  std::string err;
  EXPECT_FALSE(parse_rate_limit_spec("10/s,scope=global", s, err));
  EXPECT_NE(err.find("scope must be local or cluster"), std::string::npos) << err;
  EXPECT_FALSE(parse_rate_limit_spec("10/s,scope=cluster,scope=local", s, err));
  EXPECT_NE(err.find("scope given twice"), std::string::npos) << err;
}

TEST(ClusterSpecTest, ParamsStayExactInLua) {
  const BucketParams p = params_of("100/s,burst=20,scope=cluster");
  EXPECT_EQ(p.interval_ns, 10 * kMs);
  EXPECT_EQ(p.tau_ns, 200 * kMs);
  // 1/h with a burst of 10000: tau = 10000 h, beyond 2^53 ns (104 days): refused, not rounded.
  BucketParams q;
  std::string err;
  EXPECT_FALSE(cluster_params(spec_of("1/h,burst=10000"), q, err));
  EXPECT_NE(err.find("104 days"), std::string::npos);
}

TEST(ClusterSpecTest, BucketKeyNamesTheLimitNotItsPosition) {
  const std::string a = cluster_bucket_key(spec_of("100/s,burst=20,key=ip"), "", "192.0.2.1");
  EXPECT_EQ(a, "rw:rl:100/s,b=20,ip:192.0.2.1");
  EXPECT_NE(a, cluster_bucket_key(spec_of("100/s,burst=21,key=ip"), "", "192.0.2.1"));
  EXPECT_NE(a, cluster_bucket_key(spec_of("100/s,burst=20,key=ip,route=/a"), "", "192.0.2.1"));
  EXPECT_NE(a, cluster_bucket_key(spec_of("100/s,burst=20,key=ip"), "routes[/a]", "192.0.2.1"));
  EXPECT_EQ(cluster_bucket_key(spec_of("5/m,key=header:X-Tenant"), "", "t1"), "rw:rl:5/m,b=5,h=X-Tenant:t1");
}

TEST(ClusterSpecTest, ScriptShaIsHexSha1) {
  const std::string& sha = lease_script_sha1();
  ASSERT_EQ(sha.size(), 40u);
  EXPECT_EQ(sha.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(lease_script().find("redis.call('TIME')"), std::string_view::npos);
}

// ---------------------------------------------------------------------------------------------
// Codec

TEST(RedisLeaseCodecTest, ConnectQueuesAuthSelectAndLoad) {
  RedisLeaseCodec c({.password = "s3cret", .database = 3});
  c.connected(kT0);
  const std::string expected = resp_command({"AUTH", "s3cret"}) + resp_command({"SELECT", "3"}) +
                               resp_command({"SCRIPT", "LOAD", lease_script()});
  EXPECT_EQ(c.pending_output(), expected);
  EXPECT_EQ(c.outstanding(), 3u);
  EXPECT_EQ(c.oldest_outstanding_ns(), kT0);
  c.consume_output(10);
  EXPECT_EQ(c.pending_output(), std::string_view(expected).substr(10));
  c.consume_output(expected.size());
  EXPECT_TRUE(c.pending_output().empty());

  RedisLeaseCodec plain({});
  plain.connected(kT0);
  EXPECT_EQ(plain.pending_output(), resp_command({"SCRIPT", "LOAD", lease_script()}));
}

// Takes queued while the connection was being made go out after the setup, in order.
TEST(RedisLeaseCodecTest, RequestsQueuedWhileConnectingFollowTheSetup) {
  RedisLeaseCodec c({.password = "pw"});
  const BucketParams p = params_of("100/s,burst=20");
  const uint64_t a = c.queue_take("k", p, 0, kT0);  // want 0 asks for 1: never a no-op call
  c.connected(kT0 + 5);
  EXPECT_EQ(c.pending_output(),
            resp_command({"AUTH", "pw"}) + resp_command({"SCRIPT", "LOAD", lease_script()}) +
                resp_command({"EVALSHA", lease_script_sha1(), "1", "k", "take", "10000000", "200000000", "1"}));
  const std::string in = "+OK\r\n" + bulk(lease_script_sha1()) + lease_reply(1, 0, 19, 10 * kMs, 3);
  ASSERT_TRUE(c.feed(in.data(), in.size()));
  const std::vector<LeaseReply> r = drain(c);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].id, a);
  EXPECT_EQ(r[2].count, 1u);
}

TEST(RedisLeaseCodecTest, TakeAndGiveFormatEvalsha) {
  RedisLeaseCodec c({});
  const BucketParams p = params_of("100/s,burst=20");
  const uint64_t a = c.queue_take("rw:rl:k", p, 5, kT0);
  const uint64_t b = c.queue_give("rw:rl:k", p, 1796306316841250ull, 3, kT0);
  EXPECT_NE(a, b);
  EXPECT_EQ(c.pending_output(),
            resp_command({"EVALSHA", lease_script_sha1(), "1", "rw:rl:k", "take", "10000000", "200000000", "5"}) +
                resp_command({"EVALSHA", lease_script_sha1(), "1", "rw:rl:k", "give", "10000000", "200000000",
                              "1796306316841250", "3"}));
}

// The replies of a pipeline (load + three takes + a give) arrive split at every possible point,
// and one byte at a time: the same replies come out, in order, whatever the split.
TEST(RedisLeaseCodecTest, PipelinedRepliesInAnySplit) {
  const BucketParams p = params_of("100/s,burst=20");
  const std::string stream = bulk(lease_script_sha1()) + lease_reply(8, 0, 12, 80 * kMs, 1000) +
                             lease_reply(8, 0, 4, 160 * kMs, 1001) + lease_reply(0, 10 * kMs, 0, 200 * kMs, 0) +
                             lease_reply(3, 0, 3, 170 * kMs, 0);
  auto check = [&](RedisLeaseCodec& c, const std::vector<uint64_t>& ids) {
    const std::vector<LeaseReply> r = drain(c);
    ASSERT_EQ(r.size(), 5u);
    EXPECT_EQ(r[0].op, LeaseOp::kLoadScript);
    EXPECT_TRUE(r[0].ok()) << r[0].message;
    for (size_t i = 1; i < 5; ++i) {
      EXPECT_EQ(r[i].id, ids[i - 1]);
      EXPECT_TRUE(r[i].ok());
    }
    EXPECT_EQ(r[1].count, 8u);
    EXPECT_EQ(r[1].remaining, 12u);
    EXPECT_EQ(r[1].full_in_ns, 80 * kMs);
    EXPECT_EQ(r[1].stamp, 1000u);
    EXPECT_EQ(r[2].stamp, 1001u);
    EXPECT_EQ(r[3].count, 0u);
    EXPECT_EQ(r[3].retry_ns, 10 * kMs);
    EXPECT_EQ(r[4].op, LeaseOp::kGive);
    EXPECT_EQ(r[4].count, 3u);
    EXPECT_EQ(c.outstanding(), 0u);
  };
  auto fresh = [&](RedisLeaseCodec& c) {
    c.connected(kT0);
    std::vector<uint64_t> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(c.queue_take("k", p, 8, kT0));
    ids.push_back(c.queue_give("k", p, 1001, 3, kT0));
    return ids;
  };
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    RedisLeaseCodec c({});
    const auto ids = fresh(c);
    ASSERT_TRUE(c.feed(stream.data(), cut));
    ASSERT_TRUE(c.feed(stream.data() + cut, stream.size() - cut));
    check(c, ids);
  }
  RedisLeaseCodec c({});
  const auto ids = fresh(c);
  for (char ch : stream) ASSERT_TRUE(c.feed(&ch, 1));
  check(c, ids);
}

// Two takes in flight when Redis lost the script: both answered NOSCRIPT. One SCRIPT LOAD goes
// out, then both takes again; their replies complete them with their own ids.
TEST(RedisLeaseCodecTest, NoscriptReloadsOnceAndResends) {
  RedisLeaseCodec c({});
  const BucketParams p = params_of("100/s,burst=20");
  c.connected(kT0);
  const uint64_t a = c.queue_take("ka", p, 4, kT0);
  const uint64_t b = c.queue_take("kb", p, 4, kT0 + 1);
  c.consume_output(c.pending_output().size());
  const std::string first = bulk(lease_script_sha1()) + "-NOSCRIPT No matching script. Please use EVAL.\r\n" +
                            "-NOSCRIPT No matching script. Please use EVAL.\r\n";
  ASSERT_TRUE(c.feed(first.data(), first.size()));
  std::vector<LeaseReply> r = drain(c);
  ASSERT_EQ(r.size(), 1u);  // only the first load: the takes are not done
  EXPECT_EQ(r[0].op, LeaseOp::kLoadScript);
  EXPECT_EQ(c.script_loads(), 2u);
  EXPECT_EQ(c.pending_output(),
            resp_command({"SCRIPT", "LOAD", lease_script()}) +
                resp_command({"EVALSHA", lease_script_sha1(), "1", "ka", "take", "10000000", "200000000", "4"}) +
                resp_command({"EVALSHA", lease_script_sha1(), "1", "kb", "take", "10000000", "200000000", "4"}));
  EXPECT_EQ(c.outstanding(), 3u);
  EXPECT_EQ(c.oldest_outstanding_ns(), kT0);  // a resent request keeps its age
  const std::string second = bulk(lease_script_sha1()) + lease_reply(4, 0, 16, 40 * kMs, 7) +
                             lease_reply(4, 0, 16, 40 * kMs, 9);
  ASSERT_TRUE(c.feed(second.data(), second.size()));
  r = drain(c);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].id, a);
  EXPECT_EQ(r[1].stamp, 7u);
  EXPECT_EQ(r[2].id, b);
  EXPECT_EQ(r[2].count, 4u);
}

TEST(RedisLeaseCodecTest, NoscriptGivesUpAfterRetries) {
  RedisLeaseCodec c({});
  const uint64_t a = c.queue_take("k", params_of("1/s"), 1, kT0);
  const std::string noscript = "-NOSCRIPT No matching script.\r\n";
  for (int i = 0; i < RedisLeaseCodec::kMaxScriptRetries; ++i) {
    ASSERT_TRUE(c.feed(noscript.data(), noscript.size()));
    // A load was queued ahead of the resend: answer it.
    const std::string load = bulk(lease_script_sha1());
    ASSERT_TRUE(c.feed(load.data(), load.size()));
    ASSERT_EQ(drain(c).size(), 1u);  // the load's reply
  }
  ASSERT_TRUE(c.feed(noscript.data(), noscript.size()));
  const std::vector<LeaseReply> r = drain(c);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].id, a);
  EXPECT_EQ(r[0].error, RedisErrorKind::kNoScript);
}

TEST(RedisLeaseCodecTest, ErrorsAreClassified) {
  struct Case {
    const char* line;
    RedisErrorKind kind;
  } cases[] = {
      {"-LOADING Redis is loading the dataset in memory", RedisErrorKind::kLoading},
      {"-BUSY Redis is busy running a script.", RedisErrorKind::kBusy},
      {"-READONLY You can't write against a read only replica.", RedisErrorKind::kReadOnly},
      {"-OOM command not allowed when used memory > 'maxmemory'.", RedisErrorKind::kOutOfMemory},
      {"-WRONGTYPE Operation against a key holding the wrong kind of value script: x", RedisErrorKind::kWrongType},
      {"-ERR Error running script (call to f_x): @user_script:1: boom", RedisErrorKind::kScript},
      {"-NOAUTH Authentication required.", RedisErrorKind::kAuth},
      {"-ERR unknown command 'EVALSHA'", RedisErrorKind::kOther},
  };
  for (const Case& k : cases) {
    RedisLeaseCodec c({});
    c.queue_take("k", params_of("1/s"), 1, kT0);
    const std::string in = std::string(k.line) + "\r\n";
    ASSERT_TRUE(c.feed(in.data(), in.size()));
    const std::vector<LeaseReply> r = drain(c);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].error, k.kind) << k.line << " -> " << error_kind_name(r[0].error);
    EXPECT_EQ(r[0].message, std::string(k.line + 1));
  }
  RedisLeaseCodec c({.password = "wrong"});
  c.connected(kT0);
  const std::string in = "-ERR invalid password\r\n";  // Redis 5's AUTH failure has no code
  ASSERT_TRUE(c.feed(in.data(), in.size()));
  const std::vector<LeaseReply> r = drain(c);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].op, LeaseOp::kAuth);
  EXPECT_EQ(r[0].error, RedisErrorKind::kAuth);
}

TEST(RedisLeaseCodecTest, WrongShapesAreProtocolErrors) {
  RedisLeaseCodec c({});
  c.connected(kT0);
  c.queue_take("k", params_of("1/s"), 1, kT0);
  c.queue_take("k", params_of("1/s"), 1, kT0);
  const std::string in = bulk("0000000000000000000000000000000000000000") + ":1\r\n" + "*5\r\n:1\r\n:0\r\n:-1\r\n:0\r\n:0\r\n";
  ASSERT_TRUE(c.feed(in.data(), in.size()));
  const std::vector<LeaseReply> r = drain(c);
  ASSERT_EQ(r.size(), 3u);
  for (const LeaseReply& x : r) EXPECT_EQ(x.error, RedisErrorKind::kProtocol);
  EXPECT_EQ(r[1].count, 0u);  // nothing half-parsed leaks out

  RedisLeaseCodec bad({});
  bad.queue_take("k", params_of("1/s"), 1, kT0);
  EXPECT_FALSE(bad.feed("?garbage\r\n", 10));
  RedisLeaseCodec unsolicited({});
  EXPECT_FALSE(unsolicited.feed("+OK\r\n", 5));
}

TEST(RedisLeaseCodecTest, DisconnectFailsOutstanding) {
  RedisLeaseCodec c({});
  c.connected(kT0);
  const uint64_t a = c.queue_take("k", params_of("1/s"), 1, kT0);
  ASSERT_TRUE(c.feed("$4\r\nab", 7));  // half a reply: dropped with the connection
  c.disconnected();
  const std::vector<LeaseReply> r = drain(c);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].id, a);
  EXPECT_EQ(r[1].error, RedisErrorKind::kDisconnected);
  EXPECT_TRUE(c.pending_output().empty());
  EXPECT_EQ(c.oldest_outstanding_ns(), 0u);
  c.connected(kT0 + kSec);
  const std::string in = bulk(lease_script_sha1());
  ASSERT_TRUE(c.feed(in.data(), in.size()));  // the new connection parses from scratch
  ASSERT_EQ(drain(c).size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Lease pool

TEST(ClusterLeasePoolTest, DrawsOnlyLiveLeasedTokens) {
  ClusterLeasePool pool(64);
  const uint64_t key = hash_key("client", 1);
  const uint32_t s = pool.find_or_insert(key, kT0);
  ASSERT_NE(s, ClusterLeasePool::kNoSlot);
  EXPECT_EQ(pool.draw(s, key, kT0), 0u);  // nothing granted yet: never admits on credit
  ASSERT_TRUE(pool.install(s, key, 5, kT0, 100 * kMs, 42, kT0 + 2 * kMs));
  EXPECT_EQ(pool.tokens(s, key, kT0 + 3 * kMs), 5u);
  EXPECT_EQ(pool.draw(s, key, kT0 + 3 * kMs, 2), 2u);
  EXPECT_EQ(pool.draw(s, key, kT0 + 3 * kMs, 9), 3u);
  EXPECT_EQ(pool.draw(s, key, kT0 + 3 * kMs), 0u);
  // The deadline counts from when the request was queued, not when the reply came.
  ASSERT_TRUE(pool.install(s, key, 4, kT0 + 10 * kMs, 100 * kMs, 43, kT0 + 60 * kMs));
  EXPECT_EQ(pool.draw(s, key, kT0 + 109 * kMs), 1u);
  EXPECT_EQ(pool.draw(s, key, kT0 + 110 * kMs), 0u);
  uint64_t stamp = 0;
  EXPECT_EQ(pool.take_leftover(s, key, kT0 + 110 * kMs, false, &stamp), 3u);
  EXPECT_EQ(stamp, 43u);
  EXPECT_EQ(pool.take_leftover(s, key, kT0 + 110 * kMs, false, &stamp), 0u);
  // Another key never draws this key's tokens.
  EXPECT_EQ(pool.draw(s, key + 1, kT0 + 110 * kMs), 0u);
}

// libfaketime makes CLOCK_MONOTONIC read like the wall clock shifted (~1.8e18 ns): a deadline in
// ms of that does not fit the 40 bits, so the pool counts from the epoch it was built at.
TEST(ClusterLeasePoolTest, LeasesLiveWhenTheMonotonicClockIsHuge) {
  const uint64_t t0 = 1'796'318'102'000'000'000ull;  // 2026 as ns since 1970, plus 30 s
  ClusterLeasePool pool(64, t0);
  const uint64_t key = hash_key("client", 1);
  const uint32_t s = pool.find_or_insert(key, t0 + kMs);
  ASSERT_NE(s, ClusterLeasePool::kNoSlot);
  ASSERT_TRUE(pool.install(s, key, 5, t0 + kMs, 100 * kMs, 42, t0 + 2 * kMs));
  EXPECT_EQ(pool.draw(s, key, t0 + 3 * kMs, 2), 2u);
  EXPECT_EQ(pool.tokens(s, key, t0 + 100 * kMs), 3u);
  EXPECT_EQ(pool.draw(s, key, t0 + 101 * kMs), 0u);  // expired, TTL after the request was queued
}

TEST(ClusterLeasePoolTest, MergedLeasesKeepTheEarlierDeadline) {
  ClusterLeasePool pool(8);
  const uint64_t key = hash_key("k", 1);
  const uint32_t s = pool.find_or_insert(key, kT0);
  ASSERT_TRUE(pool.install(s, key, 2, kT0, 100 * kMs, 1, kT0));
  ASSERT_TRUE(pool.install(s, key, 10, kT0 + 50 * kMs, 100 * kMs, 2, kT0 + 60 * kMs));
  EXPECT_EQ(pool.tokens(s, key, kT0 + 99 * kMs), 12u);
  EXPECT_EQ(pool.tokens(s, key, kT0 + 100 * kMs), 0u);  // all of it dies with the older lease
  uint64_t stamp = 0;
  EXPECT_EQ(pool.take_leftover(s, key, kT0 + 100 * kMs, false, &stamp), 12u);
  EXPECT_EQ(stamp, 2u);  // the newest grant: the one a give-back can still undo
  // An expired leftover is replaced, not merged.
  ASSERT_TRUE(pool.install(s, key, 3, kT0 + 200 * kMs, 100 * kMs, 3, kT0 + 200 * kMs));
  ASSERT_TRUE(pool.install(s, key, 1, kT0 + 400 * kMs, 100 * kMs, 4, kT0 + 400 * kMs));
  EXPECT_EQ(pool.tokens(s, key, kT0 + 401 * kMs), 1u);
  EXPECT_EQ(pool.take_leftover(s, key, kT0 + 401 * kMs, true, &stamp), 1u);  // shutdown
}

TEST(ClusterLeasePoolTest, SlotsAreReusedOnlyWhenNothingLiveIsInThem) {
  ClusterLeasePool pool(8);  // one group
  std::vector<uint64_t> keys;
  for (int i = 0; i < 8; ++i) {
    keys.push_back(hash_key(std::to_string(i) + ".k", 1));
    const uint32_t s = pool.find_or_insert(keys.back(), kT0);
    ASSERT_NE(s, ClusterLeasePool::kNoSlot);
    ASSERT_TRUE(pool.install(s, keys.back(), 1, kT0, 100 * kMs, 1, kT0));
  }
  const uint64_t extra = hash_key("extra", 1);
  EXPECT_EQ(pool.find_or_insert(extra, kT0 + kMs), ClusterLeasePool::kNoSlot);
  // One lease spent: its slot is free again (a refill in flight would keep it).
  const uint32_t s0 = pool.find_or_insert(keys[0], kT0);
  ASSERT_TRUE(pool.begin_refill(s0, keys[0], kT0, 100 * kMs));
  EXPECT_EQ(pool.draw(s0, keys[0], kT0 + kMs), 1u);
  EXPECT_EQ(pool.find_or_insert(extra, kT0 + kMs), ClusterLeasePool::kNoSlot);
  pool.end_refill(s0, keys[0]);
  EXPECT_EQ(pool.find_or_insert(extra, kT0 + kMs), s0);
  EXPECT_FALSE(pool.install(s0, keys[0], 5, kT0, 100 * kMs, 1, kT0 + kMs));  // owner changed
  EXPECT_EQ(pool.draw(s0, keys[0], kT0 + kMs), 0u);
  // After the TTL every slot is reusable.
  EXPECT_NE(pool.find_or_insert(hash_key("late", 1), kT0 + 100 * kMs), ClusterLeasePool::kNoSlot);
  EXPECT_EQ(pool.entry_count(), 8u);
}

TEST(ClusterLeasePoolTest, OneRefillAtATimeAndDenials) {
  ClusterLeasePool pool(16);
  const uint64_t key = hash_key("k", 1);
  const uint32_t s = pool.find_or_insert(key, kT0);
  EXPECT_TRUE(pool.begin_refill(s, key, kT0, 100 * kMs));
  EXPECT_FALSE(pool.begin_refill(s, key, kT0 + 50 * kMs, 100 * kMs));
  EXPECT_TRUE(pool.begin_refill(s, key, kT0 + 100 * kMs, 100 * kMs));  // stale: taken over
  pool.end_refill(s, key);
  EXPECT_TRUE(pool.begin_refill(s, key, kT0 + 101 * kMs, 100 * kMs));
  pool.set_denied_until(s, key, kT0 + 300 * kMs);
  EXPECT_EQ(pool.denied_until(s, key), kT0 + 300 * kMs);
  ASSERT_TRUE(pool.install(s, key, 1, kT0 + 400 * kMs, 100 * kMs, 5, kT0 + 400 * kMs));
  EXPECT_EQ(pool.denied_until(s, key), 0u);  // a grant ends the denial
}

// Threads drawing from one lease never take more than was installed.
TEST(ClusterLeasePoolTest, ConcurrentDrawsAreExact) {
  ClusterLeasePool pool(64);
  const uint64_t key = hash_key("hot", 1);
  const uint32_t s = pool.find_or_insert(key, kT0);
  std::atomic<uint64_t> drawn{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) drawn += pool.draw(s, key, kT0 + kMs);
    });
  }
  uint64_t installed = 0;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(pool.install(s, key, 7, kT0, 100 * kMs, i, kT0));
    installed += 7;
  }
  while (pool.tokens(s, key, kT0 + kMs) > 0) std::this_thread::yield();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(drawn.load(), installed);
}

// ---------------------------------------------------------------------------------------------
// Failure policy

TEST(FailurePolicyTest, Parses) {
  FailureConfig f;
  std::string err;
  ASSERT_TRUE(parse_failure_policy("deny", f, err));
  EXPECT_EQ(f.policy, FailurePolicy::kDeny);
  ASSERT_TRUE(parse_failure_policy("allow", f, err));
  EXPECT_EQ(f.policy, FailurePolicy::kAllow);
  ASSERT_TRUE(parse_failure_policy("local", f, err));
  EXPECT_EQ(f.policy, FailurePolicy::kLocal);
  EXPECT_EQ(f.instances, 1u);
  ASSERT_TRUE(parse_failure_policy("local:3", f, err));
  EXPECT_EQ(f.instances, 3u);
  for (const char* bad : {"", "Deny", "local:", "local:0", "local:x", "local:3x", "local:-1", "open"}) {
    EXPECT_FALSE(parse_failure_policy(bad, f, err)) << bad;
  }
}

TEST(FailurePolicyTest, DecisionOrder) {
  using V = ClusterVerdict;
  for (FailurePolicy p : {FailurePolicy::kDeny, FailurePolicy::kAllow, FailurePolicy::kLocal}) {
    // Leased tokens are spent whatever Redis' state; Redis' own denial stands.
    EXPECT_EQ(decide(true, false, RedisState::kDown, p), V::kAdmit);
    EXPECT_EQ(decide(true, true, RedisState::kUp, p), V::kAdmit);
    EXPECT_EQ(decide(false, true, RedisState::kDown, p), V::kReject);
    EXPECT_EQ(decide(false, false, RedisState::kUp, p), V::kWait);
  }
  EXPECT_EQ(decide(false, false, RedisState::kDown, FailurePolicy::kDeny), V::kReject);
  EXPECT_EQ(decide(false, false, RedisState::kDown, FailurePolicy::kAllow), V::kAdmitFree);
  EXPECT_EQ(decide(false, false, RedisState::kDown, FailurePolicy::kLocal), V::kAdmitLocal);
}

TEST(FailurePolicyTest, RedisStateAndShares) {
  EXPECT_EQ(redis_state(false, 0, kT0, 100 * kMs), RedisState::kDown);
  EXPECT_EQ(redis_state(true, 0, kT0, 100 * kMs), RedisState::kUp);
  EXPECT_EQ(redis_state(true, kT0, kT0 + 100 * kMs, 100 * kMs), RedisState::kUp);
  EXPECT_EQ(redis_state(true, kT0, kT0 + 100 * kMs + 1, 100 * kMs), RedisState::kDown);

  const RateLimitSpec s = local_share(spec_of("200/s,burst=50,scope=cluster"), 3);
  EXPECT_EQ(s.rate, 66u);
  EXPECT_EQ(s.burst, 16u);
  EXPECT_EQ(local_share(spec_of("2/s,burst=1"), 5).rate, 1u);

  // 200/s, burst 50, TTL 100 ms, 3 gateways: 200*0.1/3 = 6 (rate share) < 50/4 = 12.
  EXPECT_EQ(cluster_lease_size(spec_of("200/s,burst=50"), 100 * kMs, 3, 4), 6u);
  EXPECT_EQ(cluster_lease_size(spec_of("200/s,burst=50"), kSec, 3, 4), 12u);
  EXPECT_EQ(cluster_lease_size(spec_of("1/h,burst=1"), kSec, 3, 4), 1u);
}

// ---------------------------------------------------------------------------------------------
// Against a real redis-server

std::string find_redis_server() {
  const char* path = getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/usr/sbin";
  dirs += ":/usr/bin:/usr/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t colon = dirs.find(':', start);
    const std::string dir = dirs.substr(start, colon - start);
    const std::string candidate = dir + "/redis-server";
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

// One redis-server on a unix socket in a fresh temporary directory, no persistence.
class RedisProcess {
 public:
  bool start(const std::vector<std::string>& extra, std::string& why) {
    const std::string bin = find_redis_server();
    if (bin.empty()) {
      why = "redis-server not installed";
      return false;
    }
    std::string tmpl = testing::TempDir() + "rw_redis_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      why = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    socket_ = dir_ + "/redis.sock";
    std::vector<std::string> args = {bin, "--port", "0", "--unixsocket", socket_, "--unixsocketperm", "700",
                                     "--save", "", "--appendonly", "no", "--dir", dir_, "--logfile",
                                     dir_ + "/redis.log"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    // Ready when the socket accepts; bounded at 10 s.
    for (int i = 0; i < 1000; ++i) {
      const int fd = connect_fd();
      if (fd >= 0) {
        close(fd);
        return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why = "redis-server exited at start";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    why = "redis-server did not open its socket";
    return false;
  }
  ~RedisProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) {
      unlink(socket_.c_str());
      unlink((dir_ + "/redis.log").c_str());
      rmdir(dir_.c_str());
    }
  }
  int connect_fd() const {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, socket_.c_str(), sizeof(a.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      close(fd);
      return -1;
    }
    timeval tv{5, 0};  // every read is bounded
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
  }

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string socket_;
};

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A blocking connection driven through the codec: what the engine will do on io_uring.
struct LeaseConn {
  int fd = -1;
  RedisLeaseCodec codec;
  LeaseConn(const RedisProcess& redis, RedisLeaseCodec::Options o) : fd(redis.connect_fd()), codec(std::move(o)) {}
  ~LeaseConn() {
    if (fd >= 0) close(fd);
  }
  // Writes what is pending, reads until `want` replies are complete (reads are small on purpose,
  // so replies arrive split).
  std::vector<LeaseReply> run(size_t want) {
    std::vector<LeaseReply> out;
    const std::string_view pending = codec.pending_output();
    EXPECT_TRUE(write_all(fd, pending));
    codec.consume_output(pending.size());
    LeaseReply r;
    while (out.size() < want) {
      while (out.size() < want && codec.next_reply(r)) out.push_back(r);
      if (out.size() == want) break;
      // Written after a NOSCRIPT: the reload and the resend.
      const std::string_view more = codec.pending_output();
      if (!more.empty()) {
        EXPECT_TRUE(write_all(fd, more));
        codec.consume_output(more.size());
      }
      char buf[7];
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) {
        ADD_FAILURE() << "redis connection read failed";
        break;
      }
      EXPECT_TRUE(codec.feed(buf, static_cast<size_t>(n)));
    }
    return out;
  }
  LeaseReply take(std::string_view key, const BucketParams& p, uint32_t want) {
    codec.queue_take(key, p, want, 1);
    auto r = run(1);
    return r.empty() ? LeaseReply{} : r[0];
  }
  LeaseReply give(std::string_view key, const BucketParams& p, uint64_t stamp, uint32_t n) {
    codec.queue_give(key, p, stamp, n, 1);
    auto r = run(1);
    return r.empty() ? LeaseReply{} : r[0];
  }
};

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

// Any command on a side connection (checks, SCRIPT FLUSH, ...), parsed with a redisReader too.
ReplyPtr raw(const RedisProcess& redis, std::initializer_list<std::string_view> args) {
  const int fd = redis.connect_fd();
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
  write_all(fd, std::string_view(cmd, static_cast<size_t>(n)));
  redisFreeCommand(cmd);
  redisReader* reader = redisReaderCreate();
  void* reply = nullptr;
  char buf[4096];
  while (reply == nullptr) {
    const ssize_t got = read(fd, buf, sizeof(buf));
    if (got <= 0) break;
    redisReaderFeed(reader, buf, static_cast<size_t>(got));
    if (redisReaderGetReply(reader, &reply) != REDIS_OK) break;
  }
  redisReaderFree(reader);
  close(fd);
  return ReplyPtr(static_cast<redisReply*>(reply), freeReplyObject);
}

class RedisLeaseTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new RedisProcess();
    if (!redis_->start({}, why_)) {
      delete redis_;
      redis_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    if (redis_ == nullptr) {
      if (why_ == "redis-server not installed") GTEST_SKIP() << why_;
      FAIL() << why_;
    }
  }
  // A connected codec whose SCRIPT LOAD was answered.
  std::unique_ptr<LeaseConn> connect(RedisLeaseCodec::Options o = {}) {
    auto c = std::make_unique<LeaseConn>(*redis_, std::move(o));
    EXPECT_GE(c->fd, 0);
    c->codec.connected(1);
    const size_t setup = c->codec.outstanding();
    for (const LeaseReply& r : c->run(setup)) EXPECT_TRUE(r.ok()) << r.message;
    return c;
  }
  static RedisProcess* redis_;
  static std::string why_;
};
RedisProcess* RedisLeaseTest::redis_ = nullptr;
std::string RedisLeaseTest::why_;

TEST_F(RedisLeaseTest, ScriptLoadsUnderItsSha) {
  auto c = connect();
  ReplyPtr r = raw(*redis_, {"SCRIPT", "EXISTS", lease_script_sha1()});
  ASSERT_TRUE(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
  EXPECT_EQ(r->element[0]->integer, 1);
}

// 1/h: no refill during the test, so the bucket's content is exactly the burst.
TEST_F(RedisLeaseTest, LeasesNeverExceedTheBurst) {
  auto c = connect();
  const BucketParams p = params_of("1/h,burst=20");
  const std::string key = "t:burst";
  LeaseReply r = c->take(key, p, 8);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.count, 8u);
  EXPECT_EQ(r.remaining, 12u);
  EXPECT_EQ(r.retry_ns, 0u);
  EXPECT_GT(r.stamp, 0u);
  EXPECT_EQ(c->take(key, p, 8).count, 8u);
  r = c->take(key, p, 8);
  EXPECT_EQ(r.count, 4u);
  EXPECT_EQ(r.remaining, 0u);
  // Empty: the next token comes one interval after the TAT passes now + tau, i.e. within T.
  EXPECT_GT(r.retry_ns, p.interval_ns - 60 * kSec);
  EXPECT_LE(r.retry_ns, p.interval_ns);
  EXPECT_EQ(c->take(key, p, 1).count, 0u);
  // A rejected take writes nothing: the stored stamp is still the last grant's.
  ReplyPtr s = raw(*redis_, {"HGET", key, "s"});
  ASSERT_TRUE(s && s->type == REDIS_REPLY_STRING);
  EXPECT_EQ(std::stoull(std::string(s->str, s->len)), r.stamp);
}

// The bucket refills by Redis' clock: an empty bucket of 10/s has its next token within one
// interval (100 ms) and grants it once the retry time has passed.
TEST_F(RedisLeaseTest, RefillFollowsRedisTime) {
  auto c = connect();
  const BucketParams p = params_of("10/s,burst=2");
  ASSERT_EQ(c->take("t:refill", p, 5).count, 2u);
  const LeaseReply empty = c->take("t:refill", p, 1);
  ASSERT_EQ(empty.count, 0u);
  EXPECT_GT(empty.retry_ns, 0u);
  EXPECT_LE(empty.retry_ns, p.interval_ns);
  std::this_thread::sleep_for(std::chrono::nanoseconds(empty.retry_ns + 20 * kMs));
  EXPECT_EQ(c->take("t:refill", p, 1).count, 1u);
}

// Several connections (gateway processes) take small leases as fast as they can for ~300 ms of
// 1000/s with burst 50: the total never exceeds B + R*elapsed (elapsed measured around all the
// calls, so it covers Redis' own), and at least the burst is granted.
TEST_F(RedisLeaseTest, BurstsAcrossConnectionsStayWithinGcra) {
  std::vector<std::unique_ptr<LeaseConn>> conns;
  for (int i = 0; i < 3; ++i) conns.push_back(connect());
  const BucketParams p = params_of("1000/s,burst=50");
  const std::string key = "t:gcra";
  uint64_t granted = 0;
  const auto t0 = std::chrono::steady_clock::now();
  int calls = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(300)) {
    for (auto& c : conns) {
      // Pipelined: three takes per connection per round.
      for (int k = 0; k < 3; ++k) c->codec.queue_take(key, p, 5, 1);
      for (const LeaseReply& r : c->run(3)) {
        ASSERT_TRUE(r.ok()) << r.message;
        granted += r.count;
      }
      calls += 3;
    }
  }
  const uint64_t elapsed_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LE(granted, 50 + elapsed_ns / p.interval_ns + 1) << calls << " calls";
  EXPECT_GE(granted, 50u);
}

TEST_F(RedisLeaseTest, NoscriptAfterFlushIsTransparent) {
  auto c = connect();
  const BucketParams p = params_of("1/h,burst=10");
  ASSERT_EQ(c->take("t:flush", p, 2).count, 2u);
  ReplyPtr f = raw(*redis_, {"SCRIPT", "FLUSH"});
  ASSERT_TRUE(f && f->type == REDIS_REPLY_STATUS);
  // Two takes pipelined into the script-less Redis: both complete, one reload.
  c->codec.queue_take("t:flush", p, 3, 1);
  c->codec.queue_take("t:flush", p, 3, 1);
  const std::vector<LeaseReply> r = c->run(3);  // the reload's reply and both takes
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].op, LeaseOp::kLoadScript);
  EXPECT_TRUE(r[0].ok()) << r[0].message;
  EXPECT_EQ(r[1].count + r[2].count, 6u);
  EXPECT_EQ(r[2].remaining, 2u);
  EXPECT_EQ(c->codec.script_loads(), 2u);
}

TEST_F(RedisLeaseTest, KeyExpiresWhenTheBucketIsFull) {
  auto c = connect();
  const BucketParams p = params_of("10/s,burst=20");  // T = 100 ms
  const LeaseReply r = c->take("t:ttl", p, 5);
  ASSERT_EQ(r.count, 5u);
  EXPECT_LE(r.full_in_ns, 500 * kMs);
  EXPECT_GT(r.full_in_ns, 400 * kMs);  // generous: less than 100 ms may pass between call and check
  ReplyPtr ttl = raw(*redis_, {"PTTL", "t:ttl"});
  ASSERT_TRUE(ttl && ttl->type == REDIS_REPLY_INTEGER);
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 501);  // ceil(500 ms) + 1 at most
  // Giving everything back fills the bucket: the key goes away at once.
  const LeaseReply g = c->give("t:ttl", p, r.stamp, 5);
  EXPECT_EQ(g.count, 5u);
  EXPECT_EQ(g.remaining, 20u);
  ReplyPtr exists = raw(*redis_, {"EXISTS", "t:ttl"});
  EXPECT_EQ(exists->integer, 0);
}

TEST_F(RedisLeaseTest, GiveBackOnlyUndoesTheLastGrant) {
  auto a = connect();
  auto b = connect();
  const BucketParams p = params_of("1/h,burst=20");
  const std::string key = "t:give";
  const LeaseReply first = a->take(key, p, 5);
  ASSERT_EQ(first.count, 5u);
  // Untouched since: the grant is undone exactly.
  LeaseReply g = a->give(key, p, first.stamp, 3);
  EXPECT_EQ(g.count, 3u);
  EXPECT_EQ(g.remaining, 18u);
  // The same grant cannot be given back twice (the give-back was a write of its own).
  EXPECT_EQ(a->give(key, p, first.stamp, 2).count, 0u);
  // More than the grant took: refused.
  const LeaseReply second = a->take(key, p, 4);
  ASSERT_EQ(second.count, 4u);
  EXPECT_EQ(a->give(key, p, second.stamp, 5).count, 0u);
  // Someone else took since: refused (crediting could hand out tokens twice); theirs still works.
  const LeaseReply other = b->take(key, p, 4);
  ASSERT_EQ(other.count, 4u);
  g = a->give(key, p, second.stamp, 4);
  EXPECT_EQ(g.count, 0u);
  EXPECT_EQ(g.remaining, 20u - 2 - 4 - 4);
  EXPECT_EQ(b->give(key, p, other.stamp, 4).count, 4u);
  // A key that expired (bucket full) takes nothing back.
  EXPECT_EQ(a->give("t:give-missing", p, second.stamp, 1).count, 0u);
  EXPECT_EQ(raw(*redis_, {"EXISTS", "t:give-missing"})->integer, 0);
}

TEST_F(RedisLeaseTest, RedisErrorsReachTheCaller) {
  auto c = connect();
  ASSERT_EQ(raw(*redis_, {"SET", "t:string", "x"})->type, REDIS_REPLY_STATUS);
  const LeaseReply r = c->take("t:string", params_of("1/s"), 1);
  EXPECT_EQ(r.error, RedisErrorKind::kWrongType) << r.message;
  // The connection stays usable.
  EXPECT_EQ(c->take("t:after-error", params_of("1/h,burst=3"), 5).count, 3u);
}

TEST_F(RedisLeaseTest, DatabaseIsSelected) {
  auto c = connect({.database = 3});
  ASSERT_EQ(c->take("t:db", params_of("1/h,burst=3"), 1).count, 1u);
  EXPECT_EQ(raw(*redis_, {"EXISTS", "t:db"})->integer, 0);
  // SELECT 3 then EXISTS on one connection: the key is there.
  const int fd = redis_->connect_fd();
  const std::string cmds = resp_command({"SELECT", "3"}) + resp_command({"EXISTS", "t:db"});
  ASSERT_TRUE(write_all(fd, cmds));
  std::string in;
  char buf[64];
  while (in.find(":") == std::string::npos || in.back() != '\n') {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  EXPECT_EQ(in, "+OK\r\n:1\r\n");
}

// The whole design in one thread, as the engine will run it: three "gateway processes", each
// with its own lease pool and Redis connection, offered load skewed 60/30/10 far above the
// limit for ~300 ms. A request is admitted only with a token drawn from a lease Redis granted;
// an empty pool sends one lease request (one refill in flight per key); Redis' "empty, retry in
// X" rejects locally until then; expired leftovers are given back. The total admitted stays
// within the header's bound B + R*D/U + P*L (measured D encloses every Redis call), Redis sees
// far fewer calls than requests, and at least the burst is admitted.
TEST_F(RedisLeaseTest, ProcessesWithLeasePoolsStayWithinTheBound) {
  const RateLimitSpec spec = spec_of("1000/s,burst=100,scope=cluster");
  BucketParams p;
  std::string err;
  ASSERT_TRUE(cluster_params(spec, p, err)) << err;
  const uint64_t ttl = 50 * kMs;
  const uint32_t lease = cluster_lease_size(spec, ttl, 3, 4);  // min(100/4, 1000*0.05/3) = 16
  ASSERT_EQ(lease, 16u);
  const std::string bucket = cluster_bucket_key(spec, "", "client-1");
  const uint64_t key = hash_key("client-1", 7);
  struct Process {
    std::unique_ptr<LeaseConn> conn;
    ClusterLeasePool pool{64};
    int share = 0;
  };
  std::vector<std::unique_ptr<Process>> procs;
  for (int share : {6, 3, 1}) {
    procs.push_back(std::make_unique<Process>());
    procs.back()->conn = connect();
    procs.back()->share = share;
  }
  auto mono = [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  };
  uint64_t admitted = 0, offered = 0, redis_calls = 0, given_back = 0;
  const uint64_t start = mono();
  while (mono() - start < 300 * kMs) {
    for (auto& owned : procs) {
      Process& pr = *owned;
      for (int i = 0; i < pr.share; ++i) {
        ++offered;
        const uint64_t now = mono();
        const uint32_t slot = pr.pool.find_or_insert(key, now);
        ASSERT_NE(slot, ClusterLeasePool::kNoSlot);
        bool drew = pr.pool.draw(slot, key, now) == 1;
        const bool denied = !drew && now < pr.pool.denied_until(slot, key);
        if (!drew && !denied && pr.pool.begin_refill(slot, key, now, ttl)) {
          uint64_t stamp = 0;
          if (const uint32_t left = pr.pool.take_leftover(slot, key, now, false, &stamp)) {
            const LeaseReply g = pr.conn->give(bucket, p, stamp, left);
            ASSERT_TRUE(g.ok()) << g.message;
            given_back += g.count;
            ++redis_calls;
          }
          const uint64_t queued = mono();
          const LeaseReply r = pr.conn->take(bucket, p, lease);
          ++redis_calls;
          ASSERT_TRUE(r.ok()) << r.message;
          const uint64_t back = mono();
          if (r.count > 0) {
            ASSERT_TRUE(pr.pool.install(slot, key, r.count, queued, ttl, r.stamp, back));
          } else {
            pr.pool.set_denied_until(slot, key, back + r.retry_ns);
          }
          pr.pool.end_refill(slot, key);
          drew = pr.pool.draw(slot, key, back) == 1;
        }
        admitted += drew;
      }
    }
  }
  const uint64_t elapsed = mono() - start;
  const uint64_t bound = 100 + elapsed / p.interval_ns + 1 + 3 * lease;
  EXPECT_LE(admitted, bound) << "offered " << offered << ", Redis calls " << redis_calls << ", given back " << given_back;
  EXPECT_GE(admitted, 100u);
  EXPECT_LT(redis_calls * 4, offered) << admitted << " admitted";
}

TEST(RedisAuthTest, PasswordIsSentAndAFailureIsAnAuthError) {
  RedisProcess redis;
  std::string why;
  if (!redis.start({"--requirepass", "s3cret"}, why)) {
    if (why == "redis-server not installed") GTEST_SKIP() << why;
    FAIL() << why;
  }
  {
    LeaseConn c(redis, {.password = "s3cret"});
    c.codec.connected(1);
    for (const LeaseReply& r : c.run(2)) EXPECT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(c.take("t:auth", params_of("1/h,burst=2"), 1).count, 1u);
  }
  {
    LeaseConn c(redis, {.password = "wrong"});
    c.codec.connected(1);
    const std::vector<LeaseReply> r = c.run(2);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].error, RedisErrorKind::kAuth) << r[0].message;
    EXPECT_EQ(r[1].error, RedisErrorKind::kAuth) << r[1].message;  // NOAUTH for the load
  }
}

}  // namespace
}  // namespace ringway::filter::rate_limit
