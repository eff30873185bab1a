#include "ringway/obs/access_log.h"

#include <charconv>
#include <cstring>
#include <ctime>

#include "ringway/core/json_escape.h"

namespace ringway::obs {

namespace {

// Keys, punctuation, "null"s and eight numbers of at most 20 digits each; generous on purpose,
// it is only used to decide whether a record surely fits.
constexpr size_t kFixedOverhead = 640;  // keys, numbers, the tls object's keys

char* put(char* out, std::string_view s) {
  std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

char* put_u64(char* out, uint64_t v) {
  return std::to_chars(out, out + 20, v).ptr;
}

char* put_2(char* out, unsigned v) {
  out[0] = static_cast<char>('0' + v / 10 % 10);
  out[1] = static_cast<char>('0' + v % 10);
  return out + 2;
}

// Microseconds as milliseconds with three decimals ("1.234").
char* put_ms(char* out, uint64_t us) {
  out = put_u64(out, us / 1000);
  const unsigned frac = static_cast<unsigned>(us % 1000);
  out[0] = '.';
  out[1] = static_cast<char>('0' + frac / 100);
  out[2] = static_cast<char>('0' + frac / 10 % 10);
  out[3] = static_cast<char>('0' + frac % 10);
  return out + 4;
}

char* put_string_or_null(char* out, std::string_view s) {
  if (s.empty()) return put(out, "null");
  *out++ = '"';
  out = core::write_json_escaped(out, s);
  *out++ = '"';
  return out;
}

}  // namespace

AccessLog::AccessLog(size_t flush_threshold, size_t hard_cap)
    : threshold_(flush_threshold), cap_(hard_cap) {
  buffers_[0] = std::make_unique<char[]>(cap_);
  buffers_[1] = std::make_unique<char[]>(cap_);
}

char* AccessLog::write_time(char* out, int64_t unix_ms) {
  // Floor division so that times before 1970 still format (tests, clock oddities).
  int64_t sec = unix_ms / 1000;
  int64_t ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --sec;
  }
  if (sec != cached_second_) {
    const time_t t = static_cast<time_t>(sec);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char* p = cached_prefix_;
    const unsigned year = static_cast<unsigned>(tm.tm_year + 1900) % 10000;
    p = put_2(p, year / 100);
    p = put_2(p, year % 100);
    *p++ = '-';
    p = put_2(p, static_cast<unsigned>(tm.tm_mon + 1));
    *p++ = '-';
    p = put_2(p, static_cast<unsigned>(tm.tm_mday));
    *p++ = 'T';
    p = put_2(p, static_cast<unsigned>(tm.tm_hour));
    *p++ = ':';
    p = put_2(p, static_cast<unsigned>(tm.tm_min));
    *p++ = ':';
    p = put_2(p, static_cast<unsigned>(tm.tm_sec));
    *p++ = '.';
    cached_second_ = sec;
  }
  out = put(out, std::string_view(cached_prefix_, sizeof(cached_prefix_)));
  const unsigned m = static_cast<unsigned>(ms);
  out[0] = static_cast<char>('0' + m / 100);
  out[1] = static_cast<char>('0' + m / 10 % 10);
  out[2] = static_cast<char>('0' + m % 10);
  out[3] = 'Z';
  return out + 4;
}

bool AccessLog::append(const AccessRecord& r) {
  const size_t strings = r.client.size() + r.method.size() + r.target.size() +
                         r.upstream.size() + r.route.size() + r.request_id.size() +
                         r.tls_version.size() + r.tls_cipher.size() + r.tls_sni.size();
  const size_t bound = kFixedOverhead + core::json_escaped_max(strings);
  if (bound > cap_ - active_len_) {
    ++dropped_;
    return false;
  }
  char* const begin = buffers_[active_].get() + active_len_;
  char* p = begin;
  p = put(p, "{\"time\":\"");
  p = write_time(p, r.time_unix_ms);
  p = put(p, "\",\"client\":");
  p = put_string_or_null(p, r.client);
  p = put(p, ",\"method\":");
  p = put_string_or_null(p, r.method);
  p = put(p, ",\"path\":");
  p = put_string_or_null(p, r.target);
  p = put(p, ",\"status\":");
  p = put_u64(p, r.status);
  p = put(p, ",\"bytes_in\":");
  p = put_u64(p, r.bytes_in);
  p = put(p, ",\"bytes_out\":");
  p = put_u64(p, r.bytes_out);
  p = put(p, ",\"duration_ms\":");
  p = put_ms(p, r.duration_us);
  p = put(p, ",\"upstream\":");
  p = put_string_or_null(p, r.upstream);
  p = put(p, ",\"upstream_ms\":");
  if (r.upstream.empty() || r.upstream_us < 0) {
    p = put(p, "null");
  } else {
    p = put_ms(p, static_cast<uint64_t>(r.upstream_us));
  }
  p = put(p, ",\"route\":");
  p = put_string_or_null(p, r.route);
  p = put(p, ",\"request_id\":");
  p = put_string_or_null(p, r.request_id);
  if (!r.tls_version.empty()) {
    p = put(p, ",\"tls\":{\"version\":");
    p = put_string_or_null(p, r.tls_version);
    p = put(p, ",\"cipher\":");
    p = put_string_or_null(p, r.tls_cipher);
    p = put(p, ",\"sni\":");
    p = put_string_or_null(p, r.tls_sni);
    p = put(p, r.tls_resumed ? ",\"resumed\":true}" : ",\"resumed\":false}");
  }
  p = put(p, "}\n");
  active_len_ += static_cast<size_t>(p - begin);
  return true;
}

bool AccessLog::should_flush() const {
  return !flushing_ && (flush_off_ < flush_len_ || active_len_ >= threshold_);
}

std::span<const char> AccessLog::begin_flush() {
  if (flushing_) return {};
  if (flush_off_ == flush_len_) {
    // The flush buffer is fully written: it becomes the new (empty) active buffer.
    if (active_len_ == 0) return {};
    flush_off_ = 0;
    flush_len_ = active_len_;
    active_ = 1 - active_;
    active_len_ = 0;
  }
  flushing_ = true;
  return {buffers_[1 - active_].get() + flush_off_, flush_len_ - flush_off_};
}

void AccessLog::end_flush(size_t written) {
  if (!flushing_) return;
  flushing_ = false;
  const size_t left = flush_len_ - flush_off_;
  flush_off_ += written < left ? written : left;
  if (flush_off_ == flush_len_) {
    flush_off_ = 0;
    flush_len_ = 0;
  }
}

}  // namespace ringway::obs
