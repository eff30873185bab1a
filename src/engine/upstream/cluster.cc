#include "ringway/upstream/cluster.h"

namespace ringway::upstream {

Clusters::Clusters(const config::Config& cfg) {
  auto add = [&](const config::Target* targets, size_t n) {
    clusters_.push_back(Cluster{static_cast<uint32_t>(instances_.size()), static_cast<uint32_t>(n)});
    for (size_t i = 0; i < n; ++i) instances_.push_back(&targets[i]);
  };
  for (const config::Route& r : cfg.routes) add(r.targets.data(), r.targets.size());
  for (const config::Aggregate& a : cfg.aggregates) {
    leg_base_.push_back(static_cast<uint32_t>(clusters_.size()));
    for (const config::Target& t : a.targets) add(&t, 1);
  }
}

}  // namespace ringway::upstream
