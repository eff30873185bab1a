// Upstream connections: taken from the per-worker pools or connected through io_uring, a receive
// kept armed on idle ones (an upstream closing an idle connection is noticed at once rather than
// on reuse), and the one interface their users see: connected, data, sent, closed, failed. The
// user is a forwarded exchange (proxy/exchange.cc) or an aggregate leg (proxy/aggregate.cc); a
// health probe (issue 14) becomes a third.

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "server/worker.h"

namespace ringway::server {
namespace {

// The user no longer hears from u, and forgets it.
void detach_user(UpstreamConn& u) {
  if (u.exchange != nullptr) {
    u.exchange->up = nullptr;
    u.exchange = nullptr;
  }
  if (u.leg != nullptr) {
    u.leg->up = nullptr;
    u.leg = nullptr;
  }
  if (u.probe != nullptr) {
    u.probe->up = nullptr;
    u.probe = nullptr;
  }
}

}  // namespace

UpstreamConn* Worker::new_upstream() {
  bool fresh = false;
  UpstreamConn* u = &upstreams_.take(fresh);
  if (fresh) u->parser = std::make_unique<http::ResponseParser>(limits_);
  u->in_use = true;
  u->connected = false;
  u->reusable = true;
  u->send_queued = u->deliver_queued = false;
  u->exchange = nullptr;
  u->leg = nullptr;
  u->probe = nullptr;
  u->breaker_conn = u->breaker_pending = false;
  u->pool_prev = u->pool_next = nullptr;
  u->served = 0;
  u->out.clear();
  return u;
}

UpstreamConn* Worker::open_upstream(uint32_t instance, bool pooled, bool& reused) {
  // A DNS slot (issue 14) connects to its current address; pooled connections to an older one
  // are closed, not reused.
  const upstream::DnsAddress* dns = shared_.dns ? shared_.dns->address(instance) : nullptr;
  if (pooled) {
    while (UpstreamConn* u = pools_.take(instance)) {
      if (u->dns_address != dns) {
        close_upstream(*u);
        continue;
      }
      reused = true;
      metrics_->upstream_reused();
      return u;
    }
  }
  reused = false;
  const config::Target& t = clusters_.instance(instance);
  open_failure_ = upstream::FailureKind::kCircuitOpen;
  if (!acquire_connection_units(instance)) return nullptr;  // issue 14: circuit breaker
  open_failure_ = upstream::FailureKind::kNoSocket;
  const sockaddr_storage& to = dns != nullptr ? dns->addr : t.address.addr;
  // An empty slot has no address (its Target's is only the start-time answer of slot 0).
  const socklen_t to_len = dns != nullptr ? dns->len : t.dns ? 0 : t.address.len;
  const int fd = to_len == 0 ? -1 : socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    release_connection_units(instance, true, true);
    return nullptr;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::unique_ptr<tls::Session> session;
  if (t.tls) {
    // SNI and the certificate check use the URL's host; the session cache is per authority.
    const bool named = t.tls_settings != nullptr && !t.tls_settings->server_name.empty();
    session = tls::Session::client(tls_client_for(t), named ? t.tls_settings->server_name : t.address.host,
                                   t.authority);
    if (session == nullptr) {
      close(fd);
      release_connection_units(instance, true, true);
      return nullptr;
    }
  }
  UpstreamConn& u = *new_upstream();
  u.open(fd, t.tls ? net::TransportKind::kTls : net::TransportKind::kPlain, std::move(session));
  u.instance = instance;
  u.dns_address = dns;
  u.breaker_conn = u.breaker_pending = true;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<const sockaddr*>(&to), to_len);
  io_uring_sqe_set_data64(s, ring::pack(u.index, u.gen, kOpUpConnect));
  ++u.pending;
  metrics_->upstream_opened();
  return &u;
}

void Worker::on_up_connect(UpstreamConn& u, int res) {
  if (u.breaker_pending) {  // no longer waiting for a connection (issue 14)
    u.breaker_pending = false;
    release_connection_units(u.instance, false, true);
  }
  if (u.closing || !u.has_user()) return;
  if (res < 0) {
    u.reusable = false;
    up_failed(u, upstream::classify_connect(res));
    return;
  }
  if (u.transport.tls()) {  // connected means the handshake is done: it starts now
    if (!u.begin_handshake()) {
      u.reusable = false;
      up_failed(u, upstream::classify_tls(u.transport.session()->failure()));
      return;
    }
    flush_upstream(u);
    arm_up_recv(u);
    return;
  }
  u.connected = true;
  up_connected(u);
}

void Worker::arm_up_recv(UpstreamConn& u, bool poll_first) {
  if (u.recv_armed || u.starved || u.closing || u.deliver_queued) return;
  if (u.has_pending_plaintext()) {  // the transport already holds it: the loop delivers it
    u.deliver_queued = true;
    up_tls_deliveries_.push_back(&u);
    return;
  }
  u.prep_recv(loop_.sqe(), buffers_.ring(), buffers_.input_limit(), poll_first, ring::pack(u.index, u.gen, kOpUpRecv));
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
  if (u.closing || (!u.has_user() && (res <= 0 || !u.transport.tls()))) {
    // An idle pooled connection that speaks or closes is finished: upstreams do not send
    // unsolicited bytes on a healthy HTTP/1.1 connection.
    if (bid >= 0) buffers_.ring().give_back(static_cast<uint16_t>(bid));
    if (!u.closing) close_upstream(u);
    return;
  }
  if (res <= 0) {
    if (bid >= 0) buffers_.ring().give_back(static_cast<uint16_t>(bid));
    up_closed(u, res);
    return;
  }
  char* data = buffers_.ring().data(static_cast<uint16_t>(bid));
  on_up_plaintext(u, u.received(buffers_, data, static_cast<uint32_t>(res), bid, buffers_.input_limit()));
}

// What the transport made of received bytes.
void Worker::on_up_plaintext(UpstreamConn& u, net::RecvResult r) {
  if (!u.has_user()) {
    // Idle in the pool: a TLS 1.3 server may still send session tickets (no plaintext), which
    // keep the connection; anything else ends it.
    if (r == net::RecvResult::kNothing) {
      flush_upstream(u);
      arm_up_recv(u, true);
    } else {
      close_upstream(u);
    }
    return;
  }
  switch (r) {
    case net::RecvResult::kData:
    case net::RecvResult::kNothing:
      break;
    case net::RecvResult::kTooLarge:
      u.reusable = false;
      up_failed(u, upstream::FailureKind::kHeadTooLarge);
      return;
    case net::RecvResult::kClosed:
      up_closed(u, 0);
      return;
    case net::RecvResult::kError:
      u.reusable = false;
      u.send_alert_now();
      up_failed(u, u.connected ? upstream::FailureKind::kInvalidBody
                               : upstream::classify_tls(u.transport.session()->failure()));
      return;
  }
  if (!u.connected && u.transport.ready()) {
    // The handshake just finished: the user's first send goes out with our last flight.
    u.connected = true;
    up_connected(u);
    if (u.closing) return;
  }
  flush_upstream(u);
  if (r == net::RecvResult::kData) {
    up_data(u);
  } else {
    arm_up_recv(u);
  }
}

void Worker::flush_upstream(UpstreamConn& u) {
  u.flush(loop_, ring::pack(u.index, u.gen, kOpUpSend));
}

void Worker::up_send(UpstreamConn& u) {
  if (u.send.busy) {  // only a transport flush can be in flight here: go after it
    u.send_queued = true;
    return;
  }
  if (!u.start_send(loop_, ring::pack(u.index, u.gen, kOpUpSend))) {
    u.send.count = 0;
    if (u.has_user()) up_sent(u);
    return;
  }
  ++u.pending;
}

void Worker::on_up_send(UpstreamConn& u, int res) {
  net::SendOp& s = u.send;
  if (u.complete_send(res, loop_, ring::pack(u.index, u.gen, kOpUpSend))) return;
  if (u.flushing) {  // the transport's own bytes went out
    u.flushing = false;
    if (u.closing) return;
    if (res < 0) {
      if (u.has_user()) {
        up_closed(u, res);
      } else {
        close_upstream(u);
      }
    } else if (u.send_queued) {
      u.send_queued = false;
      up_send(u);
    }
    return;
  }
  if (u.closing || !u.has_user()) {
    s.count = 0;
    return;
  }
  // We never submit an empty send, so 0 means the peer is gone as surely as an error does.
  if (res <= 0) {
    s.count = 0;
    up_closed(u, res < 0 ? res : -EPIPE);
    return;
  }
  if (s.advance(static_cast<uint32_t>(res))) {
    up_send(u);
    return;
  }
  s.count = 0;
  up_sent(u);
}

// --- the user interface: one switch per event ---

void Worker::up_connected(UpstreamConn& u) {
  if (u.exchange != nullptr) {
    Exchange& ex = *u.exchange;
    set_timer(*ex.down, ex.request_done ? TimerKind::kResponse : TimerKind::kBody);
    send_request_part(ex);
  } else if (u.leg != nullptr) {
    send_leg(*u.leg);
  } else if (u.probe != nullptr) {
    send_probe(*u.probe);
  }
}

void Worker::up_data(UpstreamConn& u) {
  if (u.exchange != nullptr) {
    on_response_data(*u.exchange);
  } else if (u.leg != nullptr) {
    on_leg_data(*u.leg);
  } else if (u.probe != nullptr) {
    on_probe_data(*u.probe);
  }
}

void Worker::up_sent(UpstreamConn& u) {
  // A leg sends its head only; its receive is already armed.
  if (u.exchange != nullptr) on_request_sent(*u.exchange);
}

void Worker::up_closed(UpstreamConn& u, int err) {
  u.reusable = false;
  if (u.exchange != nullptr) {
    on_forward_closed(*u.exchange, err);
  } else if (u.leg != nullptr) {
    on_leg_closed(*u.leg, err);
  } else if (u.probe != nullptr) {
    finish_probe(*u.probe, false);
  }
}

void Worker::up_failed(UpstreamConn& u, upstream::FailureKind kind) {
  if (u.exchange != nullptr) {
    on_forward_failure(*u.exchange, kind);
  } else if (u.leg != nullptr) {
    on_leg_failure(*u.leg, kind);
  } else if (u.probe != nullptr) {
    finish_probe(*u.probe, false);
  }
}

// --- pools and close ---

void Worker::release_upstream(UpstreamConn* u, bool reuse) {
  detach_user(*u);
  if (reuse && u->reusable && !draining_ && !u->send.busy && u->in.empty() && pools_.put(*u, now_ns_)) {
    ++u->served;
    u->set_rcvlowat(1);  // normally reset already when its pump finished
    u->release_idle_buffers();
    arm_up_recv(*u, true);  // an idle upstream says nothing until it closes
    return;
  }
  close_upstream(*u);
}

void Worker::close_upstream(UpstreamConn& u) {
  if (u.closing) return;
  pools_.remove(u);
  core::TimerList::disarm(&u.timer);
  u.closing = true;
  detach_user(u);
  if (u.pending > 0) {
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel_fd(s, u.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpCancel));
    return;
  }
  finalize_upstream(u);
}

void Worker::finalize_upstream(UpstreamConn& u) {
  release_connection_units(u.instance, u.breaker_conn, u.breaker_pending);  // issue 14
  u.breaker_conn = u.breaker_pending = false;
  u.close_socket(false);
  buffers_.release(u.in);
  u.send.count = 0;
  u.in_use = false;
  u.gen = (u.gen + 1) & 0xffffff;
  upstreams_.give(u);
  if (accept_paused_) resume_accepting();  // a descriptor was freed
}

}  // namespace ringway::server
