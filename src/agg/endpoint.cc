#include "ringway/agg/endpoint.h"

#include <algorithm>

#include "agg/json_text.h"

namespace ringway::agg {

namespace {

using simdjson::dom::element;

// RFC 9110 section 5.6.2 tchar: leg names appear as Server-Timing metric names (tokens).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_param_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool get_string(element e, std::string_view what, std::string& out, std::string& error) {
  std::string_view v;
  if (e.get_string().get(v)) {
    error = std::string(what) + ": expected a string";
    return false;
  }
  out.assign(v);
  return true;
}

// "a.b.c" -> escaped segments; empty segments are errors.
bool split_dot_path(std::string_view s, std::vector<std::string>& out, std::string_view what,
                    std::string& error) {
  out.clear();
  if (s.empty()) {
    error = std::string(what) + ": empty field path";
    return false;
  }
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view seg = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (seg.empty()) {
      error = std::string(what) + ": empty segment in field path '" + std::string(s) + "'";
      return false;
    }
    out.push_back(json_text::escaped(seg));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool parse_field_list(element e, std::string_view what, std::vector<FieldRule>& rules,
                      std::string& error) {
  simdjson::dom::array arr;
  if (e.get_array().get(arr)) {
    error = std::string(what) + ": expected an array of field paths";
    return false;
  }
  std::vector<std::string> segs;
  for (element item : arr) {
    std::string_view s;
    if (item.get_string().get(s)) {
      error = std::string(what) + ": expected strings";
      return false;
    }
    if (!split_dot_path(s, segs, what, error)) return false;
    std::vector<FieldRule>* level = &rules;
    for (size_t i = 0; i < segs.size(); ++i) {
      auto it = std::find_if(level->begin(), level->end(),
                             [&](const FieldRule& r) { return r.name_json == segs[i]; });
      if (it == level->end()) {
        level->push_back(FieldRule{segs[i], false, {}});
        it = level->end() - 1;
      }
      if (i + 1 == segs.size()) {
        // The whole value is named: deeper entries ("a" plus "a.b") add nothing.
        it->terminal = true;
        it->children.clear();
      } else if (it->terminal) {
        break;
      } else {
        level = &it->children;
      }
    }
  }
  if (rules.empty()) {
    error = std::string(what) + ": empty list";
    return false;
  }
  return true;
}

// Validates a path pattern / template and collects its {param} names. Patterns need each
// {param} to be a whole segment; backend templates may embed them anywhere.
bool scan_params(std::string_view p, bool whole_segments, std::vector<std::string_view>& names,
                 std::string_view what, std::string& error) {
  names.clear();
  if (p.empty() || p[0] != '/') {
    error = std::string(what) + ": must start with '/'";
    return false;
  }
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '}') {
      error = std::string(what) + ": unbalanced '}'";
      return false;
    }
    if (c != '{') {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') {
        error = std::string(what) + ": invalid character";
        return false;
      }
      if (whole_segments && c == '?') {
        error = std::string(what) + ": a pattern has no query";
        return false;
      }
      continue;
    }
    size_t close = p.find('}', i);
    if (close == std::string_view::npos) {
      error = std::string(what) + ": unbalanced '{'";
      return false;
    }
    std::string_view name = p.substr(i + 1, close - i - 1);
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_param_name_char)) {
      error = std::string(what) + ": bad parameter name '{" + std::string(name) + "}'";
      return false;
    }
    if (whole_segments &&
        (p[i - 1] != '/' || (close + 1 < p.size() && p[close + 1] != '/'))) {
      error = std::string(what) + ": '{" + std::string(name) + "}' must be a whole segment";
      return false;
    }
    if (whole_segments && std::find(names.begin(), names.end(), name) != names.end()) {
      error = std::string(what) + ": duplicate parameter '{" + std::string(name) + "}'";
      return false;
    }
    names.push_back(name);
    i = close;
  }
  return true;
}

bool parse_backend(element e, size_t index, const std::vector<std::string_view>& endpoint_params,
                   Backend& b, std::string& error) {
  const std::string where = "backends[" + std::to_string(index) + "]";
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) {
    error = where + ": expected an object";
    return false;
  }
  std::string group;
  for (auto field : obj) {
    std::string_view k = field.key;
    std::string what = where + "." + std::string(k);
    if (k == "name") {
      if (!get_string(field.value, what, b.name, error)) return false;
      if (b.name.empty() || !std::all_of(b.name.begin(), b.name.end(), is_tchar)) {
        error = what + ": must be a non-empty token (letters, digits, -._~ ...)";
        return false;
      }
    } else if (k == "upstream") {
      if (!get_string(field.value, what, b.upstream, error)) return false;
      std::string_view u = b.upstream;
      // https:// legs go through the same TLS transport as route upstreams (issue 13).
      const size_t scheme = u.substr(0, 7) == "http://" ? 7 : u.substr(0, 8) == "https://" ? 8 : 0;
      if (scheme == 0 || u.size() == scheme || u[scheme] == '/') {
        error = what + ": expected http[s]://host[:port][/path]";
        return false;
      }
    } else if (k == "path") {
      if (!get_string(field.value, what, b.path, error)) return false;
    } else if (k == "group") {
      if (!get_string(field.value, what, group, error)) return false;
      if (group.empty()) {
        error = what + ": must not be empty";
        return false;
      }
      b.group_json = json_text::escaped(group);
    } else if (k == "target") {
      std::string_view t;
      if (field.value.get_string().get(t)) {
        error = what + ": expected a string";
        return false;
      }
      if (!split_dot_path(t, b.target_json, what, error)) return false;
    } else if (k == "allow") {
      if (!parse_field_list(field.value, what, b.allow, error)) return false;
    } else if (k == "deny") {
      if (!parse_field_list(field.value, what, b.deny, error)) return false;
    } else if (k == "mapping") {
      simdjson::dom::object m;
      if (field.value.get_object().get(m)) {
        error = what + ": expected an object of \"old\": \"new\"";
        return false;
      }
      for (auto mf : m) {
        std::string_view to;
        if (mf.value.get_string().get(to) || to.empty() || mf.key.empty()) {
          error = what + ": names must be non-empty strings";
          return false;
        }
        b.mapping.push_back(Mapping{json_text::escaped(mf.key), json_text::escaped(to)});
      }
    } else if (k == "is_collection") {
      if (field.value.get_bool().get(b.is_collection)) {
        error = what + ": expected true or false";
        return false;
      }
    } else {
      error = where + ": unknown field '" + std::string(k) + "'";
      return false;
    }
  }
  if (b.upstream.empty()) {
    error = where + ": missing upstream";
    return false;
  }
  if (b.path.empty()) b.path = "/";
  std::vector<std::string_view> used;
  if (!scan_params(b.path, false, used, where + ".path", error)) return false;
  for (auto n : used) {
    if (std::find(endpoint_params.begin(), endpoint_params.end(), n) == endpoint_params.end()) {
      error = where + ".path: '{" + std::string(n) + "}' is not a parameter of the endpoint";
      return false;
    }
  }
  if (!b.allow.empty() && !b.deny.empty()) {
    error = where + ": allow and deny are exclusive";
    return false;
  }
  if (b.is_collection && (!b.allow.empty() || !b.deny.empty() || !b.target_json.empty())) {
    error = where + ": is_collection takes no target/allow/deny (only group or mapping)";
    return false;
  }
  if (b.name.empty()) b.name = !group.empty() && std::all_of(group.begin(), group.end(), is_tchar)
                                   ? group
                                   : "backend" + std::to_string(index);
  return true;
}

}  // namespace

bool parse_endpoint(element json, Endpoint& out, std::string& error) {
  out = Endpoint{};
  simdjson::dom::object obj;
  if (json.get_object().get(obj)) {
    error = "endpoint: expected an object";
    return false;
  }
  element backends;
  bool have_backends = false;
  for (auto field : obj) {
    std::string_view k = field.key;
    if (k == "endpoint") {
      if (!get_string(field.value, "endpoint", out.path, error)) return false;
    } else if (k == "methods") {
      simdjson::dom::array arr;
      if (field.value.get_array().get(arr)) {
        error = "methods: expected an array";
        return false;
      }
      for (element m : arr) {
        std::string_view s;
        if (m.get_string().get(s) || s.empty() || !std::all_of(s.begin(), s.end(), is_tchar)) {
          error = "methods: expected method tokens";
          return false;
        }
        out.methods.emplace_back(s);
      }
    } else if (k == "merge") {
      std::string_view s;
      if (field.value.get_string().get(s) || (s != "shallow" && s != "deep")) {
        error = "merge: expected \"shallow\" or \"deep\"";
        return false;
      }
      out.merge = s == "deep" ? MergeMode::kDeep : MergeMode::kShallow;
    } else if (k == "max_leg_body") {
      uint64_t v;
      if (field.value.get_uint64().get(v) || v == 0 || v > (64u << 20)) {
        error = "max_leg_body: expected 1..67108864";
        return false;
      }
      out.max_leg_body = static_cast<uint32_t>(v);
    } else if (k == "backends") {
      backends = field.value;
      have_backends = true;
    } else {
      error = "endpoint: unknown field '" + std::string(k) + "'";
      return false;
    }
  }
  std::vector<std::string_view> params;
  if (out.path.empty()) {
    error = "endpoint: missing \"endpoint\" path";
    return false;
  }
  if (!scan_params(out.path, true, params, "endpoint", error)) return false;
  if (params.size() > PathParams::kMax) {
    error = "endpoint: too many parameters";
    return false;
  }
  if (out.methods.empty()) out.methods.emplace_back("GET");
  simdjson::dom::array arr;
  if (!have_backends || backends.get_array().get(arr) || arr.size() == 0) {
    error = "backends: expected a non-empty array";
    return false;
  }
  size_t i = 0;
  for (element be : arr) {
    Backend b;
    if (!parse_backend(be, i, params, b, error)) return false;
    for (const Backend& other : out.backends) {
      if (other.name == b.name) {
        error = "backends[" + std::to_string(i) + "]: duplicate name '" + b.name + "'";
        return false;
      }
    }
    out.backends.push_back(std::move(b));
    ++i;
  }
  return true;
}

std::string_view PathParams::find(std::string_view name) const {
  for (size_t i = 0; i < count; ++i)
    if (items[i].first == name) return items[i].second;
  return {};
}

bool match_path(std::string_view pattern, std::string_view path, PathParams& params) {
  params.count = 0;
  size_t pi = 0, qi = 0;
  if (pattern.empty() || path.empty() || pattern[0] != '/' || path[0] != '/') return false;
  while (true) {
    // Both cursors sit on a '/'.
    ++pi;
    ++qi;
    size_t pe = pattern.find('/', pi);
    size_t qe = path.find('/', qi);
    if (pe == std::string_view::npos) pe = pattern.size();
    if (qe == std::string_view::npos) qe = path.size();
    std::string_view pseg = pattern.substr(pi, pe - pi);
    std::string_view qseg = path.substr(qi, qe - qi);
    if (pseg.size() >= 2 && pseg.front() == '{' && pseg.back() == '}') {
      if (qseg.empty() || params.count == PathParams::kMax) return false;
      params.items[params.count++] = {pseg.substr(1, pseg.size() - 2), qseg};
    } else if (pseg != qseg) {
      return false;
    }
    bool pend = pe == pattern.size(), qend = qe == path.size();
    if (pend || qend) return pend && qend;
    pi = pe;
    qi = qe;
  }
}

namespace {

int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

// RFC 3986 section 2.1/2.3: decode once, then encode every byte outside "unreserved".
bool append_param(std::string_view raw, std::string& out) {
  constexpr char kHexUpper[] = "0123456789ABCDEF";
  size_t decoded_len = 0, dots = 0;
  const size_t start = out.size();
  for (size_t i = 0; i < raw.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c == '%') {
      if (i + 2 >= raw.size()) {
        out.resize(start);
        return false;
      }
      int h = hex_val(raw[i + 1]), l = hex_val(raw[i + 2]);
      if (h < 0 || l < 0) {
        out.resize(start);
        return false;
      }
      c = static_cast<unsigned char>(h * 16 + l);
      i += 2;
    }
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) {
      out.resize(start);
      return false;
    }
    ++decoded_len;
    if (c == '.') ++dots;
    if (is_unreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHexUpper[c >> 4];
      out += kHexUpper[c & 0xF];
    }
  }
  // Dot segments would be removed by the upstream's normalization (RFC 3986 section 5.2.4).
  if (decoded_len == 0 || (dots == decoded_len && decoded_len <= 2)) {
    out.resize(start);
    return false;
  }
  return true;
}

}  // namespace

bool expand_path(std::string_view tmpl, const PathParams& params, std::string& out) {
  const size_t start = out.size();
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t open = tmpl.find('{', i);
    if (open == std::string_view::npos) {
      out.append(tmpl.substr(i));
      break;
    }
    out.append(tmpl.substr(i, open - i));
    size_t close = tmpl.find('}', open);
    if (close == std::string_view::npos) {
      out.resize(start);
      return false;
    }
    std::string_view name = tmpl.substr(open + 1, close - open - 1);
    bool found = false;
    for (size_t k = 0; k < params.count; ++k) {
      if (params.items[k].first == name) {
        if (!append_param(params.items[k].second, out)) {
          out.resize(start);
          return false;
        }
        found = true;
        break;
      }
    }
    if (!found) {
      out.resize(start);
      return false;
    }
    i = close + 1;
  }
  return true;
}

}  // namespace ringway::agg
