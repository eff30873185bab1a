#include "ringway/proxy/pipes.h"

#include <fcntl.h>
#include <unistd.h>

namespace ringway::proxy {
namespace {
constexpr uint32_t kMaxPipes = 256;  // per worker, in use plus spare
constexpr uint32_t kMaxSpare = 32;
}  // namespace

PipeCache::~PipeCache() {
  for (Pipe& p : spare_) {
    close(p.r);
    close(p.w);
  }
}

bool PipeCache::take(Pipe& p) {
  if (!spare_.empty()) {
    p = spare_.back();
    spare_.pop_back();
    return true;
  }
  if (open_ >= kMaxPipes) return false;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
  fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);  // best effort: capped by /proc/sys/fs/pipe-max-size
  p = Pipe{fds[0], fds[1], 0};
  ++open_;
  return true;
}

void PipeCache::give(Pipe& p) {
  if (!p.valid()) return;
  // A pipe with bytes left belongs to an aborted transfer: never hand those to another exchange.
  if (p.bytes == 0 && spare_.size() < kMaxSpare) {
    spare_.push_back(p);
  } else {
    close(p.r);
    close(p.w);
    --open_;
  }
  p = Pipe{};
}

}  // namespace ringway::proxy
