// Access log: one JSON line per request, formatted into a per-worker double buffer with no
// allocation after construction. One AccessLog per worker, used only by that worker's thread.
// The worker writes the bytes itself (io_uring, never blocking): begin_flush() hands out the
// pending bytes, which stay valid and untouched until the matching end_flush().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace ringway::obs {

// What one log line says. Views only need to live for the append() call.
struct AccessRecord {
  int64_t time_unix_ms = 0;        // wall-clock time the request finished, ms since the epoch
  std::string_view client;         // "127.0.0.1" / "::1"
  std::string_view method;         // as received
  std::string_view target;         // request-target as received: path and query
  uint16_t status = 0;
  uint64_t bytes_in = 0;           // downstream bytes received for this request
  uint64_t bytes_out = 0;          // downstream bytes sent for this response
  uint64_t duration_us = 0;        // request start to last byte, microseconds
  std::string_view upstream;       // "host:port"; empty -> null (answered by the gateway)
  int64_t upstream_us = -1;        // request sent -> response head; < 0 -> null
  std::string_view route;          // route prefix; empty -> null (no route matched)
  std::string_view request_id;     // empty -> null
  // TLS connections only (issue 13): "tls": {"version", "cipher", "sni", "resumed"}; the object
  // is left out when tls_version is empty.
  std::string_view tls_version;    // "TLSv1.3"
  std::string_view tls_cipher;
  std::string_view tls_sni;        // empty -> null
  bool tls_resumed = false;
};

class AccessLog {
 public:
  static constexpr size_t kDefaultFlushThreshold = 32 * 1024;
  static constexpr size_t kDefaultHardCap = 1024 * 1024;

  // Allocates both buffers (hard_cap bytes each) now; nothing later.
  explicit AccessLog(size_t flush_threshold = kDefaultFlushThreshold,
                     size_t hard_cap = kDefaultHardCap);
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Formats one line into the active buffer. If it might not fit under the hard cap (writes
  // are not keeping up), the record is dropped and counted instead. Returns false on a drop.
  bool append(const AccessRecord& rec);

  // True when a flush should start now: none is in flight and either the active buffer is over
  // the threshold or bytes are left over from a partial write.
  bool should_flush() const;

  // Bytes waiting to be written (active buffer plus any leftover), for a periodic flush of a
  // quiet log.
  size_t pending_bytes() const { return active_len_ + (flush_len_ - flush_off_); }

  // Starts a flush (must not be flushing()). If a previous write was partial, returns the
  // rest of it; otherwise swaps buffers and returns everything appended so far. The span stays
  // valid until end_flush(). Returns an empty span (and does not start a flush) if there is
  // nothing to write.
  std::span<const char> begin_flush();

  // The write of the span from begin_flush() completed with `written` bytes (<= its size).
  // Unwritten bytes are returned first by the next begin_flush().
  void end_flush(size_t written);

  bool flushing() const { return flushing_; }
  uint64_t dropped() const { return dropped_; }

 private:
  // Writes "YYYY-MM-DDTHH:MM:SS.mmmZ"; redoes the calendar math only when the second changes.
  char* write_time(char* out, int64_t unix_ms);

  size_t threshold_;
  size_t cap_;
  std::unique_ptr<char[]> buffers_[2];
  int active_ = 0;
  size_t active_len_ = 0;
  size_t flush_off_ = 0;  // in buffers_[1 - active_]: bytes already written
  size_t flush_len_ = 0;  // in buffers_[1 - active_]: bytes handed out for writing
  bool flushing_ = false;
  uint64_t dropped_ = 0;

  int64_t cached_second_ = INT64_MIN;
  char cached_prefix_[20] = {};  // "YYYY-MM-DDTHH:MM:SS."
};

}  // namespace ringway::obs
