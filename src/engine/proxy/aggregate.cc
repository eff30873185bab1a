// Aggregate endpoints (issue 7): one client request fans out to every backend of the endpoint at
// once, from this worker, through the same per-target keep-alive pools as forwarded requests.
// Each leg reads its whole response body into its own buffer; when the last leg ends (or the
// endpoint's deadline, an io_uring timeout, fires: the late legs fail with 504 and their
// connections are closed) the bodies go through agg::Merger with the worker's MergeWorkspace and
// one response is sent.
//
// An aggregate endpoint is a route action (route::Match::aggregate). Filters see it with
// route == nullptr and route_index = routes.size() + aggregate index: the filter factories number
// the endpoints' own auth and rate-limit settings (config::Access) that way, after the routes
// (src/filter/builtin.cc).
// The state is allocated per request (rare path by design); legs' request heads live in their
// UpstreamConn so that a send in flight never outlives its bytes.

#include <cerrno>

#include "ringway/http/head_writer.h"
#include "server/worker.h"

namespace ringway::server {

// After the filters (proxy/exchange.cc), which ran as for any routed request.
void Worker::start_aggregate(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  const http::Request& req = ex.rs->req;
  const route::Match& m = ex.rs->match;
  const uint32_t index = m.route_index - static_cast<uint32_t>(cfg_.routes.size());
  const config::Aggregate& a = *m.aggregate;
  const agg::Endpoint& ep = *a.endpoint;
  agg::PathParams params;
  agg::match_path(ep.path, req.path, params);  // matched by the router already

  AggState* st = new AggState();
  st->ex = &ex;
  st->index = index;
  st->legs.resize(ep.backends.size());
  ex.agg = st;
  ex.local = true;  // no single upstream: the access log names the endpoint instead
  ex.request_done = true;
  // Each leg's head comes from the same writer as a forwarded request's, so the client's API key
  // (header or query parameter), hop-by-hop fields and X-Forwarded-* are handled once, alike.
  http::UpstreamHeadParams p;
  p.client_addr = c.ip();
  p.proto = c.transport.tls() ? "https" : "http";
  p.edits = &ex.rs->edits;
  p.add_headers = shared_.add_headers;
  p.method = "GET";
  p.pass_only = a.pass_headers;
  p.no_body = true;
  std::string path;
  for (size_t k = 0; k < ep.backends.size(); ++k) {
    AggLeg& leg = st->legs[k];
    leg.agg = st;
    leg.instance = clusters_.leg(index, static_cast<uint32_t>(k)).first;
    const config::Target& t = clusters_.instance(leg.instance);
    path.clear();
    if (!agg::expand_path(ep.backends[k].path, params, path)) {
      local_reply(c, 400, "a path parameter of this aggregate endpoint is not acceptable", false);
      return;
    }
    p.base_path = t.base_path;
    p.path_remainder = path;
    p.authority = t.authority;
    leg.head.resize(up_head_cap_);
    const size_t n = http::write_upstream_head(leg.head.data(), leg.head.size(), req, p);
    if (n == 0) {
      local_reply(c, 431, "request head too large once forwarded", false);
      return;
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
    if (ex.agg != st || st->timed_out) break;  // ended synchronously
    start_leg(leg);
  }
}

// A leg's connection: pooled, or new (always new for its one retry).
void Worker::start_leg(AggLeg& leg) {
  if (!leg.retried) leg.start_ns = now_ns_;
  if (!leg.retried && !begin_leg_attempt(leg)) {  // issue 14: over the instance's request limit
    end_leg(leg, true, 503, "upstream circuit breaker open: too many requests in flight", false);
    return;
  }
  bool reused = false;
  UpstreamConn* u = open_upstream(leg.instance, !leg.retried, reused);
  if (u == nullptr) {
    on_leg_failure(leg, open_failure_);
    return;
  }
  u->leg = &leg;
  leg.up = u;
  leg.reused = reused;
  if (reused) send_leg(leg);  // else up_connected() sends it
}

void Worker::send_leg(AggLeg& leg) {
  UpstreamConn& u = *leg.up;
  u.out = leg.head;
  u.send.hold[0] = net::Buf{u.out.data(), 0, static_cast<uint32_t>(u.out.size()), -1, false};
  u.send.count = 1;
  if (!u.recv_armed) arm_up_recv(u);
  up_send(u);
}

void Worker::on_leg_data(AggLeg& leg) {
  UpstreamConn& u = *leg.up;
  const uint32_t max_body = cfg_.aggregates[leg.agg->index].endpoint->max_leg_body;
  while (!leg.head_done) {
    const size_t end = http::find_head_end(u.in.begin(), u.in.len);
    if (end == 0) {
      if (u.in.len >= cfg_.max_head_bytes) {
        on_leg_failure(leg, upstream::FailureKind::kHeadTooLarge);
        return;
      }
      arm_up_recv(u);
      return;
    }
    http::Response resp;
    if (u.parser->parse_head(u.in.begin(), end, false, resp) != http::ParseStatus::kDone) {
      on_leg_failure(leg, upstream::FailureKind::kInvalidHead);
      return;
    }
    buffers_.consume(u.in, static_cast<uint32_t>(end));
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
      on_leg_failure(leg, upstream::FailureKind::kBodyTooLarge);  // the rest would have to be read first
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
      on_leg_failure(leg, upstream::FailureKind::kInvalidBody);
      return;
    }
    if (!leg.chunked) data = part;
    if (leg.body.size() + data > max_body) {
      on_leg_failure(leg, upstream::FailureKind::kBodyTooLarge);
      return;
    }
    leg.body.append(u.in.begin(), data);
    buffers_.consume(u.in, static_cast<uint32_t>(part));
    if (st == http::ParseStatus::kDone) {
      // Bytes after the framed end: upstream and gateway disagree on framing.
      if (!u.in.empty()) u.reusable = false;
      end_leg(leg, false, leg.status, {}, u.reusable && u.in.empty());
      return;
    }
  }
  arm_up_recv(u);
}

void Worker::on_leg_closed(AggLeg& leg, int err) {
  UpstreamConn& u = *leg.up;
  if (leg.head_done && err == 0 && leg.until_close && !u.send.busy &&
      u.parser->finish_eof() == http::ParseStatus::kDone) {
    end_leg(leg, false, leg.status, {}, false);  // RFC 9112 6.3 rule 8: EOF ends the body
    return;
  }
  on_leg_failure(leg, upstream::classify_io(err, leg.head_done));
}

void Worker::on_leg_failure(AggLeg& leg, upstream::FailureKind kind) {
  const upstream::Failure& f = upstream::describe(kind);
  UpstreamConn* u = leg.up;
  if (u != nullptr) u->reusable = false;
  // RFC 9110 9.2.2: the leg is a GET without a body, so a reused connection the upstream closed
  // as we reused it may be retried once on a new connection.
  if (f.before_response && u != nullptr && leg.reused && !leg.retried && u->in.empty()) {
    leg.retried = true;
    release_upstream(u, false);
    start_leg(leg);
    return;
  }
  if (f.counted) metrics_->count_upstream_error(f.metric);
  end_leg_attempt(leg, true, f.counted);
  end_leg(leg, true, f.status, f.detail, false);
}

void Worker::end_leg(AggLeg& leg, bool failed, uint16_t status, std::string_view detail,
                     bool reuse) {
  if (leg.ended) return;
  leg.ended = true;
  leg.failed = failed;
  leg.status = status;
  leg.detail = detail;
  leg.end_ns = now_ns_;
  end_leg_attempt(leg, failed, false);
  if (leg.up != nullptr) release_upstream(leg.up, reuse && !failed);
  AggState& a = *leg.agg;
  if (--a.remaining == 0 && !a.timed_out) finish_aggregate(*a.ex);
}

// The deadline is an IORING_OP_TIMEOUT per aggregate request, relative to when it is submitted
// (never earlier than deadline_ns, which is taken from the loop's clock before submission). It is
// removed as soon as the aggregate no longer waits for legs. Its completion can be stale: a
// timeout that fired just as its aggregate finished may be reaped after the next aggregate on the
// same connection started. So it acts only if the current aggregate's own deadline has passed.
void Worker::arm_aggregate_deadline(DownstreamConn& c) {
  AggState& a = *c.ex->agg;
  const uint32_t ms = cfg_.aggregates[a.index].deadline_ms;
  a.deadline_ns = now_ns_ + static_cast<uint64_t>(ms) * 1'000'000ull;
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_timeout(s, &agg_deadlines_[a.index], 0, 0);
  io_uring_sqe_set_data64(s, ring::pack(c.index, c.gen, kOpAggDeadline));
  ++c.pending;
  c.deadline_armed = true;
}

void Worker::disarm_aggregate_deadline(DownstreamConn& c) {
  if (!c.deadline_armed) return;
  c.deadline_armed = false;
  // The timeout then completes with -ECANCELED (or had already fired); either completion
  // releases the slot's pending count.
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_timeout_remove(s, ring::pack(c.index, c.gen, kOpAggDeadline), 0);
  io_uring_sqe_set_data64(s, ring::pack(0, 0, kOpCancel));
}

void Worker::on_aggregate_deadline(DownstreamConn& c, int res) {
  if (res != -ETIME || c.closing || c.ex == nullptr) return;  // removed, or nothing waits for it
  AggState* a = c.ex->agg;
  // 1 ms of slack for the clock read; a stale timeout acts at most that much early.
  if (a == nullptr || a->remaining == 0 || a->timed_out || now_ns_ + 1'000'000 < a->deadline_ns) return;
  c.deadline_armed = false;  // this one fired
  a->timed_out = true;
  metrics_->count_upstream_error(obs::UpstreamErrorKind::kResponseTimeout);
  const upstream::Failure& f = upstream::describe(upstream::FailureKind::kDeadline);
  for (AggLeg& leg : a->legs) {
    if (!leg.ended) end_leg(leg, true, f.status, f.detail, false);
  }
  finish_aggregate(*c.ex);
}

void Worker::finish_aggregate(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  disarm_aggregate_deadline(c);
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
  std::string server_timing;
  agg::append_server_timing(timings, server_timing);
  http::Header fields[2 + filter::RequestContext::kMaxResponseHeaders];
  uint8_t n_fields = 0;
  fields[n_fields++] = http::Header{"X-Gateway-Completed", agg::completed_header_value(o)};
  fields[n_fields++] = http::Header{"Server-Timing", server_timing};
  for (uint8_t i = 0; i < ex.resp_header_count; ++i) fields[n_fields++] = ex.resp_headers[i];
  http::LocalHead head;
  head.status = o.status;
  head.content_type = "application/json";
  head.content_length = body.size();
  head.close = ex.close_after;
  head.keep_alive = ex.http10;
  head.headers = {fields, n_fields};
  std::string& out = a.out;
  out.reserve(body.size() + 512);
  http::append_local_head(out, head);
  if (ex.method != http::Method::kHead) out.append(body);
  ex.response_done = true;
  ex.resp_final = true;
  ex.response_started = true;
  c.send.hold[0] = net::Buf{out.data(), 0, static_cast<uint32_t>(out.size()), -1, false};
  c.send.count = 1;
  set_timer(c, TimerKind::kBody);
  client_send(c);
}

void Worker::cancel_aggregate(Exchange& ex) {
  AggState* a = ex.agg;
  if (a == nullptr) return;
  a->timed_out = true;  // no merge and no response from here on
  for (AggLeg& leg : a->legs) {
    if (!leg.ended) end_leg_attempt(leg, true, false);
    if (leg.up != nullptr) close_upstream(*leg.up);
  }
  disarm_aggregate_deadline(*ex.down);
}

void Worker::abort_aggregate(Exchange& ex) {
  if (ex.agg == nullptr) return;
  cancel_aggregate(ex);
  delete ex.agg;
  ex.agg = nullptr;
}

}  // namespace ringway::server
