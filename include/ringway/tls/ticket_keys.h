// Session-ticket keys shared by every worker (RFC 5077 / RFC 8446 4.6.1 tickets): one process-wide
// object, read on the handshake path by any thread with one atomic load, rotated rarely by one
// caller (a timer). Owned by shared_ptr: every SSL_CTX that uses it holds a reference, so it lives
// as long as the last connection that may still issue or decrypt a ticket.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ringway::tls {

// One key in nginx's ssl_session_ticket_key layout (80-byte records: 16 name, 32 HMAC-SHA256 key,
// 32 AES-256-CBC key), so that a file made for nginx works here and N gateways behind one balancer
// resume each other's sessions.
struct TicketKey {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> hmac{};
  std::array<unsigned char, 32> aes{};
};

// An immutable list: keys[0] encrypts new tickets, all of them decrypt.
struct TicketKeySet {
  std::vector<TicketKey> keys;
};

class TicketKeys {
 public:
  static constexpr size_t kFileRecordSize = 80;
  // Key sets retired by rotate() stay allocated for this many further rotations before they are
  // freed: a reader holds a set only for the few microseconds of one ticket callback, and with
  // hourly rotation this is hours of grace (an RCU-style grace period measured in rotations).
  static constexpr size_t kRetiredKept = 4;

  // Random keys; rotate() replaces the current one and keeps `previous_kept` older ones for
  // decryption.
  static std::shared_ptr<TicketKeys> random(size_t previous_kept = 2);
  // Keys from a file of N*80 bytes (first = current). Never rotated by rotate(): the file's owner
  // rotates by rewriting the file and reloading. nullptr with error on a bad file; the error never
  // contains key bytes.
  static std::shared_ptr<TicketKeys> from_file(const std::string& path, std::string& error);

  ~TicketKeys();
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // The set in use now; valid for the duration of a handshake callback (see kRetiredKept).
  const TicketKeySet* current() const { return current_.load(std::memory_order_acquire); }

  // New random current key; the old current one joins the decrypt-only keys. Thread-safe against
  // readers without blocking them; rotations are serialized by a mutex that no handshake takes.
  // Returns false (and does nothing) for keys loaded from a file.
  bool rotate();

  bool from_file() const { return from_file_; }

 private:
  TicketKeys() = default;
  void publish(std::unique_ptr<TicketKeySet> next);  // under rotate_mutex_

  std::atomic<const TicketKeySet*> current_{nullptr};
  std::mutex rotate_mutex_;                              // rotations only
  std::unique_ptr<TicketKeySet> live_;                   // what current_ points to
  std::array<std::unique_ptr<TicketKeySet>, kRetiredKept> retired_;  // ring, oldest freed first
  size_t retired_next_ = 0;
  size_t previous_kept_ = 2;
  bool from_file_ = false;
};

}  // namespace ringway::tls
