// The exchange: one request/response pair on a downstream connection, in phases, top to bottom:
//   head      process_input: gather and parse the head (RequestParser, llhttp strict + checks)
//   route     start_exchange: Router::match -> forward by a route | aggregate | 404
//   filters   run_request_filters: auth, rate limits... may answer locally (problem+json)
//   forward   forward -> send_request_part / on_request_sent: the rebuilt head, then the body
//             (copied from the receive buffers, or spliced: proxy/pump.cc)
//   response  on_response_data: head parsed and rebuilt (plus filter fields), body relayed the
//             same two ways; send_response_part after each send to the client
//   end       finish_exchange: pool or close the upstream side, log, count, next request
// Both bodies move at once (the upstream may answer before the request body is complete). Errors
// the gateway makes are problem+json (local_reply); upstream failures are classified once
// (upstream/failure.h). Aggregates branch off after filters (proxy/aggregate.cc).

#include <charconv>
#include <cstring>
#include <optional>

#include "ringway/core/clock.h"
#include "ringway/http/head_writer.h"
#include "server/worker.h"

namespace ringway::server {
namespace {

constexpr uint32_t kLogArea = 2048;  // tail of the exchange block: copies for the access log
constexpr size_t kCoalesceBytes = 4096;  // response bodies up to this are copied next to the head

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

using upstream::FailureKind;

}  // namespace

// --- head ---

void Worker::process_input(DownstreamConn& c) {
  if (c.in.empty()) {
    const bool after_response = c.state != net::DownState::kHead;
    c.state = net::DownState::kIdle;
    c.release_idle_buffers();
    set_timer(c, TimerKind::kKeepAlive);
    // A keep-alive client usually waits for our response before it sends the next request.
    arm_client_recv(c, after_response);
    return;
  }
  const size_t end = http::find_head_end(c.in.begin(), c.in.len);
  if (end == 0) {
    // Scans only what arrived since the last call: a head dripped a byte at a time costs linear
    // work, and a byte no valid head can have is answered at once (400, 414, 431, 501).
    const http::ParseError e = c.parser->check_incomplete_head(c.in.begin(), c.in.len);
    if (e.status != 0) {
      local_reply(c, e.status, e.detail, true);
      return;
    }
    if (c.state != net::DownState::kHead) {
      // RFC 9112 9.3 allows the head to arrive in pieces, but not forever: the header timer runs
      // from the first byte of the request.
      c.state = net::DownState::kHead;
      set_timer(c, TimerKind::kHeader);
    }
    arm_client_recv(c);
    return;
  }
  c.state = net::DownState::kExchange;
  Exchange& ex = begin_exchange(c);
  ex.bytes_in = end;
  http::Request& req = ex.rs->req;
  if (c.parser->parse_head(c.in.begin(), end, req) != http::ParseStatus::kDone) {
    const http::ParseError& e = c.parser->error();
    local_reply(c, e.status, e.detail, true);
    return;
  }
  // The views in req point into c.in's memory: keep that memory until the request has been
  // forwarded or answered (a paused exchange keeps it until then).
  net::Buf held{};
  c.in.off += static_cast<uint32_t>(end);
  c.in.len -= static_cast<uint32_t>(end);
  if (c.in.len == 0) {
    held = c.in;
    c.in = net::Buf{};
  }
  const uint32_t gen = ex.gen;
  start_exchange(c, req);
  if (c.ex == &ex && ex.gen == gen && ex.paused) {
    ex.held = held;
  } else {
    buffers_.release(held);
  }
}

Exchange& Worker::begin_exchange(DownstreamConn& c) {
  bool fresh = false;
  Exchange* ex = &exchanges_.take(fresh);
  const uint32_t index = ex->index;
  const uint32_t gen = ex->gen;
  std::unique_ptr<proxy::RequestState> rs = std::move(ex->rs);
  *ex = Exchange{};  // the one reset per request
  ex->index = index;
  ex->gen = gen;
  ex->rs = rs ? std::move(rs) : std::make_unique<proxy::RequestState>();
  ex->down = &c;
  ex->start_ns = now_ns_;
  c.ex = ex;
  return *ex;
}

// --- route ---

void Worker::start_exchange(DownstreamConn& c, const http::Request& req) {
  Exchange& ex = *c.ex;
  ex.method = req.method;
  ex.http10 = req.version_minor == 0;
  ex.client_keep_alive = req.keep_alive && !draining_;
  ex.req_framing = req.framing;
  ex.block = buffers_.take_block();
  if (log_enabled_) {
    // Copies for the access log, which is written after the head's buffer has been recycled.
    char* log = ex.block + buffers_.block_size() - kLogArea;
    const size_t m = std::min<size_t>(req.method_name.size(), 32);
    std::memcpy(log, req.method_name.data(), m);
    const size_t t = std::min<size_t>(req.target.size(), kLogArea - 32);
    std::memcpy(log + 32, req.target.data(), t);
    ex.log_method = {log, m};
    ex.log_target = {log + 32, t};
  }
  // Content-Length: 0 is a complete (empty) body: nothing to wait for, nothing to splice, and the
  // connection stays reusable.
  const bool has_body = req.framing == http::BodyFraming::kChunked ||
                        (req.framing == http::BodyFraming::kLength && req.content_length > 0);
  if (c.admin) {
    if (has_body) ex.close_after = true;
    serve_admin(c, req);
    return;
  }
  if (redirect_https_ && !c.transport.tls()) {
    // --redirect-https: a plaintext listener sends every request to the TLS listener, same host
    // (without its port), same target. 308 keeps the method and body (RFC 9110 15.4.9).
    std::string_view host = req.host;
    if (!host.empty() && host.front() == '[') {
      host = host.substr(0, host.find(']') + 1);
    } else {
      host = host.substr(0, host.find(':'));
    }
    if (host.empty()) {
      local_reply(c, 400, "a redirect to HTTPS needs the Host field", has_body);
      return;
    }
    std::string& location = redirect_scratch_;
    location.assign("https://").append(host).append(redirect_port_).append(req.target);
    const http::Header fields[] = {{"Location", location}};
    http::LocalHead head;
    head.status = 308;
    head.headers = fields;
    ex.close_after = ex.close_after || has_body;
    local_head_reply(c, head);
    return;
  }
  if (req.asterisk_form) {
    // RFC 9112 3.2.4: the asterisk form (the parser allows it for OPTIONS only) asks about the
    // server itself, not a resource behind it. Any method is forwarded; these are the ones every
    // route takes.
    static constexpr http::Header kAllow[] = {{"Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"}};
    http::LocalHead head;
    head.status = 200;
    head.headers = kAllow;
    ex.close_after = ex.close_after || has_body;
    local_head_reply(c, head);
    return;
  }
  const route::Match& m = ex.rs->match = shared_.router->match(req);
  if (!m.found()) {
    local_reply(c, 404, "no route matches this request", has_body);
    return;
  }
  if (m.aggregate != nullptr) {
    if (has_body) {
      local_reply(c, 400, "aggregate endpoints take no request body", true);
      return;
    }
  } else {
    ex.route = m.route;
    ex.route_index = m.route_index;
    ex.body_limit = m.route->max_body_size != 0 ? m.route->max_body_size : cfg_.max_body_size;
    if (req.framing == http::BodyFraming::kLength && req.content_length > ex.body_limit) {
      local_reply(c, 413, "request body larger than the limit for this route", true);
      return;
    }
  }
  ex.has_body = has_body;
  ex.rs->edits = http::HeaderEdits{};
  filter::RequestContext& ctx = ex.rs->ctx.emplace(req, m, c.ip(), now_ns_, ex.rs->edits);
  if (c.transport.tls()) ctx.peer_subject = c.transport.session()->peer_subject();  // mTLS
  ctx.resumer = filter::Resumer{this, ex.index, ex.gen};
  run_request_filters(ex);
}

// --- filters ---
// Runs the chain (from where a pause left it), then goes on with the request's action. A filter
// that answers gets its reply sent; one that pauses leaves the exchange waiting for resume().
void Worker::run_request_filters(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  filter::RequestContext& ctx = *ex.rs->ctx;
  if (!filters_.empty()) {
    switch (filters_.on_request(ctx)) {
      case filter::Verdict::kRespond:
        filter_reply(c, ctx.reply, ex.has_body);
        return;
      case filter::Verdict::kPause:
        // The client is not read meanwhile: its input holds the head the filters look at.
        ex.paused = true;
        set_timer(c, TimerKind::kPaused);
        return;
      case filter::Verdict::kContinue:
        break;
    }
    // Response fields a filter asked for are written after the upstream's fields.
    if (!ex.keep_response_headers(ctx)) {
      local_reply(c, 500, "response fields added by filters exceed their store", ex.has_body);
      return;
    }
  }
  if (ex.rs->match.aggregate != nullptr) {
    start_aggregate(ex);
  } else if (!cache_request(ex)) {  // a hit, or waiting for another request's fill
    forward_request(ex);
  }
}

void Worker::resume(uint32_t slot, uint32_t gen, filter::Verdict v, const filter::LocalReply* reply) {
  if (slot >= exchanges_.all().size()) return;
  Exchange& ex = exchanges_[slot];
  if (ex.gen != gen || ex.down == nullptr || !ex.paused || ex.down->closing) return;
  ex.paused = false;
  if (v == filter::Verdict::kRespond && reply != nullptr) {
    filter_reply(*ex.down, *reply, ex.has_body);
  } else if (v == filter::Verdict::kRespond) {
    local_reply(*ex.down, 500, "a filter refused the request without a reply", ex.has_body);
  } else {
    run_request_filters(ex);
  }
}

// A filter's answer; its views may point into the filter context's scratch, which lives as long
// as the exchange.
void Worker::filter_reply(DownstreamConn& c, const filter::LocalReply& r, bool close) {
  local_reply(c, r.status, r.detail, close, {r.headers, r.header_count});
}

// --- forward ---

void Worker::forward_request(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  const http::Request& req = ex.rs->req;
  const route::Match& m = ex.rs->match;
  ex.instance = pick_instance(m.route_index, &req, c.ip());
  const config::Target& target = clusters_.instance(ex.instance);
  http::UpstreamHeadParams p;
  p.base_path = target.base_path;
  p.path_remainder = m.remainder;
  p.authority = target.authority;
  p.preserve_host = cfg_.preserve_host;
  p.client_addr = c.ip();
  p.proto = c.transport.tls() ? "https" : "http";
  p.edits = &ex.rs->edits;
  p.add_headers = shared_.add_headers;
  const size_t n = http::write_upstream_head(ex.block, up_head_cap_, req, p);
  if (n == 0) {
    local_reply(c, 431, "request head too large once forwarded", true);
    return;
  }
  ex.up_head_len = static_cast<uint32_t>(n);
  ex.request_done = !ex.has_body;
  if (req.expect_continue && ex.has_body && c.in.empty()) {
    // RFC 9110 10.1.1: the client waits for this before sending the body. We answer it
    // ourselves (Expect is not forwarded) once routing and filters accepted the request.
    c.send_now(kContinue);
    flush_transport(c);  // TLS seals it; plain sent it already
  }
  traffic_.retry_budget(m.route_index).request_started();
  ex.budget_counted = true;
  if (!begin_attempt(ex)) return;
  forward(ex);
}

void Worker::forward(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  ex.upstream_start_ns = now_ns_;
  bool reused = false;
  UpstreamConn* u = open_upstream(ex.instance, !ex.retried, reused);
  if (u == nullptr) {
    on_forward_failure(ex, open_failure_);
    return;
  }
  u->exchange = &ex;
  ex.up = u;
  ex.reused_upstream = reused;
  if (!reused) {
    set_timer(c, TimerKind::kConnect);  // up_connected() goes on
    return;
  }
  set_timer(c, ex.request_done ? TimerKind::kResponse : TimerKind::kBody);
  send_request_part(ex);
}

void Worker::send_request_part(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  UpstreamConn& u = *ex.up;
  if (u.send.busy && !u.flushing) return;  // behind a transport flush: up_send queues it
  uint8_t count = 0;
  if (!ex.head_sent) {
    u.send.hold[count++] = net::Buf{ex.block, 0, ex.up_head_len, -1, false};
  }
  if (!ex.request_done && !c.in.empty() && ex.in_flight_body == 0) {
    size_t part = 0;
    const http::ParseStatus st = c.parser->feed_body(c.in.begin(), c.in.len, &part);
    if (st == http::ParseStatus::kError) {
      fail_exchange(ex, c.parser->error().status, c.parser->error().detail);
      return;
    }
    ex.req_body_seen += part;
    if (ex.req_framing == http::BodyFraming::kChunked && ex.req_body_seen > ex.body_limit) {
      fail_exchange(ex, 413, "request body larger than the limit for this route");
      return;
    }
    ex.req_body_final = st == http::ParseStatus::kDone;
    ex.in_flight_body = static_cast<uint32_t>(part);
    if (part > 0) u.send.hold[count++] = net::Buf{c.in.data, c.in.off, static_cast<uint32_t>(part), -1, false};
    metrics_->add_body_bytes(obs::BodyDirection::kUpload, obs::BodyMode::kCopy, part);
  }
  u.send.count = count;
  if (count == 0) {
    on_request_sent(ex);
    return;
  }
  ex.up_bytes_sent = true;  // from here a retry needs an idempotent request (issue 14)
  if (!u.recv_armed) arm_up_recv(u, true);  // the response cannot precede the request
  up_send(u);
}

void Worker::on_request_sent(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  ex.head_sent = true;
  if (ex.in_flight_body > 0) {
    buffers_.consume(c.in, ex.in_flight_body);
    ex.in_flight_body = 0;
  }
  if (ex.req_body_final) {
    ex.req_body_final = false;
    ex.request_done = true;
  }
  if (ex.request_done) {
    if (!ex.response_head_done) set_timer(c, TimerKind::kResponse);
    return;  // what is left in c.in is the next pipelined request
  }
  set_timer(c, TimerKind::kBody);
  if (!c.in.empty()) {
    send_request_part(ex);
  } else if (!(ex.req_framing == http::BodyFraming::kLength &&
               can_splice(ex, proxy::kUpload, c.parser->body_remaining()) &&
               start_pump(ex, proxy::kUpload))) {
    arm_client_recv(c);
  }
}

void Worker::on_request_body_data(DownstreamConn& c) {
  Exchange* ex = c.ex;
  if (ex == nullptr || ex->request_done || ex->up == nullptr || ex->local) return;  // kept for the next request
  set_timer(c, TimerKind::kBody);
  if (ex->up->connected) send_request_part(*ex);
}

// --- response ---

void Worker::on_response_data(Exchange& ex) {
  DownstreamConn& c = *ex.down;
  UpstreamConn& u = *ex.up;
  net::SendOp& s = c.send;
  const uint32_t block_room = buffers_.block_size() - kLogArea;
  s.count = 0;
  while (!ex.response_head_done) {
    const size_t end = http::find_head_end(u.in.begin(), u.in.len);
    if (end == 0) {
      if (u.in.len >= cfg_.max_head_bytes) {
        on_forward_failure(ex, FailureKind::kHeadTooLarge);
        return;
      }
      arm_up_recv(u);
      return;
    }
    http::Response resp;
    if (u.parser->parse_head(u.in.begin(), end, ex.method == http::Method::kHead, resp) !=
        http::ParseStatus::kDone) {
      on_forward_failure(ex, FailureKind::kInvalidHead);
      return;
    }
    if (resp.status < 200) {
      // RFC 9110 15.2: interim responses are forwarded (103 Early Hints, 102), except 100: Expect
      // is answered by the gateway itself and not forwarded, and an HTTP/1.0 client gets none.
      // The interim head goes into the block ahead of the final one, so both can leave in one
      // send when they arrived together.
      const uint32_t at = ex.up_head_len + ex.interim_len;
      size_t n = 0;
      if (resp.status != 100 && !ex.http10) {
        n = http::write_downstream_head(ex.block + at, block_room - at, resp,
                                        http::DownstreamHeadParams{});
      }
      buffers_.consume(u.in, static_cast<uint32_t>(end));
      if (n > 0) {
        ex.interim_len += static_cast<uint32_t>(n);
        if (u.in.empty()) {  // send it now; the final head comes with a later receive
          s.hold[s.count++] = net::Buf{ex.block, at, static_cast<uint32_t>(n), -1, false};
          ex.interim_len = 0;
          client_send(c);
          return;
        }
        continue;
      }
      if (u.in.empty()) {
        arm_up_recv(u);
        return;
      }
      continue;
    }
    if (report_response(ex, resp.status)) return;  // a 5xx retried on another instance
    ex.status = resp.status;
    ex.resp_framing = resp.framing;
    ex.response_head_done = true;
    ex.upstream_head_ns = now_ns_;
    // RFC 9112 6.1: an HTTP/1.0 client cannot read chunked framing, so it gets the body decoded,
    // delimited by the end of the connection.
    ex.close_after = ex.close_after || !ex.client_keep_alive || draining_ || !ex.request_done ||
                     resp.framing == http::ResponseFraming::kUntilClose || ex.dechunk();
    if (!resp.keep_alive) u.reusable = false;
    if (ex.cache != nullptr && cache_on_response(ex, resp, end)) return;  // answered from the cache
    // --- response filters ---
    // Fields the request filters asked for, then those the response filters add.
    http::Header extra[filter::RequestContext::kMaxResponseHeaders + filter::ResponseContext::kMaxHeaders + 3];  // + attempts, Cache-Status, HSTS
    uint8_t n_extra = 0;
    char attempts[4];  // issue 14: how many tries it took, on retried requests
    const size_t attempts_len = static_cast<size_t>(std::to_chars(attempts, attempts + 4, ex.attempts).ptr - attempts);
    if (ex.attempts > 1) extra[n_extra++] = http::Header{"X-Gateway-Attempts", {attempts, attempts_len}};
    if (ex.cache != nullptr) extra[n_extra++] = cache_status_field(ex);
    for (uint8_t i = 0; i < ex.resp_header_count; ++i) extra[n_extra++] = ex.resp_headers[i];
    if (c.transport.tls() && !hsts_.empty()) {
      extra[n_extra++] = http::Header{"Strict-Transport-Security", hsts_};  // RFC 6797 7.1
    }
    std::optional<filter::ResponseContext> rctx;  // its scratch must outlive the head writer
    if (filters_.has_response_filters()) {
      rctx.emplace(resp, ex.route_index);
      filters_.on_response(*rctx);
      for (uint8_t i = 0; i < rctx->header_count; ++i) extra[n_extra++] = rctx->headers[i];
    }
    http::DownstreamHeadParams p;
    p.close = ex.close_after;
    p.keep_alive = ex.http10;  // an HTTP/1.0 client keeps the connection only if told so
    p.add_headers = {extra, n_extra};
    p.dechunk = ex.dechunk();
    const uint32_t start = ex.up_head_len;                 // interim heads, if any, then this one
    const uint32_t at = ex.up_head_len + ex.interim_len;
    const size_t n = http::write_downstream_head(ex.block + at, block_room - at, resp, p);
    if (n == 0) {
      on_forward_failure(ex, FailureKind::kHeadTooLarge);
      return;
    }
    buffers_.consume(u.in, static_cast<uint32_t>(end));
    s.hold[s.count++] = net::Buf{ex.block, start, static_cast<uint32_t>(ex.interim_len + n), -1, false};
    ex.interim_len = 0;
    if (resp.framing == http::ResponseFraming::kNone) ex.resp_final = true;
    set_timer(c, TimerKind::kBody);
  }
  if (!ex.resp_final && !u.in.empty()) {
    size_t part = 0;  // upstream bytes consumed
    size_t out = 0;   // bytes to send from u.in.begin(): the same, or the decoded chunk data
    const http::ParseStatus st =
        ex.dechunk() ? u.parser->feed_body_decoded(u.in.data + u.in.off, u.in.len, &part, &out)
                     : u.parser->feed_body(u.in.begin(), u.in.len, &part);
    if (st == http::ParseStatus::kError) {
      on_forward_failure(ex, FailureKind::kInvalidBody);
      return;
    }
    if (!ex.dechunk()) out = part;
    if (ex.cache != nullptr) cache_capture(ex, u.in.begin(), part);
    if (ex.cache != nullptr && ex.cache->sink) out = 0;  // a background refresh relays nothing
    ex.resp_final = st == http::ParseStatus::kDone;
    ex.in_flight_resp = static_cast<uint32_t>(part);
    net::Buf* head = s.count == 1 ? &s.hold[0] : nullptr;
    if (out > 0 && head != nullptr && out <= kCoalesceBytes && head->off + head->len + out <= block_room) {
      // A small body goes out in the same buffer as its head: one plain send, no iovec.
      std::memcpy(head->data + head->off + head->len, u.in.begin(), out);
      head->len += static_cast<uint32_t>(out);
    } else if (out > 0) {
      s.hold[s.count++] = net::Buf{u.in.data, u.in.off, static_cast<uint32_t>(out), -1, false};
    }
    metrics_->add_body_bytes(obs::BodyDirection::kDownload, obs::BodyMode::kCopy, out);
  }
  if (s.count == 0) {
    send_response_part(ex);
    return;
  }
  ex.response_started = true;
  client_send(c);
}

// After a send to the client completed (or there was nothing to send): go on with the response.
void Worker::send_response_part(Exchange& ex) {
  if (ex.up == nullptr) return;
  DownstreamConn& c = *ex.down;
  UpstreamConn& u = *ex.up;
  if (ex.in_flight_resp > 0) {
    buffers_.consume(u.in, ex.in_flight_resp);
    ex.in_flight_resp = 0;
  }
  if (ex.resp_final) {
    ex.response_done = true;
    // Bytes after the framed end of a response mean upstream and gateway disagree on framing.
    if (!u.in.empty()) u.reusable = false;
    finish_exchange(c);
    return;
  }
  // After an interim (1xx) head the final one is still due: the response timeout starts over.
  set_timer(c, ex.response_head_done ? TimerKind::kBody : TimerKind::kResponse);
  if (!u.in.empty()) {
    on_response_data(ex);
  } else if (!(ex.resp_framing == http::ResponseFraming::kLength &&
               can_splice(ex, proxy::kDownload, u.parser->body_remaining()) &&
               start_pump(ex, proxy::kDownload))) {
    arm_up_recv(u);
  }
}

// --- upstream failures ---

void Worker::on_forward_closed(Exchange& ex, int err) {
  UpstreamConn& u = *ex.up;
  ex.in_flight_body = 0;  // a send that failed took none of them
  ex.req_body_final = false;
  if (ex.response_head_done && err == 0 && !u.send.busy && ex.in_flight_resp == 0 &&
      !ex.pipe[proxy::kDownload].valid() && u.parser->finish_eof() == http::ParseStatus::kDone) {
    // A close-delimited body ends here (RFC 9112 6.3 rule 8).
    u.reusable = false;
    ex.resp_final = true;
    send_response_part(ex);
    return;
  }
  on_forward_failure(ex, upstream::classify_io(err, ex.response_head_done));
}

void Worker::on_forward_failure(Exchange& ex, FailureKind kind) {
  const upstream::Failure& f = upstream::describe(kind);
  UpstreamConn* u = ex.up;
  if (u != nullptr) u->reusable = false;
  // RFC 9110 9.2.2: an idempotent request without a body that died on a reused connection before
  // any response byte goes once more, on a new connection: the upstream probably closed the idle
  // connection as we reused it.
  if (f.before_response && u != nullptr && ex.reused_upstream && !ex.retried &&
      http::is_idempotent(ex.method) && ex.req_framing == http::BodyFraming::kNone && u->in.empty()) {
    ex.retried = true;
    ex.head_sent = false;
    release_upstream(u, false);
    forward(ex);
    return;
  }
  if (retry_exchange(ex, upstream::retry_cause(kind), false, f.counted)) return;  // issue 14
  end_attempt(ex, f.counted);
  if (f.counted) metrics_->count_upstream_error(f.metric);
  if (ex.cache != nullptr && cache_on_failure(ex)) return;  // stale-if-error (RFC 5861 4)
  fail_exchange(ex, f.status, f.detail);
}

void Worker::fail_exchange(Exchange& ex, uint16_t status, std::string_view detail) {
  DownstreamConn& c = *ex.down;
  if (ex.up != nullptr) release_upstream(ex.up, false);
  if (ex.response_started || c.send.busy) {
    // Part of the response is on its way: the only honest signal left is an abort.
    if (ex.status == 0) ex.status = status;
    log_exchange(c);
    metrics_->count_request(metrics_route(ex), ex.status);
    close_client(c, true);
    return;
  }
  local_reply(c, status, detail, !ex.request_done);
}

// --- local answers ---

void Worker::local_reply(DownstreamConn& c, uint16_t status, std::string_view detail, bool close,
                         std::span<const http::Header> extra) {
  Exchange& ex = begin_local(c, status, close);
  const uint32_t at = ex.up_head_len;
  const size_t n = http::write_problem(ex.block + at, buffers_.block_size() - kLogArea - at, status,
                                       detail, ex.close_after, extra);
  send_local(c, n);
}

void Worker::local_head_reply(DownstreamConn& c, http::LocalHead head) {
  Exchange& ex = begin_local(c, head.status, false);
  head.close = ex.close_after;
  head.keep_alive = ex.http10 && !ex.close_after;
  const uint32_t at = ex.up_head_len;
  send_local(c, http::write_local_head(ex.block + at, buffers_.block_size() - kLogArea - at, head));
}

// The exchange a gateway-made answer belongs to, with nothing upstream left and a block to write
// the answer into at up_head_len.
Exchange& Worker::begin_local(DownstreamConn& c, uint16_t status, bool close) {
  if (c.ex == nullptr) {  // an answer about a head that never became a request (timeout, 431...)
    c.state = net::DownState::kExchange;
    begin_exchange(c);
  }
  Exchange& ex = *c.ex;
  if (ex.up != nullptr) release_upstream(ex.up, false);
  cancel_aggregate(ex);
  if (ex.block == nullptr) ex.block = buffers_.take_block();
  ex.local = true;
  ex.status = status;
  ex.close_after = ex.close_after || close || !ex.client_keep_alive || draining_;
  ex.request_done = ex.request_done || !close;
  return ex;
}

void Worker::send_local(DownstreamConn& c, size_t n) {
  Exchange& ex = *c.ex;
  const uint32_t at = ex.up_head_len;
  ex.response_done = true;
  ex.resp_final = true;
  c.send.hold[0] = net::Buf{ex.block, at, static_cast<uint32_t>(n), -1, false};
  c.send.count = 1;
  ex.response_started = true;
  set_timer(c, TimerKind::kBody);
  client_send(c);
}

// --- end ---

void Worker::finish_exchange(DownstreamConn& c) {
  Exchange& ex = *c.ex;
  if (ex.cache != nullptr && cache_finish(ex)) return;  // goes on as a background refresh
  if (ex.up != nullptr) {
    UpstreamConn& u = *ex.up;
    release_upstream(&u, u.reusable && ex.request_done && ex.response_done && u.in.empty());
  }
  if (!c.admin) {  // the admin listener's own traffic is not gateway traffic
    log_exchange(c);
    metrics_->count_request(metrics_route(ex), ex.status);
  }
  const bool close = ex.close_after;
  end_exchange(c);
  if (close) {
    linger_close(c);
    return;
  }
  c.state = net::DownState::kIdle;
  process_input(c);
}

// Frees what the exchange holds and the exchange itself; its slot's generation moves on.
void Worker::end_exchange(DownstreamConn& c) {
  Exchange& ex = *c.ex;
  end_retries(ex);
  if (ex.up != nullptr) release_upstream(ex.up, false);
  release_pipes(ex);
  buffers_.release(ex.held);
  c.set_rcvlowat(1);  // an upload pump that ended early may have left it raised
  if (ex.block != nullptr) buffers_.give_block(ex.block);
  delete ex.admin_body;
  ex.admin_body = nullptr;
  abort_aggregate(ex);
  if (ex.cache != nullptr) cache_end(ex);
  ex.down = nullptr;
  ex.gen = (ex.gen + 1) & 0xffffff;
  exchanges_.give(ex);
  c.ex = nullptr;
}

// The /metrics series of an exchange: its route, or an aggregate endpoint (numbered after the
// routes, see route::Match), or -1 (unrouted).
int32_t Worker::metrics_route(const Exchange& ex) const {
  if (ex.route != nullptr) return static_cast<int32_t>(ex.route_index);
  if (ex.agg != nullptr) return static_cast<int32_t>(cfg_.routes.size() + ex.agg->index);
  return -1;
}

void Worker::log_exchange(DownstreamConn& c) {
  if (!log_enabled_) return;
  const Exchange& ex = *c.ex;
  obs::AccessRecord r;
  r.time_unix_ms = static_cast<int64_t>(core::realtime_ns() / 1'000'000ull);
  r.client = c.ip();
  r.method = ex.log_method;
  r.target = ex.log_target;
  r.status = ex.status;
  r.bytes_in = ex.bytes_in;
  r.bytes_out = ex.bytes_out;
  r.duration_us = (now_ns_ - ex.start_ns) / 1000;
  if (!ex.local && ex.route != nullptr) {
    r.upstream = clusters_.instance(ex.instance).authority;
    if (ex.upstream_head_ns != 0) r.upstream_us = static_cast<int64_t>((ex.upstream_head_ns - ex.upstream_start_ns) / 1000);
  }
  if (ex.route != nullptr) r.route = ex.route->prefix;
  if (ex.agg != nullptr) r.route = cfg_.aggregates[ex.agg->index].endpoint->path;
  if (c.transport.tls()) describe_tls(c, r);
  if (!access_log_.append(r)) metrics_->count_access_log_dropped();
  if (access_log_.should_flush()) flush_access_log(false);
}

}  // namespace ringway::server
