// Aggregate endpoints (issue 7): one client request fans out to every backend of the endpoint at
// once, from this worker, through the same per-target keep-alive pools as forwarded requests.
// Each leg reads its whole response body into its own buffer; when the last leg ends (or the
// endpoint's deadline, an io_uring timeout, fires: the late legs fail with 504 and their
// connections are closed) the bodies go through agg::Merger with the worker's MergeWorkspace and
// one response is sent.
//
// Filters see an aggregate request with route == nullptr and route_index = routes.size() +
// aggregate index: the filter factories number the endpoints' own auth and rate-limit settings
// (config::Access) that way, after the routes (src/filter/builtin.cc).
// The state is allocated per request (rare path by design); legs' request heads live in their
// UpstreamConn so that a send in flight never outlives its bytes.

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ringway/http/head_writer.h"
#include "server/worker.h"

namespace ringway::server {
namespace {

void append_header(std::string& h, std::string_view name, std::string_view value) {
  h.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

bool Worker::try_aggregate(DownstreamConn& c, const http::Request& req) {
  agg::PathParams params;
  uint32_t index = 0;
  bool found = false;
  for (; index < cfg_.aggregates.size(); ++index) {
    const agg::Endpoint& ep = *cfg_.aggregates[index].endpoint;
    params = agg::PathParams{};
    if (!agg::match_path(ep.path, req.path, params)) continue;
    for (const std::string& m : ep.methods) {
      if (m == req.method_name) found = true;
    }
    if (found) break;
  }
  if (!found) return false;
  Exchange& ex = c.ex;
  const config::Aggregate& a = cfg_.aggregates[index];
  const agg::Endpoint& ep = *a.endpoint;
  if (req.framing != http::BodyFraming::kNone) {
    local_reply(c, 400, "aggregate endpoints take no request body", true);
    return true;
  }
  route::Match m;
  m.route = nullptr;
  m.route_index = static_cast<uint32_t>(cfg_.routes.size()) + index;
  http::HeaderEdits edits;
  filter::RequestContext ctx{req, m, c.ip(), now_ns_, edits};
  if (!filters_.empty()) {
    if (filters_.on_request(ctx) == filter::Verdict::kRespond) {
      local_reply(c, ctx.reply.status, ctx.reply.detail, false,
                  {ctx.reply.headers, ctx.reply.header_count});
      return true;
    }
    ex.keep_response_headers(ctx);
  }

  AggState* st = new AggState();
  st->owner = &c;
  st->index = index;
  st->legs.resize(ep.backends.size());
  ex.agg = st;
  ex.local = true;  // no single upstream: the access log names the endpoint instead
  ex.request_done = true;
  // Each leg's head comes from the same writer as a forwarded request's, so the client's API key
  // (header or query parameter), hop-by-hop fields and X-Forwarded-* are handled once, alike.
  http::UpstreamHeadParams p;
  p.client_addr = c.ip();
  p.edits = &edits;
  p.add_headers = shared_.add_headers;
  p.method = "GET";
  p.pass_only = a.pass_headers;
  p.no_body = true;
  std::string path;
  for (size_t k = 0; k < ep.backends.size(); ++k) {
    AggLeg& leg = st->legs[k];
    leg.agg = st;
    leg.target_index = shared_.agg_target_base[index] + static_cast<uint32_t>(k);
    const config::Target& t = *shared_.targets[leg.target_index];
    path.clear();
    if (!agg::expand_path(ep.backends[k].path, params, path)) {
      local_reply(c, 400, "a path parameter of this aggregate endpoint is not acceptable", false);
      return true;
    }
    p.base_path = t.base_path;
    p.path_remainder = path;
    p.authority = t.authority;
    leg.head.resize(up_head_cap_);
    const size_t n = http::write_upstream_head(leg.head.data(), leg.head.size(), req, p);
    if (n == 0) {
      local_reply(c, 431, "request head too large once forwarded", false);
      return true;
    }
    leg.head.resize(n);
  }
  st->remaining = static_cast<uint32_t>(st->legs.size());
  set_timer(c, TimerKind::kNone);  // the head timer is done; the deadline below covers the wait
  arm_aggregate_deadline(c);
  // A client that goes away mid-aggregate is noticed here, and every leg is closed; pipelined
  // bytes wait in c.in for the next exchange.
  arm_client_recv(c);
  for (AggLeg& leg : st->legs) {
    if (c.ex.agg != st) break;  // ended synchronously
    start_leg(*st, leg);
  }
  return true;
}

void Worker::start_leg(AggState& a, AggLeg& leg) {
  (void)a;
  leg.start_ns = now_ns_;
  UpstreamConn* u = pool_heads_[leg.target_index];
  if (u == nullptr) {
    connect_leg(a, leg);
    return;
  }
  pool_remove(*u);
  core::TimerList::disarm(&u->timer);
  u->leg = &leg;
  leg.up = u;
  leg.reused = true;
  metrics_->upstream_reused();
  u->out = leg.head;
  u->send.hold[0] = Buf{u->out.data(), 0, static_cast<uint32_t>(u->out.size()), -1, false};
  u->send.count = 1;
  if (!u->recv_armed) arm_up_recv(*u);
  up_send(*u);
}

void Worker::connect_leg(AggState& a, AggLeg& leg) {
  (void)a;
  const config::Target& t = *shared_.targets[leg.target_index];
  int fd = socket(t.address.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    end_leg(leg, true, 502, "no upstream connection available (out of sockets)", false);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  UpstreamConn& u = *new_upstream();
  u.fd = fd;
  u.target_index = leg.target_index;
  u.leg = &leg;
  leg.up = &u;
  leg.reused = false;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_connect(s, fd, reinterpret_cast<const sockaddr*>(&t.address.addr), t.address.len);
  io_uring_sqe_set_data64(s, ring::pack(u.index, u.gen, kOpUpConnect));
  ++u.pending;
  metrics_->upstream_opened();
}

void Worker::on_leg_connect(UpstreamConn& u, int res) {
  if (u.closing || u.leg == nullptr) return;
  if (res < 0) {
    u.reusable = false;
    const bool refused = res == -ECONNREFUSED;
    metrics_->count_upstream_error(refused ? obs::UpstreamErrorKind::kConnectRefused
                                           : obs::UpstreamErrorKind::kReset);
    end_leg(*u.leg, true, 502, refused ? "upstream refused the connection" : "upstream connect failed",
            false);
    return;
  }
  u.connected = true;
  u.out = u.leg->head;
  u.send.hold[0] = Buf{u.out.data(), 0, static_cast<uint32_t>(u.out.size()), -1, false};
  u.send.count = 1;
  arm_up_recv(u);
  up_send(u);
}

void Worker::on_leg_send(UpstreamConn& u, int res) {
  SendOp& s = u.send;
  s.busy = false;
  if (u.closing || u.leg == nullptr) {
    s.count = 0;
    return;
  }
  if (res <= 0) {
    s.count = 0;
    leg_failure(u, res < 0 ? res : -EPIPE);
    return;
  }
  const bool more = s.advance(static_cast<uint32_t>(res));
  if (more) {
    up_send(u);
    return;
  }
  s.count = 0;
}

void Worker::on_leg_recv(UpstreamConn& u, int res, uint32_t flags) {
  u.recv_armed = false;
  if (res == -ENOBUFS) {
    u.starved = true;
    starved_upstreams_.push_back(&u);
    return;
  }
  const bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
  const int32_t bid = has_buf ? static_cast<int32_t>(flags >> IORING_CQE_BUFFER_SHIFT) : -1;
  if (u.closing || u.leg == nullptr || res <= 0) {
    if (bid >= 0) buffers_.give_back(static_cast<uint16_t>(bid));
    if (!u.closing && u.leg != nullptr) leg_failure(u, res);
    return;
  }
  char* data = buffers_.data(static_cast<uint16_t>(bid));
  if (!append_input(u.in, data, static_cast<uint32_t>(res), bid, block_size_ / 2)) {
    u.reusable = false;
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kProtocol);
    end_leg(*u.leg, true, 502, "upstream response head too large", false);
    return;
  }
  leg_data(u);
}

void Worker::leg_data(UpstreamConn& u) {
  AggLeg& leg = *u.leg;
  const uint32_t max_body = cfg_.aggregates[leg.agg->index].endpoint->max_leg_body;
  while (!leg.head_done) {
    const size_t end = http::find_head_end(u.in.begin(), u.in.len);
    if (end == 0) {
      if (u.in.len >= cfg_.max_head_bytes) {
        u.reusable = false;
        end_leg(leg, true, 502, "upstream response head too large", false);
        return;
      }
      arm_up_recv(u);
      return;
    }
    http::Response resp;
    if (u.parser->parse_head(u.in.begin(), end, false, resp) != http::ParseStatus::kDone) {
      metrics_->count_upstream_error(obs::UpstreamErrorKind::kProtocol);
      u.reusable = false;
      end_leg(leg, true, 502, "upstream sent an invalid response", false);
      return;
    }
    consume(u.in, static_cast<uint32_t>(end));
    if (resp.status < 200) {
      if (u.in.empty()) {
        arm_up_recv(u);
        return;
      }
      continue;
    }
    leg.head_done = true;
    leg.status = resp.status;
    leg.chunked = resp.framing == http::ResponseFraming::kChunked;
    leg.until_close = resp.framing == http::ResponseFraming::kUntilClose;
    if (!resp.keep_alive || leg.until_close) u.reusable = false;
    if (resp.framing == http::ResponseFraming::kLength && resp.content_length > max_body) {
      u.reusable = false;  // the rest of the body would have to be read first
      end_leg(leg, true, 502, "upstream response body larger than the leg limit", false);
      return;
    }
    if (resp.framing == http::ResponseFraming::kNone) {
      end_leg(leg, false, leg.status, {}, u.in.empty());
      return;
    }
  }
  if (!u.in.empty()) {
    size_t part = 0;  // upstream bytes consumed
    size_t data = 0;  // body bytes at u.in's start: the same, or the chunk data decoded in place
    const http::ParseStatus st =
        leg.chunked ? u.parser->feed_body_decoded(u.in.data + u.in.off, u.in.len, &part, &data)
                    : u.parser->feed_body(u.in.begin(), u.in.len, &part);
    if (st == http::ParseStatus::kError) {
      metrics_->count_upstream_error(obs::UpstreamErrorKind::kProtocol);
      u.reusable = false;
      end_leg(leg, true, 502, "upstream sent an invalid response body", false);
      return;
    }
    if (!leg.chunked) data = part;
    if (leg.body.size() + data > max_body) {
      u.reusable = false;
      end_leg(leg, true, 502, "upstream response body larger than the leg limit", false);
      return;
    }
    leg.body.append(u.in.begin(), data);
    consume(u.in, static_cast<uint32_t>(part));
    if (st == http::ParseStatus::kDone) {
      // Bytes after the framed end: upstream and gateway disagree on framing.
      if (!u.in.empty()) u.reusable = false;
      end_leg(leg, false, leg.status, {}, u.reusable && u.in.empty());
      return;
    }
  }
  arm_up_recv(u);
}

void Worker::leg_failure(UpstreamConn& u, int err) {
  AggLeg& leg = *u.leg;
  u.reusable = false;
  if (leg.head_done) {
    if (err == 0 && leg.until_close && !u.send.busy &&
        u.parser->finish_eof() == http::ParseStatus::kDone) {
      end_leg(leg, false, leg.status, {}, false);  // RFC 9112 6.3 rule 8: EOF ends the body
      return;
    }
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kReset);
    end_leg(leg, true, 502, "upstream closed the connection mid-response", false);
    return;
  }
  // RFC 9110 9.2.2: the leg is a GET without a body, so a reused connection the upstream closed
  // as we reused it may be retried once on a new connection.
  if (leg.reused && !leg.retried && u.in.empty()) {
    leg.retried = true;
    release_conn(&u, false);
    connect_leg(*leg.agg, leg);
    return;
  }
  if (err == -ECONNREFUSED) {
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kConnectRefused);
    end_leg(leg, true, 502, "upstream refused the connection", false);
  } else {
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kReset);
    end_leg(leg, true, 502, err == 0 ? "upstream closed the connection before responding"
                                     : "upstream connection failed before responding", false);
  }
}

void Worker::end_leg(AggLeg& leg, bool failed, uint16_t status, std::string_view detail,
                     bool reuse) {
  if (leg.ended) return;
  leg.ended = true;
  leg.failed = failed;
  leg.status = status;
  leg.detail = detail;
  leg.end_ns = now_ns_;
  if (leg.up != nullptr) release_conn(leg.up, reuse && !failed);
  AggState& a = *leg.agg;
  if (--a.remaining == 0 && !a.timed_out) finish_aggregate(*a.owner);
}

// The deadline is an IORING_OP_TIMEOUT per aggregate request, relative to when it is submitted
// (never earlier than deadline_ns, which is taken from the loop's clock before submission). It is
// removed as soon as the aggregate no longer waits for legs. Its completion can be stale: a
// timeout that fired just as its aggregate finished may be reaped after the next aggregate on the
// same connection started. So it acts only if the current aggregate's own deadline has passed.
void Worker::arm_aggregate_deadline(DownstreamConn& c) {
  AggState& a = *c.ex.agg;
  const uint32_t ms = cfg_.aggregates[a.index].deadline_ms;
  a.deadline_ns = now_ns_ + static_cast<uint64_t>(ms) * 1'000'000ull;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_timeout(s, &agg_deadlines_[a.index], 0, 0);
  io_uring_sqe_set_data64(s, ring::pack(c.index, c.gen, kOpAggDeadline));
  ++c.pending;
  c.agg_deadline_armed = true;
}

void Worker::disarm_aggregate_deadline(DownstreamConn& c) {
  if (!c.agg_deadline_armed) return;
  c.agg_deadline_armed = false;
  // The timeout then completes with -ECANCELED (or had already fired); either completion
  // releases the slot's pending count.
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_timeout_remove(s, ring::pack(c.index, c.gen, kOpAggDeadline), 0);
  io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpCancel));
}

void Worker::on_aggregate_deadline(DownstreamConn& c, int res) {
  if (res != -ETIME || c.closing) return;  // removed, or the connection is going away
  AggState* a = c.ex.agg;
  // 1 ms of slack for the clock read; a stale timeout acts at most that much early.
  if (a == nullptr || a->remaining == 0 || a->timed_out || now_ns_ + 1'000'000 < a->deadline_ns) return;
  c.agg_deadline_armed = false;  // this one fired
  a->timed_out = true;
  metrics_->count_upstream_error(obs::UpstreamErrorKind::kResponseTimeout);
  for (AggLeg& leg : a->legs) {
    if (!leg.ended) end_leg(leg, true, 504, "the aggregate deadline passed before this leg answered", false);
  }
  finish_aggregate(c);
}

void Worker::finish_aggregate(DownstreamConn& c) {
  disarm_aggregate_deadline(c);
  Exchange& ex = c.ex;
  AggState& a = *ex.agg;
  const agg::Endpoint& ep = *cfg_.aggregates[a.index].endpoint;
  agg::Merger merger(ep, *merge_ws_);
  std::vector<agg::LegTiming> timings(a.legs.size());
  for (size_t k = 0; k < a.legs.size(); ++k) {
    AggLeg& leg = a.legs[k];
    if (leg.failed) {
      merger.add_failed_leg(k, leg.status, leg.detail);
    } else {
      // The merger reads SIMDJSON_PADDING bytes past the body (never writes them).
      leg.body.reserve(leg.body.size() + simdjson::SIMDJSON_PADDING);
      merger.add_leg(k, leg.body, leg.status);
    }
    timings[k].name = ep.backends[k].name;
    timings[k].duration_us = (leg.end_ns - leg.start_ns) / 1000;
  }
  std::string body;
  merger.finish(body);
  const agg::MergeOutcome& o = merger.outcome();
  ex.status = o.status;
  ex.close_after = ex.close_after || !ex.client_keep_alive || draining_;
  std::string& out = a.out;
  out.reserve(body.size() + 512);
  out.append("HTTP/1.1 ").append(std::to_string(o.status)).append(" ");
  out.append(http::reason_phrase(o.status)).append("\r\n");
  out.append("Content-Type: application/json\r\nContent-Length: ").append(std::to_string(body.size()));
  out.append("\r\nX-Gateway-Completed: ").append(agg::completed_header_value(o));
  out.append("\r\nServer-Timing: ");
  agg::append_server_timing(timings, out);
  out.append("\r\n");
  for (uint8_t i = 0; i < ex.resp_header_count; ++i) {
    append_header(out, ex.resp_headers[i].name, ex.resp_headers[i].value);
  }
  if (ex.close_after) {
    out.append("Connection: close\r\n");
  } else if (ex.http10) {
    out.append("Connection: keep-alive\r\n");  // RFC 9112 C.2.2
  }
  out.append("\r\n");
  if (ex.method != http::Method::kHead) out.append(body);
  ex.response_done = true;
  ex.resp_final = true;
  ex.response_started = true;
  c.send.hold[0] = Buf{out.data(), 0, static_cast<uint32_t>(out.size()), -1, false};
  c.send.count = 1;
  set_timer(c, TimerKind::kBody);
  client_send(c);
}

void Worker::cancel_aggregate(DownstreamConn& c) {
  AggState* a = c.ex.agg;
  if (a == nullptr) return;
  a->timed_out = true;  // no merge and no response from here on
  for (AggLeg& leg : a->legs) {
    if (leg.up != nullptr) close_upstream(*leg.up);
  }
  disarm_aggregate_deadline(c);
}

void Worker::abort_aggregate(DownstreamConn& c) {
  if (c.ex.agg == nullptr) return;
  cancel_aggregate(c);
  delete c.ex.agg;
  c.ex.agg = nullptr;
}

}  // namespace ringway::server
