// A Worker owns one io_uring, one SO_REUSEPORT listener, and every connection, pool, buffer,
// timer and counter it touches: nothing here is shared with other workers except the immutable
// Shared state and the metrics shard that the admin endpoint reads. Created and run on its own
// pinned thread. The exchange logic lives in proxy/, connection lifecycle in net/, pools in
// upstream/; they are member functions of Worker so that the hot path has no indirection.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ringway/agg/merger.h"
#include "ringway/config/config.h"
#include "ringway/core/timer_list.h"
#include "ringway/filter/filter.h"
#include "ringway/http/parser.h"
#include "ringway/obs/access_log.h"
#include "ringway/obs/metrics.h"
#include "ringway/ring/loop.h"
#include "ringway/route/router.h"

namespace ringway::server {

// Built once by run(), read-only for the workers (except the atomics, which are set by the main
// thread and read by workers).
struct Shared {
  const config::Config* cfg = nullptr;
  std::unique_ptr<route::Router> router;
  std::vector<const config::Target*> targets;  // every route's targets, flattened
  std::vector<uint32_t> route_target_base;     // route index -> first index in targets
  std::vector<uint32_t> agg_target_base;       // aggregate index -> its first backend in targets
  std::vector<http::Header> add_headers;       // views into cfg->add_headers
  std::vector<std::unique_ptr<filter::FilterFactory>> filters;
  obs::MetricsRegistry* metrics = nullptr;
  int access_log_fd = -1;
  unsigned worker_count = 0;
  std::atomic<unsigned> ready_workers{0};
  std::atomic<bool> draining{false};
};

enum Op : uint8_t {
  kOpNone = 0,
  kOpAccept,
  kOpAdminAccept,
  kOpWake,
  kOpLogWrite,
  kOpCancel,      // completion of a cancel request: nothing to do
  kOpClientRecv,
  kOpClientSend,
  kOpUpConnect,
  kOpUpRecv,
  kOpUpSend,
  kOpClientPollIn,   // splice readiness: request body on the client socket
  kOpClientPollOut,  // splice readiness: room on the client socket for the response body
  kOpUpPollIn,       // splice readiness: response body on the upstream socket
  kOpUpPollOut,      // splice readiness: room on the upstream socket for the request body
  kOpAggDeadline,    // an aggregate's io_uring timeout fired (or was removed)
};

// A pipe from the worker's cache, used to move body bytes socket -> pipe -> socket with splice(2).
struct Pipe {
  int r = -1;
  int w = -1;
  uint32_t bytes = 0;  // in the pipe, not yet spliced out
  bool valid() const { return r >= 0; }
};

// A byte range in either a provided receive buffer (bid >= 0), a worker block (block) or
// memory that something else owns.
struct Buf {
  char* data = nullptr;
  uint32_t off = 0;
  uint32_t len = 0;
  int32_t bid = -1;
  bool block = false;
  const char* begin() const { return data + off; }
  bool empty() const { return len == 0; }
};

// One send in flight on a socket: up to two ranges (a head and a body part), resumed on short
// writes. `release` says which ranges go back to their pool when the send completes.
struct SendOp {
  iovec iov[2]{};
  msghdr msg{};
  Buf hold[2];
  uint8_t count = 0;
  bool busy = false;
  // Advances over the n bytes the kernel took; true if some remain (a short write to resume).
  bool advance(uint32_t n) {
    bool more = false;
    for (uint8_t i = 0; i < count; ++i) {
      const uint32_t take = n < hold[i].len ? n : hold[i].len;
      hold[i].off += take;
      hold[i].len -= take;
      n -= take;
      if (hold[i].len > 0) more = true;
    }
    return more;
  }
};

enum class TimerKind : uint8_t { kNone, kHeader, kKeepAlive, kBody, kConnect, kResponse, kLinger };

struct UpstreamConn;
struct DownstreamConn;

// One backend call of an aggregate request (proxy/aggregate.cc). Owned by its AggState.
struct AggState;
struct AggLeg {
  AggState* agg = nullptr;
  UpstreamConn* up = nullptr;      // null before connect and after the leg ended
  uint32_t target_index = 0;
  std::string head;                // request head to send (copied to the UpstreamConn)
  std::string body;                // response body (chunked: decoded as it arrives)
  bool chunked = false;
  bool until_close = false;
  bool head_done = false;
  bool ended = false;
  bool failed = false;
  bool reused = false;
  bool retried = false;
  uint16_t status = 0;
  std::string_view detail;         // static text
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

// The fan-out state of one aggregate request; per request allocation (rare path by design).
struct AggState {
  DownstreamConn* owner = nullptr;
  uint32_t index = 0;              // in Config::aggregates
  uint32_t remaining = 0;          // legs not ended
  uint64_t deadline_ns = 0;        // monotonic; the io_uring timeout fires at or after it
  bool timed_out = false;
  std::vector<AggLeg> legs;
  std::string out;                 // the client response: head + merged body
};

enum class DownState : uint8_t {
  kIdle,        // between requests, waiting for the first byte
  kHead,        // part of a request head received
  kExchange,    // a request is being forwarded or answered
  kLingering,   // our side is shut for writing; reading until the client closes (or a timeout)
};

struct Exchange {
  UpstreamConn* up = nullptr;
  const config::Route* route = nullptr;
  uint32_t route_index = 0;
  uint32_t target_index = 0;
  bool routed = false;
  bool local = false;              // answered by the gateway (no upstream)
  http::Method method = http::Method::kOther;
  http::BodyFraming req_framing = http::BodyFraming::kNone;
  bool client_keep_alive = true;
  bool http10 = false;
  bool request_done = false;       // every request body byte was sent upstream
  bool head_sent = false;          // the request head was sent upstream
  bool response_head_done = false;
  bool response_started = false;   // some response byte was sent to the client
  bool response_done = false;
  bool close_after = false;        // close the client connection when the exchange ends
  bool retried = false;
  bool reused_upstream = false;
  uint64_t body_limit = 0;
  uint64_t req_body_seen = 0;      // chunked bodies: bytes counted against body_limit
  uint32_t in_flight_body = 0;     // bytes of the client's `in` being sent upstream right now
  uint32_t in_flight_resp = 0;     // bytes of the upstream's `in` being sent to the client
  bool req_body_final = false;     // the request body ends with the bytes in flight
  bool resp_final = false;         // the response ends with the bytes in flight
  http::ResponseFraming resp_framing = http::ResponseFraming::kNone;
  Pipe up_pipe;                    // request body splice (client -> upstream)
  Pipe down_pipe;                  // response body splice (upstream -> client)
  bool upload_polling = false;     // a readiness poll for the upload splice is in flight
  bool download_polling = false;
  bool lowat_off = false;          // a body timeout lowered SO_RCVLOWAT: plain readiness from now on
  char* block = nullptr;           // worker block: upstream head, downstream head, log copies
  uint32_t up_head_len = 0;
  uint32_t interim_len = 0;        // 1xx heads written after the upstream head, not yet sent
  uint16_t status = 0;
  uint64_t start_ns = 0;
  uint64_t upstream_start_ns = 0;
  uint64_t upstream_head_ns = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::string_view log_method;     // views into block
  std::string_view log_target;
  std::string* admin_body = nullptr;  // admin replies only
  AggState* agg = nullptr;         // aggregate requests only
  http::Header resp_headers[filter::RequestContext::kMaxResponseHeaders];
  uint8_t resp_header_count = 0;
  char resp_header_store[256];

  // HTTP/1.0 client, chunked response: the body is relayed decoded (RFC 9112 6.1).
  bool dechunk() const { return http10 && resp_framing == http::ResponseFraming::kChunked; }

  // Copies the fields filters asked to add to the response (their views point into the
  // short-lived RequestContext) into this exchange.
  void keep_response_headers(const filter::RequestContext& ctx) {
    size_t used = 0;
    for (uint8_t i = 0; i < ctx.response_header_count; ++i) {
      const http::Header& h = ctx.response_headers[i];
      if (used + h.name.size() + h.value.size() > sizeof(resp_header_store)) break;
      char* p = resp_header_store + used;
      std::memcpy(p, h.name.data(), h.name.size());
      std::memcpy(p + h.name.size(), h.value.data(), h.value.size());
      resp_headers[resp_header_count++] =
          http::Header{{p, h.name.size()}, {p + h.name.size(), h.value.size()}};
      used += h.name.size() + h.value.size();
    }
  }
};

struct DownstreamConn {
  uint32_t index = 0;
  uint32_t gen = 0;
  int fd = -1;
  uint16_t pending = 0;       // SQEs in flight that carry this conn's user_data
  bool in_use = false;
  bool admin = false;
  bool recv_armed = false;
  bool starved = false;       // waiting for a free receive buffer
  bool closing = false;
  bool abort = false;         // close with RST
  bool agg_deadline_armed = false;  // an aggregate's io_uring timeout is in flight (counted in pending)
  uint32_t rcvlowat = 1;      // SO_RCVLOWAT while a splice waits for request body bytes
  DownState state = DownState::kIdle;
  TimerKind timer_kind = TimerKind::kNone;
  core::TimerNode timer;
  Buf in;                     // received, not yet consumed
  SendOp send;
  Exchange ex;
  std::unique_ptr<http::RequestParser> parser;
  char client_ip[INET6_ADDRSTRLEN] = {};
  uint8_t client_ip_len = 0;
  std::string_view ip() const { return {client_ip, client_ip_len}; }
};

struct UpstreamConn {
  uint32_t index = 0;
  uint32_t gen = 0;
  int fd = -1;
  uint16_t pending = 0;
  bool in_use = false;
  bool connected = false;
  bool recv_armed = false;
  bool starved = false;
  bool closing = false;
  bool reusable = true;
  uint32_t target_index = 0;
  DownstreamConn* owner = nullptr;   // null while idle in the pool
  UpstreamConn* pool_prev = nullptr; // idle list links
  UpstreamConn* pool_next = nullptr;
  core::TimerNode timer;             // idle timeout while pooled
  Buf in;
  SendOp send;
  std::unique_ptr<http::ResponseParser> parser;
  uint64_t served = 0;
  AggLeg* leg = nullptr;             // set while serving an aggregate leg (owner is then null)
  uint32_t rcvlowat = 1;             // SO_RCVLOWAT while a splice waits for response body bytes
  std::string out;                   // aggregate legs: the request head being sent
};

class Worker {
 public:
  Worker(Shared& shared, unsigned index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs on the worker's own thread: sets up the ring and listeners, then loops until drained.
  // Returns false (with error) if set-up failed.
  bool run(std::string& error);
  // Any thread: asks the worker to look at Shared::draining.
  void wake();

 private:
  // --- server/worker.cc: loop, dispatch, timers, drain, admin ---
  bool setup(std::string& error);
  void dispatch(io_uring_cqe* cqe);
  void run_timers();
  void on_timer(DownstreamConn& c);
  void begin_drain();
  void arm_wake();
  void flush_access_log(bool force);
  void serve_admin(DownstreamConn& c, const http::Request& req);

  // --- net/downstream.cc: accept, receive, send, close ---
  void arm_accept(int fd, Op op, uint32_t slot = 0);  // slot: index in listen_fds_
  void on_accept(int res, uint32_t flags, bool admin, uint32_t slot);
  // poll_first: no data can be there yet (the peer is waiting for us), so skip the receive attempt
  // that would fail and go straight to waiting for readiness.
  void arm_client_recv(DownstreamConn& c, bool poll_first = false);
  void on_client_recv(DownstreamConn& c, int res, uint32_t flags);
  void client_send(DownstreamConn& c);
  void on_client_send(DownstreamConn& c, int res);
  void set_timer(DownstreamConn& c, TimerKind kind);
  void close_client(DownstreamConn& c, bool abort);
  void linger_close(DownstreamConn& c);
  void finalize_client(DownstreamConn& c);
  bool append_input(Buf& in, char* data, uint32_t n, int32_t bid, uint32_t limit);

  // --- proxy/exchange.cc: the request/response pair ---
  void process_input(DownstreamConn& c);
  void start_exchange(DownstreamConn& c, const http::Request& req);
  void forward(DownstreamConn& c);
  void send_request_part(DownstreamConn& c);
  void on_request_sent(DownstreamConn& c);
  void on_request_body_data(DownstreamConn& c);
  void on_upstream_data(UpstreamConn& u);
  void on_upstream_failure(UpstreamConn& u, int err);
  void send_response_part(DownstreamConn& c);
  void finish_exchange(DownstreamConn& c);
  void local_reply(DownstreamConn& c, uint16_t status, std::string_view detail, bool close,
                   std::span<const http::Header> extra = {});
  void fail_exchange(DownstreamConn& c, uint16_t status, std::string_view detail);
  void log_exchange(DownstreamConn& c);
  int32_t metrics_route(const Exchange& ex) const;

  // --- proxy/splice.cc: Content-Length bodies moved with splice(2) through cached pipes ---
  bool can_splice(uint64_t remaining) const;
  bool start_upload_splice(DownstreamConn& c);
  void pump_upload(DownstreamConn& c);
  bool start_download_splice(DownstreamConn& c);
  void pump_download(DownstreamConn& c);
  void arm_poll(int fd, uint32_t events, uint64_t ud);
  static void set_lowat(int fd, uint32_t& current, uint64_t remaining);
  bool take_pipe(Pipe& p);
  void give_pipe(Pipe& p);
  void release_pipes(Exchange& ex);

  // --- upstream/pool.cc: keep-alive pools and upstream sockets ---
  bool acquire_upstream(DownstreamConn& c);
  void connect_upstream(DownstreamConn& c);
  void on_up_connect(UpstreamConn& u, int res);
  void arm_up_recv(UpstreamConn& u, bool poll_first = false);
  void on_up_recv(UpstreamConn& u, int res, uint32_t flags);
  void up_send(UpstreamConn& u);
  void on_up_send(UpstreamConn& u, int res);
  void release_upstream(DownstreamConn& c, bool reuse);
  void close_upstream(UpstreamConn& u);
  void finalize_upstream(UpstreamConn& u);
  void pool_remove(UpstreamConn& u);

  // --- proxy/aggregate.cc: fan-out to several backends, JSON merge ---
  bool try_aggregate(DownstreamConn& c, const http::Request& req);
  void start_leg(AggState& a, AggLeg& leg);
  void connect_leg(AggState& a, AggLeg& leg);
  void on_leg_connect(UpstreamConn& u, int res);
  void on_leg_recv(UpstreamConn& u, int res, uint32_t flags);
  void on_leg_send(UpstreamConn& u, int res);
  void leg_data(UpstreamConn& u);
  void leg_failure(UpstreamConn& u, int err);
  void end_leg(AggLeg& leg, bool failed, uint16_t status, std::string_view detail, bool reuse);
  void finish_aggregate(DownstreamConn& c);
  void arm_aggregate_deadline(DownstreamConn& c);
  void disarm_aggregate_deadline(DownstreamConn& c);
  void on_aggregate_deadline(DownstreamConn& c, int res);
  void cancel_aggregate(DownstreamConn& c);  // closes the legs' connections
  void abort_aggregate(DownstreamConn& c);   // cancel_aggregate + frees the state
  void release_conn(UpstreamConn* u, bool reuse);

  // --- buffers ---
  char* take_block();
  void give_block(char* b);
  void release(Buf& b);
  void consume(Buf& b, uint32_t n);
  bool start_send(SendOp& s, int fd, uint64_t ud);

  DownstreamConn* new_client();
  UpstreamConn* new_upstream();

  Shared& shared_;
  const config::Config& cfg_;
  unsigned index_;
  ring::Loop loop_;
  ring::BufferRing buffers_;
  http::Limits limits_;
  std::vector<int> listen_fds_;  // one SO_REUSEPORT listener per --listen address, in every worker
  int admin_fd_ = -1;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  uint64_t now_ns_ = 0;
  bool draining_ = false;
  uint64_t drain_deadline_ns_ = 0;
  bool stop_ = false;

  std::vector<std::unique_ptr<DownstreamConn>> clients_;
  std::vector<uint32_t> free_clients_;
  uint32_t open_clients_ = 0;
  std::vector<std::unique_ptr<UpstreamConn>> upstreams_;
  std::vector<uint32_t> free_upstreams_;
  std::vector<UpstreamConn*> pool_heads_;      // per target: idle list
  std::vector<uint32_t> pool_sizes_;
  std::vector<uint32_t> rr_;                   // per route: round-robin cursor
  std::vector<DownstreamConn*> starved_clients_;
  std::vector<UpstreamConn*> starved_upstreams_;

  std::vector<Pipe> pipes_;                    // drained spare pipes
  uint32_t pipes_open_ = 0;                    // pipes in use or spare
  std::vector<char*> blocks_;                  // free worker blocks
  uint32_t block_size_ = 0;
  uint32_t up_head_cap_ = 0;                   // room for a rebuilt upstream head (forward or leg)

  core::TimerList header_timers_, keepalive_timers_, body_timers_, connect_timers_,
      response_timers_, up_idle_timers_, linger_timers_;

  std::vector<__kernel_timespec> agg_deadlines_;  // per aggregate: its relative deadline
  std::unique_ptr<agg::MergeWorkspace> merge_ws_;

  filter::Chain filters_;
  obs::WorkerMetrics* metrics_ = nullptr;
  obs::AccessLog access_log_;
  bool log_enabled_ = false;
  bool log_writing_ = false;
  uint64_t next_log_flush_ns_ = 0;
};

}  // namespace ringway::server
