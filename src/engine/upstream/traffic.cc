// Traffic: builds the shared records in Clusters' numbering and routes each event to the rule
// that owns it (balancer, breaker, outlier, EWMA); the rules themselves live in their own files.
#include "ringway/upstream/traffic.h"

#include <string_view>

namespace ringway::upstream {

Traffic::Traffic(const Clusters& clusters, const TrafficOptions& defaults,
                 std::span<const TrafficOptions> per_cluster)
    : hosts_(clusters.instances().size()),
      breakers_(clusters.instances().size()),
      cluster_of_(clusters.instances().size(), kNone) {
  const size_t n = clusters.cluster_count();
  // Clusters numbers routes first, then aggregate backends; route(i) for i < n reaches every
  // cluster in that order (Clusters::route indexes the one table).
  for (size_t ci = 0; ci < n; ++ci) {
    const Cluster& c = clusters.route(static_cast<uint32_t>(ci));
    const TrafficOptions& opt = ci < per_cluster.size() ? per_cluster[ci] : defaults;
    options_.push_back(opt);
    auto state = std::make_unique<ClusterState>();
    state->size = c.size;
    std::vector<std::string_view> keys;
    for (uint32_t k = 0; k < c.size; ++k) {
      cluster_of_[c.first + k] = static_cast<uint32_t>(ci);
      keys.push_back(clusters.instance(c.first + k).authority);
    }
    balancers_.push_back(std::make_unique<Balancer>(
        opt.balance, std::span<HostState>(hosts_.data() + c.first, c.size), *state,
        std::span<const uint32_t>{}, keys));
    cluster_states_.push_back(std::move(state));
    budgets_.push_back(std::make_unique<RetryBudget>(opt.retry_budget_percent, opt.retry_budget_min));
  }
  // Without active checks no probe is ever due.
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (cluster_of_[i] != kNone && !options_[cluster_of_[i]].health_checks) {
      hosts_[i].next_probe_ns.store(UINT64_MAX, std::memory_order_relaxed);
    }
  }
}

uint32_t Traffic::pick(const Cluster& c, PickInput in, uint32_t& cursor, Rng& rng) const {
  if (c.size == 0) return kNone;
  const uint32_t ci = cluster_of_[c.first];
  if (in.exclude != kNone) in.exclude = in.exclude - c.first;  // to the balancer's local index
  const uint32_t local = balancers_[ci]->pick(in, cursor, rng);
  return local == kNone ? kNone : c.first + local;
}

bool Traffic::begin_attempt(uint32_t i) {
  if (!try_acquire(breakers_[i], options_[cluster_of_[i]].limits, CircuitResource::kRequest)) {
    return false;
  }
  request_started(hosts_[i]);
  return true;
}

void Traffic::end_attempt(uint32_t i) {
  request_finished(hosts_[i]);
  release(breakers_[i], CircuitResource::kRequest);
}

void Traffic::report_success(uint32_t i, uint64_t latency_ns, uint64_t now_ns) {
  const TrafficOptions& opt = options_[cluster_of_[i]];
  record_latency(hosts_[i], latency_ns, now_ns, opt.balance.ewma_decay_ns);
  Outlier::report_success(hosts_[i]);
}

bool Traffic::report_failure(uint32_t i, uint64_t now_ns) {
  const uint32_t ci = cluster_of_[i];
  return Outlier::report_failure(options_[ci].outlier, hosts_[i], *cluster_states_[ci], now_ns);
}

}  // namespace ringway::upstream
