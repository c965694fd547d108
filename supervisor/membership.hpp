// supervisor/membership.hpp — what a system knows of its convention: the
// member systems (endpoint, key, capabilities, load, liveness) and the choice
// of a system for a new actor. Pure bookkeeping, no I/O: unit-tested alone.
// Not thread-safe; owned by the supervisor's loop thread.
#pragma once

#include "manifests/requirement.hpp"

#include <troupe/result.hpp>

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::supervisor {

using convention_clock = std::chrono::steady_clock;

enum class member_state {
  up,    ///< heard within the member timeout
  down,  ///< not heard within it, or said it stops; its actors are placed elsewhere
};

[[nodiscard]] const char* to_string(member_state s);

struct member_info {
  std::uint32_t system_id = 0;  ///< the 8-hex-digit id of its addresses
  std::string host;             ///< its public (client) address
  std::uint16_t port = 0;       ///< its public port: how operators name it
  std::string peer_endpoint;    ///< tcp://HOST:PORT of its CurveZMQ peer socket
  std::string public_key;       ///< its Curve25519 public key, Z85 (40 characters)
  manifests::capabilities caps;
  std::uint32_t actors = 0;  ///< actors it hosts: its load
  bool leader = false;
  member_state state = member_state::up;
  convention_clock::time_point last_heard{};
};

/// The wire form (docs/PROTOCOL.md §5): {"system": "3fa9c012", "host", "port",
/// "peer", "key", "capabilities": {...}, "actors", "leader", "state"}.
[[nodiscard]] nlohmann::json to_json(const member_info& m);
/// Reads the wire form; a one-line error names the missing or malformed field.
/// last_heard is left at its default.
[[nodiscard]] result<member_info> member_from_json(const nlohmann::json& j);

class membership {
 public:
  /// Adds a member or replaces what is known of it (a join, a rejoin, a
  /// member list from the leader); it is up and heard at now. Returns true
  /// when it is new or anything but last_heard and actors changed.
  bool upsert(member_info m, convention_clock::time_point now);
  /// A heartbeat: marks it up and heard at now, with its load. False for an
  /// unknown id.
  bool heard(std::uint32_t id, convention_clock::time_point now, std::uint32_t actors);
  /// Marks down every up member (but except) not heard within timeout;
  /// returns their ids in port order.
  std::vector<std::uint32_t> expire(convention_clock::time_point now, std::chrono::milliseconds timeout,
                                    std::uint32_t except);
  /// Marks a member down (it said it stops). False for an unknown id.
  bool mark_down(std::uint32_t id);
  /// Forgets a member entirely.
  void remove(std::uint32_t id);
  /// Replaces a member's capabilities. False for an unknown id.
  bool set_caps(std::uint32_t id, manifests::capabilities caps);
  /// Changes a member's load by delta (never below zero). False for an unknown id.
  bool add_load(std::uint32_t id, int delta);

  [[nodiscard]] const member_info* find(std::uint32_t id) const;
  /// The member whose public port is port (the first by id when two hosts
  /// share a port).
  [[nodiscard]] const member_info* find_port(std::uint16_t port) const;
  /// Every member, ordered by port, then id.
  [[nodiscard]] std::vector<const member_info*> all() const;
  [[nodiscard]] std::size_t size() const { return members_.size(); }

 private:
  std::map<std::uint32_t, member_info> members_;
};

/// Chooses the system for an actor of type `type` requiring reqs: local_id
/// when it is up and fits, else the up member that fits with the fewest
/// actors, ties broken by the lowest port, then the lowest id. Members in
/// exclude are skipped (one that refused the actor a moment ago). With none
/// fitting, errc::unavailable with one line naming, for each up member in port
/// order, the first requirement it does not meet:
///   "no system can host Morse: 1900: morse: requires true, system has none;
///    10101: morse: requires true, system has none"
/// (no up member at all: "no system can host Morse: no system is up").
[[nodiscard]] result<std::uint32_t> choose_system(const membership& members, std::uint32_t local_id,
                                                  const std::vector<manifests::requirement>& reqs,
                                                  const std::vector<std::uint32_t>& exclude, std::string_view type);

}  // namespace troupe::supervisor
