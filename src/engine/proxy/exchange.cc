// The exchange: one request/response pair on a downstream connection. Parse the head, route,
// run the filters, rebuild the head for the upstream, then relay both bodies at once (the
// upstream may answer before the request body is complete). Bodies are relayed from the receive
// buffers they arrived in: no copy in user space. Errors the gateway makes are problem+json.

#include <sys/socket.h>

#include <cstring>

#include "ringway/core/clock.h"
#include "ringway/http/head_writer.h"
#include "server/worker.h"

namespace ringway::server {
namespace {

constexpr uint32_t kLogArea = 2048;  // tail of the exchange block: copies for the access log
constexpr size_t kCoalesceBytes = 4096;  // response bodies up to this are copied next to the head

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

void Worker::process_input(DownstreamConn& c) {
  if (c.in.empty()) {
    const bool after_response = c.state != DownState::kHead;
    c.state = DownState::kIdle;
    set_timer(c, TimerKind::kKeepAlive);
    // A keep-alive client usually waits for our response before it sends the next request.
    arm_client_recv(c, after_response);
    return;
  }
  const size_t end = http::find_head_end(c.in.begin(), c.in.len);
  if (end == 0) {
    const http::ParseError e = http::check_incomplete_head(c.in.begin(), c.in.len, limits_);
    if (e.status != 0) {
      local_reply(c, e.status, e.detail, true);
      return;
    }
    if (c.state != DownState::kHead) {
      // RFC 9112 9.3 allows the head to arrive in pieces, but not forever: the header timer runs
      // from the first byte of the request.
      c.state = DownState::kHead;
      set_timer(c, TimerKind::kHeader);
    }
    arm_client_recv(c);
    return;
  }
  c.state = DownState::kExchange;
  c.ex = Exchange{};
  c.ex.start_ns = now_ns_;
  c.ex.bytes_in = end;
  http::Request req;
  if (c.parser->parse_head(c.in.begin(), end, req) != http::ParseStatus::kDone) {
    const http::ParseError& e = c.parser->error();
    local_reply(c, e.status, e.detail, true);
    return;
  }
  // The views in req point into c.in's memory: keep that memory until start_exchange is done.
  Buf held{};
  c.in.off += static_cast<uint32_t>(end);
  c.in.len -= static_cast<uint32_t>(end);
  if (c.in.len == 0) {
    held = c.in;
    c.in = Buf{};
  }
  start_exchange(c, req);
  release(held);
}

void Worker::start_exchange(DownstreamConn& c, const http::Request& req) {
  Exchange& ex = c.ex;
  ex.method = req.method;
  ex.http10 = req.version_minor == 0;
  ex.client_keep_alive = req.keep_alive && !draining_;
  ex.req_framing = req.framing;
  ex.block = take_block();
  {
    // Copies for the access log, which is written after the head's buffer has been recycled.
    char* log = ex.block + block_size_ - kLogArea;
    const size_t m = std::min<size_t>(req.method_name.size(), 32);
    std::memcpy(log, req.method_name.data(), m);
    const size_t t = std::min<size_t>(req.target.size(), kLogArea - 32);
    std::memcpy(log + 32, req.target.data(), t);
    ex.log_method = {log, m};
    ex.log_target = {log + 32, t};
  }
  const bool has_body = req.framing != http::BodyFraming::kNone;
  if (c.admin) {
    if (has_body) ex.close_after = true;
    serve_admin(c, req);
    return;
  }
  // Aggregate endpoints are tried before prefix routes.
  if (!cfg_.aggregates.empty() && try_aggregate(c, req)) return;
  const route::Match m = shared_.router->match(req);
  if (m.route == nullptr) {
    local_reply(c, 404, "no route matches this request", has_body);
    return;
  }
  ex.routed = true;
  ex.route = m.route;
  ex.route_index = m.route_index;
  ex.body_limit = m.route->max_body_size != 0 ? m.route->max_body_size : cfg_.max_body_size;
  if (req.framing == http::BodyFraming::kLength && req.content_length > ex.body_limit) {
    local_reply(c, 413, "request body larger than the limit for this route", true);
    return;
  }

  // ctx (and its scratch, where filters keep the values they add) must outlive the head writer.
  http::HeaderEdits edits;
  filter::RequestContext ctx{req, m, c.ip(), now_ns_, edits};
  if (!filters_.empty()) {
    if (filters_.on_request(ctx) == filter::Verdict::kRespond) {
      // The reply's views may point into ctx.scratch: write it before ctx goes away.
      local_reply(c, ctx.reply.status, ctx.reply.detail, has_body,
                  {ctx.reply.headers, ctx.reply.header_count});
      return;
    }
    // Response fields a filter asked for are written after the upstream's fields.
    ex.keep_response_headers(ctx);
  }

  const uint32_t n_targets = static_cast<uint32_t>(m.route->targets.size());
  const uint32_t pick = n_targets == 1 ? 0 : rr_[m.route_index]++ % n_targets;
  ex.target_index = shared_.route_target_base[m.route_index] + pick;
  const config::Target& target = *shared_.targets[ex.target_index];

  http::UpstreamHeadParams p;
  p.base_path = target.base_path;
  p.path_remainder = m.remainder;
  p.authority = target.authority;
  p.preserve_host = cfg_.preserve_host;
  p.client_addr = c.ip();
  p.edits = &edits;
  p.add_headers = shared_.add_headers;
  const size_t n = http::write_upstream_head(ex.block, up_head_cap_, req, p);
  if (n == 0) {
    local_reply(c, 431, "request head too large once forwarded", true);
    return;
  }
  ex.up_head_len = static_cast<uint32_t>(n);
  ex.request_done = !has_body;
  if (req.expect_continue && has_body && c.in.empty()) {
    // RFC 9110 10.1.1: the client waits for this before sending the body. We answer it
    // ourselves (Expect is not forwarded) once routing and filters accepted the request.
    (void)!send(c.fd, kContinue.data(), kContinue.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  forward(c);
}

void Worker::forward(DownstreamConn& c) {
  c.ex.upstream_start_ns = now_ns_;
  if (acquire_upstream(c)) {
    set_timer(c, c.ex.request_done ? TimerKind::kResponse : TimerKind::kBody);
    send_request_part(c);
  } else {
    connect_upstream(c);
  }
}

void Worker::send_request_part(DownstreamConn& c) {
  Exchange& ex = c.ex;
  UpstreamConn& u = *ex.up;
  if (u.send.busy) return;
  uint8_t count = 0;
  if (!ex.head_sent) {
    u.send.hold[count++] = Buf{ex.block, 0, ex.up_head_len, -1, false};
  }
  if (!ex.request_done && !c.in.empty() && ex.in_flight_body == 0) {
    size_t part = 0;
    const http::ParseStatus st = c.parser->feed_body(c.in.begin(), c.in.len, &part);
    if (st == http::ParseStatus::kError) {
      fail_exchange(c, c.parser->error().status, c.parser->error().detail);
      return;
    }
    ex.req_body_seen += part;
    if (ex.req_framing == http::BodyFraming::kChunked && ex.req_body_seen > ex.body_limit) {
      fail_exchange(c, 413, "request body larger than the limit for this route");
      return;
    }
    ex.req_body_final = st == http::ParseStatus::kDone;
    ex.in_flight_body = static_cast<uint32_t>(part);
    if (part > 0) u.send.hold[count++] = Buf{c.in.data, c.in.off, static_cast<uint32_t>(part), -1, false};
    metrics_->add_body_bytes(obs::BodyDirection::kUpload, obs::BodyMode::kCopy, part);
  }
  u.send.count = count;
  if (count == 0) {
    on_request_sent(c);
    return;
  }
  if (!u.recv_armed) arm_up_recv(u, true);  // the response cannot precede the request
  up_send(u);
}

void Worker::on_request_sent(DownstreamConn& c) {
  Exchange& ex = c.ex;
  ex.head_sent = true;
  if (ex.in_flight_body > 0) {
    consume(c.in, ex.in_flight_body);
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
    send_request_part(c);
  } else if (!(ex.req_framing == http::BodyFraming::kLength &&
               can_splice(c.parser->body_remaining()) && start_upload_splice(c))) {
    arm_client_recv(c);
  }
}

void Worker::on_request_body_data(DownstreamConn& c) {
  Exchange& ex = c.ex;
  if (ex.request_done || ex.up == nullptr || ex.local) return;  // kept for the next request
  set_timer(c, TimerKind::kBody);
  if (ex.up->connected) send_request_part(c);
}

void Worker::on_upstream_data(UpstreamConn& u) {
  DownstreamConn& c = *u.owner;
  Exchange& ex = c.ex;
  SendOp& s = c.send;
  s.count = 0;
  while (!ex.response_head_done) {
    const size_t end = http::find_head_end(u.in.begin(), u.in.len);
    if (end == 0) {
      if (u.in.len >= cfg_.max_head_bytes) {
        metrics_->count_upstream_error(obs::UpstreamErrorKind::kProtocol);
        u.reusable = false;
        fail_exchange(c, 502, "upstream response head too large");
        return;
      }
      arm_up_recv(u);
      return;
    }
    http::Response resp;
    if (u.parser->parse_head(u.in.begin(), end, ex.method == http::Method::kHead, resp) !=
        http::ParseStatus::kDone) {
      metrics_->count_upstream_error(obs::UpstreamErrorKind::kProtocol);
      u.reusable = false;
      fail_exchange(c, 502, "upstream sent an invalid response");
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
        n = http::write_downstream_head(ex.block + at, block_size_ - kLogArea - at, resp,
                                        http::DownstreamHeadParams{});
      }
      consume(u.in, static_cast<uint32_t>(end));
      if (n > 0) {
        ex.interim_len += static_cast<uint32_t>(n);
        if (u.in.empty()) {  // send it now; the final head comes with a later receive
          s.hold[s.count++] = Buf{ex.block, at, static_cast<uint32_t>(n), -1, false};
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
    ex.status = resp.status;
    ex.resp_framing = resp.framing;
    ex.response_head_done = true;
    ex.upstream_head_ns = now_ns_;
    // RFC 9112 6.1: an HTTP/1.0 client cannot read chunked framing, so it gets the body decoded,
    // delimited by the end of the connection.
    ex.close_after = ex.close_after || !ex.client_keep_alive || draining_ || !ex.request_done ||
                     resp.framing == http::ResponseFraming::kUntilClose || ex.dechunk();
    if (!resp.keep_alive) u.reusable = false;
    http::Header extra[filter::RequestContext::kMaxResponseHeaders + 1];
    uint8_t n_extra = 0;
    for (uint8_t i = 0; i < ex.resp_header_count; ++i) extra[n_extra++] = ex.resp_headers[i];
    // An HTTP/1.0 client keeps the connection only if told so (RFC 9112 C.2.2).
    if (ex.http10 && !ex.close_after) extra[n_extra++] = http::Header{"Connection", "keep-alive"};
    http::DownstreamHeadParams p;
    p.close = ex.close_after;
    p.add_headers = {extra, n_extra};
    p.dechunk = ex.dechunk();
    const uint32_t start = ex.up_head_len;                 // interim heads, if any, then this one
    const uint32_t at = ex.up_head_len + ex.interim_len;
    const size_t n = http::write_downstream_head(ex.block + at, block_size_ - kLogArea - at, resp, p);
    if (n == 0) {
      u.reusable = false;
      fail_exchange(c, 502, "upstream response head too large");
      return;
    }
    consume(u.in, static_cast<uint32_t>(end));
    s.hold[s.count++] = Buf{ex.block, start, static_cast<uint32_t>(ex.interim_len + n), -1, false};
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
      metrics_->count_upstream_error(obs::UpstreamErrorKind::kProtocol);
      u.reusable = false;
      fail_exchange(c, 502, "upstream sent an invalid response body");
      return;
    }
    if (!ex.dechunk()) out = part;
    ex.resp_final = st == http::ParseStatus::kDone;
    ex.in_flight_resp = static_cast<uint32_t>(part);
    Buf* head = s.count == 1 ? &s.hold[0] : nullptr;
    if (out > 0 && head != nullptr && out <= kCoalesceBytes &&
        head->off + head->len + out <= block_size_ - kLogArea) {
      // A small body goes out in the same buffer as its head: one plain send, no iovec.
      std::memcpy(head->data + head->off + head->len, u.in.begin(), out);
      head->len += static_cast<uint32_t>(out);
    } else if (out > 0) {
      s.hold[s.count++] = Buf{u.in.data, u.in.off, static_cast<uint32_t>(out), -1, false};
    }
    metrics_->add_body_bytes(obs::BodyDirection::kDownload, obs::BodyMode::kCopy, out);
  }
  if (s.count == 0) {
    send_response_part(c);
    return;
  }
  ex.response_started = true;
  client_send(c);
}

// After a send to the client completed (or there was nothing to send): go on with the response.
void Worker::send_response_part(DownstreamConn& c) {
  Exchange& ex = c.ex;
  if (ex.up == nullptr) return;
  UpstreamConn& u = *ex.up;
  if (ex.in_flight_resp > 0) {
    consume(u.in, ex.in_flight_resp);
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
    on_upstream_data(u);
  } else if (!(ex.resp_framing == http::ResponseFraming::kLength &&
               can_splice(u.parser->body_remaining()) && start_download_splice(c))) {
    arm_up_recv(u);
  }
}

void Worker::on_upstream_failure(UpstreamConn& u, int err) {
  DownstreamConn& c = *u.owner;
  Exchange& ex = c.ex;
  u.reusable = false;
  if (ex.response_head_done) {
    if (err == 0 && !u.send.busy && ex.in_flight_resp == 0 && !ex.down_pipe.valid() &&
        u.parser->finish_eof() == http::ParseStatus::kDone) {
      // A close-delimited body ends here (RFC 9112 6.3 rule 8).
      ex.resp_final = true;
      send_response_part(c);
      return;
    }
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kReset);
    fail_exchange(c, 502, "upstream closed the connection mid-response");
    return;
  }
  // RFC 9110 9.2.2: an idempotent request that died on a reused connection before any response
  // byte may be retried; the upstream probably closed an idle connection as we reused it.
  if (ex.reused_upstream && !ex.retried && http::is_idempotent(ex.method) &&
      ex.req_framing == http::BodyFraming::kNone && u.in.empty()) {
    ex.retried = true;
    ex.head_sent = false;
    release_upstream(c, false);
    connect_upstream(c);
    return;
  }
  if (err == -ECONNREFUSED) {
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kConnectRefused);
    fail_exchange(c, 502, "upstream refused the connection");
  } else {
    metrics_->count_upstream_error(obs::UpstreamErrorKind::kReset);
    fail_exchange(c, 502, err == 0 ? "upstream closed the connection before responding"
                                   : "upstream connection failed before responding");
  }
}

void Worker::fail_exchange(DownstreamConn& c, uint16_t status, std::string_view detail) {
  Exchange& ex = c.ex;
  if (ex.up != nullptr) release_upstream(c, false);
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

void Worker::local_reply(DownstreamConn& c, uint16_t status, std::string_view detail, bool close,
                         std::span<const http::Header> extra) {
  Exchange& ex = c.ex;
  if (c.state != DownState::kExchange) {
    c.state = DownState::kExchange;
    ex = Exchange{};
    ex.start_ns = now_ns_;
  }
  if (ex.up != nullptr) release_upstream(c, false);
  cancel_aggregate(c);
  if (ex.block == nullptr) ex.block = take_block();
  ex.local = true;
  ex.status = status;
  ex.close_after = ex.close_after || close || !ex.client_keep_alive || draining_;
  const uint32_t at = ex.up_head_len;
  const size_t n = http::write_problem(ex.block + at, block_size_ - kLogArea - at, status, detail,
                                       ex.close_after, extra);
  ex.response_done = true;
  ex.resp_final = true;
  ex.request_done = ex.request_done || !close;
  c.send.hold[0] = Buf{ex.block, at, static_cast<uint32_t>(n), -1, false};
  c.send.count = 1;
  ex.response_started = true;
  set_timer(c, TimerKind::kBody);
  client_send(c);
}

// The /metrics series of an exchange: its route, or an aggregate endpoint (labelled after the
// routes, see server.cc), or -1 (unrouted).
int32_t Worker::metrics_route(const Exchange& ex) const {
  if (ex.routed) return static_cast<int32_t>(ex.route_index);
  if (ex.agg != nullptr) return static_cast<int32_t>(cfg_.routes.size() + ex.agg->index);
  return -1;
}

void Worker::finish_exchange(DownstreamConn& c) {
  Exchange& ex = c.ex;
  if (ex.up != nullptr) {
    UpstreamConn& u = *ex.up;
    release_upstream(c, u.reusable && ex.request_done && ex.response_done && u.in.empty());
  }
  if (!c.admin) {  // the admin listener's own traffic is not gateway traffic
    log_exchange(c);
    metrics_->count_request(metrics_route(ex), ex.status);
  }
  const bool close = ex.close_after;
  release_pipes(ex);
  set_lowat(c.fd, c.rcvlowat, 1);  // an upload splice that ended early may have left it raised
  if (ex.block != nullptr) give_block(ex.block);
  delete ex.admin_body;
  abort_aggregate(c);  // ended by now: this only frees the state
  c.ex = Exchange{};
  if (close) {
    linger_close(c);
    return;
  }
  c.state = DownState::kIdle;
  process_input(c);
}

void Worker::log_exchange(DownstreamConn& c) {
  if (!log_enabled_) return;
  const Exchange& ex = c.ex;
  obs::AccessRecord r;
  r.time_unix_ms = static_cast<int64_t>(core::realtime_ns() / 1'000'000ull);
  r.client = c.ip();
  r.method = ex.log_method;
  r.target = ex.log_target;
  r.status = ex.status;
  r.bytes_in = ex.bytes_in;
  r.bytes_out = ex.bytes_out;
  r.duration_us = (now_ns_ - ex.start_ns) / 1000;
  if (!ex.local && ex.routed) {
    r.upstream = shared_.targets[ex.target_index]->authority;
    if (ex.upstream_head_ns != 0) r.upstream_us = static_cast<int64_t>((ex.upstream_head_ns - ex.upstream_start_ns) / 1000);
  }
  if (ex.routed) r.route = ex.route->prefix;
  if (ex.agg != nullptr) r.route = cfg_.aggregates[ex.agg->index].endpoint->path;
  if (!access_log_.append(r)) metrics_->count_access_log_dropped();
  if (access_log_.should_flush()) flush_access_log(false);
}

}  // namespace ringway::server
