// Ticket keys: readers take one acquire load; the writer publishes a fully built set and parks the
// previous one for kRetiredKept rotations instead of freeing it, so no reader ever needs a lock or
// a reference count on the handshake path.
#include "ringway/tls/ticket_keys.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include <cerrno>

namespace ringway::tls {
namespace {

bool random_key(TicketKey& k) {
  return RAND_bytes(k.name.data(), k.name.size()) == 1 &&
         RAND_bytes(k.hmac.data(), k.hmac.size()) == 1 &&
         RAND_bytes(k.aes.data(), k.aes.size()) == 1;
}

}  // namespace

TicketKeys::~TicketKeys() {
  // Key material is secret: wipe it before the allocator reuses the memory.
  auto wipe = [](TicketKeySet* s) {
    if (s == nullptr) return;
    for (TicketKey& k : s->keys) OPENSSL_cleanse(&k, sizeof k);
  };
  wipe(live_.get());
  for (auto& r : retired_) wipe(r.get());
}

std::shared_ptr<TicketKeys> TicketKeys::random(size_t previous_kept) {
  std::shared_ptr<TicketKeys> t(new TicketKeys());
  t->previous_kept_ = previous_kept;
  auto set = std::make_unique<TicketKeySet>();
  set->keys.resize(1);
  if (!random_key(set->keys[0])) return nullptr;
  std::lock_guard lock(t->rotate_mutex_);
  t->publish(std::move(set));
  return t;
}

std::shared_ptr<TicketKeys> TicketKeys::from_file(const std::string& path, std::string& error) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = "cannot open ticket key file '" + path + "': " + strerror(errno);
    return nullptr;
  }
  std::vector<unsigned char> bytes;
  unsigned char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0 && bytes.size() <= 64 * kFileRecordSize) {
    bytes.insert(bytes.end(), buf, buf + n);
  }
  fclose(f);
  OPENSSL_cleanse(buf, sizeof buf);
  if (bytes.empty() || bytes.size() % kFileRecordSize != 0 || bytes.size() > 64 * kFileRecordSize) {
    error = "ticket key file '" + path + "' must hold 1 to 64 keys of 80 bytes each (got " +
            std::to_string(bytes.size()) + " bytes)";
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return nullptr;
  }
  auto set = std::make_unique<TicketKeySet>();
  for (size_t off = 0; off < bytes.size(); off += kFileRecordSize) {
    TicketKey k;
    memcpy(k.name.data(), &bytes[off], 16);
    memcpy(k.hmac.data(), &bytes[off + 16], 32);
    memcpy(k.aes.data(), &bytes[off + 48], 32);
    set->keys.push_back(k);
    OPENSSL_cleanse(&k, sizeof k);
  }
  OPENSSL_cleanse(bytes.data(), bytes.size());
  std::shared_ptr<TicketKeys> t(new TicketKeys());
  t->from_file_ = true;
  std::lock_guard lock(t->rotate_mutex_);
  t->publish(std::move(set));
  return t;
}

bool TicketKeys::rotate() {
  if (from_file_) return false;
  std::lock_guard lock(rotate_mutex_);
  auto next = std::make_unique<TicketKeySet>();
  next->keys.resize(1);
  if (!random_key(next->keys[0])) return false;
  const TicketKeySet* cur = live_.get();
  for (size_t i = 0; i < cur->keys.size() && i < previous_kept_; ++i) {
    next->keys.push_back(cur->keys[i]);
  }
  publish(std::move(next));
  return true;
}

void TicketKeys::publish(std::unique_ptr<TicketKeySet> next) {
  current_.store(next.get(), std::memory_order_release);
  if (live_ != nullptr) {
    // The slot we overwrite was retired kRetiredKept rotations ago: no callback still reads it.
    std::unique_ptr<TicketKeySet>& slot = retired_[retired_next_];
    if (slot != nullptr) {
      for (TicketKey& k : slot->keys) OPENSSL_cleanse(&k, sizeof k);
    }
    slot = std::move(live_);
    retired_next_ = (retired_next_ + 1) % kRetiredKept;
  }
  live_ = std::move(next);
}

}  // namespace ringway::tls
