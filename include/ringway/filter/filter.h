// The filter contract: code that looks at a routed request before anything is forwarded and may
// answer it locally (401, 403, 429, ...) or ask the exchange to wait for an answer from elsewhere
// (a remote key, a cluster rate-limit lease, a cache fill). A FilterFactory is built once from
// the config and is immutable; it creates one Filter per worker, so a filter's mutable state is
// per-core and needs no lock. Filters run on the worker's thread, in chain order.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ringway/http/head_writer.h"
#include "ringway/http/request.h"
#include "ringway/http/response.h"
#include "ringway/route/router.h"

namespace ringway::filter {

enum class Verdict : uint8_t {
  kContinue,  // this filter is satisfied: run the next one, then forward the request
  kRespond,   // stop here: send ctx.reply to the client; nothing reaches the upstream
  kPause,     // not decided yet: the exchange waits (the client is not read meanwhile) until the
              // filter calls ctx.resumer.resume() later, from an event on this worker's thread,
              // never from inside on_request. Bounded by --upstream-response-timeout (then 504).
};

// A gateway-made reply, sent as RFC 9457 problem+json.
struct LocalReply {
  uint16_t status = 0;
  std::string_view detail;          // must outlive the exchange: static text or ctx.scratch
  static constexpr uint8_t kMaxHeaders = 4;
  http::Header headers[kMaxHeaders];  // e.g. Retry-After, WWW-Authenticate
  uint8_t header_count = 0;
};

struct LocalReply;
class LeaseChannel;  // lease_channel.h: the worker's Redis connection (cluster rate limits)

// Who to tell when a paused filter has decided. Implemented by the engine; a Resumer names one
// exchange by slot and generation, so resuming one that ended meanwhile (client gone, timeout)
// does nothing. Copyable; valid on its worker's thread only.
class ResumeTarget {
 public:
  virtual ~ResumeTarget() = default;
  virtual void resume(uint32_t slot, uint32_t gen, Verdict v, const LocalReply* reply) = 0;
};

struct Resumer {
  ResumeTarget* target = nullptr;
  uint32_t slot = 0;
  uint32_t gen = 0;
  // kContinue: the next filters run, then the request is forwarded. kRespond: reply is sent
  // (its detail and header views must stay valid until this call returns).
  void resume(Verdict v, const LocalReply* reply = nullptr) const {
    if (target != nullptr) target->resume(slot, gen, v, reply);
  }
};

struct RequestContext {
  const http::Request& request;
  const route::Match& match;
  std::string_view client_ip;     // text form of the client address
  uint64_t now_ns = 0;            // CLOCK_MONOTONIC
  http::HeaderEdits& edits;       // changes to the forwarded request head
  // Subject (RFC 2253) of the client certificate the TLS handshake verified; "" if none. Set by
  // the engine after construction; valid for the whole exchange (the session owns it).
  std::string_view peer_subject;
  LocalReply reply;               // filled by a filter that returns kRespond

  // Fields added to the client's response when the request is forwarded (e.g. RateLimit).
  static constexpr uint8_t kMaxResponseHeaders = 4;
  http::Header response_headers[kMaxResponseHeaders];
  uint8_t response_header_count = 0;

  // Storage for text a filter formats (header values, details). Lives as long as the context.
  char scratch[512];
  uint16_t scratch_used = 0;

  Resumer resumer;           // for a filter that returns kPause
  uint8_t next_filter = 0;   // where the chain goes on after a pause
  // Copies s into scratch; returns the view, or "" if it does not fit.
  std::string_view keep(std::string_view s);
};

// The upstream's final response head, before the client sees it (forwarded requests only:
// gateway-made replies and merged aggregates have no upstream head). A filter may add fields.
struct ResponseContext {
  const http::Response& response;
  uint32_t route_index = 0;       // as route::Match::route_index
  static constexpr uint8_t kMaxHeaders = 4;
  http::Header headers[kMaxHeaders];  // added after the upstream's fields
  uint8_t header_count = 0;
  char scratch[256];
  uint16_t scratch_used = 0;
  // Copies s into scratch; returns the view, or "" if it does not fit.
  std::string_view keep(std::string_view s);
  // Adds a field; false if kMaxHeaders are taken.
  bool add(std::string_view name, std::string_view value) {
    if (header_count == kMaxHeaders) return false;
    headers[header_count++] = http::Header{name, value};
    return true;
  }
};

class Filter {
 public:
  virtual ~Filter() = default;
  // Called once per request, after routing and before any byte is sent upstream.
  virtual Verdict on_request(RequestContext& ctx) = 0;
  // Called with the upstream's final response head if wants_response() (asked once, when the
  // chain is built: a chain without such filters costs nothing per response).
  virtual bool wants_response() const { return false; }
  virtual void on_response(ResponseContext& ctx) { (void)ctx; }
  // The worker's Redis channel, handed over once before the first request when --redis is set
  // (it outlives the filter). Filters that do not use Redis ignore it.
  virtual void attach(LeaseChannel* channel) { (void)channel; }
};

class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  // One instance per worker; worker_index in [0, worker_count).
  virtual std::unique_ptr<Filter> create(unsigned worker_index, unsigned worker_count) const = 0;
};

// A worker's filters in order; on_request runs them, from ctx.next_filter, until one answers or
// pauses. After a pause resumed with kContinue, on_request again goes on with the next filter.
class Chain {
 public:
  void add(std::unique_ptr<Filter> f) {
    if (f->wants_response()) response_filters_.push_back(f.get());
    filters_.push_back(std::move(f));
  }
  bool empty() const { return filters_.empty(); }
  bool has_response_filters() const { return !response_filters_.empty(); }
  void attach(LeaseChannel* channel) {
    for (auto& f : filters_) f->attach(channel);
  }
  void on_response(ResponseContext& ctx) {
    for (Filter* f : response_filters_) f->on_response(ctx);
  }
  Verdict on_request(RequestContext& ctx) {
    while (ctx.next_filter < filters_.size()) {
      const Verdict v = filters_[ctx.next_filter++]->on_request(ctx);
      if (v != Verdict::kContinue) return v;
    }
    return Verdict::kContinue;
  }

 private:
  std::vector<std::unique_ptr<Filter>> filters_;
  std::vector<Filter*> response_filters_;
};

}  // namespace ringway::filter
