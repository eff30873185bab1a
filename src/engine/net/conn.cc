// The plain transport's operations. Each is one switch arm today; a TLS transport adds its own
// arm (open/seal through OpenSSL with memory BIOs over these same buffers) without touching the
// callers.
#include "ringway/net/conn.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ringway::net {
namespace {

// While a splice waits for body bytes, the source socket reports readable only once this much (or
// the rest of the body) is queued: fewer, larger splices and fewer wake-ups on both sides. The
// kernel grows the receive buffer to fit (tcp_set_rcvlowat). Measured with tools/compare.sh
// --baseline: about 8% less proxy CPU per MiB on the 1 MiB GET.
constexpr uint32_t kLowat = 256 * 1024;

}  // namespace

void Conn::open(int socket_fd, TransportKind kind) {
  fd = socket_fd;
  pending = 0;
  recv_armed = starved = closing = false;
  rcvlowat = 1;
  in = Buf{};
  send = SendOp{};
  transport.reset(kind);
}

void Conn::prep_recv(io_uring_sqe* s, const ring::BufferRing& br, bool poll_first,
                     uint64_t ud) const {
  io_uring_prep_recv(s, fd, nullptr, br.buffer_size(), 0);
  if (poll_first) s->ioprio |= IORING_RECVSEND_POLL_FIRST;
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = br.group();
  io_uring_sqe_set_data64(s, ud);
}

bool Conn::received(Buffers& b, char* data, uint32_t n, int32_t bid, uint32_t limit) {
  switch (transport.kind()) {
    case TransportKind::kPlain: return b.append(in, data, n, bid, limit);
  }
  return false;
}

bool Conn::start_send(ring::Loop& loop, uint64_t ud) {
  SendOp& s = send;
  s.msg = msghdr{};
  uint8_t n = 0;
  for (uint8_t i = 0; i < s.count; ++i) {
    if (s.hold[i].len == 0) continue;
    s.iov[n].iov_base = const_cast<char*>(s.hold[i].begin());
    s.iov[n].iov_len = s.hold[i].len;
    ++n;
  }
  if (n == 0) return false;
  io_uring_sqe* q = loop.sqe();
  switch (transport.kind()) {
    case TransportKind::kPlain:
      if (n == 1) {
        io_uring_prep_send(q, fd, s.iov[0].iov_base, s.iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        s.msg.msg_iov = s.iov;
        s.msg.msg_iovlen = n;
        io_uring_prep_sendmsg(q, fd, &s.msg, MSG_NOSIGNAL);
      }
      break;
  }
  io_uring_sqe_set_data64(q, ud);
  s.busy = true;
  return true;
}

void Conn::send_now(std::string_view bytes) {
  switch (transport.kind()) {
    case TransportKind::kPlain:
      (void)!::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      return;
  }
}

void Conn::shutdown_write() {
  switch (transport.kind()) {
    case TransportKind::kPlain: ::shutdown(fd, SHUT_WR); return;
  }
}

ssize_t Conn::splice_to_pipe(int pipe_w, size_t n) {
  return ::splice(fd, nullptr, pipe_w, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

ssize_t Conn::splice_from_pipe(int pipe_r, size_t n) {
  return ::splice(pipe_r, nullptr, fd, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

void Conn::set_rcvlowat(uint64_t remaining) {
  if (!transport.can_splice_in()) return;
  const uint32_t want = remaining < kLowat ? static_cast<uint32_t>(remaining) : kLowat;
  if (want == rcvlowat) return;
  const int v = static_cast<int>(want);
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v));
  rcvlowat = want;
}

void Conn::close_socket(bool abort) {
  if (abort) {
    // RST instead of FIN: a peer must never mistake an aborted message for a complete one.
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  ::close(fd);
  fd = -1;
}

}  // namespace ringway::net
