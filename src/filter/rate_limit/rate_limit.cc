#include "filter/rate_limit/rate_limit.h"

#include <algorithm>
#include <charconv>
#include <random>

#include "filter/rate_limit/token_pool.h"
#include "ringway/core/ascii.h"
#include "ringway/core/clock.h"

namespace ringway::filter::rate_limit {

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;
constexpr uint64_t kMaxRate = 1'000'000'000ull;
constexpr uint64_t kMaxTauNs = 1ull << 61;  // keeps now + tau far from overflow (token_pool.h)

// Key of the requests that lack the spec's key source. Hashes of real keys are uniformly spread
// 64-bit values, so meeting this constant is a 2^-64 event.
constexpr uint64_t kAnonymousKey = 0x616E6F6E796D6F75ull;  // "anonymou"


// tchar, RFC 9110 section 5.6.2.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool parse_uint(std::string_view s, uint64_t max, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0 || v > max) return false;
  out = v;
  return true;
}

uint64_t interval_ns(const RateLimitSpec& s) {
  const uint64_t unit_ns = s.unit_s * kNsPerSec;
  return (unit_ns + s.rate - 1) / s.rate;
}

// Same rule as route prefixes: "/a/" covers "/a/..."; "/a" covers "/a" and "/a/...".
bool route_applies(std::string_view prefix, std::string_view path) {
  if (prefix.empty()) return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return prefix.back() == '/' || path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::string_view find_request_header(const http::Request& req, std::string_view name) {
  for (uint16_t i = 0; i < req.header_count; ++i) {
    if (core::iequals(req.headers[i].name, name)) return req.headers[i].value;
  }
  return {};
}

std::string_view find_added_header(const http::HeaderEdits& edits, std::string_view name) {
  for (uint8_t i = 0; i < edits.add_count; ++i) {
    if (core::iequals(edits.add[i].name, name)) return edits.add[i].value;
  }
  return {};
}

uint64_t ceil_seconds(uint64_t ns) { return (ns + kNsPerSec - 1) / kNsPerSec; }

// A small fixed buffer for one header value; formats integers without allocating.
struct ValueBuf {
  char data[96];
  size_t len = 0;
  void put(std::string_view s) {
    const size_t n = std::min(s.size(), sizeof(data) - len);
    std::copy_n(s.data(), n, data + len);
    len += n;
  }
  void put(uint64_t v) {
    auto r = std::to_chars(data + len, data + sizeof(data), v);
    if (r.ec == std::errc()) len = static_cast<size_t>(r.ptr - data);
  }
  std::string_view view() const { return {data, len}; }
};

}  // namespace

struct SpecState {
  RateLimitSpec spec;
  std::shared_ptr<SharedBuckets> buckets;
  std::string policy_name;   // "default", "rl1", ...
  std::string policy_value;  // RateLimit-Policy value, formatted once
  std::string limit_value;   // X-RateLimit-Limit value
  std::string detail;        // problem+json detail
  // scope=cluster (cluster_lease.h): the GCRA parameters for the script, the process's lease
  // pool, the lease size, the bucket name's scope, and the per-instance share (policy local).
  BucketParams cluster{};
  std::shared_ptr<ClusterLeasePool> pool;
  uint32_t cluster_lease = 1;
  std::string scope_id;
  std::shared_ptr<SharedBuckets> local_share;
};

struct SharedState {
  std::vector<SpecState> specs;
  RateLimitOptions options;
  uint64_t seed = 0;
};

// ---------------------------------------------------------------------------------------------
// SPEC parsing

bool parse_rate_limit_spec(std::string_view text, RateLimitSpec& out, std::string& error) {
  RateLimitSpec s;
  const std::string quoted = "rate limit '" + std::string(text) + "': ";
  size_t comma = text.find(',');
  std::string_view head = text.substr(0, comma);
  std::string_view rest = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);

  const size_t slash = head.find('/');
  if (slash == std::string_view::npos) {
    error = quoted + "expected RATE/UNIT, e.g. 100/s";
    return false;
  }
  if (!parse_uint(head.substr(0, slash), kMaxRate, s.rate)) {
    error = quoted + "RATE must be an integer from 1 to 1000000000";
    return false;
  }
  const std::string_view unit = head.substr(slash + 1);
  if (unit == "s") {
    s.unit_s = 1;
  } else if (unit == "m") {
    s.unit_s = 60;
  } else if (unit == "h") {
    s.unit_s = 3600;
  } else {
    error = quoted + "UNIT must be s, m or h";
    return false;
  }

  bool seen_burst = false, seen_key = false, seen_route = false, seen_scope = false;
  while (comma != std::string_view::npos) {
    comma = rest.find(',');
    const std::string_view opt = rest.substr(0, comma);
    if (comma != std::string_view::npos) rest = rest.substr(comma + 1);
    const size_t eq = opt.find('=');
    const std::string_view name = opt.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : opt.substr(eq + 1);
    if (eq == std::string_view::npos || value.empty()) {
      error = quoted + "expected NAME=VALUE, got '" + std::string(opt) + "'";
      return false;
    }
    if (name == "burst") {
      uint64_t b = 0;
      if (seen_burst || !parse_uint(value, kMaxRate, b)) {
        error = quoted + (seen_burst ? "burst given twice" : "burst must be an integer from 1 to 1000000000");
        return false;
      }
      s.burst = static_cast<uint32_t>(b);
      seen_burst = true;
    } else if (name == "key") {
      if (seen_key) {
        error = quoted + "key given twice";
        return false;
      }
      seen_key = true;
      if (value == "ip") {
        s.key = KeySource::kIp;
      } else if (value == "api-key") {
        s.key = KeySource::kApiKey;
      } else if (value == "jwt-sub") {
        s.key = KeySource::kJwtSub;
      } else if (value == "client-cert") {
        s.key = KeySource::kClientCert;
      } else if (value.substr(0, 7) == "header:" && is_token(value.substr(7))) {
        s.key = KeySource::kHeader;
        s.header_name = std::string(value.substr(7));
      } else {
        error = quoted + "key must be ip, api-key, jwt-sub, client-cert or header:NAME (NAME a field name)";
        return false;
      }
    } else if (name == "route") {
      if (seen_route || value.front() != '/') {
        error = quoted + (seen_route ? "route given twice" : "route must be a path prefix starting with '/'");
        return false;
      }
      seen_route = true;
      s.route = std::string(value);
    } else if (name == "scope") {
      if (seen_scope || (value != "local" && value != "cluster")) {
        error = quoted + (seen_scope ? "scope given twice" : "scope must be local or cluster");
        return false;
      }
      seen_scope = true;
      s.cluster = value == "cluster";
    } else {
      error = quoted + "unknown option '" + std::string(name) + "' (expected burst, key, route or scope)";
      return false;
    }
  }

  if (s.rate > s.unit_s * kNsPerSec) {
    error = quoted + "RATE is above one request per nanosecond";
    return false;
  }
  if (!seen_burst) s.burst = static_cast<uint32_t>(s.rate);
  if (static_cast<__uint128_t>(s.burst) * interval_ns(s) > kMaxTauNs) {
    error = quoted + "burst is too large for this rate (burst / rate must stay below 73 years)";
    return false;
  }
  out = std::move(s);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Factory

RateLimitFilterFactory::RateLimitFilterFactory(std::vector<RateLimitSpec> specs, RateLimitOptions options)
    : state_(std::make_shared<SharedState>()) {
  if (specs.size() > kMaxSpecs) specs.resize(kMaxSpecs);
  options.max_keys = std::max<uint32_t>(options.max_keys, SharedBuckets::kGroupSize);
  options.max_local_keys = std::min(std::max<uint32_t>(options.max_local_keys, SharedBuckets::kGroupSize),
                                    options.max_keys);
  if (options.lease_divisor == 0) options.lease_divisor = 1;
  state_->options = options;
  state_->seed = options.hash_seed;
  if (state_->seed == 0) {
    std::random_device rd;
    state_->seed = (static_cast<uint64_t>(rd()) << 32 | rd()) | 1;
  }
  const bool single = specs.size() == 1;
  for (size_t i = 0; i < specs.size(); ++i) {
    SpecState st;
    st.spec = std::move(specs[i]);
    const uint64_t t = interval_ns(st.spec);
    st.buckets = std::make_shared<SharedBuckets>(
        options.max_keys, BucketParams{t, st.spec.burst * t, st.spec.burst});
    st.policy_name = single ? "default" : "rl" + std::to_string(i + 1);
    st.policy_value = "\"" + st.policy_name + "\";q=" + std::to_string(st.spec.rate) +
                      ";w=" + std::to_string(st.spec.unit_s);
    st.limit_value = std::to_string(st.spec.rate);
    const char unit = st.spec.unit_s == 1 ? 's' : st.spec.unit_s == 60 ? 'm' : 'h';
    st.detail = "rate limit of " + std::to_string(st.spec.rate) + "/" + unit + " exceeded";
    if (st.spec.cluster) {
      std::string why;  // validated by build_builtin_filters(): cannot fail here
      (void)cluster_params(st.spec, st.cluster, why);
      st.pool = std::make_shared<ClusterLeasePool>(options.max_keys, core::monotonic_ns());
      st.cluster_lease = cluster_lease_size(st.spec, options.cluster_lease_ttl_ns, options.failure.instances,
                                            options.lease_divisor);
      if (st.spec.route_index != RateLimitSpec::kAnyRoute) st.scope_id = "route" + std::to_string(st.spec.route_index);
      if (options.failure.policy == FailurePolicy::kLocal) {
        const RateLimitSpec share = local_share(st.spec, options.failure.instances);
        const uint64_t ts = interval_ns(share);
        st.local_share = std::make_shared<SharedBuckets>(options.max_keys, BucketParams{ts, share.burst * ts, share.burst});
      }
    }
    state_->specs.push_back(std::move(st));
  }
}

RateLimitFilterFactory::~RateLimitFilterFactory() = default;

std::unique_ptr<Filter> RateLimitFilterFactory::create(unsigned /*worker_index*/, unsigned worker_count) const {
  return std::make_unique<RateLimitFilter>(state_, worker_count);
}

uint32_t RateLimitFilterFactory::shared_entry_count(size_t spec) const {
  return state_->specs.at(spec).buckets->entry_count();
}

uint32_t RateLimitFilterFactory::shared_capacity(size_t spec) const {
  return state_->specs.at(spec).buckets->capacity();
}

// ---------------------------------------------------------------------------------------------
// Filter

RateLimitFilter::RateLimitFilter(std::shared_ptr<SharedState> state, unsigned worker_count)
    : state_(std::move(state)) {
  const RateLimitOptions& o = state_->options;
  const uint64_t w = std::max(1u, worker_count);
  for (const SpecState& s : state_->specs) {
    WorkerLimiter::Config cfg;
    cfg.capacity = o.max_local_keys;
    cfg.lease = static_cast<uint32_t>(std::max<uint64_t>(1, s.spec.burst / (w * o.lease_divisor)));
    cfg.lease_ttl_ns = o.lease_ttl_ns;
    limiters_.push_back(std::make_unique<WorkerLimiter>(s.buckets, cfg));
    if (s.local_share) {
      WorkerLimiter::Config lc = cfg;
      lc.lease = static_cast<uint32_t>(std::max<uint64_t>(1, s.local_share->params().burst / (w * o.lease_divisor)));
      local_share_.push_back(std::make_unique<WorkerLimiter>(s.local_share, lc));
    } else {
      local_share_.push_back(nullptr);
    }
  }
}

RateLimitFilter::~RateLimitFilter() = default;

uint32_t RateLimitFilter::local_entry_count(size_t spec) const { return limiters_.at(spec)->entry_count(); }
uint32_t RateLimitFilter::local_capacity(size_t spec) const { return limiters_.at(spec)->capacity(); }
uint32_t RateLimitFilter::lease_size(size_t spec) const { return limiters_.at(spec)->lease(); }

namespace {

std::string_view key_text(const SpecState& s, const RequestContext& ctx) {
  std::string_view text;
  switch (s.spec.key) {
    case KeySource::kIp:
      text = ctx.client_ip;
      break;
    case KeySource::kApiKey:
      // The auth filter names the consumer in X-Consumer once it has checked the key; until it
      // runs (or when it is not configured) the raw X-API-Key value stands for the consumer.
      text = find_added_header(ctx.edits, "X-Consumer");
      if (text.empty()) text = find_request_header(ctx.request, "X-API-Key");
      break;
    case KeySource::kJwtSub:
      // Only what the JWT filter vouched for: a client-sent X-User-Id is not trusted.
      text = find_added_header(ctx.edits, "X-User-Id");
      break;
    case KeySource::kHeader:
      text = find_request_header(ctx.request, s.spec.header_name);
      break;
    case KeySource::kClientCert:
      text = ctx.peer_subject;  // what the handshake verified, never a request header
      break;
  }
  return text;
}

uint64_t key_of(const SpecState& s, const RequestContext& ctx, uint64_t seed) {
  const std::string_view text = key_text(s, ctx);
  return text.empty() ? kAnonymousKey : hash_key(text, seed);
}

void add_reply_header(LocalReply& r, std::string_view name, std::string_view value) {
  if (value.empty() || r.header_count == LocalReply::kMaxHeaders) return;
  r.headers[r.header_count++] = http::Header{name, value};
}

void add_response_header(RequestContext& ctx, std::string_view name, std::string_view value) {
  if (value.empty() || ctx.response_header_count == RequestContext::kMaxResponseHeaders) return;
  ctx.response_headers[ctx.response_header_count++] = http::Header{name, value};
}

// Appends the style's fields for `s` with `remaining` and `reset_s` through `add`.
template <typename Keep, typename Add>
void emit_fields(Keep keep, const SpecState& s, HeaderStyle style, uint64_t remaining,
                 uint64_t reset_s, Add add) {
  if (style == HeaderStyle::kDraft) {
    add("RateLimit-Policy", std::string_view(s.policy_value));
    ValueBuf v;
    v.put("\"");
    v.put(std::string_view(s.policy_name));
    v.put("\";r=");
    v.put(remaining);
    v.put(";t=");
    v.put(reset_s);
    add("RateLimit", keep(v.view()));
  } else {
    add("X-RateLimit-Limit", std::string_view(s.limit_value));
    ValueBuf r, t;
    r.put(remaining);
    t.put(reset_s);
    add("X-RateLimit-Remaining", keep(r.view()));
    add("X-RateLimit-Reset", keep(t.view()));
  }
}

}  // namespace

namespace {

// A 429's fields, as for every limit (local or cluster): Retry-After and the style's fields.
template <typename Keep>
void fill_reject(LocalReply& reply, const SpecState& s, HeaderStyle style, uint64_t wait_ns, Keep keep) {
  // RFC 9110 10.2.3: delay-seconds is an integer; rounding up keeps the promise that a retry
  // after it finds a token (RFC 6585 section 4 for 429 itself).
  const uint64_t secs = std::max<uint64_t>(1, ceil_seconds(wait_ns));
  reply.status = 429;
  reply.detail = s.detail;
  reply.header_count = 0;
  ValueBuf ra;
  ra.put(secs);
  add_reply_header(reply, "Retry-After", keep(ra.view()));
  emit_fields(keep, s, style, 0, secs, [&](std::string_view n, std::string_view v) { add_reply_header(reply, n, v); });
}

void count(LeaseChannel* ch, std::atomic<uint64_t> RedisStats::*field) {
  if (ch != nullptr) RedisStats::add(ch->stats().*field);
}

}  // namespace

RateLimitFilter::Outcome RateLimitFilter::evaluate(const std::vector<Applied>& applied, size_t n, uint64_t now,
                                                   bool info, bool redis_failed) {
  const SharedState& st = *state_;
  struct Got {
    WorkerLimiter* limiter;
    uint32_t entry;
  };
  Got got[RateLimitFilterFactory::kMaxSpecs];  // local admissions, refunded if the request is not admitted
  size_t got_count = 0;
  Outcome o;
  int rejected = -1;
  int wait_at = -1;
  auto reject = [&](uint32_t spec, uint64_t wait_ns) {
    if (rejected < 0 || wait_ns > o.wait_ns) {
      rejected = static_cast<int>(spec);
      o.wait_ns = wait_ns;
    }
  };
  auto admit = [&](uint32_t spec, uint64_t remaining, uint64_t reset_ns) {
    if (o.best < 0 || remaining < o.remaining) {
      o.best = static_cast<int32_t>(spec);
      o.remaining = remaining;
      o.reset_ns = reset_ns;
    }
  };
  auto acquire = [&](WorkerLimiter& l, uint32_t spec, uint64_t key) {
    const Decision d = l.acquire(key, now, info);
    if (d.admitted) {
      got[got_count++] = Got{&l, d.entry};
      admit(spec, d.remaining, d.reset_ns);
    } else {
      reject(spec, d.reset_ns);
    }
  };
  for (size_t j = 0; j < n; ++j) {
    const Applied& a = applied[j];
    const SpecState& s = st.specs[a.spec];
    if (!s.spec.cluster) {
      acquire(*limiters_[a.spec], a.spec, a.key);
      continue;
    }
    if (a.granted) {  // Redis granted this request a token of its own (below: no pool slot)
      admit(a.spec, 0, s.cluster.interval_ns);
      continue;
    }
    // Leased tokens first, whatever Redis' state; then a denial Redis gave; then wait for a lease
    // while Redis answers, or the policy when it does not (decide(), cluster_lease.h).
    ClusterLeasePool& pool = *s.pool;
    const uint32_t slot = pool.find_or_insert(a.key, now);
    const bool have_slot = slot != ClusterLeasePool::kNoSlot;
    const bool drew = have_slot && pool.draw(slot, a.key, now) > 0;
    const uint64_t denied_until = have_slot ? pool.denied_until(slot, a.key) : 0;
    // No free slot in the key's group (only under a flood of distinct keys): no pool to lease
    // into, so the request waits for one token of its own (park()).
    const bool up = !redis_failed && channel_ != nullptr && channel_->up(now);
    switch (decide(drew, denied_until > now, up ? RedisState::kUp : RedisState::kDown, st.options.failure.policy)) {
      case ClusterVerdict::kAdmit:
        admit(a.spec, pool.tokens(slot, a.key, now), s.cluster.interval_ns);
        break;
      case ClusterVerdict::kReject:
        if (denied_until > now) {
          count(channel_, &RedisStats::denied);
          reject(a.spec, denied_until - now);
        } else {
          count(channel_, &RedisStats::policy_deny);
          reject(a.spec, st.options.cluster_lease_ttl_ns);
        }
        break;
      case ClusterVerdict::kWait:
        if (wait_at < 0) wait_at = static_cast<int>(j);
        break;
      case ClusterVerdict::kAdmitLocal:
        count(channel_, &RedisStats::policy_local);
        acquire(*local_share_[a.spec], a.spec, a.key);
        break;
      case ClusterVerdict::kAdmitFree:
        count(channel_, &RedisStats::policy_allow);
        break;
    }
  }
  if (rejected >= 0 || wait_at >= 0) {
    // Rejected or waiting requests consume no local quota. (A cluster token drawn for another
    // spec of the same request is not returned: that only under-admits, by one.)
    for (size_t j = 0; j < got_count; ++j) got[j].limiter->refund(got[j].entry);
    if (rejected >= 0) {
      o.kind = Outcome::kReject;
      o.at = static_cast<uint32_t>(rejected);
    } else {
      o.kind = Outcome::kWait;
      o.at = static_cast<uint32_t>(wait_at);
    }
  }
  return o;
}

bool RateLimitFilter::ask(uint32_t spec, uint64_t key, const std::string& redis_key, uint32_t want, bool refill,
                          uint64_t now, Waiter* direct) {
  if (channel_ == nullptr) return false;
  const SpecState& s = state_->specs[spec];
  const uint64_t tag = next_tag_++;
  if (!channel_->take(this, tag, redis_key, s.cluster.interval_ns, s.cluster.tau_ns, want, now)) return false;
  Asked& a = asked_.emplace(tag, Asked{spec, key, redis_key, refill, {}}).first->second;
  if (direct != nullptr) {
    a.direct.push_back(std::move(*direct));
  } else {
    ++pending_[pending_key(spec, key)].inflight;
  }
  return true;
}

// A token Redis granted to one waiter whose key had no pool slot: spent by it at once.
void RateLimitFilter::on_direct(Waiter w, uint32_t spec, const LeaseAnswer& ans) {
  const uint64_t now = ans.now_ns;
  Outcome o;
  if (ans.ok && ans.count == 0) {
    o.kind = Outcome::kReject;
    o.at = spec;
    o.wait_ns = ans.retry_ns;
    count(channel_, &RedisStats::denied);
    resolve(w, o);
    return;
  }
  const bool failed = !ans.ok && !(ans.lost && channel_ != nullptr && channel_->up(now));
  if (ans.ok) {
    for (Applied& a : w.applied) {
      if (a.spec == spec) a.granted = true;
    }
    // More than one token is never asked for; anything beyond the first is not used.
  }
  o = evaluate(w.applied, w.applied.size(), now, false, failed);
  if (o.kind == Outcome::kWait) {
    if (park(w, o.at, now)) return;
    o = evaluate(w.applied, w.applied.size(), now, false, true);
  }
  resolve(w, o);
}

bool RateLimitFilter::park(Waiter& w, uint32_t at, uint64_t now) {
  const Applied& a = w.applied[at];
  const SpecState& s = state_->specs[a.spec];
  Pending& p = pending_[pending_key(a.spec, a.key)];
  if (s.pool->find_or_insert(a.key, now) == ClusterLeasePool::kNoSlot) {
    if (p.waiters.empty() && p.inflight == 0) pending_.erase(pending_key(a.spec, a.key));
    const uint32_t spec = a.spec;
    const uint64_t key = a.key;
    const std::string redis_key = a.redis_key;
    return ask(spec, key, redis_key, 1, false, now, &w);
  }
  if (p.inflight == 0) {
    ClusterLeasePool& pool = *s.pool;
    const uint32_t slot = pool.find_or_insert(a.key, now);
    // An expired lease's leftover goes back now (Redis refuses it if that could over-credit).
    uint64_t stamp = 0;
    const uint32_t left = pool.take_leftover(slot, a.key, now, false, &stamp);
    if (left > 0 && channel_ != nullptr) {
      channel_->give(a.redis_key, s.cluster.interval_ns, s.cluster.tau_ns, stamp, left, now);
    }
    // The process's one refill of this key, if nobody holds it: a whole lease for the pool.
    // Otherwise just what this worker's waiters need, so stranded tokens stay bounded.
    const bool refill = pool.begin_refill(slot, a.key, now, state_->options.cluster_lease_ttl_ns);
    const uint32_t want =
        refill ? s.cluster_lease : std::min<uint32_t>(s.cluster_lease, static_cast<uint32_t>(p.waiters.size() + 1));
    if (!ask(a.spec, a.key, a.redis_key, want, refill, now)) {
      if (refill) pool.end_refill(slot, a.key);
      if (p.waiters.empty() && p.inflight == 0) pending_.erase(pending_key(a.spec, a.key));
      return false;
    }
  }
  pending_[pending_key(a.spec, a.key)].waiters.push_back(std::move(w));
  return true;
}

void RateLimitFilter::resolve(const Waiter& w, const Outcome& o) {
  if (o.kind == Outcome::kAdmit) {
    w.resumer.resume(Verdict::kContinue);
    return;
  }
  LocalReply reply;
  reply_used_ = 0;
  auto keep = [this](std::string_view v) -> std::string_view {
    if (v.size() > sizeof(reply_buf_) - reply_used_) return {};
    char* at = reply_buf_ + reply_used_;
    std::copy(v.begin(), v.end(), at);
    reply_used_ += v.size();
    return {at, v.size()};
  };
  fill_reject(reply, state_->specs[o.at], state_->options.style, o.wait_ns, keep);
  w.resumer.resume(Verdict::kRespond, &reply);
}

void RateLimitFilter::on_lease(const LeaseAnswer& ans) {
  const auto it = asked_.find(ans.tag);
  if (it == asked_.end()) return;
  Asked a = std::move(it->second);
  asked_.erase(it);
  if (!a.direct.empty()) {
    on_direct(std::move(a.direct.front()), a.spec, ans);
    return;
  }
  const SpecState& s = state_->specs[a.spec];
  ClusterLeasePool& pool = *s.pool;
  const uint64_t now = ans.now_ns;
  const uint32_t slot = pool.find_or_insert(a.key, now);
  bool installed = true;
  if (ans.ok && ans.count > 0) {
    installed = pool.install(slot, a.key, ans.count, ans.queued_ns, state_->options.cluster_lease_ttl_ns, ans.stamp, now);
    if (!installed && channel_ != nullptr) {
      channel_->give(a.redis_key, s.cluster.interval_ns, s.cluster.tau_ns, ans.stamp, ans.count, now);
    }
  } else if (ans.ok && slot != ClusterLeasePool::kNoSlot) {
    // Empty: nobody in this process asks again before a whole lease has refilled (the first
    // token comes after retry_ns, the next L-1 one interval apart). Rejections meanwhile cost
    // Redis nothing, and the tokens wait in Redis' bucket for whoever asks first.
    const uint64_t more = static_cast<uint64_t>(s.cluster_lease - 1) * s.cluster.interval_ns;
    pool.set_denied_until(slot, a.key, now + ans.retry_ns + more);
  }
  if (a.refill) pool.end_refill(slot, a.key);

  const uint64_t pk = pending_key(a.spec, a.key);
  auto pit = pending_.find(pk);
  if (pit == pending_.end()) return;
  if (pit->second.inflight > 0) --pit->second.inflight;
  // A lost connection that is already being remade: the waiters ask again (bounded by the
  // channel's timeout). Any other failure: the policy decides now.
  // A lease that could not be kept (its slot changed owner) was given back: the policy decides
  // these waiters rather than asking again at once, which could repeat without end.
  const bool failed = (!ans.ok && !(ans.lost && channel_ != nullptr && channel_->up(now))) || !installed;
  std::vector<Waiter> waiters = std::move(pit->second.waiters);
  pit->second.waiters.clear();
  for (Waiter& w : waiters) {
    Outcome o = evaluate(w.applied, w.applied.size(), now, false, failed);
    if (o.kind == Outcome::kWait) {
      if (park(w, o.at, now)) continue;
      o = evaluate(w.applied, w.applied.size(), now, false, true);
    }
    resolve(w, o);
  }
  pit = pending_.find(pk);
  if (pit != pending_.end() && pit->second.waiters.empty() && pit->second.inflight == 0) pending_.erase(pit);
}

Verdict RateLimitFilter::on_request(RequestContext& ctx) {
  const SharedState& st = *state_;
  const bool info = st.options.headers_on_allowed;
  std::vector<Applied>& applied = scratch_applied_;
  size_t n = 0;
  for (uint32_t i = 0; i < st.specs.size(); ++i) {
    const SpecState& s = st.specs[i];
    if (!route_applies(s.spec.route, ctx.request.path)) continue;
    if (s.spec.route_index != RateLimitSpec::kAnyRoute && s.spec.route_index != ctx.match.route_index) continue;
    if (applied.size() <= n) applied.emplace_back();
    applied[n].spec = i;
    applied[n].key = key_of(s, ctx, st.seed);
    ++n;
  }
  if (n == 0) return Verdict::kContinue;
  Outcome o = evaluate(applied, n, ctx.now_ns, info, false);

  if (o.kind == Outcome::kWait) {
    Waiter w;
    w.resumer = ctx.resumer;
    w.applied.assign(applied.begin(), applied.begin() + static_cast<std::ptrdiff_t>(n));
    for (Applied& a : w.applied) {
      const SpecState& s = st.specs[a.spec];
      if (s.spec.cluster) a.redis_key = cluster_bucket_key(s.spec, s.scope_id, key_text(s, ctx));
    }
    if (park(w, o.at, ctx.now_ns)) {
      count(channel_, &RedisStats::waited);
      return Verdict::kPause;
    }
    o = evaluate(applied, n, ctx.now_ns, info, true);
  }

  if (o.kind == Outcome::kReject) {
    fill_reject(ctx.reply, st.specs[o.at], st.options.style, o.wait_ns,
                [&ctx](std::string_view v) { return ctx.keep(v); });
    return Verdict::kRespond;
  }

  // Admitted. A cluster lease running low is renewed now, ahead of need, so the requests after
  // this one find tokens without waiting (one request per process in flight: begin_refill()).
  for (size_t j = 0; j < n; ++j) {
    const SpecState& s = st.specs[applied[j].spec];
    if (!s.spec.cluster || channel_ == nullptr) continue;
    ClusterLeasePool& pool = *s.pool;
    const uint64_t key = applied[j].key;
    const uint32_t slot = pool.find_or_insert(key, ctx.now_ns);
    if (slot == ClusterLeasePool::kNoSlot || pool.tokens(slot, key, ctx.now_ns) > s.cluster_lease / 2) continue;
    if (pool.denied_until(slot, key) > ctx.now_ns || !channel_->up(ctx.now_ns)) continue;
    if (!pool.begin_refill(slot, key, ctx.now_ns, st.options.cluster_lease_ttl_ns)) continue;
    if (!ask(applied[j].spec, key, cluster_bucket_key(s.spec, s.scope_id, key_text(s, ctx)), s.cluster_lease, true,
             ctx.now_ns)) {
      pool.end_refill(slot, key);
    }
  }

  if (info && o.best >= 0) {
    emit_fields([&ctx](std::string_view v) { return ctx.keep(v); }, st.specs[static_cast<size_t>(o.best)],
                st.options.style, o.remaining, ceil_seconds(o.reset_ns),
                [&](std::string_view nm, std::string_view v) { add_response_header(ctx, nm, v); });
  }
  return Verdict::kContinue;
}

}  // namespace ringway::filter::rate_limit
