// The process-wide traffic state of a Clusters table (issue 14), for the engine to wire in: per
// instance a HostState and CircuitCounters, per cluster a ClusterState, a Balancer and a
// RetryBudget. Built once at start-up after Clusters (same instance and cluster numbering), owned
// by the server, shared by every worker for the life of the config snapshot; never resized, so
// workers hold plain references. Workers keep their own cursors (one per cluster) and Rng.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <span>
#include <string>
#include <vector>

#include "ringway/upstream/balancer.h"
#include "ringway/upstream/circuit.h"
#include "ringway/upstream/cluster.h"
#include "ringway/upstream/health_check.h"
#include "ringway/upstream/host_state.h"
#include "ringway/upstream/outlier.h"
#include "ringway/upstream/retry.h"

namespace ringway::upstream {

// Settings applied to every cluster until routes carry their own (the config rows are the
// lead's to add; per-cluster overrides go through the constructor's `per_cluster`).
struct TrafficOptions {
  BalancerOptions balance;
  OutlierConfig outlier;
  HealthCheckConfig health;
  bool health_checks = false;  // active checks on (else claim_probe is never due)
  std::string check_path = "/healthz";  // what a probe GETs (src/engine/upstream/health_io.cc)
  CircuitLimits limits;
  RetryPolicy retry;
  uint32_t retry_budget_percent = 20;
  uint32_t retry_budget_min = 3;
};

class Traffic;

// Per-instance counters for /metrics beside HostState and CircuitCounters (process-wide).
struct alignas(64) InstanceCounters {
  std::atomic<uint64_t> attempts{0};         // attempts begun (first tries and retries)
  std::atomic<uint64_t> retries{0};          // retries sent to this instance
  std::atomic<uint64_t> retries_refused{0};  // retries after a failure here the budget refused
};

// A cluster's settings from its route's (or aggregate endpoint's) config keys; default_balance is
// --balance, for routes that do not say.
TrafficOptions traffic_options(const config::TrafficSettings& t, std::string_view default_balance);
// The process's Traffic for cfg, in clusters' numbering (routes, then every aggregate backend).
std::unique_ptr<Traffic> build_traffic(const Clusters& clusters, const config::Config& cfg);

class Traffic {
 public:
  static constexpr uint32_t kNone = Balancer::kNone;

  // per_cluster: empty, or one TrafficOptions per cluster of `clusters` (index as Clusters).
  // Ring keys are the instances' authorities ("host:port").
  Traffic(const Clusters& clusters, const TrafficOptions& defaults,
          std::span<const TrafficOptions> per_cluster = {});

  // The instance (global index, as Clusters::instances()) for a request to cluster c, or kNone
  // (no instance, or a retry whose only instance is excluded). in.exclude is a global index too.
  uint32_t pick(const Cluster& c, PickInput in, uint32_t& cursor, Rng& rng) const;

  // An attempt to instance i begins: false (and nothing taken) when its breaker is at the
  // request limit, which the caller answers with 503. Else pair with end_attempt.
  bool begin_attempt(uint32_t i);
  void end_attempt(uint32_t i);
  // How an attempt ended, for passive health and the EWMA: success (a response that is not
  // 5xx) with its latency, or a failure (connect failure, reset, 5xx). Returns true if this
  // failure ejected the instance.
  void report_success(uint32_t i, uint64_t latency_ns, uint64_t now_ns);
  bool report_failure(uint32_t i, uint64_t now_ns);

  HostState& host(uint32_t i) { return hosts_[i]; }
  CircuitCounters& breaker(uint32_t i) { return breakers_[i]; }
  InstanceCounters& counters(uint32_t i) { return counters_[i]; }
  uint32_t cluster_of(uint32_t i) const { return cluster_of_[i]; }
  ClusterState& cluster_state(uint32_t ci) { return *cluster_states_[ci]; }
  const Balancer& balancer(uint32_t ci) const { return *balancers_[ci]; }
  RetryBudget& retry_budget(uint32_t ci) { return *budgets_[ci]; }
  const TrafficOptions& options(uint32_t ci) const { return options_[ci]; }
  size_t instance_count() const { return hosts_.size(); }
  size_t cluster_count() const { return balancers_.size(); }

 private:
  std::vector<HostState> hosts_;             // per instance; never resized
  std::vector<CircuitCounters> breakers_;    // per instance; never resized
  std::vector<InstanceCounters> counters_;   // per instance; never resized
  std::vector<uint32_t> cluster_of_;         // instance -> cluster index
  std::vector<std::unique_ptr<ClusterState>> cluster_states_;
  std::vector<std::unique_ptr<Balancer>> balancers_;
  std::vector<std::unique_ptr<RetryBudget>> budgets_;
  std::vector<TrafficOptions> options_;      // per cluster
};

}  // namespace ringway::upstream
