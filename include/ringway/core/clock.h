// Monotonic time for timeouts and rate decisions. Workers read it once per loop iteration and
// pass it down, so the data path makes no clock syscall per request (vDSO either way).
#pragma once

#include <time.h>

#include <cstdint>

namespace ringway::core {

inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace ringway::core
