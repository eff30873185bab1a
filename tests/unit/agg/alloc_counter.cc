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
