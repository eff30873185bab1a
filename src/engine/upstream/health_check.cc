// The active-check state machine; memory orders as in host_state.h.
#include "ringway/upstream/health_check.h"

namespace ringway::upstream {

bool HealthChecker::expected(const HealthCheckConfig& cfg, uint16_t status) {
  if (cfg.expect_count == 0) return status >= 200 && status <= 399;
  for (uint8_t i = 0; i < cfg.expect_count && i < 4; ++i) {
    if (status >= cfg.expect[i].lo && status <= cfg.expect[i].hi) return true;
  }
  return false;
}

bool HealthChecker::claim_probe(const HealthCheckConfig& cfg, HostState& h, uint64_t now_ns) {
  uint64_t due = h.next_probe_ns.load(std::memory_order_acquire);
  // A failed CAS reloads `due`: if another worker moved it past now, the probe is theirs.
  while (due <= now_ns) {
    if (h.next_probe_ns.compare_exchange_weak(due, now_ns + cfg.interval_ns,
                                              std::memory_order_acq_rel,
                                              std::memory_order_acquire)) {
      return true;
    }
  }
  return false;
}

HealthTransition HealthChecker::report_probe(const HealthCheckConfig& cfg, HostState& h,
                                             ClusterState& c, bool passed, uint64_t now_ns) {
  if (passed) {
    h.check_failures.store(0, std::memory_order_relaxed);
    const uint32_t n = h.check_successes.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n < cfg.healthy_threshold) return HealthTransition::kNone;
    uint8_t was = 0;
    // healthy_since first, so a worker that sees healthy == 1 (acquire) also sees the ramp start.
    h.healthy_since_ns.store(now_ns, std::memory_order_relaxed);
    if (!h.healthy.compare_exchange_strong(was, 1, std::memory_order_acq_rel)) {
      return HealthTransition::kNone;
    }
    c.unhealthy.fetch_sub(1, std::memory_order_acq_rel);
    return HealthTransition::kBecameHealthy;
  }
  h.check_successes.store(0, std::memory_order_relaxed);
  const uint32_t n = h.check_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < cfg.unhealthy_threshold) return HealthTransition::kNone;
  uint8_t was = 1;
  if (!h.healthy.compare_exchange_strong(was, 0, std::memory_order_acq_rel)) {
    return HealthTransition::kNone;
  }
  c.unhealthy.fetch_add(1, std::memory_order_acq_rel);
  return HealthTransition::kBecameUnhealthy;
}

uint32_t HealthChecker::weight_percent(uint64_t slow_start_ns, const HostState& h,
                                       uint64_t now_ns) {
  if (slow_start_ns == 0) return 100;
  const uint64_t since = h.healthy_since_ns.load(std::memory_order_relaxed);
  if (since == 0 || now_ns >= since + slow_start_ns) return 100;  // 0: healthy from the start
  if (now_ns <= since) return 10;
  // 10 % at recovery, 100 % after slow_start_ns: a cold instance (empty caches, JIT) gets a
  // trickle first instead of its full share on the first tick.
  return 10 + static_cast<uint32_t>(90 * (now_ns - since) / slow_start_ns);
}

}  // namespace ringway::upstream
