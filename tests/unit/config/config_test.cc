#include "ringway/config/config.h"

#include "ringway/agg/endpoint.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace ringway::config {
namespace {

LoadResult run(std::vector<std::string> args) {
  args.insert(args.begin(), "ringway");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return load(static_cast<int>(args.size()), argv.data());
}

const std::string kRoute = "--route=/api/=http://127.0.0.1:8001";

std::string write_temp(const std::string& text) {
  std::string path = testing::TempDir() + "ringway_config_XXXXXX";
  const int fd = mkstemp(path.data());
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

std::string ip_of(const Address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a.addr)->sin_addr, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a.addr)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

uint16_t port_of(const Address& a) {
  return ntohs(a.addr.ss_family == AF_INET
                   ? reinterpret_cast<const sockaddr_in*>(&a.addr)->sin_port
                   : reinterpret_cast<const sockaddr_in6*>(&a.addr)->sin6_port);
}

TEST(ConfigLoad, DefaultsWithOneRoute) {
  LoadResult r = run({"--route", "/api/=http://127.0.0.1:8001"});
  ASSERT_TRUE(r.ok) << r.error;
  const Config& c = r.config;
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(ip_of(c.listen[0]), "0.0.0.0");
  EXPECT_EQ(port_of(c.listen[0]), 8080);
  EXPECT_EQ(c.threads, 0u);
  EXPECT_EQ(c.max_body_size, 64ull << 20);
  EXPECT_EQ(c.client_header_timeout_ms, 10'000u);
  EXPECT_EQ(c.upstream_keepalive, 64u);
  EXPECT_FALSE(c.has_admin);
  EXPECT_FALSE(c.test_only);
  EXPECT_EQ(c.access_log, "-");
}

TEST(ConfigLoad, EveryFlagParsed) {
  LoadResult r = run({"--listen", "127.0.0.1:9000", "--listen=[::1]:9001",
                      "--route", "/api/users/=http://127.0.0.1:8001,http://localhost:8002/v1/",
                      "--route=/health=http://[::1]:8003",
                      "--threads", "3", "--max-body-size", "1m",
                      "--add-header", "X-Gateway:True", "--add-header=X-Other: a b ",
                      "--preserve-host", "--upstream-keepalive", "0",
                      "--client-header-timeout", "500ms", "--keepalive-timeout=2m",
                      "--body-timeout", "7", "--upstream-connect-timeout", "1s",
                      "--upstream-response-timeout", "1h", "--upstream-idle-timeout", "3s",
                      "--drain-timeout", "20s", "--max-request-line", "4k",
                      "--max-header-bytes", "32K", "--max-header-count", "50",
                      "--max-connections", "1000", "--access-log", "off",
                      "--admin-listen", "127.0.0.1:9901", "--demo", "--sqpoll", "-t"});
  ASSERT_TRUE(r.ok) << r.error;
  const Config& c = r.config;
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(ip_of(c.listen[0]), "127.0.0.1");
  EXPECT_EQ(port_of(c.listen[0]), 9000);
  EXPECT_EQ(c.listen[1].addr.ss_family, AF_INET6);
  EXPECT_EQ(c.listen[1].host, "::1");
  EXPECT_EQ(port_of(c.listen[1]), 9001);

  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].prefix, "/api/users/");
  ASSERT_EQ(c.routes[0].targets.size(), 2u);
  EXPECT_EQ(c.routes[0].targets[0].authority, "127.0.0.1:8001");
  EXPECT_EQ(c.routes[0].targets[0].base_path, "");
  EXPECT_EQ(port_of(c.routes[0].targets[0].address), 8001);
  EXPECT_EQ(c.routes[0].targets[1].authority, "localhost:8002");
  EXPECT_EQ(c.routes[0].targets[1].base_path, "/v1");
  EXPECT_EQ(c.routes[0].targets[1].address.host, "localhost");
  EXPECT_EQ(port_of(c.routes[0].targets[1].address), 8002);
  EXPECT_EQ(c.routes[1].prefix, "/health");
  EXPECT_EQ(c.routes[1].targets[0].authority, "[::1]:8003");
  EXPECT_EQ(c.routes[1].targets[0].address.addr.ss_family, AF_INET6);

  EXPECT_EQ(c.threads, 3u);
  EXPECT_EQ(c.max_body_size, 1u << 20);
  ASSERT_EQ(c.add_headers.size(), 2u);
  EXPECT_EQ(c.add_headers[0].name, "X-Gateway");
  EXPECT_EQ(c.add_headers[0].value, "True");
  EXPECT_EQ(c.add_headers[1].name, "X-Other");
  EXPECT_EQ(c.add_headers[1].value, "a b");
  EXPECT_TRUE(c.preserve_host);
  EXPECT_EQ(c.upstream_keepalive, 0u);
  EXPECT_EQ(c.client_header_timeout_ms, 500u);
  EXPECT_EQ(c.client_keepalive_timeout_ms, 120'000u);
  EXPECT_EQ(c.body_timeout_ms, 7'000u);
  EXPECT_EQ(c.upstream_connect_timeout_ms, 1'000u);
  EXPECT_EQ(c.upstream_response_timeout_ms, 3'600'000u);
  EXPECT_EQ(c.upstream_idle_timeout_ms, 3'000u);
  EXPECT_EQ(c.drain_timeout_ms, 20'000u);
  EXPECT_EQ(c.max_request_line, 4096u);
  EXPECT_EQ(c.max_head_bytes, 32u * 1024);
  EXPECT_EQ(c.max_header_count, 50u);
  EXPECT_EQ(c.max_connections, 1000u);
  EXPECT_EQ(c.access_log, "off");
  ASSERT_TRUE(c.has_admin);
  EXPECT_EQ(port_of(c.admin_listen), 9901);
  EXPECT_TRUE(c.demo);
  EXPECT_TRUE(c.sqpoll);
  EXPECT_TRUE(c.test_only);
}

TEST(ConfigLoad, LongTestFlagAndSwitchWithValue) {
  LoadResult r = run({kRoute, "--test", "--preserve-host=false", "--access-log", "-"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.config.test_only);
  EXPECT_FALSE(r.config.preserve_host);
  EXPECT_EQ(r.config.access_log, "-");
}

TEST(ConfigLoad, DemoNeedsNoRoutes) {
  LoadResult r = run({"--demo"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.config.routes.empty());
}

struct BadCase {
  std::vector<std::string> args;
  std::string expect;  // substring of the error
};

TEST(ConfigLoad, BadFlagsGiveOneLineErrorNamingTheFlag) {
  const std::vector<BadCase> cases = {
      {{kRoute, "--bogus"}, "--bogus"},
      {{kRoute, "-x"}, "-x"},
      {{kRoute, "stray"}, "stray"},
      {{kRoute, "--threads"}, "--threads: missing value"},
      {{kRoute, "--threads", "abc"}, "--threads"},
      {{kRoute, "--threads", "-1"}, "--threads"},
      {{kRoute, "--listen", "1.2.3.4:0"}, "--listen"},
      {{kRoute, "--listen", "1.2.3.4:65536"}, "--listen"},
      {{kRoute, "--listen", "1.2.3.4"}, "--listen"},
      {{kRoute, "--listen", "::1:80"}, "--listen"},
      {{kRoute, "--admin-listen", "[::1:80"}, "--admin-listen"},
      {{"--route", "api=http://127.0.0.1:1"}, "--route"},
      {{"--route", "/api"}, "--route"},
      {{"--route", "/api=ftp://127.0.0.1:1"}, "--route"},
      {{"--route", "/api=http://127.0.0.1:1,"}, "--route"},
      {{"--route", "/api=http://127.0.0.1:1/x?y"}, "--route"},
      {{"--route", "/api=http://no-such-host.invalid:1"}, "--route"},
      {{kRoute, "--max-body-size", "0"}, "--max-body-size"},
      {{kRoute, "--max-body-size", "12q"}, "--max-body-size"},
      {{kRoute, "--max-header-count", "129"}, "--max-header-count"},
      {{kRoute, "--max-header-count", "0"}, "--max-header-count"},
      {{kRoute, "--max-connections", "0"}, "--max-connections"},
      {{kRoute, "--max-request-line", "8g"}, "--max-request-line"},
      {{kRoute, "--client-header-timeout", "0"}, "--client-header-timeout"},
      {{kRoute, "--body-timeout", "10x"}, "--body-timeout"},
      {{kRoute, "--drain-timeout", "ms"}, "--drain-timeout"},
      {{kRoute, "--add-header", "NoColon"}, "--add-header"},
      {{kRoute, "--add-header", "Bad Name:v"}, "--add-header"},
      {{kRoute, "--add-header", std::string("X-A:a\r\nb")}, "--add-header"},
      {{kRoute, "--add-header", "Content-Length:5"}, "--add-header"},
      {{kRoute, "--preserve-host=maybe"}, "--preserve-host"},
      {{kRoute, "--help=x"}, "--help"},
      {{kRoute, "--config"}, "--config"},
      {{kRoute, "--config", "/nonexistent/ringway.json"}, "--config"},
      {{}, "no routes"},
      {{kRoute, kRoute}, "duplicate route"},
  };
  for (const BadCase& bc : cases) {
    LoadResult r = run(bc.args);
    std::string joined;
    for (const auto& a : bc.args) joined += a + " ";
    EXPECT_FALSE(r.ok) << joined;
    EXPECT_NE(r.error.find(bc.expect), std::string::npos) << joined << " -> " << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
  }
}

TEST(ConfigLoad, HelpListsEveryFlagWithDefault) {
  testing::internal::CaptureStdout();
  LoadResult r = run({"--help"});
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.exit_now);
  const char* flags[] = {"--listen", "--route", "--config", "--test", "--help", "--version",
                         "--threads", "--max-body-size", "--add-header", "--preserve-host",
                         "--upstream-keepalive", "--client-header-timeout",
                         "--keepalive-timeout", "--body-timeout", "--upstream-connect-timeout",
                         "--upstream-response-timeout", "--upstream-idle-timeout",
                         "--drain-timeout", "--max-request-line", "--max-header-bytes",
                         "--max-header-count", "--max-connections", "--access-log",
                         "--admin-listen", "--demo", "--sqpoll"};
  for (const char* f : flags) {
    const std::string needle = std::string(f) + " ";
    const size_t at = out.find(needle);
    ASSERT_NE(at, std::string::npos) << f;
    const std::string line = out.substr(at, out.find('\n', at) - at);
    if (std::string(f) != "--help" && std::string(f) != "--version") {
      EXPECT_NE(line.find("(default: "), std::string::npos) << line;
    }
  }
  EXPECT_NE(out.find("-t, --test"), std::string::npos);
  EXPECT_NE(out.find("(default: 64m)"), std::string::npos);
}

TEST(ConfigLoad, HelpWinsWithoutRoutes) {
  testing::internal::CaptureStdout();
  LoadResult r = run({"-h"});
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.exit_now);
  EXPECT_NE(out.find("Usage"), std::string::npos);
}

TEST(ConfigLoad, Version) {
  testing::internal::CaptureStdout();
  LoadResult r = run({"--version"});
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.exit_now);
  EXPECT_EQ(out, std::string("ringway ") + RINGWAY_VERSION + "\n");
}

constexpr const char* kFullJson = R"({
  "threads": 2, "listen": ["127.0.0.1:8081", "[::1]:8082"], "admin_listen": "127.0.0.1:9901",
  "routes": [
    {"prefix": "/api/users/", "upstreams": ["http://127.0.0.1:8001", "http://127.0.0.1:8002/v1"],
     "hosts": ["API.example.com"], "methods": ["GET","POST"], "headers": {"X-Version": "2"},
     "max_body_size": "1m"},
    {"prefix": "/static", "upstreams": ["http://localhost:9000/"]}
  ],
  "add_headers": {"X-Gateway": "True"},
  "preserve_host": true, "max_body_size": 1048576, "max_request_line": "8k", "max_header_bytes": "16k",
  "max_header_count": 90, "max_connections": 4096, "upstream_keepalive": 8,
  "timeouts": {"client_header": "11s", "keepalive": 61, "body": "31s", "upstream_connect": "250ms",
               "upstream_response": "2m", "upstream_idle": "3s", "drain": "12s"},
  "access_log": "/tmp/access.log", "demo": false, "sqpoll": true
})";

TEST(ConfigJson, FullSchema) {
  Config c;
  std::string err;
  ASSERT_TRUE(apply_json(kFullJson, c, err)) << err;
  EXPECT_EQ(c.threads, 2u);
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(port_of(c.listen[1]), 8082);
  ASSERT_TRUE(c.has_admin);
  ASSERT_EQ(c.routes.size(), 2u);
  const Route& r0 = c.routes[0];
  EXPECT_EQ(r0.prefix, "/api/users/");
  ASSERT_EQ(r0.targets.size(), 2u);
  EXPECT_EQ(r0.targets[1].base_path, "/v1");
  ASSERT_EQ(r0.hosts.size(), 1u);
  EXPECT_EQ(r0.hosts[0], "api.example.com");
  EXPECT_EQ(r0.methods, (std::vector<std::string>{"GET", "POST"}));
  ASSERT_EQ(r0.headers.size(), 1u);
  EXPECT_EQ(r0.headers[0].name, "X-Version");
  EXPECT_EQ(r0.headers[0].value, "2");
  EXPECT_EQ(r0.max_body_size, 1u << 20);
  EXPECT_EQ(c.routes[1].targets[0].base_path, "");
  EXPECT_EQ(c.routes[1].max_body_size, 0u);
  ASSERT_EQ(c.add_headers.size(), 1u);
  EXPECT_EQ(c.add_headers[0].name, "X-Gateway");
  EXPECT_TRUE(c.preserve_host);
  EXPECT_EQ(c.max_body_size, 1048576u);
  EXPECT_EQ(c.max_request_line, 8192u);
  EXPECT_EQ(c.max_head_bytes, 16384u);
  EXPECT_EQ(c.max_header_count, 90u);
  EXPECT_EQ(c.max_connections, 4096u);
  EXPECT_EQ(c.upstream_keepalive, 8u);
  EXPECT_EQ(c.client_header_timeout_ms, 11'000u);
  EXPECT_EQ(c.client_keepalive_timeout_ms, 61'000u);
  EXPECT_EQ(c.body_timeout_ms, 31'000u);
  EXPECT_EQ(c.upstream_connect_timeout_ms, 250u);
  EXPECT_EQ(c.upstream_response_timeout_ms, 120'000u);
  EXPECT_EQ(c.upstream_idle_timeout_ms, 3'000u);
  EXPECT_EQ(c.drain_timeout_ms, 12'000u);
  EXPECT_EQ(c.access_log, "/tmp/access.log");
  EXPECT_FALSE(c.demo);
  EXPECT_TRUE(c.sqpoll);
}

TEST(ConfigJson, FlagsOverrideFileAndListFlagsReplaceLists) {
  const std::string path = write_temp(kFullJson);
  LoadResult r = run({"--threads", "4", "--config", path, "--route", "/x/=http://127.0.0.1:7000",
                      "--keepalive-timeout=5s", "--add-header", "X-A:1"});
  unlink(path.c_str());
  ASSERT_TRUE(r.ok) << r.error;
  const Config& c = r.config;
  EXPECT_EQ(c.threads, 4u);  // the flag, although it came before --config
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].prefix, "/x/");
  EXPECT_EQ(c.client_keepalive_timeout_ms, 5'000u);
  EXPECT_EQ(c.body_timeout_ms, 31'000u);  // from the file
  ASSERT_EQ(c.add_headers.size(), 1u);
  EXPECT_EQ(c.add_headers[0].name, "X-A");
  ASSERT_EQ(c.listen.size(), 2u);  // from the file, no --listen given
  EXPECT_TRUE(c.sqpoll);
}

TEST(ConfigJson, FileErrorsArePrefixedWithThePath) {
  const std::string path = write_temp(R"({"threads": "many", "routes": []})");
  LoadResult r = run({"--config", path});
  unlink(path.c_str());
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.error.find(path + ": threads"), std::string::npos) << r.error;
}

TEST(ConfigJson, ErrorsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"bogus": 1})", "bogus: unknown key"},
      {R"({"timeouts": {"bogus": "1s"}})", "timeouts.bogus: unknown key"},
      {R"({"timeouts": "1s"})", "timeouts: expected an object"},
      {R"({"routes": [{"prefix": "/a", "upstreams": ["http://127.0.0.1:1"], "x": 1}]})",
       "routes[0].x: unknown key"},
      {R"({"threads": true})", "threads: expected a string or an integer"},
      {R"({"threads": 1.5})", "threads"},
      {R"({"threads": -2})", "threads"},
      {R"({"listen": "127.0.0.1:80"})", "listen: expected an array"},
      {R"({"listen": [80]})", "listen[0]: expected a string"},
      {R"({"preserve_host": "yes"})", "preserve_host: expected true or false"},
      {R"({"access_log": 1})", "access_log: expected a string"},
      {R"({"add_headers": {"X-A": 1}})", "add_headers.X-A: expected a string"},
      {R"({"add_headers": {"Bad Name": "v"}})", "add_headers.Bad Name"},
      {R"({"routes": {}})", "routes: expected an array"},
      {R"({"routes": [1]})", "routes[0]: expected an object"},
      {R"({"routes": [{"prefix": "/a", "upstreams": ["ftp://x"]}]})", "routes[0].upstreams[0]"},
      {R"({"routes": [{"prefix": "/a", "upstreams": ["http://127.0.0.1:1"]},
                      {"prefix": "/b", "upstreams": ["http://127.0.0.1:99999"]}]})",
       "routes[1].upstreams[0]"},
      {R"({"routes": [{"prefix": "a", "upstreams": ["http://127.0.0.1:1"]}]})", "routes[0].prefix"},
      {R"({"routes": [{"upstreams": ["http://127.0.0.1:1"]}]})", "routes[0]: missing \"prefix\""},
      {R"({"routes": [{"prefix": "/a"}]})", "routes[0]: missing or empty \"upstreams\""},
      {R"({"routes": [{"prefix": "/a", "upstreams": ["http://127.0.0.1:1"], "hosts": ["a:80"]}]})",
       "routes[0].hosts[0]"},
      {R"({"routes": [{"prefix": "/a", "upstreams": ["http://127.0.0.1:1"], "methods": ["G T"]}]})",
       "routes[0].methods[0]"},
      {R"({"routes": [{"prefix": "/a", "upstreams": ["http://127.0.0.1:1"], "max_body_size": "1x"}]})",
       "routes[0].max_body_size"},
      {R"({"timeouts": {"keepalive": "10 s"}})", "timeouts.keepalive: invalid duration"},
      {R"({"timeouts": {"drain": 0}})", "timeouts.drain"},
      {R"({"max_body_size": "64q"})", "max_body_size: invalid size"},
      {R"({"threads": 1, "threads": 2})", "threads: duplicate key"},
      {R"({"threads": 1,})", "invalid JSON"},
      {R"([1, 2])", "top level"},
  };
  for (const auto& [json, expect] : cases) {
    Config c;
    std::string err;
    EXPECT_FALSE(apply_json(json, c, err)) << json;
    EXPECT_NE(err.find(expect), std::string::npos) << json << " -> " << err;
  }
}

TEST(ConfigJson, DuplicateRouteInFileIsRejectedButDifferentConditionsAreNot) {
  const std::string dup = write_temp(R"({"routes": [
      {"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"], "methods": ["GET", "POST"]},
      {"prefix": "/a/", "upstreams": ["http://127.0.0.1:2"], "methods": ["POST", "GET"]}]})");
  LoadResult r = run({"--config", dup});
  unlink(dup.c_str());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("duplicate route"), std::string::npos) << r.error;

  const std::string ok = write_temp(R"({"routes": [
      {"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"], "methods": ["GET"]},
      {"prefix": "/a/", "upstreams": ["http://127.0.0.1:2"]}]})");
  r = run({"--config", ok});
  unlink(ok.c_str());
  EXPECT_TRUE(r.ok) << r.error;
}

TEST(ConfigAddress, HostPort) {
  Address a;
  std::string err;
  ASSERT_TRUE(parse_host_port(":9000", a, err)) << err;
  EXPECT_EQ(ip_of(a), "0.0.0.0");
  EXPECT_EQ(port_of(a), 9000);
  ASSERT_TRUE(parse_host_port("[::]:1", a, err)) << err;
  EXPECT_EQ(a.addr.ss_family, AF_INET6);
  EXPECT_EQ(a.len, sizeof(sockaddr_in6));
  ASSERT_TRUE(parse_host_port("localhost:65535", a, err)) << err;
  EXPECT_EQ(port_of(a), 65535);
  EXPECT_EQ(a.host, "localhost");
  EXPECT_FALSE(parse_host_port("127.0.0.1:", a, err));
  EXPECT_FALSE(parse_host_port("127.0.0.1:8x", a, err));
  EXPECT_FALSE(parse_host_port("[::1]x:80", a, err));
}

TEST(ConfigAddress, TargetUrl) {
  Target t;
  std::string err;
  ASSERT_TRUE(parse_target_url("http://127.0.0.1", t, err)) << err;
  EXPECT_EQ(port_of(t.address), 80);
  EXPECT_EQ(t.authority, "127.0.0.1");
  EXPECT_EQ(t.base_path, "");
  ASSERT_TRUE(parse_target_url("HTTP://127.0.0.1:8001/v1/api//", t, err)) << err;
  EXPECT_EQ(t.authority, "127.0.0.1:8001");
  EXPECT_EQ(t.base_path, "/v1/api");
  ASSERT_TRUE(parse_target_url("http://[::1]:8001/", t, err)) << err;
  EXPECT_EQ(t.address.host, "::1");
  EXPECT_EQ(t.base_path, "");
  for (const char* bad : {"127.0.0.1:80", "http://", "http:///x", "ftp://127.0.0.1",
                          "http://u@127.0.0.1", "http://127.0.0.1:0", "http://127.0.0.1/a b",
                          "http://127.0.0.1/a#f"}) {
    EXPECT_FALSE(parse_target_url(bad, t, err)) << bad;
    EXPECT_FALSE(err.empty());
  }
}

// --- rate limits and authentication (issues 5 and 6) ---

TEST(ConfigFilters, DefaultsAreOff) {
  LoadResult r = run({kRoute});
  ASSERT_TRUE(r.ok) << r.error;
  const Config& c = r.config;
  EXPECT_TRUE(c.rate_limits.empty());
  EXPECT_EQ(c.rate_limit_keys, 65536u);
  EXPECT_FALSE(c.rate_limit_headers);
  EXPECT_FALSE(c.rate_limit_legacy_headers);
  EXPECT_TRUE(c.api_keys.empty());
  EXPECT_EQ(c.api_key_header, "X-API-Key");
  EXPECT_EQ(c.api_key_query, "");
  EXPECT_EQ(c.jwt_leeway_s, 60u);
  EXPECT_EQ(c.auth, "none");
  EXPECT_EQ(c.routes[0].auth, "");
}

TEST(ConfigFilters, EveryFilterFlagParsed) {
  LoadResult r = run({kRoute, "--rate-limit", "100/s,burst=20,key=ip", "--rate-limit=5/m,key=header:X-Client",
                      "--rate-limit-keys", "1000", "--rate-limit-headers", "--rate-limit-legacy-headers",
                      "--api-key", "alice=k1", "--api-key", "bob=k=2", "--api-keys-file", "/etc/keys",
                      "--api-key-header", "X-Key", "--api-key-query", "api_key",
                      "--jwt-jwks", "/etc/jwks.json", "--jwt-key", "k1=pem:/etc/k1.pem",
                      "--jwt-key", "k2=secret/HS512:/etc/k2", "--jwt-leeway", "2m",
                      "--jwt-issuer", "https://issuer.test/", "--jwt-audience", "api",
                      "--jwt-audience", "web", "--jwt-claim-header", "sub=X-User-Id",
                      "--auth", "any"});
  ASSERT_TRUE(r.ok) << r.error;
  const Config& c = r.config;
  EXPECT_EQ(c.rate_limits, (std::vector<std::string>{"100/s,burst=20,key=ip", "5/m,key=header:X-Client"}));
  EXPECT_EQ(c.rate_limit_keys, 1000u);
  EXPECT_TRUE(c.rate_limit_headers);
  EXPECT_TRUE(c.rate_limit_legacy_headers);
  EXPECT_EQ(c.api_keys, (std::vector<std::string>{"alice=k1", "bob=k=2"}));
  EXPECT_EQ(c.api_keys_file, "/etc/keys");
  EXPECT_EQ(c.api_key_header, "X-Key");
  EXPECT_EQ(c.api_key_query, "api_key");
  EXPECT_EQ(c.jwt_jwks, "/etc/jwks.json");
  EXPECT_EQ(c.jwt_keys, (std::vector<std::string>{"k1=pem:/etc/k1.pem", "k2=secret/HS512:/etc/k2"}));
  EXPECT_EQ(c.jwt_leeway_s, 120u);
  EXPECT_EQ(c.jwt_issuer, "https://issuer.test/");
  EXPECT_EQ(c.jwt_audiences, (std::vector<std::string>{"api", "web"}));
  EXPECT_EQ(c.jwt_claim_headers, (std::vector<std::string>{"sub=X-User-Id"}));
  EXPECT_EQ(c.auth, "any");
}

TEST(ConfigFilters, BadFilterFlagsNameTheFlagAndNeverEchoAKey) {
  const std::vector<BadCase> cases = {
      {{kRoute, "--rate-limit", ""}, "--rate-limit"},
      {{kRoute, "--rate-limit-keys", "0"}, "--rate-limit-keys"},
      {{kRoute, "--rate-limit-keys", "99999999999"}, "--rate-limit-keys"},
      {{kRoute, "--rate-limit-headers=perhaps"}, "--rate-limit-headers"},
      {{kRoute, "--api-key", "alice"}, "--api-key: expected NAME=KEY"},
      {{kRoute, "--api-key", "=secret-value"}, "--api-key"},
      {{kRoute, "--api-key", "alice="}, "--api-key"},
      {{kRoute, "--api-keys-file", ""}, "--api-keys-file"},
      {{kRoute, "--api-key-header", "Bad Header"}, "--api-key-header"},
      {{kRoute, "--api-key-query", "a&b"}, "--api-key-query"},
      {{kRoute, "--jwt-key", "k1"}, "--jwt-key"},
      {{kRoute, "--jwt-leeway", "1500ms"}, "--jwt-leeway: leeway must be whole seconds"},
      {{kRoute, "--jwt-leeway", "soon"}, "--jwt-leeway"},
      {{kRoute, "--jwt-audience", ""}, "--jwt-audience"},
      {{kRoute, "--jwt-claim-header", "sub"}, "--jwt-claim-header"},
      {{kRoute, "--jwt-claim-header", "sub=Bad Header"}, "--jwt-claim-header"},
      {{kRoute, "--auth", "basic"}, "--auth: expected none, api-key, jwt, any or mtls"},
  };
  for (const BadCase& bc : cases) {
    LoadResult r = run(bc.args);
    std::string joined;
    for (const auto& a : bc.args) joined += a + " ";
    EXPECT_FALSE(r.ok) << joined;
    EXPECT_NE(r.error.find(bc.expect), std::string::npos) << joined << " -> " << r.error;
    EXPECT_EQ(r.error.find("secret-value"), std::string::npos) << r.error;
  }
}

// Cluster rate limits (issue 15): the Redis rows, from flags and from the "redis" object.
TEST(ConfigFilters, RedisRows) {
  LoadResult r = run({kRoute});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.config.has_redis);
  EXPECT_EQ(r.config.redis_failure, "deny");
  EXPECT_EQ(r.config.redis_database, 0u);

  r = run({kRoute, "--rate-limit", "100/s,burst=20,key=ip,scope=cluster", "--redis", "127.0.0.1:6380",
           "--redis-failure", "local:3"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.config.has_redis);
  EXPECT_EQ(r.config.redis_address.port, 6380);
  EXPECT_EQ(r.config.redis_address.host, "127.0.0.1");
  EXPECT_EQ(r.config.redis_unix_path, "");
  EXPECT_EQ(r.config.redis_failure, "local:3");
  EXPECT_EQ(r.config.rate_limits, std::vector<std::string>{"100/s,burst=20,key=ip,scope=cluster"});

  r = run({kRoute, "--redis=unix:/run/redis/redis.sock"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.config.redis_unix_path, "/run/redis/redis.sock");

  Config c;
  std::string err;
  ASSERT_TRUE(apply_json(R"({"redis": {"address": "unix:/tmp/r.sock", "failure": "allow",
                                       "password": "s3cret", "database": 2}})", c, err)) << err;
  EXPECT_TRUE(c.has_redis);
  EXPECT_EQ(c.redis_unix_path, "/tmp/r.sock");
  EXPECT_EQ(c.redis_failure, "allow");
  EXPECT_EQ(c.redis_password, "s3cret");
  EXPECT_EQ(c.redis_database, 2u);

  const std::vector<BadCase> bad = {
      {{kRoute, "--redis", "unix:"}, "--redis: expected unix:PATH"},
      {{kRoute, "--redis", "unix:/" + std::string(120, 'x')}, "--redis: expected unix:PATH"},
      {{kRoute, "--redis", "127.0.0.1"}, "--redis: missing port"},
      {{kRoute, "--redis", "127.0.0.1:0"}, "--redis: invalid port"},
      {{kRoute, "--redis", "127.0.0.1:notaport"}, "--redis"},
      {{kRoute, "--redis-failure", ""}, "--redis-failure"},
      {{kRoute, "--redis-password", "x"}, "unknown flag '--redis-password'"},  // never on argv
  };
  for (const BadCase& bc : bad) {
    LoadResult br = run(bc.args);
    EXPECT_FALSE(br.ok) << bc.expect;
    EXPECT_NE(br.error.find(bc.expect), std::string::npos) << bc.expect << " -> " << br.error;
  }
  for (const auto& [json, expect] : std::vector<std::pair<std::string, std::string>>{
           {R"({"redis": {"database": -1}})", "redis.database"},
           {R"({"redis": {"database": "x"}})", "redis.database"},
           {R"({"redis": {"password": ""}})", "redis.password"},
           {R"({"redis": {"sentinel": "x"}})", "redis.sentinel: unknown key"},
           {R"({"redis": "127.0.0.1:6379"})", "redis: expected an object"}}) {
    Config bc;
    EXPECT_FALSE(apply_json(json, bc, err)) << json;
    EXPECT_NE(err.find(expect), std::string::npos) << json << " -> " << err;
  }
}

TEST(ConfigFilters, JsonTopLevelAndPerRoute) {
  Config c;
  std::string err;
  ASSERT_TRUE(apply_json(R"({
    "rate_limits": ["10/s,key=ip"], "rate_limit_keys": 512, "rate_limit_headers": true,
    "rate_limit_legacy_headers": false,
    "api_keys": ["alice=k1"], "api_keys_file": "/k", "api_key_header": "X-Key", "api_key_query": "key",
    "jwt": {"jwks": "/j.json", "keys": ["a=pem:/a.pem"], "leeway": "30s", "issuer": "iss",
            "audiences": ["api"], "claim_headers": ["sub=X-User-Id", "tenant=X-Tenant"]},
    "auth": "jwt",
    "routes": [
      {"prefix": "/orders/", "upstreams": ["http://127.0.0.1:1"], "auth": "jwt",
       "scopes": ["orders:read", "orders:write"], "claims": {"role": "admin", "tenant": ""},
       "rate_limits": ["5/s,burst=1,key=jwt-sub"]},
      {"prefix": "/open/", "upstreams": ["http://127.0.0.1:1"], "auth": "none"},
      {"prefix": "/plain/", "upstreams": ["http://127.0.0.1:1"]}
    ]})", c, err)) << err;
  EXPECT_EQ(c.rate_limits, std::vector<std::string>{"10/s,key=ip"});
  EXPECT_EQ(c.rate_limit_keys, 512u);
  EXPECT_TRUE(c.rate_limit_headers);
  EXPECT_EQ(c.api_keys, std::vector<std::string>{"alice=k1"});
  EXPECT_EQ(c.api_keys_file, "/k");
  EXPECT_EQ(c.api_key_header, "X-Key");
  EXPECT_EQ(c.api_key_query, "key");
  EXPECT_EQ(c.jwt_jwks, "/j.json");
  EXPECT_EQ(c.jwt_keys, std::vector<std::string>{"a=pem:/a.pem"});
  EXPECT_EQ(c.jwt_leeway_s, 30u);
  EXPECT_EQ(c.jwt_issuer, "iss");
  EXPECT_EQ(c.jwt_audiences, std::vector<std::string>{"api"});
  EXPECT_EQ(c.jwt_claim_headers, (std::vector<std::string>{"sub=X-User-Id", "tenant=X-Tenant"}));
  EXPECT_EQ(c.auth, "jwt");
  ASSERT_EQ(c.routes.size(), 3u);
  const Route& r0 = c.routes[0];
  EXPECT_EQ(r0.auth, "jwt");
  EXPECT_EQ(r0.scopes, (std::vector<std::string>{"orders:read", "orders:write"}));
  ASSERT_EQ(r0.claims.size(), 2u);
  EXPECT_EQ(r0.claims[0].name, "role");
  EXPECT_EQ(r0.claims[0].value, "admin");
  EXPECT_EQ(r0.claims[1].name, "tenant");
  EXPECT_EQ(r0.claims[1].value, "");
  EXPECT_EQ(r0.rate_limits, std::vector<std::string>{"5/s,burst=1,key=jwt-sub"});
  EXPECT_EQ(c.routes[1].auth, "none");
  EXPECT_EQ(c.routes[2].auth, "");
  EXPECT_TRUE(c.routes[2].rate_limits.empty());
}

TEST(ConfigFilters, JsonErrorsNameTheKey) {
  const std::string route = R"("prefix": "/a", "upstreams": ["http://127.0.0.1:1"])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"rate_limits": "10/s"})", "rate_limits: expected an array"},
      {R"({"rate_limits": [""]})", "rate_limits[0]"},
      {R"({"api_keys": ["nokey"]})", "api_keys[0]: expected NAME=KEY"},
      {R"({"jwt": {"leeway": "0.5s"}})", "jwt.leeway"},
      {R"({"jwt": {"bogus": 1}})", "jwt.bogus: unknown key"},
      {R"({"auth": "maybe"})", "auth: expected none"},
      {"{\"routes\": [{" + route + R"(, "auth": "oauth"}]})", "routes[0].auth"},
      {"{\"routes\": [{" + route + R"(, "scopes": ["a b"]}]})", "routes[0].scopes[0]"},
      {"{\"routes\": [{" + route + R"(, "claims": {"role": 1}}]})", "routes[0].claims.role"},
      {"{\"routes\": [{" + route + R"(, "rate_limits": ["1/s,route=/b"]}]})", "routes[0].rate_limits[0]"},
  };
  for (const auto& [json, expect] : cases) {
    Config c;
    std::string err;
    EXPECT_FALSE(apply_json(json, c, err)) << json;
    EXPECT_NE(err.find(expect), std::string::npos) << json << " -> " << err;
  }
}

TEST(ConfigFilters, ListFlagsReplaceTheFileLists) {
  const std::string path = write_temp(R"({"routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"]}],
    "rate_limits": ["1/s", "2/s"], "api_keys": ["a=1"], "auth": "api-key"})");
  LoadResult r = run({"--config", path, "--rate-limit", "3/s", "--auth", "none"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.config.rate_limits, std::vector<std::string>{"3/s"});
  EXPECT_EQ(r.config.api_keys, std::vector<std::string>{"a=1"});
  EXPECT_EQ(r.config.auth, "none");
  unlink(path.c_str());
}

TEST(ConfigFilters, HelpListsTheFilterFlags) {
  testing::internal::CaptureStdout();
  LoadResult r = run({"--help"});
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(r.exit_now);
  for (const char* f : {"--rate-limit SPEC", "--rate-limit-keys N", "--rate-limit-headers",
                        "--rate-limit-legacy-headers", "--api-key NAME=KEY", "--api-keys-file FILE",
                        "--api-key-header NAME", "--api-key-query PARAM", "--jwt-jwks FILE",
                        "--jwt-key KID=", "--jwt-leeway DUR", "--jwt-issuer ISS", "--jwt-audience AUD",
                        "--jwt-claim-header CLAIM=HEADER", "--auth none|api-key|jwt|any",
                        "--redis HOST:PORT|unix:PATH", "--redis-failure deny|allow|local[:N]"}) {
    EXPECT_NE(out.find(f), std::string::npos) << f;
  }
  EXPECT_NE(out.find("(default: X-API-Key)"), std::string::npos);
}

TEST(ConfigAggregates, ParsedWithDeadlineHeadersAndTargets) {
  // config reaches agg::parse_endpoint through a weak reference; this direct call makes the
  // linker take it from rw_agg as the binary's whole-archive link does.
  simdjson::dom::parser p;
  agg::Endpoint probe;
  std::string probe_err;
  EXPECT_FALSE(agg::parse_endpoint(p.parse(std::string_view("{}")).value(), probe, probe_err));
  Config c;
  std::string err;
  ASSERT_TRUE(apply_json(R"({"aggregates": [{"endpoint": "/me/{id}", "deadline": "1500ms",
      "headers": ["X-Trace"], "max_leg_body": 2048,
      "backends": [{"name": "user", "upstream": "http://127.0.0.1:8001/v1", "path": "/u/{id}"},
                   {"name": "orders", "upstream": "http://127.0.0.1:8002", "path": "/o",
                    "group": "orders"}]}]})", c, err)) << err;
  ASSERT_EQ(c.aggregates.size(), 1u);
  const Aggregate& a = c.aggregates[0];
  EXPECT_EQ(a.deadline_ms, 1500u);
  ASSERT_EQ(a.pass_headers.size(), 1u);
  EXPECT_EQ(a.pass_headers[0], "X-Trace");
  ASSERT_EQ(a.targets.size(), 2u);
  EXPECT_EQ(a.targets[0].base_path, "/v1");
  EXPECT_EQ(a.targets[1].authority, "127.0.0.1:8002");
  EXPECT_EQ(a.endpoint->path, "/me/{id}");
  EXPECT_EQ(a.endpoint->max_leg_body, 2048u);
  EXPECT_EQ(a.endpoint->backends[1].group_json, "orders");
}

TEST(ConfigAggregates, ErrorsNameTheEntry) {
  const char* bad[] = {
      R"({"aggregates": {}})",
      R"({"aggregates": [{"endpoint": "/x", "deadline": "soon", "backends": [
          {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})",
      R"({"aggregates": [{"endpoint": "/x", "deadline": "0s", "backends": [
          {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})",
      R"({"aggregates": [{"endpoint": "/x", "headers": ["bad name"], "backends": [
          {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})",
      R"({"aggregates": [{"endpoint": "/x", "backends": [
          {"name": "a", "upstream": "ftp://127.0.0.1:1", "path": "/a"}]}]})",
      R"({"aggregates": [{"endpoint": "/x", "typo": 1, "backends": [
          {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})",
  };
  for (const char* json : bad) {
    Config c;
    std::string err;
    EXPECT_FALSE(apply_json(json, c, err)) << json;
    EXPECT_NE(err.find("aggregates"), std::string::npos) << err;
  }
}

TEST(ConfigAggregates, AccessKeysPerEndpoint) {
  Config c;
  std::string err;
  ASSERT_TRUE(apply_json(R"({"aggregates": [{"endpoint": "/me", "auth": "jwt",
      "scopes": ["me:read"], "claims": {"tenant": "a"}, "rate_limits": ["5/s,burst=2"],
      "backends": [{"name": "u", "upstream": "http://127.0.0.1:8001", "path": "/u"}]}]})", c, err))
      << err;
  ASSERT_EQ(c.aggregates.size(), 1u);
  const Aggregate& a = c.aggregates[0];
  EXPECT_EQ(a.auth, "jwt");
  EXPECT_EQ(a.scopes, std::vector<std::string>{"me:read"});
  ASSERT_EQ(a.claims.size(), 1u);
  EXPECT_EQ(a.claims[0].name, "tenant");
  EXPECT_EQ(a.rate_limits, std::vector<std::string>{"5/s,burst=2"});
  const char* bad[] = {
      R"({"aggregates": [{"endpoint": "/x", "auth": "magic", "backends": [
          {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})",
      R"({"aggregates": [{"endpoint": "/x", "rate_limits": ["1/s,route=/x"], "backends": [
          {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})",
      R"({"aggregates": [{"endpoint": "/x", "auth": "jwt", "auth": "none", "backends": [
          {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})",
  };
  for (const char* json : bad) {
    Config b;
    EXPECT_FALSE(apply_json(json, b, err)) << json;
    EXPECT_NE(err.find("aggregates[0]"), std::string::npos) << err;
  }
}

TEST(ConfigAggregates, FlagFormGroupsEachLegUnderItsName) {
  LoadResult r = run({"--aggregate=/screen/{id}=user:http://127.0.0.1:8001/users/{id},"
                      "orders[]:http://127.0.0.1:8002/v2/orders/{id}/recent,flat:http://127.0.0.1:8003"});
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.config.aggregates.size(), 1u);
  const Aggregate& a = r.config.aggregates[0];
  EXPECT_EQ(a.endpoint->path, "/screen/{id}");
  EXPECT_EQ(a.endpoint->methods, std::vector<std::string>{"GET"});
  ASSERT_EQ(a.endpoint->backends.size(), 3u);
  EXPECT_EQ(a.endpoint->backends[0].name, "user");
  EXPECT_EQ(a.endpoint->backends[0].path, "/users/{id}");
  EXPECT_EQ(a.endpoint->backends[0].group_json, "user");
  EXPECT_EQ(a.endpoint->backends[1].path, "/v2/orders/{id}/recent");
  EXPECT_EQ(a.endpoint->backends[1].name, "orders");
  EXPECT_TRUE(a.endpoint->backends[1].is_collection);
  EXPECT_FALSE(a.endpoint->backends[0].is_collection);
  EXPECT_EQ(a.endpoint->backends[2].path, "/");
  EXPECT_EQ(a.targets[1].authority, "127.0.0.1:8002");
  EXPECT_EQ(a.targets[1].base_path, "");
  EXPECT_EQ(a.deadline_ms, 3000u);

  // Repeatable, and the flags replace the file's list like --route does.
  const std::string file = write_temp(R"({"aggregates": [{"endpoint": "/file", "backends": [
      {"name": "a", "upstream": "http://127.0.0.1:1", "path": "/a"}]}]})");
  LoadResult two = run({"--config", file, "--aggregate=/a=x:http://127.0.0.1:1/x",
                        "--aggregate=/b=y:http://127.0.0.1:1/y"});
  ASSERT_TRUE(two.ok) << two.error;
  ASSERT_EQ(two.config.aggregates.size(), 2u);
  EXPECT_EQ(two.config.aggregates[1].endpoint->path, "/b");
}

TEST(ConfigAggregates, BadFlagFormsNameTheFlag) {
  const char* bad[] = {
      "--aggregate=/x",                                   // no legs
      "--aggregate==a:http://127.0.0.1:1/a",              // no pattern
      "--aggregate=x=a:http://127.0.0.1:1/a",             // pattern without '/'
      "--aggregate=/x=http://127.0.0.1:1/a",              // no leg name
      "--aggregate=/x=a:ftp://127.0.0.1:1/a",             // not http
      "--aggregate=/x=a:http://127.0.0.1:1/{nope}",       // unknown parameter
      "--aggregate=/x=a:http://127.0.0.1:1/a,a:http://127.0.0.1:1/b",  // duplicate name
      "--aggregate=/x=a b:http://127.0.0.1:1/a",          // name not a token
      "--aggregate=/x=a:http://127.0.0.1:1/a,",           // empty leg
  };
  for (const char* flag : bad) {
    LoadResult r = run({flag});
    EXPECT_FALSE(r.ok) << flag;
    EXPECT_NE(r.error.find("--aggregate"), std::string::npos) << flag << " -> " << r.error;
  }
}

// --- TLS (issue 13) ---

TEST(ConfigTls, HttpsTargetUrlHasTlsFlagAndPort443) {
  Target t;
  std::string err;
  ASSERT_TRUE(parse_target_url("https://127.0.0.1/v1/", t, err)) << err;
  EXPECT_TRUE(t.tls);
  EXPECT_EQ(port_of(t.address), 443);
  EXPECT_EQ(t.authority, "127.0.0.1");
  EXPECT_EQ(t.base_path, "/v1");
  ASSERT_TRUE(parse_target_url("HTTPS://localhost:8443", t, err)) << err;
  EXPECT_TRUE(t.tls);
  EXPECT_EQ(port_of(t.address), 8443);
  EXPECT_EQ(t.address.host, "localhost");
  ASSERT_TRUE(parse_target_url("http://127.0.0.1", t, err)) << err;
  EXPECT_FALSE(t.tls);
  EXPECT_FALSE(parse_target_url("https://", t, err));
  EXPECT_FALSE(parse_target_url("https://u@127.0.0.1", t, err));
}

struct TlsFiles {
  std::string cert = write_temp("cert");
  std::string key = write_temp("key");
  std::string ca = write_temp("ca");
  std::string tickets = write_temp(std::string(80, 'k'));
  ~TlsFiles() {
    for (const std::string* p : {&cert, &key, &ca, &tickets}) unlink(p->c_str());
  }
};

TEST(ConfigTls, DefaultsAreOff) {
  LoadResult r = run({kRoute});
  ASSERT_TRUE(r.ok) << r.error;
  const Config& c = r.config;
  EXPECT_TRUE(c.listen_tls.empty());
  EXPECT_TRUE(c.tls_certs.empty());
  EXPECT_EQ(c.tls_min_version, "1.2");
  EXPECT_EQ(c.tls_ciphers, "");
  EXPECT_EQ(c.tls_ciphersuites, "");
  EXPECT_EQ(c.tls_client_auth, "none");
  EXPECT_EQ(c.tls_client_ca, "");
  EXPECT_EQ(c.tls_ticket_key_file, "");
  EXPECT_EQ(c.upstream_ca, "");
  EXPECT_EQ(c.hsts_s, 0u);
  EXPECT_FALSE(c.redirect_https);
}

TEST(ConfigTls, EveryTlsFlagParsed) {
  TlsFiles f;
  // Everything but --listen-tls/--redirect-https loads (the engine has no TLS listener yet).
  LoadResult r = run({kRoute, "--tls-cert", f.cert + ":" + f.key, "--tls-cert=" + f.key + ":" + f.cert,
                      "--tls-min-version", "1.3", "--tls-ciphers", "ECDHE-RSA-AES128-GCM-SHA256",
                      "--tls-ciphersuites", "TLS_AES_256_GCM_SHA384", "--tls-client-ca", f.ca,
                      "--tls-client-auth", "required", "--tls-ticket-key-file", f.tickets,
                      "--upstream-ca", f.ca, "--hsts", "31536000"});
  ASSERT_TRUE(r.ok) << r.error;
  const Config& c = r.config;
  ASSERT_EQ(c.tls_certs.size(), 2u);
  EXPECT_EQ(c.tls_certs[0].cert, f.cert);
  EXPECT_EQ(c.tls_certs[0].key, f.key);
  EXPECT_EQ(c.tls_certs[1].cert, f.key);
  EXPECT_EQ(c.tls_min_version, "1.3");
  EXPECT_EQ(c.tls_ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(c.tls_ciphersuites, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(c.tls_client_ca, f.ca);
  EXPECT_EQ(c.tls_client_auth, "required");
  EXPECT_EQ(c.tls_ticket_key_file, f.tickets);
  EXPECT_EQ(c.upstream_ca, f.ca);
  EXPECT_EQ(c.hsts_s, 31'536'000u);
  EXPECT_FALSE(c.redirect_https);
}

TEST(ConfigTls, HttpsAggregateBackendsAreRefusedUntilWired) {
  TlsFiles f;
  // TLS listeners and the redirect are served; https aggregate backends are refused.
  LoadResult r = run({kRoute, "--listen-tls", "127.0.0.1:8443", "--listen-tls=[::1]:8443",
                      "--tls-cert", f.cert + ":" + f.key});
  ASSERT_TRUE(r.ok) << r.error;
  r = run({kRoute, "--listen-tls", "127.0.0.1:8443", "--tls-cert", f.cert + ":" + f.key,
           "--redirect-https"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.config.redirect_https);
  r = run({"--route", "/api=http://127.0.0.1:1,https://127.0.0.1:8443/v1"});
  ASSERT_TRUE(r.ok) << r.error;  // https upstreams of routes are served
  const std::string path = write_temp(R"({"aggregates": [{"endpoint": "/me",
      "backends": [{"name": "user", "upstream": "https://127.0.0.1:8443", "path": "/u"}]}]})");
  r = run({"--config", path});
  unlink(path.c_str());
  ASSERT_TRUE(r.ok) << r.error;  // https:// aggregate legs are served too
  ASSERT_EQ(r.config.aggregates.size(), 1u);
  ASSERT_EQ(r.config.aggregates[0].targets.size(), 1u);
  EXPECT_TRUE(r.config.aggregates[0].targets[0].tls);
}

TEST(ConfigTls, BadTlsSettingsGiveClearErrors) {
  TlsFiles f;
  const std::string cert_key = f.cert + ":" + f.key;
  const std::vector<BadCase> cases = {
      {{kRoute, "--listen-tls", "127.0.0.1"}, "--listen-tls: missing port"},
      {{kRoute, "--listen-tls", "127.0.0.1:8443"}, "--listen-tls needs at least one --tls-cert"},
      {{kRoute, "--tls-cert", f.cert}, "--tls-cert: expected CERT.pem:KEY.pem"},
      {{kRoute, "--tls-cert", f.cert + ":"}, "--tls-cert: expected CERT.pem:KEY.pem"},
      {{kRoute, "--tls-cert", "/nonexistent/c.pem:" + f.key},
       "--tls-cert: cannot read certificate file '/nonexistent/c.pem': No such file"},
      {{kRoute, "--tls-cert", f.cert + ":/nonexistent/k.pem"},
       "--tls-cert: cannot read key file '/nonexistent/k.pem'"},
      {{kRoute, "--tls-min-version", "1.1"}, "--tls-min-version: expected 1.2 or 1.3"},
      {{kRoute, "--tls-min-version", "TLSv1.2"}, "--tls-min-version: expected 1.2 or 1.3"},
      {{kRoute, "--tls-ciphers", "A B"}, "--tls-ciphers: expected a ':'-separated"},
      {{kRoute, "--tls-ciphersuites", ""}, "--tls-ciphersuites: expected"},
      {{kRoute, "--tls-client-auth", "maybe"}, "--tls-client-auth: expected none, optional or required"},
      {{kRoute, "--tls-client-auth", "required"}, "--tls-client-auth required needs --tls-client-ca"},
      {{kRoute, "--tls-client-ca", f.ca}, "--tls-client-ca is set but --tls-client-auth is none"},
      {{kRoute, "--tls-client-ca", "/nonexistent/ca.pem"}, "--tls-client-ca: cannot read file"},
      {{kRoute, "--tls-ticket-key-file", "/nonexistent/t.key"}, "--tls-ticket-key-file: cannot read"},
      {{kRoute, "--upstream-ca", "/nonexistent/ca.pem"}, "--upstream-ca: cannot read"},
      {{kRoute, "--hsts", "-1"}, "--hsts"},
      {{kRoute, "--hsts", "1y"}, "--hsts"},
      {{kRoute, "--redirect-https"}, "--redirect-https needs a --listen-tls listener"},
      {{kRoute, "--redirect-https=maybe"}, "--redirect-https"},
      {{kRoute, "--listen", "127.0.0.1:8443", "--listen-tls", "127.0.0.1:8443", "--tls-cert", cert_key},
       "--listen-tls 127.0.0.1:8443 is also a plaintext --listen address"},
  };
  for (const BadCase& bc : cases) {
    LoadResult r = run(bc.args);
    std::string joined;
    for (const auto& a : bc.args) joined += a + " ";
    EXPECT_FALSE(r.ok) << joined;
    EXPECT_NE(r.error.find(bc.expect), std::string::npos) << joined << " -> " << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
  }
}

TEST(ConfigTls, JsonCarriesTheSameSettings) {
  TlsFiles f;
  Config c;
  std::string err;
  const std::string json = R"({"listen_tls": ["127.0.0.1:8443"], "tls": {"certs": [")" + f.cert +
                           ":" + f.key + R"("], "min_version": "1.3", "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256",
      "ciphersuites": "TLS_AES_128_GCM_SHA256", "client_ca": ")" + f.ca +
                           R"(", "client_auth": "optional", "ticket_key_file": ")" + f.tickets +
                           R"("}, "upstream_ca": ")" + f.ca + R"(", "hsts": 600, "redirect_https": true,
      "routes": [{"prefix": "/s/", "upstreams": ["https://127.0.0.1:9443/x"]}]})";
  ASSERT_TRUE(apply_json(json, c, err)) << err;
  ASSERT_EQ(c.listen_tls.size(), 1u);
  EXPECT_EQ(port_of(c.listen_tls[0]), 8443);
  ASSERT_EQ(c.tls_certs.size(), 1u);
  EXPECT_EQ(c.tls_certs[0].key, f.key);
  EXPECT_EQ(c.tls_min_version, "1.3");
  EXPECT_EQ(c.tls_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(c.tls_ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(c.tls_client_ca, f.ca);
  EXPECT_EQ(c.tls_client_auth, "optional");
  EXPECT_EQ(c.tls_ticket_key_file, f.tickets);
  EXPECT_EQ(c.upstream_ca, f.ca);
  EXPECT_EQ(c.hsts_s, 600u);
  EXPECT_TRUE(c.redirect_https);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_TRUE(c.routes[0].targets[0].tls);

  struct Case {
    std::string json;
    std::string expect;
  };
  const std::vector<Case> bad = {
      {R"({"tls": {"min_version": "1.0"}})", "tls.min_version: expected 1.2 or 1.3"},
      {R"({"tls": {"min_version": 1.3}})", "tls.min_version: expected a string"},
      {R"({"tls": {"client_auth": "yes"}})", "tls.client_auth: expected none, optional or required"},
      {R"({"tls": {"certs": ["/nonexistent/c.pem:/nonexistent/k.pem"]}})", "tls.certs[0]: cannot read certificate file"},
      {R"({"tls": {"bogus": 1}})", "tls.bogus: unknown key"},
      {R"({"listen_tls": "127.0.0.1:8443"})", "listen_tls: expected an array"},
      {R"({"hsts": "soon"})", "hsts"},
      {R"({"redirect_https": "yes"})", "redirect_https: expected true or false"},
  };
  for (const Case& bc : bad) {
    Config cc;
    std::string e;
    EXPECT_FALSE(apply_json(bc.json, cc, e)) << bc.json;
    EXPECT_NE(e.find(bc.expect), std::string::npos) << bc.json << " -> " << e;
  }
}

TEST(ConfigTls, HelpListsTheTlsFlags) {
  testing::internal::CaptureStdout();
  LoadResult r = run({"--help"});
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(r.ok);
  for (const char* f : {"--listen-tls HOST:PORT", "--tls-cert CERT.pem:KEY.pem",
                        "--tls-min-version 1.2|1.3", "--tls-ciphers LIST", "--tls-ciphersuites LIST",
                        "--tls-client-ca FILE", "--tls-client-auth none|optional|required",
                        "--tls-ticket-key-file FILE", "--upstream-ca FILE", "--hsts SECONDS",
                        "--redirect-https "}) {
    const size_t at = out.find(f);
    ASSERT_NE(at, std::string::npos) << f;
    const std::string line = out.substr(at, out.find('\n', at) - at);
    EXPECT_NE(line.find("(default: "), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace ringway::config

namespace ringway::config {
namespace {

// Issue 16: --cache and the per-route "cache" object.
TEST(ConfigCache, FlagAndPerRouteObject) {
  LoadResult r = run({kRoute, "--cache", "64m"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.config.cache_size, 64ull << 20);
  EXPECT_FALSE(r.config.routes[0].cache.configured);

  Config c;
  std::string err;
  ASSERT_TRUE(apply_json(R"({"routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"],
      "cache": {"size": "1m", "default_ttl": "10s", "max_ttl": "1h", "key_headers": ["X-Tenant"],
                "allow_authorized": false}}]})", c, err)) << err;
  const RouteCache& rc = c.routes[0].cache;
  EXPECT_TRUE(rc.configured && rc.enabled);
  EXPECT_EQ(rc.size, 1ull << 20);
  EXPECT_EQ(rc.default_ttl_ms, 10'000u);
  EXPECT_EQ(rc.max_ttl_ms, 3'600'000u);
  EXPECT_EQ(rc.key_headers, std::vector<std::string>{"X-Tenant"});
  EXPECT_FALSE(rc.allow_authorized);

  for (const auto& [args, expect] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{kRoute, "--cache", "1k"}, "--cache: a cache needs at least 64k"},
           {{kRoute, "--cache", "big"}, "--cache"}}) {
    LoadResult br = run(args);
    EXPECT_FALSE(br.ok) << expect;
    EXPECT_NE(br.error.find(expect), std::string::npos) << expect << " -> " << br.error;
  }
  // Validation that needs the whole configuration: a store to use, TTLs that make sense.
  for (const auto& [cache, expect] : std::vector<std::pair<std::string, std::string>>{
           {R"({"enabled": true})", "no memory for it"},
           {R"({"size": "1m", "default_ttl": "1h", "max_ttl": "1m"})", "default_ttl is longer"},
           {R"({"size": "1m", "max_ttl": "500ms"})", "whole seconds"}}) {
    const std::string path = write_temp(R"({"routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"], "cache": )" +
                                        cache + "}]}");
    LoadResult br = run({"--config", path});
    unlink(path.c_str());
    EXPECT_FALSE(br.ok) << cache;
    EXPECT_NE(br.error.find(expect), std::string::npos) << cache << " -> " << br.error;
  }
  for (const auto& [json, expect] : std::vector<std::pair<std::string, std::string>>{
           {R"({"routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"], "cache": {"size": "1k"}}]})", "cache.size"},
           {R"({"routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"], "cache": {"key_headers": ["a b"]}}]})", "cache.key_headers"},
           {R"({"routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"], "cache": {"ttl": "1s"}}]})", "cache.ttl: unknown key"},
           {R"({"routes": [{"prefix": "/a/", "upstreams": ["http://127.0.0.1:1"], "cache": true}]})", "cache: expected an object"}}) {
    Config bc;
    EXPECT_FALSE(apply_json(json, bc, err)) << json;
    EXPECT_NE(err.find(expect), std::string::npos) << json << " -> " << err;
  }
}

}  // namespace
}  // namespace ringway::config
