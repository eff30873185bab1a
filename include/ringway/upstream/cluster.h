// Where requests go: every upstream instance of the config in one table (pools and health are
// per instance), grouped into clusters: one per route, one per aggregate backend. Built once at
// start-up and shared read-only by the workers. Picking an instance is upstream::Traffic's
// (traffic.h: balancer, host state, breakers over the same numbering).
#pragma once

#include <cstdint>
#include <vector>

#include "ringway/config/config.h"

namespace ringway::upstream {

struct Cluster {
  uint32_t first = 0;  // its first instance in Clusters::instances()
  uint32_t size = 0;
};

class Clusters {
 public:
  explicit Clusters(const config::Config& cfg);  // keeps pointers into cfg

  // Every instance; an instance index names a pool and (later) a health record.
  const std::vector<const config::Target*>& instances() const { return instances_; }
  const config::Target& instance(uint32_t i) const { return *instances_[i]; }

  const Cluster& route(uint32_t route_index) const { return clusters_[route_index]; }
  // The k-th backend of aggregate endpoint a.
  const Cluster& leg(uint32_t aggregate_index, uint32_t k) const {
    return clusters_[leg_base_[aggregate_index] + k];
  }
  size_t cluster_count() const { return clusters_.size(); }

 private:
  std::vector<const config::Target*> instances_;
  std::vector<Cluster> clusters_;   // routes first, then every aggregate backend
  std::vector<uint32_t> leg_base_;  // aggregate index -> its first backend's cluster
};

}  // namespace ringway::upstream
