// Merge cost of two ~10 KiB leg bodies: (a) group-only legs (raw reuse of the validated input,
// validated by on-demand or by DOM, and forced field-by-field re-encoding for comparison),
// (b) legs with allow + mapping (re-encode). Baselines in the same binary: the naive approach of
// decoding each body into a generic owned tree (what KrakenD does with Go's map[string]any) and
// serializing it again, and simdjson DOM + simdjson::to_string. Bytes/s counts input bytes.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "ringway/agg/merger.h"

namespace {

using namespace ringway::agg;

// A deterministic ~10 KiB object: scalars, a nested object, an array of order objects with
// 64-bit ids, float prices and strings with escapes and non-ASCII text.
std::string make_body(int seed) {
  std::string b = "{\"id\":" + std::to_string(9007199254740993LL + seed) +
                  ",\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\",\"active\":true,"
                  "\"score\":98.625,\"note\":null,\"address\":{\"street\":\"12 St James\\u0027s Sq\","
                  "\"city\":\"London\",\"zip\":\"SW1Y 4JH\",\"geo\":{\"lat\":51.5074,\"lon\":-0.1278}},"
                  "\"tags\":[\"math\",\"engines\",\"po\\u00e9sie\"],\"items\":[";
  for (int i = 0; b.size() < 10 * 1024 - 200; ++i) {
    if (i) b += ',';
    b += "{\"order_id\":" + std::to_string(1234567890123456789LL + i * 7 + seed) +
         ",\"sku\":\"SKU-" + std::to_string(1000 + i) + "\",\"price\":" + std::to_string(i) +
         ".99,\"qty\":" + std::to_string(i % 5 + 1) +
         ",\"desc\":\"caf\xC3\xA9 \\\"deluxe\\\" \\n line\",\"gift\":false}";
  }
  b += "],\"created\":\"2026-01-01T00:00:00Z\"}";
  return b;
}

struct Fixture {
  Endpoint group_ep, filter_ep;
  simdjson::padded_string b0, b1;
  Fixture() : b0(make_body(0)), b1(make_body(1)) {
    group_ep = parse(R"({"endpoint": "/u/{id}", "backends": [
        {"upstream": "http://a", "group": "profile"},
        {"upstream": "http://b", "group": "orders"}]})");
    filter_ep = parse(R"({"endpoint": "/u/{id}", "backends": [
        {"upstream": "http://a", "allow": ["id", "name", "email", "address.city", "address.geo"],
         "mapping": {"id": "user_id", "name": "full_name"}},
        {"upstream": "http://b", "allow": ["items", "created", "score"],
         "mapping": {"items": "orders"}}]})");
  }
  static Endpoint parse(const char* json) {
    simdjson::dom::parser p;
    Endpoint ep;
    std::string err;
    if (!parse_endpoint(p.parse(std::string(json)).value(), ep, err)) {
      fprintf(stderr, "bad endpoint: %s\n", err.c_str());
      abort();
    }
    return ep;
  }
  size_t input_bytes() const { return b0.size() + b1.size(); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void run_merger(benchmark::State& state, const Endpoint& ep, RawValidation rv, bool force) {
  Fixture& f = fixture();
  MergeWorkspace ws(rv);
  ws.set_force_reencode(force);
  std::string out;
  for (auto _ : state) {
    Merger m(ep, ws);
    m.add_leg(0, std::string_view(f.b0.data(), f.b0.size()), 200);
    m.add_leg(1, std::string_view(f.b1.data(), f.b1.size()), 200);
    m.finish(out);
    if (!m.outcome().complete()) state.SkipWithError(out.c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(f.input_bytes()));
  state.counters["out_bytes"] = double(out.size());
}

void BM_GroupRaw_OnDemand(benchmark::State& s) {
  run_merger(s, fixture().group_ep, RawValidation::kOnDemand, false);
}
void BM_GroupRaw_Dom(benchmark::State& s) {
  run_merger(s, fixture().group_ep, RawValidation::kDom, false);
}
void BM_Group_Reencode(benchmark::State& s) {
  run_merger(s, fixture().group_ep, RawValidation::kOnDemand, true);
}
void BM_AllowMapping(benchmark::State& s) {
  run_merger(s, fixture().filter_ep, RawValidation::kOnDemand, false);
}

// ---- Baseline 1: decode to a generic owned tree, transform, serialize (KrakenD's way). ----
struct Value;
using Object = std::map<std::string, Value>;
using Array = std::vector<Value>;
struct Value {
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> v;
};

Value decode(simdjson::dom::element e) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::OBJECT: {
      Object o;
      simdjson::dom::object obj = e.get_object().value();  // a named copy: value() is T&&
      for (auto f : obj) o.emplace(std::string(f.key), decode(f.value));
      return Value{std::move(o)};
    }
    case T::ARRAY: {
      Array a;
      simdjson::dom::array arr = e.get_array().value();
      for (auto x : arr) a.push_back(decode(x));
      return Value{std::move(a)};
    }
    case T::STRING: return Value{std::string(e.get_string().value())};
    case T::INT64: return Value{double(e.get_int64().value())};   // float64, like Go's any
    case T::UINT64: return Value{double(e.get_uint64().value())};
    case T::DOUBLE: return Value{e.get_double().value()};
    case T::BOOL: return Value{e.get_bool().value()};
    default: return Value{nullptr};
  }
}

void quote(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

void encode(const Value& v, std::string& out) {
  struct V {
    std::string& out;
    void operator()(std::nullptr_t) { out += "null"; }
    void operator()(bool b) { out += b ? "true" : "false"; }
    void operator()(double d) {
      char buf[32];
      out.append(buf, size_t(snprintf(buf, sizeof buf, "%.17g", d)));
    }
    void operator()(const std::string& s) { quote(out, s); }
    void operator()(const Array& a) {
      out += '[';
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out += ',';
        encode(a[i], out);
      }
      out += ']';
    }
    void operator()(const Object& o) {
      out += '{';
      bool first = true;
      for (auto& [k, x] : o) {
        if (!first) out += ',';
        first = false;
        quote(out, k);
        out += ':';
        encode(x, out);
      }
      out += '}';
    }
  };
  std::visit(V{out}, v.v);
}

// Applies the filter endpoint's rules the naive way.
Object filter_leg(Object o, int leg) {
  Object r;
  auto take = [&](const char* from, const char* to) {
    auto it = o.find(from);
    if (it != o.end()) r[to] = std::move(it->second);
  };
  if (leg == 0) {
    take("id", "user_id");
    take("name", "full_name");
    take("email", "email");
    auto it = o.find("address");
    if (it != o.end()) {
      Object& a = std::get<Object>(it->second.v);
      Object na;
      if (a.count("city")) na["city"] = std::move(a["city"]);
      if (a.count("geo")) na["geo"] = std::move(a["geo"]);
      r["address"] = Value{std::move(na)};
    }
  } else {
    take("items", "orders");
    take("created", "created");
    take("score", "score");
  }
  return r;
}

void BM_Naive_GenericTree(benchmark::State& state, bool filter) {
  Fixture& f = fixture();
  simdjson::dom::parser p;
  std::string out;
  for (auto _ : state) {
    Object merged;
    const simdjson::padded_string* bodies[] = {&f.b0, &f.b1};
    for (int i = 0; i < 2; ++i) {
      Value v = decode(p.parse(*bodies[i]).value());
      if (!filter) {
        merged[i == 0 ? "profile" : "orders"] = std::move(v);
      } else {
        for (auto& [k, x] : filter_leg(std::move(std::get<Object>(v.v)), i)) merged[k] = std::move(x);
      }
    }
    out.clear();
    encode(Value{std::move(merged)}, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(f.input_bytes()));
  state.counters["out_bytes"] = double(out.size());
}
void BM_Naive_GenericTree_Group(benchmark::State& s) { BM_Naive_GenericTree(s, false); }
void BM_Naive_GenericTree_AllowMapping(benchmark::State& s) { BM_Naive_GenericTree(s, true); }

// ---- Baseline 2: simdjson DOM parse of both bodies, then simdjson::to_string per value. ----
void BM_Naive_DomToString(benchmark::State& state, bool filter) {
  Fixture& f = fixture();
  simdjson::dom::parser p0, p1;
  std::string out;
  for (auto _ : state) {
    simdjson::dom::element e0 = p0.parse(f.b0).value();
    simdjson::dom::element e1 = p1.parse(f.b1).value();
    out.clear();
    if (!filter) {
      out += "{\"profile\":";
      out += simdjson::to_string(e0);
      out += ",\"orders\":";
      out += simdjson::to_string(e1);
      out += '}';
    } else {
      out += "{\"user_id\":" + simdjson::to_string(e0["id"]) +
             ",\"full_name\":" + simdjson::to_string(e0["name"]) +
             ",\"email\":" + simdjson::to_string(e0["email"]) +
             ",\"address\":{\"city\":" + simdjson::to_string(e0["address"]["city"]) +
             ",\"geo\":" + simdjson::to_string(e0["address"]["geo"]) +
             "},\"orders\":" + simdjson::to_string(e1["items"]) +
             ",\"created\":" + simdjson::to_string(e1["created"]) +
             ",\"score\":" + simdjson::to_string(e1["score"]) + "}";
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(f.input_bytes()));
  state.counters["out_bytes"] = double(out.size());
}
void BM_Naive_DomToString_Group(benchmark::State& s) { BM_Naive_DomToString(s, false); }
void BM_Naive_DomToString_AllowMapping(benchmark::State& s) { BM_Naive_DomToString(s, true); }

}  // namespace

BENCHMARK(BM_GroupRaw_OnDemand);
BENCHMARK(BM_GroupRaw_Dom);
BENCHMARK(BM_Group_Reencode);
BENCHMARK(BM_Naive_GenericTree_Group);
BENCHMARK(BM_Naive_DomToString_Group);
BENCHMARK(BM_AllowMapping);
BENCHMARK(BM_Naive_GenericTree_AllowMapping);
BENCHMARK(BM_Naive_DomToString_AllowMapping);

BENCHMARK_MAIN();
