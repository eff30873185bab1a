#include "filter/rate_limit/rate_limit.h"

#include <algorithm>
#include <charconv>
#include <random>

#include "filter/rate_limit/token_pool.h"
#include "ringway/core/ascii.h"

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
  }
}

RateLimitFilter::~RateLimitFilter() = default;

uint32_t RateLimitFilter::local_entry_count(size_t spec) const { return limiters_.at(spec)->entry_count(); }
uint32_t RateLimitFilter::local_capacity(size_t spec) const { return limiters_.at(spec)->capacity(); }
uint32_t RateLimitFilter::lease_size(size_t spec) const { return limiters_.at(spec)->lease(); }

namespace {

uint64_t key_of(const SpecState& s, const RequestContext& ctx, uint64_t seed) {
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
template <typename Add>
void emit_fields(RequestContext& ctx, const SpecState& s, HeaderStyle style, uint64_t remaining,
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
    add("RateLimit", ctx.keep(v.view()));
  } else {
    add("X-RateLimit-Limit", std::string_view(s.limit_value));
    ValueBuf r, t;
    r.put(remaining);
    t.put(reset_s);
    add("X-RateLimit-Remaining", ctx.keep(r.view()));
    add("X-RateLimit-Reset", ctx.keep(t.view()));
  }
}

}  // namespace

Verdict RateLimitFilter::on_request(RequestContext& ctx) {
  const SharedState& st = *state_;
  const bool info = st.options.headers_on_allowed;
  // Left uninitialized on purpose: only the first admitted_count entries are ever read.
  struct Hit {
    uint32_t spec;
    uint32_t entry;
    uint64_t remaining;
    uint64_t reset_ns;
  };
  Hit admitted[RateLimitFilterFactory::kMaxSpecs];
  size_t admitted_count = 0;
  int rejected = -1;
  uint64_t worst_wait = 0;

  for (uint32_t i = 0; i < st.specs.size(); ++i) {
    const SpecState& s = st.specs[i];
    if (!route_applies(s.spec.route, ctx.request.path)) continue;
    if (s.spec.route_index != RateLimitSpec::kAnyRoute && s.spec.route_index != ctx.match.route_index) continue;
    const Decision d = limiters_[i]->acquire(key_of(s, ctx, st.seed), ctx.now_ns, info);
    if (d.admitted) {
      admitted[admitted_count++] = Hit{i, d.entry, d.remaining, d.reset_ns};
    } else if (rejected < 0 || d.reset_ns > worst_wait) {
      rejected = static_cast<int>(i);
      worst_wait = d.reset_ns;
    }
  }

  if (rejected >= 0) {
    // Rejected requests consume no quota: give back what the other specs granted.
    for (size_t j = 0; j < admitted_count; ++j) limiters_[admitted[j].spec]->refund(admitted[j].entry);
    const SpecState& s = st.specs[static_cast<size_t>(rejected)];
    // RFC 9110 10.2.3: delay-seconds is an integer; rounding up keeps the promise that a retry
    // after it finds a token (RFC 6585 section 4 for 429 itself).
    const uint64_t secs = std::max<uint64_t>(1, ceil_seconds(worst_wait));
    ctx.reply.status = 429;
    ctx.reply.detail = s.detail;
    ctx.reply.header_count = 0;
    ValueBuf ra;
    ra.put(secs);
    add_reply_header(ctx.reply, "Retry-After", ctx.keep(ra.view()));
    emit_fields(ctx, s, st.options.style, 0, secs,
                [&](std::string_view n, std::string_view v) { add_reply_header(ctx.reply, n, v); });
    return Verdict::kRespond;
  }

  if (info && admitted_count > 0) {
    const Hit* best = &admitted[0];
    for (size_t j = 1; j < admitted_count; ++j) {
      if (admitted[j].remaining < best->remaining) best = &admitted[j];
    }
    emit_fields(ctx, st.specs[best->spec], st.options.style, best->remaining,
                ceil_seconds(best->reset_ns),
                [&](std::string_view n, std::string_view v) { add_response_header(ctx, n, v); });
  }
  return Verdict::kContinue;
}

}  // namespace ringway::filter::rate_limit
