// Retries (issue 14): whether a failed attempt may be tried again (the route's policy, the
// cause, idempotency or "no byte reached the upstream", attempts left) and a process-wide retry
// budget (Envoy's retry_budget): a retry may start only while retries in flight stay within
// budget_percent of requests in flight, or a small minimum, so retries cannot multiply the load
// of an outage. One RetryBudget per cluster, shared by every worker; atomics only. The retry goes
// to another instance: Balancer::pick with PickInput::exclude set to the failed one.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "ringway/upstream/failure.h"

namespace ringway::upstream {

// Causes, as the config's "on" list names them; a policy is a mask of these bits.
enum RetryOn : uint8_t {
  kRetryConnectFailure = 1u << 0,  // "connect-failure": refused, unreachable, connect timeout
  kRetryReset = 1u << 1,           // "reset": closed or reset before any response byte
  kRetryTimeout = 1u << 2,         // "timeout": no response within the (per-try) timeout
  kRetry502 = 1u << 3,
  kRetry503 = 1u << 4,
  kRetry504 = 1u << 5,
};

struct RetryPolicy {
  uint32_t attempts = 1;  // tries in all, the first included: 1 means never retry
  uint8_t on = 0;         // RetryOn mask
};

// The cause a failure or an upstream status is, or 0 when no retry policy can cover it (a bad
// head or a body that broke after the response began is never retried: the client may have it).
uint8_t retry_cause(FailureKind k);
uint8_t retry_cause_status(uint16_t status);

// May the request be tried again after `attempts_done` tries that ended in `cause`? Only when
// the policy covers the cause, tries are left, and it is safe: the method is idempotent (RFC 9110
// 9.2.2), or none of the request's bytes reached the upstream (a failed connect), so the
// upstream cannot have acted on it.
inline bool may_retry(const RetryPolicy& p, uint8_t cause, uint32_t attempts_done, bool idempotent,
                      bool bytes_reached_upstream) {
  return cause != 0 && (p.on & cause) != 0 && attempts_done < p.attempts &&
         (idempotent || !bytes_reached_upstream);
}

class RetryBudget {
 public:
  // Envoy's defaults: 20 % of active requests, at least 3 concurrent retries.
  explicit RetryBudget(uint32_t budget_percent = 20, uint32_t min_retries = 3)
      : percent_(budget_percent), min_(min_retries) {}

  // Every request (first attempt) to the cluster, from start to its end (retries included).
  void request_started() { requests_.fetch_add(1, std::memory_order_relaxed); }
  void request_finished() { requests_.fetch_sub(1, std::memory_order_relaxed); }

  // Reserve a retry: true if, with it, retries in flight <= max(min, requests * percent / 100).
  // A CAS loop, so concurrent workers never pass the allowance together; pair with
  // retry_finished. Relaxed: the counts publish nothing but themselves.
  bool try_start_retry() {
    uint32_t cur = retries_.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t reqs = requests_.load(std::memory_order_relaxed);
      const uint64_t allowed = std::max<uint64_t>(min_, reqs * percent_ / 100);
      if (cur + 1ull > allowed) return false;
      if (retries_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
    }
  }
  void retry_finished() { retries_.fetch_sub(1, std::memory_order_relaxed); }

  uint32_t requests_in_flight() const { return requests_.load(std::memory_order_relaxed); }
  uint32_t retries_in_flight() const { return retries_.load(std::memory_order_relaxed); }

 private:
  uint32_t percent_;
  uint32_t min_;
  alignas(64) std::atomic<uint32_t> requests_{0};
  alignas(64) std::atomic<uint32_t> retries_{0};
};

}  // namespace ringway::upstream
