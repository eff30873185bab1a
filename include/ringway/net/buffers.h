// A worker's byte memory: the provided-buffer ring that receives draw from (an idle connection
// holds none) and blocks, larger buffers for heads gathered over several receives, rebuilt heads
// and gateway replies. A Buf names a range in either. One Buffers per worker, used only by its
// thread; every Buf is released to the Buffers it came from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ringway/ring/loop.h"

namespace ringway::net {

// A byte range in a provided receive buffer (bid >= 0), a block (block) or memory that something
// else owns (neither: releasing it does nothing).
struct Buf {
  char* data = nullptr;
  uint32_t off = 0;
  uint32_t len = 0;
  int32_t bid = -1;
  bool block = false;
  const char* begin() const { return data + off; }
  bool empty() const { return len == 0; }
};

class Buffers {
 public:
  Buffers() = default;
  ~Buffers();
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;

  bool init(io_uring* ring, uint16_t group, uint32_t count, uint32_t size, uint32_t block_size,
            std::string& error);

  ring::BufferRing& ring() { return ring_; }
  uint32_t block_size() const { return block_size_; }
  // The most a connection's unconsumed input may hold (half a block: a gathered head must still
  // fit in a block after it has been moved to the block's front).
  uint32_t input_limit() const { return block_size_ / 2; }

  char* take_block();
  void give_block(char* b);
  // Gives b's memory back to where it came from and empties b.
  void release(Buf& b);
  // Drops n bytes from b's front; releases b once it is empty.
  void consume(Buf& b, uint32_t n);
  // Appends n received bytes (provided buffer bid, or -1) to in. An empty `in` takes the buffer
  // itself (no copy); otherwise the bytes are gathered in a block so that a head split over
  // several receives is seen whole. False (and the buffer returned) if in would exceed limit.
  bool append(Buf& in, char* data, uint32_t n, int32_t bid, uint32_t limit);

 private:
  ring::BufferRing ring_;
  std::vector<char*> blocks_;  // spare blocks
  uint32_t block_size_ = 0;
};

}  // namespace ringway::net
