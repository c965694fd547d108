// ipc/log.hpp — log lines of a worker, tagged with the actor's address.
// Written to stderr, which points at the system log file.
// Thread-safe (one fprintf per line).
#pragma once

#include <troupe/abi.h>
#include <troupe/address.hpp>

#include <string_view>

namespace troupe::ipc {

/// "2026-11-23T09:14:02.123Z INFO  [w3 @3fa9c012.17] text"; address may be empty.
void log_line(int level, address actor, std::string_view text);

/// Sets the worker tag printed in every line ("w3").
void set_log_tag(std::string_view tag);

}  // namespace troupe::ipc
