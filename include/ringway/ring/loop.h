// The per-worker io_uring: setup with the best flags the kernel offers, opcode probing, SQE
// allocation that never fails (it submits when the queue is full), and a provided-buffer ring
// from which receives take their buffers only when data arrives (idle connections hold none).
// Each Loop is created and used by exactly one worker thread.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>

namespace ringway::ring {

// user_data layout: | index:32 | generation:24 | op:8 |. The generation lets a completion that
// arrives after its object was recycled be recognised and dropped.
inline uint64_t pack(uint32_t index, uint32_t gen, uint8_t op) {
  return (static_cast<uint64_t>(index) << 32) | (static_cast<uint64_t>(gen & 0xffffff) << 8) | op;
}
inline uint32_t unpack_index(uint64_t ud) { return static_cast<uint32_t>(ud >> 32); }
inline uint32_t unpack_gen(uint64_t ud) { return static_cast<uint32_t>(ud >> 8) & 0xffffff; }
inline uint8_t unpack_op(uint64_t ud) { return static_cast<uint8_t>(ud); }

class Loop {
 public:
  Loop() = default;
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Creates the ring (SINGLE_ISSUER|DEFER_TASKRUN when available, SQPOLL if asked) and checks
  // that every opcode the gateway uses is supported. False with a message otherwise.
  bool init(unsigned entries, bool sqpoll, std::string& error);

  io_uring* raw() { return &ring_; }

  // An SQE, submitting pending ones first if the submission queue is full.
  io_uring_sqe* sqe();

  // Submits pending SQEs and waits for at least one completion or the timeout.
  void submit_and_wait(uint64_t timeout_ns);

 private:
  io_uring ring_{};
  bool ready_ = false;
};

// A ring of equally sized receive buffers registered with the kernel (IORING_REGISTER_PBUF_RING);
// receives with IOSQE_BUFFER_SELECT take one when data arrives. liburing 2.3 has no
// io_uring_setup_buf_ring helper, so the ring memory is mapped here.
class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // count must be a power of two <= 32768.
  bool init(io_uring* ring, uint16_t group, uint32_t count, uint32_t size, std::string& error);

  uint16_t group() const { return group_; }
  uint32_t buffer_size() const { return size_; }
  char* data(uint16_t bid) const { return base_ + static_cast<size_t>(bid) * size_; }

  // The kernel took buffer bid (a completion carried IORING_CQE_F_BUFFER).
  void taken() { --available_; }
  // Gives bid back to the kernel. Batched: published on the next publish().
  void give_back(uint16_t bid) {
    io_uring_buf_ring_add(br_, data(bid), size_, bid, mask_, pending_++);
  }
  void publish() {
    if (pending_ == 0) return;
    io_uring_buf_ring_advance(br_, pending_);
    available_ += pending_;
    pending_ = 0;
  }
  uint32_t available() const { return available_; }

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  char* base_ = nullptr;
  size_t ring_bytes_ = 0;
  uint32_t size_ = 0;
  int mask_ = 0;
  uint16_t group_ = 0;
  int pending_ = 0;
  uint32_t available_ = 0;
};

}  // namespace ringway::ring
