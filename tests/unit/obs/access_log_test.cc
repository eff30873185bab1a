#include "ringway/obs/access_log.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "ringway/core/json_escape.h"

namespace ringway::obs {
namespace {

constexpr int64_t kT = 1795343205123;  // 2026-11-22T10:26:45.123Z

AccessRecord sample_record() {
  AccessRecord r;
  r.time_unix_ms = kT;
  r.client = "127.0.0.1";
  r.method = "GET";
  r.target = "/api/users/1?x=1";
  r.status = 200;
  r.bytes_in = 123;
  r.bytes_out = 456;
  r.duration_us = 1234;
  r.upstream = "127.0.0.1:8001";
  r.upstream_us = 900;
  r.route = "/api/users/";
  r.request_id = "abc-1";
  return r;
}

// Everything appended so far (not flushing), fully "written".
std::string drain(AccessLog& log) {
  std::span<const char> s = log.begin_flush();
  std::string out(s.data(), s.size());
  if (!s.empty()) log.end_flush(s.size());
  return out;
}


TEST(AccessLog, FormatsOneLine) {
  AccessLog log;
  ASSERT_TRUE(log.append(sample_record()));
  EXPECT_EQ(drain(log),
            "{\"time\":\"2026-11-22T10:26:45.123Z\",\"client\":\"127.0.0.1\",\"method\":\"GET\","
            "\"path\":\"/api/users/1?x=1\",\"status\":200,\"bytes_in\":123,\"bytes_out\":456,"
            "\"duration_ms\":1.234,\"upstream\":\"127.0.0.1:8001\",\"upstream_ms\":0.900,"
            "\"route\":\"/api/users/\",\"request_id\":\"abc-1\"}\n");
}

TEST(AccessLog, AbsentFieldsAreNull) {
  AccessLog log;
  AccessRecord r = sample_record();
  r.upstream = {};
  r.upstream_us = 5000;  // ignored without an upstream
  r.route = {};
  r.request_id = {};
  r.status = 404;
  r.duration_us = 7;
  ASSERT_TRUE(log.append(r));
  const std::string line = drain(log);
  EXPECT_NE(line.find("\"status\":404,"), std::string::npos) << line;
  EXPECT_NE(line.find("\"duration_ms\":0.007,"), std::string::npos) << line;
  EXPECT_NE(line.find("\"upstream\":null,\"upstream_ms\":null,\"route\":null,\"request_id\":null}"),
            std::string::npos)
      << line;
  r = sample_record();
  r.upstream_us = -1;
  ASSERT_TRUE(log.append(r));
  EXPECT_NE(drain(log).find("\"upstream_ms\":null,"), std::string::npos);
}

TEST(AccessLog, TimeCacheFollowsSecondsAndDays) {
  AccessLog log;
  AccessRecord r = sample_record();
  const int64_t times[] = {kT, kT + 1, kT + 877, kT + 878, 1709251199999, 1709251200000, 0};
  const char* want[] = {"2026-11-22T10:26:45.123Z", "2026-11-22T10:26:45.124Z",
                        "2026-11-22T10:26:46.000Z", "2026-11-22T10:26:46.001Z",
                        "2024-02-29T23:59:59.999Z", "2024-03-01T00:00:00.000Z",
                        "1970-01-01T00:00:00.000Z"};
  for (size_t i = 0; i < std::size(times); ++i) {
    r.time_unix_ms = times[i];
    ASSERT_TRUE(log.append(r));
    const std::string line = drain(log);
    EXPECT_EQ(line.substr(0, 35), std::string("{\"time\":\"") + want[i] + "\",") << line;
  }
}

TEST(AccessLog, LinesAreValidJson) {
  AccessLog log;
  AccessRecord r = sample_record();
  const std::string nasty = std::string("/p\"a\\th\x01\n\t\xc3\xa9?q=<\x7f>");
  r.target = nasty;
  r.method = "PROP\"FIND";
  r.request_id = "id\r\n{}";
  ASSERT_TRUE(log.append(r));
  r.target = "/bad\xff\xfe";
  ASSERT_TRUE(log.append(r));
  const std::string text = drain(log);
  const size_t nl = text.find('\n');
  ASSERT_NE(nl, std::string::npos);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(text.substr(0, nl)).get(doc), simdjson::SUCCESS) << text;
  std::string_view v;
  ASSERT_EQ(doc["path"].get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, nasty);
  ASSERT_EQ(doc["method"].get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, "PROP\"FIND");
  ASSERT_EQ(doc["request_id"].get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, "id\r\n{}");
  uint64_t status = 0;
  ASSERT_EQ(doc["status"].get(status), simdjson::SUCCESS);
  EXPECT_EQ(status, 200u);
  simdjson::dom::parser parser2;
  ASSERT_EQ(parser2.parse(text.substr(nl + 1, text.size() - nl - 2)).get(doc), simdjson::SUCCESS);
  ASSERT_EQ(doc["path"].get(v), simdjson::SUCCESS);
  EXPECT_EQ(v, "/bad\xc3\xbf\xc3\xbe");  // \u00ff and \u00fe decode to U+00FF, U+00FE
}

TEST(AccessLog, DoubleBufferFlushAndPartialWrite) {
  AccessLog log(/*flush_threshold=*/1024, /*hard_cap=*/64 * 1024);
  std::string expected_all;
  std::string written_all;
  AccessRecord r = sample_record();

  EXPECT_FALSE(log.should_flush());
  EXPECT_TRUE(log.begin_flush().empty());  // nothing to write: no flush starts
  EXPECT_FALSE(log.flushing());

  // Fill past the threshold.
  int n = 0;
  while (!log.should_flush()) {
    r.bytes_in = static_cast<uint64_t>(n++);
    ASSERT_TRUE(log.append(r));
  }
  EXPECT_GE(n, 2);
  const size_t first_len = log.pending_bytes();
  EXPECT_GE(first_len, 1024u);

  std::span<const char> s = log.begin_flush();
  ASSERT_EQ(s.size(), first_len);
  EXPECT_TRUE(log.flushing());
  EXPECT_FALSE(log.should_flush());
  const std::string first(s.data(), s.size());

  // Appends during the write go to the other buffer and leave the span intact.
  for (int i = 0; i < 2; ++i) {  // two lines stay below the threshold
    r.bytes_in = static_cast<uint64_t>(n++);
    ASSERT_TRUE(log.append(r));
  }
  EXPECT_EQ(std::string(s.data(), s.size()), first);

  // Partial write: the rest comes back first, alone, on the next flush.
  log.end_flush(100);
  written_all.append(first, 0, 100);
  EXPECT_FALSE(log.flushing());
  EXPECT_TRUE(log.should_flush());
  s = log.begin_flush();
  ASSERT_EQ(s.size(), first.size() - 100);
  EXPECT_EQ(std::string(s.data(), s.size()), first.substr(100));
  written_all.append(s.data(), s.size());
  log.end_flush(s.size());

  // Then the records appended meanwhile.
  EXPECT_FALSE(log.should_flush());  // below the threshold, nothing left over
  s = log.begin_flush();
  ASSERT_FALSE(s.empty());
  written_all.append(s.data(), s.size());
  log.end_flush(s.size());
  EXPECT_EQ(log.pending_bytes(), 0u);
  EXPECT_TRUE(log.begin_flush().empty());

  // Written bytes are exactly the lines in order: the bytes_in sequence 0..n-1.
  size_t pos = 0;
  for (int i = 0; i < n; ++i) {
    const std::string key = "\"bytes_in\":" + std::to_string(i) + ",";
    const size_t at = written_all.find(key, pos);
    ASSERT_NE(at, std::string::npos) << i;
    pos = written_all.find('\n', at);
    ASSERT_NE(pos, std::string::npos);
  }
  EXPECT_EQ(pos + 1, written_all.size());
  EXPECT_EQ(log.dropped(), 0u);
}

TEST(AccessLog, DropsWhenWritesStallAndRecovers) {
  constexpr size_t kCap = 4096;
  AccessLog log(/*flush_threshold=*/1024, kCap);
  AccessRecord r = sample_record();
  ASSERT_TRUE(log.append(r));
  std::span<const char> s = log.begin_flush();  // a write that never completes for a while
  ASSERT_FALSE(s.empty());
  int accepted = 0;
  int dropped = 0;
  for (int i = 0; i < 1000; ++i) {
    if (log.append(r)) {
      ++accepted;
    } else {
      ++dropped;
    }
    ASSERT_LE(log.pending_bytes(), 2 * kCap);
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(log.dropped(), static_cast<uint64_t>(dropped));
  EXPECT_EQ(accepted + dropped, 1000);

  // A record that can never fit is dropped, not written partially.
  AccessLog tiny(64, 600);
  std::string huge(1000, 'x');
  r.target = huge;
  EXPECT_FALSE(tiny.append(r));
  EXPECT_EQ(tiny.dropped(), 1u);
  EXPECT_EQ(tiny.pending_bytes(), 0u);

  // The write finishes: room again.
  log.end_flush(s.size());
  s = log.begin_flush();
  ASSERT_FALSE(s.empty());
  log.end_flush(s.size());
  r = sample_record();
  EXPECT_TRUE(log.append(r));
  EXPECT_EQ(log.dropped(), static_cast<uint64_t>(dropped));
}

}  // namespace
}  // namespace ringway::obs

namespace ringway::obs {
namespace {

// Issue 13: a TLS connection's line ends with its "tls" object; SNI may be absent (null).
TEST(AccessLog, TlsObjectOnlyForTlsConnections) {
  AccessLog log;
  AccessRecord r = sample_record();
  r.tls_version = "TLSv1.3";
  r.tls_cipher = "TLS_AES_128_GCM_SHA256";
  r.tls_sni = "api.test";
  r.tls_resumed = true;
  ASSERT_TRUE(log.append(r));
  r.tls_sni = {};
  r.tls_resumed = false;
  ASSERT_TRUE(log.append(r));
  ASSERT_TRUE(log.append(sample_record()));
  const std::string out = drain(log);
  const size_t first = out.find('\n'), second = out.find('\n', first + 1);
  EXPECT_NE(out.substr(0, first).find(",\"request_id\":\"abc-1\",\"tls\":{\"version\":\"TLSv1.3\","
                                      "\"cipher\":\"TLS_AES_128_GCM_SHA256\",\"sni\":\"api.test\","
                                      "\"resumed\":true}}"),
            std::string::npos)
      << out;
  EXPECT_NE(out.substr(first, second - first).find("\"sni\":null,\"resumed\":false}}"), std::string::npos) << out;
  EXPECT_EQ(out.substr(second + 1).find("\"tls\""), std::string::npos) << out;
}

}  // namespace
}  // namespace ringway::obs
