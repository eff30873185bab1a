#include "filter/rate_limit/token_pool.h"

#include <algorithm>
#include <cstring>

namespace ringway::filter::rate_limit {

namespace {

inline uint64_t mix(uint64_t x, uint64_t k) {
  __uint128_t m = static_cast<__uint128_t>(x) * k;
  return static_cast<uint64_t>(m) ^ static_cast<uint64_t>(m >> 64);
}

// Maps a hash onto [0, n) with its high bits (Lemire's multiply-shift), leaving the low bits,
// which the slot tag compares in full anyway, uncorrelated with the group choice.
inline uint32_t reduce(uint64_t h, uint32_t n) {
  return static_cast<uint32_t>((static_cast<__uint128_t>(h) * n) >> 64);
}

}  // namespace

uint64_t hash_key(std::string_view text, uint64_t seed) {
  constexpr uint64_t k1 = 0x9E3779B97F4A7C15ull;
  constexpr uint64_t k2 = 0xD6E8FEB86659FD93ull;
  uint64_t h = seed ^ (text.size() * k2);
  const char* p = text.data();
  size_t n = text.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h ^ w, k1);
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = mix(h ^ w ^ (static_cast<uint64_t>(n) << 56), k1);
  }
  h = mix(h ^ seed, k2);
  return h != 0 ? h : 1;
}

// ---------------------------------------------------------------------------------------------
// SharedBuckets

SharedBuckets::SharedBuckets(uint32_t capacity, BucketParams params)
    : params_(params),
      group_count_(std::max<uint32_t>(1, (capacity + kGroupSize - 1) / kGroupSize)),
      groups_(new Group[group_count_]) {}

uint32_t SharedBuckets::find_or_insert(uint64_t key, uint64_t now) {
  const uint32_t first = reduce(key, group_count_) * kGroupSize;
  Group& g = groups_[first / kGroupSize];
  for (uint32_t i = 0; i < kGroupSize; ++i) {
    if (g.slots[i].key.load(std::memory_order_acquire) == key) return first + i;
  }
  uint32_t claimed = kGroupSize;
  for (uint32_t i = 0; i < kGroupSize && claimed == kGroupSize; ++i) {
    uint64_t expected = 0;
    if (g.slots[i].key.compare_exchange_strong(expected, key, std::memory_order_seq_cst)) claimed = i;
  }
  // No empty slot: reclaim one whose bucket is full. Such an entry says nothing that a fresh
  // entry would not, and its TAT (<= now) is already the right state for the new key.
  for (uint32_t i = 0; i < kGroupSize && claimed == kGroupSize; ++i) {
    uint64_t old = g.slots[i].key.load(std::memory_order_acquire);
    if (old == 0 || g.slots[i].tat.load(std::memory_order_acquire) > now) continue;
    if (g.slots[i].key.compare_exchange_strong(old, key, std::memory_order_seq_cst)) claimed = i;
  }
  if (claimed == kGroupSize) return kOverflow;  // group full of active keys: share the overflow
  // Two workers may have claimed two slots for the same new key at once. Both claims are
  // seq_cst and precede these loads, so the later claimant sees the earlier one: the lowest
  // slot wins, the others let go of theirs before anything was debited from them.
  for (uint32_t i = 0; i < claimed; ++i) {
    if (g.slots[i].key.load(std::memory_order_seq_cst) == key) {
      uint64_t mine = key;
      g.slots[claimed].key.compare_exchange_strong(mine, 0, std::memory_order_seq_cst);
      return first + i;
    }
  }
  return first + claimed;
}

bool SharedBuckets::owns(uint32_t id, uint64_t key) const {
  return id == kOverflow || slot(id).key.load(std::memory_order_acquire) == key;
}

uint32_t SharedBuckets::take(uint32_t id, uint64_t now, uint32_t want, uint64_t* wait_ns) {
  std::atomic<uint64_t>& tat = slot(id).tat;
  const uint64_t t_ns = params_.interval_ns;
  const uint64_t limit = now + params_.tau_ns;
  uint64_t t = tat.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t base = std::max(t, now);
    if (base + t_ns > limit) {
      *wait_ns = base + t_ns - limit;
      return 0;
    }
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(want, (limit - base) / t_ns));
    // Only this word is shared and the debit is self-contained, so relaxed ordering suffices:
    // all CASes on one atomic are totally ordered, which is what makes the count exact.
    if (tat.compare_exchange_weak(t, base + n * t_ns, std::memory_order_relaxed)) return n;
  }
}

void SharedBuckets::give_back(uint32_t id, uint64_t key, uint64_t now, uint32_t n) {
  if (n == 0 || !owns(id, key)) return;
  std::atomic<uint64_t>& tat = slot(id).tat;
  const uint64_t credit = n * params_.interval_ns;
  uint64_t t = tat.load(std::memory_order_relaxed);
  while (t > now) {
    const uint64_t nt = t - std::min(credit, t - now);
    if (tat.compare_exchange_weak(t, nt, std::memory_order_relaxed)) return;
  }
}

uint64_t SharedBuckets::available(uint32_t id, uint64_t now) const {
  const uint64_t base = std::max(slot(id).tat.load(std::memory_order_relaxed), now);
  const uint64_t limit = now + params_.tau_ns;
  return base < limit ? (limit - base) / params_.interval_ns : 0;
}

uint64_t SharedBuckets::full_in_ns(uint32_t id, uint64_t now) const {
  const uint64_t t = slot(id).tat.load(std::memory_order_relaxed);
  return t > now ? t - now : 0;
}

uint32_t SharedBuckets::entry_count() const {
  uint32_t n = 0;
  for (uint32_t g = 0; g < group_count_; ++g) {
    for (const Slot& s : groups_[g].slots) n += s.key.load(std::memory_order_relaxed) != 0;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// WorkerLimiter

namespace {
uint32_t round_up_pow2(uint32_t v) {
  uint32_t p = SharedBuckets::kGroupSize;
  while (p < v && p < (1u << 30)) p <<= 1;
  return p;
}
}  // namespace

WorkerLimiter::WorkerLimiter(std::shared_ptr<SharedBuckets> shared, Config cfg)
    : shared_(std::move(shared)),
      cfg_(cfg),
      mask_(round_up_pow2(cfg.capacity) - 1),
      group_count_((mask_ + 1) / SharedBuckets::kGroupSize),
      keys_(new uint64_t[mask_ + 1]()),
      entries_(new Entry[mask_ + 1]()) {
  if (cfg_.lease == 0) cfg_.lease = 1;
}

WorkerLimiter::~WorkerLimiter() {
  for (uint32_t i = 0; i <= mask_; ++i) {
    if (keys_[i] != 0) release(i, last_now_);
  }
}

uint32_t WorkerLimiter::find_or_insert(uint64_t key, uint64_t now) {
  const uint32_t first = reduce(key, group_count_) * SharedBuckets::kGroupSize;
  const uint64_t* k = &keys_[first];
  for (uint32_t i = 0; i < SharedBuckets::kGroupSize; ++i) {
    if (k[i] == key) return first + i;
  }
  // Not here: take an empty entry of the group, else the least recently used one (its unspent
  // lease goes back to the shared bucket, so eviction never loses or invents tokens).
  uint32_t victim = first;
  for (uint32_t i = 0; i < SharedBuckets::kGroupSize; ++i) {
    if (k[i] == 0) {
      victim = first + i;
      break;
    }
    if (entries_[first + i].last_use < entries_[victim].last_use) victim = first + i;
  }
  if (keys_[victim] != 0) release(victim, now);
  keys_[victim] = key;
  entries_[victim] = Entry{shared_->find_or_insert(key, now), 0, 0, now};
  return victim;
}

void WorkerLimiter::release(uint32_t i, uint64_t now) {
  Entry& e = entries_[i];
  shared_->give_back(e.shared_slot, keys_[i], now, e.tokens);
  e.tokens = 0;
  keys_[i] = 0;
}

// One entry per request: over `capacity` requests every idle lease goes back, which bounds how
// long tokens can sit stranded in a worker that stopped seeing a key.
void WorkerLimiter::sweep_one(uint64_t now) {
  const uint32_t i = sweep_cursor_++ & mask_;
  if (keys_[i] != 0 && now >= entries_[i].last_use + cfg_.lease_ttl_ns) release(i, now);
}

Decision WorkerLimiter::acquire(uint64_t key, uint64_t now, bool info) {
  sweep_one(now);
  last_now_ = now;
  const uint32_t i = find_or_insert(key, now);
  Entry& e = entries_[i];
  e.last_use = now;
  Decision d;
  d.entry = i;
  if (e.tokens > 0 && now < e.lease_deadline) {
    e.tokens--;
    d.admitted = true;
    if (info) fill_info(d, e, now);
    return d;
  }
  // Lease empty or too old: hand back what is left (so an old lease cannot be spent late), make
  // sure the shared slot is still ours (it may have been reclaimed while full), and lease anew.
  if (e.tokens > 0) {
    shared_->give_back(e.shared_slot, key, now, e.tokens);
    e.tokens = 0;
  }
  if (e.shared_slot == SharedBuckets::kOverflow || !shared_->owns(e.shared_slot, key)) {
    e.shared_slot = shared_->find_or_insert(key, now);
  }
  uint64_t wait = 0;
  const uint32_t got = shared_->take(e.shared_slot, now, cfg_.lease, &wait);
  if (got == 0) {
    d.reset_ns = wait;
    return d;
  }
  e.tokens = got - 1;
  e.lease_deadline = now + cfg_.lease_ttl_ns;
  d.admitted = true;
  if (info) fill_info(d, e, now);
  return d;
}

// With tokens left, reset is when the bucket is full again; with none, when the next one comes,
// which is what a client should wait before its next request (base + T - (now + tau)).
void WorkerLimiter::fill_info(Decision& d, const Entry& e, uint64_t now) const {
  d.remaining = e.tokens + shared_->available(e.shared_slot, now);
  const uint64_t full_in = shared_->full_in_ns(e.shared_slot, now);
  const BucketParams& p = shared_->params();
  d.reset_ns = d.remaining > 0 ? full_in : full_in + p.interval_ns - p.tau_ns;
}

uint32_t WorkerLimiter::entry_count() const {
  uint32_t n = 0;
  for (uint32_t i = 0; i <= mask_; ++i) n += keys_[i] != 0;
  return n;
}

}  // namespace ringway::filter::rate_limit
