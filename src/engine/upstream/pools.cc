#include <cstddef>

#include "ringway/upstream/upstream_conn.h"

namespace ringway::upstream {

void Pools::init(size_t instances, uint32_t max_idle_per_instance, uint64_t idle_timeout_ms) {
  heads_.assign(instances, nullptr);
  sizes_.assign(instances, 0);
  max_idle_ = max_idle_per_instance;
  idle_timers_.set_duration_ms(idle_timeout_ms);
}

UpstreamConn* Pools::take(uint32_t i) {
  UpstreamConn* u = heads_[i];
  if (u != nullptr) remove(*u);
  return u;
}

bool Pools::put(UpstreamConn& u, uint64_t now_ns) {
  const uint32_t i = u.instance;
  if (sizes_[i] >= max_idle_) return false;
  u.pool_prev = nullptr;
  u.pool_next = heads_[i];
  if (heads_[i] != nullptr) heads_[i]->pool_prev = &u;
  heads_[i] = &u;
  ++sizes_[i];
  idle_timers_.arm(&u.timer, now_ns);
  return true;
}

void Pools::remove(UpstreamConn& u) {
  const uint32_t i = u.instance;
  if (u.pool_prev != nullptr) {
    u.pool_prev->pool_next = u.pool_next;
  } else if (heads_[i] == &u) {
    heads_[i] = u.pool_next;
  } else {
    return;  // not pooled
  }
  if (u.pool_next != nullptr) u.pool_next->pool_prev = u.pool_prev;
  u.pool_prev = u.pool_next = nullptr;
  --sizes_[i];
  core::TimerList::disarm(&u.timer);
}

UpstreamConn* Pools::expired(uint64_t now_ns) {
  core::TimerNode* n = idle_timers_.pop_expired(now_ns);
  if (n == nullptr) return nullptr;
  return static_cast<UpstreamConn*>(net::Conn::of_timer(n));
}

UpstreamConn* Pools::any() const {
  for (UpstreamConn* h : heads_) {
    if (h != nullptr) return h;
  }
  return nullptr;
}

}  // namespace ringway::upstream
