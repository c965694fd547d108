#include "base/check.hpp"

#include <cstdio>
#include <cstdlib>

namespace troupe::base {

void internal_error(std::string_view what) {
  std::fprintf(stderr, "troupe: internal error: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace troupe::base
