// Which instance of a cluster gets a request (issue 14): round_robin, least_request (power of two
// choices over process-wide in-flight counts, optionally times peak-EWMA latency), random, and a
// consistent hash ring. One Balancer per cluster, built at start-up and then read-only, shared by
// every worker; the mutable parts of a pick are the shared HostState atomics and what the worker
// owns and passes in (its cursor for this cluster, its Rng). pick() never allocates or locks.
//
// Weights become a slot table (each instance appears weight/gcd times, interleaved by smooth
// weighted round robin): round_robin walks it with the worker's cursor, random and the two
// least_request candidates index it at random, so weights cost nothing per pick. Unavailable
// instances (unhealthy or ejected) are skipped by probing forward; in panic mode (available share
// below the threshold) health is ignored, and if nothing is available everything is eligible:
// a gateway that balances over sick instances serves some requests, one that refuses serves none.
// Measured by bench/bench_upstream (release, this 2-core box under load, CPU time per pick):
// round robin and random 8-16 ns, least_request 20-34 ns, with peak-EWMA 44-55 ns (two exp()),
// hash ring 55-66 ns, on 4 or 10 instances with one ejected or none.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ringway/upstream/host_state.h"

namespace ringway::upstream {

enum class BalanceKind : uint8_t { kRoundRobin, kLeastRequest, kRandom, kHash };

// The worker's random generator (splitmix64: one add, two multiplies); one per worker, never
// shared, so a pick touches no global RNG state.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by Lemire's multiply-shift (bias below n / 2^32, irrelevant here).
  uint32_t below(uint32_t n) {
    return static_cast<uint32_t>((static_cast<uint64_t>(static_cast<uint32_t>(next())) * n) >> 32);
  }
};

// The hash of the bytes the caller extracted for a hash balancer (a header's value, a cookie's
// value, the client address bytes): FNV-1a with a splitmix finalizer, stable across processes.
uint64_t hash_key(std::string_view bytes);

struct BalancerOptions {
  BalanceKind kind = BalanceKind::kLeastRequest;
  bool peak_ewma = false;              // least_request: cost = ewma * (in_flight + 1) / weight
  uint64_t ewma_decay_ns = kDefaultEwmaDecayNs;
  uint32_t panic_threshold_percent = 50;  // below this available share, balance over all
  uint64_t slow_start_ns = 0;          // least_request: a recovered instance's weight ramps up
  uint32_t ring_points_per_weight = 160;  // hash ring: points per unit of weight (ketama's 160)
};

struct PickInput {
  uint64_t now_ns = 0;
  uint64_t hash = 0;                       // kHash only: hash_key(bytes)
  uint32_t exclude = UINT32_MAX;           // a retry's previous instance (local index) or none
};

class Balancer {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kMaxSlots = 4096;

  // hosts and cluster: this cluster's shared records (hosts.size() == cluster.size); weights
  // (>= 1; empty means all 1) and keys (an instance's stable identity, e.g. "10.0.0.1:80": ring
  // positions follow it, so adding or removing an instance moves only that instance's keys;
  // empty means the index) are per instance. The records must outlive the Balancer.
  Balancer(const BalancerOptions& opt, std::span<HostState> hosts, ClusterState& cluster,
           std::span<const uint32_t> weights = {}, std::span<const std::string_view> keys = {});

  // The local index (0..size-1) of the instance for this request, or kNone only when the
  // cluster's sole instance is excluded. cursor is the worker's for this cluster.
  uint32_t pick(const PickInput& in, uint32_t& cursor, Rng& rng) const;

  uint32_t size() const { return static_cast<uint32_t>(hosts_.size()); }
  const BalancerOptions& options() const { return opt_; }
  // For tests and /upstreams: the slot table and ring sizes.
  size_t slot_count() const { return slots_.size(); }
  size_t ring_points() const { return ring_.size(); }

 private:
  struct RingPoint {
    uint64_t hash;
    uint32_t index;
  };
  bool eligible(uint32_t i, const PickInput& in, bool check_health) const;
  uint32_t probe_slots(uint32_t start, const PickInput& in, bool check_health, uint32_t not_this,
                       uint32_t* pos = nullptr) const;
  uint32_t pick_in(const PickInput& in, uint32_t& cursor, Rng& rng, bool check_health) const;
  uint32_t least_request(const PickInput& in, uint32_t& cursor, Rng& rng, bool check_health) const;
  uint32_t ring_lookup(const PickInput& in, bool check_health) const;

  BalancerOptions opt_;
  std::span<HostState> hosts_;
  ClusterState* cluster_;
  std::vector<uint32_t> weights_;   // per instance
  std::vector<uint32_t> slots_;     // weighted, interleaved instance indexes
  std::vector<RingPoint> ring_;     // kHash only, sorted by hash
};

}  // namespace ringway::upstream
