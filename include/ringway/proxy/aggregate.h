// The fan-out state of one aggregate request: one leg per backend, each an upstream request of
// its own through the worker's pools, and the merged reply. Allocated per aggregate request (a
// rarer path than forwarding) and owned by its Exchange; a leg's connection points back to the
// leg only while the leg runs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringway::upstream {
struct UpstreamConn;
}  // namespace ringway::upstream

namespace ringway::proxy {

struct Exchange;
struct AggState;

struct AggLeg {
  AggState* agg = nullptr;
  upstream::UpstreamConn* up = nullptr;  // null before connect and after the leg ended
  uint32_t instance = 0;
  std::string head;                // request head to send (copied to the UpstreamConn)
  std::string body;                // response body (chunked: decoded as it arrives)
  bool chunked = false;
  bool until_close = false;
  bool head_done = false;
  bool ended = false;
  bool failed = false;
  bool reused = false;
  bool retried = false;
  bool attempt_open = false;       // issue 14: begin_attempt taken on `instance`
  uint16_t status = 0;
  std::string_view detail;         // static text
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
};

struct AggState {
  Exchange* ex = nullptr;
  uint32_t index = 0;              // in Config::aggregates
  uint32_t remaining = 0;          // legs not ended
  uint64_t deadline_ns = 0;        // monotonic; the io_uring timeout fires at or after it
  bool timed_out = false;
  std::vector<AggLeg> legs;
  std::string out;                 // the client response: head + merged body
};

}  // namespace ringway::proxy
