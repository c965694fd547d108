// base/exit_codes.hpp — every exit code of troupe's programs, in one place
// (docs/OPERATIONS.md §2.2, §4.1, §6): the CLI's, the daemon's and the
// worker's. They do not overlap, so a script that runs any of them can tell
// what happened from the number alone.
#pragma once

namespace troupe {

/// `troupe` commands.
enum cli_exit : int {
  cli_ok = 0,
  cli_failed = 1,       ///< the system refused or the operation failed; reason on stderr
  cli_usage = 2,        ///< wrong arguments
  cli_unavailable = 3,  ///< no system answers at the address
  cli_timeout = 4,      ///< an ask or a wait ran out of time
  cli_not_found = 5,    ///< unknown actor, name, type or package
  cli_unknown = 6,      ///< the outcome is unknown (a system stopped answering after it took the request)
};

/// What each `troupe` exit code means, in one line: printed by the CLI's
/// --help and documented in docs/OPERATIONS.md §2.2.
struct cli_exit_doc {
  int code;
  const char* name;
  const char* meaning;
};
inline constexpr cli_exit_doc cli_exit_docs[] = {
    {cli_ok, "ok", "success"},
    {cli_failed, "failed", "the operation failed or the system refused it; the reason on stderr"},
    {cli_usage, "usage", "wrong arguments: unknown option, missing or extra argument, bad value"},
    {cli_unavailable, "unavailable", "no system answers at the address, or the convention cannot serve it now"},
    {cli_timeout, "timeout", "an ask or a wait ran out of time"},
    {cli_not_found, "not found", "unknown actor, name, type, role or package; a file that does not exist"},
    {cli_unknown, "unknown", "the outcome is unknown: a system stopped answering after it took the request"},
};

/// `troupe-worker` (64-66: sysexits' range).
enum worker_exit : int {
  worker_exit_ok = 0,
  worker_exit_usage = 64,         ///< bad command line
  worker_exit_package = 65,       ///< the package library cannot be loaded (not retried)
  worker_exit_control_lost = 66,  ///< the supervisor went away
};

/// The daemon (`troupe start --foreground`).
enum system_exit : int {
  system_exit_ok = 0,
  system_exit_setup = 70,  ///< could not bind, create state directories, ...
};

}  // namespace troupe
