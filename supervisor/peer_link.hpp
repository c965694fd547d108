// supervisor/peer_link.hpp — the CurveZMQ links between the systems of a
// convention (docs/PROTOCOL.md §5.2, §5.3): this system's key pair, the ZAP
// handler that admits only trusted systems, the peer ROUTER every system
// listens on, a member's DEALER to its leader (the uplink) and direct DEALERs
// to other members. send() picks the route: to itself (handled on the next
// turn of the loop), from the leader over its ROUTER, from a member straight
// to another member when that link is up, else through the leader, which
// relays. Received messages go through a table of handlers by command.
// Threading: the loop's thread only.
#pragma once

#include "ipc/control.hpp"
#include "ipc/curve.hpp"
#include "ipc/reactor.hpp"
#include "supervisor/context.hpp"
#include "supervisor/membership.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace troupe::supervisor {

using json = nlohmann::json;

/// What routing needs to know of the convention; its owner keeps it current.
struct link_state {
  /// Every system sends to every other straight over a direct link (on
  /// etcd); else the built-in star: members reach the leader over their
  /// uplink and the leader reaches them over its ROUTER.
  bool direct = false;
  bool leads = false;        ///< this system leads: members connect to its ROUTER
  std::uint32_t leader = 0;  ///< the leader's id (this system's own when it leads)
  bool joined = false;       ///< a member: its uplink is welcomed by the leader
};

class peer_link {
 public:
  /// A message from system `from`; blob is its optional fourth frame.
  using handler = std::function<void(std::uint32_t from, const json& body, const std::string& blob)>;

  peer_link(system_context& ctx, const membership& members, const link_state& state)
      : ctx_(ctx), members_(members), state_(state) {}

  /// Reads or makes the key pair (systems/PORT/curve/), trusts it in
  /// convention/trusted/ (systems of one TROUPE_HOME trust each other),
  /// binds the ZAP handler and then the peer ROUTER on an ephemeral port.
  status bind();
  void start();
  void stop();

  [[nodiscard]] const std::string& public_key() const { return keys_.public_key; }
  [[nodiscard]] const ipc::curve_keypair& keys() const { return keys_; }
  /// tcp://HOST:PORT of the peer ROUTER.
  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }
  [[nodiscard]] std::filesystem::path trusted_dir() const { return ctx_.opts.home / "convention" / "trusted"; }

  void handle(std::string_view command, handler h) { handlers_[std::string(command)] = std::move(h); }
  /// Called for every message from the leader over the uplink (it lives).
  std::function<void()> on_uplink_message;
  /// The name of a system for log lines (its port).
  std::function<std::string(std::uint32_t)> name_of;

  /// Sends to system `to` by the best route; false when no route takes it.
  bool send(std::uint32_t to, std::string_view command, json body, const std::string& blob = {});
  /// Like send, for a stream whose order matters (numbered data): a direct
  /// link that took a message within the member timeout is up, so when it
  /// is full this is false (try again later) rather than a detour through
  /// the leader, where the message could overtake or be overtaken.
  bool send_in_order(std::uint32_t to, std::string_view command, json body, const std::string& blob);
  /// Sends over the uplink to the leader whatever the routing state (join).
  bool send_uplink(std::string_view command, const json& body);
  /// Opens (again) the uplink to the leader's peer socket, expecting key.
  status connect_uplink(const std::string& endpoint, const std::string& key);
  [[nodiscard]] bool has_uplink() const { return uplink_ != nullptr; }
  /// Makes the direct link to member id ahead of need (no-op when it exists
  /// or cannot be made).
  void prepare_direct(std::uint32_t id) { (void)direct_link(id); }
  /// Drops the direct links to members that left or went down.
  void prune_direct();

 private:
  void on_router();
  void on_uplink();
  /// A decoded message: runs its handler; a malformed field drops it, not the system.
  void dispatch(std::uint32_t from, const ipc::control_message& m);
  /// The direct link to member `to` (made on first use), or nullptr.
  ipc::watched_socket* direct_link(std::uint32_t to);
  void on_direct(std::uint32_t to);
  [[nodiscard]] std::string name(std::uint32_t id) const;

  system_context& ctx_;
  const membership& members_;
  const link_state& state_;
  ipc::curve_keypair keys_;
  std::unique_ptr<ipc::watched_socket> router_;  // every system: CurveZMQ server
  std::string endpoint_;
  std::unique_ptr<ipc::watched_socket> uplink_;  // a member: CurveZMQ client of the leader's router
  // Links to other members. Also read: with direct links only, a system
  // that does not know the sender yet answers over the connection it came
  // on (its ROUTER), which arrives here.
  std::map<std::uint32_t, std::unique_ptr<ipc::watched_socket>> direct_;
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> direct_took_;  // last message a direct link took
  std::unordered_map<std::string, handler> handlers_;
  // Relays the leader could not make, logged at most every 5 s per pair.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::pair<std::chrono::steady_clock::time_point, long>> unrelayed_;
};

}  // namespace troupe::supervisor
