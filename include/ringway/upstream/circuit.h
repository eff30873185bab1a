// Circuit breaking (issue 14): per-instance limits on connections, pending requests (waiting for
// a connection) and requests in flight. Over a limit the gateway answers 503 at once instead of
// queueing. One CircuitCounters per instance beside its HostState, shared by every worker;
// try_acquire is a CAS loop, so concurrent workers never take a counter past its limit.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringway::upstream {

enum class CircuitResource : uint8_t { kConnection, kPending, kRequest };

struct CircuitLimits {
  uint32_t max_connections = 1024;
  uint32_t max_pending = 1024;
  uint32_t max_requests = 1024;
  uint32_t limit(CircuitResource r) const {
    return r == CircuitResource::kConnection ? max_connections
           : r == CircuitResource::kPending  ? max_pending
                                             : max_requests;
  }
};

struct alignas(64) CircuitCounters {
  std::atomic<uint32_t> connections{0};
  std::atomic<uint32_t> pending{0};
  std::atomic<uint32_t> requests{0};
  std::atomic<uint64_t> rejected{0};  // for /metrics: circuit-breaker rejections

  std::atomic<uint32_t>& of(CircuitResource r) {
    return r == CircuitResource::kConnection ? connections
           : r == CircuitResource::kPending  ? pending
                                             : requests;
  }
  uint32_t load(CircuitResource r) { return of(r).load(std::memory_order_relaxed); }
};

// Takes one unit of r if that keeps it <= its limit; otherwise counts a rejection. A plain
// fetch_add-then-undo would let a racing reader see limit + k for an instant and make a third
// worker reject wrongly; the CAS never writes a value over the limit. Relaxed: the counter
// guards a number, not other memory.
inline bool try_acquire(CircuitCounters& c, const CircuitLimits& l, CircuitResource r) {
  std::atomic<uint32_t>& a = c.of(r);
  const uint32_t limit = l.limit(r);
  uint32_t cur = a.load(std::memory_order_relaxed);
  do {
    if (cur >= limit) {
      c.rejected.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!a.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

inline void release(CircuitCounters& c, CircuitResource r) {
  c.of(r).fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace ringway::upstream
