#include "ringway/filter/filter.h"

#include <cstring>

namespace ringway::filter {

namespace {

std::string_view keep_in(char* scratch, size_t cap, uint16_t& used, std::string_view s) {
  if (s.size() > cap - used) return {};
  char* dst = scratch + used;
  std::memcpy(dst, s.data(), s.size());
  used = static_cast<uint16_t>(used + s.size());
  return {dst, s.size()};
}

}  // namespace

std::string_view RequestContext::keep(std::string_view s) {
  return keep_in(scratch, sizeof(scratch), scratch_used, s);
}

std::string_view ResponseContext::keep(std::string_view s) {
  return keep_in(scratch, sizeof(scratch), scratch_used, s);
}

}  // namespace ringway::filter
