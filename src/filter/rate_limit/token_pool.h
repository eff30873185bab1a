// The rate limiter's engine: a process-wide, lock-free pool of token buckets (SharedBuckets, one
// per --rate-limit spec, shared by every worker) and a per-worker lease table (WorkerLimiter, owned
// by one worker's filter, never shared). SharedBuckets lives as long as the filter factory's shared
// state, which every worker's filter keeps alive. No allocation after construction.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

namespace ringway::filter::rate_limit {

// ---------------------------------------------------------------------------------------------
// The arithmetic
//
// Each key has one token bucket of capacity B (burst) refilled at R tokens per U (unit, ns). It
// is stored as a GCRA "theoretical arrival time" (TAT, ns on CLOCK_MONOTONIC) in one 64-bit
// word, so a debit is a single compare-and-swap and idle time needs no bookkeeping:
//
//   T   = ceil(U / R)        ns per token (emission interval). Rounding up means the effective
//                            rate U/T is <= R; it is short of R by less than one token per T*T/U,
//                            i.e. a relative error below R/U (1e-6 for 1000/s, 0 when R divides U).
//   tau = B * T              how far in the future TAT may be pushed.
//   base = max(TAT, now)     a TAT in the past means "bucket full": nothing accumulates beyond B,
//                            so after hours of idleness exactly B tokens are available, not more.
//   available(now) = (now + tau - base) / T      (0 when base + T > now + tau)
//   taking n <= available:   TAT' = base + n*T   (one CAS; a rejected request changes nothing,
//                                                  so rejections never consume quota)
//   wait for one token:      base + T - (now + tau)   (ns; Retry-After is this, rounded up to s)
//   giving back n tokens:    TAT' = max(TAT - n*T, now)   (exactly undoes the debit, or fills)
//
// Everything is integer ns: nothing accumulates error over uptime, because TAT is an absolute
// time and each debit adds an exact multiple of T. now + tau must not overflow: tau <= 2^61 is
// enforced by the spec parser and CLOCK_MONOTONIC stays below 2^62 ns (146 years).
//
// Leases. A worker does not debit the shared word per request: it takes a lease of up to
// L = max(1, B / (W * k)) tokens in one CAS (W workers, k = lease divisor, default 8) and admits
// from its private count until the lease is empty or older than the lease TTL (default 100 ms),
// when unused tokens are given back. Per request a worker thus touches only its own memory,
// except one CAS per L admissions and a read of the shared word when it has no tokens.
//
// Error bound, in any interval of length D, for one key, whatever the spread over workers:
//   admitted <= B + R*D/U + min(W*L, R*TTL/U)
//     (tokens leased before the interval and spent in it; a lease is at most L and at most TTL
//      old, and they were debited from the bucket, so they cannot exceed what refilled meanwhile)
//   admitted >= B + R*D/U - W*L   when offered load exceeds the limit the whole time
//     (tokens stranded in other workers' unspent leases; they go back at the next request on
//      that worker after the TTL, or when the sweep reaches an idle entry).
// With k = 8, W*L <= B/8 + W. Over long runs the admitted rate is exactly min(offered, U/T).
//
// Table bounds. SharedBuckets has a fixed capacity (--rate-limit-keys) in groups of 8 slots; a
// key lives in the group its hash selects. A new key takes an empty slot, else a slot whose
// bucket is full (TAT <= now: that entry holds no information, so reusing it loses nothing),
// else it shares one overflow bucket with every other key that found no room. So a client
// spraying random keys can neither grow memory nor raise admissions above
// capacity*B + B(overflow) + rates: the table never admits unbounded.
// The only imprecision is a race between a worker reclaiming a full slot and another worker
// debiting that same slot's old key in the same instant: one lease (<= L tokens) is then charged
// to the new key (conservative) and the old key may get up to L tokens once more.
//
// Keys are 64-bit seeded hashes of the key text (collisions: ~2^-64 per pair; two colliding keys
// would share one bucket). Hash value 0 marks an empty slot and is never produced.
// ---------------------------------------------------------------------------------------------

struct BucketParams {
  uint64_t interval_ns = 0;  // T
  uint64_t tau_ns = 0;       // B * T
  uint32_t burst = 0;        // B
};

// Seeded 64-bit hash of a key's text; never 0.
uint64_t hash_key(std::string_view text, uint64_t seed);

class SharedBuckets {
 public:
  static constexpr uint32_t kGroupSize = 8;
  static constexpr uint32_t kOverflow = 0xFFFFFFFEu;  // slot id of the shared overflow bucket

  SharedBuckets(uint32_t capacity, BucketParams params);
  SharedBuckets(const SharedBuckets&) = delete;
  SharedBuckets& operator=(const SharedBuckets&) = delete;

  const BucketParams& params() const { return params_; }
  uint32_t capacity() const { return group_count_ * kGroupSize; }

  // The slot holding `key`, claiming one if needed; kOverflow when its group has no room.
  uint32_t find_or_insert(uint64_t key, uint64_t now);
  // True while `slot` still belongs to `key` (slots are reclaimed once their bucket is full).
  bool owns(uint32_t slot, uint64_t key) const;
  // Takes up to `want` tokens; returns how many (0: none, *wait_ns = ns until one is available).
  uint32_t take(uint32_t slot, uint64_t now, uint32_t want, uint64_t* wait_ns);
  // Gives back n unspent tokens of a lease (no-op if the slot changed owner meanwhile).
  void give_back(uint32_t slot, uint64_t key, uint64_t now, uint32_t n);
  // Tokens in the shared bucket now, and ns until it is full again.
  uint64_t available(uint32_t slot, uint64_t now) const;
  uint64_t full_in_ns(uint32_t slot, uint64_t now) const;

  // Occupied slots (O(capacity); for tests and metrics).
  uint32_t entry_count() const;

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};  // 0: empty
    std::atomic<uint64_t> tat{0};  // 0: full bucket
  };
  struct alignas(128) Group {
    Slot slots[kGroupSize];
  };
  Slot& slot(uint32_t id) { return id == kOverflow ? overflow_ : groups_[id / kGroupSize].slots[id % kGroupSize]; }
  const Slot& slot(uint32_t id) const {
    return id == kOverflow ? overflow_ : groups_[id / kGroupSize].slots[id % kGroupSize];
  }

  BucketParams params_;
  uint32_t group_count_;
  std::unique_ptr<Group[]> groups_;
  alignas(64) Slot overflow_;
};

// What one decision found.
struct Decision {
  bool admitted = false;
  uint32_t entry = 0;        // local entry, for refund()
  uint64_t remaining = 0;    // tokens left (local lease + shared bucket); only if info asked
  uint64_t reset_ns = 0;     // admitted: ns until the bucket is full; rejected: ns until 1 token
};

// One worker's view of one spec: a fixed-capacity table of leases. Single-threaded.
class WorkerLimiter {
 public:
  struct Config {
    uint32_t capacity = 16384;          // local entries (rounded up to a power of two, >= 8)
    uint32_t lease = 1;                 // L
    uint64_t lease_ttl_ns = 100'000'000;
  };
  WorkerLimiter(std::shared_ptr<SharedBuckets> shared, Config cfg);
  ~WorkerLimiter();  // gives every unspent lease back (a reload must not strand tokens)
  WorkerLimiter(const WorkerLimiter&) = delete;
  WorkerLimiter& operator=(const WorkerLimiter&) = delete;

  // Admits one request for `key` or not. `info` fills remaining/reset_ns for admitted requests
  // (it reads the shared word); rejected decisions always carry reset_ns.
  Decision acquire(uint64_t key, uint64_t now, bool info);
  // Undoes an admission made by acquire() in the same request (another spec rejected it).
  void refund(uint32_t entry) { entries_[entry].tokens++; }

  uint32_t entry_count() const;
  uint32_t capacity() const { return mask_ + 1; }
  uint32_t lease() const { return cfg_.lease; }

 private:
  struct Entry {
    uint32_t shared_slot = 0;
    uint32_t tokens = 0;
    uint64_t lease_deadline = 0;
    uint64_t last_use = 0;
  };
  uint32_t find_or_insert(uint64_t key, uint64_t now);
  void release(uint32_t i, uint64_t now);
  void sweep_one(uint64_t now);
  void fill_info(Decision& d, const Entry& e, uint64_t now) const;

  std::shared_ptr<SharedBuckets> shared_;
  Config cfg_;
  uint32_t mask_;
  uint32_t group_count_;
  uint32_t sweep_cursor_ = 0;
  uint64_t last_now_ = 0;
  std::unique_ptr<uint64_t[]> keys_;   // scanned 8 at a time: one cache line per group
  std::unique_ptr<Entry[]> entries_;
};

}  // namespace ringway::filter::rate_limit
