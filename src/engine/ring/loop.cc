#include "ringway/ring/loop.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ringway/core/skewed.h"

namespace ringway::ring {
namespace {

struct Required {
  int op;
  const char* name;
};

// Every opcode the data path submits. Probed once so that a kernel without one fails at start
// with its name instead of misbehaving under load.
constexpr Required kRequired[] = {
    {IORING_OP_ACCEPT, "ACCEPT"},       {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},           {IORING_OP_SENDMSG, "SENDMSG"},
    {IORING_OP_CONNECT, "CONNECT"},     {IORING_OP_WRITE, "WRITE"},
    {IORING_OP_READ, "READ"},           {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},   {IORING_OP_TIMEOUT, "TIMEOUT"},
    {IORING_OP_TIMEOUT_REMOVE, "TIMEOUT_REMOVE"},
};
// Not listed: SPLICE. Body splices are plain non-blocking splice(2) calls after a POLL_ADD
// readiness completion (proxy/pump.cc says why), never an SQE.

}  // namespace

Loop::~Loop() {
  if (ready_) io_uring_queue_exit(&ring_);
}

bool Loop::init(unsigned entries, bool sqpoll, std::string& error) {
  io_uring_params p{};
  if (sqpoll) {
    p.flags |= IORING_SETUP_SQPOLL;
    p.sq_thread_idle = 1000;
  } else {
    // One thread submits and reaps: the kernel can skip cross-thread task-work signalling and
    // run completion work only when we ask for events.
    p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  }
  p.flags |= IORING_SETUP_SUBMIT_ALL;
  int ret = io_uring_queue_init_params(entries, &ring_, &p);
  if (ret == -EINVAL && !sqpoll) {
    // Older kernels: fall back to cooperative task running.
    io_uring_params q{};
    q.flags = IORING_SETUP_COOP_TASKRUN;
    ret = io_uring_queue_init_params(entries, &ring_, &q);
    p = q;
  }
  if (ret < 0) {
    error = std::string("io_uring_queue_init: ") + std::strerror(-ret) +
            (ret == -EPERM ? " (io_uring disabled? see /proc/sys/kernel/io_uring_disabled)" : "");
    return false;
  }
  ready_ = true;
  if (!(p.features & IORING_FEAT_EXT_ARG)) {
    error = "io_uring: kernel lacks IORING_FEAT_EXT_ARG (need Linux >= 5.11)";
    return false;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  if (probe == nullptr) {
    error = "io_uring: cannot probe supported opcodes";
    return false;
  }
  for (const Required& r : kRequired) {
    if (!io_uring_opcode_supported(probe, r.op)) {
      error = std::string("io_uring: kernel does not support IORING_OP_") + r.name;
      io_uring_free_probe(probe);
      return false;
    }
  }
  io_uring_free_probe(probe);
  return true;
}

io_uring_sqe* Loop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void Loop::submit_and_wait(uint64_t timeout_ns) {
  __kernel_timespec ts{};
  ts.tv_sec = static_cast<long long>(timeout_ns / 1'000'000'000ull);
  ts.tv_nsec = static_cast<long long>(timeout_ns % 1'000'000'000ull);
  io_uring_cqe* cqe = nullptr;
  // EXT_ARG: the timeout is an argument of io_uring_enter, not an extra SQE.
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_, group_);
    munmap(br_, ring_bytes_);
  }
  core::free_skewed(base_);
}

bool BufferRing::init(io_uring* ring, uint16_t group, uint32_t count, uint32_t size,
                      std::string& error) {
  ring_ = ring;
  group_ = group;
  size_ = size;
  mask_ = io_uring_buf_ring_mask(count);
  ring_bytes_ = count * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    error = std::string("mmap buffer ring: ") + std::strerror(errno);
    return false;
  }
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group;
  int ret = io_uring_register_buf_ring(ring, &reg, 0);
  if (ret < 0) {
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    error = std::string("io_uring_register_buf_ring: ") + std::strerror(-ret);
    return false;
  }
  io_uring_buf_ring_init(br_);
  // Buffer memory is reserved here but only touched (and so only resident) once the kernel
  // fills a buffer: an idle gateway stays small.
  // Skewed memory (core/skewed.h): OpenSSL seals records from these buffers into its own
  // page-aligned one.
  base_ = core::alloc_skewed(static_cast<size_t>(count) * size);
  if (base_ == nullptr) {
    error = "out of memory for receive buffers";
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) give_back(static_cast<uint16_t>(i));
  publish();
  return true;
}

}  // namespace ringway::ring
