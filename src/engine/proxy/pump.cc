// Content-Length bodies moved socket -> pipe -> socket with splice(2), in either direction, by one
// pump indexed by direction (as liburing's examples/proxy.c does): the bytes never enter user
// space. Readiness comes from a single-shot io_uring poll, and the worker then calls a
// non-blocking splice itself: IORING_OP_SPLICE on a socket that is not ready is punted to io-wq
// kernel threads (a context switch per call), which cost more CPU per MiB here
// (see shared/ARCHITECTURE.md). Sockets are O_NONBLOCK for this; io_uring still drives its own
// receives and sends on them by polling. Splicing is a transport capability: a side whose
// transport cannot splice (TLS) takes the copy path in proxy/exchange.cc.
//
// A splice never asks for more than what remains of the Content-Length, so bytes of a pipelined
// next request, or of the next response on a kept-alive upstream connection, stay in the socket.
// While a pump waits for body bytes, the source raises SO_RCVLOWAT (net/conn.cc); a peer slower
// than that per --body-timeout is not a stalled one: the body timer first lowers it to 1 (which
// wakes the poll if any byte is queued, see Worker::on_timer) and only the next expiry counts.

#include <poll.h>

#include <cerrno>

#include "server/worker.h"

namespace ringway::server {
namespace {

constexpr uint64_t kPumpBudget = 4 << 20;  // bytes one pump moves before yielding to the loop

}  // namespace

bool Worker::can_splice(const Exchange& ex, proxy::Dir d, uint64_t remaining) const {
  if (!cfg_.splice || remaining < cfg_.splice_min_bytes) return false;
  if (ex.cache != nullptr && ex.cache->capture) return false;  // the cache copies the body
  const net::Conn& down = *ex.down;
  const net::Conn& up = *ex.up;
  const net::Conn& src = d == proxy::kUpload ? down : up;
  const net::Conn& dst = d == proxy::kUpload ? up : down;
  return src.transport.can_splice_in() && dst.transport.can_splice_out();
}

bool Worker::start_pump(Exchange& ex, proxy::Dir d) {
  if (!pipes_.take(ex.pipe[d])) return false;
  pump(ex, d);
  return true;
}

void Worker::release_pipes(Exchange& ex) {
  pipes_.give(ex.pipe[proxy::kUpload]);
  pipes_.give(ex.pipe[proxy::kDownload]);
}

void Worker::arm_poll(int fd, uint32_t events, uint64_t ud) {
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_poll_add(s, fd, events);
  io_uring_sqe_set_data64(s, ud);
}

void Worker::pump(Exchange& ex, proxy::Dir d) {
  DownstreamConn& c = *ex.down;
  UpstreamConn& u = *ex.up;
  const bool upload = d == proxy::kUpload;
  net::Conn& src = upload ? static_cast<net::Conn&>(c) : u;
  net::Conn& dst = upload ? static_cast<net::Conn&>(u) : c;
  const uint64_t src_ud = upload ? ring::pack(c.index, c.gen, kOpClientPollIn)
                                 : ring::pack(u.index, u.gen, kOpUpPollIn);
  const uint64_t dst_ud = upload ? ring::pack(u.index, u.gen, kOpUpPollOut)
                                 : ring::pack(c.index, c.gen, kOpClientPollOut);
  const obs::BodyDirection metric_dir = upload ? obs::BodyDirection::kUpload : obs::BodyDirection::kDownload;
  auto wait = [&](net::Conn& on, uint32_t events, uint64_t ud) {
    ex.polling[d] = true;
    arm_poll(on.fd, events, ud);
    ++on.pending;
  };
  proxy::Pipe& p = ex.pipe[d];
  uint64_t moved = 0;
  while (moved < kPumpBudget) {
    if (p.bytes > 0) {
      const ssize_t n = dst.splice_from_pipe(p.r, p.bytes);
      if (n > 0) {
        p.bytes -= static_cast<uint32_t>(n);
        moved += static_cast<uint64_t>(n);
        if (!upload) {
          ex.bytes_out += static_cast<uint64_t>(n);
          metrics_->add_bytes_out(static_cast<uint64_t>(n));
        }
        metrics_->add_body_bytes(metric_dir, obs::BodyMode::kSplice, static_cast<uint64_t>(n));
        continue;
      }
      const int err = n < 0 ? errno : EPIPE;
      if (err == EAGAIN) {
        wait(dst, POLLOUT, dst_ud);
        break;
      }
      if (upload) {
        up_closed(u, -err);  // the upstream went away mid-request
      } else {
        close_client(c, true);  // the client went away: the rest of the response would be unread
      }
      return;
    }
    const uint64_t rem = upload ? c.parser->body_remaining() : u.parser->body_remaining();
    if (rem == 0) {
      src.set_rcvlowat(1);  // plain receives from here on: the next request, or a pooled connection
      pipes_.give(p);
      if (upload) {
        ex.request_done = true;
        if (!ex.response_head_done) set_timer(c, TimerKind::kResponse);
      } else {
        ex.resp_final = true;
        send_response_part(ex);
      }
      return;
    }
    const size_t want = rem < proxy::PipeCache::kPipeSize ? static_cast<size_t>(rem) : proxy::PipeCache::kPipeSize;
    const ssize_t n = src.splice_to_pipe(p.w, want);
    if (n > 0) {
      if (upload) {
        c.parser->skip_body(static_cast<uint64_t>(n));
        ex.bytes_in += static_cast<uint64_t>(n);
        metrics_->add_bytes_in(static_cast<uint64_t>(n));
      } else {
        u.parser->skip_body(static_cast<uint64_t>(n));
      }
      p.bytes += static_cast<uint32_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      src.set_rcvlowat(ex.lowat_off ? 1 : rem);
      wait(src, POLLIN, src_ud);
      break;
    }
    if (upload) {
      // The client went away mid-upload: the upstream saw a short body and cannot be reused.
      close_client(c, n < 0);
    } else {
      on_forward_failure(ex, upstream::FailureKind::kClosedMidResponse);
    }
    return;
  }
  if (moved > 0) set_timer(c, TimerKind::kBody);
  // Budget spent with both sides ready: yield to other connections, resume on readiness.
  if (!ex.polling[d]) wait(dst, POLLOUT, dst_ud);
}

}  // namespace ringway::server
