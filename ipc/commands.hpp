// ipc/commands.hpp — every command name of the protocol, in one place
// (docs/PROTOCOL.md §4 control plane, §5 between systems, §6 clients). The
// names on the wire are the strings; code names them through these
// constants, grouped by the socket they travel on, so that two commands that
// share a wire name on different sockets ("forget") keep different names here.
#pragma once

#include <string_view>

namespace troupe::ipc::cmd {

/// Every answer to a request, on every socket.
inline constexpr std::string_view reply = "reply";

/// Clients → a system's public socket (§6).
namespace client {
inline constexpr std::string_view status = "status";
inline constexpr std::string_view ping = "ping";
inline constexpr std::string_view load = "load";
inline constexpr std::string_view unload = "unload";
inline constexpr std::string_view list = "list";
inline constexpr std::string_view avail = "avail";
inline constexpr std::string_view refresh = "refresh";
inline constexpr std::string_view role = "role";
inline constexpr std::string_view spawn = "spawn";
inline constexpr std::string_view tell = "tell";
inline constexpr std::string_view ask = "ask";
inline constexpr std::string_view actors = "actors";
inline constexpr std::string_view kill = "kill";
inline constexpr std::string_view systems = "systems";
inline constexpr std::string_view chgcap = "chgcap";
inline constexpr std::string_view move = "move";
inline constexpr std::string_view shutdown = "shutdown";
/// The options the system was started with, and where each came from.
inline constexpr std::string_view config = "config";
/// The event ring, once or followed (§6.5).
inline constexpr std::string_view events = "events";
/// Workers, busiest actors and recent restarts: what `troupe top` shows (§6.6).
inline constexpr std::string_view top = "top";
/// The dashboard's URL and token (admin only, §6.6).
inline constexpr std::string_view dashboard = "dashboard";
}  // namespace client

/// A worker → its supervisor's control socket (§4.2).
namespace worker {
inline constexpr std::string_view hello = "hello";
inline constexpr std::string_view ready = "ready";
inline constexpr std::string_view fatal = "fatal";
inline constexpr std::string_view resolve = "resolve";
inline constexpr std::string_view lookup = "lookup";
inline constexpr std::string_view lease = "lease";
inline constexpr std::string_view spawn = "spawn";
inline constexpr std::string_view kill = "kill";
inline constexpr std::string_view created = "created";
inline constexpr std::string_view create_failed = "create_failed";
inline constexpr std::string_view restarted = "restarted";
inline constexpr std::string_view stopped = "stopped";
inline constexpr std::string_view watch = "watch";
inline constexpr std::string_view unwatch = "unwatch";
inline constexpr std::string_view bye = "bye";
/// A direct link's key was admitted (answers supervisor::admit).
inline constexpr std::string_view admitted = "admitted";
/// The answer to the supervisor's `stats` (an event carrying its rid).
inline constexpr std::string_view stats = "stats";
}  // namespace worker

/// The supervisor → a worker (§4.3).
namespace supervisor {
inline constexpr std::string_view create = "create";
inline constexpr std::string_view stop = "stop";
inline constexpr std::string_view peer_died = "peer_died";
/// A worker of another system may connect to this worker's tcp inbox (its
/// key), and this worker reaches that one's tcp inbox with that key.
inline constexpr std::string_view admit = "admit";
/// Drop the cached route to an address (wire name "forget").
inline constexpr std::string_view forget_route = "forget";
inline constexpr std::string_view forget_name = "forget_name";
inline constexpr std::string_view shutdown = "shutdown";
/// Asks a worker for its busiest actors; answered with the worker's `stats`.
inline constexpr std::string_view stats = "stats";
}  // namespace supervisor

/// Between systems of a convention, over the peer link (§5.5).
namespace peer {
inline constexpr std::string_view join = "join";
inline constexpr std::string_view welcome = "welcome";
inline constexpr std::string_view members = "members";
inline constexpr std::string_view heartbeat = "heartbeat";
inline constexpr std::string_view rejoin = "rejoin";
inline constexpr std::string_view leaving = "leaving";
inline constexpr std::string_view located = "located";
/// The actor is gone from the convention's table (wire name "forget").
inline constexpr std::string_view forget_location = "forget";
inline constexpr std::string_view create = "create";
inline constexpr std::string_view created = "created";
inline constexpr std::string_view create_failed = "create_failed";
inline constexpr std::string_view evict = "evict";
inline constexpr std::string_view evicted = "evicted";
inline constexpr std::string_view gone = "gone";
inline constexpr std::string_view fetch = "fetch";
inline constexpr std::string_view package = "package";
inline constexpr std::string_view fetch_failed = "fetch_failed";
inline constexpr std::string_view unloaded = "unloaded";
inline constexpr std::string_view call = "call";
inline constexpr std::string_view result = "result";
inline constexpr std::string_view data = "data";
/// The receiver of `data` took every record of a channel up to a number.
inline constexpr std::string_view data_ack = "data_ack";
// Direct links between workers of two systems (docs/PROTOCOL.md §5.13).
inline constexpr std::string_view link = "link";
inline constexpr std::string_view linked = "linked";
inline constexpr std::string_view link_refused = "link_refused";
inline constexpr std::string_view worker_died = "worker_died";
}  // namespace peer

}  // namespace troupe::ipc::cmd
