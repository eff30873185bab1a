// The narrow interface between a cluster-scoped rate limit (src/filter/rate_limit) and the
// engine's Redis connection (src/engine/redis): the filter asks for leases and gives tokens
// back, the engine sends them over one pipelined connection per worker and reports each answer
// to the listener later, from that worker's loop. One channel per worker, owned by the Worker,
// used only on its thread; RedisStats is process-wide (atomics, summed by /metrics).
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace ringway::filter {

// The answer to one take(). ok = false: Redis did not answer (connection lost, timed out, an
// error reply); count = 0 with ok: the bucket is empty for retry_ns more (Redis' clock, as a
// duration). queued_ns is the caller clock at take(): the lease's lifetime starts there.
struct LeaseAnswer {
  uint64_t tag = 0;
  bool ok = false;
  uint32_t count = 0;
  uint64_t retry_ns = 0;
  uint64_t remaining = 0;
  uint64_t full_in_ns = 0;
  uint64_t stamp = 0;
  uint64_t queued_ns = 0;
  uint64_t now_ns = 0;  // when the answer came (caller clock)
  bool lost = false;    // !ok because the connection went away: the channel may already be back
};

// A cluster lease's lifetime, and how long a Redis request may wait before Redis counts as down
// (so a request paused for a lease waits at most this long before the failure policy decides).
inline constexpr uint64_t kLeaseTtlNs = 500'000'000;

class LeaseListener {
 public:
  virtual ~LeaseListener() = default;
  // Called from the worker's loop, never from inside take().
  virtual void on_lease(const LeaseAnswer& answer) = 0;
};

// Counters of the cluster limit, process-wide: the channels write the Redis ones, the filters
// the decisions. Relaxed atomics: at most one increment per Redis round trip or per decision
// taken without a leased token.
struct RedisStats {
  static constexpr int kRttBuckets = 8;  // upper bounds in redis_link.cc
  std::atomic<uint64_t> errors{0};           // error replies, lost connections, timeouts
  std::atomic<uint64_t> connects{0};         // connections established
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> timeouts{0};         // connections dropped because Redis stopped answering
  std::atomic<uint64_t> takes{0};            // lease requests sent (round trips)
  std::atomic<uint64_t> gives{0};            // give-backs sent
  std::atomic<uint64_t> granted{0};          // tokens Redis granted
  std::atomic<uint64_t> script_loads{0};
  std::atomic<uint64_t> rtt_count{0};
  std::atomic<uint64_t> rtt_sum_ns{0};
  std::atomic<uint64_t> rtt_le[kRttBuckets]{};  // cumulative is computed when rendered
  // Decisions taken without a leased token in hand.
  std::atomic<uint64_t> waited{0};        // paused until a lease arrived
  std::atomic<uint64_t> denied{0};        // 429: Redis said the bucket is empty
  std::atomic<uint64_t> policy_deny{0};   // Redis down: --redis-failure deny
  std::atomic<uint64_t> policy_allow{0};  // ... allow
  std::atomic<uint64_t> policy_local{0};  // ... local (decided by the per-instance share)
  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
};

class LeaseChannel {
 public:
  virtual ~LeaseChannel() = default;
  // Redis answers in time: a request may wait for a lease. False while disconnected after a
  // failure, or when the oldest request has waited longer than the timeout: the policy applies.
  virtual bool up(uint64_t now_ns) const = 0;
  // Asks for up to `want` tokens of bucket `key` (interval and tau of the GCRA, ns). The answer
  // goes to listener->on_lease with `tag`. False when the request cannot be sent (not up).
  virtual bool take(LeaseListener* listener, uint64_t tag, std::string_view key, uint64_t interval_ns,
                    uint64_t tau_ns, uint32_t want, uint64_t now_ns) = 0;
  // Gives n tokens of grant `stamp` back (fire and forget: Redis refuses when unsafe).
  virtual void give(std::string_view key, uint64_t interval_ns, uint64_t tau_ns, uint64_t stamp, uint32_t n,
                    uint64_t now_ns) = 0;
  virtual RedisStats& stats() = 0;
};

}  // namespace ringway::filter
