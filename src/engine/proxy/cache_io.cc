// The response cache in the exchange (issue 16). The rules are cache/policy.h (RFC 9111, 9211,
// 5861) and the memory is cache/store.h (one process-wide S3-FIFO store per size); this file only
// wires them to the phases of proxy/exchange.cc:
//   filters done   cache_request: the lookup runs after the request filters, so authentication
//                  and rate limits still apply to hits. Fresh hit: the stored head is rewritten by
//                  the local head writer (Age, Cache-Status added) and the body is sent from the
//                  entry's own bytes, which the exchange holds until the send completes (no copy
//                  per hit on plaintext). Stale: forwarded with the stored validators. Miss: one
//                  exchange per key goes upstream (FillTable), the others wait.
//   response head  cache_on_response: storable? then the head is copied and the body captured as
//                  it is relayed (such exchanges take the copy path, never splice); a 304 that
//                  selects the stale entry refreshes it and the client gets the stored response.
//   end            cache_finish stores the capture; cache_end hands the waiters back.
// Waiters on other workers are resumed on their own thread through their Mailbox (Worker::post),
// named by (worker, slot, generation) so a waiter that went away is never touched.

#include <charconv>
#include <cstring>

#include "ringway/cache/http_date.h"
#include "ringway/core/clock.h"
#include "ringway/http/head_writer.h"
#include "ringway/http/parser.h"
#include "server/worker.h"

namespace ringway::server {
namespace {

// As exchange.cc: the tail of an exchange block keeps copies for the access log.
constexpr uint32_t kLogArea = 2048;
constexpr std::string_view kCacheName = "ringway";
constexpr uint64_t kTickNs = 100'000'000;  // how often fills past their lock timeout are looked for

int64_t unix_now() { return static_cast<int64_t>(core::realtime_ns() / 1'000'000'000ull); }

using Waiter = cache::FillTable::Waiter;

// A waiter handle: worker index, exchange slot and generation (24 bits each suffice).
Waiter waiter_of(unsigned worker, const Exchange& ex) {
  return (static_cast<uint64_t>(worker) << 48) | (static_cast<uint64_t>(ex.index & 0xffffff) << 24) |
         (ex.gen & 0xffffff);
}

// Rebases the views of a parsed request head onto a copy of its bytes: the response phase needs
// the request (Vary, 3.5, 4.4) after the client's buffer has been recycled.
void copy_request(const http::Request& src, std::string& bytes, http::Request& dst) {
  const char* base = src.method_name.data();
  bytes.assign(base, src.head_bytes);
  dst = src;
  auto rebase = [&](std::string_view& v) {
    if (v.data() >= base && v.data() + v.size() <= base + src.head_bytes) {
      v = std::string_view(bytes.data() + (v.data() - base), v.size());
    } else {
      v = {};
    }
  };
  rebase(dst.method_name);
  rebase(dst.target);
  rebase(dst.path);
  rebase(dst.query);
  rebase(dst.host);
  for (uint8_t i = 0; i < dst.connection_token_count; ++i) rebase(dst.connection_tokens[i]);
  for (uint16_t i = 0; i < dst.header_count; ++i) {
    rebase(dst.headers[i].name);
    rebase(dst.headers[i].value);
  }
}

// The forwarded request asks with the stored response's validators (RFC 9111 4.3.1) instead of
// the client's own conditional fields.
void ask_with_validators(const cache::Entry& e, http::HeaderEdits& ed) {
  const cache::Validators v = cache::revalidation_validators(e.headers(), e.header_count());
  ed.push_remove("If-None-Match");
  ed.push_remove("If-Modified-Since");
  if (!v.if_none_match.empty()) ed.push_add("If-None-Match", v.if_none_match);
  if (!v.if_modified_since.empty()) ed.push_add("If-Modified-Since", v.if_modified_since);
}

}  // namespace

}  // namespace ringway::server

namespace ringway::proxy {

void build_route_caches(const config::Config& cfg, std::vector<std::unique_ptr<cache::Store>>& stores,
                        std::vector<RouteCache>& routes) {
  cache::Store* global = nullptr;
  if (cfg.cache_size != 0) {
    stores.push_back(std::make_unique<cache::Store>(cfg.cache_size));
    global = stores.back().get();
  }
  routes.resize(cfg.routes.size());
  for (size_t i = 0; i < cfg.routes.size(); ++i) {
    const config::RouteCache& c = cfg.routes[i].cache;
    if (!c.enabled || (!c.configured && global == nullptr)) continue;
    RouteCache& rc = routes[i];
    if (c.size != 0) {
      stores.push_back(std::make_unique<cache::Store>(c.size));
      rc.store = stores.back().get();
    } else {
      rc.store = global;
    }
    rc.opt.default_ttl = c.default_ttl_ms / 1000;
    rc.opt.max_ttl = c.max_ttl_ms / 1000;
    rc.opt.allow_authorized = c.allow_authorized;
    for (const std::string& h : c.key_headers) rc.key_headers.push_back(core::ascii_lower(h));
    // The store refuses an entry above one shard's share (store.h: 16 shards).
    rc.max_object = rc.store->capacity() / 16;
  }
}

}  // namespace ringway::proxy

namespace ringway::server {

void Worker::post(Mailbox::Item item) {
  mailbox_.push(std::move(item));
  wake();
}

// --- filters done: the lookup ---

bool Worker::cache_request(Exchange& ex) {
  if (ex.route_index >= shared_.route_caches.size()) return false;
  const proxy::RouteCache& rc = shared_.route_caches[ex.route_index];
  if (rc.store == nullptr) return false;
  if (cache_states_.size() <= ex.index) cache_states_.resize(ex.index + 1);
  if (!cache_states_[ex.index]) cache_states_[ex.index] = std::make_unique<proxy::CacheState>();
  proxy::CacheState& st = *cache_states_[ex.index];
  const bool collapsed = ex.cache != nullptr && st.collapsed;
  st.reset();
  st.collapsed = collapsed;
  st.status.collapsed = collapsed;
  ex.cache = &st;
  st.rc = &rc;
  DownstreamConn& c = *ex.down;
  const http::Request& req = ex.rs->req;
  st.scheme = c.transport.tls() ? "https" : "http";
  st.key = cache::primary_key(st.scheme, req);
  for (const std::string& name : rc.key_headers) {
    st.key.append("\n").append(name).append(":").append(req.header(name));
  }
  if (req.method != http::Method::kGet && req.method != http::Method::kHead) {
    st.status.fwd = cache::Forward::kMethod;
    if (!cache::is_safe(req.method)) {
      st.mode = proxy::CacheMode::kInvalidate;
      copy_request(req, st.req_bytes, st.req);
    } else {
      st.mode = proxy::CacheMode::kBypass;
    }
    return false;
  }
  if (ex.has_body) {  // a GET with a body: its meaning is undefined (RFC 9110 9.3.1)
    st.mode = proxy::CacheMode::kBypass;
    st.status.fwd = cache::Forward::kBypass;
    return false;
  }
  st.dirs = cache::request_directives(req);
  const int64_t now = unix_now();
  cache::Store::Found f = rc.store->lookup(st.key, &req);
  if (f.entry) {
    const cache::Entry& e = *f.entry;
    const cache::ReuseDecision d = cache::decide_reuse(e.facts(), e.lifetime(), e.age(now), st.dirs);
    if (d.action == cache::Reuse::kFresh || d.action == cache::Reuse::kStale) {
      rc.store->count(d.action == cache::Reuse::kFresh ? cache::Counter::kHits : cache::Counter::kStaleServed);
      st.status.hit = true;
      st.status.has_ttl = true;
      st.status.ttl = d.ttl;
      cache_serve(ex, std::move(f.entry), req);
      return true;
    }
    if (d.action == cache::Reuse::kStaleWhileRevalidate) {
      // RFC 5861 3: every request gets the stale response at once; one at a time per key (the
      // fill record) also refreshes it afterwards.
      switch (rc.store->fills().begin(st.key, waiter_of(index_, ex), now_ns_)) {
        case cache::FillTable::Role::kWaiter:
          rc.store->fills().cancel(st.key, waiter_of(index_, ex));
          break;
        case cache::FillTable::Role::kFiller: {
          // This request refreshes: the stale copy now, then (cache_finish) the same exchange
          // asks the upstream with the validators, relaying nothing, and stores the answer. The
          // request is kept as a copy: the client's buffer is recycled meanwhile.
          st.filler = true;
          st.mode = proxy::CacheMode::kBackground;
          copy_request(req, st.req_bytes, st.req);
          const std::string_view rem = ex.rs->match.remainder;
          const char* base = req.method_name.data();
          if (!rem.empty() && rem.data() >= base && rem.data() + rem.size() <= base + req.head_bytes) {
            st.remainder_off = static_cast<uint32_t>(rem.data() - base);
            st.remainder_len = static_cast<uint32_t>(rem.size());
          }
          ask_with_validators(e, ex.rs->edits);
          break;
        }
        case cache::FillTable::Role::kBypass:
          break;
      }
      rc.store->count(cache::Counter::kStaleServed);
      st.status.hit = true;
      st.status.has_ttl = true;
      st.status.ttl = d.ttl;
      st.status.detail = "stale-while-revalidate";
      cache_serve(ex, std::move(f.entry), req);
      return true;
    }
    // Stale (or no-cache): ask the upstream with the stored validators (4.3.1).
    rc.store->count(cache::Counter::kRevalidations);
    st.mode = proxy::CacheMode::kRevalidate;
    st.status.fwd = cache::Forward::kStale;
    st.entry = std::move(f.entry);
    ask_with_validators(e, ex.rs->edits);
    copy_request(req, st.req_bytes, st.req);
    st.request_time = now;
    return false;
  }
  if (!collapsed) rc.store->count(cache::Counter::kMisses);
  st.status.fwd = f.key_known ? cache::Forward::kVaryMiss : cache::Forward::kUriMiss;
  if (st.dirs.cc.only_if_cached) {  // RFC 9111 5.2.1.7
    local_reply(c, 504, "only-if-cached and the response is not in the cache", false);
    return true;
  }
  if (req.method == http::Method::kHead) {  // a HEAD response has no body to store
    st.mode = proxy::CacheMode::kBypass;
    return false;
  }
  switch (rc.store->fills().begin(st.key, waiter_of(index_, ex), now_ns_)) {
    case cache::FillTable::Role::kWaiter:
      // Another exchange (any worker) is fetching this key: wait for it, as a paused filter
      // would (the head's buffer is kept, the response timeout bounds the wait).
      st.mode = proxy::CacheMode::kWaiting;
      ex.paused = true;
      set_timer(c, TimerKind::kPaused);
      return true;
    case cache::FillTable::Role::kFiller:
      st.filler = true;
      break;
    case cache::FillTable::Role::kBypass:
      st.status.detail = "uncacheable";
      break;
  }
  st.mode = proxy::CacheMode::kFill;
  // The fill asks for the whole response: the client's own conditions are answered from it.
  ex.rs->edits.push_remove("If-None-Match");
  ex.rs->edits.push_remove("If-Modified-Since");
  copy_request(req, st.req_bytes, st.req);
  st.request_time = now;
  return false;
}

// Sends a stored response (or 304 for a client's condition it satisfies, 4.3.2). The head is
// rebuilt by the local head writer; the body goes from the entry's bytes.
void Worker::cache_serve(Exchange& ex0, cache::EntryRef ref, const http::Request& req) {
  DownstreamConn& c = *ex0.down;
  proxy::CacheState& st = *ex0.cache;
  const cache::Entry& e = *ref;
  const int64_t now = unix_now();
  const int64_t age = e.age(now);
  const bool not_modified = cache::evaluate_conditional(req, e.facts(), e.response_time(), now) ==
                            cache::ClientConditional::kNotModified;
  const bool head_only = req.method == http::Method::kHead;
  const uint16_t status = not_modified ? 304 : e.status();
  Exchange& ex = begin_local(c, status, false);
  http::Header fields[http::kMaxHeaders + filter::RequestContext::kMaxResponseHeaders + 4];
  size_t n = 0;
  constexpr size_t kRoom = std::size(fields) - filter::RequestContext::kMaxResponseHeaders - 4;
  for (uint16_t i = 0; i < e.header_count() && n < kRoom; ++i) {
    const http::Header& h = e.headers()[i];
    if (http::iequals(h.name, "age")) continue;  // replaced by the current age (4.2.3)
    if (not_modified && !cache::sent_in_304(h.name)) continue;
    fields[n++] = h;
  }
  const auto [end, ec] = std::to_chars(st.age_text, st.age_text + sizeof(st.age_text), age);
  fields[n++] = http::Header{"Age", std::string_view(st.age_text, end - st.age_text)};
  fields[n++] = cache_status_field(ex);
  for (uint8_t i = 0; i < ex.resp_header_count; ++i) fields[n++] = ex.resp_headers[i];
  if (c.transport.tls() && !hsts_.empty()) fields[n++] = http::Header{"Strict-Transport-Security", hsts_};
  http::LocalHead head;
  head.status = status;
  head.content_length = e.body().size();  // for HEAD and 304 too: what a GET gets (RFC 9110 8.6)
  head.headers = {fields, n};
  head.close = ex.close_after;
  head.keep_alive = ex.http10 && !ex.close_after;
  const uint32_t at = ex.up_head_len;
  const size_t len = http::write_local_head(ex.block + at, buffers_.block_size() - kLogArea - at, head);
  if (len == 0) {
    local_reply(c, 500, "a cached response head does not fit the head buffer", false);
    return;
  }
  st.entry = std::move(ref);  // held until the exchange ends: the send reads from it
  if (st.mode != proxy::CacheMode::kBackground) st.mode = proxy::CacheMode::kNone;
  ex.response_done = true;
  ex.resp_final = true;
  c.send.hold[0] = net::Buf{ex.block, at, static_cast<uint32_t>(len), -1, false};
  c.send.count = 1;
  const std::string_view body = st.entry->body();
  if (!not_modified && !head_only && !body.empty()) {
    // Memory the entry owns (neither a provided buffer nor a block): releasing the Buf is a no-op.
    c.send.hold[1] = net::Buf{const_cast<char*>(body.data()), 0, static_cast<uint32_t>(body.size()), -1, false};
    c.send.count = 2;
  }
  ex.response_started = true;
  set_timer(c, TimerKind::kBody);
  client_send(c);
}

http::Header Worker::cache_status_field(Exchange& ex) {
  proxy::CacheState& st = *ex.cache;
  st.status_len = static_cast<uint32_t>(
      cache::format_cache_status(kCacheName, st.status, st.status_text, sizeof(st.status_text)));
  return http::Header{"Cache-Status", std::string_view(st.status_text, st.status_len)};
}

// --- response head ---

bool Worker::cache_on_response(Exchange& ex, const http::Response& resp, size_t head_len) {
  proxy::CacheState& st = *ex.cache;
  const proxy::RouteCache& rc = *st.rc;
  const int64_t now = unix_now();
  st.status.fwd_status = resp.status;
  if (st.sink) {
    // A background refresh: a 304 refreshes the entry, a storable response is captured; nothing
    // goes to the client, which has its (stale) response already.
    UpstreamConn& u = *ex.up;
    const cache::Entry& old = *st.entry;
    if (resp.status == 304 && cache::not_modified_selects(old.facts(), resp)) {
      cache::EntryRef fresh = cache::entry_refreshed(old, resp, st.request_time, now, rc.opt);
      if (fresh) rc.store->insert(std::move(fresh));
    }
    const cache::ResponseFacts facts = cache::response_facts(resp.headers, resp.header_count, resp.status, now);
    const bool store = resp.status != 304 && resp.framing != http::ResponseFraming::kUntilClose && !ex.dechunk() &&
                       (resp.framing != http::ResponseFraming::kLength || resp.content_length <= rc.max_object) &&
                       cache::storability(st.req, st.dirs.cc, resp, facts, rc.opt) == cache::Storable::kYes;
    if (!store && resp.framing != http::ResponseFraming::kNone) {
      release_upstream(&u, false);  // its body is of no use to anyone
      ex.response_done = true;
      finish_exchange(*ex.down);
      return true;
    }
    st.capture = store;
    if (store) {
      st.head.assign(u.in.begin(), head_len);
      st.body.clear();
    }
    buffers_.consume(u.in, static_cast<uint32_t>(head_len));
    if (resp.framing == http::ResponseFraming::kNone) ex.resp_final = true;
    set_timer(*ex.down, TimerKind::kBody);
    send_response_part(ex);  // the body, if any, is captured and dropped by on_response_data
    return true;
  }
  switch (st.mode) {
    case proxy::CacheMode::kInvalidate:
      // 4.4: a non-error response to an unsafe method invalidates the target and the same-origin
      // Location / Content-Location (every variant, and every key-header extension of the key).
      for (const std::string& k : cache::invalidation_keys(st.scheme, st.req, resp)) {
        rc.store->purge(k);
        rc.store->purge_prefix(k + "\n");
      }
      return false;
    case proxy::CacheMode::kRevalidate: {
      const cache::Entry& old = *st.entry;
      const bool selects = resp.status == 304 && cache::not_modified_selects(old.facts(), resp);
      const bool stale_ok = cache::is_error_status(resp.status) &&
                            cache::stale_if_error_allows(old.facts(), old.lifetime(), old.age(now), st.dirs);
      if (!selects && !stale_ok) {
        st.entry = cache::EntryRef();
        st.mode = proxy::CacheMode::kFill;
        break;  // a full response replaces the stored one, if it may be stored
      }
      UpstreamConn& u = *ex.up;
      const bool reuse = selects && resp.keep_alive && ex.request_done && u.in.len == head_len;
      buffers_.consume(u.in, static_cast<uint32_t>(head_len));
      ex.upstream_head_ns = now_ns_;
      release_upstream(&u, reuse);
      cache::EntryRef serve = st.entry;
      if (selects) {
        // 4.3.4: the stored response with the 304's fields, fresh again.
        cache::EntryRef fresh = cache::entry_refreshed(old, resp, st.request_time, now, rc.opt);
        if (fresh && rc.store->insert(fresh)) serve = std::move(fresh);
        st.status.ttl = serve->lifetime() - serve->age(now);
      } else {
        // RFC 5861 4: the upstream failed; the stale response is better than its error.
        rc.store->count(cache::Counter::kStaleServed);
        st.status.detail = "stale-if-error";
        st.status.ttl = old.lifetime() - old.age(now);
      }
      st.status.has_ttl = true;
      cache_serve(ex, std::move(serve), st.req);
      return true;
    }
    case proxy::CacheMode::kFill:
      break;
    default:
      return false;
  }
  // kFill: may this response be stored (3)? Then copy its head and capture its body.
  const cache::ResponseFacts facts = cache::response_facts(resp.headers, resp.header_count, resp.status, now);
  const cache::Storable s = cache::storability(st.req, st.dirs.cc, resp, facts, rc.opt);
  const bool framing_ok = resp.framing == http::ResponseFraming::kChunked ||
                          resp.framing == http::ResponseFraming::kNone ||
                          (resp.framing == http::ResponseFraming::kLength && resp.content_length <= rc.max_object);
  if (s == cache::Storable::kYes && framing_ok && !ex.dechunk()) {
    st.capture = true;
    st.status.stored = true;
    st.head.assign(ex.up->in.begin(), head_len);
    st.body.clear();
    if (resp.framing == http::ResponseFraming::kLength) st.body.reserve(resp.content_length);
    return false;
  }
  if (s != cache::Storable::kYes) st.status.detail = cache::storable_name(s);
  if (st.filler) {
    st.filler = false;
    // Only a verdict of the rules makes the key skip the wait next time; a large body does not.
    cache_release_waiters(rc.store->fills().finish(st.key, waiter_of(index_, ex), s == cache::Storable::kYes, now_ns_), false);
  }
  return false;
}

void Worker::cache_capture(Exchange& ex, const char* data, size_t n) {
  proxy::CacheState& st = *ex.cache;
  if (!st.capture) return;
  if (st.body.size() + n > st.rc->max_object) {  // too large to store: relay only
    st.capture = false;
    std::string().swap(st.body);
    return;
  }
  st.body.append(data, n);
}

bool Worker::cache_on_failure(Exchange& ex) {
  proxy::CacheState& st = *ex.cache;
  if (st.sink) {  // a background refresh failed: the stale entry stays; the client was answered
    if (ex.up != nullptr) release_upstream(ex.up, false);
    ex.response_done = true;
    finish_exchange(*ex.down);
    return true;
  }
  if (st.mode != proxy::CacheMode::kRevalidate || !st.entry || ex.response_started || ex.down->send.busy) {
    return false;
  }
  const int64_t now = unix_now();
  const cache::Entry& old = *st.entry;
  if (!cache::stale_if_error_allows(old.facts(), old.lifetime(), old.age(now), st.dirs)) return false;
  if (ex.up != nullptr) release_upstream(ex.up, false);
  st.rc->store->count(cache::Counter::kStaleServed);
  st.status.detail = "stale-if-error";
  st.status.has_ttl = true;
  st.status.ttl = old.lifetime() - old.age(now);
  cache_serve(ex, st.entry, st.req);
  return true;
}

// --- end ---

bool Worker::cache_finish(Exchange& ex) {
  proxy::CacheState& st = *ex.cache;
  if (st.mode == proxy::CacheMode::kBackground && !st.sink && ex.response_done) {
    // The stale response went out (RFC 5861 3): log it, then the same exchange refreshes the
    // entry upstream. The client's next request waits in its buffer until the refresh is done.
    DownstreamConn& c = *ex.down;
    log_exchange(c);
    metrics_->count_request(metrics_route(ex), ex.status);
    st.sink = true;
    ex.local = false;
    ex.response_done = false;
    ex.resp_final = false;
    ex.response_head_done = false;
    ex.head_sent = false;
    ex.status = 0;
    ex.up_head_len = 0;
    ex.interim_len = 0;
    // Failures from here on close the connection instead of answering a second time.
    ex.response_started = true;
    ex.rs->req = st.req;  // views into st.req_bytes: the client's buffer is gone
    ex.rs->match.remainder = std::string_view(st.req_bytes.data() + st.remainder_off, st.remainder_len);
    st.request_time = unix_now();
    forward_request(ex);
    return true;
  }
  if (!st.capture || !ex.response_done || ex.local) return false;
  st.capture = false;
  const proxy::RouteCache& rc = *st.rc;
  // The copied head parsed again gives the Response the entry is built from, its views into
  // st.head; a chunked body is decoded in place by the one chunk decoder (http/parser.h).
  http::ResponseParser parser(limits_);
  http::Response resp;
  bool ok = parser.parse_head(st.head.data(), st.head.size(), false, resp) == http::ParseStatus::kDone;
  size_t size = st.body.size();
  if (ok && resp.framing == http::ResponseFraming::kChunked) {
    size_t consumed = 0;
    ok = parser.feed_body_decoded(st.body.data(), st.body.size(), &consumed, &size) == http::ParseStatus::kDone;
  } else if (ok && resp.framing == http::ResponseFraming::kLength) {
    ok = size == resp.content_length;
  }
  bool stored = false;
  if (ok && size <= rc.max_object) {
    cache::EntryRef e = cache::entry_from_response(st.key, st.req, resp, st.body.data(), size,
                                                   st.request_time, unix_now(), rc.opt);
    stored = e && rc.store->insert(std::move(e));
  }
  if (st.filler) {
    st.filler = false;
    cache_release_waiters(rc.store->fills().finish(st.key, waiter_of(index_, ex), true, now_ns_), false);
  }
  (void)stored;
  return false;
}

void Worker::cache_end(Exchange& ex) {
  proxy::CacheState& st = *ex.cache;
  if (st.filler) {  // the fill ended without a response to store: the waiters try again
    cache_release_waiters(st.rc->store->fills().finish(st.key, waiter_of(index_, ex), true, now_ns_), false);
  } else if (st.mode == proxy::CacheMode::kWaiting) {
    st.rc->store->fills().cancel(st.key, waiter_of(index_, ex));
  }
  st.reset();
  ex.cache = nullptr;
}

void Worker::cache_release_waiters(const std::vector<Waiter>& waiters, bool filler) {
  for (const Waiter w : waiters) {
    const auto worker = static_cast<unsigned>(w >> 48);
    const auto slot = static_cast<uint32_t>((w >> 24) & 0xffffff);
    const auto gen = static_cast<uint32_t>(w & 0xffffff);
    if (worker >= shared_.workers.size()) continue;
    Worker* target = shared_.workers[worker];
    target->post([target, slot, gen, filler] { target->cache_wake(slot, gen, filler); });
  }
}

// On the waiter's own thread: the fill it waited for ended (or passed to it). It looks the key up
// again: a hit now, or it forwards (as the new filler, or past a key known to be uncacheable).
void Worker::cache_wake(uint32_t slot, uint32_t gen, bool filler) {
  if (slot >= exchanges_.all().size()) return;
  Exchange& ex = exchanges_[slot];
  if (ex.gen != gen || ex.down == nullptr || !ex.paused || ex.down->closing || ex.cache == nullptr ||
      ex.cache->mode != proxy::CacheMode::kWaiting) {
    return;
  }
  ex.paused = false;
  proxy::CacheState& st = *ex.cache;
  st.collapsed = true;
  if (filler) {  // the fill was handed over (lock timeout): this exchange fetches it now
    st.mode = proxy::CacheMode::kFill;
    st.filler = true;
    st.status.collapsed = true;
    ex.rs->edits.push_remove("If-None-Match");
    ex.rs->edits.push_remove("If-Modified-Since");
    copy_request(ex.rs->req, st.req_bytes, st.req);
    st.request_time = unix_now();
    forward_request(ex);
    return;
  }
  st.mode = proxy::CacheMode::kNone;
  if (!cache_request(ex)) forward_request(ex);
}

void Worker::cache_tick() {
  if (shared_.cache_stores.empty() || now_ns_ < cache_tick_ns_) return;
  cache_tick_ns_ = now_ns_ + kTickNs;
  for (const auto& store : shared_.cache_stores) {
    for (const cache::FillTable::Handover& h : store->fills().expire(now_ns_)) {
      cache_release_waiters({h.new_filler}, true);
    }
  }
}

// --- admin ---

// POST /cache/purge?url=URL purges one URL (every variant), ?prefix=URL every key under it. URLs
// are keys as the cache writes them: scheme://host[:port]/path?query.
bool Worker::cache_admin(const http::Request& req, uint16_t& status, std::string& body) {
  if (req.path != "/cache/purge") return false;
  if (shared_.cache_stores.empty()) {
    status = 404;
    body = "no cache configured\n";
    return true;
  }
  if (req.method != http::Method::kPost && req.method != http::Method::kDelete) {
    status = 405;
    body = "use POST (or DELETE) /cache/purge?url=URL or ?prefix=URL\n";
    return true;
  }
  std::string_view q = req.query;
  const bool by_prefix = q.starts_with("prefix=");
  if (!by_prefix && !q.starts_with("url=")) {
    status = 400;
    body = "give url=URL or prefix=URL\n";
    return true;
  }
  std::string_view value = q.substr(q.find('=') + 1);
  value = value.substr(0, value.find('&'));
  const auto hex = [](char ch) -> int {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
  };
  std::string url;  // percent-decoded: a URL in a query is usually escaped
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size() && hex(value[i + 1]) >= 0 && hex(value[i + 2]) >= 0) {
      url.push_back(static_cast<char>(hex(value[i + 1]) * 16 + hex(value[i + 2])));
      i += 2;
      continue;
    }
    url.push_back(value[i]);
  }
  size_t n = 0;
  for (const auto& store : shared_.cache_stores) {
    if (by_prefix) {
      n += store->purge_prefix(url);
    } else {
      n += store->purge(url);
      n += store->purge_prefix(url + "\n");  // the key-header extensions of the same URL
    }
  }
  status = 200;
  body = "purged " + std::to_string(n) + "\n";
  return true;
}

void Worker::cache_metrics(std::string& out) const {
  if (shared_.cache_stores.empty()) return;
  cache::CounterSnapshot sum;
  uint64_t capacity = 0;
  for (const auto& store : shared_.cache_stores) {
    const cache::CounterSnapshot s = store->counters();
    sum.hits += s.hits;
    sum.misses += s.misses;
    sum.stale_served += s.stale_served;
    sum.revalidations += s.revalidations;
    sum.collapsed_waiters += s.collapsed_waiters;
    sum.evictions += s.evictions;
    sum.inserts += s.inserts;
    sum.purged += s.purged;
    sum.bytes_stored += s.bytes_stored;
    sum.entries += s.entries;
    capacity += store->capacity();
  }
  const auto row = [&out](std::string_view name, std::string_view type, std::string_view help, uint64_t v) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name);
    out.append(" ").append(type).append("\n").append(name).append(" ").append(std::to_string(v)).append("\n");
  };
  row("ringway_cache_hits_total", "counter", "Responses served fresh from the cache.", sum.hits);
  row("ringway_cache_misses_total", "counter", "Cacheable requests not found in the cache.", sum.misses);
  row("ringway_cache_stale_served_total", "counter", "Stale responses served (max-stale, stale-while-revalidate, stale-if-error).", sum.stale_served);
  row("ringway_cache_revalidations_total", "counter", "Stale responses revalidated upstream.", sum.revalidations);
  row("ringway_cache_collapsed_waiters_total", "counter", "Requests that waited for another request's fill.", sum.collapsed_waiters);
  row("ringway_cache_inserts_total", "counter", "Responses stored.", sum.inserts);
  row("ringway_cache_evictions_total", "counter", "Responses evicted for room.", sum.evictions);
  row("ringway_cache_purged_total", "counter", "Responses removed by invalidation or purge.", sum.purged);
  row("ringway_cache_bytes_stored", "gauge", "Bytes the stored responses take.", sum.bytes_stored);
  row("ringway_cache_entries", "gauge", "Responses stored.", sum.entries);
  row("ringway_cache_capacity_bytes", "gauge", "Byte limit of the cache stores.", capacity);
}

}  // namespace ringway::server
