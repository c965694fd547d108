// base/check.hpp — the end of a process that reached a state its code rules
// out (a library that must not fail did): one line on stderr, then abort, so
// the supervisor above it restarts it and a core shows where. Bad input from
// outside never gets here; it is an error value.
#pragma once

#include <string_view>

namespace troupe::base {

/// Prints "troupe: internal error: WHAT" and aborts.
[[noreturn]] void internal_error(std::string_view what);

}  // namespace troupe::base
