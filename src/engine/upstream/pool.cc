// Upstream connections: per-worker keep-alive pools (one idle list per target, LIFO so the
// warmest connection is reused first), connects through io_uring, and a receive kept armed on
// idle connections so that an upstream closing one is noticed at once rather than on reuse.

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "server/worker.h"

namespace ringway::server {

UpstreamConn* Worker::new_upstream() {
  UpstreamConn* u;
  if (!free_upstreams_.empty()) {
    u = upstreams_[free_upstreams_.back()].get();
    free_upstreams_.pop_back();
  } else {
    upstreams_.push_back(std::make_unique<UpstreamConn>());
    u = upstreams_.back().get();
    u->index = static_cast<uint32_t>(upstreams_.size() - 1);
    u->parser = std::make_unique<http::ResponseParser>(limits_);
  }
  u->in_use = true;
  u->connected = u->recv_armed = u->starved = u->closing = false;
  u->reusable = true;
  u->pending = 0;
  u->owner = nullptr;
  u->pool_prev = u->pool_next = nullptr;
  u->in = Buf{};
  u->send = SendOp{};
  u->served = 0;
  u->leg = nullptr;
  u->rcvlowat = 1;
  u->out.clear();
  return u;
}

bool Worker::acquire_upstream(DownstreamConn& c) {
  UpstreamConn* u = pool_heads_[c.ex.target_index];
  if (u == nullptr) return false;
  pool_remove(*u);
  core::TimerList::disarm(&u->timer);
  u->owner = &c;
  c.ex.up = u;
  c.ex.reused_upstream = true;
  metrics_->upstream_reused();
  return true;
}

void Worker::connect_upstream(DownstreamConn& c) {
  const config::Target& t = *shared_.targets[c.ex.target_index];
  int fd = socket(t.address.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    fail_exchange(c, 503, "no upstream connection available (out of sockets)");
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  UpstreamConn& u = *new_upstream();
  u.fd = fd;
  u.target_index = c.ex.target_index;
  u.owner = &c;
  c.ex.up = &u;
  c.ex.reused_upstream = false;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<const sockaddr*>(&t.address.addr), t.address.len);
  io_uring_sqe_set_data64(s, ring::pack(u.index, u.gen, kOpUpConnect));
  ++u.pending;
  set_timer(c, TimerKind::kConnect);
  metrics_->upstream_opened();
}

void Worker::on_up_connect(UpstreamConn& u, int res) {
  if (u.closing || u.owner == nullptr) return;
  DownstreamConn& c = *u.owner;
  if (res < 0) {
    u.reusable = false;
    if (res == -ECONNREFUSED) {
      metrics_->count_upstream_error(obs::UpstreamErrorKind::kConnectRefused);
      fail_exchange(c, 502, "upstream refused the connection");
    } else {
      metrics_->count_upstream_error(obs::UpstreamErrorKind::kReset);
      fail_exchange(c, 502, "upstream connect failed");
    }
    return;
  }
  u.connected = true;
  set_timer(c, c.ex.request_done ? TimerKind::kResponse : TimerKind::kBody);
  send_request_part(c);
}

void Worker::arm_up_recv(UpstreamConn& u, bool poll_first) {
  if (u.recv_armed || u.starved || u.closing) return;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_recv(s, u.fd, nullptr, buffers_.buffer_size(), 0);
  if (poll_first) s->ioprio |= IORING_RECVSEND_POLL_FIRST;
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = buffers_.group();
  io_uring_sqe_set_data64(s, ring::pack(u.index, u.gen, kOpUpRecv));
  u.recv_armed = true;
  ++u.pending;
}

void Worker::on_up_recv(UpstreamConn& u, int res, uint32_t flags) {
  u.recv_armed = false;
  if (res == -ENOBUFS) {
    u.starved = true;
    starved_upstreams_.push_back(&u);
    return;
  }
  const bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
  const int32_t bid = has_buf ? static_cast<int32_t>(flags >> IORING_CQE_BUFFER_SHIFT) : -1;
  if (u.closing || u.owner == nullptr) {
    // An idle pooled connection that speaks or closes is finished: upstreams do not send
    // unsolicited bytes on a healthy HTTP/1.1 connection.
    if (bid >= 0) buffers_.give_back(static_cast<uint16_t>(bid));
    if (!u.closing) close_upstream(u);
    return;
  }
  if (res <= 0) {
    on_upstream_failure(u, res);
    return;
  }
  DownstreamConn& c = *u.owner;
  char* data = buffers_.data(static_cast<uint16_t>(bid));
  if (!append_input(u.in, data, static_cast<uint32_t>(res), bid, block_size_ / 2)) {
    u.reusable = false;
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kProtocol);
    fail_exchange(c, 502, "upstream response head too large");
    return;
  }
  on_upstream_data(u);
}

void Worker::up_send(UpstreamConn& u) {
  if (!start_send(u.send, u.fd, ring::pack(u.index, u.gen, kOpUpSend))) {
    u.send.count = 0;
    if (u.owner != nullptr) on_request_sent(*u.owner);
    return;
  }
  ++u.pending;
}

void Worker::on_up_send(UpstreamConn& u, int res) {
  SendOp& s = u.send;
  s.busy = false;
  if (u.closing || u.owner == nullptr) {
    s.count = 0;
    return;
  }
  // We never submit an empty send, so 0 means the peer is gone as surely as an error does.
  if (res <= 0) {
    s.count = 0;
    u.owner->ex.in_flight_body = 0;
    u.owner->ex.req_body_final = false;
    on_upstream_failure(u, res < 0 ? res : -EPIPE);
    return;
  }
  const bool more = s.advance(static_cast<uint32_t>(res));
  if (more) {
    up_send(u);
    return;
  }
  s.count = 0;
  on_request_sent(*u.owner);
}

void Worker::release_upstream(DownstreamConn& c, bool reuse) {
  UpstreamConn* u = c.ex.up;
  if (u == nullptr) return;
  c.ex.up = nullptr;
  release_conn(u, reuse);
}

void Worker::release_conn(UpstreamConn* u, bool reuse) {
  u->owner = nullptr;
  if (u->leg != nullptr) {
    u->leg->up = nullptr;
    u->leg = nullptr;
  }
  const uint32_t t = u->target_index;
  if (reuse && u->reusable && !draining_ && !u->send.busy && u->in.empty() &&
      pool_sizes_[t] < cfg_.upstream_keepalive) {
    u->pool_prev = nullptr;
    u->pool_next = pool_heads_[t];
    if (pool_heads_[t] != nullptr) pool_heads_[t]->pool_prev = u;
    pool_heads_[t] = u;
    ++pool_sizes_[t];
    ++u->served;
    set_lowat(u->fd, u->rcvlowat, 1);  // normally reset already when its splice finished
    up_idle_timers_.arm(&u->timer, now_ns_);
    arm_up_recv(*u, true);  // an idle upstream says nothing until it closes
    return;
  }
  close_upstream(*u);
}

void Worker::pool_remove(UpstreamConn& u) {
  const uint32_t t = u.target_index;
  if (u.pool_prev != nullptr) {
    u.pool_prev->pool_next = u.pool_next;
  } else if (pool_heads_[t] == &u) {
    pool_heads_[t] = u.pool_next;
  } else {
    return;  // not pooled
  }
  if (u.pool_next != nullptr) u.pool_next->pool_prev = u.pool_prev;
  u.pool_prev = u.pool_next = nullptr;
  --pool_sizes_[t];
}

void Worker::close_upstream(UpstreamConn& u) {
  if (u.closing) return;
  pool_remove(u);
  core::TimerList::disarm(&u.timer);
  u.closing = true;
  if (u.owner != nullptr) {
    u.owner->ex.up = nullptr;
    u.owner = nullptr;
  }
  if (u.leg != nullptr) {
    u.leg->up = nullptr;
    u.leg = nullptr;
  }
  if (u.pending > 0) {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel_fd(s, u.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpCancel));
    return;
  }
  finalize_upstream(u);
}

void Worker::finalize_upstream(UpstreamConn& u) {
  close(u.fd);
  u.fd = -1;
  release(u.in);
  u.send.count = 0;
  u.in_use = false;
  u.gen = (u.gen + 1) & 0xffffff;
  free_upstreams_.push_back(u.index);
}

}  // namespace ringway::server
