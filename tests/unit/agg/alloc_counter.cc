// Replaces the global operator new/delete of the test binary (in its own file, so the compiler
// never sees a malloc/free pair through inlining).
#include "alloc_counter.h"

#include <cstdlib>
#include <new>

namespace {
thread_local bool g_counting = false;
thread_local size_t g_count = 0;
}  // namespace

namespace alloc_counter {
void start() {
  g_count = 0;
  g_counting = true;
}
size_t stop() {
  g_counting = false;
  return g_count;
}
}  // namespace alloc_counter

void* operator new(size_t n) {
  if (g_counting) ++g_count;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
// The nothrow forms too (simdjson allocates its padded buffers with them): a replaced delete
// must never free memory that a non-replaced new allocated (ASan reports the mismatch).
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  if (g_counting) ++g_count;
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
