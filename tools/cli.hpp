// tools/cli.hpp — the `troupe` command line: argument parsing and the
// commands. main.cpp only calls run_cli, so tests can drive the same code.
// Single-threaded.
#pragma once

#include "base/exit_codes.hpp"

#include <string>
#include <vector>

namespace troupe::tools {

using troupe::cli_exit;  // base/exit_codes.hpp

/// Runs `troupe ARGS...`; args excludes the program name. self is the path
/// of the running executable (to start daemons and find troupe-worker).
int run_cli(const std::vector<std::string>& args, const std::string& self);

}  // namespace troupe::tools
