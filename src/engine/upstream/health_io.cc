// Active health checks (issue 14) through the worker's own ring: every worker looks at the
// instances of clusters with "health_check" on each traffic tick, and whoever wins
// HealthChecker::claim_probe (a CAS on the instance's next_probe_ns) probes it, so an instance
// gets one probe per interval per process, not per worker. A probe is a fresh UpstreamConn from
// open_upstream (so it tests connecting too, and speaks TLS to https:// upstreams), reporting to
// the same five events as exchanges and legs: one GET of the check path with Connection: close;
// the response head's status decides, the connection is closed after it. A probe still
// unanswered at its timeout has failed. The verdict goes to HealthChecker::report_probe, whose
// thresholds flip the shared `healthy` bit that Traffic::pick reads.

#include "server/worker.h"

namespace ringway::server {

void Worker::init_health_checks() {
  // Per-try response timeouts (retries.per_try_timeout) are set up here too: one timer list per
  // route that has one, so arming stays O(1).
  try_timers_.resize(cfg_.routes.size());
  for (size_t r = 0; r < cfg_.routes.size(); ++r) {
    if (cfg_.routes[r].traffic.per_try_timeout_ms == 0) continue;
    try_timers_[r] = std::make_unique<core::TimerList>();
    try_timers_[r]->set_duration_ms(cfg_.routes[r].traffic.per_try_timeout_ms);
  }
  probes_.resize(clusters_.instances().size());
  for (uint32_t i = 0; i < probes_.size(); ++i) {
    probes_[i].instance = i;
    const uint32_t ci = traffic_.cluster_of(i);
    if (ci != upstream::Traffic::kNone && traffic_.options(ci).health_checks) health_checks_ = true;
  }
}

void Worker::run_health_checks() {
  for (upstream::HealthProbe& p : probes_) {
    if (p.active) {
      if (draining_ || now_ns_ >= p.deadline_ns) finish_probe(p, false);
      continue;
    }
    if (draining_) continue;
    const uint32_t ci = traffic_.cluster_of(p.instance);
    const upstream::TrafficOptions& opt = traffic_.options(ci);
    if (!opt.health_checks) continue;
    // An empty DNS slot has no address to probe (issue 14): it is not picked either.
    if (traffic_.host(p.instance).present.load(std::memory_order_relaxed) == 0) continue;
    if (upstream::HealthChecker::claim_probe(opt.health, traffic_.host(p.instance), now_ns_)) start_probe(p);
  }
}

void Worker::start_probe(upstream::HealthProbe& p) {
  const upstream::TrafficOptions& opt = traffic_.options(traffic_.cluster_of(p.instance));
  p.active = true;
  p.deadline_ns = now_ns_ + opt.health.timeout_ns;
  bool reused = false;
  UpstreamConn* u = open_upstream(p.instance, false, reused);
  if (u == nullptr) {
    finish_probe(p, false);
    return;
  }
  u->probe = &p;
  p.up = u;
}

void Worker::send_probe(upstream::HealthProbe& p) {
  UpstreamConn& u = *p.up;
  const config::Target& t = clusters_.instance(p.instance);
  // The check path is the instance's own (absolute, like Envoy's), not under the URL's base path.
  u.out.clear();
  u.out.append("GET ").append(traffic_.options(traffic_.cluster_of(p.instance)).check_path);
  u.out.append(" HTTP/1.1\r\nHost: ");
  u.out.append(t.authority).append("\r\nUser-Agent: ringway-health-check\r\nConnection: close\r\n\r\n");
  u.send.hold[0] = net::Buf{u.out.data(), 0, static_cast<uint32_t>(u.out.size()), -1, false};
  u.send.count = 1;
  if (!u.recv_armed) arm_up_recv(u);
  up_send(u);
}

void Worker::on_probe_data(upstream::HealthProbe& p) {
  UpstreamConn& u = *p.up;
  for (;;) {
    const size_t end = http::find_head_end(u.in.begin(), u.in.len);
    if (end == 0) {
      if (u.in.len >= cfg_.max_head_bytes) {
        finish_probe(p, false);
        return;
      }
      arm_up_recv(u);
      return;
    }
    http::Response resp;
    if (u.parser->parse_head(u.in.begin(), end, false, resp) != http::ParseStatus::kDone) {
      finish_probe(p, false);
      return;
    }
    buffers_.consume(u.in, static_cast<uint32_t>(end));
    if (resp.status >= 200) {
      const upstream::TrafficOptions& opt = traffic_.options(traffic_.cluster_of(p.instance));
      finish_probe(p, upstream::HealthChecker::expected(opt.health, resp.status));
      return;
    }
    if (u.in.empty()) {  // an interim head: the final one follows
      arm_up_recv(u);
      return;
    }
  }
}

void Worker::finish_probe(upstream::HealthProbe& p, bool passed) {
  if (!p.active) return;
  p.active = false;
  if (p.up != nullptr) release_upstream(p.up, false);  // Connection: close; never pooled
  const uint32_t ci = traffic_.cluster_of(p.instance);
  upstream::HealthChecker::report_probe(traffic_.options(ci).health, traffic_.host(p.instance),
                                        traffic_.cluster_state(ci), passed, now_ns_);
}

}  // namespace ringway::server
