// Aggregate endpoints: one client path fans out to several backends whose JSON bodies are merged.
// This header is the config model (built once from the config file by parse_endpoint(), then
// shared read-only by all workers) plus path-pattern helpers that are allocation-free except
// for appending to a caller-owned string. An Endpoint must outlive every Merger built on it.
#pragma once

#include <simdjson.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringway::agg {

// How the top-level objects of the legs are combined. Key clashes: the later leg in config
// order wins (its value replaces the earlier one; the key keeps the position where it first
// appeared). kDeep merges two objects recursively and applies the same rule to non-object clashes.
enum class MergeMode : uint8_t { kShallow, kDeep };

// A compiled allow/deny list: "a.b.c" entries become a trie. Names are kept JSON-escaped
// (canonical form, see json_text.h) so they compare directly with keys read from leg bodies.
struct FieldRule {
  std::string name_json;          // escaped key, without quotes
  bool terminal = false;          // the list names this exact path (whole value)
  std::vector<FieldRule> children;
};

struct Mapping {
  std::string from_json;  // escaped top-level key
  std::string to_json;    // escaped new key
};

struct Backend {
  std::string name;              // leg name for _errors and Server-Timing (an RFC 9110 token)
  std::string upstream;          // "http://host[:port][/base]" (resolved by the config loader)
  std::string path;              // path template; may use the endpoint's {param}s
  std::string group_json;        // escaped; empty: no group
  std::vector<std::string> target_json;  // escaped dot path to descend into; empty: none
  std::vector<FieldRule> allow;  // at most one of allow / deny is non-empty
  std::vector<FieldRule> deny;
  std::vector<Mapping> mapping;  // top-level renames, applied after allow/deny
  bool is_collection = false;    // body is a top-level array (see Merger for the wrapping rule)

  // True when the leg's output is the body itself, optionally under group: the merge engine
  // then copies the validated input bytes instead of re-encoding them.
  bool raw_reusable() const {
    return target_json.empty() && allow.empty() && deny.empty() && mapping.empty() &&
           (!group_json.empty() || is_collection);
  }
};

struct Endpoint {
  std::string path;                    // pattern, e.g. "/users/{id}"; see match_path()
  std::vector<std::string> methods;    // default {"GET"}
  std::vector<Backend> backends;       // config order: the merge order
  MergeMode merge = MergeMode::kShallow;
  uint32_t max_leg_body = 1u << 20;    // a larger leg body is a failed leg
};

// Parses and validates one endpoint object:
//   {"endpoint": "/users/{id}", "methods": ["GET"], "merge": "shallow"|"deep",
//    "max_leg_body": 1048576,
//    "backends": [{"name": "user", "upstream": "http://127.0.0.1:8001", "path": "/u/{id}",
//                  "group": "g", "target": "data.user", "allow": ["a", "b.c"], "deny": [...],
//                  "mapping": {"old": "new"}, "is_collection": false}]}
// Unknown keys are errors (typos must not silently change behaviour). On failure returns false
// and sets error to a message naming the offending field; out is then unspecified.
bool parse_endpoint(simdjson::dom::element json, Endpoint& out, std::string& error);

// Captured {param} values of a matched path: views into the pattern (names) and the request
// path (values, still percent-encoded as the client sent them).
struct PathParams {
  static constexpr size_t kMax = 8;
  std::array<std::pair<std::string_view, std::string_view>, kMax> items{};
  size_t count = 0;
  std::string_view find(std::string_view name) const;
};

// Matches a request path (without query) against a pattern segment by segment: literal segments
// compare exactly, a "{name}" segment matches one non-empty segment. Segment counts must be equal
// (so a trailing '/' matters). Allocation-free.
bool match_path(std::string_view pattern, std::string_view path, PathParams& params);

// Appends tmpl to out with each {name} replaced by its param value. A value is percent-decoded
// and re-encoded so only RFC 3986 unreserved bytes stay literal (it cannot add '/', '?', '#', '&'
// or '='); a value that is not valid percent-encoding, decodes to "." or "..", or contains '/',
// '\', or a control byte is rejected (false), since an upstream that decodes before routing
// would otherwise see a different path. Also false for an unknown name.
bool expand_path(std::string_view tmpl, const PathParams& params, std::string& out);

}  // namespace ringway::agg
