// One request/response pair on a downstream connection, and what it needs while it runs: the
// upstream connection it forwards to, the pipes of spliced bodies, the block holding its rebuilt
// heads, timing and byte counts for the log. Exchanges live in their worker's own storage and
// carry a generation, so something that resumes one later (a completion, a filter that paused)
// can tell whether it is still the same exchange. The phases are written in
// src/engine/proxy/exchange.cc, top to bottom.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ringway/config/config.h"
#include "ringway/filter/filter.h"
#include "ringway/http/request.h"
#include "ringway/http/head_writer.h"
#include "ringway/http/response.h"
#include "ringway/net/buffers.h"
#include "ringway/proxy/pipes.h"
#include "ringway/route/router.h"

namespace ringway::net {
struct DownstreamConn;
}  // namespace ringway::net
namespace ringway::upstream {
struct UpstreamConn;
}  // namespace ringway::upstream

namespace ringway::proxy {

struct AggState;
struct CacheState;  // proxy/cache_state.h

// A body's direction; indexes an exchange's pipes and the pump's table.
enum Dir : uint8_t { kUpload = 0, kDownload = 1 };  // upload: client -> upstream

// The parsed request and what the filters made of it. Kept by the exchange (not on a stack) so a
// filter can pause it and the phases go on later; allocated once per slot and reused.
struct RequestState {
  http::Request req;               // views into the connection's input (or Exchange::held)
  route::Match match;
  http::HeaderEdits edits;
  std::optional<filter::RequestContext> ctx;
};

struct Exchange {
  uint32_t index = 0;              // slot in the worker's storage
  uint32_t gen = 0;                // moves on each time the slot is reused
  std::unique_ptr<RequestState> rs;  // survives the slot's reuse (see Worker::begin_exchange)
  net::Buf held;                   // a paused exchange keeps its head's buffer: req's views
  bool paused = false;             // a filter has not decided yet
  bool has_body = false;           // the request has body bytes to read
  net::DownstreamConn* down = nullptr;
  upstream::UpstreamConn* up = nullptr;
  const config::Route* route = nullptr;  // the route it is forwarded by; null if not forwarded
  uint32_t route_index = 0;
  uint32_t instance = 0;           // the upstream instance picked (Clusters::instances())
  bool local = false;              // answered by the gateway (no upstream)
  http::Method method = http::Method::kOther;
  http::BodyFraming req_framing = http::BodyFraming::kNone;
  bool client_keep_alive = true;
  bool http10 = false;
  bool request_done = false;       // every request body byte was sent upstream
  bool head_sent = false;          // the request head was sent upstream
  bool response_head_done = false;
  bool response_started = false;   // some response byte was sent to the client
  bool response_done = false;
  bool close_after = false;        // close the client connection when the exchange ends
  bool retried = false;
  bool reused_upstream = false;
  // Traffic management (issue 14, upstream/traffic_io.cc).
  bool attempt_open = false;       // begin_attempt taken on `instance`, end_attempt due
  bool attempt_reported = false;   // its outcome went to passive health
  bool up_bytes_sent = false;      // some byte of this attempt's request was handed to the kernel
  bool retry_reserved = false;     // a retry budget slot is held
  bool budget_counted = false;     // counted in its cluster's retry budget as a request
  uint8_t attempts = 0;            // tries made (X-Gateway-Attempts)
  uint64_t body_limit = 0;
  uint64_t req_body_seen = 0;      // chunked bodies: bytes counted against body_limit
  uint32_t in_flight_body = 0;     // bytes of the client's `in` being sent upstream right now
  uint32_t in_flight_resp = 0;     // bytes of the upstream's `in` being sent to the client
  bool req_body_final = false;     // the request body ends with the bytes in flight
  bool resp_final = false;         // the response ends with the bytes in flight
  http::ResponseFraming resp_framing = http::ResponseFraming::kNone;
  Pipe pipe[2];                    // spliced bodies, by Dir
  bool polling[2] = {};            // a readiness poll for that direction's pump is in flight
  bool lowat_off = false;          // a body timeout lowered SO_RCVLOWAT: plain readiness from now on
  char* block = nullptr;           // worker block: upstream head, downstream head, log copies
  uint32_t up_head_len = 0;
  uint32_t interim_len = 0;        // 1xx heads written after the upstream head, not yet sent
  uint16_t status = 0;
  uint64_t start_ns = 0;
  uint64_t upstream_start_ns = 0;
  uint64_t upstream_head_ns = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::string_view log_method;     // views into block (empty when there is no access log)
  std::string_view log_target;
  std::string* admin_body = nullptr;  // admin replies only
  AggState* agg = nullptr;         // aggregate requests only
  CacheState* cache = nullptr;     // requests of a cached route only (proxy/cache_io.cc)

  // Fields filters asked to add to the response, kept past the short-lived RequestContext. The
  // store holds whatever a context can produce: every name and value a filter adds is either a
  // literal or lives in the context's scratch.
  static constexpr size_t kResponseStore =
      sizeof(filter::RequestContext::scratch) + filter::RequestContext::kMaxResponseHeaders * 64;
  struct Store {
    char bytes[kResponseStore];
    // Left uninitialized and never copied: resetting an exchange (*ex = Exchange{}) must not
    // clear or copy a kilobyte per request; resp_header_count says what is valid.
    Store() {}
    Store(const Store&) {}
    Store& operator=(const Store&) { return *this; }
  };
  http::Header resp_headers[filter::RequestContext::kMaxResponseHeaders];
  uint8_t resp_header_count = 0;
  Store resp_header_store;

  // HTTP/1.0 client, chunked response: the body is relayed decoded (RFC 9112 6.1).
  bool dechunk() const { return http10 && resp_framing == http::ResponseFraming::kChunked; }

  // Copies the fields filters asked to add; false if they do not fit (a gateway defect the caller
  // must answer loudly rather than drop a field).
  bool keep_response_headers(const filter::RequestContext& ctx) {
    size_t used = 0;
    for (uint8_t i = 0; i < ctx.response_header_count; ++i) {
      const http::Header& h = ctx.response_headers[i];
      if (used + h.name.size() + h.value.size() > kResponseStore) return false;
      char* p = resp_header_store.bytes + used;
      std::memcpy(p, h.name.data(), h.name.size());
      std::memcpy(p + h.name.size(), h.value.data(), h.value.size());
      resp_headers[resp_header_count++] =
          http::Header{{p, h.name.size()}, {p + h.name.size(), h.value.size()}};
      used += h.name.size() + h.value.size();
    }
    return true;
  }
};

}  // namespace ringway::proxy
