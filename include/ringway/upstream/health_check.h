// Active health checks as a state machine without I/O (issue 14): which worker probes an
// instance now (one probe per interval per process: whoever wins a CAS on next_probe_ns), what a
// probe's result does to the shared verdict (healthy/unhealthy thresholds, expected statuses),
// and the slow-start ramp after recovery. The lead's probe I/O (a request through the io_uring
// loop) calls claim_probe, then report_probe. Pure functions over HostState/ClusterState.
#pragma once

#include <cstdint>

#include "ringway/upstream/host_state.h"

namespace ringway::upstream {

struct HealthCheckConfig {
  uint64_t interval_ns = kNsPerSecond;
  uint64_t timeout_ns = kNsPerSecond / 2;  // the prober's business; a timeout is a failed probe
  uint32_t healthy_threshold = 2;          // consecutive passes that bring an instance back
  uint32_t unhealthy_threshold = 3;        // consecutive failures that take it out
  // Expected statuses: up to four inclusive ranges ("200-399" is one); none means 200-399.
  struct Range {
    uint16_t lo, hi;
  };
  Range expect[4] = {{200, 399}, {0, 0}, {0, 0}, {0, 0}};
  uint8_t expect_count = 1;
  uint64_t slow_start_ns = 0;  // 0: a recovered instance takes its full weight at once
};

// What a probe result changed.
enum class HealthTransition : uint8_t { kNone, kBecameHealthy, kBecameUnhealthy };

class HealthChecker {
 public:
  // Whether a response status passes the check.
  static bool expected(const HealthCheckConfig& cfg, uint16_t status);
  // True for exactly one caller per due probe across all workers: the one whose CAS moves
  // next_probe_ns from a time <= now to now + interval. The first probe is due at once.
  static bool claim_probe(const HealthCheckConfig& cfg, HostState& h, uint64_t now_ns);
  // A probe finished: passed (expected status in time) or not (timeout, error, other status).
  static HealthTransition report_probe(const HealthCheckConfig& cfg, HostState& h,
                                       ClusterState& c, bool passed, uint64_t now_ns);
  // Slow start: the share of its weight (1..100 %) an instance that became healthy at
  // healthy_since_ns gets at now_ns, rising linearly from 10 % over cfg.slow_start_ns.
  static uint32_t weight_percent(uint64_t slow_start_ns, const HostState& h, uint64_t now_ns);
};

}  // namespace ringway::upstream
