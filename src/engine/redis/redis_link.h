// One worker's pipelined connection to Redis for cluster-scoped rate limits (issue 15): TCP or a
// unix socket, driven by the worker's own io_uring (connect, send, receive, one timeout), speaking
// RESP through rate_limit::RedisLeaseCodec (hiredis' reader as a codec, no hiredis I/O). Owned by
// its Worker, used on that worker's thread only; it outlives the worker's filters' use of it.
// Reconnects with backoff; a request older than the lease lifetime drops the connection.
#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "filter/rate_limit/cluster_lease.h"
#include "ringway/config/config.h"
#include "ringway/filter/lease_channel.h"
#include "ringway/ring/loop.h"

namespace ringway::redis {

namespace rate_limit = filter::rate_limit;

class RedisLink final : public filter::LeaseChannel {
 public:
  // The Op codes (server/worker.h) its completions carry.
  struct Ops {
    uint8_t connect, send, recv, timer, cancel;
  };
  RedisLink(ring::Loop& loop, const config::Config& cfg, filter::RedisStats& stats, Ops ops);
  ~RedisLink() override;
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void start(uint64_t now_ns);  // connects
  // A completion of one of its ops; gen names the connection it was for (stale ones are dropped).
  void on_completion(uint8_t op, uint32_t gen, int res, uint64_t now_ns);

  // filter::LeaseChannel
  bool up(uint64_t now_ns) const override;
  bool take(filter::LeaseListener* listener, uint64_t tag, std::string_view key, uint64_t interval_ns,
            uint64_t tau_ns, uint32_t want, uint64_t now_ns) override;
  void give(std::string_view key, uint64_t interval_ns, uint64_t tau_ns, uint64_t stamp, uint32_t n,
            uint64_t now_ns) override;
  filter::RedisStats& stats() override { return stats_; }

 private:
  void connect(uint64_t now_ns);
  // Drops the connection: every outstanding request is answered "lost". down: Redis counts as
  // down until a reply arrives on a later connection (else a reconnect is tried at once).
  void fail(bool down, uint64_t now_ns);
  void flush();
  void arm_recv();
  void arm_timer(uint64_t now_ns);
  void tick(uint64_t now_ns);
  void deliver(uint64_t now_ns);

  ring::Loop& loop_;
  filter::RedisStats& stats_;
  Ops ops_;
  rate_limit::RedisLeaseCodec codec_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::string name_;              // for log lines
  int fd_ = -1;
  uint32_t gen_ = 1;
  bool connecting_ = false;
  bool connected_ = false;
  bool down_ = false;             // a failure since the last good reply
  bool sending_ = false;
  bool recv_armed_ = false;
  bool timer_armed_ = false;
  bool logged_down_ = false;
  bool auth_failed_ = false;      // AUTH refused: drop the connection once the replies are out
  rate_limit::RedisErrorKind last_error_ = rate_limit::RedisErrorKind::kNone;  // last one logged
  uint64_t connect_started_ns_ = 0;
  uint64_t reconnect_at_ns_ = 0;
  uint64_t backoff_ns_ = 0;
  std::string send_buf_;          // bytes handed to the kernel (the codec's buffer may move)
  size_t send_off_ = 0;
  std::unique_ptr<char[]> recv_buf_;
  __kernel_timespec timer_ts_{};
  struct Asker {
    filter::LeaseListener* listener;
    uint64_t tag;
    uint64_t queued_ns;
  };
  std::unordered_map<uint64_t, Asker> askers_;  // codec request id -> who asked
};

// Appends the ringway_redis_* series (Prometheus text) of stats.
void render_redis_stats(const filter::RedisStats& stats, std::string& out);

}  // namespace ringway::redis
