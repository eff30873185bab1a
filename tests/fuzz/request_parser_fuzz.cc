// libFuzzer target for the http glue: arbitrary bytes go through find_head_end, parse_head,
// feed_body (pipelined, as the engine drives it) and the head writers, for requests and, on the
// same bytes, for responses. Invariants: views stay inside the input, consumption never exceeds
// what was offered, writers never exceed their capacity, and a chunked response body decoded in
// place (feed_body_decoded) agrees with a twin parser fed plainly and with a reference decoder.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/http/head_writer.h"
#include "ringway/http/parser.h"

using namespace ringway::http;

namespace {

void check_inside(std::string_view v, const char* begin, const char* end) {
  if (v.empty()) return;
  if (v.data() < begin || v.data() + v.size() > end) std::abort();
}

void run_requests(const char* data, size_t size, const Limits& limits) {
  RequestParser parser(limits);
  Request req;
  static char out[64 * 1024];
  size_t off = 0;
  for (int round = 0; round < 64 && off < size; ++round) {
    const char* p = data + off;
    const size_t avail = size - off;
    const size_t n = find_head_end(p, avail);
    if (n == 0) {
      const ParseError e = check_incomplete_head(p, avail, limits);
      if (e.status != 0 && e.status != 400 && e.status != 414 && e.status != 431 &&
          e.status != 501) {
        std::abort();
      }
      // Resuming a scan gives what a rescan gives.
      HeadScan scan;
      const size_t half = avail / 2;
      if (check_incomplete_head(p, half, limits, scan).status == 0 &&
          check_incomplete_head(p, avail, limits, scan).status != e.status) {
        std::abort();
      }
      return;
    }
    if (n > avail) std::abort();
    // What the early scanner refuses, the full parse refuses too (414/431 depend on the limits
    // being compared with a head that is already complete, so only the byte checks count here).
    HeadScan whole;
    const uint16_t early = check_incomplete_head(p, n, limits, whole).status;
    const bool early_refused = early == 400 || early == 501;
    if (parser.parse_head(p, n, req) != ParseStatus::kDone) {
      const size_t w = write_problem(out, 512, parser.error().status, parser.error().detail, true);
      if (w == 0 || w > 512) std::abort();
      return;
    }
    if (early_refused) std::abort();
    if (req.head_bytes != n) std::abort();
    check_inside(req.target, p, p + n);
    check_inside(req.method_name, p, p + n);
    check_inside(req.host, p, p + n);
    check_inside(req.query, p, p + n);
    if (req.path != "/") check_inside(req.path, p, p + n);
    for (uint16_t i = 0; i < req.header_count; ++i) {
      check_inside(req.headers[i].name, p, p + n);
      check_inside(req.headers[i].value, p, p + n);
    }
    HeaderEdits edits;
    edits.push_remove("Authorization");
    edits.push_add("X-Consumer", "fuzz");
    const Header adds[] = {{"X-Gateway", "ringway"}};
    UpstreamHeadParams params;
    params.base_path = "/base";
    params.path_remainder = req.path.size() > 1 ? req.path.substr(1) : std::string_view();
    params.authority = "upstream:8080";
    params.client_addr = "127.0.0.1";
    params.preserve_host = (round & 1) != 0;
    params.edits = &edits;
    params.add_headers = adds;
    const size_t cap = (round & 2) ? 256 : sizeof(out);
    if (write_upstream_head(out, cap, req, params) > cap) std::abort();
    off += n;

    // Feed the body in two pieces (split chosen by the input) to exercise resumption.
    const size_t rest = size - off;
    const size_t split = rest == 0 ? 0 : static_cast<unsigned char>(data[off]) % (rest + 1);
    size_t c1 = 0, c2 = 0;
    ParseStatus st = parser.feed_body(data + off, split, &c1);
    if (c1 > split) std::abort();
    if (st == ParseStatus::kIncomplete) {
      if (c1 != split) std::abort();
      st = parser.feed_body(data + off + c1, rest - c1, &c2);
      if (c2 > rest - c1) std::abort();
    }
    if (st != ParseStatus::kDone) return;
    off += c1 + c2;
  }
}

// Decodes a chunked body that llhttp (strict) accepted: hex size, extensions up to LF, data, CRLF;
// trailers after the last chunk are not part of the body.
bool reference_decode(std::string_view raw, std::string& out) {
  size_t i = 0;
  while (i < raw.size()) {
    uint64_t n = 0;
    bool digits = false;
    for (; i < raw.size(); ++i) {
      const char ch = raw[i];
      int d = -1;
      if (ch >= '0' && ch <= '9') d = ch - '0';
      else if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
      else if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
      if (d < 0) break;
      if (n > (uint64_t{1} << 40)) return false;
      n = n * 16 + static_cast<uint64_t>(d);
      digits = true;
    }
    if (!digits) return false;
    const size_t lf = raw.find('\n', i);
    if (lf == std::string_view::npos) return false;
    i = lf + 1;
    if (n == 0) return true;
    if (n > raw.size() - i) return false;
    out.append(raw.substr(i, n));
    i += n + 2;
  }
  return false;
}

void run_responses(const char* data, size_t size, const Limits& limits) {
  ResponseParser parser(limits);
  Response resp;
  static char out[64 * 1024];
  size_t off = 0;
  for (int round = 0; round < 64 && off < size; ++round) {
    const char* p = data + off;
    const size_t n = find_head_end(p, size - off);
    if (n == 0) return;
    if (parser.parse_head(p, n, (round & 1) != 0, resp) != ParseStatus::kDone) return;
    for (uint16_t i = 0; i < resp.header_count; ++i) check_inside(resp.headers[i].value, p, p + n);
    DownstreamHeadParams dp;
    dp.close = !resp.keep_alive;
    if (write_downstream_head(out, sizeof(out), resp, dp) > sizeof(out)) std::abort();
    off += n;
    if (resp.framing == ResponseFraming::kChunked && (round & 2) != 0) {
      std::vector<char> work(data + off, data + size);  // decoded in place
      ResponseParser twin(limits);
      Response twin_resp;
      if (twin.parse_head(p, n, (round & 1) != 0, twin_resp) != ParseStatus::kDone) std::abort();
      size_t consumed = 0, decoded = 0, plain = 0;
      const ParseStatus st = parser.feed_body_decoded(work.data(), work.size(), &consumed, &decoded);
      const ParseStatus twin_st = twin.feed_body(data + off, size - off, &plain);
      if (st != twin_st || consumed != plain || decoded > consumed) std::abort();
      if (st != ParseStatus::kDone) return;
      std::string ref;
      if (!reference_decode(std::string_view(data + off, consumed), ref)) std::abort();
      if (ref != std::string_view(work.data(), decoded)) std::abort();
      off += consumed;
      continue;
    }
    size_t consumed = 0;
    const ParseStatus st = parser.feed_body(data + off, size - off, &consumed);
    if (consumed > size - off) std::abort();
    if (st == ParseStatus::kIncomplete) {
      parser.finish_eof();
      return;
    }
    if (st != ParseStatus::kDone) return;
    off += consumed;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy so that any read past the end is caught by ASan.
  std::vector<char> buf(data, data + size);
  const char* d = buf.data();
  Limits limits;
  limits.max_request_line = 256;
  limits.max_head_bytes = 2048;
  limits.max_header_count = 32;
  run_requests(d, size, limits);
  run_responses(d, size, limits);
  return 0;
}
