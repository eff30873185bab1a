// Passive health (issue 14): outlier ejection from the outcomes of real requests. N consecutive
// failures (connect failure, reset, 5xx), counted across all workers, eject an instance for
// base * 2^(k-1) (k = its ejection number, capped at max); at most max_ejected_percent of a
// cluster is out at once, reserved atomically so two workers cannot both pass the cap. Pure
// functions over the shared HostState/ClusterState records; any worker, no I/O, no allocation.
#pragma once

#include <cstdint>

#include "ringway/upstream/host_state.h"

namespace ringway::upstream {

struct OutlierConfig {
  uint32_t consecutive_failures = 5;        // 0 disables ejection
  uint64_t base_ejection_ns = 5 * kNsPerSecond;
  uint64_t max_ejection_ns = 300 * kNsPerSecond;
  // As Envoy: a share of the cluster, but at least one instance may be ejected when > 0.
  uint32_t max_ejected_percent = 50;
};

// How many instances of a cluster of `size` may be ejected at once under cfg.
uint32_t max_ejected(const OutlierConfig& cfg, uint32_t size);
// How long the k-th ejection (k >= 1) lasts: base * 2^(k-1), capped at max.
uint64_t ejection_time_ns(const OutlierConfig& cfg, uint32_t k);

class Outlier {
 public:
  // A response that counts as a success (not 5xx): the streak starts over.
  static void report_success(HostState& h) {
    h.consecutive_failures.store(0, std::memory_order_relaxed);
  }
  // A connect failure, reset or 5xx. Returns true when this call ejected the instance. Exactly
  // the call that brings the process-wide streak to the threshold tries to eject (fetch_add hands
  // every failure a distinct number); if the cap refuses, each further failure tries again.
  static bool report_failure(const OutlierConfig& cfg, HostState& h, ClusterState& c,
                             uint64_t now_ns);
  // Returns every instance whose ejection has expired (the pick path does this lazily for the
  // instances it looks at; a periodic sweep keeps the cluster counts fresh for the others).
  static void sweep(HostState* hosts, ClusterState& c, uint64_t now_ns);
};

}  // namespace ringway::upstream
