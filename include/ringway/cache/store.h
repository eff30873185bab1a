// The cache store: one per process, shared by every worker. Entries are immutable and
// reference-counted (head and body in one allocation), so a hit is sent from the stored bytes
// with no copy per hit and an entry being sent outlives its eviction. Sharded by key hash, each
// shard a small mutex around an S3-FIFO (small FIFO + main FIFO + ghost of hashes) with a byte
// limit. FillTable does the collapsed-forwarding bookkeeping. Any thread; no method blocks on I/O.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/cache/policy.h"
#include "ringway/http/request.h"

namespace ringway::cache {

class EntryRef;

// One stored response. Layout of its single allocation: [Entry][Header views][key bytes]
// [head text][body]. Immutable once inserted (the body may be written through writable_body()
// before then); freed when the last EntryRef goes.
class Entry {
 public:
  struct Init {
    std::string_view primary_key;
    std::string_view secondary_key;   // from secondary_key(); "" without Vary
    uint16_t status = 200;
    std::string_view reason;
    const http::Header* headers = nullptr;  // the fields to store (already filtered: stored_field)
    uint16_t header_count = 0;
    const char* body = nullptr;       // copied if non-null; else writable_body() is left to fill
    size_t body_size = 0;             // decoded body length (chunked bodies are stored de-chunked)
    int64_t request_time = 0;         // seconds since the epoch (4.2.3)
    int64_t response_time = 0;
    int64_t lifetime = 0;             // freshness_lifetime(), fixed at store time
  };
  static EntryRef make(const Init& init);

  std::string_view primary_key() const { return {key_, primary_len_}; }
  std::string_view secondary_key() const { return {key_ + primary_len_, secondary_len_}; }
  uint16_t status() const { return status_; }
  std::string_view reason() const { return reason_; }
  const http::Header* headers() const { return headers_; }
  uint16_t header_count() const { return header_count_; }
  std::string_view body() const { return {body_, body_size_}; }
  char* writable_body() { return body_; }  // only before the entry is inserted
  const ResponseFacts& facts() const { return facts_; }
  int64_t request_time() const { return request_time_; }
  int64_t response_time() const { return response_time_; }
  int64_t lifetime() const { return lifetime_; }
  int64_t age(int64_t now) const { return current_age(facts_, request_time_, response_time_, now); }
  // Bytes counted against the store's limit: the allocation plus the store's bookkeeping.
  size_t charge() const { return charge_; }

  void retain() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() const;
  uint32_t use_count() const { return refs_.load(std::memory_order_acquire); }

 private:
  Entry() = default;
  ~Entry() = default;
  mutable std::atomic<uint32_t> refs_{1};
  uint16_t status_ = 0;
  uint16_t header_count_ = 0;
  uint32_t primary_len_ = 0;
  uint32_t secondary_len_ = 0;
  size_t body_size_ = 0;
  size_t charge_ = 0;
  int64_t request_time_ = 0;
  int64_t response_time_ = 0;
  int64_t lifetime_ = 0;
  const http::Header* headers_ = nullptr;
  const char* key_ = nullptr;
  std::string_view reason_;
  char* body_ = nullptr;
  ResponseFacts facts_;  // views into this allocation
};

// An owning reference to an Entry (intrusive count: one atomic add per copy, no control block).
class EntryRef {
 public:
  EntryRef() = default;
  explicit EntryRef(Entry* adopt) : e_(adopt) {}  // takes over one existing reference
  EntryRef(const EntryRef& o) : e_(o.e_) { if (e_ != nullptr) e_->retain(); }
  EntryRef(EntryRef&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  EntryRef& operator=(EntryRef o) noexcept { std::swap(e_, o.e_); return *this; }
  ~EntryRef() { if (e_ != nullptr) e_->release(); }
  Entry* get() const { return e_; }
  Entry* operator->() const { return e_; }
  Entry& operator*() const { return *e_; }
  explicit operator bool() const { return e_ != nullptr; }

 private:
  Entry* e_ = nullptr;
};

// Builds the entry for a storable response (storability() said kYes): the fields kept by
// stored_field() minus the framing fields (the body is stored decoded; the sender writes
// Content-Length from its size), the Vary secondary key from req, the lifetime from opt. The
// upstream's Age field is kept: it is the age_value of 4.2.3; the sender replaces it with
// Age: entry->age(now). Returns an empty ref for Vary: *. With body == nullptr the body is
// left to write through writable_body() (body_size bytes) before insert().
EntryRef entry_from_response(std::string_view primary, const http::Request& req,
                             const http::Response& resp, const char* body, size_t body_size,
                             int64_t request_time, int64_t response_time, const Options& opt);

// The stored response updated by a 304 that not_modified_selects() (RFC 9111 4.3.4): a new
// entry with the fields of updated_headers(), the same body (copied once per revalidation, not
// per hit), the new request/response times and a lifetime recomputed from the new fields.
EntryRef entry_refreshed(const Entry& old, const http::Response& not_modified,
                         int64_t request_time, int64_t response_time, const Options& opt);

enum class Counter : uint8_t {
  kHits, kMisses, kStaleServed, kRevalidations, kCollapsedWaiters, kEvictions, kInserts,
  kPurged, kCount
};

struct CounterSnapshot {
  uint64_t hits = 0, misses = 0, stale_served = 0, revalidations = 0, collapsed_waiters = 0;
  uint64_t evictions = 0, inserts = 0, purged = 0;
  uint64_t bytes_stored = 0, entries = 0;
};

// Collapsed forwarding: per primary key, "a fill is in progress" with its filler and the waiters
// that want the same key (RFC 9111 4 lets a cache wait for one response to serve many). Waiter
// handles are opaque to the cache (the engine encodes worker, slot and generation). A fill
// expires after lock_timeout_ns: expire() hands it to its oldest waiter. A key whose response
// turned out uncacheable is remembered for uncacheable_ttl_ns so later misses skip the wait.
class FillTable {
 public:
  using Waiter = uint64_t;
  enum class Role : uint8_t {
    kFiller,  // go upstream, then call finish()
    kWaiter,  // queued: the engine pauses this exchange until finish() or expire() names it
    kBypass,  // known uncacheable: go upstream without waiting and without a fill record
  };
  struct Handover {
    std::string key;
    Waiter new_filler;
  };

  FillTable(uint64_t lock_timeout_ns, uint64_t uncacheable_ttl_ns, unsigned shard_count = 16);
  ~FillTable();
  FillTable(const FillTable&) = delete;
  FillTable& operator=(const FillTable&) = delete;

  // A miss for key: become the filler, a waiter, or bypass. A record past its lock timeout is
  // taken over by the caller (its waiters stay queued).
  Role begin(std::string_view key, Waiter who, uint64_t now_ns);
  // The filler is done. Returns the waiters to resume (they look the key up again). With
  // cacheable=false the key is remembered as uncacheable. A caller that is no longer the
  // filler (its fill expired and was handed over) gets nothing back; only its uncacheable
  // verdict is kept.
  std::vector<Waiter> finish(std::string_view key, Waiter filler, bool cacheable, uint64_t now_ns);
  // A waiter left (client gone). False if it was not queued.
  bool cancel(std::string_view key, Waiter who);
  // Fills past their lock timeout: each passes to its oldest waiter (new deadline), returned so
  // the caller resumes it as the filler; fills with no waiter are dropped.
  std::vector<Handover> expire(uint64_t now_ns);
  size_t in_progress() const;
  uint64_t collapsed_waiters() const;

 private:
  struct Shard;
  Shard& shard_of(std::string_view key);
  uint64_t lock_timeout_ns_;
  uint64_t uncacheable_ttl_ns_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

class Store {
 public:
  // capacity_bytes is split evenly over the shards; an entry larger than one shard's share is
  // not stored (insert() returns false). The two times configure fills().
  explicit Store(size_t capacity_bytes, unsigned shard_count = 16,
                 uint64_t lock_timeout_ns = 5'000'000'000, uint64_t uncacheable_ttl_ns = 30'000'000'000);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  struct Found {
    EntryRef entry;          // the variant that req selects, or empty
    bool key_known = false;  // some variant of the primary key is stored (a vary-miss if no entry)
  };
  // The stored response for a primary key whose Vary secondary key req matches (req == nullptr
  // matches only a variant stored without Vary). Marks it used for eviction.
  Found lookup(std::string_view primary, const http::Request* req);
  // Stores e, replacing the variant with the same primary and secondary key. False if too big.
  bool insert(EntryRef e);
  // Drops every variant of one primary key (4.4 invalidation, admin purge). Returns how many.
  size_t purge(std::string_view primary);
  // Drops every variant of every key that starts with prefix.
  size_t purge_prefix(std::string_view prefix);

  void count(Counter c, uint64_t n = 1);
  CounterSnapshot counters() const;
  size_t capacity() const { return capacity_; }
  size_t bytes() const;
  FillTable& fills() { return fills_; }

  // Bookkeeping charged per entry on top of its allocation (node, map slot, key copy).
  static constexpr size_t kNodeOverhead = 128;

 private:
  struct Shard;
  Shard& shard_of(std::string_view key);
  struct alignas(64) Stripe {
    std::atomic<uint64_t> v[static_cast<size_t>(Counter::kCount)] = {};
  };
  static constexpr unsigned kStripes = 16;
  size_t capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<Stripe[]> stripes_;  // counters striped by thread: no shared hot line
  FillTable fills_;
};

}  // namespace ringway::cache
