// The worker's event loop: one io_uring, completions dispatched by the op in user_data, timers
// checked on every iteration (they are O(1) to look at), the access log flushed without blocking.

#include "server/worker.h"

#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ringway/core/clock.h"
#include "ringway/http/head_writer.h"

namespace ringway::server {
namespace {

constexpr uint64_t kTickNs = 100'000'000;       // longest sleep: timers are checked at least this often
constexpr uint32_t kRingEntries = 4096;
constexpr uint16_t kBufferGroup = 1;
// Receive buffers: 16 MiB per worker, reserved, resident only as the kernel fills them. 64 KiB
// each because a body relayed through user space (a TLS leg) costs a receive per buffer: with
// 16 KiB the HTTPS 1 MiB GET spent twice nginx's kernel time in tcp_recvmsg (nginx reads 4-8
// buffers per readv); 64 KiB took ~10% off the proxy's CPU per MiB there. Small requests touch
// only the pages they fill.
constexpr uint32_t kBufferCount = 256;          // power of two
constexpr uint32_t kBufferSize = 64 * 1024;

int open_listener(const config::Address& a, bool reuseport, std::string& error) {
  int fd = socket(a.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Each worker has its own accept queue; the kernel spreads connections over them.
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (a.addr.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Accepted sockets inherit it (Linux copies the listener's TCP options): no setsockopt per
  // connection.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0 || listen(fd, 4096) != 0) {
    error = "listen on " + a.host + ":" + std::to_string(a.port) + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

Worker::Worker(Shared& shared, unsigned index)
    : shared_(shared),
      cfg_(*shared.cfg),
      clusters_(*shared.clusters),
      traffic_(*shared.traffic),
      rng_(0x2545f4914f6cdd1dull * (index + 1)),
      index_(index) {
  limits_.max_request_line = cfg_.max_request_line;
  limits_.max_head_bytes = cfg_.max_head_bytes;
  limits_.max_header_count = cfg_.max_header_count;
  // The rebuilt head may exceed the client's (gateway fields, a longer base path), but leaves
  // room in an exchange's block for the response head and the log copies (proxy/exchange.cc).
  up_head_cap_ = cfg_.max_head_bytes + 16 * 1024 - 2048 - 1024;
  header_timers_.set_duration_ms(cfg_.client_header_timeout_ms);
  keepalive_timers_.set_duration_ms(cfg_.client_keepalive_timeout_ms);
  body_timers_.set_duration_ms(cfg_.body_timeout_ms);
  connect_timers_.set_duration_ms(cfg_.upstream_connect_timeout_ms);
  response_timers_.set_duration_ms(cfg_.upstream_response_timeout_ms);
  linger_timers_.set_duration_ms(2'000);
  for (const config::Aggregate& a : cfg_.aggregates) {
    __kernel_timespec ts{};
    ts.tv_sec = a.deadline_ms / 1000;
    ts.tv_nsec = static_cast<long long>(a.deadline_ms % 1000) * 1'000'000;
    agg_deadlines_.push_back(ts);
  }
  if (!cfg_.aggregates.empty()) merge_ws_ = std::make_unique<agg::MergeWorkspace>();
  pools_.init(clusters_.instances().size(), cfg_.upstream_keepalive, cfg_.upstream_idle_timeout_ms);
  init_health_checks();  // issue 14
  pick_cursors_.assign(clusters_.cluster_count(), index);  // workers start at different instances
  if (cfg_.hsts_s > 0) hsts_ = "max-age=" + std::to_string(cfg_.hsts_s);
  if (cfg_.redirect_https && !cfg_.listen_tls.empty()) {
    redirect_https_ = true;
    const uint16_t port = cfg_.listen_tls.front().port;
    if (port != 443) redirect_port_.append(":").append(std::to_string(port));
  }
  metrics_ = &shared_.metrics->shard(index);
  log_enabled_ = shared_.access_log_fd >= 0;
  for (const auto& f : shared_.filters) filters_.add(f->create(index, shared_.worker_count));
  if (cfg_.has_redis && shared_.redis_stats) {
    redis_ = std::make_unique<redis::RedisLink>(
        loop_, cfg_, *shared_.redis_stats,
        redis::RedisLink::Ops{kOpRedisConnect, kOpRedisSend, kOpRedisRecv, kOpRedisTimer, kOpRedisCancel});
    filters_.attach(redis_.get());
  }
}

Worker::~Worker() {
  for (auto& c : clients_.all()) {
    if (c->fd >= 0) close(c->fd);
  }
  for (auto& ex : exchanges_.all()) {
    delete ex->admin_body;
    delete ex->agg;
  }
  for (auto& u : upstreams_.all()) {
    if (u->fd >= 0) close(u->fd);
  }
  for (int fd : listen_fds_) {
    if (fd >= 0) close(fd);
  }
  if (admin_fd_ >= 0) close(admin_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool Worker::setup(std::string& error) {
  if (!loop_.init(kRingEntries, cfg_.sqpoll, error)) return false;
  // A block holds the rebuilt upstream head (client head plus our fields), then the downstream
  // head, then copies for the access log.
  const uint32_t block_size = 2 * cfg_.max_head_bytes + 16 * 1024;
  if (!buffers_.init(loop_.raw(), kBufferGroup, kBufferCount, kBufferSize, block_size, error)) return false;
  // Every worker listens on every address with its own SO_REUSEPORT socket, so the kernel
  // spreads each address's connections over all workers.
  auto add_listener = [&](const config::Address& a, bool tls) {
    const int fd = open_listener(a, true, error);
    if (fd < 0) return false;
    listen_fds_.push_back(fd);
    listen_tls_.push_back(tls);
    arm_accept(fd, kOpAccept, static_cast<uint32_t>(listen_fds_.size() - 1));
    accept_armed_.push_back(true);
    return true;
  };
  for (const auto& a : cfg_.listen) {
    if (!add_listener(a, false)) return false;
  }
  for (const auto& a : cfg_.listen_tls) {
    if (!add_listener(a, true)) return false;
  }
  if (cfg_.has_admin && index_ == 0) {
    admin_fd_ = open_listener(cfg_.admin_listen, false, error);
    if (admin_fd_ < 0) return false;
    arm_accept(admin_fd_, kOpAdminAccept);
    admin_accept_armed_ = true;
  }
  for (const config::Target* t : clusters_.instances()) {
    if (t->tls && t->tls_settings != nullptr) {  // its own settings (issue 13)
      auto& own = tls_clients_[t->tls_settings.get()];
      if (own == nullptr) own = tls::ClientContext::build(tls::client_settings(cfg_, *t->tls_settings), error);
      if (own == nullptr) return false;
      continue;
    }
    if (!t->tls || tls_client_ != nullptr) continue;
    // One per worker: its session cache then needs no lock (tls/client_context.h).
    tls_client_ = tls::ClientContext::build(tls::client_settings(cfg_), error);
    if (tls_client_ == nullptr) return false;
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    error = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  arm_wake();
  if (redis_) redis_->start(core::monotonic_ns());
  return true;
}

void Worker::wake() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
}

void Worker::arm_wake() {
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof(wake_value_), 0);
  io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpWake));
}

bool Worker::run(std::string& error) {
  if (!setup(error)) return false;
  shared_.ready_workers.fetch_add(1, std::memory_order_release);
  now_ns_ = core::monotonic_ns();
  if (shared_.draining.load(std::memory_order_acquire)) begin_drain();
  io_uring* ring = loop_.raw();
  while (!stop_) {
    loop_.submit_and_wait(kTickNs);
    now_ns_ = core::monotonic_ns();
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
      dispatch(cqe);
      ++seen;
    }
    io_uring_cq_advance(ring, seen);
    buffers_.ring().publish();
    // Receives that found the buffer ring empty wait here until buffers come back.
    if (buffers_.ring().available() > 0 && !starved_clients_.empty()) {
      auto waiting = std::move(starved_clients_);
      starved_clients_.clear();
      for (DownstreamConn* c : waiting) {
        c->starved = false;
        if (!c->closing) arm_client_recv(*c);
      }
    }
    if (!tls_deliveries_.empty()) {
      auto waiting = std::move(tls_deliveries_);
      tls_deliveries_.clear();
      for (DownstreamConn* c : waiting) {
        c->deliver_queued = false;
        if (!c->closing) on_client_plaintext(*c, c->deliver_pending(buffers_, buffers_.input_limit()));
      }
    }
    if (!up_tls_deliveries_.empty()) {
      auto waiting = std::move(up_tls_deliveries_);
      up_tls_deliveries_.clear();
      for (UpstreamConn* u : waiting) {
        u->deliver_queued = false;
        if (!u->closing) on_up_plaintext(*u, u->deliver_pending(buffers_, buffers_.input_limit()));
      }
    }
    if (buffers_.ring().available() > 0 && !starved_upstreams_.empty()) {
      auto waiting = std::move(starved_upstreams_);
      starved_upstreams_.clear();
      for (UpstreamConn* u : waiting) {
        u->starved = false;
        if (!u->closing) arm_up_recv(*u);
      }
    }
    run_timers();
    if (accept_paused_ && now_ns_ >= accept_retry_ns_) resume_accepting();
    flush_access_log(false);
    if (draining_) {
      if (open_clients_ == 0 || now_ns_ >= drain_deadline_ns_) {
        for (auto& c : clients_.all()) {
          if (c->in_use && !c->closing) close_client(*c, true);
        }
        while (UpstreamConn* u = pools_.any()) close_upstream(*u);
        if (open_clients_ == 0) {
          flush_access_log(true);
          stop_ = true;
        }
      }
    }
  }
  return true;
}

void Worker::dispatch(io_uring_cqe* cqe) {
  const uint64_t ud = io_uring_cqe_get_data64(cqe);
  const uint8_t op = ring::unpack_op(ud);
  const uint32_t idx = ring::unpack_index(ud);
  const uint32_t gen = ring::unpack_gen(ud);
  const int res = cqe->res;
  const uint32_t flags = cqe->flags;
  if (flags & IORING_CQE_F_BUFFER) buffers_.ring().taken();

  switch (op) {
    case kOpAccept:
    case kOpAdminAccept:
      on_accept(res, flags, op == kOpAdminAccept, idx);
      return;
    case kOpWake:
      mailbox_.drain();
      if (shared_.draining.load(std::memory_order_acquire)) begin_drain();
      if (!stop_) arm_wake();
      return;
    case kOpLogWrite:
      log_writing_ = false;
      access_log_.end_flush(res > 0 ? static_cast<size_t>(res) : 0);
      return;
    case kOpCancel:
    case kOpNone:
      return;
    case kOpRedisConnect:
    case kOpRedisSend:
    case kOpRedisRecv:
    case kOpRedisTimer:
    case kOpRedisCancel:
      if (redis_) redis_->on_completion(op, gen, res, now_ns_);
      return;
    default:
      break;
  }

  if (op == kOpClientRecv || op == kOpClientSend || op == kOpClientPollIn || op == kOpClientPollOut ||
      op == kOpAggDeadline) {
    DownstreamConn& c = clients_[idx];
    if (c.gen != (gen & 0xffffff) || !c.in_use) {
      // Cannot happen while objects are recycled only after their last completion; drop the
      // buffer rather than touch a stranger.
      if (flags & IORING_CQE_F_BUFFER) buffers_.ring().give_back(static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT));
      return;
    }
    --c.pending;
    switch (op) {
      case kOpClientRecv: on_client_recv(c, res, flags); break;
      case kOpClientSend: on_client_send(c, res); break;
      case kOpAggDeadline: on_aggregate_deadline(c, res); break;
      case kOpClientPollIn:
      case kOpClientPollOut: {
        // Pump readiness: the client is the source of the upload, the destination of the download.
        const proxy::Dir d = op == kOpClientPollIn ? proxy::kUpload : proxy::kDownload;
        if (c.ex == nullptr) break;
        c.ex->polling[d] = false;
        if (!c.closing && c.ex->pipe[d].valid() && c.ex->up != nullptr) pump(*c.ex, d);
        break;
      }
      default: break;
    }
    if (c.in_use && c.closing && c.pending == 0) finalize_client(c);
    return;
  }

  UpstreamConn& u = upstreams_[idx];
  if (u.gen != (gen & 0xffffff) || !u.in_use) {
    if (flags & IORING_CQE_F_BUFFER) buffers_.ring().give_back(static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT));
    return;
  }
  --u.pending;
  switch (op) {
    case kOpUpConnect: on_up_connect(u, res); break;
    case kOpUpRecv: on_up_recv(u, res, flags); break;
    case kOpUpSend: on_up_send(u, res); break;
    case kOpUpPollIn:
    case kOpUpPollOut: {
      const proxy::Dir d = op == kOpUpPollIn ? proxy::kDownload : proxy::kUpload;
      if (u.exchange == nullptr || u.closing) break;
      Exchange& ex = *u.exchange;
      ex.polling[d] = false;
      if (ex.pipe[d].valid()) pump(ex, d);
      break;
    }
    default: break;
  }
  if (u.in_use && u.closing && u.pending == 0) finalize_upstream(u);
}

void Worker::run_timers() {
  core::TimerNode* n;
  core::TimerList* lists[] = {&header_timers_, &keepalive_timers_, &body_timers_,
                              &connect_timers_, &response_timers_, &linger_timers_};
  for (core::TimerList* l : lists) {
    while ((n = l->pop_expired(now_ns_)) != nullptr) {
      on_timer(*static_cast<DownstreamConn*>(net::Conn::of_timer(n)));
    }
  }
  while (UpstreamConn* u = pools_.expired(now_ns_)) close_upstream(*u);
  for (auto& l : try_timers_) {  // issue 14: per-try response timeouts, one list per route
    while (l != nullptr && (n = l->pop_expired(now_ns_)) != nullptr) {
      on_timer(*static_cast<DownstreamConn*>(net::Conn::of_timer(n)));
    }
  }
  if (now_ns_ >= next_traffic_ns_) traffic_tick();  // issue 14
  cache_tick();
}

void Worker::on_timer(DownstreamConn& c) {
  const TimerKind kind = c.timer_kind;
  c.timer_kind = TimerKind::kNone;
  if (c.closing) return;
  switch (kind) {
    case TimerKind::kKeepAlive:
    case TimerKind::kLinger:
      close_client(c, false);
      return;
    case TimerKind::kHeader:
      if (!c.transport.ready()) {  // a TLS handshake that did not finish in time: nothing to say
        note_client_tls_closed(c, true);
        close_client(c, false);
        return;
      }
      // RFC 9110 15.5.9: 408 tells a client that sent part of a head why it is dropped.
      local_reply(c, 408, "the request head did not arrive in time", true);
      return;
    case TimerKind::kConnect:
      on_forward_failure(*c.ex, upstream::FailureKind::kConnectTimeout);
      return;
    case TimerKind::kResponse:
      on_forward_failure(*c.ex, upstream::FailureKind::kResponseTimeout);
      return;
    case TimerKind::kPaused:
      // A filter waits on something remote (a key server, a cluster lease) that did not answer:
      // for the client that is a gateway timeout. A late resume() finds the exchange over.
      c.ex->paused = false;
      local_reply(c, 504, "a filter did not decide in time", c.ex->has_body);
      return;
    case TimerKind::kBody: {
      // A pump waiting behind a raised SO_RCVLOWAT (proxy/pump.cc) sees no progress until that
      // much is queued; bytes may have arrived all the same. Lowering it to 1 makes the kernel
      // report them now (tcp_set_rcvlowat checks readiness), so a slow peer gets one more period
      // with plain readiness before it counts as stalled.
      Exchange& ex = *c.ex;
      UpstreamConn* up = ex.up;
      if (!ex.lowat_off && (c.rcvlowat > 1 || (up != nullptr && up->rcvlowat > 1))) {
        ex.lowat_off = true;
        c.set_rcvlowat(1);
        if (up != nullptr) up->set_rcvlowat(1);
        set_timer(c, TimerKind::kBody);
        return;
      }
      if (!ex.response_started && !ex.request_done) {
        fail_exchange(ex, 408, "the request body stalled");
      } else {
        fail_exchange(ex, 504, "body transfer stalled");
      }
      return;
    }
    case TimerKind::kNone:
      return;
  }
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  drain_deadline_ns_ = now_ns_ + static_cast<uint64_t>(cfg_.drain_timeout_ms) * 1'000'000ull;
  // Closing the listeners ends their multishot accepts; the kernel spreads new connections over
  // the workers that still listen, and refuses them once none does.
  for (int& fd : listen_fds_) {
    if (fd < 0) continue;
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpCancel));
    shutdown(fd, SHUT_RDWR);
    close(fd);
    fd = -1;
  }
  for (auto& c : clients_.all()) {
    if (c->in_use && !c->closing && c->state == net::DownState::kIdle && !c->admin) close_client(*c, false);
  }
}

void Worker::flush_access_log(bool force) {
  if (!log_enabled_ || log_writing_) return;
  if (!force && !access_log_.should_flush() && now_ns_ < next_log_flush_ns_) return;
  next_log_flush_ns_ = now_ns_ + kTickNs;
  if (access_log_.pending_bytes() == 0) return;
  std::span<const char> bytes = access_log_.begin_flush();
  if (bytes.empty()) return;
  if (force) {
    // Shutting down: write synchronously so nothing is lost.
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = write(shared_.access_log_fd, bytes.data() + done, bytes.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    access_log_.end_flush(done);
    if (access_log_.pending_bytes() > 0) flush_access_log(true);
    return;
  }
  io_uring_sqe* s = loop_.sqe();
  // Offset -1: the file position (O_APPEND files append; pipes and terminals just write).
  io_uring_prep_write(s, shared_.access_log_fd, bytes.data(), static_cast<unsigned>(bytes.size()),
                      static_cast<uint64_t>(-1));
  io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpLogWrite));
  log_writing_ = true;
}

void Worker::serve_admin(DownstreamConn& c, const http::Request& req) {
  std::string body;
  uint16_t status = 200;
  std::string_view type = "text/plain; charset=utf-8";
  if (req.path == "/healthz") {
    body = "ok\n";
  } else if (req.path == "/readyz") {
    const bool ready = shared_.ready_workers.load(std::memory_order_acquire) == shared_.worker_count &&
                       !shared_.draining.load(std::memory_order_acquire);
    status = ready ? 200 : 503;
    body = ready ? "ready\n" : "not ready\n";
  } else if (req.path == "/metrics") {
    shared_.metrics->render_prometheus(body);
    render_traffic_metrics(body);
    cache_metrics(body);
    type = obs::kPrometheusContentType;
  } else if (req.path == "/upstreams") {  // issue 14
    render_upstreams(body);
    type = "application/json";
  } else if (cache_admin(req, status, body)) {
    // POST /cache/purge (proxy/cache_io.cc)
  } else {
    local_reply(c, 404, "unknown admin path (try /healthz, /readyz, /metrics, /upstreams)", !req.keep_alive);
    return;
  }
  const bool close_after = c.ex->close_after || !req.keep_alive || draining_;
  std::string* out = new std::string();
  out->reserve(body.size() + 160);
  http::LocalHead head;
  head.status = status;
  head.content_type = type;
  head.content_length = body.size();  // for HEAD too (RFC 9110 8.6)
  head.close = close_after;
  http::append_local_head(*out, head);
  if (req.method != http::Method::kHead) out->append(body);
  Exchange& ex = *c.ex;
  ex.admin_body = out;
  ex.local = true;
  ex.status = status;
  ex.close_after = close_after;
  ex.response_done = true;
  ex.request_done = true;
  c.send.hold[0] = net::Buf{out->data(), 0, static_cast<uint32_t>(out->size()), -1, false};
  c.send.count = 1;
  client_send(c);
}

}  // namespace ringway::server
