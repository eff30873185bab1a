// Downstream (client) connections: multishot accept, receives into provided buffers (an idle
// connection holds no buffer), one send in flight per socket, and a close that waits for every
// in-flight operation before the slot is recycled.

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "server/worker.h"

namespace ringway::server {

void Worker::arm_accept(int fd, Op op, uint32_t slot) {
  io_uring_sqe* s = loop_.sqe();
  // Non-blocking: the splice path calls splice(2) itself; io_uring still polls for its own ops.
  io_uring_prep_multishot_accept(s, fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  io_uring_sqe_set_data64(s, ring::pack(slot, 0, op));
}

DownstreamConn* Worker::new_client() {
  DownstreamConn* c;
  if (!free_clients_.empty()) {
    c = clients_[free_clients_.back()].get();
    free_clients_.pop_back();
  } else {
    clients_.push_back(std::make_unique<DownstreamConn>());
    c = clients_.back().get();
    c->index = static_cast<uint32_t>(clients_.size() - 1);
    c->parser = std::make_unique<http::RequestParser>(limits_);
  }
  c->in_use = true;
  return c;
}

void Worker::on_accept(int res, uint32_t flags, bool admin, uint32_t slot) {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (res >= 0) {
    if (draining_ || open_clients_ >= cfg_.max_connections) {
      close(res);
    } else {
      DownstreamConn& c = *new_client();
      c.fd = res;
      c.admin = admin;
      c.state = DownState::kIdle;
      c.closing = c.abort = c.recv_armed = c.starved = c.agg_deadline_armed = false;
      c.rcvlowat = 1;
      c.pending = 0;
      c.ex = Exchange{};
      c.in = Buf{};
      c.send = SendOp{};
      ++open_clients_;
      metrics_->downstream_opened();
      int one = 1;
      setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      c.client_ip_len = 0;
      if (getpeername(res, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
        const void* src = peer.ss_family == AF_INET6
                              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr)
                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr);
        if (inet_ntop(peer.ss_family, src, c.client_ip, sizeof(c.client_ip)) != nullptr) {
          c.client_ip_len = static_cast<uint8_t>(std::strlen(c.client_ip));
        }
      }
      set_timer(c, TimerKind::kHeader);
      arm_client_recv(c);
    }
  }
  // A multishot accept ends on error (or when the listener closes); re-arm unless draining.
  if (!more && !draining_) {
    const int fd = admin ? admin_fd_ : (slot < listen_fds_.size() ? listen_fds_[slot] : -1);
    if (fd >= 0) arm_accept(fd, admin ? kOpAdminAccept : kOpAccept, slot);
  }
}

void Worker::arm_client_recv(DownstreamConn& c, bool poll_first) {
  if (c.recv_armed || c.starved || c.closing) return;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_recv(s, c.fd, nullptr, buffers_.buffer_size(), 0);
  if (poll_first) s->ioprio |= IORING_RECVSEND_POLL_FIRST;
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = buffers_.group();
  io_uring_sqe_set_data64(s, ring::pack(c.index, c.gen, kOpClientRecv));
  c.recv_armed = true;
  ++c.pending;
}

bool Worker::append_input(Buf& in, char* data, uint32_t n, int32_t bid, uint32_t limit) {
  if (in.empty()) {
    release(in);
    in = Buf{data, 0, n, bid, false};
    return true;
  }
  // A head split over several receives is gathered in a block so that the parser sees it whole.
  if (in.len + n > limit) {
    if (bid >= 0) buffers_.give_back(static_cast<uint16_t>(bid));
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
  if (bid >= 0) buffers_.give_back(static_cast<uint16_t>(bid));
  return true;
}

void Worker::on_client_recv(DownstreamConn& c, int res, uint32_t flags) {
  c.recv_armed = false;
  if (res == -ENOBUFS) {
    c.starved = true;
    starved_clients_.push_back(&c);
    return;
  }
  if (c.closing || (c.state == DownState::kLingering && res > 0)) {
    if (flags & IORING_CQE_F_BUFFER) buffers_.give_back(static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT));
    if (!c.closing) arm_client_recv(c);  // lingering: discard until the client closes
    return;
  }
  if (res <= 0) {
    // The client closed or reset. Mid-exchange this abandons the upstream side too (its
    // connection is not pooled: the response would be unread).
    if (c.state == DownState::kExchange && c.ex.up != nullptr) release_upstream(c, false);
    close_client(c, res < 0);
    return;
  }
  const int32_t bid = static_cast<int32_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  char* data = buffers_.data(static_cast<uint16_t>(bid));
  metrics_->add_bytes_in(static_cast<uint64_t>(res));
  if (c.state == DownState::kExchange) c.ex.bytes_in += static_cast<uint64_t>(res);
  if (!append_input(c.in, data, static_cast<uint32_t>(res), bid, block_size_ / 2)) {
    local_reply(c, 431, "request head too large", true);
    return;
  }
  if (c.state == DownState::kExchange) {
    on_request_body_data(c);
  } else {
    process_input(c);
  }
}

bool Worker::start_send(SendOp& s, int fd, uint64_t ud) {
  s.msg = msghdr{};
  uint8_t n = 0;
  for (uint8_t i = 0; i < s.count; ++i) {
    if (s.hold[i].len == 0) continue;
    s.iov[n].iov_base = const_cast<char*>(s.hold[i].begin());
    s.iov[n].iov_len = s.hold[i].len;
    ++n;
  }
  if (n == 0) return false;
  io_uring_sqe* q = loop_.sqe();
  if (n == 1) {
    io_uring_prep_send(q, fd, s.iov[0].iov_base, s.iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    s.msg.msg_iov = s.iov;
    s.msg.msg_iovlen = n;
    io_uring_prep_sendmsg(q, fd, &s.msg, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(q, ud);
  s.busy = true;
  return true;
}

void Worker::client_send(DownstreamConn& c) {
  if (!start_send(c.send, c.fd, ring::pack(c.index, c.gen, kOpClientSend))) {
    // Nothing to send (e.g. an empty body part): behave as a completed send.
    c.send.count = 0;
    on_client_send(c, 0);
    return;
  }
  ++c.pending;
}

void Worker::on_client_send(DownstreamConn& c, int res) {
  SendOp& s = c.send;
  s.busy = false;
  if (c.closing) {
    for (uint8_t i = 0; i < s.count; ++i) release(s.hold[i]);
    s.count = 0;
    return;
  }
  if (res < 0) {
    for (uint8_t i = 0; i < s.count; ++i) release(s.hold[i]);
    s.count = 0;
    if (c.ex.up != nullptr) release_upstream(c, false);
    close_client(c, true);
    return;
  }
  const uint32_t sent = static_cast<uint32_t>(res);
  metrics_->add_bytes_out(sent);
  c.ex.bytes_out += sent;
  const bool more = s.advance(sent);  // a short write is resumed with the rest
  if (more) {
    client_send(c);
    return;
  }
  for (uint8_t i = 0; i < s.count; ++i) release(s.hold[i]);
  s.count = 0;
  if (c.ex.response_done) {
    finish_exchange(c);
  } else {
    send_response_part(c);
  }
}

void Worker::set_timer(DownstreamConn& c, TimerKind kind) {
  c.timer_kind = kind;
  switch (kind) {
    case TimerKind::kNone: core::TimerList::disarm(&c.timer); return;
    case TimerKind::kHeader: header_timers_.arm(&c.timer, now_ns_); return;
    case TimerKind::kKeepAlive: keepalive_timers_.arm(&c.timer, now_ns_); return;
    case TimerKind::kBody: body_timers_.arm(&c.timer, now_ns_); return;
    case TimerKind::kConnect: connect_timers_.arm(&c.timer, now_ns_); return;
    case TimerKind::kResponse: response_timers_.arm(&c.timer, now_ns_); return;
    case TimerKind::kLinger: linger_timers_.arm(&c.timer, now_ns_); return;
  }
}

void Worker::close_client(DownstreamConn& c, bool abort) {
  if (c.closing) return;
  c.closing = true;
  c.abort = abort;
  set_timer(c, TimerKind::kNone);
  if (c.ex.up != nullptr) release_upstream(c, false);
  cancel_aggregate(c);  // every leg's connection is closed; the state is freed in finalize
  if (c.pending > 0) {
    // Completions still reference this slot: cancel them and recycle it after the last one.
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel_fd(s, c.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpCancel));
    return;
  }
  finalize_client(c);
}

void Worker::linger_close(DownstreamConn& c) {
  // Closing a socket with unread input makes the kernel send RST, which can destroy the reply we
  // just sent before the client reads it. Shut our side, then read and discard until the client
  // closes or the linger timer fires (what nginx calls lingering close).
  if (c.closing) return;
  if (c.ex.up != nullptr) release_upstream(c, false);
  cancel_aggregate(c);
  shutdown(c.fd, SHUT_WR);
  c.state = DownState::kLingering;
  release(c.in);
  set_timer(c, TimerKind::kLinger);
  arm_client_recv(c);
}

void Worker::finalize_client(DownstreamConn& c) {
  if (c.abort) {
    // RST instead of FIN: a client must never mistake an aborted response for a complete one.
    linger lg{1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close(c.fd);
  c.fd = -1;
  release(c.in);
  for (uint8_t i = 0; i < c.send.count; ++i) release(c.send.hold[i]);
  c.send.count = 0;
  if (c.ex.block != nullptr) give_block(c.ex.block);
  release_pipes(c.ex);
  delete c.ex.admin_body;
  abort_aggregate(c);
  c.ex = Exchange{};
  c.in_use = false;
  c.gen = (c.gen + 1) & 0xffffff;
  free_clients_.push_back(c.index);
  --open_clients_;
  metrics_->downstream_closed();
}

char* Worker::take_block() {
  if (!blocks_.empty()) {
    char* b = blocks_.back();
    blocks_.pop_back();
    return b;
  }
  return new char[block_size_];
}

void Worker::give_block(char* b) {
  // Keep a bounded number of spare blocks; the rest go back to the allocator.
  if (blocks_.size() < 256) {
    blocks_.push_back(b);
  } else {
    delete[] b;
  }
}

void Worker::release(Buf& b) {
  if (b.bid >= 0) {
    buffers_.give_back(static_cast<uint16_t>(b.bid));
  } else if (b.block) {
    give_block(b.data);
  }
  b = Buf{};
}

void Worker::consume(Buf& b, uint32_t n) {
  b.off += n;
  b.len -= n;
  if (b.len == 0) release(b);
}

}  // namespace ringway::server
