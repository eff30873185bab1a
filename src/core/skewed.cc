#include "ringway/core/skewed.h"

#include <cstdlib>
#include <new>

namespace ringway::core {

char* alloc_skewed(size_t n) {
  void* mem = nullptr;
  if (posix_memalign(&mem, 4096, n + kCopySkew) != 0) return nullptr;
  return static_cast<char*>(mem) + kCopySkew;
}

void free_skewed(char* p) {
  if (p != nullptr) std::free(p - kCopySkew);
}

void SkewedBytes::reserve(size_t n) {
  if (n <= cap_) return;
  char* p = alloc_skewed(n);
  if (p == nullptr) throw std::bad_alloc();
  if (size_ > 0) std::memcpy(p, data_, size_);
  free_skewed(data_);
  data_ = p;
  cap_ = n;
}

void SkewedBytes::erase_front(size_t n) {
  if (n >= size_) {
    size_ = 0;
    return;
  }
  std::memmove(data_, data_ + n, size_ - n);
  size_ -= n;
}

}  // namespace ringway::core
