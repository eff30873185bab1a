// Downstream (client) connections: multishot accept, receives into provided buffers (an idle
// connection holds no buffer), one send in flight per socket, and a close that waits for every
// in-flight operation before the slot is recycled. What the bytes mean is proxy/exchange.cc's.

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "server/worker.h"

namespace ringway::server {

void Worker::arm_accept(int fd, Op op, uint32_t slot) {
  io_uring_sqe* s = loop_.sqe();
  // Non-blocking: the pumps call splice(2) themselves; io_uring still polls for its own ops.
  io_uring_prep_multishot_accept(s, fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  io_uring_sqe_set_data64(s, ring::pack(slot, 0, op));
}

DownstreamConn* Worker::new_client() {
  bool fresh = false;
  DownstreamConn& c = clients_.take(fresh);
  if (fresh) c.parser = std::make_unique<http::RequestParser>(limits_);
  c.parser->reset_head_scan();  // a slot's parser outlives its connections
  c.in_use = true;
  return &c;
}

void Worker::on_accept(int res, uint32_t flags, bool admin, uint32_t slot) {
  const bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (res >= 0) {
    const bool tls = !admin && slot < listen_tls_.size() && listen_tls_[slot];
    std::unique_ptr<tls::Session> session;
    if (tls) session = tls::Session::server(*shared_.tls_server.load(std::memory_order_acquire));
    // A listener with its own client-certificate policy (JSON "listen_tls" objects; TLS
    // listeners come after the plaintext ones).
    const size_t tls_index = slot - cfg_.listen.size();
    tls::ClientAuth auth;
    if (session != nullptr && tls_index < cfg_.listen_tls_client_auth.size() &&
        tls::client_auth_from_name(cfg_.listen_tls_client_auth[tls_index], auth)) {
      session->set_client_auth(auth);
    }
    if (draining_ || open_clients_ >= cfg_.max_connections || (tls && session == nullptr)) {
      close(res);
    } else {
      DownstreamConn& c = *new_client();
      c.open(res, tls ? net::TransportKind::kTls : net::TransportKind::kPlain, std::move(session));
      c.admin = admin;
      c.state = net::DownState::kIdle;
      c.abort = c.deadline_armed = c.send_queued = c.deliver_queued = false;
      c.ex = nullptr;
      ++open_clients_;
      metrics_->downstream_opened();
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
  if (more || draining_) return;
  // A multishot accept ends on error (or when the listener closes).
  if (admin) {
    admin_accept_armed_ = false;
  } else if (slot < accept_armed_.size()) {
    accept_armed_[slot] = false;
  }
  if (res == -EMFILE || res == -ENFILE) {
    // Re-arming now would fail again at once and spin a core for as long as clients wait in the
    // backlog: wait for a descriptor to be freed, or for a short retry timer.
    pause_accepting(-res);
    return;
  }
  resume_accepting();
}

void Worker::pause_accepting(int err) {
  constexpr uint64_t kRetryNs = 100'000'000;      // a descriptor may be freed by another process
  constexpr uint64_t kLogEveryNs = 10'000'000'000;
  if (!accept_paused_) metrics_->count_accept_paused();
  accept_paused_ = true;
  accept_retry_ns_ = now_ns_ + kRetryNs;
  if (now_ns_ >= accept_log_ns_) {
    accept_log_ns_ = now_ns_ + kLogEveryNs;
    std::fprintf(stderr,
                 "ringway: worker %u: out of file descriptors (%s): new connections wait in the "
                 "backlog until one is freed (raise the limit: ulimit -n)\n",
                 index_, std::strerror(err));
  }
}

// Re-arms every listener whose accept ended. Called when an accept ended for another reason, when
// a descriptor was freed, and when the retry timer passed.
void Worker::resume_accepting() {
  accept_paused_ = false;
  if (draining_) return;
  for (uint32_t slot = 0; slot < listen_fds_.size(); ++slot) {
    if (accept_armed_[slot] || listen_fds_[slot] < 0) continue;
    arm_accept(listen_fds_[slot], kOpAccept, slot);
    accept_armed_[slot] = true;
  }
  if (admin_fd_ >= 0 && !admin_accept_armed_) {
    arm_accept(admin_fd_, kOpAdminAccept);
    admin_accept_armed_ = true;
  }
}

void Worker::arm_client_recv(DownstreamConn& c, bool poll_first) {
  if (c.recv_armed || c.starved || c.closing || c.deliver_queued) return;
  if (c.has_pending_plaintext()) {
    // The transport already holds what a receive would bring: the loop delivers it (not from
    // here, which may be deep inside an exchange's phase).
    c.deliver_queued = true;
    tls_deliveries_.push_back(&c);
    return;
  }
  c.prep_recv(loop_.sqe(), buffers_.ring(), buffers_.input_limit(), poll_first, ring::pack(c.index, c.gen, kOpClientRecv));
  c.recv_armed = true;
  ++c.pending;
}

void Worker::on_client_recv(DownstreamConn& c, int res, uint32_t flags) {
  c.recv_armed = false;
  if (res == -ENOBUFS) {
    c.starved = true;
    starved_clients_.push_back(&c);
    return;
  }
  if (c.closing || (c.state == net::DownState::kLingering && res > 0)) {
    if (flags & IORING_CQE_F_BUFFER) buffers_.ring().give_back(static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT));
    if (!c.closing) arm_client_recv(c);  // lingering: discard until the client closes
    return;
  }
  if (res <= 0) {
    // The client closed or reset. Mid-exchange this abandons the upstream side too (its
    // connection is not pooled: the response would be unread).
    close_client(c, res < 0);
    return;
  }
  const int32_t bid = static_cast<int32_t>(flags >> IORING_CQE_BUFFER_SHIFT);
  char* data = buffers_.ring().data(static_cast<uint16_t>(bid));
  metrics_->add_bytes_in(static_cast<uint64_t>(res));
  if (c.ex != nullptr) c.ex->bytes_in += static_cast<uint64_t>(res);
  on_client_plaintext(c, c.received(buffers_, data, static_cast<uint32_t>(res), bid, buffers_.input_limit()));
}

// What the transport made of received bytes.
void Worker::on_client_plaintext(DownstreamConn& c, net::RecvResult r) {
  flush_transport(c);  // a handshake flight, a session ticket
  if (c.transport.tls()) note_client_tls(c, r);
  switch (r) {
    case net::RecvResult::kData:
      break;
    case net::RecvResult::kNothing:  // a handshake flight went out: the answer is not here yet
      arm_client_recv(c, true);
      return;
    case net::RecvResult::kTooLarge:
      local_reply(c, 431, "request head too large", true);
      return;
    case net::RecvResult::kClosed:
      close_client(c, false);
      return;
    case net::RecvResult::kError:
      c.send_alert_now();
      close_client(c, false);
      return;
  }
  if (c.state == net::DownState::kExchange) {
    on_request_body_data(c);
  } else {
    process_input(c);
  }
}

void Worker::flush_transport(DownstreamConn& c) {
  c.flush(loop_, ring::pack(c.index, c.gen, kOpClientSend));
}

void Worker::client_send(DownstreamConn& c) {
  if (c.send.busy) {  // only a transport flush can be in flight here: go after it
    c.send_queued = true;
    return;
  }
  if (!c.start_send(loop_, ring::pack(c.index, c.gen, kOpClientSend))) {
    // Nothing to send (e.g. an empty body part): behave as a completed send.
    c.send.count = 0;
    on_client_send(c, 0);
    return;
  }
  ++c.pending;
}

void Worker::on_client_send(DownstreamConn& c, int res) {
  net::SendOp& s = c.send;
  if (c.complete_send(res, loop_, ring::pack(c.index, c.gen, kOpClientSend))) return;
  if (c.flushing) {  // the transport's own bytes went out
    c.flushing = false;
    if (c.closing) return;
    if (res < 0) {
      close_client(c, true);
    } else if (c.send_queued) {
      c.send_queued = false;
      client_send(c);
    }
    return;
  }
  if (c.closing || res < 0) {
    for (uint8_t i = 0; i < s.count; ++i) buffers_.release(s.hold[i]);
    s.count = 0;
    if (!c.closing) close_client(c, true);
    return;
  }
  const uint32_t sent = static_cast<uint32_t>(res);
  metrics_->add_bytes_out(sent);
  Exchange& ex = *c.ex;
  ex.bytes_out += sent;
  if (s.advance(sent)) {  // a short write is resumed with the rest
    client_send(c);
    return;
  }
  for (uint8_t i = 0; i < s.count; ++i) buffers_.release(s.hold[i]);
  s.count = 0;
  if (ex.response_done) {
    finish_exchange(c);
  } else {
    send_response_part(ex);
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
    case TimerKind::kResponse:
      if (arm_try_timer(c)) return;  // issue 14: the route's retries.per_try_timeout
      [[fallthrough]];
    case TimerKind::kPaused: response_timers_.arm(&c.timer, now_ns_); return;
    case TimerKind::kLinger: linger_timers_.arm(&c.timer, now_ns_); return;
  }
}

void Worker::close_client(DownstreamConn& c, bool abort) {
  if (c.closing) return;
  if (c.transport.tls()) note_client_tls_closed(c, false);
  c.closing = true;
  c.abort = abort;
  set_timer(c, TimerKind::kNone);
  if (c.ex != nullptr) {
    // The exchange's upstream side is abandoned: its connection is not pooled (the response
    // would be unread) and aggregate legs are closed. The exchange itself is freed with the slot.
    if (c.ex->up != nullptr) release_upstream(c.ex->up, false);
    cancel_aggregate(*c.ex);
  }
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
  c.shutdown_write();
  c.state = net::DownState::kLingering;
  buffers_.release(c.in);
  set_timer(c, TimerKind::kLinger);
  arm_client_recv(c);
}

void Worker::finalize_client(DownstreamConn& c) {
  c.close_socket(c.abort);
  buffers_.release(c.in);
  for (uint8_t i = 0; i < c.send.count; ++i) buffers_.release(c.send.hold[i]);
  c.send.count = 0;
  if (c.ex != nullptr) end_exchange(c);
  c.in_use = false;
  c.gen = (c.gen + 1) & 0xffffff;
  clients_.give(c);
  --open_clients_;
  metrics_->downstream_closed();
  if (accept_paused_) resume_accepting();  // a descriptor was freed
}

}  // namespace ringway::server
