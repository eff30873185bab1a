// Shared, process-wide state of upstream instances (issue 14): one cache-line record per instance
// (requests in flight, peak-EWMA latency, active-check verdict, ejection) and one per cluster
// (how many of its instances are out). Built once at start-up beside upstream::Clusters, never
// resized, and read and written by every worker with atomics only: no mutex on the request path.
// Balancer, Outlier, HealthChecker and the circuit breaker are functions over these records.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

namespace ringway::upstream {

// Memory orders, once for the whole module:
//  * Counters read only as numbers (in_flight, consecutive_failures, ejection_count, streaks,
//    the EWMA) use relaxed operations. Each is one atomic word, so every read-modify-write is
//    exact (no lost update), but nothing else is published through them: a worker that sees an
//    in-flight count of 7 learns nothing about other memory, and needs nothing.
//  * State transitions that exactly one thread must win (ejecting, returning from ejection,
//    health flips, probe claims) are compare-and-swap with acq_rel on success, so the winner's
//    writes before the CAS (for example consecutive_failures reset, ejection_count++) are visible
//    to a thread that later acquires the same word; loads of those words use acquire.
//  * Cluster-level counts (ClusterState) change only as a consequence of a won transition on a
//    host record, so each transition moves the count exactly once.

inline constexpr uint64_t kNsPerSecond = 1'000'000'000ull;
// Finagle's and Envoy's default decay window for peak-EWMA: a sample's weight halves in
// tau * ln 2 ~ 7 s without traffic.
inline constexpr uint64_t kDefaultEwmaDecayNs = 10 * kNsPerSecond;

struct alignas(64) HostState {
  // Requests in flight to this instance, counted from the pick (so pending connects are included)
  // to the end of the exchange, by every worker.
  std::atomic<uint32_t> in_flight{0};
  // Passive health: consecutive connect failures, resets and 5xx, process-wide.
  std::atomic<uint32_t> consecutive_failures{0};
  // How many times this instance has been ejected: the next ejection lasts base * 2^count.
  std::atomic<uint32_t> ejection_count{0};
  // Active-check verdict: 1 healthy (the start state), 0 unhealthy.
  std::atomic<uint8_t> healthy{1};
  // DNS slots (upstream/dns.h): 0 while the slot has no address; never picked then, even in
  // panic mode. Always 1 for an instance with a fixed address. Fits the padding after healthy.
  std::atomic<uint8_t> present{1};
  // Passive health: 0 when in service, else the CLOCK_MONOTONIC ns it may come back at. An expired
  // value is cleared by exactly one thread (return_if_expired), which also gives back the
  // cluster's ejection reservation.
  std::atomic<uint64_t> ejected_until_ns{0};
  // Peak-EWMA latency as the bits of a double (ns) and the time of its last sample.
  std::atomic<uint64_t> ewma_bits{0};
  std::atomic<uint64_t> ewma_stamp_ns{0};
  // Active checks: the time the next probe is due (claimed by CAS: one prober per interval per
  // process), consecutive probe results, and when the instance last became healthy (slow start).
  std::atomic<uint64_t> next_probe_ns{0};
  std::atomic<uint32_t> check_successes{0};
  std::atomic<uint32_t> check_failures{0};
  std::atomic<uint64_t> healthy_since_ns{0};
};
static_assert(alignof(HostState) == 64 && sizeof(HostState) % 64 == 0,
              "one record per cache line(s): workers hammering two instances never share a line");
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free);

struct alignas(64) ClusterState {
  uint32_t size = 0;                   // instances in the cluster (immutable)
  std::atomic<uint32_t> ejected{0};    // instances ejected now (reserved before the host CAS)
  std::atomic<uint32_t> unhealthy{0};  // instances whose active-check verdict is unhealthy
};

// --- requests in flight (process-wide; pair every started with one finished) ---------------
inline void request_started(HostState& h) { h.in_flight.fetch_add(1, std::memory_order_relaxed); }
inline void request_finished(HostState& h) { h.in_flight.fetch_sub(1, std::memory_order_relaxed); }

// --- peak-EWMA latency (Finagle's PeakEwma, Envoy's least_request + EWMA) ------------------
//   w = exp(-dt / tau), dt = ns since the previous sample
//   sample > ewma:  ewma = sample                 (jumps up at once on a slow response)
//   otherwise:      ewma = ewma * w + sample * (1 - w)
// Reading decays toward zero with the same w (latency_ewma), so an instance that was slow and
// then avoided is tried again after a few tau instead of being starved forever.
// Two workers recording at once may each compute from the same old value; the CAS loop keeps
// one coherent double, and the stamp may lag by one sample: a statistics-grade race, by design.
void record_latency(HostState& h, uint64_t sample_ns, uint64_t now_ns,
                    uint64_t decay_ns = kDefaultEwmaDecayNs);
double latency_ewma(const HostState& h, uint64_t now_ns, uint64_t decay_ns = kDefaultEwmaDecayNs);

// --- availability ---------------------------------------------------------------------------
// If h's ejection has expired, clear it (exactly one caller wins and returns the cluster's
// reservation and resets the failure streak). Returns whether h is (now) not ejected.
bool return_if_expired(HostState& h, ClusterState& c, uint64_t now_ns);
// Healthy by active checks and not ejected (an expired ejection is returned on the way).
inline bool is_available(HostState& h, ClusterState& c, uint64_t now_ns) {
  if (h.healthy.load(std::memory_order_relaxed) == 0) return false;
  uint64_t until = h.ejected_until_ns.load(std::memory_order_acquire);
  return until == 0 || (now_ns >= until && return_if_expired(h, c, now_ns));
}
// Instances that are neither unhealthy nor ejected, from the cluster counts (O(1); an instance
// both unhealthy and ejected is counted twice, so this errs toward panic, never away from it).
inline uint32_t available_estimate(const ClusterState& c) {
  uint32_t out = c.ejected.load(std::memory_order_relaxed) + c.unhealthy.load(std::memory_order_relaxed);
  return out >= c.size ? 0 : c.size - out;
}

}  // namespace ringway::upstream
