// Pipes for splice(2): body bytes move socket -> pipe -> socket without entering user space.
// A worker keeps a bounded cache of empty pipes; an exchange holds one per direction while a
// body is spliced. One PipeCache per worker, used only by its thread.
#pragma once

#include <cstdint>
#include <vector>

namespace ringway::proxy {

struct Pipe {
  int r = -1;
  int w = -1;
  uint32_t bytes = 0;  // in the pipe, not yet spliced out
  bool valid() const { return r >= 0; }
};

class PipeCache {
 public:
  PipeCache() = default;
  ~PipeCache();
  PipeCache(const PipeCache&) = delete;
  PipeCache& operator=(const PipeCache&) = delete;

  static constexpr uint32_t kPipeSize = 1024 * 1024;  // F_SETPIPE_SZ; the default pipe-max-size

  // A spare or new pipe; false when the cap is reached (the copy path still works).
  bool take(Pipe& p);
  // Keeps p for reuse if it is empty and there is room, else closes it. Resets p.
  void give(Pipe& p);

 private:
  std::vector<Pipe> spare_;
  uint32_t open_ = 0;  // in use plus spare
};

}  // namespace ringway::proxy
