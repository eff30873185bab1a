// The "aggregates" array of the config file: each element is an agg::Endpoint object (validated
// by agg::parse_endpoint, which rejects unknown keys) plus the keys that belong to the gateway
// rather than the merge engine (schema.cc's aggregate_fields(): deadline, headers and the Access
// keys). Also --aggregate, the flag form. Runs once at start-up.
#include <simdjson.h>

#include <string_view>

#include "config/schema.h"
#include "config/values.h"
#include "ringway/agg/endpoint.h"
#include "ringway/core/json_escape.h"

namespace ringway::config::detail {
namespace {

bool is_gateway_key(std::string_view key) {
  for (const AggregateField& f : aggregate_fields()) {
    if (key == f.json_key) return true;
  }
  return false;
}


bool parse_one(simdjson::dom::object obj, Aggregate& a, const std::string& path, std::string& e) {
  // agg::parse_endpoint refuses keys it does not know, so the gateway's own keys are taken out
  // and each part is re-serialized for its reader (start-up only: the copies do not matter).
  std::string gateway = "{";
  std::string rest = "{";
  for (auto member : obj) {
    std::string& into = is_gateway_key(member.key) ? gateway : rest;
    if (into.size() > 1) into += ',';
    core::append_json_string(into, member.key);
    into += ':';
    into += simdjson::to_string(member.value);
  }
  gateway += '}';
  rest += '}';
  simdjson::dom::parser gateway_parser;
  simdjson::dom::object gateway_obj;
  if (gateway_parser.parse(gateway).get(gateway_obj) != simdjson::SUCCESS ||
      !apply_object<Aggregate>(a, gateway_obj, aggregate_fields(), path + ".", "", e)) {
    if (e.empty()) e = path + ": invalid endpoint object";
    return false;
  }
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
  c.aggregates.clear();
  return for_each_object(v, path, "endpoint", e,
                         [&](simdjson::dom::object obj, const std::string& item_path) {
                           Aggregate a;
                           if (!parse_one(obj, a, item_path, e)) return false;
                           c.aggregates.push_back(std::move(a));
                           return true;
                         });
}

}  // namespace ringway::config::detail

namespace ringway::config::detail {

// --aggregate PATTERN=NAME:URL[,NAME:URL...]: each URL is split into the upstream (scheme and
// authority) and the backend path (which may use PATTERN's {param}s), and each leg's body is
// grouped under its NAME, so legs never clash. NAME[] marks a leg whose body is a JSON array
// (is_collection). The result goes through the same validation as the file form, which offers
// every other option.
bool add_flag_aggregate(Config& c, std::string_view v, std::string& e) {
  const std::string_view usage = "expected PATTERN=NAME[[]]:URL[,NAME[[]]:URL...]";
  const size_t eq = v.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == v.size()) {
    e = std::string(usage) + ", got '" + std::string(v) + "'";
    return false;
  }
  std::string json = "{\"endpoint\":";
  core::append_json_string(json, v.substr(0, eq));
  json += ",\"backends\":[";
  std::string_view legs = v.substr(eq + 1);
  bool first = true;
  while (true) {
    const size_t comma = legs.find(',');
    const std::string_view leg = legs.substr(0, comma);
    const size_t colon = leg.find(':');
    std::string_view name = colon == std::string_view::npos ? leg : leg.substr(0, colon);
    const bool collection = name.size() > 2 && name.substr(name.size() - 2) == "[]";
    if (collection) name.remove_suffix(2);
    const std::string_view url = colon == std::string_view::npos ? std::string_view{} : leg.substr(colon + 1);
    const size_t scheme = url.substr(0, 7) == "http://" ? 7 : url.substr(0, 8) == "https://" ? 8 : 0;
    if (name.empty() || scheme == 0) {
      e = std::string(usage) + "; '" + std::string(leg) + "' is not NAME:http[s]://HOST:PORT/PATH";
      return false;
    }
    const size_t slash = url.find('/', scheme);
    const std::string_view upstream = url.substr(0, slash);
    const std::string_view leg_path = slash == std::string_view::npos ? "/" : url.substr(slash);
    if (!first) json += ',';
    first = false;
    json += "{\"name\":";
    core::append_json_string(json, name);
    json += ",\"upstream\":";
    core::append_json_string(json, upstream);
    json += ",\"path\":";
    core::append_json_string(json, leg_path);
    json += ",\"group\":";
    core::append_json_string(json, name);
    if (collection) json += ",\"is_collection\":true";
    json += '}';
    if (comma == std::string_view::npos) break;
    legs.remove_prefix(comma + 1);
  }
  json += "]}";
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(json).get(obj) != simdjson::SUCCESS) {
    e = "invalid aggregate '" + std::string(v) + "'";
    return false;
  }
  Aggregate a;
  if (!parse_one(obj, a, "aggregate '" + std::string(v.substr(0, eq)) + "'", e)) return false;
  c.aggregates.push_back(std::move(a));
  return true;
}

}  // namespace ringway::config::detail
