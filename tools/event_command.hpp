// tools/event_command.hpp — `troupe events`, behind a plain struct so that
// any argument parser can call it (tools/cli.cpp wires it in one entry).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>

namespace troupe::tools {

struct events_request {
  std::string system = "127.0.0.1:1900";  ///< HOST:PORT or a bare port
  std::uint64_t since = 0;                ///< events numbered after this one
  bool follow = false;                    ///< keep printing new events
  bool json_out = false;                  ///< one JSON object a line
};

/// Prints the events and returns the exit code: 0; 3 when the system is
/// not there or went away while followed; 1 on another error.
int show_events(const events_request& r);

/// One event (its JSON form, docs/PROTOCOL.md §6.5) as one line of text.
std::string event_line(const nlohmann::json& e);

}  // namespace troupe::tools
