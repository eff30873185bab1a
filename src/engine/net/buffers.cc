#include "ringway/net/buffers.h"

#include <cstring>
#include <new>

#include "ringway/core/skewed.h"

namespace ringway::net {
namespace {
constexpr size_t kMaxSpareBlocks = 256;  // the rest go back to the allocator
}  // namespace

Buffers::~Buffers() {
  for (char* b : blocks_) core::free_skewed(b);
}

bool Buffers::init(io_uring* ring, uint16_t group, uint32_t count, uint32_t size,
                   uint32_t block_size, std::string& error) {
  block_size_ = block_size;
  return ring_.init(ring, group, count, size, error);
}

char* Buffers::take_block() {
  if (!blocks_.empty()) {
    char* b = blocks_.back();
    blocks_.pop_back();
    return b;
  }
  // Skewed (core/skewed.h): TLS opens records from OpenSSL's page-aligned buffer into blocks.
  char* b = core::alloc_skewed(block_size_);
  if (b == nullptr) throw std::bad_alloc();
  return b;
}

void Buffers::give_block(char* b) {
  if (blocks_.size() < kMaxSpareBlocks) {
    blocks_.push_back(b);
  } else {
    core::free_skewed(b);
  }
}

void Buffers::release(Buf& b) {
  if (b.bid >= 0) {
    ring_.give_back(static_cast<uint16_t>(b.bid));
  } else if (b.block) {
    give_block(b.data);
  }
  b = Buf{};
}

void Buffers::consume(Buf& b, uint32_t n) {
  b.off += n;
  b.len -= n;
  if (b.len == 0) release(b);
}

bool Buffers::append(Buf& in, char* data, uint32_t n, int32_t bid, uint32_t limit) {
  if (in.empty()) {
    release(in);
    in = Buf{data, 0, n, bid, false};
    return true;
  }
  if (in.len + n > limit) {
    if (bid >= 0) ring_.give_back(static_cast<uint16_t>(bid));
    return false;
  }
  if (!in.block) {
    char* b = take_block();
    std::memcpy(b, in.begin(), in.len);
    Buf old = in;
    in = Buf{b, 0, old.len, -1, true};
    release(old);
  } else if (in.off + in.len + n > block_size_) {
    std::memmove(in.data, in.begin(), in.len);
    in.off = 0;
  }
  std::memcpy(in.data + in.off + in.len, data, n);
  in.len += n;
  if (bid >= 0) ring_.give_back(static_cast<uint16_t>(bid));
  return true;
}

}  // namespace ringway::net
