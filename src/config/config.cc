// Loading: argv is tokenized against the option table, the --config file (if any) is applied
// first, then the flags in order, so flags override the file. Runs once at start-up; allocation
// and simdjson's DOM are fine here.
#include "ringway/config/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "config/schema.h"
#include "config/values.h"

#ifndef RINGWAY_VERSION
#define RINGWAY_VERSION "unknown"
#endif

namespace ringway::config {
namespace detail {
namespace {

bool scalar_text(simdjson::dom::element v, std::string& out) {
  switch (v.type()) {
    case simdjson::dom::element_type::STRING: {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) return false;
      out.assign(s);
      return true;
    }
    case simdjson::dom::element_type::INT64: {
      int64_t n = 0;
      if (v.get_int64().get(n) != simdjson::SUCCESS) return false;
      out = std::to_string(n);  // negative values fail in the setter with a range message
      return true;
    }
    case simdjson::dom::element_type::UINT64: {
      uint64_t n = 0;
      if (v.get_uint64().get(n) != simdjson::SUCCESS) return false;
      out = std::to_string(n);
      return true;
    }
    default:
      return false;
  }
}

template <class T>
bool call_set(const Field<T>& row, T& target, std::string_view text, const std::string& path,
              std::string& error) {
  std::string e;
  if (!row.set(target, text, e)) {
    error = path + ": " + e;
    return false;
  }
  return true;
}

template <class T>
bool apply_value(T& target, const Field<T>& row, simdjson::dom::element v, const std::string& path,
                 std::string& error) {
  switch (row.json_kind) {
    case JsonKind::kString: {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) {
        error = path + ": expected a string";
        return false;
      }
      return call_set(row, target, s, path, error);
    }
    case JsonKind::kScalar: {
      std::string text;
      if (!scalar_text(v, text)) {
        error = path + ": expected a string or an integer";
        return false;
      }
      return call_set(row, target, text, path, error);
    }
    case JsonKind::kBool: {
      bool b = false;
      if (v.get_bool().get(b) != simdjson::SUCCESS) {
        error = path + ": expected true or false";
        return false;
      }
      return call_set(row, target, b ? "true" : "false", path, error);
    }
    case JsonKind::kStringList: {
      simdjson::dom::array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS) {
        error = path + ": expected an array of strings";
        return false;
      }
      if (row.clear) row.clear(target);
      size_t i = 0;
      for (simdjson::dom::element item : arr) {
        const std::string item_path = path + "[" + std::to_string(i++) + "]";
        std::string_view s;
        if (item.get_string().get(s) != simdjson::SUCCESS) {
          error = item_path + ": expected a string";
          return false;
        }
        if (!call_set(row, target, s, item_path, error)) return false;
      }
      return true;
    }
    case JsonKind::kStringMap: {
      simdjson::dom::object obj;
      if (v.get_object().get(obj) != simdjson::SUCCESS) {
        error = path + ": expected an object of strings";
        return false;
      }
      if (row.clear) row.clear(target);
      for (auto member : obj) {
        const std::string item_path = path + "." + std::string(member.key);
        std::string_view s;
        if (member.value.get_string().get(s) != simdjson::SUCCESS) {
          error = item_path + ": expected a string";
          return false;
        }
        // The setter takes "NAME:VALUE" (the flag syntax); a ':' in the key would be misread.
        if (member.key.find(':') != std::string_view::npos) {
          error = item_path + ": invalid name";
          return false;
        }
        std::string text(member.key);
        text += ':';
        text += s;
        if (!call_set(row, target, text, item_path, error)) return false;
      }
      return true;
    }
    case JsonKind::kCustom:
      return row.json_set(target, v, path, error);
    case JsonKind::kNone:
      break;
  }
  error = path + ": unknown key";
  return false;
}

template <class T>
const Field<T>* find_json_row(std::span<const Field<T>> rows, std::string_view key) {
  for (const Field<T>& row : rows) {
    if (row.json_key != nullptr && row.json_kind != JsonKind::kNone && key == row.json_key) {
      return &row;
    }
  }
  return nullptr;
}

// True when some row lives under "group." (e.g. "timeouts").
template <class T>
bool is_group(std::span<const Field<T>> rows, std::string_view group) {
  for (const Field<T>& row : rows) {
    if (row.json_key == nullptr) continue;
    std::string_view k = row.json_key;
    if (k.size() > group.size() && k.substr(0, group.size()) == group && k[group.size()] == '.') {
      return true;
    }
  }
  return false;
}

}  // namespace

template <class T>
bool apply_object(T& target, simdjson::dom::object obj, std::span<const Field<T>> rows,
                  const std::string& display_prefix, const std::string& key_prefix,
                  std::string& error) {
  std::vector<std::string_view> seen;
  for (auto member : obj) {
    const std::string key = key_prefix + std::string(member.key);
    const std::string path = display_prefix + std::string(member.key);
    // simdjson's DOM keeps duplicate keys; silently letting the last one win hides typos.
    if (std::find(seen.begin(), seen.end(), member.key) != seen.end()) {
      error = path + ": duplicate key";
      return false;
    }
    seen.push_back(member.key);
    if (const Field<T>* row = find_json_row(rows, key)) {
      if (!apply_value(target, *row, member.value, path, error)) return false;
      continue;
    }
    if (is_group(rows, key)) {
      simdjson::dom::object sub;
      if (member.value.get_object().get(sub) != simdjson::SUCCESS) {
        error = path + ": expected an object";
        return false;
      }
      if (!apply_object(target, sub, rows, path + ".", key + ".", error)) return false;
      continue;
    }
    error = path + ": unknown key";
    return false;
  }
  return true;
}

template bool apply_object<Config>(Config&, simdjson::dom::object, std::span<const Field<Config>>,
                                   const std::string&, const std::string&, std::string&);
template bool apply_object<Route>(Route&, simdjson::dom::object, std::span<const Field<Route>>,
                                  const std::string&, const std::string&, std::string&);
template bool apply_object<Aggregate>(Aggregate&, simdjson::dom::object,
                                      std::span<const Field<Aggregate>>, const std::string&,
                                      const std::string&, std::string&);

}  // namespace detail

namespace {

using detail::Action;
using detail::Option;

std::string help_text() {
  std::string out = "Usage: ringway [options]\n"
                    "ringway " RINGWAY_VERSION " - io_uring HTTP/1.1 API gateway\n\nOptions:\n";
  for (const Option& o : detail::options()) {
    if (o.flag == nullptr) continue;
    std::string left = "  ";
    left += o.short_flag ? std::string("-") + o.short_flag + ", " : std::string("    ");
    left += "--";
    left += o.flag;
    if (o.metavar != nullptr) {
      left += ' ';
      left += o.metavar;
    }
    if (left.size() < 42) left.resize(42, ' ');
    else left += ' ';
    out += left;
    out += o.help;
    if (o.default_text != nullptr && o.default_text[0] != '\0') {
      out += " (default: ";
      out += o.default_text;
      out += ')';
    }
    out += '\n';
  }
  out += "\nSIZE: bytes with k/m/g suffixes (64m). DUR: 500ms, 10s, 2m, 1h; a bare number is seconds.\n";
  return out;
}

const Option* find_flag(std::string_view name, bool is_short) {
  for (const Option& o : detail::options()) {
    if (o.flag == nullptr) continue;
    if (is_short ? (name.size() == 1 && o.short_flag == name[0]) : name == o.flag) return &o;
  }
  return nullptr;
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = "--config: cannot open '" + path + "': " + strerror(errno);
    return false;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool failed = ferror(f) != 0;
  fclose(f);
  if (failed) {
    error = "--config: cannot read '" + path + "'";
    return false;
  }
  return true;
}

// Identity of a route for the duplicate check: order of hosts/methods/headers does not matter.
std::string route_key(const Route& r) {
  std::vector<std::string> hosts = r.hosts;  // already lower-case from the setter
  for (auto& h : hosts) h = detail::ascii_lower(h);
  std::vector<std::string> methods = r.methods;
  std::vector<std::string> headers;
  for (const HeaderMatch& h : r.headers) headers.push_back(detail::ascii_lower(h.name) + ':' + h.value);
  std::sort(hosts.begin(), hosts.end());
  std::sort(methods.begin(), methods.end());
  std::sort(headers.begin(), headers.end());
  std::string key = r.prefix;
  for (const auto* list : {&hosts, &methods, &headers}) {
    key += '\0';
    for (const std::string& s : *list) {
      key += s;
      key += '\x01';
    }
  }
  return key;
}

bool same_address(const Address& a, const Address& b) {
  return a.len == b.len && memcmp(&a.addr, &b.addr, a.len) == 0;
}

// TLS settings that only make sense together (issue 13). The files themselves are loaded, and
// their errors reported, by tls::ServerContext::build.
bool validate_tls(const Config& cfg, std::string& error) {
  if (!cfg.listen_tls.empty() && cfg.tls_certs.empty() && !cfg.demo) {  // --demo makes one
    error = "--listen-tls needs at least one --tls-cert CERT.pem:KEY.pem (\"tls\": {\"certs\"})";
    return false;
  }
  if (cfg.tls_client_auth != "none" && cfg.tls_client_ca.empty()) {
    error = "--tls-client-auth " + cfg.tls_client_auth + " needs --tls-client-ca FILE";
    return false;
  }
  bool any_client_auth = cfg.tls_client_auth != "none";
  for (const std::string& a : cfg.listen_tls_client_auth) {
    if (a.empty() || a == "none") continue;
    any_client_auth = true;
    if (cfg.tls_client_ca.empty()) {
      error = "listen_tls: client_auth " + a + " needs --tls-client-ca FILE";
      return false;
    }
  }
  if (!any_client_auth && !cfg.tls_client_ca.empty()) {
    error = "--tls-client-ca is set but --tls-client-auth is none: say optional or required";
    return false;
  }
  if (cfg.redirect_https && cfg.listen_tls.empty()) {
    error = "--redirect-https needs a --listen-tls listener to redirect to";
    return false;
  }
  for (const Address& t : cfg.listen_tls) {
    for (const Address& p : cfg.listen) {
      if (same_address(t, p)) {
        error = "--listen-tls " + t.host + ":" + std::to_string(t.port) +
                " is also a plaintext --listen address";
        return false;
      }
    }
  }
  return true;
}

// A route's cache (issue 16): on when --cache is given or the route has a "cache" object, unless
// "enabled": false; it then needs a store (its own size or --cache).
bool validate_route_cache(const Route& r, const Config& cfg, std::string& e) {
  const RouteCache& c = r.cache;
  if (!c.enabled || (!c.configured && cfg.cache_size == 0)) return true;
  if (c.size == 0 && cfg.cache_size == 0) {
    e = "no memory for it: give \"size\" or --cache SIZE";
    return false;
  }
  if (c.max_ttl_ms != 0 && c.default_ttl_ms > c.max_ttl_ms) {
    e = "default_ttl is longer than max_ttl";
    return false;
  }
  if ((c.max_ttl_ms != 0 && c.max_ttl_ms < 1000) || (c.default_ttl_ms != 0 && c.default_ttl_ms < 1000)) {
    e = "default_ttl and max_ttl are whole seconds (HTTP ages are): 1s at least";
    return false;
  }
  return true;
}

bool validate(Config& cfg, std::string& error) {
  if (cfg.routes.empty() && cfg.aggregates.empty() && !cfg.demo) {
    error = "no routes: give --route PREFIX=URL or \"routes\" in the config file (or --demo)";
    return false;
  }
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < cfg.routes.size(); ++i) {
    const Route& r = cfg.routes[i];
    std::string e;
    if (!detail::valid_route_prefix(r.prefix, e)) {
      error = "route " + std::to_string(i) + ": " + e;
      return false;
    }
    if (r.targets.empty()) {
      error = "route " + std::to_string(i) + " ('" + r.prefix + "'): no upstreams";
      return false;
    }
    if (!validate_route_cache(r, cfg, e)) {
      error = "route " + std::to_string(i) + " ('" + r.prefix + "'): cache: " + e;
      return false;
    }
    auto [it, inserted] = seen.emplace(route_key(r), i);
    if (!inserted) {
      error = "duplicate route: routes " + std::to_string(it->second) + " and " + std::to_string(i) +
              " have the same prefix '" + r.prefix + "', hosts, methods and headers";
      return false;
    }
  }
  if (!detail::reject_unwired_traffic(cfg, error)) return false;  // issue 14
  if (!validate_tls(cfg, error)) return false;
  if (cfg.listen.empty() && cfg.listen_tls.empty()) {  // TLS only: no plaintext listener
    Address a;
    if (!parse_host_port("0.0.0.0:8080", a, error)) return false;
    cfg.listen.push_back(std::move(a));
  }
  return true;
}

struct FlagValue {
  const Option* option;
  std::string spelled;  // "--max-body-size", for errors
  std::string value;
};

}  // namespace

bool apply_json(const std::string& json_text, Config& cfg, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(json_text).get(doc); err != simdjson::SUCCESS) {
    error = std::string("invalid JSON: ") + simdjson::error_message(err);
    return false;
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    error = "the top level must be a JSON object";
    return false;
  }
  return detail::apply_object<Config>(cfg, obj, detail::options(), "", "", error);
}

LoadResult load(int argc, char** argv) {
  LoadResult result;
  std::vector<FlagValue> flags;
  std::string config_path;
  bool has_config = false;

  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i] != nullptr ? argv[i] : "";
    std::string_view name;
    std::optional<std::string_view> inline_value;
    bool is_short = false;
    if (arg.size() > 2 && arg.substr(0, 2) == "--") {
      name = arg.substr(2);
      if (const size_t eq = name.find('='); eq != std::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
    } else if (arg.size() == 2 && arg[0] == '-' && arg[1] != '-') {
      name = arg.substr(1);
      is_short = true;
    } else {
      result.error = "unexpected argument '" + std::string(arg) + "' (see --help)";
      return result;
    }
    const Option* opt = find_flag(name, is_short);
    const std::string spelled = (is_short ? "-" : "--") + std::string(name);
    if (opt == nullptr) {
      result.error = "unknown flag '" + spelled + "' (see --help)";
      return result;
    }
    std::string value;
    if (opt->metavar != nullptr) {
      if (inline_value) {
        value.assign(*inline_value);
      } else if (i + 1 < argc && argv[i + 1] != nullptr) {
        value = argv[++i];
      } else {
        result.error = spelled + ": missing value (" + opt->metavar + ")";
        return result;
      }
    } else if (inline_value) {
      // A switch may be spelled --preserve-host=false; --help=x makes no sense.
      if (opt->action != Action::kSet) {
        result.error = spelled + ": takes no value";
        return result;
      }
      value.assign(*inline_value);
    } else {
      value = "true";
    }
    switch (opt->action) {
      case Action::kHelp: {
        const std::string text = help_text();
        fputs(text.c_str(), stdout);
        fflush(stdout);
        result.ok = true;
        result.exit_now = true;
        return result;
      }
      case Action::kVersion:
        fputs("ringway " RINGWAY_VERSION "\n", stdout);
        fflush(stdout);
        result.ok = true;
        result.exit_now = true;
        return result;
      case Action::kConfigFile:
        config_path = value;
        has_config = true;
        break;
      case Action::kSet:
        flags.push_back(FlagValue{opt, spelled, std::move(value)});
        break;
    }
  }

  Config cfg;
  if (has_config) {
    std::string text;
    if (!read_file(config_path, text, result.error)) return result;
    std::string e;
    if (!apply_json(text, cfg, e)) {
      result.error = config_path + ": " + e;
      return result;
    }
  }

  // A list flag replaces the file's list: clear it at its first occurrence on the command line.
  std::vector<const Option*> cleared;
  for (const FlagValue& f : flags) {
    if (f.option->clear != nullptr &&
        std::find(cleared.begin(), cleared.end(), f.option) == cleared.end()) {
      f.option->clear(cfg);
      cleared.push_back(f.option);
    }
    std::string e;
    if (!f.option->set(cfg, f.value, e)) {
      result.error = f.spelled + ": " + e;
      return result;
    }
  }

  if (!validate(cfg, result.error)) return result;
  result.config = std::move(cfg);
  result.ok = true;
  return result;
}

}  // namespace ringway::config
