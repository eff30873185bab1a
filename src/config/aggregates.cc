// The "aggregates" array of the config file: each element is an agg::Endpoint object (validated
// by agg::parse_endpoint, which rejects unknown keys) plus two keys that belong to the gateway
// rather than the merge engine, "deadline" and "headers". Runs once at start-up.
#include <simdjson.h>

#include "config/schema.h"
#include "config/values.h"
#include "ringway/agg/endpoint.h"

namespace ringway::config::detail {
namespace {

void append_json_string(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      out += "\\u00";
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  out += '"';
}

bool parse_one(simdjson::dom::object obj, Aggregate& a, const std::string& path, std::string& e) {
  // agg::parse_endpoint refuses keys it does not know, so the gateway's own keys are taken out
  // and the rest is re-serialized for it (start-up only: the copy does not matter).
  std::string rest = "{";
  for (auto member : obj) {
    if (member.key == "deadline") {
      std::string_view text;
      std::string err;
      if (member.value.get_string().get(text) != simdjson::SUCCESS) {
        e = path + ".deadline: expected a duration string such as \"2s\"";
        return false;
      }
      if (!parse_duration_ms(text, a.deadline_ms, err)) {
        e = path + ".deadline: " + err;
        return false;
      }
      if (a.deadline_ms == 0) {
        e = path + ".deadline: must be more than 0";
        return false;
      }
      continue;
    }
    if (member.key == "headers") {
      simdjson::dom::array arr;
      if (member.value.get_array().get(arr) != simdjson::SUCCESS) {
        e = path + ".headers: expected an array of header names";
        return false;
      }
      for (simdjson::dom::element item : arr) {
        std::string_view name;
        if (item.get_string().get(name) != simdjson::SUCCESS || !is_token(name)) {
          e = path + ".headers: each entry must be a header name (a token)";
          return false;
        }
        a.pass_headers.emplace_back(name);
      }
      continue;
    }
    if (rest.size() > 1) rest += ',';
    append_json_string(member.key, rest);
    rest += ':';
    rest += simdjson::to_string(member.value);
  }
  rest += '}';
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(rest).get(doc) != simdjson::SUCCESS) {
    e = path + ": invalid endpoint object";
    return false;
  }
  auto ep = std::make_shared<agg::Endpoint>();
  std::string err;
  if (!agg::parse_endpoint(doc, *ep, err)) {
    e = path + ": " + err;
    return false;
  }
  for (size_t i = 0; i < ep->backends.size(); ++i) {
    Target t;
    if (!parse_target_url(ep->backends[i].upstream, t, err)) {
      e = path + ".backends[" + std::to_string(i) + "].upstream: " + err;
      return false;
    }
    a.targets.push_back(std::move(t));
  }
  a.endpoint = std::move(ep);
  return true;
}

}  // namespace

bool set_aggregates_json(Config& c, simdjson::dom::element v, const std::string& path,
                         std::string& e) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    e = path + ": expected an array of endpoint objects";
    return false;
  }
  c.aggregates.clear();
  size_t i = 0;
  for (simdjson::dom::element item : arr) {
    const std::string item_path = path + "[" + std::to_string(i++) + "]";
    simdjson::dom::object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS) {
      e = item_path + ": expected an object";
      return false;
    }
    Aggregate a;
    if (!parse_one(obj, a, item_path, e)) return false;
    c.aggregates.push_back(std::move(a));
  }
  return true;
}

}  // namespace ringway::config::detail
