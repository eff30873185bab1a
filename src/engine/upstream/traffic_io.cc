// Traffic management in the engine (issue 14): which instance an exchange or aggregate leg goes
// to (upstream::Traffic over the process-wide HostState atomics, this worker's cursors and Rng),
// the circuit breaker's request count around every attempt, what an attempt's outcome tells
// passive health (outlier ejection, peak-EWMA), and retries to another instance. The decisions
// live in include/ringway/upstream/; this file only feeds them the exchange's events.
//
// An attempt is open from the pick to the end of the exchange (or to the failure that ends it),
// so in-flight counts include pending connects and responses still streaming. Its outcome is
// reported once: at the response head (success with the head's latency, or a 5xx failure), or
// at a failure classified by upstream/failure.h that is the upstream's doing (Failure::counted).

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "ringway/agg/endpoint.h"
#include "ringway/core/json_escape.h"
#include "server/worker.h"

namespace ringway::server {
namespace {

// The value of cookie `name` in a Cookie field ("a=1; b=2"; RFC 6265 5.4), or empty.
std::string_view cookie_value(std::string_view field, std::string_view name) {
  while (!field.empty()) {
    const size_t semi = field.find(';');
    std::string_view pair = field.substr(0, semi);
    field = semi == std::string_view::npos ? std::string_view{} : field.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return {};
}

// A Prometheus label value (text exposition format: backslash, quote and newline escaped).
void append_label(std::string& out, std::string_view v) {
  for (char ch : v) {
    if (ch == '\\' || ch == '"') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
}

const char* balance_name(upstream::BalanceKind k) {
  switch (k) {
    case upstream::BalanceKind::kRoundRobin: return "round_robin";
    case upstream::BalanceKind::kLeastRequest: return "least_request";
    case upstream::BalanceKind::kRandom: return "random";
    case upstream::BalanceKind::kHash: return "hash";
  }
  return "";
}

}  // namespace

uint32_t Worker::pick_instance(uint32_t cluster, const http::Request* req, std::string_view client_ip,
                               uint32_t exclude) {
  const upstream::Cluster& cl = clusters_.route(cluster);  // route(i) indexes every cluster
  upstream::PickInput in;
  in.now_ns = now_ns_;
  in.exclude = exclude;
  if (traffic_.options(cluster).balance.kind == upstream::BalanceKind::kHash) {
    const config::TrafficSettings* t = &cfg_.routes[cluster].traffic;  // only routes hash
    // The key's bytes; a request without the header or cookie hashes the empty key (one
    // instance takes them all, which is what "the same key, the same instance" means for them).
    std::string_view key;
    if (t->hash_source == "ip") {
      key = client_ip;
    } else if (req != nullptr && t->hash_source == "header") {
      key = req->header(t->hash_name);
    } else if (req != nullptr) {
      key = cookie_value(req->header("cookie"), t->hash_name);
    }
    in.hash = upstream::hash_key(key);
  }
  return traffic_.pick(cl, in, pick_cursors_[cluster], rng_);
}

bool Worker::begin_attempt(Exchange& ex) {
  if (!traffic_.begin_attempt(ex.instance)) {
    // Over the instance's request limit: answer at once instead of queueing (issue 14).
    local_reply(*ex.down, 503, "upstream circuit breaker open: too many requests in flight", ex.has_body);
    return false;
  }
  ex.attempt_open = true;
  ex.attempt_reported = false;
  ++ex.attempts;
  return true;
}

bool Worker::report_response(Exchange& ex, uint16_t status) {
  if (!ex.attempt_open || ex.attempt_reported) return false;
  ex.attempt_reported = true;
  if (status < 500) {
    traffic_.report_success(ex.instance, now_ns_ - ex.upstream_start_ns, now_ns_);
    return false;
  }
  traffic_.report_failure(ex.instance, now_ns_);
  // The upstream has the request: only an idempotent request without a body goes again.
  return retry_exchange(ex, upstream::retry_cause_status(status), true);
}

void Worker::end_attempt(Exchange& ex, bool failed) {
  if (!ex.attempt_open) return;
  if (failed && !ex.attempt_reported) traffic_.report_failure(ex.instance, now_ns_);
  ex.attempt_open = false;
  traffic_.end_attempt(ex.instance);
}

void Worker::end_retries(Exchange& ex) {
  end_attempt(ex, false);
  if (ex.retry_reserved) {
    traffic_.retry_budget(traffic_.cluster_of(ex.instance)).retry_finished();
    ex.retry_reserved = false;
  }
  if (ex.budget_counted) {
    traffic_.retry_budget(traffic_.cluster_of(ex.instance)).request_finished();
    ex.budget_counted = false;
  }
}

bool Worker::retry_exchange(Exchange& ex, uint8_t cause, bool bytes_sent, bool counted) {
  if (ex.route == nullptr || ex.response_started || ex.down->send.busy) return false;
  const uint32_t ci = ex.route_index;
  const upstream::RetryPolicy& policy = traffic_.options(ci).retry;
  // RFC 9110 9.2.2: a request the upstream may have acted on is repeated only if idempotent; a
  // body is never sent twice (its bytes are gone from the buffers once sent).
  const bool repeatable = http::is_idempotent(ex.method) && !ex.has_body;
  if (!upstream::may_retry(policy, cause, ex.attempts, repeatable, bytes_sent || ex.up_bytes_sent)) {
    return false;
  }
  const uint32_t old = ex.instance;
  const uint32_t next = pick_instance(ci, nullptr, ex.down->ip(), old);
  if (next == upstream::Traffic::kNone || !retarget_head(ex, old, next)) return false;
  upstream::RetryBudget& budget = traffic_.retry_budget(ci);
  if (ex.retry_reserved) {  // this exchange's previous retry is over
    budget.retry_finished();
    ex.retry_reserved = false;
  }
  if (!budget.try_start_retry()) {
    traffic_.counters(old).retries_refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  ex.retry_reserved = true;
  end_attempt(ex, counted);
  if (ex.up != nullptr) release_upstream(ex.up, false);
  ex.instance = next;
  ex.interim_len = 0;  // 1xx heads of the failed try that were not sent yet: dropped
  ex.head_sent = false;
  ex.up_bytes_sent = false;
  ex.reused_upstream = false;
  ex.in_flight_body = 0;
  ex.req_body_final = false;
  traffic_.counters(next).retries.fetch_add(1, std::memory_order_relaxed);
  if (!begin_attempt(ex)) return true;  // answered 503
  forward(ex);
  return true;
}

// The rebuilt head names its instance in two places: the path (its base path) and Host. The
// request's own views are gone by now (their buffer is recycled once forwarded), so the head is
// patched: Host is replaced; a different base path is refused (no retry).
bool Worker::retarget_head(Exchange& ex, uint32_t from, uint32_t to) {
  const config::Target& a = clusters_.instance(from);
  const config::Target& b = clusters_.instance(to);
  if (a.base_path != b.base_path) return false;
  if (cfg_.preserve_host || a.authority == b.authority) return true;
  const std::string old = "\r\nHost: " + a.authority + "\r\n";
  std::string_view head(ex.block, ex.up_head_len);
  const size_t at = head.find(old);
  if (at == std::string_view::npos) return false;
  const size_t len = ex.up_head_len - at - old.size();  // what follows the Host line
  const size_t grown = ex.up_head_len - a.authority.size() + b.authority.size();
  if (grown > up_head_cap_) return false;
  char* tail = ex.block + at + old.size();
  std::memmove(tail - a.authority.size() + b.authority.size(), tail, len);
  std::memcpy(ex.block + at + 8, b.authority.data(), b.authority.size());
  ex.up_head_len = static_cast<uint32_t>(grown);
  return true;
}

bool Worker::begin_leg_attempt(AggLeg& leg) {
  if (!traffic_.begin_attempt(leg.instance)) return false;
  leg.attempt_open = true;
  return true;
}

void Worker::end_leg_attempt(AggLeg& leg, bool failed, bool counted) {
  if (!leg.attempt_open) return;
  leg.attempt_open = false;
  if (failed && counted) {
    traffic_.report_failure(leg.instance, now_ns_);
  } else if (!failed) {
    if (leg.status >= 500) {
      traffic_.report_failure(leg.instance, now_ns_);
    } else {
      traffic_.report_success(leg.instance, now_ns_ - leg.start_ns, now_ns_);
    }
  }
  traffic_.end_attempt(leg.instance);
}

bool Worker::arm_try_timer(DownstreamConn& c) {
  if (c.ex == nullptr || c.ex->route == nullptr || c.ex->local) return false;
  core::TimerList* l = c.ex->route_index < try_timers_.size() ? try_timers_[c.ex->route_index].get() : nullptr;
  if (l == nullptr) return false;
  l->arm(&c.timer, now_ns_);
  return true;
}

// A new connection takes one connection unit for its life and one pending unit until its connect
// completes; either at its limit refuses it (FailureKind::kCircuitOpen: 503 at once).
bool Worker::acquire_connection_units(uint32_t instance) {
  upstream::CircuitCounters& b = traffic_.breaker(instance);
  const upstream::CircuitLimits& l = traffic_.options(traffic_.cluster_of(instance)).limits;
  if (!upstream::try_acquire(b, l, upstream::CircuitResource::kConnection)) return false;
  if (!upstream::try_acquire(b, l, upstream::CircuitResource::kPending)) {
    upstream::release(b, upstream::CircuitResource::kConnection);
    return false;
  }
  return true;
}

void Worker::release_connection_units(uint32_t instance, bool connection, bool pending) {
  upstream::CircuitCounters& b = traffic_.breaker(instance);
  if (connection) upstream::release(b, upstream::CircuitResource::kConnection);
  if (pending) upstream::release(b, upstream::CircuitResource::kPending);
}

// --- periodic work and visibility ---

void Worker::traffic_tick() {
  next_traffic_ns_ = now_ns_ + kTrafficTickNs;
  // Ejections expire lazily when a pick looks at the instance; the sweep returns the others, so
  // the cluster counts (and with them panic mode) stay fresh. One worker is enough: the sweep
  // only moves shared atomics, and return_if_expired lets exactly one caller win.
  if (index_ == 0) {
    for (uint32_t ci = 0; ci < traffic_.cluster_count(); ++ci) {
      const upstream::Cluster& cl = clusters_.route(ci);
      if (cl.size > 0) upstream::Outlier::sweep(&traffic_.host(cl.first), traffic_.cluster_state(ci), now_ns_);
    }
  }
  if (health_checks_) run_health_checks();
}

// The route prefix, or "aggregate PATH backend NAME", of cluster ci (routes first, as Clusters).
std::string Worker::cluster_label(uint32_t ci) const {
  if (ci < cfg_.routes.size()) return cfg_.routes[ci].prefix;
  uint32_t k = ci - static_cast<uint32_t>(cfg_.routes.size());
  for (const config::Aggregate& a : cfg_.aggregates) {
    if (k < a.targets.size()) return a.endpoint->path + " " + a.endpoint->backends[k].name;
    k -= static_cast<uint32_t>(a.targets.size());
  }
  return "";
}

// Admin /upstreams: every cluster's instances and their shared state, as JSON.
void Worker::render_upstreams(std::string& out) {
  char num[160];
  out += "{\"clusters\":[";
  for (uint32_t ci = 0; ci < traffic_.cluster_count(); ++ci) {
    const upstream::Cluster& cl = clusters_.route(ci);
    upstream::ClusterState& cs = traffic_.cluster_state(ci);
    const upstream::TrafficOptions& opt = traffic_.options(ci);
    if (ci > 0) out += ',';
    out += "{\"route\":";
    core::append_json_string(out, cluster_label(ci));
    std::snprintf(num, sizeof num, ",\"balance\":\"%s\",\"ejected\":%u,\"unhealthy\":%u,\"instances\":[",
                  balance_name(opt.balance.kind), cs.ejected.load(std::memory_order_relaxed),
                  cs.unhealthy.load(std::memory_order_relaxed));
    out += num;
    for (uint32_t k = 0; k < cl.size; ++k) {
      const uint32_t i = cl.first + k;
      upstream::HostState& h = traffic_.host(i);
      const uint64_t until = h.ejected_until_ns.load(std::memory_order_acquire);
      if (k > 0) out += ',';
      out += "{\"address\":";
      core::append_json_string(out, clusters_.instance(i).authority);
      if (shared_.dns && shared_.dns->is_slot(i)) {  // a re-resolved name's slot (issue 14)
        const upstream::DnsAddress* a = shared_.dns->address(i);
        const bool present = h.present.load(std::memory_order_acquire) != 0;
        out += ",\"resolved\":";
        core::append_json_string(out, present && a != nullptr ? a->text : std::string_view{});
        out += present ? ",\"present\":true" : ",\"present\":false";
      }
      std::snprintf(num, sizeof num,
                    ",\"weight\":%u,\"healthy\":%s,\"ejected_for_ms\":%" PRIu64
                    ",\"in_flight\":%u,\"ewma_ms\":%.3f,\"consecutive_failures\":%u,",
                    clusters_.instance(i).weight, h.healthy.load(std::memory_order_relaxed) ? "true" : "false",
                    until > now_ns_ ? (until - now_ns_) / 1'000'000 : 0,
                    h.in_flight.load(std::memory_order_relaxed),
                    upstream::latency_ewma(h, now_ns_, opt.balance.ewma_decay_ns) / 1e6,
                    h.consecutive_failures.load(std::memory_order_relaxed));
      out += num;
      std::snprintf(num, sizeof num,
                    "\"ejections\":%u,\"attempts\":%" PRIu64 ",\"retries\":%" PRIu64
                    ",\"breaker_rejections\":%" PRIu64 "}",
                    h.ejection_count.load(std::memory_order_relaxed),
                    traffic_.counters(i).attempts.load(std::memory_order_relaxed),
                    traffic_.counters(i).retries.load(std::memory_order_relaxed),
                    traffic_.breaker(i).rejected.load(std::memory_order_relaxed));
      out += num;
    }
    out += "]}";
  }
  out += "]}\n";
}

// /metrics: one series per instance (process-wide state, so nothing to sum over workers).
void Worker::render_traffic_metrics(std::string& out) {
  if (shared_.dns && shared_.dns->active()) {  // the resolver thread's counters (issue 14)
    out.append("# HELP ringway_dns_lookups_total upstream host name lookups (re-resolution)\n"
               "# TYPE ringway_dns_lookups_total counter\nringway_dns_lookups_total ");
    out.append(std::to_string(shared_.dns->lookups())).append("\n");
    out.append("# HELP ringway_dns_failures_total lookups that failed or found no address (last good set kept)\n"
               "# TYPE ringway_dns_failures_total counter\nringway_dns_failures_total ");
    out.append(std::to_string(shared_.dns->failures())).append("\n");
  }
  struct Series {
    const char* name;
    const char* type;
    const char* help;
  };
  static constexpr Series kSeries[] = {
      {"ringway_upstream_instance_healthy", "gauge", "1 if active health checks pass (or are off)"},
      {"ringway_upstream_instance_ejected", "gauge", "1 while ejected by outlier detection"},
      {"ringway_upstream_instance_ejections_total", "counter", "outlier ejections"},
      {"ringway_upstream_instance_in_flight", "gauge", "requests in flight, all workers"},
      {"ringway_upstream_instance_attempts_total", "counter", "attempts begun, retries included"},
      {"ringway_upstream_instance_retries_total", "counter", "retries sent to this instance"},
      {"ringway_upstream_instance_retries_refused_total", "counter",
       "retries after a failure here refused by the retry budget"},
      {"ringway_upstream_instance_breaker_rejections_total", "counter",
       "requests refused by the circuit breaker (503)"},
  };
  for (size_t s = 0; s < std::size(kSeries); ++s) {
    out.append("# HELP ").append(kSeries[s].name).append(" ").append(kSeries[s].help).append("\n");
    out.append("# TYPE ").append(kSeries[s].name).append(" ").append(kSeries[s].type).append("\n");
    for (uint32_t ci = 0; ci < traffic_.cluster_count(); ++ci) {
      const upstream::Cluster& cl = clusters_.route(ci);
      const std::string label = cluster_label(ci);
      for (uint32_t i = cl.first; i < cl.first + cl.size; ++i) {
        upstream::HostState& h = traffic_.host(i);
        uint64_t v = 0;
        switch (s) {
          case 0: v = h.healthy.load(std::memory_order_relaxed); break;
          case 1: v = h.ejected_until_ns.load(std::memory_order_acquire) > now_ns_; break;
          case 2: v = h.ejection_count.load(std::memory_order_relaxed); break;
          case 3: v = h.in_flight.load(std::memory_order_relaxed); break;
          case 4: v = traffic_.counters(i).attempts.load(std::memory_order_relaxed); break;
          case 5: v = traffic_.counters(i).retries.load(std::memory_order_relaxed); break;
          case 6: v = traffic_.counters(i).retries_refused.load(std::memory_order_relaxed); break;
          default: v = traffic_.breaker(i).rejected.load(std::memory_order_relaxed); break;
        }
        out.append(kSeries[s].name).append("{route=\"");
        append_label(out, label);
        out.append("\",instance=\"");
        append_label(out, clusters_.instance(i).authority);
        // A name's slots share its authority: the slot number keeps the series apart.
        if (clusters_.instance(i).dns) out.append("#").append(std::to_string(clusters_.instance(i).dns_slot));
        out.append("\"} ").append(std::to_string(v)).append("\n");
      }
    }
  }
}

}  // namespace ringway::server
