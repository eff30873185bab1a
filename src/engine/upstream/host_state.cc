// Peak-EWMA arithmetic and the return from ejection; see host_state.h for the memory orders.
#include "ringway/upstream/host_state.h"

#include <bit>
#include <cmath>

namespace ringway::upstream {

namespace {
double decay_weight(uint64_t then_ns, uint64_t now_ns, uint64_t decay_ns) {
  if (now_ns <= then_ns || decay_ns == 0) return now_ns <= then_ns ? 1.0 : 0.0;
  return std::exp(-static_cast<double>(now_ns - then_ns) / static_cast<double>(decay_ns));
}
}  // namespace

void record_latency(HostState& h, uint64_t sample_ns, uint64_t now_ns, uint64_t decay_ns) {
  const double sample = static_cast<double>(sample_ns);
  const double w = decay_weight(h.ewma_stamp_ns.load(std::memory_order_relaxed), now_ns, decay_ns);
  uint64_t old_bits = h.ewma_bits.load(std::memory_order_relaxed);
  for (;;) {
    const double old = std::bit_cast<double>(old_bits);
    // The first sample (old == 0) is taken as is: there is nothing to average with.
    const double next = (sample > old || old == 0.0) ? sample : old * w + sample * (1.0 - w);
    if (h.ewma_bits.compare_exchange_weak(old_bits, std::bit_cast<uint64_t>(next),
                                          std::memory_order_relaxed)) {
      break;
    }
  }
  // Keep the newest stamp: a late writer with an older now must not move it back.
  uint64_t stamp = h.ewma_stamp_ns.load(std::memory_order_relaxed);
  while (stamp < now_ns &&
         !h.ewma_stamp_ns.compare_exchange_weak(stamp, now_ns, std::memory_order_relaxed)) {
  }
}

double latency_ewma(const HostState& h, uint64_t now_ns, uint64_t decay_ns) {
  const double v = std::bit_cast<double>(h.ewma_bits.load(std::memory_order_relaxed));
  return v * decay_weight(h.ewma_stamp_ns.load(std::memory_order_relaxed), now_ns, decay_ns);
}

bool return_if_expired(HostState& h, ClusterState& c, uint64_t now_ns) {
  uint64_t until = h.ejected_until_ns.load(std::memory_order_acquire);
  if (until == 0) return true;
  if (now_ns < until) return false;
  // A fresh streak before the instance is visible as returned: failures counted while it was
  // out (late completions of requests sent before the ejection) must not re-eject it at once.
  h.consecutive_failures.store(0, std::memory_order_relaxed);
  if (h.ejected_until_ns.compare_exchange_strong(until, 0, std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
    c.ejected.fetch_sub(1, std::memory_order_acq_rel);  // the winner alone gives the slot back
    return true;
  }
  // Lost the race: someone returned it (until == 0) or re-ejected it with a new time.
  return until == 0;
}

}  // namespace ringway::upstream
