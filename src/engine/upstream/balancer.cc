// Balancing; the design is in balancer.h. Everything that can be computed once (slot table,
// ring) is computed in the constructor so a pick is a few loads, a multiply and a compare.
#include "ringway/upstream/balancer.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "ringway/upstream/health_check.h"

namespace ringway::upstream {

namespace {
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t hash_key(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a offset basis
  for (unsigned char ch : bytes) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  // FNV's low bits mix poorly for short keys; the finalizer spreads them over the ring.
  return mix64(h);
}

Balancer::Balancer(const BalancerOptions& opt, std::span<HostState> hosts, ClusterState& cluster,
                   std::span<const uint32_t> weights, std::span<const std::string_view> keys)
    : opt_(opt), hosts_(hosts), cluster_(&cluster) {
  const uint32_t n = static_cast<uint32_t>(hosts.size());
  weights_.assign(n, 1);
  for (uint32_t i = 0; i < n && i < weights.size(); ++i) weights_[i] = std::max<uint32_t>(weights[i], 1);

  // Slot table: weights reduced by their gcd (and scaled down past kMaxSlots), interleaved by
  // smooth weighted round robin (nginx's): weights 5,1,1 give a a b a c a a, not a a a a a b c.
  std::vector<uint64_t> w(n);
  uint32_t g = 0;
  for (uint32_t x : weights_) g = std::gcd(g, x);
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; ++i) total += w[i] = weights_[i] / (g ? g : 1);
  if (total > kMaxSlots) {
    uint64_t scaled = 0;
    for (uint32_t i = 0; i < n; ++i) scaled += w[i] = std::max<uint64_t>(1, w[i] * kMaxSlots / total);
    total = scaled;
  }
  slots_.reserve(total);
  std::vector<int64_t> current(n, 0);
  for (uint64_t s = 0; s < total; ++s) {
    uint32_t best = 0;
    for (uint32_t i = 0; i < n; ++i) {
      current[i] += static_cast<int64_t>(w[i]);
      if (current[i] > current[best]) best = i;
    }
    current[best] -= static_cast<int64_t>(total);
    slots_.push_back(best);
  }

  if (opt_.kind == BalanceKind::kHash && n > 0) {
    // Ketama-style ring: each instance owns points at hashes of (its key, point number). Points
    // depend only on the instance's own key and weight, so adding or removing an instance adds or
    // removes only its points, and only keys landing on them change owner.
    for (uint32_t i = 0; i < n; ++i) {
      const std::string fallback = std::to_string(i);
      const uint64_t base = hash_key(i < keys.size() ? keys[i] : std::string_view(fallback));
      const uint64_t points = static_cast<uint64_t>(opt_.ring_points_per_weight ? opt_.ring_points_per_weight : 1) *
                              std::min<uint32_t>(weights_[i], 64);
      for (uint64_t p = 0; p < points; ++p) {
        ring_.push_back({mix64(base + (p + 1) * 0x9e3779b97f4a7c15ull), i});
      }
    }
    std::sort(ring_.begin(), ring_.end(), [](const RingPoint& a, const RingPoint& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.index < b.index;
    });
  }
}

bool Balancer::eligible(uint32_t i, const PickInput& in, bool check_health) const {
  return i != in.exclude && hosts_[i].present.load(std::memory_order_relaxed) != 0 &&
         (!check_health || is_available(hosts_[i], *cluster_, in.now_ns));
}

uint32_t Balancer::probe_slots(uint32_t start, const PickInput& in, bool check_health,
                               uint32_t not_this, uint32_t* pos) const {
  const uint32_t s = static_cast<uint32_t>(slots_.size());
  uint32_t at = start;
  for (uint32_t k = 0; k < s; ++k) {
    const uint32_t i = slots_[at];
    if (i != not_this && eligible(i, in, check_health)) {
      if (pos) *pos = at;
      return i;
    }
    if (++at == s) at = 0;
  }
  return kNone;
}

uint32_t Balancer::least_request(const PickInput& in, uint32_t& cursor, Rng& rng,
                                 bool check_health) const {
  const uint32_t s = static_cast<uint32_t>(slots_.size());
  // The first candidate walks the slot table with the worker's cursor, the second is random:
  // still two independent-enough choices, and ties (an idle cluster) go round robin, so light
  // sequential traffic is spread evenly and predictably instead of by coin flips.
  const uint32_t a = probe_slots(cursor++ % s, in, check_health, kNone);
  if (a == kNone) return kNone;
  const uint32_t b = probe_slots(rng.below(s), in, check_health, a);
  if (b == kNone) return a;
  // Power of two choices (Mitzenmacher): comparing two random candidates' loads keeps the
  // maximum load within O(log log n) of the mean, without the herd that "least of all" causes
  // when every worker sees the same minimum. Load is (in_flight + 1) so idle instances still
  // differ by weight; with peak_ewma it is multiplied by the decayed latency (+1 ns so a fresh
  // instance with no sample is cheap but not free).
  auto cost = [&](uint32_t i) {
    const HostState& h = hosts_[i];
    double c = static_cast<double>(h.in_flight.load(std::memory_order_relaxed) + 1);
    if (opt_.peak_ewma) c *= latency_ewma(h, in.now_ns, opt_.ewma_decay_ns) + 1.0;
    uint32_t pct = HealthChecker::weight_percent(opt_.slow_start_ns, h, in.now_ns);
    return c / (static_cast<double>(weights_[i]) * pct);
  };
  return cost(b) < cost(a) ? b : a;
}

uint32_t Balancer::ring_lookup(const PickInput& in, bool check_health) const {
  auto it = std::lower_bound(ring_.begin(), ring_.end(), in.hash,
                             [](const RingPoint& p, uint64_t h) { return p.hash < h; });
  size_t at = static_cast<size_t>(it - ring_.begin());
  // Clockwise to the first eligible owner: keys of an unavailable instance spread over the others
  // in proportion to their points, everyone else's keys stay put.
  for (size_t k = 0; k < ring_.size(); ++k) {
    if (at == ring_.size()) at = 0;
    if (eligible(ring_[at].index, in, check_health)) return ring_[at].index;
    ++at;
  }
  return kNone;
}

uint32_t Balancer::pick_in(const PickInput& in, uint32_t& cursor, Rng& rng,
                           bool check_health) const {
  switch (opt_.kind) {
    case BalanceKind::kRoundRobin: {
      const uint32_t s = static_cast<uint32_t>(slots_.size());
      const uint32_t start = cursor % s;
      uint32_t at = start;
      const uint32_t i = probe_slots(start, in, check_health, kNone, &at);
      // Step past the slots just skipped: otherwise the instance after a dead one would take
      // the dead one's turns too (nginx's old uneven-share bug).
      cursor = (i != kNone ? at : start) + 1;
      return i;
    }
    case BalanceKind::kRandom:
      return probe_slots(rng.below(static_cast<uint32_t>(slots_.size())), in, check_health, kNone);
    case BalanceKind::kLeastRequest:
      return least_request(in, cursor, rng, check_health);
    case BalanceKind::kHash:
      return ring_lookup(in, check_health);
  }
  return kNone;
}

uint32_t Balancer::pick(const PickInput& in, uint32_t& cursor, Rng& rng) const {
  const uint32_t n = size();
  if (n <= 1) return n == 0 || in.exclude == 0 ? kNone : 0;
  // Panic (Envoy's healthy_panic_threshold): when too few instances are in service, sending all
  // traffic to them would overload them too; spreading over all serves a share at least.
  const bool panic = static_cast<uint64_t>(available_estimate(*cluster_)) * 100 <
                     static_cast<uint64_t>(opt_.panic_threshold_percent) * n;
  uint32_t i = pick_in(in, cursor, rng, !panic);
  if (i == kNone && !panic) i = pick_in(in, cursor, rng, false);
  return i;
}

}  // namespace ringway::upstream
