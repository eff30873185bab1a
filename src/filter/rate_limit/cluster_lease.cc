#include "filter/rate_limit/cluster_lease.h"

#include <hiredis.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "filter/rate_limit/rate_limit.h"

namespace ringway::filter::rate_limit {

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;
constexpr uint64_t kNsPerMs = 1'000'000ull;
constexpr uint64_t kMaxScriptNs = 1ull << 53;  // Lua numbers are exact integers below this
constexpr uint64_t kTokenMask = (1ull << 24) - 1;

// The reply is {count, retry_ns, remaining, full_in_ns, stamp}; see the header for the
// arithmetic. Numbers written back go through '%.0f': Lua's default tostring keeps 14 digits,
// and a microsecond timestamp has 16.
constexpr std::string_view kScript = R"lua(-- ringway cluster rate limit lease (src/filter/rate_limit/cluster_lease.h)
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local t = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local st = redis.call('HMGET', key, 'e', 'd', 's', 'g')
local rel = 0
local stamp = now
local known = st[1] and st[2] and st[3] and st[4]
if known then
  rel = tonumber(st[2]) - (now - tonumber(st[1])) * 1000
  if rel < 0 then rel = 0 end
  stamp = math.max(tonumber(st[3]) + 1, now)
end
local function avail()
  local n = math.floor((tau - rel) / t)
  if n < 0 then n = 0 end
  while n > 0 and n * t > tau - rel do n = n - 1 end
  return n
end
local function retry(left)
  if left > 0 then return 0 end
  return rel + t - tau
end
local function store(g)
  if rel <= 0 then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 'e', string.format('%.0f', now), 'd', string.format('%.0f', rel),
             's', string.format('%.0f', stamp), 'g', string.format('%.0f', g))
  redis.call('PEXPIRE', key, math.ceil(rel / 1000000) + 1)
end
if ARGV[1] == 'take' then
  local have = avail()
  local n = math.min(tonumber(ARGV[4]), have)
  if n <= 0 then return {0, retry(0), 0, rel, 0} end
  rel = rel + n * t
  store(n)
  return {n, retry(have - n), have - n, rel, stamp}
elseif ARGV[1] == 'give' then
  local n = tonumber(ARGV[5])
  if not known or tonumber(st[3]) ~= tonumber(ARGV[4]) or n <= 0 or n > tonumber(st[4]) then
    local have = avail()
    return {0, retry(have), have, rel, 0}
  end
  rel = rel - n * t
  if rel < 0 then rel = 0 end
  store(0)
  local have = avail()
  return {n, retry(have), have, rel, 0}
end
return redis.error_reply('ERR ringway lease script: unknown op')
)lua";

std::string sha1_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::string hex;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr) != 1) return hex;
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    hex += kDigits[md[i] >> 4];
    hex += kDigits[md[i] & 15];
  }
  return hex;
}

std::string format_command(std::initializer_list<std::string_view> args) {
  const char* argv[10];
  size_t lens[10];
  int argc = 0;
  for (std::string_view a : args) {
    argv[argc] = a.data();
    lens[argc++] = a.size();
  }
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
  std::string out;
  if (n > 0 && cmd != nullptr) out.assign(cmd, static_cast<size_t>(n));
  redisFreeCommand(cmd);
  return out;
}

struct Num {
  char buf[24];
  size_t len;
  explicit Num(uint64_t v) { len = static_cast<size_t>(std::to_chars(buf, buf + sizeof(buf), v).ptr - buf); }
  std::string_view view() const { return {buf, len}; }
};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Redis error replies start with an upper-case code (RESP "Simple Errors"); a script's call that
// fails keeps the callee's code in Redis 7.
RedisErrorKind classify(std::string_view msg, LeaseOp op) {
  if (starts_with(msg, "NOSCRIPT")) return RedisErrorKind::kNoScript;
  if (starts_with(msg, "NOAUTH") || starts_with(msg, "WRONGPASS") || op == LeaseOp::kAuth) {
    return RedisErrorKind::kAuth;
  }
  if (starts_with(msg, "LOADING")) return RedisErrorKind::kLoading;
  if (starts_with(msg, "BUSY")) return RedisErrorKind::kBusy;
  if (starts_with(msg, "READONLY")) return RedisErrorKind::kReadOnly;
  if (starts_with(msg, "OOM")) return RedisErrorKind::kOutOfMemory;
  if (starts_with(msg, "WRONGTYPE")) return RedisErrorKind::kWrongType;
  if (starts_with(msg, "ERR") && msg.find("script") != std::string_view::npos) return RedisErrorKind::kScript;
  return RedisErrorKind::kOther;
}

bool as_uint(const redisReply* r, uint64_t& out) {
  if (r == nullptr || r->type != REDIS_REPLY_INTEGER || r->integer < 0) return false;
  out = static_cast<uint64_t>(r->integer);
  return true;
}

}  // namespace

std::string_view lease_script() { return kScript; }

const std::string& lease_script_sha1() {
  static const std::string sha = sha1_hex(kScript);
  return sha;
}

const char* error_kind_name(RedisErrorKind k) {
  switch (k) {
    case RedisErrorKind::kNone: return "none";
    case RedisErrorKind::kAuth: return "auth";
    case RedisErrorKind::kNoScript: return "noscript";
    case RedisErrorKind::kLoading: return "loading";
    case RedisErrorKind::kBusy: return "busy";
    case RedisErrorKind::kReadOnly: return "readonly";
    case RedisErrorKind::kOutOfMemory: return "oom";
    case RedisErrorKind::kWrongType: return "wrongtype";
    case RedisErrorKind::kScript: return "script";
    case RedisErrorKind::kProtocol: return "protocol";
    case RedisErrorKind::kDisconnected: return "disconnected";
    case RedisErrorKind::kOther: return "other";
  }
  return "other";
}

bool cluster_params(const RateLimitSpec& spec, BucketParams& out, std::string& error) {
  const uint64_t unit_ns = spec.unit_s * kNsPerSec;
  const uint64_t t = spec.rate == 0 ? 0 : (unit_ns + spec.rate - 1) / spec.rate;
  const __uint128_t tau = static_cast<__uint128_t>(spec.burst) * t;
  if (t == 0 || spec.burst == 0 || tau >= kMaxScriptNs) {
    error = "scope=cluster: burst / rate must stay below 104 days";
    return false;
  }
  out = BucketParams{t, static_cast<uint64_t>(tau), spec.burst};
  return true;
}

std::string cluster_bucket_key(const RateLimitSpec& spec, std::string_view scope_id,
                               std::string_view key_text) {
  // The limit's identity, not its position in a config: two gateways with the same spec share
  // the bucket; a changed rate or burst starts a fresh one rather than reading a TAT computed
  // with another T.
  std::string k = "rw:rl:";
  k += std::to_string(spec.rate);
  k += spec.unit_s == 1 ? "/s" : spec.unit_s == 60 ? "/m" : "/h";
  k += ",b=" + std::to_string(spec.burst);
  switch (spec.key) {
    case KeySource::kIp: k += ",ip"; break;
    case KeySource::kApiKey: k += ",api-key"; break;
    case KeySource::kJwtSub: k += ",jwt-sub"; break;
    case KeySource::kClientCert: k += ",client-cert"; break;
    case KeySource::kHeader: k += ",h=" + spec.header_name; break;
  }
  if (!spec.route.empty()) k += ",r=" + spec.route;
  if (!scope_id.empty()) k += ",s=" + std::string(scope_id);
  k += ':';
  k += key_text;
  return k;
}

// ---------------------------------------------------------------------------------------------
// RedisLeaseCodec

RedisLeaseCodec::RedisLeaseCodec(Options options) : options_(std::move(options)), reader_(redisReaderCreate()) {}

RedisLeaseCodec::~RedisLeaseCodec() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void RedisLeaseCodec::send(Request r) {
  r.seq = next_seq_++;
  out_ += r.command;
  if (r.op == LeaseOp::kLoadScript) last_load_seq_ = r.seq;
  inflight_.push_back(std::move(r));
}

void RedisLeaseCodec::queue_load(uint64_t now_ns) {
  Request r;
  r.id = next_id_++;
  r.op = LeaseOp::kLoadScript;
  r.queued_ns = now_ns;
  r.command = format_command({"SCRIPT", "LOAD", kScript});
  ++script_loads_;
  send(std::move(r));
}

void RedisLeaseCodec::connected(uint64_t now_ns) {
  // Requests queued while the connection was being made stay, behind the setup commands: the
  // stream is rebuilt with AUTH, SELECT and SCRIPT LOAD first (nothing has been written yet).
  std::deque<Request> queued;
  queued.swap(inflight_);
  out_.clear();
  out_pos_ = 0;
  last_load_seq_ = 0;
  if (!options_.password.empty()) {
    Request r;
    r.id = next_id_++;
    r.op = LeaseOp::kAuth;
    r.queued_ns = now_ns;
    r.command = format_command({"AUTH", options_.password});
    send(std::move(r));
  }
  if (options_.database != 0) {
    Request r;
    r.id = next_id_++;
    r.op = LeaseOp::kSelect;
    r.queued_ns = now_ns;
    r.command = format_command({"SELECT", Num(options_.database).view()});
    send(std::move(r));
  }
  queue_load(now_ns);
  for (Request& r : queued) {
    if (r.op != LeaseOp::kTake && r.op != LeaseOp::kGive) continue;  // setup of a connection that never came up
    send(std::move(r));
  }
}

void RedisLeaseCodec::disconnected() {
  for (Request& r : inflight_) {
    LeaseReply rep;
    rep.id = r.id;
    rep.op = r.op;
    rep.error = RedisErrorKind::kDisconnected;
    rep.message = "connection to Redis lost";
    done_.push_back(std::move(rep));
  }
  inflight_.clear();
  out_.clear();
  out_pos_ = 0;
  last_load_seq_ = 0;
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
}

uint64_t RedisLeaseCodec::queue_eval(LeaseOp op, std::string_view key, const BucketParams& p, uint64_t a,
                                     uint64_t b, uint64_t now_ns) {
  Request r;
  r.id = next_id_++;
  r.op = op;
  r.queued_ns = now_ns;
  const Num t(p.interval_ns), tau(p.tau_ns), na(a), nb(b);
  if (op == LeaseOp::kTake) {
    r.command = format_command({"EVALSHA", lease_script_sha1(), "1", key, "take", t.view(), tau.view(), na.view()});
  } else {
    r.command = format_command(
        {"EVALSHA", lease_script_sha1(), "1", key, "give", t.view(), tau.view(), na.view(), nb.view()});
  }
  const uint64_t id = r.id;
  send(std::move(r));
  return id;
}

uint64_t RedisLeaseCodec::queue_take(std::string_view key, const BucketParams& params, uint32_t want,
                                     uint64_t now_ns) {
  want = std::clamp<uint32_t>(want, 1, ClusterLeasePool::kMaxLease);
  return queue_eval(LeaseOp::kTake, key, params, want, 0, now_ns);
}

uint64_t RedisLeaseCodec::queue_give(std::string_view key, const BucketParams& params, uint64_t stamp,
                                     uint32_t n, uint64_t now_ns) {
  return queue_eval(LeaseOp::kGive, key, params, stamp, n, now_ns);
}

void RedisLeaseCodec::consume_output(size_t n) {
  out_pos_ = std::min(out_.size(), out_pos_ + n);
  // Compact once everything written so far is gone, or the dead prefix dominates: the buffer
  // never holds more than the commands not yet written.
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ > 4096 && out_pos_ * 2 > out_.size()) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
}

bool RedisLeaseCodec::feed(const char* data, size_t len) {
  if (reader_ == nullptr || reader_->err != 0) return false;
  if (len > 0 && redisReaderFeed(reader_, data, len) != REDIS_OK) return false;
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) return false;
    if (reply == nullptr) return true;
    if (inflight_.empty()) {
      // A reply nobody asked for: the stream is out of step, nothing after it can be trusted.
      freeReplyObject(reply);
      return false;
    }
    Request r = std::move(inflight_.front());
    inflight_.pop_front();
    complete(r, reply);
    freeReplyObject(reply);
  }
}

void RedisLeaseCodec::complete(Request& r, void* raw) {
  const redisReply* reply = static_cast<const redisReply*>(raw);
  LeaseReply rep;
  rep.id = r.id;
  rep.op = r.op;
  if (reply->type == REDIS_REPLY_ERROR) {
    rep.message.assign(reply->str, reply->len);
    rep.error = classify(rep.message, r.op);
    if (rep.error == RedisErrorKind::kNoScript && (r.op == LeaseOp::kTake || r.op == LeaseOp::kGive) &&
        r.retries < kMaxScriptRetries) {
      // Redis lost the script (restart, SCRIPT FLUSH, failover to a replica that never saw it).
      // The request did not run: load the script again unless a load already follows this
      // request in the stream, then resend it unchanged.
      if (r.seq > last_load_seq_) queue_load(r.queued_ns);
      ++r.retries;
      send(std::move(r));
      return;
    }
    done_.push_back(std::move(rep));
    return;
  }
  switch (r.op) {
    case LeaseOp::kAuth:
    case LeaseOp::kSelect:
      if (reply->type != REDIS_REPLY_STATUS) rep.error = RedisErrorKind::kProtocol;
      break;
    case LeaseOp::kLoadScript:
      // SCRIPT LOAD answers the SHA-1 it stored: anything else means we would EVALSHA a name
      // that is not our script.
      if (reply->type != REDIS_REPLY_STRING ||
          std::string_view(reply->str, reply->len) != lease_script_sha1()) {
        rep.error = RedisErrorKind::kProtocol;
        rep.message = "SCRIPT LOAD did not return the script's SHA-1";
      }
      break;
    case LeaseOp::kTake:
    case LeaseOp::kGive: {
      uint64_t count = 0;
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5 || !as_uint(reply->element[0], count) ||
          count > ClusterLeasePool::kMaxLease || !as_uint(reply->element[1], rep.retry_ns) ||
          !as_uint(reply->element[2], rep.remaining) || !as_uint(reply->element[3], rep.full_in_ns) ||
          !as_uint(reply->element[4], rep.stamp)) {
        rep = LeaseReply{};
        rep.id = r.id;
        rep.op = r.op;
        rep.error = RedisErrorKind::kProtocol;
        rep.message = "unexpected reply to the lease script";
        break;
      }
      rep.count = static_cast<uint32_t>(count);
      break;
    }
  }
  done_.push_back(std::move(rep));
}

bool RedisLeaseCodec::next_reply(LeaseReply& out) {
  if (done_.empty()) return false;
  out = std::move(done_.front());
  done_.pop_front();
  return true;
}

// ---------------------------------------------------------------------------------------------
// ClusterLeasePool

namespace {

inline uint32_t reduce(uint64_t h, uint32_t n) {
  return static_cast<uint32_t>((static_cast<__uint128_t>(h) * n) >> 64);
}
inline uint64_t tokens_of(uint64_t w) { return w & kTokenMask; }
inline uint64_t deadline_of(uint64_t w) { return w >> 24; }
// Live: tokens left and now before the deadline (both in whole ms, deadline rounded down, so
// a lease never outlives its TTL).


}  // namespace

uint64_t ClusterLeasePool::ms_of(uint64_t ns) const { return (ns > epoch_ns_ ? ns - epoch_ns_ : 0) / kNsPerMs; }
bool ClusterLeasePool::live(uint64_t w, uint64_t now_ns) const {
  return tokens_of(w) > 0 && ms_of(now_ns) < deadline_of(w);
}

ClusterLeasePool::ClusterLeasePool(uint32_t capacity, uint64_t epoch_ns)
    : epoch_ns_(epoch_ns),
      group_count_(std::max<uint32_t>(1, (capacity + kGroupSize - 1) / kGroupSize)),
      slots_(new Slot[static_cast<size_t>(group_count_) * kGroupSize]) {}

uint32_t ClusterLeasePool::find_or_insert(uint64_t key, uint64_t now_ns) {
  const uint32_t first = reduce(key, group_count_) * kGroupSize;
  for (uint32_t i = first; i < first + kGroupSize; ++i) {
    if (slots_[i].key.load(std::memory_order_acquire) == key) return i;
  }
  uint32_t claimed = kNoSlot;
  for (uint32_t i = first; i < first + kGroupSize && claimed == kNoSlot; ++i) {
    Slot& s = slots_[i];
    uint64_t old = s.key.load(std::memory_order_acquire);
    // Free: never used, or nothing live in it and no refill in flight. An expired lease's
    // leftover is simply dropped here (it could not be spent any more; waste, not excess).
    if (old != 0 && (live(s.word.load(std::memory_order_acquire), now_ns) ||
                     s.refill_since.load(std::memory_order_acquire) != 0)) {
      continue;
    }
    if (s.key.compare_exchange_strong(old, key, std::memory_order_seq_cst)) {
      // A refill the old key began after the check above installs nothing (install checks the
      // key): its marker goes too, or it would hold off the new key's first refill.
      s.word.store(0, std::memory_order_release);
      s.denied_until.store(0, std::memory_order_release);
      s.stamp.store(0, std::memory_order_release);
      s.refill_since.store(0, std::memory_order_release);
      claimed = i;
    }
  }
  if (claimed == kNoSlot) return kNoSlot;
  // Two workers may claim two slots for one new key at once; the lowest wins (as in
  // SharedBuckets::find_or_insert), the other lets go before anything was installed in it.
  for (uint32_t i = first; i < claimed; ++i) {
    if (slots_[i].key.load(std::memory_order_seq_cst) == key) {
      uint64_t mine = key;
      slots_[claimed].key.compare_exchange_strong(mine, 0, std::memory_order_seq_cst);
      return i;
    }
  }
  return claimed;
}

uint32_t ClusterLeasePool::draw(uint32_t slot, uint64_t key, uint64_t now_ns, uint32_t want) {
  if (slot == kNoSlot || want == 0) return 0;
  Slot& s = at(slot);
  if (s.key.load(std::memory_order_acquire) != key) return 0;
  uint64_t w = s.word.load(std::memory_order_acquire);
  uint32_t n = 0;
  for (;;) {
    if (!live(w, now_ns)) return 0;
    n = static_cast<uint32_t>(std::min<uint64_t>(want, tokens_of(w)));
    if (s.word.compare_exchange_weak(w, w - n, std::memory_order_seq_cst)) break;
  }
  // The slot may have been reclaimed between the first key check and the CAS: then the tokens
  // were another key's, and go back (header: "the only imprecision").
  if (s.key.load(std::memory_order_seq_cst) != key) {
    // A CAS, not fetch_add: a carry out of the 24 token bits would move the deadline.
    w = s.word.load(std::memory_order_acquire);
    while (!s.word.compare_exchange_weak(w, (w & ~kTokenMask) | std::min<uint64_t>(tokens_of(w) + n, kTokenMask),
                                         std::memory_order_seq_cst)) {
    }
    return 0;
  }
  return n;
}

uint32_t ClusterLeasePool::tokens(uint32_t slot, uint64_t key, uint64_t now_ns) const {
  if (slot == kNoSlot) return 0;
  const Slot& s = at(slot);
  if (s.key.load(std::memory_order_acquire) != key) return 0;
  const uint64_t w = s.word.load(std::memory_order_acquire);
  return live(w, now_ns) ? static_cast<uint32_t>(tokens_of(w)) : 0;
}

bool ClusterLeasePool::install(uint32_t slot, uint64_t key, uint32_t count, uint64_t queued_ns,
                               uint64_t ttl_ns, uint64_t stamp, uint64_t now_ns) {
  if (slot == kNoSlot) return false;
  Slot& s = at(slot);
  if (s.key.load(std::memory_order_acquire) != key) return false;
  const uint64_t deadline = ms_of(queued_ns + ttl_ns);
  // The stamp first: a give-back of whatever is in the slot after this must name the newest
  // grant, the one Redis' state now ends with.
  s.stamp.store(stamp, std::memory_order_release);
  uint64_t w = s.word.load(std::memory_order_acquire);
  for (;;) {
    uint64_t nw;
    if (live(w, now_ns)) {
      const uint64_t total = std::min<uint64_t>(tokens_of(w) + count, kMaxLease);
      nw = std::min(deadline_of(w), deadline) << 24 | total;
    } else {
      nw = deadline << 24 | std::min<uint64_t>(count, kMaxLease);
    }
    if (s.word.compare_exchange_weak(w, nw, std::memory_order_seq_cst)) break;
  }
  s.denied_until.store(0, std::memory_order_release);
  return true;
}

uint32_t ClusterLeasePool::take_leftover(uint32_t slot, uint64_t key, uint64_t now_ns, bool force,
                                         uint64_t* stamp) {
  if (slot == kNoSlot) return 0;
  Slot& s = at(slot);
  if (s.key.load(std::memory_order_acquire) != key) return 0;
  uint64_t w = s.word.load(std::memory_order_acquire);
  for (;;) {
    if (tokens_of(w) == 0 || (!force && live(w, now_ns))) return 0;
    if (s.word.compare_exchange_weak(w, w & ~kTokenMask, std::memory_order_seq_cst)) break;
  }
  *stamp = s.stamp.load(std::memory_order_acquire);
  return static_cast<uint32_t>(tokens_of(w));
}

void ClusterLeasePool::set_denied_until(uint32_t slot, uint64_t key, uint64_t until_ns) {
  if (slot == kNoSlot || at(slot).key.load(std::memory_order_acquire) != key) return;
  at(slot).denied_until.store(until_ns, std::memory_order_release);
}

uint64_t ClusterLeasePool::denied_until(uint32_t slot, uint64_t key) const {
  if (slot == kNoSlot || at(slot).key.load(std::memory_order_acquire) != key) return 0;
  return at(slot).denied_until.load(std::memory_order_acquire);
}

bool ClusterLeasePool::begin_refill(uint32_t slot, uint64_t key, uint64_t now_ns, uint64_t stale_ns) {
  if (slot == kNoSlot) return true;  // no slot, no sharing: every such request asks alone
  Slot& s = at(slot);
  if (s.key.load(std::memory_order_acquire) != key) return false;
  uint64_t since = s.refill_since.load(std::memory_order_acquire);
  const uint64_t mark = now_ns != 0 ? now_ns : 1;
  for (;;) {
    if (since != 0 && now_ns < since + stale_ns) return false;
    if (s.refill_since.compare_exchange_weak(since, mark, std::memory_order_acq_rel)) return true;
  }
}

void ClusterLeasePool::end_refill(uint32_t slot, uint64_t key) {
  if (slot == kNoSlot || at(slot).key.load(std::memory_order_acquire) != key) return;
  at(slot).refill_since.store(0, std::memory_order_release);
}

uint32_t ClusterLeasePool::entry_count() const {
  uint32_t n = 0;
  for (uint32_t i = 0; i < capacity(); ++i) n += slots_[i].key.load(std::memory_order_relaxed) != 0;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Failure policy

bool parse_failure_policy(std::string_view text, FailureConfig& out, std::string& error) {
  FailureConfig c;
  if (text == "deny") {
    c.policy = FailurePolicy::kDeny;
  } else if (text == "allow") {
    c.policy = FailurePolicy::kAllow;
  } else if (text == "local") {
    c.policy = FailurePolicy::kLocal;
  } else if (starts_with(text, "local:")) {
    c.policy = FailurePolicy::kLocal;
    const std::string_view n = text.substr(6);
    uint32_t v = 0;
    const auto r = std::from_chars(n.data(), n.data() + n.size(), v);
    if (n.empty() || r.ec != std::errc() || r.ptr != n.data() + n.size() || v == 0 || v > 10000) {
      error = "expected local:N with N the number of gateways sharing the limit (1 to 10000)";
      return false;
    }
    c.instances = v;
  } else {
    error = "expected deny, allow, local or local:N, got '" + std::string(text) + "'";
    return false;
  }
  out = c;
  return true;
}

RateLimitSpec local_share(const RateLimitSpec& spec, uint32_t instances) {
  RateLimitSpec s = spec;
  const uint32_t n = std::max<uint32_t>(1, instances);
  s.rate = std::max<uint64_t>(1, spec.rate / n);
  s.burst = std::max<uint32_t>(1, spec.burst / n);
  return s;
}

RedisState redis_state(bool connected, uint64_t oldest_outstanding_ns, uint64_t now_ns, uint64_t timeout_ns) {
  if (!connected) return RedisState::kDown;
  if (oldest_outstanding_ns != 0 && now_ns > oldest_outstanding_ns &&
      now_ns - oldest_outstanding_ns > timeout_ns) {
    return RedisState::kDown;
  }
  return RedisState::kUp;
}

ClusterVerdict decide(bool drew_token, bool denied_by_redis, RedisState redis, FailurePolicy policy) {
  if (drew_token) return ClusterVerdict::kAdmit;
  if (denied_by_redis) return ClusterVerdict::kReject;
  if (redis == RedisState::kUp) return ClusterVerdict::kWait;
  switch (policy) {
    case FailurePolicy::kDeny: return ClusterVerdict::kReject;
    case FailurePolicy::kAllow: return ClusterVerdict::kAdmitFree;
    case FailurePolicy::kLocal: return ClusterVerdict::kAdmitLocal;
  }
  return ClusterVerdict::kReject;
}

uint32_t cluster_lease_size(const RateLimitSpec& spec, uint64_t ttl_ns, uint32_t instances, uint32_t divisor) {
  const uint64_t by_burst = spec.burst / std::max<uint32_t>(1, divisor);
  const __uint128_t by_rate = static_cast<__uint128_t>(spec.rate) * ttl_ns /
                              (static_cast<__uint128_t>(spec.unit_s) * kNsPerSec * std::max<uint32_t>(1, instances));
  const uint64_t capped = static_cast<uint64_t>(std::min<__uint128_t>(by_rate, ClusterLeasePool::kMaxLease));
  const uint64_t l = std::min(by_burst, capped);
  return static_cast<uint32_t>(std::clamp<uint64_t>(l, 1, ClusterLeasePool::kMaxLease));
}

}  // namespace ringway::filter::rate_limit
