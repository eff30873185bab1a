// Gateway metrics: one WorkerMetrics shard per worker, written only by that worker's thread with
// plain relaxed load+store (no locked read-modify-write on the hot path); any thread (the admin
// endpoint) may read every shard and sum them. The MetricsRegistry owns the shards, is built at
// start-up with a fixed shard count and the route labels, and outlives all workers.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringway::obs {

inline constexpr size_t kCacheLine = 64;

// Status classes 1xx..5xx, index = status / 100 - 1.
inline constexpr size_t kStatusClassCount = 5;

enum class UpstreamErrorKind : uint8_t {
  kConnectRefused,
  kConnectTimeout,
  kReset,
  kResponseTimeout,
  kProtocol,
};
inline constexpr size_t kUpstreamErrorKindCount = 5;

// TLS handshake failures on client connections (issue 13), by the stable reason tls::Session
// reports; "timeout" and "closed" (the client left mid-handshake) come from the engine. A reason
// not listed counts as "other" (the last).
inline constexpr std::array<const char*, 18> kTlsFailureReasons = {
    "no_shared_cipher", "protocol_version", "unknown_ca", "certificate_verify_failed", "expired",
    "hostname_mismatch", "no_client_certificate", "peer_unknown_ca", "peer_rejected_certificate",
    "peer_handshake_failure", "no_application_protocol", "renegotiation_refused", "http_request",
    "bad_record", "handshake_failed", "timeout", "closed", "other"};
inline constexpr size_t kTlsFailureReasonCount = kTlsFailureReasons.size();
size_t tls_failure_index(std::string_view reason);

enum class BodyDirection : uint8_t { kUpload, kDownload };  // upload: client -> upstream
enum class BodyMode : uint8_t { kSplice, kCopy };

// Index into a per-status-class array. Statuses outside 100..599 (never valid on the wire) count
// as 5xx so that no request goes uncounted.
constexpr size_t status_class_index(uint16_t status) {
  return (status >= 100 && status < 600) ? status / 100 - 1 : kStatusClassCount - 1;
}

// A counter with exactly one writer thread. add() is a relaxed load + relaxed store (a plain
// mov on x86), so readers on other threads see torn-free but possibly slightly stale values.
class SingleWriterCounter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t load() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Sums over all shards, as plain numbers. Built by MetricsRegistry::snapshot().
struct MetricsSnapshot {
  std::array<uint64_t, kStatusClassCount> requests{};
  std::vector<std::array<uint64_t, kStatusClassCount>> route_requests;  // by route index
  uint64_t unrouted_requests = 0;
  std::array<uint64_t, kUpstreamErrorKindCount> upstream_errors{};
  uint64_t downstream_opened = 0;
  uint64_t downstream_closed = 0;
  uint64_t downstream_open = 0;  // gauge
  uint64_t upstream_opened = 0;
  uint64_t upstream_reused = 0;
  uint64_t bytes_in = 0;   // downstream bytes received
  uint64_t bytes_out = 0;  // downstream bytes sent
  // [direction][mode]: BodyDirection x BodyMode.
  std::array<std::array<uint64_t, 2>, 2> body_bytes{};
  uint64_t rate_limited = 0;
  uint64_t auth_rejected = 0;
  uint64_t access_log_dropped = 0;  // lines not written because the log could not keep up
  uint64_t accept_paused = 0;       // accepting paused: the process ran out of descriptors
  std::array<uint64_t, 4> tls_handshakes{};  // [tls13 * 2 + resumed]
  std::array<uint64_t, kTlsFailureReasonCount> tls_failures{};
};

// One worker's counters. Every mutating method must be called from the owning worker only.
class alignas(kCacheLine) WorkerMetrics {
 public:
  explicit WorkerMetrics(size_t route_count);
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // One finished request. route < 0: no route matched (counted in both the totals and unrouted).
  // A route index >= route_count() is treated as unrouted.
  void count_request(int32_t route, uint16_t status) {
    const size_t cls = status_class_index(status);
    requests_[cls].add();
    if (route >= 0 && static_cast<size_t>(route) < route_count_) {
      routes_[route].by_class[cls].add();
    } else {
      unrouted_.add();
    }
  }
  void count_upstream_error(UpstreamErrorKind kind) {
    upstream_errors_[static_cast<size_t>(kind)].add();
  }
  void downstream_opened() { downstream_opened_.add(); }
  void downstream_closed() { downstream_closed_.add(); }
  void upstream_opened() { upstream_opened_.add(); }
  void upstream_reused() { upstream_reused_.add(); }
  void add_bytes_in(uint64_t n) { bytes_in_.add(n); }
  void add_bytes_out(uint64_t n) { bytes_out_.add(n); }
  void add_body_bytes(BodyDirection dir, BodyMode mode, uint64_t n) {
    body_bytes_[static_cast<size_t>(dir) * 2 + static_cast<size_t>(mode)].add(n);
  }
  void count_rate_limited() { rate_limited_.add(); }
  void count_auth_rejected() { auth_rejected_.add(); }
  void count_access_log_dropped() { access_log_dropped_.add(); }
  void count_accept_paused() { accept_paused_.add(); }
  void count_tls_handshake(bool tls13, bool resumed) { tls_handshakes_[tls13 * 2 + resumed].add(); }
  void count_tls_failure(std::string_view reason) { tls_failures_[tls_failure_index(reason)].add(); }

  size_t route_count() const { return route_count_; }

  // Adds this shard's values into out (out.route_requests must have route_count() entries).
  // Safe from any thread.
  void add_to(MetricsSnapshot& out) const;

 private:
  // Per-route counters get their own line each so that the array can be indexed directly.
  struct alignas(kCacheLine) RouteCounters {
    SingleWriterCounter by_class[kStatusClassCount];
  };

  SingleWriterCounter requests_[kStatusClassCount];
  SingleWriterCounter unrouted_;
  SingleWriterCounter upstream_errors_[kUpstreamErrorKindCount];
  SingleWriterCounter downstream_opened_;
  SingleWriterCounter downstream_closed_;
  SingleWriterCounter upstream_opened_;
  SingleWriterCounter upstream_reused_;
  SingleWriterCounter bytes_in_;
  SingleWriterCounter bytes_out_;
  SingleWriterCounter body_bytes_[4];
  SingleWriterCounter rate_limited_;
  SingleWriterCounter auth_rejected_;
  SingleWriterCounter access_log_dropped_;
  SingleWriterCounter accept_paused_;
  SingleWriterCounter tls_handshakes_[4];
  SingleWriterCounter tls_failures_[kTlsFailureReasonCount];
  size_t route_count_;
  std::unique_ptr<RouteCounters[]> routes_;
};

// Owns the shards. Construct before the workers start; shard(i) is handed to worker i.
class MetricsRegistry {
 public:
  // route_labels[i] is the label of route i (its prefix). Routes that share a label are summed
  // into one series, so the exposition never repeats a label set.
  MetricsRegistry(size_t shard_count, std::vector<std::string> route_labels);

  size_t shard_count() const { return shards_.size(); }
  WorkerMetrics& shard(size_t i) { return *shards_[i]; }
  const WorkerMetrics& shard(size_t i) const { return *shards_[i]; }

  // Sums all shards. Any thread; allocates.
  MetricsSnapshot snapshot() const;

  // Appends the Prometheus text exposition (format 0.0.4) of snapshot() to out. Any thread.
  void render_prometheus(std::string& out) const;

  // Process-level TLS series (the main thread reloads certificates on SIGHUP); rendered only once
  // enabled, when the gateway has TLS listeners.
  void enable_tls() { tls_ = true; }
  void count_tls_reload(bool ok) {
    (ok ? tls_reloads_ok_ : tls_reloads_failed_).fetch_add(1, std::memory_order_relaxed);
  }
  // Series a module renders itself (e.g. the Redis links' counters), appended after the rest.
  // Before the workers start; the function must be callable from any thread.
  void add_section(std::function<void(std::string&)> render) { sections_.push_back(std::move(render)); }

 private:
  std::vector<std::unique_ptr<WorkerMetrics>> shards_;
  std::vector<std::string> route_labels_;
  bool tls_ = false;
  std::atomic<uint64_t> tls_reloads_ok_{0};
  std::atomic<uint64_t> tls_reloads_failed_{0};
  std::vector<std::function<void(std::string&)>> sections_;
};

// Content-Type of render_prometheus() output.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace ringway::obs
