// The JSON merge engine of aggregate endpoints: leg bodies (one per backend) in, one JSON object
// out. A MergeWorkspace belongs to one worker thread and is reused by every aggregate request on
// that worker (its buffers keep their capacity, so steady state does not allocate). A Merger is
// per aggregate request; the Endpoint and every leg body must stay alive and unchanged until
// finish() returns, because the output is assembled from views into them.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/agg/endpoint.h"

namespace ringway::agg {

// How a leg whose output is its own body (Backend::raw_reusable()) is validated before its bytes
// are copied: kOnDemand walks it with simdjson on-demand (checking every token), kDom parses it
// into simdjson's DOM tape and falls back to the on-demand walk only when the DOM reports a
// number error (it refuses numbers beyond 64 bits / double range, which JSON allows). Both accept
// exactly the same bodies; bench_agg measured kDom ~30% faster, so it is the default.
enum class RawValidation : uint8_t { kOnDemand, kDom };

class MergeWorkspace {
 public:
  explicit MergeWorkspace(RawValidation raw_validation = RawValidation::kDom);
  ~MergeWorkspace();
  MergeWorkspace(const MergeWorkspace&) = delete;
  MergeWorkspace& operator=(const MergeWorkspace&) = delete;

  // For the benchmark: re-encode field by field even where raw reuse would apply.
  void set_force_reencode(bool on) { force_reencode_ = on; }

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
  bool force_reencode_ = false;
  friend class Merger;
};

// The merged result, valid after finish().
struct MergeOutcome {
  size_t legs = 0;
  size_t failed = 0;
  bool complete() const { return failed == 0; }  // false: add "X-Gateway-Completed: false"
  // 200 when at least one leg succeeded; when every leg failed: 504 if every failure was a
  // timeout (504), else 502. The caller answers with this status.
  uint16_t status = 200;
};

// Leg rules, in the order they apply to a successful (2xx) body:
//   1. size > Endpoint::max_leg_body, not valid JSON (RFC 8259, whole document), or a top level
//      that is not an object (an array when is_collection) -> failed leg (502).
//   2. is_collection: the array becomes {"<group>": [...]} with group, else {"collection": [...]}
//      (KrakenD's rule); mapping may rename "collection". target/allow/deny are config errors.
//   3. target: descend into the dot path; missing or not an object -> failed leg.
//   4. allow (keep only the listed paths) or deny (drop them); "a.b" reaches into object "a"; a
//      path through a non-object is ignored; an object whose fields were all filtered stays {}.
//   5. mapping renames top-level keys. 6. group wraps the result under one key.
// Legs merge in config order (MergeMode). Failed legs appear as RFC 9457 problem objects under
// "_errors".<leg name>, which is written last and replaces any "_errors" a backend returned.
// Numbers, strings and keys are copied as the backend wrote them (so 64-bit ids and float text
// survive); only gateway-made strings are escaped.
class Merger {
 public:
  Merger(const Endpoint& endpoint, MergeWorkspace& workspace);

  // Starts a new aggregate request (keeps buffer capacity).
  void reset(const Endpoint& endpoint);

  // body: the upstream response body. SIMDJSON_PADDING readable bytes must follow
  // body.data() + body.size() (the caller's receive buffer keeps that slack); they are read,
  // never written. A status outside 2xx makes the leg failed (502).
  void add_leg(size_t leg_index, std::string_view body, int status);
  // A leg that produced no body: 502 (connect/protocol error) or 504 (timeout).
  void add_failed_leg(size_t leg_index, uint16_t status, std::string_view detail);
  // A leg never reported counts as failed (502, "no response"). Overwrites out.
  void finish(std::string& out);

  const MergeOutcome& outcome() const { return outcome_; }

  struct Leg {
    enum class State : uint8_t { kPending, kBody, kFailed } state = State::kPending;
    uint16_t status = 0;
    std::string_view body;
    std::string detail;  // failed legs only (rare path: may allocate)
  };

 private:
  const Endpoint* endpoint_;
  MergeWorkspace* ws_;
  std::vector<Leg> legs_;
  MergeOutcome outcome_;
};

// Status to answer when every leg failed (see MergeOutcome::status); 200 otherwise.
uint16_t aggregate_status(std::span<const uint16_t> failed_leg_statuses, size_t total_legs);

// Header helpers for the data path.
// "X-Gateway-Completed" value.
inline std::string_view completed_header_value(const MergeOutcome& o) {
  return o.complete() ? "true" : "false";
}

struct LegTiming {
  std::string_view name;   // Backend::name (a token, checked by parse_endpoint)
  uint64_t duration_us = 0;
};
// Appends a W3C Server-Timing header value, one metric per leg in the given order:
// `user;dur=12.345, orders;dur=40.1` (milliseconds, at most 3 decimals, trailing zeros dropped).
void append_server_timing(std::span<const LegTiming> legs, std::string& out);

}  // namespace ringway::agg
