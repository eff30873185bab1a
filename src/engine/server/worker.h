// A Worker is one core's gateway: it owns one io_uring, its SO_REUSEPORT listeners, and every
// connection, exchange, pool, buffer, pipe, timer and counter it touches; nothing mutable is shared
// with other workers except what is built for it (metrics shards, rate-limit tables). Created by
// server.cc and run on its own pinned thread.
//
// The rooms' types live in their own headers (net/ connections and transports, upstream/ pools,
// clusters and the failure classification, proxy/ exchanges, aggregates and pipes); the Worker
// wires them to the ring. Its member functions are the handlers of completions, grouped by room
// in src/engine/<room>/*.cc, so the hot path has no indirection: this header is their index.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ringway/agg/merger.h"
#include "ringway/config/config.h"
#include "ringway/core/slab.h"
#include "ringway/core/timer_list.h"
#include "ringway/filter/filter.h"
#include "ringway/http/head_writer.h"
#include "ringway/http/parser.h"
#include "ringway/net/buffers.h"
#include "ringway/net/downstream_conn.h"
#include "ringway/obs/access_log.h"
#include "ringway/obs/metrics.h"
#include "ringway/proxy/aggregate.h"
#include "ringway/proxy/cache_state.h"
#include "ringway/proxy/exchange.h"
#include "ringway/proxy/pipes.h"
#include "redis/redis_link.h"
#include "ringway/ring/loop.h"
#include "ringway/route/router.h"
#include "ringway/upstream/cluster.h"
#include "ringway/upstream/failure.h"
#include "ringway/upstream/dns.h"
#include "ringway/upstream/traffic.h"
#include "ringway/tls/client_context.h"
#include "ringway/tls/server_context.h"
#include "ringway/upstream/upstream_conn.h"
#include "server/mailbox.h"

namespace ringway::server {

using net::DownstreamConn;
using net::TimerKind;
using proxy::AggLeg;
using proxy::AggState;
using proxy::Exchange;
using upstream::UpstreamConn;

class Worker;

// Built once by run(), read-only for the workers (except the atomics, which are set by the main
// thread and read by workers).
struct Shared {
  const config::Config* cfg = nullptr;
  std::unique_ptr<route::Router> router;
  std::unique_ptr<upstream::Clusters> clusters;
  std::unique_ptr<upstream::Traffic> traffic;  // issue 14: shared instance state, same numbering
  std::unique_ptr<upstream::Dns> dns;          // issue 14: re-resolved name slots (resolver thread)
  std::vector<http::Header> add_headers;       // views into cfg->add_headers
  std::vector<std::unique_ptr<filter::FilterFactory>> filters;
  obs::MetricsRegistry* metrics = nullptr;
  int access_log_fd = -1;
  unsigned worker_count = 0;
  std::atomic<unsigned> ready_workers{0};
  std::atomic<bool> draining{false};
  // The certificates new TLS connections start from, when there are --listen-tls addresses.
  // SIGHUP swaps it; every context ever made stays in tls_contexts (main thread only), so a
  // worker that just loaded the old pointer never holds a dangling one (a few per reload).
  std::atomic<const tls::ServerContext*> tls_server{nullptr};
  std::vector<std::shared_ptr<const tls::ServerContext>> tls_contexts;
  // Cluster rate limits (issue 15): counters of every worker's Redis link, when --redis is set.
  std::unique_ptr<filter::RedisStats> redis_stats;
  // --- response cache (issue 16) ---
  std::vector<std::unique_ptr<cache::Store>> cache_stores;  // --cache, then routes' own sizes
  std::vector<proxy::RouteCache> route_caches;             // per route (store null: not cached)
  std::vector<Worker*> workers;                             // every worker, for Worker::post
};

// What a completion is about (the low byte of its user_data, see ring/loop.h).
enum Op : uint8_t {
  kOpNone = 0,
  kOpAccept,
  kOpAdminAccept,
  kOpWake,
  kOpLogWrite,
  kOpCancel,         // completion of a cancel request: nothing to do
  kOpClientRecv,
  kOpClientSend,
  kOpUpConnect,
  kOpUpRecv,
  kOpUpSend,
  kOpClientPollIn,   // pump readiness: request body on the client socket
  kOpClientPollOut,  // pump readiness: room on the client socket for the response body
  kOpUpPollIn,       // pump readiness: response body on the upstream socket
  kOpUpPollOut,      // pump readiness: room on the upstream socket for the request body
  kOpAggDeadline,    // an aggregate's io_uring timeout fired (or was removed)
  // --- redis/redis_link.cc: the worker's Redis connection (cluster rate limits, issue 15) ---
  kOpRedisConnect,
  kOpRedisSend,
  kOpRedisRecv,
  kOpRedisTimer,
  kOpRedisCancel,
};

class Worker : public filter::ResumeTarget {
 public:
  Worker(Shared& shared, unsigned index);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs on the worker's own thread: sets up the ring and listeners, then loops until drained.
  // Returns false (with error) if set-up failed.
  bool run(std::string& error);
  // Any thread: asks the worker to look at Shared::draining.
  void wake();
  // The worker's thread: a filter that paused an exchange has decided (filter::Resumer).
  void resume(uint32_t slot, uint32_t gen, filter::Verdict v, const filter::LocalReply* reply) override;
  // Any thread: runs item on this worker's thread soon (its mailbox, drained on the wake eventfd).
  void post(Mailbox::Item item);

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
  // Out of descriptors: stop accepting until one is freed or a short timer passes.
  void pause_accepting(int err);
  void resume_accepting();
  // poll_first: no data can be there yet (the peer is waiting for us), so skip the receive attempt
  // that would fail and go straight to waiting for readiness.
  void arm_client_recv(DownstreamConn& c, bool poll_first = false);
  void on_client_recv(DownstreamConn& c, int res, uint32_t flags);
  void on_client_plaintext(DownstreamConn& c, net::RecvResult r);
  void flush_transport(DownstreamConn& c);  // sends what the transport must send on its own
  void client_send(DownstreamConn& c);
  void on_client_send(DownstreamConn& c, int res);
  void set_timer(DownstreamConn& c, TimerKind kind);
  void close_client(DownstreamConn& c, bool abort);
  void linger_close(DownstreamConn& c);
  void finalize_client(DownstreamConn& c);
  DownstreamConn* new_client();

  // --- proxy/exchange.cc: the phases of a request/response pair ---
  void process_input(DownstreamConn& c);
  Exchange& begin_exchange(DownstreamConn& c);
  void start_exchange(DownstreamConn& c, const http::Request& req);
  void run_request_filters(Exchange& ex);
  void forward_request(Exchange& ex);
  void forward(Exchange& ex);
  void send_request_part(Exchange& ex);
  void on_request_sent(Exchange& ex);
  void on_request_body_data(DownstreamConn& c);
  void on_response_data(Exchange& ex);
  void send_response_part(Exchange& ex);
  void on_forward_closed(Exchange& ex, int err);
  void on_forward_failure(Exchange& ex, upstream::FailureKind kind);
  void finish_exchange(DownstreamConn& c);
  void end_exchange(DownstreamConn& c);
  void local_reply(DownstreamConn& c, uint16_t status, std::string_view detail, bool close,
                   std::span<const http::Header> extra = {});
  void filter_reply(DownstreamConn& c, const filter::LocalReply& r, bool close);
  void local_head_reply(DownstreamConn& c, http::LocalHead head);  // a head without a body
  Exchange& begin_local(DownstreamConn& c, uint16_t status, bool close);
  void send_local(DownstreamConn& c, size_t n);
  void fail_exchange(Exchange& ex, uint16_t status, std::string_view detail);
  void log_exchange(DownstreamConn& c);
  int32_t metrics_route(const Exchange& ex) const;

  // --- proxy/cache_io.cc: the response cache (issue 16), called from the exchange's phases ---
  // After the request filters: serves a hit (true), pauses behind another fill (true), or marks
  // the exchange as a fill / revalidation / invalidation and lets it forward (false).
  bool cache_request(Exchange& ex);
  // The final response head arrived: decides what to store; true if the cache answered instead
  // (a 304 that revalidated the stored response, or stale-if-error).
  bool cache_on_response(Exchange& ex, const http::Response& resp, size_t head_len);
  http::Header cache_status_field(Exchange& ex);  // Cache-Status (RFC 9211) of a forwarded response
  void cache_capture(Exchange& ex, const char* data, size_t n);  // response body bytes as relayed
  bool cache_on_failure(Exchange& ex);  // the upstream failed: true if a stale response was sent
  // The response is complete: store what was captured. True if the exchange goes on as a
  // stale-while-revalidate refresh (its stale response was just sent).
  bool cache_finish(Exchange& ex);
  void cache_end(Exchange& ex);         // the exchange ends: fill record, waiters, state
  void cache_serve(Exchange& ex, cache::EntryRef e, const http::Request& req);
  void cache_wake(uint32_t slot, uint32_t gen, bool filler);  // a fill this exchange waited for ended
  void cache_release_waiters(const std::vector<cache::FillTable::Waiter>& waiters, bool filler);
  void cache_tick();                    // lock timeouts of fills
  bool cache_admin(const http::Request& req, uint16_t& status, std::string& body);  // /cache/purge
  void cache_metrics(std::string& out) const;

  // --- proxy/pump.cc: Content-Length bodies spliced socket -> pipe -> socket, either way ---
  bool can_splice(const Exchange& ex, proxy::Dir d, uint64_t remaining) const;
  bool start_pump(Exchange& ex, proxy::Dir d);
  void pump(Exchange& ex, proxy::Dir d);
  void arm_poll(int fd, uint32_t events, uint64_t ud);
  void release_pipes(Exchange& ex);

  // --- upstream/upstream_io.cc: connections to upstream instances, reporting to their user ---
  UpstreamConn* new_upstream();
  // A pooled connection to instance i, or a new one being connected; null (kNoSocket) if none.
  // pooled = false: always a new connection (a retry after a pooled one failed).
  UpstreamConn* open_upstream(uint32_t instance, bool pooled, bool& reused);
  void on_up_connect(UpstreamConn& u, int res);
  void arm_up_recv(UpstreamConn& u, bool poll_first = false);
  void on_up_recv(UpstreamConn& u, int res, uint32_t flags);
  void on_up_plaintext(UpstreamConn& u, net::RecvResult r);
  void flush_upstream(UpstreamConn& u);  // sends what the transport must send on its own
  void up_send(UpstreamConn& u);
  void on_up_send(UpstreamConn& u, int res);
  // The one interface upstream connections report to: dispatched on the user (exchange or leg).
  void up_connected(UpstreamConn& u);
  void up_data(UpstreamConn& u);
  void up_sent(UpstreamConn& u);
  void up_closed(UpstreamConn& u, int err);  // EOF (0) or an error: may end a close-delimited body
  void up_failed(UpstreamConn& u, upstream::FailureKind kind);
  // Detaches u from its user; pools it if reuse allows, else closes it.
  void release_upstream(UpstreamConn* u, bool reuse);
  void close_upstream(UpstreamConn& u);
  void finalize_upstream(UpstreamConn& u);

  // --- upstream/traffic_io.cc: balancing, breakers, passive health, retries (issue 14) ---
  // The instance of cluster (a route index) for a request; req is null on a retry (a hash
  // balancer then hashes the empty key, and `exclude` moves it off the failed instance).
  uint32_t pick_instance(uint32_t cluster, const http::Request* req, std::string_view client_ip,
                         uint32_t exclude = upstream::Traffic::kNone);
  bool begin_attempt(Exchange& ex);                     // false: answered 503 (circuit breaker)
  bool report_response(Exchange& ex, uint16_t status);  // head arrived; true: retried elsewhere
  void end_attempt(Exchange& ex, bool failed);
  void end_retries(Exchange& ex);                       // the exchange ends: attempt and budget
  // true: tried elsewhere. counted: the failure is the upstream's (it goes to passive health).
  bool retry_exchange(Exchange& ex, uint8_t cause, bool bytes_sent, bool counted = true);
  bool retarget_head(Exchange& ex, uint32_t from, uint32_t to);
  bool begin_leg_attempt(AggLeg& leg);                  // false: the breaker refused it
  void end_leg_attempt(AggLeg& leg, bool failed, bool counted);
  void traffic_tick();                                  // outlier sweep (worker 0), health probes
  bool arm_try_timer(DownstreamConn& c);                // kResponse on a route with per_try_timeout
  bool acquire_connection_units(uint32_t instance);     // breaker: a new connection, pending
  void release_connection_units(uint32_t instance, bool connection, bool pending);
  std::string cluster_label(uint32_t cluster) const;
  void render_upstreams(std::string& out);              // admin /upstreams (JSON)
  void render_traffic_metrics(std::string& out);        // per-instance series for /metrics
  static constexpr uint64_t kTrafficTickNs = 20'000'000;

  // --- upstream/health_io.cc: active health checks through this worker's ring (issue 14) ---
  void init_health_checks();
  void run_health_checks();                  // from traffic_tick: claim due probes, expire late ones
  void start_probe(upstream::HealthProbe& p);
  void send_probe(upstream::HealthProbe& p);
  void on_probe_data(upstream::HealthProbe& p);
  void finish_probe(upstream::HealthProbe& p, bool passed);

  // --- proxy/aggregate.cc: fan-out to several backends, JSON merge ---
  void start_aggregate(Exchange& ex);
  void start_leg(AggLeg& leg);
  void send_leg(AggLeg& leg);
  void on_leg_data(AggLeg& leg);
  void on_leg_closed(AggLeg& leg, int err);
  void on_leg_failure(AggLeg& leg, upstream::FailureKind kind);
  void end_leg(AggLeg& leg, bool failed, uint16_t status, std::string_view detail, bool reuse);
  void finish_aggregate(Exchange& ex);
  void arm_aggregate_deadline(DownstreamConn& c);
  void disarm_aggregate_deadline(DownstreamConn& c);
  void on_aggregate_deadline(DownstreamConn& c, int res);
  void cancel_aggregate(Exchange& ex);  // closes the legs' connections
  void abort_aggregate(Exchange& ex);   // cancel_aggregate + frees the state

  Shared& shared_;
  const config::Config& cfg_;
  const upstream::Clusters& clusters_;
  upstream::Traffic& traffic_;                 // issue 14: shared by every worker
  upstream::Rng rng_;                          // this worker's, for random picks
  uint64_t next_traffic_ns_ = 0;               // the next traffic_tick()
  std::vector<upstream::HealthProbe> probes_;  // per instance: this worker's probe, if any
  std::vector<std::unique_ptr<core::TimerList>> try_timers_;  // per route: per_try_timeout, or null
  upstream::FailureKind open_failure_ = upstream::FailureKind::kNoSocket;  // why open_upstream failed
  bool health_checks_ = false;                 // some cluster has active checks
  unsigned index_;
  ring::Loop loop_;
  net::Buffers buffers_;
  http::Limits limits_;
  std::vector<int> listen_fds_;  // one SO_REUSEPORT listener per --listen address, in every worker
  std::vector<bool> listen_tls_;  // per listener: --listen-tls
  std::vector<bool> accept_armed_;  // per listener: its multishot accept is running
  bool admin_accept_armed_ = false;
  bool accept_paused_ = false;
  uint64_t accept_retry_ns_ = 0;
  uint64_t accept_log_ns_ = 0;     // the next time a pause may be logged
  int admin_fd_ = -1;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;
  uint64_t now_ns_ = 0;
  bool draining_ = false;
  uint64_t drain_deadline_ns_ = 0;
  bool stop_ = false;

  core::Slab<DownstreamConn> clients_;
  uint32_t open_clients_ = 0;
  core::Slab<Exchange> exchanges_;
  core::Slab<UpstreamConn> upstreams_;
  upstream::Pools pools_;
  std::vector<uint32_t> pick_cursors_;         // per cluster: this worker's round-robin position
  std::vector<DownstreamConn*> starved_clients_;
  std::vector<UpstreamConn*> starved_upstreams_;
  std::vector<DownstreamConn*> tls_deliveries_;  // TLS plaintext held back, delivered by the loop
  std::vector<UpstreamConn*> up_tls_deliveries_;
  std::unique_ptr<tls::ClientContext> tls_client_;  // this worker's, when an upstream is https
  // mTLS / per-upstream TLS (issue 13): one context per upstream with its own "tls" settings.
  std::unordered_map<const config::UpstreamTls*, std::unique_ptr<tls::ClientContext>> tls_clients_;
  tls::ClientContext& tls_client_for(const config::Target& t);
  // TLS visibility (issue 13, net/tls_stats.cc): handshakes and failures on client connections
  // into /metrics, the session's parameters into an access log record.
  void note_client_tls(DownstreamConn& c, net::RecvResult r);
  void note_client_tls_closed(DownstreamConn& c, bool timed_out);
  static void describe_tls(const DownstreamConn& c, obs::AccessRecord& r);
  proxy::PipeCache pipes_;
  uint32_t up_head_cap_ = 0;                   // room for a rebuilt upstream head (forward or leg)
  std::string hsts_;                           // "max-age=N" for responses over TLS, or empty
  bool redirect_https_ = false;                // --redirect-https
  std::string redirect_port_;                  // ":PORT" of the first TLS listener, "" for 443
  std::string redirect_scratch_;

  core::TimerList header_timers_, keepalive_timers_, body_timers_, connect_timers_,
      response_timers_, linger_timers_;

  std::vector<__kernel_timespec> agg_deadlines_;  // per aggregate: its relative deadline
  std::unique_ptr<agg::MergeWorkspace> merge_ws_;

  // Response cache (issue 16): per exchange slot, created on the first cached request it serves.
  std::vector<std::unique_ptr<proxy::CacheState>> cache_states_;
  uint64_t cache_tick_ns_ = 0;
  Mailbox mailbox_;

  filter::Chain filters_;
  // --- redis/redis_link.cc: cluster rate limits' Redis connection (issue 15), when --redis ---
  std::unique_ptr<redis::RedisLink> redis_;  // destroyed before filters_: it never calls them then
  obs::WorkerMetrics* metrics_ = nullptr;
  obs::AccessLog access_log_;
  bool log_enabled_ = false;
  bool log_writing_ = false;
  uint64_t next_log_flush_ns_ = 0;
};

}  // namespace ringway::server
