// The shared store. Why a mutex per shard is acceptable on the request path: a critical section
// is one hash-map probe, a few pointer moves and an atomic increment (tens of nanoseconds, no
// allocation on a hit, never any I/O), and with 16+ shards two workers meet on one lock only when
// they want keys of the same shard at the same instant; the entry's bytes are read and sent with
// no lock held. A lock-free map with safe reclamation would buy little at this contention and cost
// a lot of code. Eviction is S3-FIFO (Yang et al., SOSP 2023): new objects enter a small FIFO
// (10% of the bytes); those hit again while there move to the main FIFO, the others leave and
// are remembered in a ghost FIFO of hashes so that a quick return goes straight to main. A scan
// of one-hit wonders therefore only ever churns the small queue.
#include "ringway/cache/store.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <new>
#include <unordered_map>

#include "ringway/core/ascii.h"

namespace ringway::cache {
namespace {

uint64_t hash_key(std::string_view k) { return std::hash<std::string_view>{}(k); }

size_t align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Entry

EntryRef Entry::make(const Init& in) {
  size_t head_text = in.reason.size();
  for (uint16_t i = 0; i < in.header_count; ++i) {
    head_text += in.headers[i].name.size() + in.headers[i].value.size();
  }
  const size_t key_bytes = in.primary_key.size() + in.secondary_key.size();
  const size_t off_headers = align_up(sizeof(Entry), alignof(http::Header));
  const size_t off_text = off_headers + sizeof(http::Header) * in.header_count;
  const size_t off_body = off_text + key_bytes + head_text;
  const size_t total = off_body + in.body_size;
  char* mem = static_cast<char*>(::operator new(total));
  Entry* e = new (mem) Entry();
  e->status_ = in.status;
  e->header_count_ = in.header_count;
  e->primary_len_ = static_cast<uint32_t>(in.primary_key.size());
  e->secondary_len_ = static_cast<uint32_t>(in.secondary_key.size());
  e->body_size_ = in.body_size;
  e->charge_ = total + Store::kNodeOverhead + in.primary_key.size();
  e->request_time_ = in.request_time;
  e->response_time_ = in.response_time;
  e->lifetime_ = in.lifetime;

  char* p = mem + off_text;
  auto put = [&p](std::string_view s) {
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    const std::string_view v(p, s.size());
    p += s.size();
    return v;
  };
  e->key_ = p;
  put(in.primary_key);
  put(in.secondary_key);
  e->reason_ = put(in.reason);
  auto* hs = reinterpret_cast<http::Header*>(mem + off_headers);
  for (uint16_t i = 0; i < in.header_count; ++i) {
    const std::string_view n = put(in.headers[i].name);
    const std::string_view v = put(in.headers[i].value);
    new (&hs[i]) http::Header{n, v};
  }
  e->headers_ = hs;
  e->body_ = mem + off_body;
  if (in.body != nullptr && in.body_size != 0) std::memcpy(e->body_, in.body, in.body_size);
  // Facts from the copied fields, so their views (the ETag) point into this allocation.
  e->facts_ = response_facts(hs, in.header_count, in.status, in.response_time);
  return EntryRef(e);
}

void Entry::release() const {
  // acq_rel: the freeing thread must see every other thread's last reads of the entry done.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    const_cast<Entry*>(this)->~Entry();
    ::operator delete(const_cast<Entry*>(this));
  }
}

namespace {

bool framing_field(std::string_view name) {
  return core::iequals(name, "content-length") || core::iequals(name, "transfer-encoding");
}

}  // namespace

EntryRef entry_from_response(std::string_view primary, const http::Request& req,
                             const http::Response& resp, const char* body, size_t body_size,
                             int64_t request_time, int64_t response_time, const Options& opt) {
  std::string secondary;
  if (!secondary_key(resp.headers, resp.header_count, req, secondary)) return {};  // Vary: *
  std::vector<http::Header> kept;
  kept.reserve(resp.header_count);
  for (uint16_t i = 0; i < resp.header_count; ++i) {
    const http::Header& h = resp.headers[i];
    if (stored_field(h.name, resp) && !framing_field(h.name)) kept.push_back(h);  // 3.1
  }
  Entry::Init in;
  in.primary_key = primary;
  in.secondary_key = secondary;
  in.status = resp.status;
  in.reason = resp.reason;
  in.headers = kept.data();
  in.header_count = static_cast<uint16_t>(kept.size());
  in.body = body;
  in.body_size = body_size;
  in.request_time = request_time;
  in.response_time = response_time;
  const ResponseFacts f = response_facts(resp.headers, resp.header_count, resp.status, response_time);
  in.lifetime = freshness_lifetime(f, response_time, opt);
  return Entry::make(in);
}

EntryRef entry_refreshed(const Entry& old, const http::Response& nm, int64_t request_time,
                         int64_t response_time, const Options& opt) {
  // The old Age and Date describe the old response: the 304 is the new response of 4.2.3, and
  // without its own Date the time it arrived stands in (RFC 9110 6.6.1), not the old Date.
  std::vector<http::Header> base;
  base.reserve(old.header_count());
  for (uint16_t i = 0; i < old.header_count(); ++i) {
    const http::Header& h = old.headers()[i];
    if (!core::iequals(h.name, "age") && !core::iequals(h.name, "date")) base.push_back(h);
  }
  std::vector<http::Header> fields =
      updated_headers(base.data(), static_cast<uint16_t>(base.size()), nm);
  Entry::Init in;
  in.primary_key = old.primary_key();
  in.secondary_key = old.secondary_key();
  in.status = old.status();
  in.reason = old.reason();
  in.headers = fields.data();
  in.header_count = static_cast<uint16_t>(fields.size());
  in.body = old.body().data();
  in.body_size = old.body().size();
  in.request_time = request_time;
  in.response_time = response_time;
  const ResponseFacts f = response_facts(in.headers, in.header_count, in.status, response_time);
  in.lifetime = freshness_lifetime(f, response_time, opt);
  return Entry::make(in);
}

// ---------------------------------------------------------------------------------------------
// Store

namespace {

struct Node {
  EntryRef entry;
  Node* prev = nullptr;
  Node* next = nullptr;
  uint64_t hash = 0;    // of primary + secondary key: the ghost's identity for the object
  uint8_t freq = 0;     // hits since insertion or last demotion, capped at 3 (S3-FIFO)
  bool in_main = false;
};

struct Fifo {
  Node* head = nullptr;  // oldest
  Node* tail = nullptr;
  size_t bytes = 0;
  size_t count = 0;
  void push(Node* n) {
    n->prev = tail;
    n->next = nullptr;
    if (tail != nullptr) tail->next = n; else head = n;
    tail = n;
    bytes += n->entry->charge();
    ++count;
  }
  void unlink(Node* n) {
    if (n->prev != nullptr) n->prev->next = n->next; else head = n->next;
    if (n->next != nullptr) n->next->prev = n->prev; else tail = n->prev;
    n->prev = n->next = nullptr;
    bytes -= n->entry->charge();
    --count;
  }
};

}  // namespace

struct Store::Shard {
  std::mutex mu;
  size_t capacity = 0;
  size_t small_target = 0;
  size_t bytes = 0;  // small.bytes + main.bytes; read without the lock by bytes()
  std::atomic<size_t> bytes_published{0};
  std::atomic<size_t> entries_published{0};
  Fifo small, main;
  std::unordered_map<std::string, std::vector<Node*>, StringHash, std::equal_to<>> map;
  // Ghost: hashes of objects evicted from small, oldest first, at most as many as are resident.
  std::deque<uint64_t> ghost_fifo;
  std::unordered_map<uint64_t, uint32_t> ghost;
  uint64_t evictions = 0;

  ~Shard() {
    for (auto& [k, nodes] : map) {
      for (Node* n : nodes) delete n;
    }
  }

  void publish() {
    bytes_published.store(bytes, std::memory_order_relaxed);
    entries_published.store(small.count + main.count, std::memory_order_relaxed);
  }

  Fifo& fifo_of(Node* n) { return n->in_main ? main : small; }

  void ghost_add(uint64_t h) {
    ghost_fifo.push_back(h);
    ++ghost[h];
    const size_t limit = std::max<size_t>(16, small.count + main.count);
    while (ghost_fifo.size() > limit) ghost_pop();
  }
  void ghost_pop() {
    const uint64_t old = ghost_fifo.front();
    ghost_fifo.pop_front();
    auto it = ghost.find(old);
    if (it != ghost.end() && --it->second == 0) ghost.erase(it);
  }
  bool ghost_take(uint64_t h) {
    auto it = ghost.find(h);
    if (it == ghost.end()) return false;
    ghost.erase(it);  // its FIFO slots expire harmlessly (find() misses them)
    return true;
  }

  // Unlinks n from its queue and the map, and deletes the node (the entry lives on while
  // anyone still holds an EntryRef).
  void drop(Node* n) {
    fifo_of(n).unlink(n);
    bytes -= n->entry->charge();
    auto it = map.find(n->entry->primary_key());
    if (it != map.end()) {
      auto& v = it->second;
      v.erase(std::remove(v.begin(), v.end(), n), v.end());
      if (v.empty()) map.erase(it);
    }
    delete n;
  }

  void evict_one() {
    if (main.head == nullptr || (small.bytes > small_target && small.head != nullptr)) {
      Node* n = small.head;
      if (n->freq > 0) {
        // Hit while in small: promoted to main with its count reset.
        small.unlink(n);
        n->freq = 0;
        n->in_main = true;
        main.push(n);
      } else {
        ghost_add(n->hash);
        drop(n);
        ++evictions;
      }
      return;
    }
    Node* n = main.head;
    if (n->freq > 0) {
      // Second chance, as many as hits (up to 3): reinserted at the tail one lower.
      main.unlink(n);
      --n->freq;
      main.push(n);
    } else {
      drop(n);
      ++evictions;
    }
  }
};

Store::Store(size_t capacity_bytes, unsigned shard_count, uint64_t lock_timeout_ns,
             uint64_t uncacheable_ttl_ns)
    : capacity_(capacity_bytes),
      stripes_(new Stripe[kStripes]),
      fills_(lock_timeout_ns, uncacheable_ttl_ns, shard_count) {
  if (shard_count == 0) shard_count = 1;
  shards_.reserve(shard_count);
  for (unsigned i = 0; i < shard_count; ++i) {
    auto s = std::make_unique<Shard>();
    s->capacity = capacity_bytes / shard_count;
    s->small_target = s->capacity / 10;
    shards_.push_back(std::move(s));
  }
}

Store::~Store() = default;

Store::Shard& Store::shard_of(std::string_view key) {
  // The high bits pick the shard; the map inside uses the full hash, so they do not correlate.
  return *shards_[(hash_key(key) >> 40) % shards_.size()];
}

Store::Found Store::lookup(std::string_view primary, const http::Request* req) {
  Shard& s = shard_of(primary);
  Found f;
  std::lock_guard lock(s.mu);
  auto it = s.map.find(primary);
  if (it == s.map.end()) return f;
  f.key_known = true;
  for (Node* n : it->second) {
    const std::string_view sk = n->entry->secondary_key();
    const bool match = req != nullptr ? secondary_key_matches(sk, *req) : sk.empty();
    if (match) {
      if (n->freq < 3) ++n->freq;
      f.entry = n->entry;
      break;
    }
  }
  return f;
}

bool Store::insert(EntryRef e) {
  if (!e) return false;
  Shard& s = shard_of(e->primary_key());
  if (e->charge() > s.capacity) return false;
  std::string_view pk = e->primary_key();
  std::string_view sk = e->secondary_key();
  const uint64_t h = hash_key(pk) ^ (hash_key(sk) * 0x9e3779b97f4a7c15ull);
  auto* node = new Node();
  node->hash = h;
  node->entry = std::move(e);
  {
    std::lock_guard lock(s.mu);
    auto it = s.map.find(pk);
    if (it == s.map.end()) it = s.map.emplace(std::string(pk), std::vector<Node*>{}).first;
    bool replaced_main = false;
    uint8_t replaced_freq = 0;
    for (Node* old : it->second) {
      if (old->entry->secondary_key() == sk) {
        // A refreshed copy (4.3.4 update, new response) keeps the old one's standing.
        replaced_main = old->in_main;
        replaced_freq = old->freq;
        s.fifo_of(old).unlink(old);
        s.bytes -= old->entry->charge();
        it->second.erase(std::find(it->second.begin(), it->second.end(), old));
        delete old;
        break;
      }
    }
    it->second.push_back(node);
    node->in_main = replaced_main || s.ghost_take(h);
    node->freq = replaced_freq;
    s.fifo_of(node).push(node);
    s.bytes += node->entry->charge();
    const uint64_t before = s.evictions;
    while (s.bytes > s.capacity) s.evict_one();
    s.publish();
    count(Counter::kEvictions, s.evictions - before);
  }
  count(Counter::kInserts);
  return true;
}

size_t Store::purge(std::string_view primary) {
  Shard& s = shard_of(primary);
  size_t n = 0;
  {
    std::lock_guard lock(s.mu);
    auto it = s.map.find(primary);
    if (it == s.map.end()) return 0;
    const std::vector<Node*> nodes = it->second;  // drop() edits the map's vector
    for (Node* node : nodes) {
      s.drop(node);
      ++n;
    }
    s.publish();
  }
  count(Counter::kPurged, n);
  return n;
}

size_t Store::purge_prefix(std::string_view prefix) {
  size_t n = 0;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::lock_guard lock(s.mu);
    std::vector<Node*> doomed;
    for (auto& [key, nodes] : s.map) {
      if (std::string_view(key).substr(0, prefix.size()) == prefix) {
        doomed.insert(doomed.end(), nodes.begin(), nodes.end());
      }
    }
    for (Node* node : doomed) s.drop(node);
    n += doomed.size();
    s.publish();
  }
  count(Counter::kPurged, n);
  return n;
}

void Store::count(Counter c, uint64_t n) {
  if (n == 0) return;
  // Each thread sticks to one stripe, so workers do not bounce one line on every hit.
  static std::atomic<unsigned> next_stripe{0};
  thread_local const unsigned stripe = next_stripe.fetch_add(1, std::memory_order_relaxed);
  stripes_[stripe % kStripes].v[static_cast<size_t>(c)].fetch_add(n, std::memory_order_relaxed);
}

CounterSnapshot Store::counters() const {
  uint64_t sum[static_cast<size_t>(Counter::kCount)] = {};
  for (unsigned i = 0; i < kStripes; ++i) {
    for (size_t c = 0; c < static_cast<size_t>(Counter::kCount); ++c) {
      sum[c] += stripes_[i].v[c].load(std::memory_order_relaxed);
    }
  }
  CounterSnapshot s;
  s.hits = sum[static_cast<size_t>(Counter::kHits)];
  s.misses = sum[static_cast<size_t>(Counter::kMisses)];
  s.stale_served = sum[static_cast<size_t>(Counter::kStaleServed)];
  s.revalidations = sum[static_cast<size_t>(Counter::kRevalidations)];
  s.collapsed_waiters = sum[static_cast<size_t>(Counter::kCollapsedWaiters)] +
                        fills_.collapsed_waiters();
  s.evictions = sum[static_cast<size_t>(Counter::kEvictions)];
  s.inserts = sum[static_cast<size_t>(Counter::kInserts)];
  s.purged = sum[static_cast<size_t>(Counter::kPurged)];
  for (const auto& sh : shards_) {
    s.bytes_stored += sh->bytes_published.load(std::memory_order_relaxed);
    s.entries += sh->entries_published.load(std::memory_order_relaxed);
  }
  return s;
}

size_t Store::bytes() const {
  size_t b = 0;
  for (const auto& sh : shards_) b += sh->bytes_published.load(std::memory_order_relaxed);
  return b;
}

// ---------------------------------------------------------------------------------------------
// FillTable

struct FillTable::Shard {
  struct Fill {
    Waiter filler = 0;
    uint64_t deadline_ns = 0;
    std::deque<Waiter> waiters;  // oldest first
  };
  std::mutex mu;
  std::unordered_map<std::string, Fill, StringHash, std::equal_to<>> fills;
  std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>> uncacheable;  // until
  std::atomic<uint64_t> collapsed{0};
};

FillTable::FillTable(uint64_t lock_timeout_ns, uint64_t uncacheable_ttl_ns, unsigned shard_count)
    : lock_timeout_ns_(lock_timeout_ns), uncacheable_ttl_ns_(uncacheable_ttl_ns) {
  if (shard_count == 0) shard_count = 1;
  for (unsigned i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<Shard>());
}

FillTable::~FillTable() = default;

FillTable::Shard& FillTable::shard_of(std::string_view key) {
  return *shards_[(hash_key(key) >> 40) % shards_.size()];
}

FillTable::Role FillTable::begin(std::string_view key, Waiter who, uint64_t now_ns) {
  Shard& s = shard_of(key);
  std::lock_guard lock(s.mu);
  if (auto u = s.uncacheable.find(key); u != s.uncacheable.end()) {
    if (now_ns < u->second) return Role::kBypass;
    s.uncacheable.erase(u);
  }
  auto it = s.fills.find(key);
  if (it == s.fills.end()) {
    Shard::Fill f;
    f.filler = who;
    f.deadline_ns = now_ns + lock_timeout_ns_;
    s.fills.emplace(std::string(key), std::move(f));
    return Role::kFiller;
  }
  if (now_ns >= it->second.deadline_ns) {
    // The filler overran the lock timeout: this request takes the fill over.
    it->second.filler = who;
    it->second.deadline_ns = now_ns + lock_timeout_ns_;
    return Role::kFiller;
  }
  it->second.waiters.push_back(who);
  s.collapsed.fetch_add(1, std::memory_order_relaxed);
  return Role::kWaiter;
}

std::vector<FillTable::Waiter> FillTable::finish(std::string_view key, Waiter filler,
                                                 bool cacheable, uint64_t now_ns) {
  Shard& s = shard_of(key);
  std::vector<Waiter> out;
  std::lock_guard lock(s.mu);
  if (!cacheable) {
    auto [u, fresh] = s.uncacheable.try_emplace(std::string(key), 0);
    u->second = now_ns + uncacheable_ttl_ns_;
  }
  auto it = s.fills.find(key);
  if (it == s.fills.end() || it->second.filler != filler) return out;
  out.assign(it->second.waiters.begin(), it->second.waiters.end());
  s.fills.erase(it);
  return out;
}

bool FillTable::cancel(std::string_view key, Waiter who) {
  Shard& s = shard_of(key);
  std::lock_guard lock(s.mu);
  auto it = s.fills.find(key);
  if (it == s.fills.end()) return false;
  auto& w = it->second.waiters;
  auto pos = std::find(w.begin(), w.end(), who);
  if (pos == w.end()) return false;
  w.erase(pos);
  return true;
}

std::vector<FillTable::Handover> FillTable::expire(uint64_t now_ns) {
  std::vector<Handover> out;
  for (auto& sp : shards_) {
    Shard& s = *sp;
    std::lock_guard lock(s.mu);
    for (auto it = s.fills.begin(); it != s.fills.end();) {
      Shard::Fill& f = it->second;
      if (now_ns < f.deadline_ns) {
        ++it;
        continue;
      }
      if (f.waiters.empty()) {
        it = s.fills.erase(it);
        continue;
      }
      f.filler = f.waiters.front();
      f.waiters.pop_front();
      f.deadline_ns = now_ns + lock_timeout_ns_;
      out.push_back(Handover{it->first, f.filler});
      ++it;
    }
    for (auto it = s.uncacheable.begin(); it != s.uncacheable.end();) {
      it = now_ns >= it->second ? s.uncacheable.erase(it) : std::next(it);
    }
  }
  return out;
}

size_t FillTable::in_progress() const {
  size_t n = 0;
  for (const auto& sp : shards_) {
    std::lock_guard lock(sp->mu);
    n += sp->fills.size();
  }
  return n;
}

uint64_t FillTable::collapsed_waiters() const {
  uint64_t n = 0;
  for (const auto& sp : shards_) n += sp->collapsed.load(std::memory_order_relaxed);
  return n;
}

}  // namespace ringway::cache
