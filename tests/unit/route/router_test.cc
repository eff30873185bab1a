#include "ringway/route/router.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace ringway::route {
namespace {

config::Route make_route(std::string prefix, std::vector<std::string> methods = {},
                         std::vector<std::string> hosts = {},
                         std::vector<config::HeaderMatch> headers = {}) {
  config::Route r;
  r.prefix = std::move(prefix);
  r.methods = std::move(methods);
  r.hosts = std::move(hosts);
  r.headers = std::move(headers);
  return r;
}

struct Req {
  http::Request r;
  explicit Req(std::string_view path, std::string_view method = "GET", std::string_view host = "") {
    r.path = path;
    r.method_name = method;
    r.host = host;
  }
  Req& header(std::string_view n, std::string_view v) {
    r.headers[r.header_count++] = http::Header{n, v};
    return *this;
  }
};

// Index of the matched route or -1.
int idx(const Router& router, const Req& q) {
  const Match m = router.match(q.r);
  return m.route ? static_cast<int>(m.route_index) : -1;
}

TEST(Router, LongestPrefixWins) {
  const std::vector<config::Route> routes = {make_route("/"), make_route("/api/"),
                                             make_route("/api/users/"), make_route("/api/users")};
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/")), 0);
  EXPECT_EQ(idx(router, Req("/other")), 0);
  EXPECT_EQ(idx(router, Req("/api")), 0);  // "/api/" needs the slash
  EXPECT_EQ(idx(router, Req("/api/")), 1);
  EXPECT_EQ(idx(router, Req("/api/orders")), 1);
  EXPECT_EQ(idx(router, Req("/api/users")), 3);
  EXPECT_EQ(idx(router, Req("/api/users/")), 2);
  EXPECT_EQ(idx(router, Req("/api/users/42")), 2);
  EXPECT_EQ(idx(router, Req("/api/usersx")), 1);
  const Match m = router.match(Req("/api/users/42").r);
  EXPECT_EQ(m.route, &routes[2]);
}

TEST(Router, SegmentBoundary) {
  const std::vector<config::Route> routes = {make_route("/api")};
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/api")), 0);
  EXPECT_EQ(idx(router, Req("/api/")), 0);
  EXPECT_EQ(idx(router, Req("/api/x/y")), 0);
  EXPECT_EQ(idx(router, Req("/apix")), -1);
  EXPECT_EQ(idx(router, Req("/api2/x")), -1);
  EXPECT_EQ(idx(router, Req("/ap")), -1);
  EXPECT_EQ(idx(router, Req("/")), -1);
  EXPECT_EQ(idx(router, Req("")), -1);
  EXPECT_EQ(idx(router, Req("*")), -1);
}

TEST(Router, TrailingSlashPrefix) {
  const std::vector<config::Route> routes = {make_route("/static/")};
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/static/")), 0);
  EXPECT_EQ(idx(router, Req("/static/a.css")), 0);
  EXPECT_EQ(idx(router, Req("/static")), -1);
  EXPECT_EQ(idx(router, Req("/staticx/")), -1);
}

TEST(Router, RootMatchesEverything) {
  const std::vector<config::Route> routes = {make_route("/")};
  Router router(routes);
  for (const char* p : {"/", "/a", "/a/b/c", "//"}) EXPECT_EQ(idx(router, Req(p)), 0) << p;
  EXPECT_EQ(router.match(Req("/a/b").r).remainder, "/a/b");
}

TEST(Router, Remainder) {
  const std::vector<config::Route> routes = {make_route("/api/users/"), make_route("/api"),
                                             make_route("/")};
  Router router(routes);
  EXPECT_EQ(router.match(Req("/api/users/profile").r).remainder, "/profile");
  EXPECT_EQ(router.match(Req("/api/users/").r).remainder, "/");
  EXPECT_EQ(router.match(Req("/api/x").r).remainder, "/x");
  EXPECT_EQ(router.match(Req("/api").r).remainder, "");
  EXPECT_EQ(router.match(Req("/api/").r).remainder, "/");
  EXPECT_EQ(router.match(Req("/").r).remainder, "/");
  // The remainder is a view into the request path, not a copy.
  Req q("/api/users/profile");
  const Match m = router.match(q.r);
  EXPECT_EQ(m.remainder.data(), q.r.path.data() + 10);
}

TEST(Router, MethodCondition) {
  const std::vector<config::Route> routes = {make_route("/api/", {"POST", "PUT"}),
                                             make_route("/api/", {"GET"}), make_route("/")};
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/api/x", "POST")), 0);
  EXPECT_EQ(idx(router, Req("/api/x", "PUT")), 0);
  EXPECT_EQ(idx(router, Req("/api/x", "GET")), 1);
  EXPECT_EQ(idx(router, Req("/api/x", "get")), 2);  // method names are case-sensitive
  EXPECT_EQ(idx(router, Req("/api/x", "DELETE")), 2);  // falls back to the shorter prefix
}

TEST(Router, HostCondition) {
  const std::vector<config::Route> routes = {make_route("/", {}, {"api.example.com"}),
                                             make_route("/", {}, {"[::1]", "Other.Example"}),
                                             make_route("/v/")};
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/x", "GET", "api.example.com")), 0);
  EXPECT_EQ(idx(router, Req("/x", "GET", "API.Example.COM:8080")), 0);
  EXPECT_EQ(idx(router, Req("/x", "GET", "api.example.com.evil")), -1);
  EXPECT_EQ(idx(router, Req("/x", "GET", "other.example")), 1);
  EXPECT_EQ(idx(router, Req("/x", "GET", "[::1]:8080")), 1);
  EXPECT_EQ(idx(router, Req("/x", "GET", "")), -1);
  EXPECT_EQ(idx(router, Req("/v/x", "GET", "nobody")), 2);
  EXPECT_EQ(idx(router, Req("/v/x", "GET", "api.example.com")), 2);  // longer prefix wins
}

TEST(Router, HeaderCondition) {
  const std::vector<config::Route> routes = {
      make_route("/api/", {}, {}, {{"X-Version", "2"}, {"x-tenant", "acme"}}),
      make_route("/api/", {}, {}, {{"X-Version", "2"}}), make_route("/api/")};
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/api/a").header("x-version", "2").header("X-TENANT", "acme")), 0);
  EXPECT_EQ(idx(router, Req("/api/a").header("X-Version", "2").header("X-Tenant", "ACME")), 1);
  EXPECT_EQ(idx(router, Req("/api/a").header("X-Version", "2")), 1);
  EXPECT_EQ(idx(router, Req("/api/a").header("X-Version", "3")), 2);
  EXPECT_EQ(idx(router, Req("/api/a").header("X-Versio", "2")), 2);
  EXPECT_EQ(idx(router, Req("/api/a")), 2);
  // The first field with the name decides, like Request::header().
  EXPECT_EQ(idx(router, Req("/api/a").header("X-Version", "1").header("X-Version", "2")), 2);
}

TEST(Router, SamePrefixFirstInConfigOrder) {
  const std::vector<config::Route> routes = {make_route("/b/"), make_route("/a/", {"GET"}),
                                             make_route("/a/"), make_route("/a/", {"GET"}, {"h"})};
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/a/x", "GET", "h")), 1);
  EXPECT_EQ(idx(router, Req("/a/x", "POST", "h")), 2);
}

TEST(Router, Empty) {
  const std::vector<config::Route> routes;
  Router router(routes);
  EXPECT_EQ(idx(router, Req("/")), -1);
}

// Reference: the documented semantics, applied to every route.
bool prefix_matches(std::string_view prefix, std::string_view path) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  if (prefix.back() == '/') return true;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (tolower(static_cast<unsigned char>(a[i])) != tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

int reference(const std::vector<config::Route>& routes, const http::Request& q) {
  int best = -1;
  for (size_t i = 0; i < routes.size(); ++i) {
    const config::Route& r = routes[i];
    if (!prefix_matches(r.prefix, q.path)) continue;
    if (!r.methods.empty() &&
        std::find(r.methods.begin(), r.methods.end(), q.method_name) == r.methods.end()) {
      continue;
    }
    if (!r.hosts.empty()) {
      std::string_view h = q.host.substr(0, q.host.find(':'));
      bool ok = false;
      for (const auto& rh : r.hosts) ok = ok || ieq(rh, h);
      if (!ok) continue;
    }
    if (best < 0 || r.prefix.size() > routes[best].prefix.size()) best = static_cast<int>(i);
  }
  return best;
}

TEST(Router, ThousandRoutesAgreeWithBruteForce) {
  std::mt19937 rng(12345);
  const std::vector<std::string> segs = {"api", "svc", "v1", "v2", "users", "a", "b", "orders", "x"};
  auto seg = [&] { return segs[rng() % segs.size()] + std::to_string(rng() % 4); };
  std::vector<config::Route> routes;
  for (int i = 0; i < 1000; ++i) {
    std::string p;
    const int depth = 1 + static_cast<int>(rng() % 3);
    for (int d = 0; d < depth; ++d) {
      p += '/';
      p += seg();
    }
    if (rng() % 2) p += "/";
    config::Route r = make_route(i == 500 ? "/" : p);
    if (i != 500 && rng() % 5 == 0) r.methods = {rng() % 2 ? "GET" : "POST"};
    if (i != 500 && rng() % 7 == 0) r.hosts = {rng() % 2 ? "a.test" : "b.test"};
    routes.push_back(std::move(r));
  }
  Router router(routes);
  int matched = 0, fell_back = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string path;
    const int depth = static_cast<int>(rng() % 5);
    for (int d = 0; d < depth; ++d) {
      path += '/';
      path += seg();
    }
    if (rng() % 3 == 0) path += "/";
    if (path.empty()) path = "/";
    if (rng() % 10 == 0) path += "z";  // breaks a segment boundary
    const char* method = rng() % 2 ? "GET" : "POST";
    const char* host = rng() % 3 == 0 ? "A.test:81" : (rng() % 2 ? "b.test" : "c.test");
    Req q(path, method, host);
    const int want = reference(routes, q.r);
    const Match m = router.match(q.r);
    const int got = m.route ? static_cast<int>(m.route_index) : -1;
    ASSERT_EQ(got, want) << path << " " << method << " " << host;
    if (got >= 0) {
      ++matched;
      if (got != 500) ++fell_back;
      const std::string& pre = routes[got].prefix;
      const size_t cut = pre.back() == '/' ? pre.size() - 1 : pre.size();
      EXPECT_EQ(m.remainder, std::string_view(path).substr(cut));
    }
  }
  // The generator must exercise real matches, not just the catch-all.
  EXPECT_GT(fell_back, 2000);
  EXPECT_GT(matched, 19000);
}

config::Aggregate make_aggregate(std::string pattern, std::vector<std::string> methods = {"GET"}) {
  auto ep = std::make_shared<agg::Endpoint>();
  ep->path = std::move(pattern);
  ep->methods = std::move(methods);
  config::Aggregate a;
  a.endpoint = std::move(ep);
  return a;
}

TEST(Router, AggregateEndpointsAreARouteActionTriedFirst) {
  const std::vector<config::Route> routes = {make_route("/"), make_route("/profile/")};
  const std::vector<config::Aggregate> aggs = {make_aggregate("/profile/{id}"),
                                               make_aggregate("/feed", {"GET", "HEAD"})};
  Router router(routes, aggs);
  Match m = router.match(Req("/profile/42").r);
  ASSERT_TRUE(m.found());
  EXPECT_EQ(m.aggregate, &aggs[0]);
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.route_index, 2u);  // numbered after the routes, like the filters and metrics number it
  m = router.match(Req("/feed", "HEAD").r);
  EXPECT_EQ(m.aggregate, &aggs[1]);
  EXPECT_EQ(m.route_index, 3u);
  // Another method, or a path the pattern does not take, falls through to the routes.
  m = router.match(Req("/profile/42", "POST").r);
  EXPECT_EQ(m.aggregate, nullptr);
  EXPECT_EQ(m.route, &routes[1]);
  m = router.match(Req("/profile/42/x").r);
  EXPECT_EQ(m.route, &routes[1]);
  EXPECT_EQ(idx(router, Req("/other")), 0);
  // Without aggregates nothing changes.
  Router plain(routes);
  EXPECT_EQ(plain.match(Req("/profile/42").r).route, &routes[1]);
}

}  // namespace
}  // namespace ringway::route
