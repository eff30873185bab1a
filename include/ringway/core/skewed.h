// Memory for bulk copies, placed half a page off page alignment.
//
// Why: on this project's machines (AMD EPYC, glibc 2.36 and the kernel both copy large blocks with
// `rep movsb`), a copy whose destination lies 1-63 bytes *ahead* of its source modulo 4 KiB runs
// at ~3 GB/s instead of 50-100 GB/s (measured here with a 16 KiB copy loop: 3.3 vs 97 GB/s). The
// buffers OpenSSL copies to and from (its record buffers, from mimalloc) start at a page boundary
// plus a few bytes, and so did ours (posix_memalign(4096), std::vector from mimalloc): every 16 KiB
// record sealed from a receive buffer hit the slow case. Keeping the buffers we own at a
// half-page offset puts any page-aligned partner ~2 KiB away. Measured with the HTTPS 1 MiB GET
// (bench/results, see the commit): the proxy's CPU per MiB fell by about a fifth.
#pragma once

#include <cstddef>
#include <cstring>
#include <utility>

namespace ringway::core {

inline constexpr size_t kCopySkew = 2048;

// n bytes starting kCopySkew bytes into a page; nullptr if out of memory. Free with free_skewed.
char* alloc_skewed(size_t n);
void free_skewed(char* p);

// A growable byte buffer in skewed memory (what std::vector<char> would be, minus the zeroing on
// resize and with its data where bulk copies run fast). Move-only.
class SkewedBytes {
 public:
  SkewedBytes() = default;
  ~SkewedBytes() { free_skewed(data_); }
  SkewedBytes(SkewedBytes&& o) noexcept { swap(o); }
  SkewedBytes& operator=(SkewedBytes&& o) noexcept {
    SkewedBytes t(std::move(o));
    swap(t);
    return *this;
  }
  SkewedBytes(const SkewedBytes&) = delete;
  SkewedBytes& operator=(const SkewedBytes&) = delete;

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  void reserve(size_t n);
  void append(const char* src, size_t n) {
    if (size_ + n > cap_) reserve(size_ + n > 2 * cap_ ? size_ + n : 2 * cap_);
    std::memcpy(data_ + size_, src, n);
    size_ += n;
  }
  // Drops n bytes from the front (moves the rest down).
  void erase_front(size_t n);
  // Frees the memory (an idle connection's buffer).
  void release() { SkewedBytes().swap(*this); }
  void swap(SkewedBytes& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(cap_, o.cap_);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace ringway::core
