// Private to src/config: the one table that describes every option for both sources. A row names
// the command-line flag, the JSON key path and the setter that both sources call, so adding an
// option is one row in schema.cc. Read-only after static initialization; used only at start-up.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringway/config/config.h"

namespace ringway::config::detail {

// How a JSON value reaches the setter.
enum class JsonKind : uint8_t {
  kString,      // JSON string -> set(text)
  kScalar,      // JSON string or integer -> set(text); sizes, durations, counts
  kBool,        // JSON true/false -> set("true"/"false")
  kStringList,  // JSON array of strings -> clear(), then set(item) for each
  kStringMap,   // JSON object of strings -> clear(), then set("name:value") for each member
  kCustom,      // json_set handles the value itself (e.g. the array of route objects)
  kNone,        // not settable from the file (--config, --help, --version, -t)
};

// What a flag does besides calling its setter.
enum class Action : uint8_t { kSet, kConfigFile, kHelp, kVersion };

template <class T>
struct Field {
  using Setter = bool (*)(T&, std::string_view text, std::string& error);
  using Clear = void (*)(T&);
  using JsonSetter = bool (*)(T&, simdjson::dom::element value, const std::string& path,
                              std::string& error);

  const char* flag = nullptr;          // long flag without "--"; nullptr: file only
  char short_flag = 0;                 // e.g. 't'; 0: none
  const char* json_key = nullptr;      // dotted key path ("timeouts.keepalive"); nullptr: flag only
  const char* metavar = nullptr;       // nullptr: a switch that takes no value
  const char* default_text = nullptr;  // for --help
  const char* help = nullptr;          // one line for --help
  JsonKind json_kind = JsonKind::kNone;
  Setter set = nullptr;
  Clear clear = nullptr;               // lists: called before the first item from each source
  JsonSetter json_set = nullptr;       // JsonKind::kCustom only
  Action action = Action::kSet;
};

using Option = Field<Config>;       // top level: flags and file
using RouteField = Field<Route>;    // inside one element of "routes" (file only)
using AggregateField = Field<Aggregate>;  // the gateway's keys of an "aggregates" element

std::span<const Option> options();
std::span<const RouteField> route_fields();
std::span<const AggregateField> aggregate_fields();

// Shared by the JSON walker (config.cc) and the "routes" custom setter (schema.cc): applies the
// members of obj to target using rows. display_prefix is prepended to key names in errors
// ("routes[2]."); key_prefix selects nested rows ("timeouts.").
template <class T>
bool apply_object(T& target, simdjson::dom::object obj, std::span<const Field<T>> rows,
                  const std::string& display_prefix, const std::string& key_prefix,
                  std::string& error);

// Calls each(object, "path[i]") for every element of a JSON array of objects ("routes",
// "aggregates"), with errors that name the array or the element. False as soon as one fails.
template <class Each>
bool for_each_object(simdjson::dom::element v, const std::string& path, const char* what,
                     std::string& error, Each each) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    error = path + ": expected an array of " + what + " objects";
    return false;
  }
  size_t i = 0;
  for (simdjson::dom::element item : arr) {
    const std::string item_path = path + "[" + std::to_string(i++) + "]";
    simdjson::dom::object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS) {
      error = item_path + ": expected an object";
      return false;
    }
    if (!each(obj, item_path)) return false;
  }
  return true;
}

// "aggregates": the array of aggregate endpoint objects, and --aggregate, the flag form for the
// simple case (aggregates.cc).
bool set_aggregates_json(Config& c, simdjson::dom::element value, const std::string& path,
                         std::string& error);
bool add_flag_aggregate(Config& c, std::string_view value, std::string& error);

// "tls": {"ca", "server_name", "cert", "key", "verify"} of one upstream object (schema.cc).
bool parse_upstream_tls(simdjson::dom::element v, const std::string& path, UpstreamTls& out,
                        std::string& e);
// Traffic management keys (issue 14, traffic.cc): per route or aggregate endpoint.
// "upstreams": ["URL" | {"url", "weight", "tls"}].
bool set_route_upstreams_json(Route& r, simdjson::dom::element v, const std::string& path,
                              std::string& error);
bool set_balance_json(TrafficSettings& t, simdjson::dom::element v, const std::string& path,
                      std::string& error);
bool set_health_check_json(TrafficSettings& t, simdjson::dom::element v, const std::string& path,
                           std::string& error);
bool set_outlier_json(TrafficSettings& t, simdjson::dom::element v, const std::string& path,
                      std::string& error);
bool set_retries_json(TrafficSettings& t, simdjson::dom::element v, const std::string& path,
                      std::string& error);
bool set_circuit_breaker_json(TrafficSettings& t, simdjson::dom::element v,
                              const std::string& path, std::string& error);
bool set_dns_refresh_json(TrafficSettings& t, simdjson::dom::element v, const std::string& path,
                          std::string& error);
bool set_default_balance(Config& c, std::string_view v, std::string& error);
// THE ONE PLACE that refuses traffic settings the engine does not act on yet.
bool reject_unwired_traffic(Config& cfg, std::string& error);  // also expands dns_refresh names
bool set_dns_max_addresses_json(TrafficSettings& t, simdjson::dom::element v, const std::string& path,
                                std::string& e);
bool set_dns_server(Config& c, std::string_view v, std::string& e);
// A TrafficSettings setter as a row's json_set for a Route or an Aggregate.
template <class T, bool (*F)(TrafficSettings&, simdjson::dom::element, const std::string&,
                             std::string&)>
bool traffic_json(T& target, simdjson::dom::element v, const std::string& path, std::string& error) {
  return F(target.traffic, v, path, error);
}

bool valid_route_prefix(std::string_view prefix, std::string& error);

}  // namespace ringway::config::detail
