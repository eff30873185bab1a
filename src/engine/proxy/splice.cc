// Content-Length bodies moved socket -> pipe -> socket with splice(2): the bytes never enter user
// space. Readiness comes from a single-shot io_uring poll, and the worker then calls a
// non-blocking splice itself: IORING_OP_SPLICE on a socket that is not ready is punted to io-wq
// kernel threads (a context switch per call), which cost more CPU per MiB here
// (see shared/ARCHITECTURE.md). Sockets are O_NONBLOCK for this; io_uring still drives its own
// receives and sends on them by polling.
//
// A splice never asks for more than what remains of the Content-Length, so bytes of a pipelined
// next request, or of the next response on a kept-alive upstream connection, stay in the socket.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "server/worker.h"

namespace ringway::server {
namespace {

constexpr uint32_t kPipeSize = 1024 * 1024;  // F_SETPIPE_SZ; 1 MiB is the default pipe-max-size
constexpr uint32_t kMaxPipes = 256;          // per worker, in use plus spare
constexpr uint32_t kMaxSparePipes = 32;
constexpr uint64_t kPumpBudget = 4 << 20;    // bytes one pump moves before yielding to the loop
// While a pump waits for body bytes, the source socket reports readable only once this much (or
// the rest of the body) is queued: fewer, larger splices and fewer wake-ups on both sides. The
// kernel grows the receive buffer to fit (tcp_set_rcvlowat). Measured with tools/compare.sh
// --baseline: about 8% less proxy CPU per MiB on the 1 MiB GET. A peer slower than kLowat per
// --body-timeout is not a stalled one: the body timer first lowers it to 1 (which wakes the poll
// if any byte is queued, see Worker::on_timer) and only the next expiry counts as a stall.
constexpr uint32_t kLowat = 256 * 1024;


}  // namespace

// SO_RCVLOWAT for the bytes still expected (capped), or 1 (the default) when the body is done.
void Worker::set_lowat(int fd, uint32_t& current, uint64_t remaining) {
  const uint32_t want = remaining < kLowat ? static_cast<uint32_t>(remaining) : kLowat;
  if (want == current) return;
  const int v = static_cast<int>(want);
  setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v));
  current = want;
}

bool Worker::can_splice(uint64_t remaining) const {
  return cfg_.splice && remaining >= cfg_.splice_min_bytes;
}

bool Worker::take_pipe(Pipe& p) {
  if (!pipes_.empty()) {
    p = pipes_.back();
    pipes_.pop_back();
    return true;
  }
  if (pipes_open_ >= kMaxPipes) return false;  // the copy path still works
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
  fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);  // best effort: capped by /proc/sys/fs/pipe-max-size
  p = Pipe{fds[0], fds[1], 0};
  ++pipes_open_;
  return true;
}

void Worker::give_pipe(Pipe& p) {
  if (!p.valid()) return;
  // A pipe with bytes left belongs to an aborted transfer: never hand those to another exchange.
  if (p.bytes == 0 && pipes_.size() < kMaxSparePipes) {
    pipes_.push_back(p);
  } else {
    close(p.r);
    close(p.w);
    --pipes_open_;
  }
  p = Pipe{};
}

void Worker::release_pipes(Exchange& ex) {
  give_pipe(ex.up_pipe);
  give_pipe(ex.down_pipe);
}

void Worker::arm_poll(int fd, uint32_t events, uint64_t ud) {
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_poll_add(s, fd, events);
  io_uring_sqe_set_data64(s, ud);
}

bool Worker::start_upload_splice(DownstreamConn& c) {
  if (!take_pipe(c.ex.up_pipe)) return false;
  pump_upload(c);
  return true;
}

void Worker::pump_upload(DownstreamConn& c) {
  Exchange& ex = c.ex;
  UpstreamConn& u = *ex.up;
  Pipe& p = ex.up_pipe;
  uint64_t moved = 0;
  while (moved < kPumpBudget) {
    if (p.bytes > 0) {
      const ssize_t n = splice(p.r, nullptr, u.fd, nullptr, p.bytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        p.bytes -= static_cast<uint32_t>(n);
        moved += static_cast<uint64_t>(n);
        metrics_->add_body_bytes(obs::BodyDirection::kUpload, obs::BodyMode::kSplice, static_cast<uint64_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        ex.upload_polling = true;
        arm_poll(u.fd, POLLOUT, ring::pack(u.index, u.gen, kOpUpPollOut));
        ++u.pending;
        break;
      }
      on_upstream_failure(u, n < 0 ? -errno : -EPIPE);
      return;
    }
    const uint64_t rem = c.parser->body_remaining();
    if (rem == 0) {
      set_lowat(c.fd, c.rcvlowat, 1);  // the next request is read with plain receives
      give_pipe(p);
      ex.request_done = true;
      if (!ex.response_head_done) set_timer(c, TimerKind::kResponse);
      return;
    }
    const size_t want = rem < kPipeSize ? static_cast<size_t>(rem) : kPipeSize;
    const ssize_t n = splice(c.fd, nullptr, p.w, nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      c.parser->skip_body(static_cast<uint64_t>(n));
      p.bytes += static_cast<uint32_t>(n);
      ex.bytes_in += static_cast<uint64_t>(n);
      metrics_->add_bytes_in(static_cast<uint64_t>(n));
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      ex.upload_polling = true;
      set_lowat(c.fd, c.rcvlowat, ex.lowat_off ? 1 : rem);
      arm_poll(c.fd, POLLIN, ring::pack(c.index, c.gen, kOpClientPollIn));
      ++c.pending;
      break;
    }
    // The client went away mid-upload: the upstream saw a short body and cannot be reused.
    release_upstream(c, false);
    close_client(c, n < 0);
    return;
  }
  if (moved > 0) set_timer(c, TimerKind::kBody);
  if (!ex.upload_polling) {
    // Budget spent with both sides ready: yield to other connections, resume on readiness.
    ex.upload_polling = true;
    arm_poll(u.fd, POLLOUT, ring::pack(u.index, u.gen, kOpUpPollOut));
    ++u.pending;
  }
}

bool Worker::start_download_splice(DownstreamConn& c) {
  if (!take_pipe(c.ex.down_pipe)) return false;
  pump_download(c);
  return true;
}

void Worker::pump_download(DownstreamConn& c) {
  Exchange& ex = c.ex;
  UpstreamConn& u = *ex.up;
  Pipe& p = ex.down_pipe;
  uint64_t moved = 0;
  while (moved < kPumpBudget) {
    if (p.bytes > 0) {
      const ssize_t n = splice(p.r, nullptr, c.fd, nullptr, p.bytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        p.bytes -= static_cast<uint32_t>(n);
        moved += static_cast<uint64_t>(n);
        ex.bytes_out += static_cast<uint64_t>(n);
        metrics_->add_bytes_out(static_cast<uint64_t>(n));
        metrics_->add_body_bytes(obs::BodyDirection::kDownload, obs::BodyMode::kSplice, static_cast<uint64_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        ex.download_polling = true;
        arm_poll(c.fd, POLLOUT, ring::pack(c.index, c.gen, kOpClientPollOut));
        ++c.pending;
        break;
      }
      // The client went away: the rest of the response would be unread, so no pooling.
      release_upstream(c, false);
      close_client(c, true);
      return;
    }
    const uint64_t rem = u.parser->body_remaining();
    if (rem == 0) {
      set_lowat(u.fd, u.rcvlowat, 1);  // the connection may be pooled: plain receives from here on
      give_pipe(p);
      ex.resp_final = true;
      send_response_part(c);
      return;
    }
    const size_t want = rem < kPipeSize ? static_cast<size_t>(rem) : kPipeSize;
    const ssize_t n = splice(u.fd, nullptr, p.w, nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      u.parser->skip_body(static_cast<uint64_t>(n));
      p.bytes += static_cast<uint32_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      ex.download_polling = true;
      set_lowat(u.fd, u.rcvlowat, ex.lowat_off ? 1 : rem);
      arm_poll(u.fd, POLLIN, ring::pack(u.index, u.gen, kOpUpPollIn));
      ++u.pending;
      break;
    }
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kReset);
    u.reusable = false;
    fail_exchange(c, 502, "upstream closed the connection mid-response");
    return;
  }
  if (moved > 0) set_timer(c, TimerKind::kBody);
  if (!ex.download_polling) {
    ex.download_polling = true;
    arm_poll(c.fd, POLLOUT, ring::pack(c.index, c.gen, kOpClientPollOut));
    ++c.pending;
  }
}

}  // namespace ringway::server
