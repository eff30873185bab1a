// The traffic-management keys of a route or aggregate endpoint (issue 14): "upstreams" with
// weights, "balance", "health_check", "outlier", "retries", "circuit_breaker", "dns_refresh",
// and --balance. Each nested object is read member by member against its own key list, so a typo
// is a start-up error that names the key, never a silently ignored setting. Start-up only.
#include <arpa/inet.h>

#include <simdjson.h>

#include <string>
#include <string_view>

#include "config/schema.h"
#include "config/values.h"

namespace ringway::config::detail {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

// A JSON string or non-negative integer as text (durations, counts), like JsonKind::kScalar.
bool scalar_text(element v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS) {
    out.assign(s);
    return true;
  }
  uint64_t n = 0;
  if (v.get_uint64().get(n) == simdjson::SUCCESS) {
    out = std::to_string(n);
    return true;
  }
  return false;
}

bool duration(element v, const std::string& path, uint32_t& out, bool allow_zero, std::string& e) {
  std::string text;
  if (!scalar_text(v, text)) {
    e = path + ": expected a duration (\"500ms\", \"2s\")";
    return false;
  }
  std::string err;
  if (!parse_duration_ms(text, out, err)) {
    e = path + ": " + err;
    return false;
  }
  if (!allow_zero && out == 0) {
    e = path + ": must be more than 0";
    return false;
  }
  return true;
}

bool count(element v, const std::string& path, uint64_t min, uint64_t max, uint32_t& out,
           std::string& e) {
  std::string text, err;
  uint64_t n = 0;
  if (!scalar_text(v, text) || !parse_count(text, min, max, n, err)) {
    e = path + ": expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return false;
  }
  out = static_cast<uint32_t>(n);
  return true;
}

bool as_object(element v, const std::string& path, object& obj, std::string& e) {
  if (v.get_object().get(obj) != simdjson::SUCCESS) {
    e = path + ": expected an object";
    return false;
  }
  return true;
}

// "200-399" or "204": one inclusive range of statuses.
bool status_range(std::string_view s, uint16_t out[2]) {
  const size_t dash = s.find('-');
  std::string_view lo = s.substr(0, dash), hi = dash == std::string_view::npos ? lo : s.substr(dash + 1);
  uint64_t a = 0, b = 0;
  std::string err;
  if (!parse_count(lo, 100, 599, a, err) || !parse_count(hi, 100, 599, b, err) || a > b) return false;
  out[0] = static_cast<uint16_t>(a);
  out[1] = static_cast<uint16_t>(b);
  return true;
}

bool expect_list(element v, const std::string& path, TrafficSettings& t, std::string& e) {
  const std::string usage = path + ": expected \"200-399\", \"204\" or a list of up to 4 of them";
  std::string_view one;
  t.check_expect_count = 0;
  if (v.get_string().get(one) == simdjson::SUCCESS) {
    if (!status_range(one, t.check_expect[0])) {
      e = usage;
      return false;
    }
    t.check_expect_count = 1;
    return true;
  }
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    e = usage;
    return false;
  }
  for (element item : arr) {
    std::string_view s;
    if (t.check_expect_count == 4 || item.get_string().get(s) != simdjson::SUCCESS ||
        !status_range(s, t.check_expect[t.check_expect_count])) {
      e = usage;
      return false;
    }
    ++t.check_expect_count;
  }
  if (t.check_expect_count == 0) {
    e = usage;
    return false;
  }
  return true;
}

}  // namespace

bool set_route_upstreams_json(Route& r, element v, const std::string& path, std::string& e) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    e = path + ": expected an array of URLs or {\"url\", \"weight\", \"tls\"} objects";
    return false;
  }
  r.targets.clear();
  size_t i = 0;
  for (element item : arr) {
    const std::string item_path = path + "[" + std::to_string(i++) + "]";
    std::string_view url;
    uint32_t weight = 1;
    std::shared_ptr<UpstreamTls> tls;  // the upstream's own TLS settings (issue 13)
    object obj;
    if (item.get_string().get(url) != simdjson::SUCCESS) {
      if (item.get_object().get(obj) != simdjson::SUCCESS) {
        e = item_path + ": expected a URL or an object {\"url\", \"weight\", \"tls\"}";
        return false;
      }
      for (auto m : obj) {
        const std::string key_path = item_path + "." + std::string(m.key);
        if (m.key == "url") {
          if (m.value.get_string().get(url) != simdjson::SUCCESS) {
            e = key_path + ": expected a string";
            return false;
          }
        } else if (m.key == "weight") {
          if (!count(m.value, key_path, 1, 1000, weight, e)) return false;
        } else if (m.key == "tls") {
          tls = std::make_shared<UpstreamTls>();
          if (!parse_upstream_tls(m.value, key_path, *tls, e)) return false;
        } else {
          e = key_path + ": unknown key (url, weight, tls)";
          return false;
        }
      }
      if (url.empty()) {
        e = item_path + ": missing \"url\"";
        return false;
      }
    }
    Target t;
    std::string err;
    if (!parse_target_url_deferred(std::string(url), t, err)) {
      e = item_path + ": " + err;
      return false;
    }
    if (tls != nullptr && !t.tls) {
      e = item_path + ": \"tls\" needs an https:// URL";
      return false;
    }
    t.tls_settings = std::move(tls);
    t.weight = weight;
    r.targets.push_back(std::move(t));
  }
  return true;
}

bool set_balance_json(TrafficSettings& t, element v, const std::string& path, std::string& e) {
  std::string_view name;
  if (v.get_string().get(name) == simdjson::SUCCESS) {
    if (name != "round_robin" && name != "least_request" && name != "random") {
      e = path + ": expected round_robin, least_request, random or {\"hash\": \"header:NAME\" | "
                 "\"cookie:NAME\" | \"ip\"}, got '" + std::string(name) + "'";
      return false;
    }
    t.balance.assign(name);
    return true;
  }
  object obj;
  std::string_view on;
  if (v.get_object().get(obj) != simdjson::SUCCESS || obj.size() != 1 ||
      obj["hash"].get_string().get(on) != simdjson::SUCCESS) {
    e = path + ": expected a balancer name or {\"hash\": \"header:NAME\" | \"cookie:NAME\" | \"ip\"}";
    return false;
  }
  const size_t colon = on.find(':');
  const std::string_view source = on.substr(0, colon);
  const std::string_view name_part = colon == std::string_view::npos ? "" : on.substr(colon + 1);
  if (on == "ip") {
    t.hash_source = "ip";
  } else if ((source == "header" || source == "cookie") && is_token(name_part)) {
    t.hash_source.assign(source);
    t.hash_name.assign(name_part);
  } else {
    e = path + ".hash: expected \"header:NAME\", \"cookie:NAME\" or \"ip\", got '" + std::string(on) + "'";
    return false;
  }
  t.balance = "hash";
  return true;
}

bool set_health_check_json(TrafficSettings& t, element v, const std::string& path, std::string& e) {
  object obj;
  if (!as_object(v, path, obj, e)) return false;
  t.health_check = true;
  for (auto m : obj) {
    const std::string p = path + "." + std::string(m.key);
    bool ok = true;
    if (m.key == "path") {
      std::string_view s;
      ok = m.value.get_string().get(s) == simdjson::SUCCESS && !s.empty() && s[0] == '/';
      for (unsigned char ch : s) ok = ok && ch > 0x20 && ch < 0x7f;
      if (!ok) {
        e = p + ": expected a path starting with '/' (no spaces or controls)";
        return false;
      }
      t.check_path.assign(s);
    } else if (m.key == "interval") {
      ok = duration(m.value, p, t.check_interval_ms, false, e);
    } else if (m.key == "timeout") {
      ok = duration(m.value, p, t.check_timeout_ms, false, e);
    } else if (m.key == "healthy") {
      ok = count(m.value, p, 1, 100, t.check_healthy, e);
    } else if (m.key == "unhealthy") {
      ok = count(m.value, p, 1, 100, t.check_unhealthy, e);
    } else if (m.key == "expect") {
      ok = expect_list(m.value, p, t, e);
    } else if (m.key == "slow_start") {
      ok = duration(m.value, p, t.slow_start_ms, true, e);
    } else {
      e = p + ": unknown key";
      return false;
    }
    if (!ok) return false;
  }
  if (t.check_timeout_ms > t.check_interval_ms) {
    e = path + ".timeout: longer than the interval (one probe per interval)";
    return false;
  }
  return true;
}

bool set_outlier_json(TrafficSettings& t, element v, const std::string& path, std::string& e) {
  object obj;
  if (!as_object(v, path, obj, e)) return false;
  t.outlier_failures = 5;
  for (auto m : obj) {
    const std::string p = path + "." + std::string(m.key);
    bool ok = false;
    if (m.key == "consecutive_failures") {
      ok = count(m.value, p, 0, 1'000'000, t.outlier_failures, e);
    } else if (m.key == "base_ejection") {
      ok = duration(m.value, p, t.base_ejection_ms, false, e);
    } else if (m.key == "max_ejected_percent") {
      ok = count(m.value, p, 0, 100, t.max_ejected_percent, e);
    } else {
      e = p + ": unknown key";
    }
    if (!ok) return false;
  }
  return true;
}

bool set_retries_json(TrafficSettings& t, element v, const std::string& path, std::string& e) {
  object obj;
  if (!as_object(v, path, obj, e)) return false;
  t.retry_attempts = 2;
  // The "on" words in upstream::RetryOn's bit order (static_assert'ed where it is converted).
  static constexpr std::string_view kWords[] = {"connect-failure", "reset", "timeout", "502", "503", "504"};
  t.retry_on = 0b111;  // connect-failure, reset, timeout unless "on" says otherwise
  for (auto m : obj) {
    const std::string p = path + "." + std::string(m.key);
    bool ok = false;
    if (m.key == "attempts") {
      ok = count(m.value, p, 1, 10, t.retry_attempts, e);
    } else if (m.key == "per_try_timeout") {
      ok = duration(m.value, p, t.per_try_timeout_ms, false, e);
    } else if (m.key == "budget_percent") {
      ok = count(m.value, p, 0, 100, t.retry_budget_percent, e);
    } else if (m.key == "on") {
      simdjson::dom::array arr;
      ok = m.value.get_array().get(arr) == simdjson::SUCCESS;
      t.retry_on = 0;
      for (element item : arr) {
        std::string_view w;
        uint8_t bit = 0;
        if (item.get_string().get(w) == simdjson::SUCCESS) {
          for (size_t k = 0; k < std::size(kWords); ++k) {
            if (w == kWords[k]) bit = static_cast<uint8_t>(1u << k);
          }
        }
        if (bit == 0) ok = false;
        t.retry_on |= bit;
      }
      if (!ok) e = p + ": expected a list of connect-failure, reset, timeout, 502, 503, 504";
    } else {
      e = p + ": unknown key";
    }
    if (!ok) return false;
  }
  return true;
}

bool set_circuit_breaker_json(TrafficSettings& t, element v, const std::string& path,
                              std::string& e) {
  object obj;
  if (!as_object(v, path, obj, e)) return false;
  for (auto m : obj) {
    const std::string p = path + "." + std::string(m.key);
    bool ok = false;
    if (m.key == "max_connections") {
      ok = count(m.value, p, 1, UINT32_MAX - 1, t.max_connections, e);
    } else if (m.key == "max_pending") {
      ok = count(m.value, p, 1, UINT32_MAX - 1, t.max_pending, e);
    } else if (m.key == "max_requests") {
      ok = count(m.value, p, 1, UINT32_MAX - 1, t.max_requests, e);
    } else {
      e = p + ": unknown key";
    }
    if (!ok) return false;
  }
  return true;
}

bool set_dns_refresh_json(TrafficSettings& t, element v, const std::string& path, std::string& e) {
  return duration(v, path, t.dns_refresh_ms, false, e);
}

bool set_default_balance(Config& c, std::string_view v, std::string& e) {
  if (v != "round_robin" && v != "least_request" && v != "random") {
    e = "expected round_robin, least_request or random (hash is set per route), got '" +
        std::string(v) + "'";
    return false;
  }
  c.balance.assign(v);
  return true;
}

namespace {
const char* unwired(const TrafficSettings& t) {
  if (t.dns_refresh_ms != 0) return "dns_refresh";
  return nullptr;
}
}  // namespace

bool set_dns_max_addresses_json(TrafficSettings& t, element v, const std::string& path, std::string& e) {
  return count(v, path, 1, 16, t.dns_max_addresses, e);
}

bool set_dns_server(Config& c, std::string_view v, std::string& e) {
  // c-ares is pointed at an address, not a name (resolving the resolver would need a resolver).
  Address a;
  if (!parse_host_port(std::string(v), a, e)) return false;
  in6_addr probe;
  if (a.port == 0 || (inet_pton(AF_INET, a.host.c_str(), &probe) != 1 &&
                      inet_pton(AF_INET6, a.host.c_str(), &probe) != 1)) {
    e = "expected IP:PORT of a DNS server, got '" + std::string(v) + "'";
    return false;
  }
  c.dns_server = std::move(a);
  c.has_dns_server = true;
  return true;
}

bool reject_unwired_traffic(Config& cfg, std::string& error) {
  for (size_t i = 0; i < cfg.routes.size(); ++i) {
    Route& r = cfg.routes[i];
    if (r.traffic.dns_refresh_ms == 0) r.traffic.dns_refresh_ms = cfg.dns_refresh_ms;
    std::vector<Target> expanded;
    for (Target& t : r.targets) {
      in6_addr probe;
      const bool name = inet_pton(AF_INET, t.address.host.c_str(), &probe) != 1 &&
                        inet_pton(AF_INET6, t.address.host.c_str(), &probe) != 1;
      if (r.traffic.dns_refresh_ms == 0 || !name) {
        if (!t.resolve_error.empty()) {
          error = "routes[" + std::to_string(i) + "].upstreams: " + t.resolve_error;
          return false;
        }
        expanded.push_back(std::move(t));
        continue;
      }
      // A re-resolved name: a fixed number of slots (the instance tables are never resized);
      // the resolver thread fills them, so a name that does not resolve yet is not an error.
      for (uint32_t k = 0; k < r.traffic.dns_max_addresses; ++k) {
        Target slot = t;
        slot.dns = true;
        slot.dns_slot = static_cast<uint8_t>(k);
        expanded.push_back(std::move(slot));
      }
    }
    r.targets = std::move(expanded);
  }
  for (size_t i = 0; i < cfg.aggregates.size(); ++i) {
    if (const char* key = unwired(cfg.aggregates[i].traffic)) {
      error = "aggregates[" + std::to_string(i) + "]." + key + ": not supported yet";
      return false;
    }
  }
  return true;
}

}  // namespace ringway::config::detail
