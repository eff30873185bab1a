// The rate-limit filter (--rate-limit SPEC, repeatable): answers 429 problem+json when a key
// (client IP, API key, JWT subject or a header) exceeds its spec's rate, for the whole process
// whatever the number of workers. The factory is built once at start-up and owns the shared,
// lock-free bucket pools (token_pool.h explains the arithmetic and the error bound); each
// worker's RateLimitFilter owns its lease tables and runs on that worker's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "filter/rate_limit/cluster_lease.h"
#include "ringway/filter/filter.h"
#include "ringway/filter/lease_channel.h"

namespace ringway::filter::rate_limit {

class SharedBuckets;
class WorkerLimiter;

enum class KeySource : uint8_t {
  kIp,      // ctx.client_ip
  kApiKey,  // X-Consumer added by the auth filter (ctx.edits), else the X-API-Key request header
  kJwtSub,  // X-User-Id added by the JWT filter (ctx.edits); never a client-sent header
  kHeader,  // first value of the request header `header_name`
  kClientCert,  // subject of the verified TLS client certificate (ctx.peer_subject, issue 13)
};
// A request whose key source is missing or empty is counted under one shared "anonymous" key of
// the spec, so clients without a key share one bucket rather than escaping the limit.

// One --rate-limit SPEC:
//   RATE/UNIT[,burst=N][,key=ip|api-key|jwt-sub|client-cert|header:NAME][,route=PREFIX][,scope=local|cluster]
struct RateLimitSpec {
  uint64_t rate = 0;        // requests per unit, 1..1e9 (and at most one per ns)
  uint32_t unit_s = 1;      // 1 (s), 60 (m) or 3600 (h)
  uint32_t burst = 0;       // bucket capacity; parse sets it to `rate` when not given
  KeySource key = KeySource::kIp;
  std::string header_name;  // for kHeader
  std::string route;        // path prefix the spec applies to; "" = every request. Matched like
                            // routes: "/a/" matches "/a/..."; "/a" matches "/a" and "/a/...".
  // Set by the builder for a spec written inside a route of the JSON config: the spec applies
  // only to requests matched to Config::routes[route_index] (exact, unlike a path prefix, even
  // when routes share a prefix and differ by host or method). Not settable from SPEC text.
  static constexpr uint32_t kAnyRoute = UINT32_MAX;
  uint32_t route_index = kAnyRoute;
  // scope=cluster (issue 15): the limit holds for every gateway sharing one Redis
  // (cluster_lease.h); scope=local (the default): for this process.
  bool cluster = false;
};

// Parses SPEC; on failure returns false with a one-line reason in `error`.
bool parse_rate_limit_spec(std::string_view text, RateLimitSpec& out, std::string& error);

enum class HeaderStyle : uint8_t {
  kDraft,   // RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers-10, see below)
  kLegacy,  // X-RateLimit-Limit / X-RateLimit-Remaining / X-RateLimit-Reset
};
// Fields emitted (draft-ietf-httpapi-ratelimit-headers-10 form: the policy is an sf-String item):
//   RateLimit-Policy: "default";q=<rate>;w=<unit in seconds>
//   RateLimit: "default";r=<remaining>;t=<seconds>
// t is, when r > 0, the seconds until the bucket is full again, and when r = 0 the seconds until
// one more request is admitted (the same instant as Retry-After, as the draft asks). The policy is
// named "default" when there is one spec, else "rl1", "rl2", ... in flag order. Legacy style:
// X-RateLimit-Limit is the rate per unit, -Remaining is r, -Reset is t (delta seconds).
// When a request is limited by several specs, the fields describe the one with the least room.

struct RateLimitOptions {
  uint32_t max_keys = 65536;           // --rate-limit-keys: shared table capacity per spec
  uint32_t max_local_keys = 16384;     // per worker and spec (capped at max_keys)
  HeaderStyle style = HeaderStyle::kDraft;
  bool headers_on_allowed = false;     // also add the fields to forwarded responses
  uint64_t lease_ttl_ns = 100'000'000; // a worker's unspent lease goes back after this
  uint32_t lease_divisor = 8;          // k in lease = max(1, burst / (workers * k))
  uint64_t hash_seed = 0;              // 0: random per process
  // scope=cluster (cluster_lease.h): what applies when Redis is down, and the lease lifetime.
  FailureConfig failure;
  uint64_t cluster_lease_ttl_ns = kLeaseTtlNs;
};

// Immutable after construction, except the shared pools which are built for concurrent use.
struct SharedState;

class RateLimitFilterFactory final : public FilterFactory {
 public:
  static constexpr size_t kMaxSpecs = 16;
  // specs.size() must be in [1, kMaxSpecs] (config validation rejects more).
  RateLimitFilterFactory(std::vector<RateLimitSpec> specs, RateLimitOptions options);
  ~RateLimitFilterFactory() override;

  std::unique_ptr<Filter> create(unsigned worker_index, unsigned worker_count) const override;

  // Occupied entries of spec i's shared table (tests, metrics).
  uint32_t shared_entry_count(size_t spec) const;
  uint32_t shared_capacity(size_t spec) const;

 private:
  std::shared_ptr<SharedState> state_;
};

// Cluster specs: a request is admitted against a token of the process's lease pool at once;
// the pool is refilled from Redis ahead of need (when it falls to half a lease); with the pool
// empty the request pauses until this worker's lease request answers (at most one lease
// lifetime, then the failure policy decides). Requests that pause are served in arrival order.
// With --rate-limit-headers, an admitted cluster request reports r = the tokens its process still
// holds leased (Redis' bucket is not read per request); a request admitted after a pause gets no
// fields (its context is not at hand when the lease arrives). 429s are the same for both scopes.
class RateLimitFilter final : public Filter, public LeaseListener {
 public:
  RateLimitFilter(std::shared_ptr<SharedState> state, unsigned worker_count);
  ~RateLimitFilter() override;
  Verdict on_request(RequestContext& ctx) override;
  void attach(LeaseChannel* channel) override { channel_ = channel; }
  void on_lease(const LeaseAnswer& answer) override;

  uint32_t local_entry_count(size_t spec) const;
  uint32_t local_capacity(size_t spec) const;
  uint32_t lease_size(size_t spec) const;

 private:
  // One applicable spec of a request: its index and key hash; for a cluster spec also the Redis
  // key (kept only by a request that pauses).
  struct Applied {
    uint32_t spec = 0;
    uint64_t key = 0;
    std::string redis_key;
    bool granted = false;  // a token Redis granted to this request itself (no pool slot)
  };
  struct Outcome {
    enum Kind : uint8_t { kAdmit, kReject, kWait } kind = kAdmit;
    uint32_t at = 0;             // kReject: the spec; kWait: index into the applied list
    uint64_t wait_ns = 0;        // kReject: until a retry can succeed
    int32_t best = -1;           // kAdmit: the spec with the least room (info fields)
    uint64_t remaining = 0, reset_ns = 0;
  };
  struct Waiter {
    Resumer resumer;
    std::vector<Applied> applied;
  };
  struct Pending {  // per (cluster spec, key) this worker waits on
    uint32_t inflight = 0;       // this worker's lease requests not answered yet
    std::vector<Waiter> waiters;
  };
  struct Asked {
    uint32_t spec;
    uint64_t key;
    std::string redis_key;
    bool refill;                 // holds the pool's begin_refill() for the key
    // The key found no pool slot (its group full of live leases): one token for this one
    // waiter, kept here rather than in pending_.
    std::vector<Waiter> direct;
  };

  Outcome evaluate(const std::vector<Applied>& applied, size_t count, uint64_t now, bool info, bool redis_failed);
  // Parks w behind the lease of w.applied[at]; asks Redis when this worker is not already asking.
  // False when no request could be sent (Redis down): the caller lets the policy decide.
  bool park(Waiter& w, uint32_t at, uint64_t now);
  bool ask(uint32_t spec, uint64_t key, const std::string& redis_key, uint32_t want, bool refill, uint64_t now,
           Waiter* direct = nullptr);
  void on_direct(Waiter w, uint32_t spec, const LeaseAnswer& ans);
  void resolve(const Waiter& w, const Outcome& o);
  uint64_t pending_key(uint32_t spec, uint64_t key) const { return key ^ (0x9E3779B97F4A7C15ull * (spec + 1)); }

  std::shared_ptr<SharedState> state_;
  std::vector<std::unique_ptr<WorkerLimiter>> limiters_;  // one per spec
  std::vector<std::unique_ptr<WorkerLimiter>> local_share_;  // cluster specs, policy local: rate/N
  LeaseChannel* channel_ = nullptr;
  std::unordered_map<uint64_t, Pending> pending_;
  std::unordered_map<uint64_t, Asked> asked_;  // by tag
  uint64_t next_tag_ = 1;
  std::vector<Applied> scratch_applied_;
  char reply_buf_[256];       // a resumed 429's header values (valid until resume() returns)
  size_t reply_used_ = 0;
};

}  // namespace ringway::filter::rate_limit
