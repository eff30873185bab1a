#include "ringway/filter/filter.h"

#include <cstring>

namespace ringway::filter {

std::string_view RequestContext::keep(std::string_view s) {
  if (s.size() > sizeof(scratch) - scratch_used) return {};
  char* dst = scratch + scratch_used;
  std::memcpy(dst, s.data(), s.size());
  scratch_used = static_cast<uint16_t>(scratch_used + s.size());
  return {dst, s.size()};
}

}  // namespace ringway::filter
