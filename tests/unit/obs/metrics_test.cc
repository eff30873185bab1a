#include "ringway/obs/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace ringway::obs {
namespace {

TEST(Metrics, StatusClassIndex) {
  EXPECT_EQ(status_class_index(100), 0u);
  EXPECT_EQ(status_class_index(199), 0u);
  EXPECT_EQ(status_class_index(200), 1u);
  EXPECT_EQ(status_class_index(404), 3u);
  EXPECT_EQ(status_class_index(599), 4u);
  EXPECT_EQ(status_class_index(0), 4u);
  EXPECT_EQ(status_class_index(600), 4u);
}

TEST(Metrics, SnapshotSumsShards) {
  MetricsRegistry reg(3, {"/a/", "/b/"});
  ASSERT_EQ(reg.shard_count(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    WorkerMetrics& m = reg.shard(i);
    for (size_t k = 0; k <= i; ++k) m.count_request(0, 200);
    m.count_request(1, 500);
    m.count_request(-1, 404);
    m.count_upstream_error(UpstreamErrorKind::kResponseTimeout);
    m.downstream_opened();
    m.add_bytes_in(10 * (i + 1));
    m.add_body_bytes(BodyDirection::kDownload, BodyMode::kCopy, 3);
  }
  reg.shard(2).downstream_closed();
  const MetricsSnapshot s = reg.snapshot();
  EXPECT_EQ(s.requests[1], 6u);  // 1 + 2 + 3
  EXPECT_EQ(s.requests[4], 3u);
  EXPECT_EQ(s.requests[3], 3u);
  ASSERT_EQ(s.route_requests.size(), 2u);
  EXPECT_EQ(s.route_requests[0][1], 6u);
  EXPECT_EQ(s.route_requests[1][4], 3u);
  EXPECT_EQ(s.route_requests[1][1], 0u);
  EXPECT_EQ(s.unrouted_requests, 3u);
  EXPECT_EQ(s.upstream_errors[static_cast<size_t>(UpstreamErrorKind::kResponseTimeout)], 3u);
  EXPECT_EQ(s.upstream_errors[static_cast<size_t>(UpstreamErrorKind::kReset)], 0u);
  EXPECT_EQ(s.downstream_opened, 3u);
  EXPECT_EQ(s.downstream_closed, 1u);
  EXPECT_EQ(s.downstream_open, 2u);
  EXPECT_EQ(s.bytes_in, 60u);
  EXPECT_EQ(s.body_bytes[1][1], 9u);
  EXPECT_EQ(s.body_bytes[0][0], 0u);
}

TEST(Metrics, ShardsAreCacheLineAligned) {
  MetricsRegistry reg(4, {"/x/"});
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(&reg.shard(i)) % kCacheLine, 0u);
  }
  EXPECT_EQ(alignof(WorkerMetrics), kCacheLine);
}

// Writers on their own threads, a reader summing concurrently: totals are exact at the end.
TEST(Metrics, ConcurrentWritersOneShardEach) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  MetricsRegistry reg(kThreads, {"/r/"});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&reg, t] {
      WorkerMetrics& m = reg.shard(static_cast<size_t>(t));
      for (int i = 0; i < kPerThread; ++i) {
        m.count_request(0, 200);
        m.add_bytes_out(2);
      }
    });
  }
  std::string text;
  for (int i = 0; i < 10; ++i) {
    text.clear();
    reg.render_prometheus(text);  // concurrent reads must be safe (run under TSan to check)
  }
  for (auto& th : threads) th.join();
  const MetricsSnapshot s = reg.snapshot();
  EXPECT_EQ(s.requests[1], uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.route_requests[0][1], uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.bytes_out, uint64_t{kThreads} * kPerThread * 2);
}

TEST(Metrics, PrometheusTextExact) {
  MetricsRegistry reg(2, {"/api/users/", "/x\"y\\z\n"});
  WorkerMetrics& a = reg.shard(0);
  WorkerMetrics& b = reg.shard(1);
  a.count_request(0, 200);
  a.count_request(0, 201);
  a.count_request(1, 404);
  a.count_request(-1, 404);
  a.count_upstream_error(UpstreamErrorKind::kReset);
  a.downstream_opened();
  a.downstream_opened();
  a.downstream_closed();
  a.upstream_opened();
  a.add_bytes_in(100);
  a.add_bytes_out(200);
  a.add_body_bytes(BodyDirection::kDownload, BodyMode::kSplice, 1000);
  b.count_request(0, 503);
  b.count_request(5, 100);  // no such route: unrouted
  b.count_request(-1, 0);   // out of range status: 5xx
  b.count_upstream_error(UpstreamErrorKind::kConnectRefused);
  b.downstream_opened();
  b.upstream_reused();
  b.upstream_reused();
  b.upstream_reused();
  b.add_bytes_in(5);
  b.add_body_bytes(BodyDirection::kUpload, BodyMode::kCopy, 7);
  b.count_rate_limited();
  b.count_auth_rejected();
  b.count_auth_rejected();
  b.count_access_log_dropped();
  b.count_accept_paused();
  b.count_accept_paused();

  std::string out = "prefix\n";  // render appends
  reg.render_prometheus(out);
  const std::string expected =
      "prefix\n"
      "# HELP ringway_requests_total Requests answered, by status class.\n"
      "# TYPE ringway_requests_total counter\n"
      "ringway_requests_total{code=\"1xx\"} 1\n"
      "ringway_requests_total{code=\"2xx\"} 2\n"
      "ringway_requests_total{code=\"3xx\"} 0\n"
      "ringway_requests_total{code=\"4xx\"} 2\n"
      "ringway_requests_total{code=\"5xx\"} 2\n"
      "# HELP ringway_route_requests_total Requests answered per route, by status class.\n"
      "# TYPE ringway_route_requests_total counter\n"
      "ringway_route_requests_total{route=\"/api/users/\",code=\"1xx\"} 0\n"
      "ringway_route_requests_total{route=\"/api/users/\",code=\"2xx\"} 2\n"
      "ringway_route_requests_total{route=\"/api/users/\",code=\"3xx\"} 0\n"
      "ringway_route_requests_total{route=\"/api/users/\",code=\"4xx\"} 0\n"
      "ringway_route_requests_total{route=\"/api/users/\",code=\"5xx\"} 1\n"
      "ringway_route_requests_total{route=\"/x\\\"y\\\\z\\n\",code=\"1xx\"} 0\n"
      "ringway_route_requests_total{route=\"/x\\\"y\\\\z\\n\",code=\"2xx\"} 0\n"
      "ringway_route_requests_total{route=\"/x\\\"y\\\\z\\n\",code=\"3xx\"} 0\n"
      "ringway_route_requests_total{route=\"/x\\\"y\\\\z\\n\",code=\"4xx\"} 1\n"
      "ringway_route_requests_total{route=\"/x\\\"y\\\\z\\n\",code=\"5xx\"} 0\n"
      "# HELP ringway_unrouted_requests_total Requests that matched no route.\n"
      "# TYPE ringway_unrouted_requests_total counter\n"
      "ringway_unrouted_requests_total 3\n"
      "# HELP ringway_upstream_errors_total Upstream failures, by kind.\n"
      "# TYPE ringway_upstream_errors_total counter\n"
      "ringway_upstream_errors_total{kind=\"connect_refused\"} 1\n"
      "ringway_upstream_errors_total{kind=\"connect_timeout\"} 0\n"
      "ringway_upstream_errors_total{kind=\"reset\"} 1\n"
      "ringway_upstream_errors_total{kind=\"response_timeout\"} 0\n"
      "ringway_upstream_errors_total{kind=\"protocol\"} 0\n"
      "# HELP ringway_downstream_connections_opened_total Client connections accepted.\n"
      "# TYPE ringway_downstream_connections_opened_total counter\n"
      "ringway_downstream_connections_opened_total 3\n"
      "# HELP ringway_downstream_connections_closed_total Client connections closed.\n"
      "# TYPE ringway_downstream_connections_closed_total counter\n"
      "ringway_downstream_connections_closed_total 1\n"
      "# HELP ringway_downstream_connections_open Client connections currently open.\n"
      "# TYPE ringway_downstream_connections_open gauge\n"
      "ringway_downstream_connections_open 2\n"
      "# HELP ringway_upstream_connections_opened_total Upstream connections established.\n"
      "# TYPE ringway_upstream_connections_opened_total counter\n"
      "ringway_upstream_connections_opened_total 1\n"
      "# HELP ringway_upstream_connections_reused_total Requests sent on a pooled upstream "
      "connection.\n"
      "# TYPE ringway_upstream_connections_reused_total counter\n"
      "ringway_upstream_connections_reused_total 3\n"
      "# HELP ringway_bytes_total Bytes received from and sent to clients.\n"
      "# TYPE ringway_bytes_total counter\n"
      "ringway_bytes_total{direction=\"in\"} 105\n"
      "ringway_bytes_total{direction=\"out\"} 200\n"
      "# HELP ringway_body_bytes_total Message body bytes relayed, by direction and by splice or "
      "copy.\n"
      "# TYPE ringway_body_bytes_total counter\n"
      "ringway_body_bytes_total{direction=\"upload\",mode=\"splice\"} 0\n"
      "ringway_body_bytes_total{direction=\"upload\",mode=\"copy\"} 7\n"
      "ringway_body_bytes_total{direction=\"download\",mode=\"splice\"} 1000\n"
      "ringway_body_bytes_total{direction=\"download\",mode=\"copy\"} 0\n"
      "# HELP ringway_rate_limited_total Requests rejected by a rate limit.\n"
      "# TYPE ringway_rate_limited_total counter\n"
      "ringway_rate_limited_total 1\n"
      "# HELP ringway_auth_rejected_total Requests rejected by authentication.\n"
      "# TYPE ringway_auth_rejected_total counter\n"
      "ringway_auth_rejected_total 2\n"
      "# HELP ringway_access_log_dropped_total Access log lines dropped because the log could not keep up (the loop never blocks on it).\n"
      "# TYPE ringway_access_log_dropped_total counter\n"
      "ringway_access_log_dropped_total 1\n"
      "# HELP ringway_accept_paused_total Times accepting paused because the process ran out of file descriptors (EMFILE/ENFILE).\n"
      "# TYPE ringway_accept_paused_total counter\n"
      "ringway_accept_paused_total 2\n";
  EXPECT_EQ(out, expected);
}

TEST(Metrics, RoutesSharingAPrefixAreOneSeries) {
  MetricsRegistry reg(1, {"/p/", "/q/", "/p/"});
  reg.shard(0).count_request(0, 200);
  reg.shard(0).count_request(2, 200);
  reg.shard(0).count_request(2, 200);
  reg.shard(0).count_request(1, 300);
  std::string out;
  reg.render_prometheus(out);
  EXPECT_NE(out.find("ringway_route_requests_total{route=\"/p/\",code=\"2xx\"} 3\n"),
            std::string::npos);
  EXPECT_NE(out.find("ringway_route_requests_total{route=\"/q/\",code=\"3xx\"} 1\n"),
            std::string::npos);
  // Each label set exactly once.
  const std::string series = "ringway_route_requests_total{route=\"/p/\",code=\"2xx\"}";
  const size_t first = out.find(series);
  EXPECT_EQ(out.find(series, first + 1), std::string::npos);
}

}  // namespace
}  // namespace ringway::obs

namespace ringway::obs {
namespace {

// Issue 13: handshakes by version and resumption, failures by reason (unknown reasons: "other"),
// summed over shards and rendered only with TLS enabled.
TEST(Metrics, TlsHandshakesAndFailures) {
  EXPECT_EQ(kTlsFailureReasons[tls_failure_index("timeout")], std::string_view("timeout"));
  EXPECT_EQ(kTlsFailureReasons[tls_failure_index("no such reason")], std::string_view("other"));
  MetricsRegistry reg(2, {"/a/"});
  std::string before;
  reg.render_prometheus(before);
  EXPECT_EQ(before.find("tls_handshakes_total"), std::string::npos);
  reg.enable_tls();
  reg.shard(0).count_tls_handshake(true, false);
  reg.shard(1).count_tls_handshake(true, false);
  reg.shard(1).count_tls_handshake(false, true);
  reg.shard(0).count_tls_failure("no_client_certificate");
  reg.shard(1).count_tls_failure("whatever");
  std::string out;
  reg.render_prometheus(out);
  EXPECT_NE(out.find("ringway_tls_handshakes_total{version=\"TLSv1.3\",resumed=\"false\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("ringway_tls_handshakes_total{version=\"TLSv1.2\",resumed=\"true\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("ringway_tls_handshakes_total{version=\"TLSv1.2\",resumed=\"false\"} 0\n"), std::string::npos);
  EXPECT_NE(out.find("ringway_tls_handshake_failures_total{reason=\"no_client_certificate\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("ringway_tls_handshake_failures_total{reason=\"other\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace ringway::obs
