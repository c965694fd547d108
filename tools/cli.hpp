// tools/cli.hpp — the `troupe` command line: argument parsing and the
// commands. main.cpp only calls run_cli, so tests can drive the same code.
// Single-threaded.
#pragma once

#include <string>
#include <vector>

namespace troupe::tools {

/// Exit codes of `troupe` (docs/OPERATIONS.md).
enum cli_exit : int {
  cli_ok = 0,
  cli_failed = 1,       ///< the system refused or the operation failed; reason on stderr
  cli_usage = 2,        ///< wrong arguments
  cli_unavailable = 3,  ///< no system answers at the address
  cli_timeout = 4,      ///< an ask or a wait ran out of time
  cli_not_found = 5,    ///< unknown actor, name, type or package
};

/// Runs `troupe ARGS...`; args excludes the program name. self is the path
/// of the running executable (to start daemons and find troupe-worker).
int run_cli(const std::vector<std::string>& args, const std::string& self);

}  // namespace troupe::tools
