// Timeouts as intrusive FIFO lists, one list per duration: every node in a list was armed with
// the same duration, so appending keeps the list sorted by deadline and arm/disarm/expire are
// O(1). The owner (a worker) checks the heads on each tick. Single-threaded; nodes are embedded
// in connection objects and must be disarmed before their owner is recycled.
#pragma once

#include <cstdint>

namespace ringway::core {

struct TimerNode {
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  uint64_t deadline_ns = 0;
  bool armed() const { return prev != nullptr; }
};

class TimerList {
 public:
  TimerList() { head_.prev = head_.next = &head_; }
  TimerList(const TimerList&) = delete;
  TimerList& operator=(const TimerList&) = delete;

  void set_duration_ms(uint64_t ms) { duration_ns_ = ms * 1'000'000ull; }
  uint64_t duration_ns() const { return duration_ns_; }

  // (Re)arms n to fire duration after now.
  void arm(TimerNode* n, uint64_t now_ns) {
    disarm(n);
    n->deadline_ns = now_ns + duration_ns_;
    n->prev = head_.prev;
    n->next = &head_;
    head_.prev->next = n;
    head_.prev = n;
  }

  static void disarm(TimerNode* n) {
    if (!n->armed()) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
  }

  // The earliest node that has expired at now, unlinked; nullptr if none.
  TimerNode* pop_expired(uint64_t now_ns) {
    TimerNode* n = head_.next;
    if (n == &head_ || n->deadline_ns > now_ns) return nullptr;
    disarm(n);
    return n;
  }

 private:
  TimerNode head_;
  uint64_t duration_ns_ = 0;
};

}  // namespace ringway::core
