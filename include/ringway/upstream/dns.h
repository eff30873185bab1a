// Re-resolution of upstream host names (issue 14): routes with dns_refresh turn each name into a
// fixed number of instance slots (config::Target::dns); one resolver thread per process, owned by
// the server, runs c-ares and publishes each slot's address and presence. Workers only read:
// an atomic pointer to an immutable DnsAddress (never freed while the process runs, so a worker
// holding an old one is safe) and HostState::present, which the balancer already checks.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringway/config/config.h"
#include "ringway/upstream/cluster.h"
#include "ringway/upstream/host_state.h"

namespace ringway::upstream {

class Traffic;

// One answer for one slot. A slot whose address changes gets a new DnsAddress, so its pointer is
// the slot's generation: a pooled connection opened to another pointer is closed, not reused.
struct DnsAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;  // "127.0.0.2:8080" for /upstreams
};

class Dns {
 public:
  // Finds the dns slots of clusters (consecutive per name) and starts them all absent except the
  // start-time answer, if the name resolved at load.
  Dns(const Clusters& clusters, const config::Config& cfg, Traffic& traffic);
  ~Dns();
  bool active() const { return !names_.empty(); }

  // Resolves every name once (bounded by c-ares' timeouts), then re-resolves on a thread.
  // False with error when c-ares cannot start.
  bool start(std::string& error);
  void stop();

  // Worker side: the slot's current address, or nullptr for an instance that is not a slot (use
  // its Target's address) or a slot never filled (not picked: it is not present).
  const DnsAddress* address(uint32_t instance) const {
    return slots_[instance].load(std::memory_order_acquire);
  }
  bool is_slot(uint32_t instance) const { return is_slot_[instance]; }
  uint64_t lookups() const { return lookups_.load(std::memory_order_relaxed); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

  struct Name {
    std::string host;
    uint16_t port = 0;
    uint32_t first = 0;  // first slot (instance index)
    uint32_t count = 0;
    uint32_t interval_ms = 0;
    uint64_t next_ns = 0;
    bool failing = false;
    bool pending = false;
  };
  const std::vector<Name>& names() const { return names_; }
  // Resolver thread: a lookup of n ended with these addresses (port set) and TTL (0: unknown).
  void apply(Name& n, const std::vector<DnsAddress>& found, uint32_t ttl_s, const char* failure);

 private:
  void run();
  bool resolve_round(bool all);

  const config::Config& cfg_;
  Traffic& traffic_;
  std::unique_ptr<std::atomic<const DnsAddress*>[]> slots_;
  std::vector<bool> is_slot_;
  std::vector<Name> names_;
  std::deque<DnsAddress> store_;  // every address ever published; resolver thread appends only
  std::atomic<uint64_t> lookups_{0};
  std::atomic<uint64_t> failures_{0};
  void* channel_ = nullptr;  // ares_channel
  std::thread thread_;
  std::mutex mu_;  // only for the stop wait, never on the request path
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> stopping_{false};  // stop_ for the c-ares loop, which holds no lock
};

}  // namespace ringway::upstream
