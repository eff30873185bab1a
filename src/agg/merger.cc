#include "ringway/agg/merger.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "agg/json_text.h"

namespace ringway::agg {

namespace od = simdjson::ondemand;

namespace {

constexpr uint32_t kNone = 0xFFFFFFFFu;
// Deeper documents are refused: the walk is recursive and runs on a worker's stack.
constexpr int kMaxDepth = 128;
constexpr size_t kInitialCapacity = 64 * 1024;
constexpr size_t kKeyChunk = 4096;

}  // namespace

// The output is assembled as a tree of nodes that point into the leg bodies: an object node per
// object the merge has to look inside, a raw node (validated JSON text copied verbatim) for
// everything else. Children are found through one open-addressing table keyed by
// (object id, escaped key), so a clash check costs O(1) at every depth.
struct MergeWorkspace::Impl {
  enum class Kind : uint8_t { kRaw, kObject };
  struct Node {
    const char* key = nullptr;
    uint32_t key_len = 0;
    Kind kind = Kind::kRaw;
    const char* raw = nullptr;
    uint32_t raw_len = 0;
    uint32_t obj_id = kNone;  // kObject: the id its children are hashed under
    uint32_t first = kNone, last = kNone, next = kNone;
    std::string_view key_view() const { return {key, key_len}; }
  };
  struct Slot {
    uint32_t gen = 0;
    uint32_t obj = 0;
    uint32_t node = 0;
  };

  RawValidation raw_validation;
  od::parser od_parser;
  simdjson::dom::parser dom_parser;
  std::vector<Node> nodes;
  std::vector<Slot> slots;
  uint32_t slot_gen = 0;
  size_t slot_used = 0;
  uint32_t next_obj_id = 0;
  std::vector<std::string> key_chunks;  // canonicalized keys; chunks never reallocate
  size_t key_chunk_used = 0;
  std::string errors;                   // the "_errors" object text

  explicit Impl(RawValidation rv) : raw_validation(rv), od_parser(64u << 20) {
    // A failed allocation here is retried by iterate(), which then reports MEMALLOC per leg.
    if (od_parser.allocate(kInitialCapacity, kMaxDepth + 2) != simdjson::SUCCESS) {
    }
    slots.resize(1024);
  }

  void reset() {
    nodes.clear();
    next_obj_id = 0;
    slot_used = 0;
    if (++slot_gen == 0) {  // wrapped: stale generations could match again
      std::fill(slots.begin(), slots.end(), Slot{});
      slot_gen = 1;
    }
    for (auto& c : key_chunks) c.clear();
    key_chunk_used = 0;
    errors.clear();
  }

  uint32_t new_node(Kind kind) {
    nodes.emplace_back();
    nodes.back().kind = kind;
    if (kind == Kind::kObject) nodes.back().obj_id = next_obj_id++;
    return static_cast<uint32_t>(nodes.size() - 1);
  }

  std::string_view store_key(std::string_view unescaped) {
    // Escape into a chunk with room; a chunk never grows past its reserve, so views stay valid.
    size_t need = unescaped.size() * 6 + 8;
    if (key_chunk_used == key_chunks.size() ||
        key_chunks[key_chunk_used].capacity() - key_chunks[key_chunk_used].size() < need) {
      if (key_chunk_used < key_chunks.size() && !key_chunks[key_chunk_used].empty())
        ++key_chunk_used;
      if (key_chunk_used == key_chunks.size()) key_chunks.emplace_back();
      auto& c = key_chunks[key_chunk_used];
      c.clear();
      if (c.capacity() < std::max(need, kKeyChunk)) c.reserve(std::max(need, kKeyChunk));
    }
    auto& c = key_chunks[key_chunk_used];
    size_t start = c.size();
    core::append_json_escaped(c, unescaped);
    return std::string_view(c.data() + start, c.size() - start);
  }

  static size_t hash(uint32_t obj, std::string_view key) {
    return std::hash<std::string_view>{}(key) ^ (uint64_t{obj} * 0x9E3779B97F4A7C15ull);
  }

  uint32_t lookup(uint32_t obj, std::string_view key) const {
    size_t mask = slots.size() - 1;
    for (size_t i = hash(obj, key) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots[i];
      if (s.gen != slot_gen) return kNone;
      if (s.obj == obj && nodes[s.node].key_view() == key) return s.node;
    }
  }

  // Points (obj, key) at node, replacing an existing entry.
  void bind(uint32_t obj, uint32_t node) {
    if ((slot_used + 1) * 2 > slots.size()) grow();
    std::string_view key = nodes[node].key_view();
    size_t mask = slots.size() - 1;
    for (size_t i = hash(obj, key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots[i];
      if (s.gen != slot_gen) {
        s = Slot{slot_gen, obj, node};
        ++slot_used;
        return;
      }
      if (s.obj == obj && nodes[s.node].key_view() == key) {
        s.node = node;
        return;
      }
    }
  }

  void grow() {
    std::vector<Slot> old;
    old.swap(slots);
    slots.assign(old.size() * 2, Slot{});
    uint32_t gen = slot_gen;
    slot_used = 0;
    for (const Slot& s : old)
      if (s.gen == gen) bind(s.obj, s.node);
  }

  // Adds child to object parent. Clash: later wins, keeping the first key's position; with
  // deep, two objects merge recursively instead.
  void put(uint32_t parent, uint32_t child, bool deep) {
    uint32_t obj = nodes[parent].obj_id;
    uint32_t existing = lookup(obj, nodes[child].key_view());
    if (existing == kNone) {
      Node& p = nodes[parent];
      nodes[child].next = kNone;
      if (p.last == kNone) {
        p.first = child;
      } else {
        nodes[p.last].next = child;
      }
      p.last = child;
      bind(obj, child);
      return;
    }
    Node& d = nodes[existing];
    Node& c = nodes[child];
    if (deep && d.kind == Kind::kObject && c.kind == Kind::kObject) {
      for (uint32_t g = c.first; g != kNone;) {
        uint32_t after = nodes[g].next;
        put(existing, g, true);
        g = after;
      }
      return;
    }
    d.kind = c.kind;
    d.raw = c.raw;
    d.raw_len = c.raw_len;
    d.obj_id = c.obj_id;
    d.first = c.first;
    d.last = c.last;
  }

  void write(uint32_t n, std::string& out) const {
    const Node& node = nodes[n];
    if (node.kind == Kind::kRaw) {
      out.append(node.raw, node.raw_len);
      return;
    }
    out += '{';
    bool first = true;
    for (uint32_t c = node.first; c != kNone; c = nodes[c].next) {
      if (!first) out += ',';
      first = false;
      out += '"';
      out.append(nodes[c].key, nodes[c].key_len);
      out += "\":";
      write(c, out);
    }
    out += '}';
  }
};

namespace {

using Impl = MergeWorkspace::Impl;
using Kind = Impl::Kind;

const FieldRule* find_rule(const std::vector<FieldRule>& rules, std::string_view key) {
  for (const FieldRule& r : rules)
    if (r.name_json == key) return &r;
  return nullptr;
}

// Turns one leg body into a detached object node (the leg's contribution), validating the whole
// document on the way: on-demand only checks what it is asked for, so every value is visited.
class LegBuilder {
 public:
  LegBuilder(Impl& ws, const Backend& be, bool expand_objects)
      : ws_(ws), be_(be), expand_(expand_objects) {}

  const char* failure = nullptr;  // static text, set when build() fails
  simdjson::error_code json_error = simdjson::SUCCESS;

  // Returns the leg's object node or kNone.
  uint32_t build(std::string_view body, bool force_reencode) {
    if (be_.raw_reusable() && (!expand_ || be_.is_collection) && !force_reencode)
      return build_raw(body);
    od::document doc;
    if (!start(body, doc)) return kNone;
    od::value root;
    if (fail_json(doc.get_value().get(root))) return kNone;
    if (be_.is_collection) {
      od::json_type t;
      if (fail_json(root.type().get(t))) return kNone;
      if (t != od::json_type::array) {
        failure = "body is not a JSON array";
        return kNone;
      }
      if (!validate(root, 0)) return kNone;
      if (!at_end(doc)) return kNone;
      return wrap(Kind::kRaw, json_text::trim(body));
    }
    od::object obj;
    if (fail_json(root.get_object().get(obj))) return kNone;
    uint32_t result = kNone;
    if (be_.target_json.empty()) {
      result = ws_.new_node(Kind::kObject);
      if (!build_object(obj, 1, result, rules_allow(), rules_deny(), true)) return kNone;
    } else if (!descend(obj, 0, 1, result)) {
      return kNone;
    }
    if (!at_end(doc)) return kNone;
    if (result == kNone) {
      failure = "target field not found or not an object";
      return kNone;
    }
    if (be_.group_json.empty()) return result;
    return wrap_node(result, be_.group_json);
  }

 private:
  const std::vector<FieldRule>* rules_allow() const {
    return be_.allow.empty() ? nullptr : &be_.allow;
  }
  const std::vector<FieldRule>* rules_deny() const {
    return be_.deny.empty() ? nullptr : &be_.deny;
  }

  bool fail_json(simdjson::error_code e) {
    if (e == simdjson::SUCCESS) return false;
    json_error = e;
    // A scalar root cannot become an on-demand value; either way it is not an object.
    if (e == simdjson::INCORRECT_TYPE || e == simdjson::SCALAR_DOCUMENT_AS_VALUE) {
      json_error = simdjson::INCORRECT_TYPE;
      failure = "body is not a JSON object";
    } else {
      failure = "invalid JSON";
    }
    return true;
  }
  bool fail(const char* why) {
    failure = why;
    return false;
  }

  bool start(std::string_view body, od::document& doc) {
    return !fail_json(ws_.od_parser.iterate(body.data(), body.size(), body.size() + simdjson::SIMDJSON_PADDING)
                          .get(doc));
  }

  // 3.0.1 has no document::at_end(); current_location() reports OUT_OF_BOUNDS there.
  bool at_end(od::document& doc) {
    const char* p;
    if (doc.current_location().get(p) != simdjson::OUT_OF_BOUNDS)
      return fail("invalid JSON: trailing content");
    return true;
  }

  uint32_t build_raw(std::string_view body) {
    std::string_view text = json_text::trim(body);
    simdjson::dom::element root;
    simdjson::error_code dom_error = simdjson::SUCCESS;
    if (ws_.raw_validation == RawValidation::kDom)
      dom_error = ws_.dom_parser.parse(body.data(), body.size(), false).get(root);
    // The DOM refuses numbers beyond 64-bit integers or double range, which RFC 8259 allows:
    // such a body (and a genuinely bad number) gets the exact on-demand check instead.
    if (ws_.raw_validation == RawValidation::kDom && dom_error != simdjson::NUMBER_ERROR) {
      if (fail_json(dom_error)) return kNone;
      bool want_array = be_.is_collection;
      if (root.type() != (want_array ? simdjson::dom::element_type::ARRAY
                                     : simdjson::dom::element_type::OBJECT)) {
        failure = want_array ? "body is not a JSON array" : "body is not a JSON object";
        return kNone;
      }
    } else {
      od::document doc;
      if (!start(body, doc)) return kNone;
      od::value root;
      if (fail_json(doc.get_value().get(root))) return kNone;
      od::json_type t;
      if (fail_json(root.type().get(t))) return kNone;
      if (t != (be_.is_collection ? od::json_type::array : od::json_type::object)) {
        failure = be_.is_collection ? "body is not a JSON array" : "body is not a JSON object";
        return kNone;
      }
      if (!validate(root, 0) || !at_end(doc)) return kNone;
    }
    return wrap(Kind::kRaw, text);
  }

  // {"<group or collection>": raw}
  uint32_t wrap(Kind kind, std::string_view raw) {
    uint32_t v = ws_.new_node(kind);
    ws_.nodes[v].raw = raw.data();
    ws_.nodes[v].raw_len = static_cast<uint32_t>(raw.size());
    std::string_view key = be_.group_json;
    if (key.empty()) {
      key = "collection";
      for (const Mapping& m : be_.mapping)
        if (m.from_json == key) key = m.to_json;
    }
    return wrap_node(v, key);
  }

  uint32_t wrap_node(uint32_t v, std::string_view key) {
    ws_.nodes[v].key = key.data();
    ws_.nodes[v].key_len = static_cast<uint32_t>(key.size());
    uint32_t top = ws_.new_node(Kind::kObject);
    ws_.put(top, v, false);
    return top;
  }

  // The key as canonical escaped text: the raw bytes when they hold no escape (then they are
  // already canonical), else unescaped (which validates the escapes) and escaped again, so
  // "\u0041" and "A" are the same key.
  bool canonical_key(od::field& f, std::string_view& key) {
    const char* p = f.key().raw();
    size_t i = 0;
    bool escaped = false;
    // Stage 1 has proven the string is closed, so this stops inside the buffer.
    while (p[i] != '"') {
      if (p[i] == '\\') {
        escaped = true;
        ++i;
      }
      ++i;
    }
    if (!escaped) {
      key = std::string_view(p, i);
      return true;
    }
    std::string_view plain;
    if (fail_json(f.unescaped_key().get(plain))) return false;
    key = ws_.store_key(plain);
    return true;
  }

  // tok: a scalar's raw token (it starts at the value, may carry trailing whitespace). Its first
  // byte says what it must be (RFC 8259 section 3); on-demand checked none of the rest.
  bool check_scalar(std::string_view tok) {
    tok = json_text::trim(tok);
    bool ok = false;
    switch (tok.empty() ? '\0' : tok[0]) {
      case '"': ok = json_text::has_valid_escapes(tok); break;
      case 't': ok = tok == "true"; break;
      case 'f': ok = tok == "false"; break;
      case 'n': ok = tok == "null"; break;
      default: ok = json_text::is_number(tok); break;
    }
    if (!ok) return fail("invalid JSON: bad scalar");
    scalar_ = tok;
    return true;
  }

  // Visits every token of v (consuming it) without producing output. Dispatches on the token's
  // first byte rather than value::type(): this is the hot loop of every leg.
  bool validate(od::value& v, int depth) {
    if (depth > kMaxDepth) return fail("JSON nested too deeply");
    std::string_view tok = v.raw_json_token();
    if (tok[0] == '{') {
      od::object obj;
      if (fail_json(v.get_object().get(obj))) return false;
      for (auto fr : obj) {
        od::field f;
        if (fail_json(std::move(fr).get(f))) return false;
        std::string_view key;
        if (!canonical_key(f, key)) return false;
        if (!validate(f.value(), depth + 1)) return false;
      }
      return true;
    }
    if (tok[0] == '[') {
      od::array arr;
      if (fail_json(v.get_array().get(arr))) return false;
      for (auto er : arr) {
        od::value e;
        if (fail_json(std::move(er).get(e))) return false;
        if (!validate(e, depth + 1)) return false;
      }
      return true;
    }
    return check_scalar(tok);
  }

  // A node holding v unchanged: verbatim text, or (deep merge) an object node per object.
  uint32_t whole(od::value& v, int depth) {
    std::string_view tok = v.raw_json_token();
    if (tok[0] == '{' && expand_) {
      od::object obj;
      if (fail_json(v.get_object().get(obj))) return kNone;
      uint32_t n = ws_.new_node(Kind::kObject);
      if (!build_object(obj, depth + 1, n, nullptr, nullptr, false)) return kNone;
      return n;
    }
    std::string_view text;
    if (tok[0] == '{' || tok[0] == '[') {
      // Not the root, so a ',' '}' or ']' follows: the value ends where that token starts.
      const char* begin = tok.data();
      if (!validate(v, depth)) return kNone;
      const char* end;
      if (fail_json(v.current_location().get(end))) return kNone;
      text = json_text::trim(std::string_view(begin, static_cast<size_t>(end - begin)));
    } else {
      if (!check_scalar(tok)) return kNone;
      text = scalar_;
    }
    uint32_t n = ws_.new_node(Kind::kRaw);
    ws_.nodes[n].raw = text.data();
    ws_.nodes[n].raw_len = static_cast<uint32_t>(text.size());
    return n;
  }

  bool is_object(od::value& v, bool& yes) {
    yes = v.raw_json_token()[0] == '{';
    return true;
  }

  // Fills object node `into` from obj, applying allow or deny rules at this level and, at the
  // top, the mapping.
  bool build_object(od::object& obj, int depth, uint32_t into, const std::vector<FieldRule>* allow,
                    const std::vector<FieldRule>* deny, bool top) {
    if (depth > kMaxDepth) return fail("JSON nested too deeply");
    for (auto fr : obj) {
      od::field f;
      if (fail_json(std::move(fr).get(f))) return false;
      std::string_view key;
      if (!canonical_key(f, key)) return false;
      od::value& v = f.value();
      uint32_t child = kNone;
      const FieldRule* r = nullptr;
      if (allow) {
        r = find_rule(*allow, key);
        if (!r) {
          if (!validate(v, depth)) return false;
          continue;
        }
      } else if (deny) {
        r = find_rule(*deny, key);
        if (r && r->terminal) {
          if (!validate(v, depth)) return false;
          continue;
        }
      }
      if (r && !r->terminal) {
        bool obj_value = false;
        if (!is_object(v, obj_value)) return false;
        if (obj_value) {
          od::object sub;
          if (fail_json(v.get_object().get(sub))) return false;
          child = ws_.new_node(Kind::kObject);
          if (!build_object(sub, depth + 1, child, allow ? &r->children : nullptr,
                            deny ? &r->children : nullptr, false))
            return false;
        } else if (allow) {  // the allowed path does not exist in this body
          if (!validate(v, depth)) return false;
          continue;
        }
      }
      if (child == kNone) {
        child = whole(v, depth);
        if (child == kNone) return false;
      }
      if (top) {
        for (const Mapping& m : be_.mapping) {
          if (m.from_json == key) {
            key = m.to_json;
            break;
          }
        }
      }
      ws_.nodes[child].key = key.data();
      ws_.nodes[child].key_len = static_cast<uint32_t>(key.size());
      ws_.put(into, child, false);
    }
    return true;
  }

  // Walks towards target[level]; the last match in document order wins.
  bool descend(od::object& obj, size_t level, int depth, uint32_t& result) {
    if (depth > kMaxDepth) return fail("JSON nested too deeply");
    for (auto fr : obj) {
      od::field f;
      if (fail_json(std::move(fr).get(f))) return false;
      std::string_view key;
      if (!canonical_key(f, key)) return false;
      od::value& v = f.value();
      bool obj_value = false;
      if (key == be_.target_json[level]) {
        if (!is_object(v, obj_value)) return false;
      }
      if (!obj_value) {
        if (!validate(v, depth)) return false;
        continue;
      }
      od::object sub;
      if (fail_json(v.get_object().get(sub))) return false;
      if (level + 1 == be_.target_json.size()) {
        result = ws_.new_node(Kind::kObject);
        if (!build_object(sub, depth + 1, result, rules_allow(), rules_deny(), true)) return false;
      } else if (!descend(sub, level + 1, depth + 1, result)) {
        return false;
      }
    }
    return true;
  }

  Impl& ws_;
  const Backend& be_;
  bool expand_;
  std::string_view scalar_;
};

const char* title_for(uint16_t status) {
  switch (status) {
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Bad Gateway";
  }
}

}  // namespace

MergeWorkspace::MergeWorkspace(RawValidation raw_validation)
    : impl_(std::make_unique<Impl>(raw_validation)) {}
MergeWorkspace::~MergeWorkspace() = default;

Merger::Merger(const Endpoint& endpoint, MergeWorkspace& workspace)
    : endpoint_(&endpoint), ws_(&workspace) {
  reset(endpoint);
}

void Merger::reset(const Endpoint& endpoint) {
  endpoint_ = &endpoint;
  legs_.resize(endpoint.backends.size());
  for (Leg& l : legs_) {
    l.state = Leg::State::kPending;
    l.status = 0;
    l.body = {};
    l.detail.clear();
  }
  outcome_ = MergeOutcome{};
}

void Merger::add_leg(size_t leg_index, std::string_view body, int status) {
  if (leg_index >= legs_.size()) return;
  Leg& l = legs_[leg_index];
  if (status < 200 || status > 299) {
    l.state = Leg::State::kFailed;
    l.status = 502;
    l.detail = "upstream answered " + std::to_string(status);
    return;
  }
  l.state = Leg::State::kBody;
  l.status = static_cast<uint16_t>(status);
  l.body = body;
}

void Merger::add_failed_leg(size_t leg_index, uint16_t status, std::string_view detail) {
  if (leg_index >= legs_.size()) return;
  Leg& l = legs_[leg_index];
  l.state = Leg::State::kFailed;
  l.status = status == 504 ? 504 : (status == 503 ? 503 : 502);
  l.detail.assign(detail);
}

void Merger::finish(std::string& out) {
  Impl& ws = ws_->impl();
  ws.reset();
  out.clear();
  const bool deep = endpoint_->merge == MergeMode::kDeep;
  const uint32_t root = ws.new_node(Kind::kObject);
  size_t total = 64;
  size_t failed = 0, timeouts = 0;
  for (size_t i = 0; i < legs_.size(); ++i) {
    Leg& l = legs_[i];
    const Backend& be = endpoint_->backends[i];
    if (l.state == Leg::State::kPending) {
      l.state = Leg::State::kFailed;
      l.status = 502;
      l.detail = "no response";
    }
    if (l.state == Leg::State::kBody) {
      if (l.body.size() > endpoint_->max_leg_body) {
        l.state = Leg::State::kFailed;
        l.status = 502;
        l.detail = "body larger than " + std::to_string(endpoint_->max_leg_body) + " bytes";
      } else {
        LegBuilder b(ws, be, deep);
        uint32_t leg_root = b.build(l.body, ws_->force_reencode_);
        if (leg_root == kNone) {
          l.state = Leg::State::kFailed;
          l.status = 502;
          l.detail = b.failure ? b.failure : "invalid JSON";
          if (b.json_error != simdjson::SUCCESS && b.json_error != simdjson::INCORRECT_TYPE) {
            l.detail += " (";
            l.detail += simdjson::error_message(b.json_error);
            l.detail += ')';
          }
        } else {
          total += l.body.size();
          for (uint32_t c = ws.nodes[leg_root].first; c != kNone;) {
            uint32_t after = ws.nodes[c].next;
            ws.put(root, c, deep);
            c = after;
          }
        }
      }
    }
    if (l.state == Leg::State::kFailed) {
      ++failed;
      if (l.status == 504) ++timeouts;
    }
  }
  if (failed) {
    // RFC 9457 section 3.1 members; "about:blank" means the title is the status phrase.
    std::string& e = ws.errors;
    e += '{';
    bool first = true;
    for (size_t i = 0; i < legs_.size(); ++i) {
      const Leg& l = legs_[i];
      if (l.state != Leg::State::kFailed) continue;
      if (!first) e += ',';
      first = false;
      e += '"';
      core::append_json_escaped(e, endpoint_->backends[i].name);
      e += "\":{\"type\":\"about:blank\",\"title\":\"";
      e += title_for(l.status);
      e += "\",\"status\":";
      e += std::to_string(l.status);
      e += ",\"detail\":\"";
      core::append_json_escaped(e, l.detail);
      e += "\"}";
    }
    e += '}';
    total += e.size();
    uint32_t n = ws.new_node(Kind::kRaw);
    ws.nodes[n].key = "_errors";
    ws.nodes[n].key_len = 7;
    ws.nodes[n].raw = e.data();
    ws.nodes[n].raw_len = static_cast<uint32_t>(e.size());
    ws.put(root, n, false);
  }
  out.reserve(total);
  ws.write(root, out);
  outcome_.legs = legs_.size();
  outcome_.failed = failed;
  outcome_.status = failed == legs_.size() && !legs_.empty() ? (timeouts == failed ? 504 : 502)
                                                             : 200;
}

uint16_t aggregate_status(std::span<const uint16_t> failed_leg_statuses, size_t total_legs) {
  if (total_legs == 0 || failed_leg_statuses.size() < total_legs) return 200;
  for (uint16_t s : failed_leg_statuses)
    if (s != 504) return 502;
  return 504;
}

void append_server_timing(std::span<const LegTiming> legs, std::string& out) {
  // W3C Server Timing: metric *( ";" param ), metrics separated by ","; dur in milliseconds.
  char buf[32];
  bool first = true;
  for (const LegTiming& t : legs) {
    if (!first) out += ", ";
    first = false;
    out.append(t.name);
    out += ";dur=";
    uint64_t ms = t.duration_us / 1000, frac = t.duration_us % 1000;
    int n = snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(ms));
    out.append(buf, static_cast<size_t>(n));
    if (frac) {
      n = snprintf(buf, sizeof buf, ".%03llu", static_cast<unsigned long long>(frac));
      while (n > 1 && buf[n - 1] == '0') --n;
      out.append(buf, static_cast<size_t>(n));
    }
  }
}

}  // namespace ringway::agg
