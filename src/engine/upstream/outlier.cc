// Outlier ejection; the memory orders are explained in host_state.h.
#include "ringway/upstream/outlier.h"

#include <algorithm>

namespace ringway::upstream {

uint32_t max_ejected(const OutlierConfig& cfg, uint32_t size) {
  if (cfg.max_ejected_percent == 0 || size == 0) return 0;
  uint64_t n = static_cast<uint64_t>(size) * std::min<uint32_t>(cfg.max_ejected_percent, 100) / 100;
  return static_cast<uint32_t>(std::max<uint64_t>(n, 1));
}

uint64_t ejection_time_ns(const OutlierConfig& cfg, uint32_t k) {
  if (k == 0) k = 1;
  // base * 2^(k-1) without overflow: stop doubling once past the cap.
  uint64_t t = cfg.base_ejection_ns;
  for (uint32_t i = 1; i < k && t < cfg.max_ejection_ns; ++i) t = t > UINT64_MAX / 2 ? UINT64_MAX : t * 2;
  return std::min(t, cfg.max_ejection_ns);
}

bool Outlier::report_failure(const OutlierConfig& cfg, HostState& h, ClusterState& c,
                             uint64_t now_ns) {
  if (cfg.consecutive_failures == 0) return false;
  const uint32_t n = h.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < cfg.consecutive_failures) return false;
  // Already out: a late failure of a request sent before the ejection changes nothing.
  uint64_t until = h.ejected_until_ns.load(std::memory_order_acquire);
  if (until != 0) {
    if (now_ns < until || !return_if_expired(h, c, now_ns)) return false;
    // It had expired and is back: this failure starts a new streak (and may end it at once).
    h.consecutive_failures.store(1, std::memory_order_relaxed);
    if (cfg.consecutive_failures > 1) return false;
  }
  // Reserve a slot under the cap first, then take the host; a lost host CAS gives the slot back,
  // so ClusterState::ejected never exceeds the cap, not even for an instant.
  const uint32_t cap = max_ejected(cfg, c.size);
  uint32_t cur = c.ejected.load(std::memory_order_relaxed);
  do {
    if (cur >= cap) return false;
  } while (!c.ejected.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel,
                                            std::memory_order_relaxed));
  const uint32_t k = h.ejection_count.load(std::memory_order_relaxed) + 1;
  uint64_t expected = 0;
  if (!h.ejected_until_ns.compare_exchange_strong(expected, now_ns + ejection_time_ns(cfg, k),
                                                  std::memory_order_acq_rel,
                                                  std::memory_order_acquire)) {
    c.ejected.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  h.ejection_count.fetch_add(1, std::memory_order_relaxed);
  h.consecutive_failures.store(0, std::memory_order_relaxed);
  return true;
}

void Outlier::sweep(HostState* hosts, ClusterState& c, uint64_t now_ns) {
  for (uint32_t i = 0; i < c.size; ++i) {
    if (hosts[i].ejected_until_ns.load(std::memory_order_acquire) != 0) return_if_expired(hosts[i], c, now_ns);
  }
}

}  // namespace ringway::upstream
