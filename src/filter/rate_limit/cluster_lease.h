// Cluster-scoped rate limits (issue 15), everything that does no socket I/O: the Redis script
// that keeps one GCRA bucket per key and grants leases of tokens, the RESP codec that speaks it
// (RedisLeaseCodec: one per Redis connection, owned by the thread that owns that connection), the
// process-wide lease pool that workers draw from lock-free (ClusterLeasePool, shared by every
// worker, lives as long as the rate-limit factory's shared state), and the failure policy.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "filter/rate_limit/token_pool.h"

struct redisReader;

namespace ringway::filter::rate_limit {

struct RateLimitSpec;

// ---------------------------------------------------------------------------------------------
// The Redis side
//
// Redis holds the authoritative bucket of each (spec, key) in a hash at cluster_bucket_key():
//   e  Redis time of the last write, in microseconds (from TIME: Redis' clock, never a gateway's)
//   d  TAT - e in ns: how far the theoretical arrival time lies ahead of e; 0 < d <= tau
//   s  write stamp: max(previous s + 1, e); strictly increasing per key
//   g  tokens the last write granted (0 after a give-back)
// Lua numbers are doubles, exact up to 2^53: an absolute TAT in ns (~1.8e18) would not be, so the
// TAT is kept relative to e, which keeps every value an exact integer below 2^53 as long as
// tau < 2^53 ns (104 days; cluster_params() enforces it). The arithmetic is token_pool.h's:
//   rel   = max(0, d - (now - e) * 1000)          TAT - now; 0 = bucket full
//   avail = floor((tau - rel) / T)                (re-checked in integers: no rounding up)
//   take n = min(want, avail):  rel' = rel + n*T  (n = 0 writes nothing: rejections are free)
//   retry = rel' + T - tau when nothing is left   (ns until the next token, Retry-After)
// The key expires (PEXPIRE) when its bucket is full again, ceil(rel' / 1 ms) + 1 ms from now;
// a missing key is a full bucket, so expiry loses nothing. Redis' clock stepped back makes
// buckets look emptier (conservative); stepped forward by X, they refill by X early. A failover to
// an asynchronously replicated replica forgets the grants it had not received yet.
//
// Giving back. "give STAMP n" credits n tokens only if the key's last write is still the grant
// that returned STAMP (s == STAMP) and n <= g. Then the bucket becomes exactly what it would have
// been had that grant taken n fewer tokens (rel' = max(0, rel - n*T): the last debit is undone,
// clamped to "full"), so a give-back can never over-credit. When anyone else wrote the key since
// (another process took a lease), the tokens are not returned: they are wasted, which only ever
// under-admits, by at most one lease per process per lease lifetime. Stamps do not repeat across
// a key's lives: Redis runs one script at a time and each takes well over a microsecond, so s
// stays within a few us of Redis' clock, and a key recreated after expiry starts above every
// stamp of its earlier life (unless Redis' clock is stepped back by more than the key's idle time).
//
// Script, not FUNCTION LOAD: the script runs on Redis 4.0 and later (multi-field HSET; TIME
// before a write needs effects replication, asked for with redis.replicate_commands() where it
// is not the default), while functions need Redis 7, which managed services and Sentinel setups
// often lag behind. A script's name is the SHA-1 of its text, so two ringway versions
// with different scripts can share one Redis during a rolling upgrade (a function library has one
// name: the second version's FUNCTION LOAD REPLACE would change the first one's code under it).
// What a function would add, surviving a restart, we get anyway: NOSCRIPT is answered with
// SCRIPT LOAD and the same EVALSHA, transparently (RedisLeaseCodec).
// ---------------------------------------------------------------------------------------------

// The Lua text (EVALSHA KEYS[1]=bucket, ARGV = op, T ns, tau ns, then want | stamp, n) and its
// SHA-1 in hex, computed once.
std::string_view lease_script();
const std::string& lease_script_sha1();

// T and tau of a spec for the script; false (with a reason) when tau >= 2^53 ns.
bool cluster_params(const RateLimitSpec& spec, BucketParams& out, std::string& error);

// The Redis key of one (spec, key text) bucket: "rw:rl:" + the spec's limit identity + ":" +
// key text. Every gateway of a cluster derives the same key from the same spec. `scope_id`
// names the route a JSON-route spec belongs to ("" for flag specs, which carry route= themselves).
std::string cluster_bucket_key(const RateLimitSpec& spec, std::string_view scope_id,
                               std::string_view key_text);

// ---------------------------------------------------------------------------------------------
// The codec: commands out, replies in, no sockets. The caller connects, writes pending_output()
// and feeds what it reads; replies are parsed incrementally from any byte split, several requests
// may be outstanding (Redis answers a connection's commands in order).
// ---------------------------------------------------------------------------------------------

enum class LeaseOp : uint8_t { kAuth, kSelect, kLoadScript, kTake, kGive };

enum class RedisErrorKind : uint8_t {
  kNone,
  kAuth,         // NOAUTH / WRONGPASS / a failed AUTH: configuration, not transient
  kNoScript,     // NOSCRIPT even after reloading the script (only after kMaxScriptRetries)
  kLoading,      // LOADING: Redis is reading its data set after a restart
  kBusy,         // BUSY: another script is running too long
  kReadOnly,     // READONLY: connected to a replica (failover in progress)
  kOutOfMemory,  // OOM: maxmemory reached, writes refused
  kWrongType,    // WRONGTYPE: the bucket key holds something else (key-space clash)
  kScript,       // the script failed (ERR ... script ...)
  kProtocol,     // a reply of the wrong shape (not what the script or command returns)
  kDisconnected, // the connection closed before the reply came (disconnected())
  kOther,        // any other error reply
};
const char* error_kind_name(RedisErrorKind k);

struct LeaseReply {
  uint64_t id = 0;        // what queue_*() returned
  LeaseOp op = LeaseOp::kTake;
  RedisErrorKind error = RedisErrorKind::kNone;
  std::string message;    // Redis' error text (kNone: empty)
  // kTake: tokens granted; kGive: tokens credited back (0: refused, see "Giving back").
  uint32_t count = 0;
  uint64_t retry_ns = 0;    // 0 while tokens remain; else ns until the next one (Redis' clock)
  uint64_t remaining = 0;   // tokens left in the Redis bucket after this call
  uint64_t full_in_ns = 0;  // ns until the bucket is full again
  uint64_t stamp = 0;       // kTake with count > 0: pass to queue_give() to give tokens back
  bool ok() const { return error == RedisErrorKind::kNone; }
};

class RedisLeaseCodec {
 public:
  // A request answered NOSCRIPT is reloaded and resent at most this often before it fails.
  static constexpr int kMaxScriptRetries = 2;

  struct Options {
    std::string password;   // AUTH (Redis 6 ACL user "default"); "" = none
    uint32_t database = 0;  // SELECT when not 0
  };
  explicit RedisLeaseCodec(Options options);
  ~RedisLeaseCodec();
  RedisLeaseCodec(const RedisLeaseCodec&) = delete;
  RedisLeaseCodec& operator=(const RedisLeaseCodec&) = delete;

  // A new connection is up, nothing written on it yet: AUTH, SELECT (if configured) and
  // SCRIPT LOAD go ahead of the requests queued while it was being made. Their replies come out
  // of next_reply() like any other (check ok(): a failed AUTH is kAuth).
  void connected(uint64_t now_ns);
  // The connection is gone: every outstanding request completes with kDisconnected (a take
  // that Redis executed but whose reply was lost only wastes tokens: no over-admission), the
  // reader and unsent output are dropped. Call connected() on the next connection.
  void disconnected();

  // Queue "lease up to `want` (>= 1) tokens" / "give `n` tokens of grant `stamp` back" for the bucket
  // `key` (cluster_bucket_key()) under `params`. Return the request id. `now_ns` (the caller's
  // monotonic clock) only dates the request for oldest_outstanding_ns().
  uint64_t queue_take(std::string_view key, const BucketParams& params, uint32_t want, uint64_t now_ns);
  uint64_t queue_give(std::string_view key, const BucketParams& params, uint64_t stamp, uint32_t n,
                      uint64_t now_ns);

  // Bytes to write, oldest first. The view is valid until the next queue_*/connected() call;
  // consume_output(n) after n bytes were written.
  std::string_view pending_output() const { return std::string_view(out_).substr(out_pos_); }
  void consume_output(size_t n);

  // Feeds bytes read from the connection. False on a RESP protocol error: the connection must
  // then be closed (disconnected()), nothing more can be parsed from it.
  bool feed(const char* data, size_t len);
  // Takes the next completed reply; false when none is complete. A request answered NOSCRIPT
  // does not complete: the script is loaded again and the request resent, so it may complete
  // after requests that were queued after it.
  bool next_reply(LeaseReply& out);

  size_t outstanding() const { return inflight_.size(); }
  // Caller clock when the oldest unanswered request was queued; 0 when none is outstanding.
  uint64_t oldest_outstanding_ns() const { return inflight_.empty() ? 0 : inflight_.front().queued_ns; }
  uint64_t script_loads() const { return script_loads_; }  // SCRIPT LOADs queued (metrics)

 private:
  struct Request {
    uint64_t id = 0;
    LeaseOp op = LeaseOp::kTake;
    uint64_t seq = 0;        // position in the connection's command stream
    uint64_t queued_ns = 0;
    int retries = 0;
    std::string command;     // the formatted EVALSHA, kept for a resend after NOSCRIPT
  };
  void send(Request r);
  void queue_load(uint64_t now_ns);
  void complete(Request& r, void* reply);
  uint64_t queue_eval(LeaseOp op, std::string_view key, const BucketParams& p, uint64_t a,
                      uint64_t b, uint64_t now_ns);

  Options options_;
  redisReader* reader_ = nullptr;
  std::string out_;
  size_t out_pos_ = 0;
  std::deque<Request> inflight_;   // sent (or queued in out_), in command order
  std::deque<LeaseReply> done_;
  uint64_t next_id_ = 1;
  uint64_t next_seq_ = 1;
  uint64_t last_load_seq_ = 0;     // seq of the newest SCRIPT LOAD on this connection
  uint64_t script_loads_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The process's lease pool
//
// Per key, the tokens Redis granted to this process and no request has spent yet, in one
// fixed table (groups of 8 slots chosen by the key's hash, like SharedBuckets) that every worker
// draws from with one CAS: no lock, no allocation. A slot's `word` packs the lease:
//   bits 0-23   tokens left (a lease is at most kMaxLease)
//   bits 24-63  deadline, in ms of the caller's monotonic clock since epoch_ns (2^40 ms = 34 years)
// A token is drawn only while now < deadline. The deadline is the time the lease request was
// QUEUED plus the lease lifetime (TTL), and Redis debited the tokens after that instant, so a
// token is never spent later than TTL after Redis counted it. When a lease arrives while an
// unexpired one still holds tokens, they merge under the EARLIER deadline (conservative).
//
// Error bound, for one key, in any interval of length D, P gateway processes, each slot holding
// at most S tokens, with Redis' GCRA of burst B and rate R per unit U. As wired (rate_limit.cc):
// one refill of L per process in flight (begin_refill), asked when the pool falls to L/2, plus
// at most one request per worker for its own paused requests (<= L each), so with W workers
// S <= L/2 + L + W*L (2L + W*L is the figure the tests use):
//   admitted <= B + R*D/U + min(P*S, R*TTL/U)
//     Tokens spent in the interval were debited by Redis either in it (at most what the bucket
//     held at its start plus R*D/U) or before it and still held in pools at its start: at most
//     P*S, and, having been debited within TTL before the start, at most what refilled in that
//     TTL on top of the bucket's content (content + those debits <= B + R*TTL/U).
//     Give-backs never over-credit (see "Giving back"), so they add nothing.
//   admitted >= B + R*D/U - P*S - waste   when every process is offered more than its share
//     (tokens stranded in pools at the end; waste = leases that expired unspent and could not be
//     given back because another process wrote the key since: choose L <= R*TTL/(U*P) so that a
//     process spends a lease within its lifetime at its fair share, then little expires.)
// Clock skew between gateways and Redis cannot matter: Redis decides with its own clock, and a
// gateway only measures durations (TTL) on its own monotonic clock. Clock RATE differences
// (ppm) stretch TTL by as much.
//
// The only imprecision: a worker that checked a slot's key just before the slot was reclaimed
// for another key (reclaimed only when its lease is empty or expired) and drew from the new key's
// lease notices it (the key is checked again after the CAS) and puts the token back; if a new
// lease merged in between, one token can be charged to the wrong key (<= 1 per such race).
//
// A key that finds no free slot in its group (all 8 hold live leases) gets kNoSlot: such a
// request asks Redis for exactly one token and spends it at once (correct, just slower).
// ---------------------------------------------------------------------------------------------

class ClusterLeasePool {
 public:
  static constexpr uint32_t kGroupSize = 8;
  static constexpr uint32_t kNoSlot = 0xFFFFFFFFu;
  static constexpr uint32_t kMaxLease = (1u << 24) - 1;

  // epoch_ns: the caller's clock at start-up. Deadlines are kept in ms since then, so the 40
  // bits hold any uptime even when CLOCK_MONOTONIC itself is large (libfaketime, for one, makes
  // it read like the wall clock: ~1.8e12 ms, beyond 2^40).
  explicit ClusterLeasePool(uint32_t capacity, uint64_t epoch_ns = 0);
  ClusterLeasePool(const ClusterLeasePool&) = delete;
  ClusterLeasePool& operator=(const ClusterLeasePool&) = delete;

  uint32_t capacity() const { return group_count_ * kGroupSize; }

  // The slot of `key` (a hash_key() value, never 0), claiming a free one (never used, or its
  // lease empty or expired, and no refill in flight) if needed; kNoSlot when none is free.
  uint32_t find_or_insert(uint64_t key, uint64_t now_ns);

  // Draws up to `want` tokens of `key`'s unexpired lease; returns how many (0: none).
  uint32_t draw(uint32_t slot, uint64_t key, uint64_t now_ns, uint32_t want = 1);
  // Tokens `key` could draw now.
  uint32_t tokens(uint32_t slot, uint64_t key, uint64_t now_ns) const;

  // Adds a lease that Redis granted (count tokens, stamp) for a request queued at `queued_ns`,
  // valid until queued_ns + ttl_ns. An expired leftover is replaced (wasted), a live one merged.
  // False (nothing added) if the slot changed owner meanwhile.
  bool install(uint32_t slot, uint64_t key, uint32_t count, uint64_t queued_ns, uint64_t ttl_ns,
               uint64_t stamp, uint64_t now_ns);
  // Takes out whatever is left of an EXPIRED lease (or, with force, of any lease: shutdown) for
  // a give-back; returns the count and sets *stamp to the last grant's stamp.
  uint32_t take_leftover(uint32_t slot, uint64_t key, uint64_t now_ns, bool force, uint64_t* stamp);

  // Redis said the bucket is empty until `until_ns`: requests are rejected without asking Redis
  // again until then (rejections consume nothing and cost Redis nothing).
  void set_denied_until(uint32_t slot, uint64_t key, uint64_t until_ns);
  uint64_t denied_until(uint32_t slot, uint64_t key) const;

  // One lease request per key in flight per process: the first caller gets true, sends the
  // request, calls install() with the grant (or gives it back if install() refuses: the slot was
  // reclaimed) and then end_refill(). A refill older than stale_ns is taken over (reply lost).
  bool begin_refill(uint32_t slot, uint64_t key, uint64_t now_ns, uint64_t stale_ns);
  void end_refill(uint32_t slot, uint64_t key);

  uint32_t entry_count() const;  // O(capacity), tests and metrics

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> key{0};          // 0: never used
    std::atomic<uint64_t> word{0};         // tokens | deadline_ms << 24
    std::atomic<uint64_t> stamp{0};        // stamp of the newest grant installed
    std::atomic<uint64_t> denied_until{0}; // ns, caller clock
    std::atomic<uint64_t> refill_since{0}; // ns when the in-flight refill started; 0: none
  };
  Slot& at(uint32_t id) { return slots_[id]; }
  const Slot& at(uint32_t id) const { return slots_[id]; }

  uint64_t ms_of(uint64_t ns) const;
  bool live(uint64_t word, uint64_t now_ns) const;  // tokens left and now before the deadline

  uint64_t epoch_ns_;
  uint32_t group_count_;
  std::unique_ptr<Slot[]> slots_;
};

// ---------------------------------------------------------------------------------------------
// Redis slow or down: the failure policy (--redis-failure)
// ---------------------------------------------------------------------------------------------

enum class FailurePolicy : uint8_t {
  kDeny,   // no leased token and Redis unreachable: 429 (the limit is never exceeded)
  kAllow,  // ... admit (availability first: the limit is off while Redis is down)
  kLocal,  // ... this instance enforces its share of the limit alone (rate/N, burst/N)
};

struct FailureConfig {
  FailurePolicy policy = FailurePolicy::kDeny;
  uint32_t instances = 1;  // kLocal: N, the number of gateways sharing the limit
};
// "deny" | "allow" | "local" | "local:N" (N gateways share the limit; "local" alone is N = 1,
// i.e. each instance admits the whole limit while Redis is down).
bool parse_failure_policy(std::string_view text, FailureConfig& out, std::string& error);

// The per-instance share that kLocal enforces: rate and burst divided by N, rounded down, at
// least 1. While Redis is down N instances thus admit at most the limit (plus leases already
// held); when it comes back its bucket knows nothing of what was admitted locally, so an interval
// spanning the recovery may see up to one extra burst B.
RateLimitSpec local_share(const RateLimitSpec& spec, uint32_t instances);

enum class RedisState : uint8_t {
  kUp,    // connected, and the oldest outstanding request is younger than the timeout
  kDown,  // not connected, or a request has waited longer than the timeout (one lease TTL)
};
RedisState redis_state(bool connected, uint64_t oldest_outstanding_ns, uint64_t now_ns,
                       uint64_t timeout_ns);

enum class ClusterVerdict : uint8_t {
  kAdmit,       // a leased token was drawn
  kReject,      // 429: Redis said the bucket is empty (retry-after known), or policy deny
  kWait,        // no token yet, Redis up: pause until the lease request in flight answers
  kAdmitLocal,  // policy local: decide with the per-instance share (a local WorkerLimiter)
  kAdmitFree,   // policy allow: admit without counting
};
// The order is the rule: tokens already leased are spent first, whatever Redis' state; a denial
// Redis gave stands until its retry time; then Redis up means wait for a lease, Redis down means
// the policy.
ClusterVerdict decide(bool drew_token, bool denied_by_redis, RedisState redis, FailurePolicy policy);

// Lease size: L = max(1, min(B / divisor, R*TTL/(U*instances))): small enough that stranded
// tokens (P*L) stay a fraction of the burst and that a process spends a lease within its TTL at
// its fair share; capped at kMaxLease.
uint32_t cluster_lease_size(const RateLimitSpec& spec, uint64_t ttl_ns, uint32_t instances,
                            uint32_t divisor);

}  // namespace ringway::filter::rate_limit
