#include "ringway/obs/metrics.h"

#include <charconv>
#include <string_view>
#include <utility>

namespace ringway::obs {

namespace {

constexpr std::string_view kClassNames[kStatusClassCount] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr std::string_view kErrorNames[kUpstreamErrorKindCount] = {
    "connect_refused", "connect_timeout", "reset", "response_timeout", "protocol"};

void append_u64(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

// Label values in the text format escape backslash, double quote and line feed (and nothing
// else), per the Prometheus exposition format 0.0.4.
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ringway_";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ringway_";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// One sample; labels is the already-rendered text between the braces (may be empty).
void sample(std::string& out, std::string_view name, std::string_view labels, uint64_t v) {
  out += "ringway_";
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  append_u64(out, v);
  out += '\n';
}

void simple(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            uint64_t v) {
  header(out, name, type, help);
  sample(out, name, {}, v);
}

}  // namespace

WorkerMetrics::WorkerMetrics(size_t route_count)
    : route_count_(route_count), routes_(std::make_unique<RouteCounters[]>(route_count)) {}

void WorkerMetrics::add_to(MetricsSnapshot& out) const {
  for (size_t c = 0; c < kStatusClassCount; ++c) out.requests[c] += requests_[c].load();
  for (size_t r = 0; r < route_count_ && r < out.route_requests.size(); ++r) {
    for (size_t c = 0; c < kStatusClassCount; ++c) {
      out.route_requests[r][c] += routes_[r].by_class[c].load();
    }
  }
  out.unrouted_requests += unrouted_.load();
  for (size_t k = 0; k < kUpstreamErrorKindCount; ++k) {
    out.upstream_errors[k] += upstream_errors_[k].load();
  }
  // Closed is read before opened: opened only grows and never trails closed, so the difference
  // can be stale but never negative.
  const uint64_t closed = downstream_closed_.load();
  const uint64_t opened = downstream_opened_.load();
  out.downstream_closed += closed;
  out.downstream_opened += opened;
  out.downstream_open += opened >= closed ? opened - closed : 0;
  out.upstream_opened += upstream_opened_.load();
  out.upstream_reused += upstream_reused_.load();
  out.bytes_in += bytes_in_.load();
  out.bytes_out += bytes_out_.load();
  for (size_t d = 0; d < 2; ++d) {
    for (size_t m = 0; m < 2; ++m) out.body_bytes[d][m] += body_bytes_[d * 2 + m].load();
  }
  out.rate_limited += rate_limited_.load();
  out.auth_rejected += auth_rejected_.load();
  out.access_log_dropped += access_log_dropped_.load();
  out.accept_paused += accept_paused_.load();
  for (size_t i = 0; i < 4; ++i) out.tls_handshakes[i] += tls_handshakes_[i].load();
  for (size_t i = 0; i < kTlsFailureReasonCount; ++i) out.tls_failures[i] += tls_failures_[i].load();
}

MetricsRegistry::MetricsRegistry(size_t shard_count, std::vector<std::string> route_labels)
    : route_labels_(std::move(route_labels)) {
  shards_.reserve(shard_count);
  for (size_t i = 0; i < shard_count; ++i) {
    shards_.push_back(std::make_unique<WorkerMetrics>(route_labels_.size()));
  }
}

MetricsSnapshot MetricsRegistry::snapshot() const {
  MetricsSnapshot s;
  s.route_requests.resize(route_labels_.size());
  for (const auto& shard : shards_) shard->add_to(s);
  return s;
}

void MetricsRegistry::render_prometheus(std::string& out) const {
  const MetricsSnapshot s = snapshot();
  std::string labels;

  header(out, "requests_total", "counter", "Requests answered, by status class.");
  for (size_t c = 0; c < kStatusClassCount; ++c) {
    labels.assign("code=\"").append(kClassNames[c]).append("\"");
    sample(out, "requests_total", labels, s.requests[c]);
  }

  header(out, "route_requests_total", "counter", "Requests answered per route, by status class.");
  // Routes sharing a prefix (e.g. split by host or method) are one series: a label set may
  // appear only once in an exposition. First occurrence fixes the output order.
  std::vector<bool> done(route_labels_.size(), false);
  for (size_t r = 0; r < route_labels_.size(); ++r) {
    if (done[r]) continue;
    std::array<uint64_t, kStatusClassCount> sum = s.route_requests[r];
    for (size_t o = r + 1; o < route_labels_.size(); ++o) {
      if (!done[o] && route_labels_[o] == route_labels_[r]) {
        done[o] = true;
        for (size_t c = 0; c < kStatusClassCount; ++c) sum[c] += s.route_requests[o][c];
      }
    }
    for (size_t c = 0; c < kStatusClassCount; ++c) {
      labels.assign("route=\"");
      append_label_value(labels, route_labels_[r]);
      labels.append("\",code=\"").append(kClassNames[c]).append("\"");
      sample(out, "route_requests_total", labels, sum[c]);
    }
  }

  simple(out, "unrouted_requests_total", "counter", "Requests that matched no route.",
         s.unrouted_requests);

  header(out, "upstream_errors_total", "counter", "Upstream failures, by kind.");
  for (size_t k = 0; k < kUpstreamErrorKindCount; ++k) {
    labels.assign("kind=\"").append(kErrorNames[k]).append("\"");
    sample(out, "upstream_errors_total", labels, s.upstream_errors[k]);
  }

  simple(out, "downstream_connections_opened_total", "counter",
         "Client connections accepted.", s.downstream_opened);
  simple(out, "downstream_connections_closed_total", "counter", "Client connections closed.",
         s.downstream_closed);
  simple(out, "downstream_connections_open", "gauge", "Client connections currently open.",
         s.downstream_open);
  simple(out, "upstream_connections_opened_total", "counter",
         "Upstream connections established.", s.upstream_opened);
  simple(out, "upstream_connections_reused_total", "counter",
         "Requests sent on a pooled upstream connection.", s.upstream_reused);

  header(out, "bytes_total", "counter", "Bytes received from and sent to clients.");
  sample(out, "bytes_total", "direction=\"in\"", s.bytes_in);
  sample(out, "bytes_total", "direction=\"out\"", s.bytes_out);

  header(out, "body_bytes_total", "counter",
         "Message body bytes relayed, by direction and by splice or copy.");
  constexpr std::string_view kDir[2] = {"upload", "download"};
  constexpr std::string_view kMode[2] = {"splice", "copy"};
  for (size_t d = 0; d < 2; ++d) {
    for (size_t m = 0; m < 2; ++m) {
      labels.assign("direction=\"").append(kDir[d]).append("\",mode=\"").append(kMode[m]).append("\"");
      sample(out, "body_bytes_total", labels, s.body_bytes[d][m]);
    }
  }

  simple(out, "rate_limited_total", "counter", "Requests rejected by a rate limit.",
         s.rate_limited);
  simple(out, "auth_rejected_total", "counter", "Requests rejected by authentication.",
         s.auth_rejected);
  simple(out, "access_log_dropped_total", "counter",
         "Access log lines dropped because the log could not keep up (the loop never blocks on it).",
         s.access_log_dropped);
  simple(out, "accept_paused_total", "counter",
         "Times accepting paused because the process ran out of file descriptors (EMFILE/ENFILE).",
         s.accept_paused);
  if (tls_) {
    header(out, "tls_certificate_reloads_total", "counter",
           "Certificate reloads (SIGHUP): ok, or failed and the old certificates kept.");
    sample(out, "tls_certificate_reloads_total", "result=\"ok\"", tls_reloads_ok_.load(std::memory_order_relaxed));
    sample(out, "tls_certificate_reloads_total", "result=\"failed\"",
           tls_reloads_failed_.load(std::memory_order_relaxed));
    header(out, "tls_handshakes_total", "counter", "Completed TLS handshakes with clients.");
    for (size_t i = 0; i < 4; ++i) {
      const std::string labels = std::string("version=\"") + (i >= 2 ? "TLSv1.3" : "TLSv1.2") +
                                 "\",resumed=\"" + (i % 2 == 1 ? "true" : "false") + "\"";
      sample(out, "tls_handshakes_total", labels.c_str(), s.tls_handshakes[i]);
    }
    header(out, "tls_handshake_failures_total", "counter",
           "TLS handshakes with clients that failed, by reason.");
    for (size_t i = 0; i < kTlsFailureReasonCount; ++i) {
      const std::string labels = std::string("reason=\"") + kTlsFailureReasons[i] + "\"";
      sample(out, "tls_handshake_failures_total", labels.c_str(), s.tls_failures[i]);
    }
  }
  for (const auto& render : sections_) render(out);
}

size_t tls_failure_index(std::string_view reason) {
  for (size_t i = 0; i + 1 < kTlsFailureReasonCount; ++i) {
    if (reason == kTlsFailureReasons[i]) return i;
  }
  return kTlsFailureReasonCount - 1;
}

}  // namespace ringway::obs
