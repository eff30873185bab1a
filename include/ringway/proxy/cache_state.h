// The engine side of the response cache (issue 16): what a cached route uses (its store and
// options) and what one exchange of such a route keeps while it runs (the key, a copy of the
// request for Vary and 3.5 decisions at response time, the entry it sends or revalidates, the
// response it captures for storing). A CacheState belongs to its worker's exchange slot and is
// reset when the exchange ends; the stores are process-wide (include/ringway/cache/store.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringway/cache/policy.h"
#include "ringway/cache/store.h"
#include "ringway/config/config.h"
#include "ringway/http/request.h"

namespace ringway::proxy {

// Per route, built once at start-up.
struct RouteCache {
  cache::Store* store = nullptr;  // null: the route is not cached
  cache::Options opt;
  std::vector<std::string> key_headers;  // lower-cased
  uint64_t max_object = 0;       // larger responses are relayed, not stored
};

// Builds the stores (one for --cache, one per route with its own size) and the per-route table.
void build_route_caches(const config::Config& cfg, std::vector<std::unique_ptr<cache::Store>>& stores,
                        std::vector<RouteCache>& routes);

enum class CacheMode : uint8_t {
  kNone,        // not looked at (or a hit already sent)
  kFill,        // a miss forwarded: store the response if it may be stored
  kRevalidate,  // a stale entry asked about with its validators (RFC 9111 4.3.1)
  kBackground,  // stale-while-revalidate: the stale copy goes out first, then the exchange
                // refreshes the entry upstream with nothing relayed to its client (sink)
  kInvalidate,  // an unsafe method: invalidate on a non-error response (4.4)
  kBypass,      // forwarded as is (a body, no-store...): only Cache-Status is added
  kWaiting,     // paused behind another exchange's fill (collapsed forwarding)
};

struct CacheState {
  const RouteCache* rc = nullptr;
  CacheMode mode = CacheMode::kNone;
  bool filler = false;           // holds the fill record of key (collapsed forwarding)
  bool capture = false;          // the response is being copied for storing
  bool collapsed = false;        // waited for another exchange's fill
  bool sink = false;             // background refresh running: the response is not relayed
  uint32_t remainder_off = 0;    // the route match's remainder, as an offset into req_bytes
  uint32_t remainder_len = 0;
  std::string key;               // primary key (+ key headers)
  std::string scheme;
  std::string req_bytes;         // the request head, copied on a miss; req's views point into it
  http::Request req;
  cache::RequestDirectives dirs;
  cache::EntryRef entry;         // the entry being sent, or the stale one being revalidated
  int64_t request_time = 0;      // seconds since the epoch (4.2.3)
  cache::CacheStatus status;
  char status_text[160];
  uint32_t status_len = 0;
  char age_text[24];
  std::string head;              // upstream response head being captured
  std::string body;              // its body as received (chunked framing included)
  uint64_t head_len = 0;

  void reset() {
    rc = nullptr;
    mode = CacheMode::kNone;
    filler = capture = collapsed = sink = false;
    key.clear();
    entry = cache::EntryRef();
    status = cache::CacheStatus{};
    status_len = 0;
    // A large captured response does not stay allocated in an idle slot.
    if (body.capacity() > 65536) std::string().swap(body); else body.clear();
    head.clear();
    req_bytes.clear();
  }
};

}  // namespace ringway::proxy
