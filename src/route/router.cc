// Matching strategy (measured in bench/route): a path can only match a prefix of length L when
// L is a segment boundary of the path (path[L-1] == '/', or L == path.size(), or path[L] == '/').
// The router keeps the distinct prefix lengths in descending order and, for each one that is a
// boundary of the path, looks the path's first L bytes up in an open-addressing hash table of
// the distinct prefixes. The first prefix found whose routes' conditions hold is the longest
// match. The cost is a few hashes of short strings, independent of the number of routes, and
// nothing is allocated.
#include "ringway/route/router.h"

#include <string.h>

#include <algorithm>
#include <string>

#include "ringway/core/ascii.h"

namespace ringway::route {
namespace {


// 8 bytes per step; prefixes are short, so this beats byte-at-a-time FNV without needing a
// dependency.
uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, p, n);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 32;
  return h;
}

// The Host field without its port (RFC 9110 7.2: uri-host [ ":" port ]).
std::string_view host_without_port(std::string_view host) {
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

struct CompiledRoute {
  const config::Route* route;
  uint32_t index;
  std::vector<std::string> hosts;  // lower-case
};

// One distinct prefix and the routes that share it, in config order.
struct Slot {
  uint64_t hash = 0;
  const char* prefix = nullptr;  // points into config::Route::prefix
  uint32_t length = 0;           // 0: empty slot
  uint32_t first = 0;            // into Impl::routes
  uint32_t count = 0;
};

bool conditions_hold(const CompiledRoute& cr, const http::Request& req) {
  const config::Route& r = *cr.route;
  if (!r.methods.empty()) {
    bool ok = false;
    for (const std::string& m : r.methods) {
      if (req.method_name == m) {  // method names are case-sensitive (RFC 9110 9.1)
        ok = true;
        break;
      }
    }
    if (!ok) return false;
  }
  if (!cr.hosts.empty()) {
    const std::string_view host = host_without_port(req.host);
    bool ok = false;
    for (const std::string& h : cr.hosts) {
      if (core::iequals(host, h)) {
        ok = true;
        break;
      }
    }
    if (!ok) return false;
  }
  for (const config::HeaderMatch& hm : r.headers) {
    // First field with that name, like Request::header(); values compare exactly.
    bool found = false;
    const uint16_t n = std::min<uint16_t>(req.header_count, http::kMaxHeaders);
    for (uint16_t i = 0; i < n; ++i) {
      if (core::iequals(req.headers[i].name, hm.name)) {
        if (req.headers[i].value != hm.value) return false;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

struct Router::Impl {
  std::vector<CompiledRoute> routes;  // grouped by prefix, config order within a group
  std::vector<Slot> table;            // power-of-two size, load factor <= 1/2
  uint64_t mask = 0;
  std::vector<uint32_t> lengths;      // distinct prefix lengths, descending
  std::vector<const config::Aggregate*> aggregates;
  uint32_t route_count = 0;

  const Slot* find(const char* p, uint32_t n) const {
    const uint64_t h = hash_bytes(p, n);
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = table[i];
      if (s.length == 0) return nullptr;
      if (s.hash == h && s.length == n && memcmp(s.prefix, p, n) == 0) return &s;
    }
  }
};

Router::Router(const std::vector<config::Route>& routes,
               const std::vector<config::Aggregate>& aggregates)
    : impl_(std::make_unique<Impl>()) {
  for (const config::Aggregate& a : aggregates) impl_->aggregates.push_back(&a);
  impl_->route_count = static_cast<uint32_t>(routes.size());
  // Group route indices by prefix, keeping config order inside each group.
  std::vector<uint32_t> order(routes.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return routes[a].prefix < routes[b].prefix; });

  size_t distinct = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || routes[order[i]].prefix != routes[order[i - 1]].prefix) ++distinct;
  }
  size_t cap = 8;
  while (cap < distinct * 2) cap <<= 1;
  impl_->table.assign(cap, Slot{});
  impl_->mask = cap - 1;

  for (size_t i = 0; i < order.size();) {
    const config::Route& r = routes[order[i]];
    size_t j = i;
    while (j < order.size() && routes[order[j]].prefix == r.prefix) {
      CompiledRoute cr{&routes[order[j]], order[j], {}};
      for (const std::string& h : routes[order[j]].hosts) {
        std::string lh(h);
        for (char& c : lh) c = core::to_lower(c);
        cr.hosts.push_back(std::move(lh));
      }
      impl_->routes.push_back(std::move(cr));
      ++j;
    }
    // An empty prefix can never match a path (prefixes start with '/'); config rejects it.
    if (!r.prefix.empty()) {
      Slot s;
      s.prefix = r.prefix.data();
      s.length = static_cast<uint32_t>(r.prefix.size());
      s.hash = hash_bytes(s.prefix, s.length);
      s.first = static_cast<uint32_t>(i);
      s.count = static_cast<uint32_t>(j - i);
      uint64_t k = s.hash & impl_->mask;
      while (impl_->table[k].length != 0) k = (k + 1) & impl_->mask;
      impl_->table[k] = s;
      impl_->lengths.push_back(s.length);
    }
    i = j;
  }
  std::sort(impl_->lengths.begin(), impl_->lengths.end(), std::greater<>());
  impl_->lengths.erase(std::unique(impl_->lengths.begin(), impl_->lengths.end()),
                       impl_->lengths.end());
}

Router::~Router() = default;

Match Router::match(const http::Request& req) const {
  const std::vector<const config::Aggregate*>& aggs = impl_->aggregates;
  for (uint32_t k = 0; k < aggs.size(); ++k) {
    const agg::Endpoint& ep = *aggs[k]->endpoint;
    // The parameters are found again by the aggregate phase (agg::match_path), which needs
    // them; a forwarded request's Match stays small.
    agg::PathParams params;
    if (!agg::match_path(ep.path, req.path, params)) continue;
    for (const std::string& method : ep.methods) {
      if (method != req.method_name) continue;
      Match m;
      m.aggregate = aggs[k];
      m.route_index = impl_->route_count + k;
      return m;
    }
  }
  const std::string_view path = req.path;
  const char* p = path.data();
  const size_t n = path.size();
  for (const uint32_t len : impl_->lengths) {
    if (len > n) continue;
    // Only segment boundaries can end a match (see the comment at the top). A found prefix
    // equals the path's first len bytes, so it ends in '/' exactly when slash_before holds;
    // otherwise the path must end here or continue with '/'.
    const bool slash_before = p[len - 1] == '/';
    if (!slash_before && len != n && p[len] != '/') continue;
    const Slot* s = impl_->find(p, len);
    if (s == nullptr) continue;
    for (uint32_t i = s->first; i < s->first + s->count; ++i) {
      const CompiledRoute& cr = impl_->routes[i];
      if (!conditions_hold(cr, req)) continue;
      Match m;
      m.route = cr.route;
      m.route_index = cr.index;
      // Keep the '/' that ends a prefix like "/api/users/" so the remainder is "/profile".
      m.remainder = slash_before ? path.substr(len - 1) : path.substr(len);
      return m;
    }
  }
  return Match{};
}

}  // namespace ringway::route
