// An upstream connection and the per-worker keep-alive pools it rests in between requests.
// Owned by one worker. While busy it serves exactly one user: a forwarded exchange or an
// aggregate leg (later a health probe); the worker reports its events (connected, data, sent,
// failure) to that user, and to nobody while it is pooled.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringway/core/timer_list.h"
#include "ringway/http/parser.h"
#include "ringway/net/conn.h"

namespace ringway::proxy {
struct Exchange;
struct AggLeg;
}  // namespace ringway::proxy

namespace ringway::upstream {

struct UpstreamConn;

// An active health check in flight (issue 14, src/engine/upstream/health_io.cc): one per
// instance per worker at most, and one per instance per interval in the process (claim_probe).
struct HealthProbe {
  uint32_t instance = 0;
  UpstreamConn* up = nullptr;  // its connection, null when none is open
  bool active = false;
  uint64_t deadline_ns = 0;    // the check's timeout: a probe still waiting then has failed
};

struct UpstreamConn : net::Conn {
  bool connected = false;
  bool reusable = true;              // cleared by anything that leaves the framing in doubt
  bool send_queued = false;          // the user's send waits for that flush
  bool deliver_queued = false;       // TLS plaintext held back is to be delivered by the loop
  uint32_t instance = 0;             // index in Clusters::instances(): its pool
  proxy::Exchange* exchange = nullptr;  // the user, one of these two (or none while pooled)
  proxy::AggLeg* leg = nullptr;
  HealthProbe* probe = nullptr;         // or a health probe (issue 14)
  bool breaker_conn = false;            // holds a circuit-breaker connection unit (issue 14)
  bool breaker_pending = false;         // holds a pending unit until connected
  UpstreamConn* pool_prev = nullptr;    // idle list links
  UpstreamConn* pool_next = nullptr;   // (the idle timeout is Conn::timer)
  std::unique_ptr<http::ResponseParser> parser;
  uint64_t served = 0;
  const void* dns_address = nullptr;  // the DnsAddress it connected to (issue 14): its generation
  std::string out;                   // a leg's request head: outlives the leg while a send is in flight

  bool has_user() const { return exchange != nullptr || leg != nullptr || probe != nullptr; }
};

// Idle connections per instance, LIFO so that the warmest is reused first, each with an idle
// timeout. Bookkeeping only: opening and closing sockets is the worker's.
class Pools {
 public:
  void init(size_t instances, uint32_t max_idle_per_instance, uint64_t idle_timeout_ms);

  // The most recently pooled connection to instance i, taken out of the pool; null if none.
  UpstreamConn* take(uint32_t i);
  // Pools u (its idle timer starts at now); false if its instance's pool is full.
  bool put(UpstreamConn& u, uint64_t now_ns);
  // Takes u out of its pool; nothing if it is not pooled.
  void remove(UpstreamConn& u);
  // A pooled connection whose idle time is up (still pooled: the caller closes it), or null.
  UpstreamConn* expired(uint64_t now_ns);
  // Any pooled connection (drain closes them all), or null.
  UpstreamConn* any() const;

 private:
  std::vector<UpstreamConn*> heads_;
  std::vector<uint32_t> sizes_;
  uint32_t max_idle_ = 0;
  core::TimerList idle_timers_;
};

}  // namespace ringway::upstream
