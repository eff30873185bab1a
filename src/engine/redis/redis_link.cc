// Why the connection is driven this way:
// - One connection per worker, not per process: the worker's loop owns it with no lock and no
//   cross-thread wake-up, and Redis answers each connection's commands in order, so one
//   connection can carry any number of outstanding requests (pipelining). Requests are rare
//   anyway: one per lease of L tokens (cluster_lease.h), not one per gateway request.
// - Our own send buffer: the codec's output string may reallocate when a request is queued while
//   a send is in flight, so the bytes given to the kernel are copied out first.
// - One io_uring timeout, armed only while something waits (a request, a connect, a reconnect),
//   so an idle link costs no wake-ups.
// - "Down" is sticky until Redis answers: a SIGSTOPped Redis still completes TCP handshakes
//   (the kernel accepts into the backlog), so a successful connect proves nothing.
#include "redis/redis_link.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ringway/ring/loop.h"

namespace ringway::redis {
namespace {

constexpr size_t kRecvSize = 16 * 1024;
constexpr uint64_t kMinBackoffNs = 10'000'000;     // 10 ms, doubling
constexpr uint64_t kMaxBackoffNs = 1'000'000'000;  // 1 s
constexpr uint64_t kRttBoundsNs[filter::RedisStats::kRttBuckets] = {
    250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000, 50'000'000, 250'000'000};
constexpr const char* kRttBoundsText[filter::RedisStats::kRttBuckets] = {
    "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.05", "0.25"};

}  // namespace

RedisLink::RedisLink(ring::Loop& loop, const config::Config& cfg, filter::RedisStats& stats, Ops ops)
    : loop_(loop),
      stats_(stats),
      ops_(ops),
      codec_(rate_limit::RedisLeaseCodec::Options{cfg.redis_password, cfg.redis_database}),
      recv_buf_(new char[kRecvSize]) {
  if (!cfg.redis_unix_path.empty()) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::strncpy(un.sun_path, cfg.redis_unix_path.c_str(), sizeof(un.sun_path) - 1);
    std::memcpy(&addr_, &un, sizeof(un));
    addr_len_ = sizeof(un);
    name_ = "unix:" + cfg.redis_unix_path;
  } else {
    addr_ = cfg.redis_address.addr;
    addr_len_ = cfg.redis_address.len;
    name_ = cfg.redis_address.host + ":" + std::to_string(cfg.redis_address.port);
  }
}

RedisLink::~RedisLink() {
  if (fd_ >= 0) {
    // The ring, torn down just after this, may still hold a receive into recv_buf_: after
    // shutdown() it completes empty, with nothing written.
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
  }
}

void RedisLink::start(uint64_t now_ns) { connect(now_ns); }

void RedisLink::connect(uint64_t now_ns) {
  if (connecting_ || connected_) return;
  fd_ = socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    fail(true, now_ns);
    return;
  }
  if (addr_.ss_family != AF_UNIX) {
    // Requests are small and latency is the point: no Nagle delay behind an unacknowledged one.
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  connecting_ = true;
  connect_started_ns_ = now_ns;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_connect(s, fd_, reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
  io_uring_sqe_set_data64(s, ring::pack(0, gen_, ops_.connect));
  arm_timer(now_ns);
}

void RedisLink::fail(bool down, uint64_t now_ns) {
  const bool was_connected = connected_;
  if (fd_ >= 0) {
    // Pending ops end with the descriptor; their completions carry the old generation.
    io_uring_sqe* s = loop_.sqe();
    io_uring_prep_cancel_fd(s, fd_, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, ring::pack(0, 0, ops_.cancel));
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    fd_ = -1;
  }
  if (!was_connected) filter::RedisStats::add(stats_.connect_failures);
  gen_ = (gen_ + 1) & 0xffffff;
  connecting_ = connected_ = sending_ = recv_armed_ = false;
  send_buf_.clear();
  send_off_ = 0;
  // A connection that was working and just closed (Redis restarted, an idle timeout) is
  // retried at once and requests keep waiting; anything else counts as down and backs off.
  if (down || !was_connected) {
    down_ = true;
    backoff_ns_ = backoff_ns_ == 0 ? kMinBackoffNs : std::min(kMaxBackoffNs, backoff_ns_ * 2);
    if (!logged_down_) {
      logged_down_ = true;
      std::fprintf(stderr, "ringway: Redis at %s is not answering; the failure policy applies\n", name_.c_str());
    }
  } else {
    backoff_ns_ = 0;
  }
  reconnect_at_ns_ = now_ns + backoff_ns_;
  codec_.disconnected();
  deliver(now_ns);
  if (reconnect_at_ns_ <= now_ns) {
    connect(now_ns);
  } else {
    arm_timer(now_ns);
  }
}

bool RedisLink::up(uint64_t now_ns) const {
  if (down_) return false;
  return rate_limit::redis_state(true, codec_.oldest_outstanding_ns(), now_ns, filter::kLeaseTtlNs) ==
         rate_limit::RedisState::kUp;
}

bool RedisLink::take(filter::LeaseListener* listener, uint64_t tag, std::string_view key, uint64_t interval_ns,
                     uint64_t tau_ns, uint32_t want, uint64_t now_ns) {
  if (!up(now_ns)) return false;
  const rate_limit::BucketParams p{interval_ns, tau_ns, 0};
  const uint64_t id = codec_.queue_take(key, p, want, now_ns);
  askers_[id] = Asker{listener, tag, now_ns};
  filter::RedisStats::add(stats_.takes);
  if (connected_) {
    flush();
  } else {
    connect(now_ns);
  }
  arm_timer(now_ns);
  return true;
}

void RedisLink::give(std::string_view key, uint64_t interval_ns, uint64_t tau_ns, uint64_t stamp, uint32_t n,
                     uint64_t now_ns) {
  if (!connected_ || down_ || n == 0) return;  // tokens not given back are only wasted
  const rate_limit::BucketParams p{interval_ns, tau_ns, 0};
  codec_.queue_give(key, p, stamp, n, now_ns);
  filter::RedisStats::add(stats_.gives);
  flush();
  arm_timer(now_ns);
}

void RedisLink::flush() {
  if (!connected_ || sending_) return;
  if (send_off_ == send_buf_.size()) {
    const std::string_view out = codec_.pending_output();
    if (out.empty()) return;
    send_buf_.assign(out);
    send_off_ = 0;
    codec_.consume_output(out.size());
  }
  sending_ = true;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_send(s, fd_, send_buf_.data() + send_off_, send_buf_.size() - send_off_, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, ring::pack(0, gen_, ops_.send));
}

void RedisLink::arm_recv() {
  if (!connected_ || recv_armed_) return;
  recv_armed_ = true;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_recv(s, fd_, recv_buf_.get(), kRecvSize, 0);
  io_uring_sqe_set_data64(s, ring::pack(0, gen_, ops_.recv));
}

void RedisLink::arm_timer(uint64_t now_ns) {
  if (timer_armed_) return;
  uint64_t at = 0;
  if (connecting_) {
    at = connect_started_ns_ + filter::kLeaseTtlNs;
  } else if (connected_ && codec_.oldest_outstanding_ns() != 0) {
    at = codec_.oldest_outstanding_ns() + filter::kLeaseTtlNs;
  } else if (!connected_) {
    at = reconnect_at_ns_;
  } else {
    return;  // idle and connected: nothing to time
  }
  const uint64_t delay = std::max<uint64_t>(at > now_ns ? at - now_ns : 0, 1'000'000);
  timer_ts_.tv_sec = static_cast<long long>(delay / 1'000'000'000);
  timer_ts_.tv_nsec = static_cast<long long>(delay % 1'000'000'000);
  timer_armed_ = true;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_timeout(s, &timer_ts_, 0, 0);
  io_uring_sqe_set_data64(s, ring::pack(0, 0, ops_.timer));
}

void RedisLink::tick(uint64_t now_ns) {
  if (connecting_ && now_ns - connect_started_ns_ >= filter::kLeaseTtlNs) {
    filter::RedisStats::add(stats_.timeouts);
    fail(true, now_ns);
  } else if (connected_ && codec_.oldest_outstanding_ns() != 0 &&
             now_ns - codec_.oldest_outstanding_ns() >= filter::kLeaseTtlNs) {
    // Redis stopped answering (stopped, overloaded, a partition): its replies may never come.
    filter::RedisStats::add(stats_.timeouts);
    fail(true, now_ns);
  } else if (!connected_ && !connecting_ && now_ns >= reconnect_at_ns_) {
    connect(now_ns);
  }
  arm_timer(now_ns);
}

void RedisLink::on_completion(uint8_t op, uint32_t gen, int res, uint64_t now_ns) {
  if (op == ops_.timer) {
    timer_armed_ = false;
    tick(now_ns);
    return;
  }
  if (op == ops_.cancel || gen != gen_) return;  // a connection already dropped
  if (op == ops_.connect) {
    connecting_ = false;
    if (res < 0) {
      fail(true, now_ns);
      return;
    }
    connected_ = true;
    filter::RedisStats::add(stats_.connects);
    const uint64_t loads = codec_.script_loads();
    codec_.connected(now_ns);  // AUTH, SELECT, SCRIPT LOAD ahead of what was queued
    filter::RedisStats::add(stats_.script_loads, codec_.script_loads() - loads);
    arm_recv();
    flush();
    arm_timer(now_ns);
    return;
  }
  if (op == ops_.send) {
    sending_ = false;
    if (res < 0) {
      fail(false, now_ns);
      return;
    }
    send_off_ += static_cast<size_t>(res);
    flush();
    return;
  }
  if (op == ops_.recv) {
    recv_armed_ = false;
    if (res <= 0) {
      if (res == 0 || (res != -EAGAIN && res != -EINTR)) {
        fail(false, now_ns);
        return;
      }
      arm_recv();
      return;
    }
    const uint64_t loads = codec_.script_loads();
    if (!codec_.feed(recv_buf_.get(), static_cast<size_t>(res))) {
      filter::RedisStats::add(stats_.errors);
      fail(true, now_ns);
      return;
    }
    // NOSCRIPT: the codec reloaded the script and resent the request (Redis restarted or
    // SCRIPT FLUSH): nothing for the filter to see but the count.
    filter::RedisStats::add(stats_.script_loads, codec_.script_loads() - loads);
    arm_recv();
    deliver(now_ns);
    if (auth_failed_) {
      auth_failed_ = false;
      fail(true, now_ns);
      return;
    }
    flush();
    arm_timer(now_ns);
  }
}

void RedisLink::deliver(uint64_t now_ns) {
  rate_limit::LeaseReply rep;
  while (codec_.next_reply(rep)) {
    const bool lost = rep.error == rate_limit::RedisErrorKind::kDisconnected;
    if (rep.ok()) {
      if (down_) std::fprintf(stderr, "ringway: Redis at %s answers again\n", name_.c_str());
      down_ = false;
      logged_down_ = false;
      backoff_ns_ = 0;
      last_error_ = rate_limit::RedisErrorKind::kNone;
    } else if (!lost) {
      filter::RedisStats::add(stats_.errors);
      if (rep.error == rate_limit::RedisErrorKind::kAuth) {
        // Configuration, not transient: the policy applies at once, and the connection is
        // remade (with backoff) so that a password fixed on the Redis side is picked up.
        down_ = true;
        auth_failed_ = true;
      }
      if (rep.error != last_error_) {  // one line per kind of trouble, not one per reply
        last_error_ = rep.error;
        std::fprintf(stderr, "ringway: Redis at %s: %s (%s)\n", name_.c_str(), rate_limit::error_kind_name(rep.error),
                     rep.message.c_str());
      }
    }
    if (rep.op != rate_limit::LeaseOp::kTake) continue;
    const auto it = askers_.find(rep.id);
    if (it == askers_.end()) continue;
    const Asker a = it->second;
    askers_.erase(it);
    if (rep.ok()) {
      const uint64_t rtt = now_ns > a.queued_ns ? now_ns - a.queued_ns : 0;
      filter::RedisStats::add(stats_.rtt_count);
      filter::RedisStats::add(stats_.rtt_sum_ns, rtt);
      for (int b = 0; b < filter::RedisStats::kRttBuckets; ++b) {
        if (rtt <= kRttBoundsNs[b]) {
          filter::RedisStats::add(stats_.rtt_le[b]);
          break;
        }
      }
      filter::RedisStats::add(stats_.granted, rep.count);
    }
    filter::LeaseAnswer ans;
    ans.tag = a.tag;
    ans.ok = rep.ok();
    ans.lost = lost;
    ans.count = rep.count;
    ans.retry_ns = rep.retry_ns;
    ans.remaining = rep.remaining;
    ans.full_in_ns = rep.full_in_ns;
    ans.stamp = rep.stamp;
    ans.queued_ns = a.queued_ns;
    ans.now_ns = now_ns;
    a.listener->on_lease(ans);
  }
}

void render_redis_stats(const filter::RedisStats& s, std::string& out) {
  auto line = [&](const char* name, const char* type, const char* help) {
    out.append("# HELP ringway_").append(name).append(" ").append(help).append("\n# TYPE ringway_")
        .append(name).append(" ").append(type).append("\n");
  };
  auto value = [&](const std::string& series, uint64_t v) {
    out.append("ringway_").append(series).append(" ").append(std::to_string(v)).append("\n");
  };
  auto load = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  line("redis_errors_total", "counter", "Redis error replies and protocol errors.");
  value("redis_errors_total", load(s.errors));
  line("redis_connects_total", "counter", "Connections to Redis: established, or failed (refused, timed out).");
  value("redis_connects_total{result=\"ok\"}", load(s.connects));
  value("redis_connects_total{result=\"failed\"}", load(s.connect_failures));
  line("redis_timeouts_total", "counter", "Connections dropped because Redis did not answer within a lease lifetime.");
  value("redis_timeouts_total", load(s.timeouts));
  line("redis_lease_requests_total", "counter", "Lease round trips to Redis (take), and give-backs.");
  value("redis_lease_requests_total{op=\"take\"}", load(s.takes));
  value("redis_lease_requests_total{op=\"give\"}", load(s.gives));
  line("redis_lease_tokens_total", "counter", "Tokens Redis granted in leases.");
  value("redis_lease_tokens_total", load(s.granted));
  line("redis_script_loads_total", "counter", "SCRIPT LOADs sent (each connection, and each time Redis lost the script).");
  value("redis_script_loads_total", load(s.script_loads));
  line("redis_rtt_seconds", "histogram", "Lease round-trip time, from the request queued to its reply.");
  uint64_t cum = 0;
  for (int b = 0; b < filter::RedisStats::kRttBuckets; ++b) {
    cum += load(s.rtt_le[b]);
    value(std::string("redis_rtt_seconds_bucket{le=\"") + kRttBoundsText[b] + "\"}", cum);
  }
  value("redis_rtt_seconds_bucket{le=\"+Inf\"}", load(s.rtt_count));
  const uint64_t sum = load(s.rtt_sum_ns);
  out.append("ringway_redis_rtt_seconds_sum ").append(std::to_string(sum / 1'000'000'000)).append(".");
  char frac[16];
  std::snprintf(frac, sizeof(frac), "%09llu", static_cast<unsigned long long>(sum % 1'000'000'000));
  out.append(frac).append("\n");
  value("redis_rtt_seconds_count", load(s.rtt_count));
  line("cluster_limit_decisions_total", "counter",
       "Cluster rate-limit decisions made without a leased token: waited for a lease, denied by Redis, "
       "or by the failure policy while Redis was down.");
  value("cluster_limit_decisions_total{decision=\"wait\"}", load(s.waited));
  value("cluster_limit_decisions_total{decision=\"redis_denied\"}", load(s.denied));
  value("cluster_limit_decisions_total{decision=\"policy_deny\"}", load(s.policy_deny));
  value("cluster_limit_decisions_total{decision=\"policy_allow\"}", load(s.policy_allow));
  value("cluster_limit_decisions_total{decision=\"policy_local\"}", load(s.policy_local));
}

}  // namespace ringway::redis
