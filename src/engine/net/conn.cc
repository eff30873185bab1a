// The transports' operations, one switch arm each. Plain is the identity. TLS goes through a
// tls::Session that does no I/O: received ciphertext is read by OpenSSL straight from the provided
// buffer and opened into the connection's input block (the one copy decryption needs); sends are
// sealed from the send op's ranges into a buffer taken from the session and sent from there, so
// nothing the session appends later can move bytes under an SQE in flight.
#include "ringway/net/conn.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ringway::net {
namespace {

// While a splice waits for body bytes, the source socket reports readable only once this much (or
// the rest of the body) is queued: fewer, larger splices and fewer wake-ups on both sides. The
// kernel grows the receive buffer to fit (tcp_set_rcvlowat). Measured with tools/compare.sh
// --baseline: about 8% less proxy CPU per MiB on the 1 MiB GET.
constexpr uint32_t kLowat = 256 * 1024;

}  // namespace

void Transport::reset(TransportKind k, std::unique_ptr<tls::Session> session) {
  kind_ = k;
  session_ = std::move(session);
  wire_.clear();
  wire_off_ = 0;
  sealed_ = 0;
  stash_.clear();
}

void Conn::open(int socket_fd, TransportKind kind, std::unique_ptr<tls::Session> session) {
  fd = socket_fd;
  pending = 0;
  recv_armed = starved = closing = flushing = false;
  rcvlowat = 1;
  in = Buf{};
  send = SendOp{};
  transport.reset(kind, std::move(session));
}

namespace {

using Step = tls::Session::Step;

// Opens what `input` holds into `in` (a block), up to limit bytes of `in`; the rest of the input
// is kept in the transport's stash.
RecvResult open_records(Buffers& b, Buf& in, tls::Session& s, tls::Input& input, uint32_t limit,
                        std::vector<char>& stash) {
  if (!s.established()) {
    const Step st = s.handshake(input);
    if (st == Step::kError) return RecvResult::kError;
    if (!s.established()) return RecvResult::kNothing;  // kWantRead: all of input was taken
  }
  bool got = false;
  bool closed = false;
  while (in.len < limit) {
    if (in.data == nullptr) {
      in = Buf{b.take_block(), 0, 0, -1, true};
    } else if (!in.block) {  // a provided buffer can hold no plaintext of ours: gather
      char* blk = b.take_block();
      std::memcpy(blk, in.begin(), in.len);
      Buf old = in;
      in = Buf{blk, 0, old.len, -1, true};
      b.release(old);
    } else if (in.off + in.len == b.block_size()) {
      std::memmove(in.data, in.begin(), in.len);
      in.off = 0;
    }
    Step st = Step::kOk;
    const size_t cap = std::min<size_t>(b.block_size() - in.off - in.len, limit - in.len);
    const ssize_t n = s.read(input, in.data + in.off + in.len, cap, st);
    if (n > 0) {
      in.len += static_cast<uint32_t>(n);
      got = true;
      continue;
    }
    if (st == Step::kError) return RecvResult::kError;
    if (st == Step::kClosed) closed = true;
    break;
  }
  if (in.len == 0 && in.data != nullptr) b.release(in);  // no empty block kept while idle
  const std::span<const char> rest = input.rest();
  stash.assign(rest.begin(), rest.end());
  if (got) return RecvResult::kData;
  return closed ? RecvResult::kClosed : RecvResult::kNothing;
}

}  // namespace

void Conn::prep_recv(io_uring_sqe* s, const ring::BufferRing& br, uint32_t limit, bool poll_first,
                     uint64_t ud) const {
  uint32_t len = br.buffer_size();
  if (transport.kind() == TransportKind::kPlain && in.len > 0) {
    // One byte past the limit when nothing fits: that receive reports the head too large.
    len = std::min(len, in.len < limit ? limit - in.len : 1);
  }
  io_uring_prep_recv(s, fd, nullptr, len, 0);
  if (poll_first) s->ioprio |= IORING_RECVSEND_POLL_FIRST;
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = br.group();
  io_uring_sqe_set_data64(s, ud);
}

RecvResult Conn::received(Buffers& b, char* data, uint32_t n, int32_t bid, uint32_t limit) {
  switch (transport.kind()) {
    case TransportKind::kPlain:
      return b.append(in, data, n, bid, limit) ? RecvResult::kData : RecvResult::kTooLarge;
    case TransportKind::kTls: {
      std::vector<char>& stash = transport.stash_;
      RecvResult r;
      if (stash.empty()) {
        tls::Input input{data, n};
        r = open_records(b, in, *transport.session_, input, limit, stash);
      } else {  // rare: earlier ciphertext waits; the new bytes go behind it
        std::vector<char> joined = std::move(stash);
        joined.insert(joined.end(), data, data + n);
        tls::Input input{joined.data(), joined.size()};
        r = open_records(b, in, *transport.session_, input, limit, stash);
      }
      if (bid >= 0) b.ring().give_back(static_cast<uint16_t>(bid));
      return r;
    }
  }
  return RecvResult::kError;
}

bool Conn::has_pending_plaintext() const {
  return transport.tls() && (!transport.stash_.empty() || transport.session_->has_buffered_plaintext());
}

RecvResult Conn::deliver_pending(Buffers& b, uint32_t limit) {
  std::vector<char> held = std::move(transport.stash_);
  transport.stash_.clear();
  tls::Input input{held.data(), held.size()};
  return open_records(b, in, *transport.session_, input, limit, transport.stash_);
}

bool Conn::begin_handshake() {
  if (!transport.tls()) return true;
  tls::Input none{};
  return transport.session_->handshake(none) != Step::kError;
}

void Conn::release_idle_buffers() {
  if (!transport.tls() || send.busy || has_pending_plaintext()) return;
  Transport& t = transport;
  if (t.wire_off_ == t.wire_.size()) {
    t.wire_.release();
    t.wire_off_ = 0;
  }
  if (t.stash_.empty()) std::vector<char>().swap(t.stash_);
  t.session_->release_buffers();
}

bool Conn::has_transport_output() const {
  return transport.tls() && !transport.session_->output().empty();
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
  switch (transport.kind()) {
    case TransportKind::kPlain: {
      if (n == 0) return false;
      io_uring_sqe* q = loop.sqe();
      if (n == 1) {
        io_uring_prep_send(q, fd, s.iov[0].iov_base, s.iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        s.msg.msg_iov = s.iov;
        s.msg.msg_iovlen = n;
        io_uring_prep_sendmsg(q, fd, &s.msg, MSG_NOSIGNAL);
      }
      io_uring_sqe_set_data64(q, ud);
      break;
    }
    case TransportKind::kTls: {
      Transport& t = transport;
      if (t.wire_off_ == t.wire_.size()) {
        // Nothing in flight: seal the ranges' plaintext not sealed yet (records up to the
        // session's output limit), then take everything the session has to send.
        uint32_t skip = t.sealed_;
        for (uint8_t i = 0; i < n; ++i) {
          const uint32_t len = static_cast<uint32_t>(s.iov[i].iov_len);
          if (skip >= len) {
            skip -= len;
            continue;
          }
          const size_t want = len - skip;
          Step st = Step::kOk;
          const size_t took = t.session_->write(static_cast<const char*>(s.iov[i].iov_base) + skip, want, st);
          t.sealed_ += static_cast<uint32_t>(took);
          skip = 0;
          if (took < want) break;  // the session's output is full: send it first
        }
        t.session_->recycle_output(std::move(t.wire_));
        t.wire_ = t.session_->take_output();
        t.wire_off_ = 0;
        if (t.wire_.empty()) return false;
      }
      io_uring_sqe* q = loop.sqe();
      io_uring_prep_send(q, fd, t.wire_.data() + t.wire_off_, t.wire_.size() - t.wire_off_, MSG_NOSIGNAL);
      io_uring_sqe_set_data64(q, ud);
      break;
    }
  }
  s.busy = true;
  return true;
}

int Conn::send_completed(int res) {
  if (transport.kind() == TransportKind::kPlain) return res;
  Transport& t = transport;
  if (res <= 0) {  // the connection is going away; what is in flight does not matter any more
    t.wire_.clear();
    t.wire_off_ = 0;
    t.sealed_ = 0;
    return res;
  }
  t.wire_off_ += static_cast<uint32_t>(res);
  if (t.wire_off_ < t.wire_.size()) return kSendAgain;  // a short write
  uint32_t total = 0;  // a transport flush carries none of the send op's ranges
  for (uint8_t i = 0; i < send.count && !flushing; ++i) total += send.hold[i].len;
  if (t.sealed_ < total || !t.session_->output().empty()) return kSendAgain;
  t.sealed_ = 0;
  return static_cast<int>(total);
}

bool Conn::complete_send(int& res, ring::Loop& loop, uint64_t ud) {
  send.busy = false;
  res = send_completed(res);
  if (res != kSendAgain) return false;
  if (!closing && start_send(loop, ud)) {  // TLS: more records of this send
    ++pending;
    return true;
  }
  res = closing ? -ECANCELED : 0;
  return false;
}

void Conn::flush(ring::Loop& loop, uint64_t ud) {
  if (send.busy || closing || !has_transport_output()) return;
  send.count = 0;
  if (!start_send(loop, ud)) return;
  flushing = true;
  ++pending;
}

void Conn::send_now(std::string_view bytes) {
  switch (transport.kind()) {
    case TransportKind::kPlain:
      (void)!::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      return;
    case TransportKind::kTls: {
      // Sealed now, sent by the owner's next send (it flushes the transport's output).
      Step st = Step::kOk;
      (void)transport.session_->write(bytes.data(), bytes.size(), st);
      return;
    }
  }
}

void Conn::send_alert_now() {
  if (!transport.tls()) return;
  const std::span<const char> out = transport.session_->output();
  if (!out.empty() && transport.wire_off_ == transport.wire_.size()) {
    (void)!::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
}

void Conn::shutdown_write() {
  switch (transport.kind()) {
    case TransportKind::kPlain: break;
    case TransportKind::kTls:
      if (transport.session_->established()) {
        transport.session_->close_notify();
        send_alert_now();
      }
      break;
  }
  ::shutdown(fd, SHUT_WR);
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
