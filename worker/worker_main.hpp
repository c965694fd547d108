// worker/worker_main.hpp — the main() of a worker executable: its command
// line, the parent-death signal, the subreaper, the runtime's run and the
// sweep of what the package left. troupe-worker calls it as is;
// troupe-worker-python with the loader of its runtime.
#pragma once

#include "worker/runtime.hpp"

#include <string_view>

namespace troupe::worker {

/// Runs a worker process; returns its exit code. program names it in
/// messages; loader (empty: dlopen) loads its package.
int worker_main(int argc, char** argv, std::string_view program, package_loader loader = {});

}  // namespace troupe::worker
