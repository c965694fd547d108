// supervisor/leader_convention.hpp — the built-in convention (docs/PROTOCOL.md
// §5): the system on the convention address (--leader) leads; the others
// discover it through its public port, join it over the peer link and
// heartbeat. The leader keeps the member table and the table of locations,
// decides every placement (capabilities, load, refusals), moves actors when a
// system's capabilities change or it is lost, and hands out packages to the
// members that need them. Members keep a copy of the locations to route
// requests, and serve on while the leader is away.
//
// Files: leader_convention.cpp (membership, discovery, heartbeats, commands
// between systems), leader_placement.cpp (locations, placement, hosting for
// the convention, spawn, chgcap, move, systems).
// Threading: the loop's thread only.
#pragma once

#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/convention.hpp"
#include "supervisor/data_relay.hpp"
#include "supervisor/membership.hpp"
#include "supervisor/package_manager.hpp"
#include "supervisor/peer_link.hpp"
#include "supervisor/remote_calls.hpp"
#include "supervisor/supervision.hpp"

#include <boost/asio/steady_timer.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::supervisor {

class leader_convention final : public convention {
 public:
  struct parts {
    client_port& port;
    supervision& actors;
    directory& dir;
    package_manager& packages;
    package_set& package_table;
    peer_link& link;
    link_state& state;
    membership& members;
    remote_calls& calls;
    data_relay& relay;
  };
  leader_convention(system_context& ctx, parts p) : ctx_(ctx), p_(p) {}

  status setup() override;
  void start() override;
  void stop() override;
  void describe(json& status) const override;
  void list_elsewhere(json& out, const directory& here) const override;
  location* find(const std::string& target, address& out) override;
  const location* at(address a) const override;
  std::uint32_t host_of(address a) const override;
  bool leaving(address a) const override;
  [[nodiscard]] std::string port_of(std::uint32_t system) const override;
  [[nodiscard]] bool leads() const override { return p_.state.leads; }
  [[nodiscard]] std::uint32_t leader() const override { return p_.state.leader; }
  [[nodiscard]] bool joined() const override { return p_.state.leads || p_.state.joined; }
  [[nodiscard]] std::string leader_unreachable() const override {
    return "the convention leader at " + ctx_.opts.leader + " is unreachable";
  }
  [[nodiscard]] bool gone(std::uint32_t system) const override;
  void forget(address a) override;
  void running_here(address a) override { report_created(a); }
  void failed_here(address a, const std::string& reason) override;
  void gone_here(address a, bool failed, const std::string& reason) override { report_gone(a, failed, reason); }
  bool hosts(address a) const override { return hosted_.count(a) != 0; }
  bool create_failed_here(address a, const std::string& why) override;

 private:
  // Membership, discovery, heartbeats (leader_convention.cpp).
  void register_handlers();
  /// Registers a command only the leader takes (from members, or itself).
  void on_leader(std::string_view command, peer_link::handler h);
  /// Registers a command only a member takes (from its leader).
  void on_member(std::string_view command, peer_link::handler h);
  /// Registers a command any host takes from the leader (the leader from itself).
  void on_host(std::string_view command, peer_link::handler h);
  void heartbeat_tick();
  void discover_leader();
  void on_discovery();
  void send_join();
  void leader_lost();
  void on_member_join(std::uint32_t from, const json& b);
  void on_member_down(std::uint32_t id, const std::string& why, bool expired = false);
  void on_heartbeat(std::uint32_t from, const json& b);
  void on_report(std::uint32_t from, std::string_view command, const json& b);
  void on_welcome_or_members(std::uint32_t from, const json& b, bool welcome);
  void on_fetch(std::uint32_t from, const json& b);
  void on_package(const json& b, const std::string& blob);
  void broadcast(std::string_view command, const json& body);
  [[nodiscard]] member_info self_member() const;
  [[nodiscard]] json members_json() const;

  // Locations and placement (leader_placement.cpp).
  [[nodiscard]] json location_json(address a, const location& l) const;
  void set_location(address a, location l);
  void forget_location(address a);
  /// Leader: places a (moving or pending) actor on a system that fits.
  void place(address a);
  void place_pending();
  /// Leader: moves the actors on system id that no longer fit its capabilities.
  void check_fit(std::uint32_t id);
  void begin_move(address a, const std::string& reason, std::uint32_t target, bool fresh_worker);
  [[nodiscard]] const std::vector<manifests::requirement>* requirements_of(const location& l) const;
  /// The actor runs again where the leader says: what waited for it goes.
  void release_held(address a);
  void fail_held(address a, const std::string& reason);
  /// Answers the spawn or move waiting for a.
  void answer_waiters(address a, const std::function<void(const client_ref&)>& f);
  void on_create_request(const json& b);
  void create_requested(const json& b);
  void evict(const json& b);
  void report_created(address a);
  void report_gone(address a, bool failed, const std::string& reason);
  void cmd_spawn(const client_ref& c, const json& b);
  void spawn_here(const client_ref& c, const json& b, const std::string& type, const std::string& package_id);
  void cmd_systems(const client_ref& c);
  void cmd_chgcap(const client_ref& c, const json& b);
  void cmd_move(const client_ref& c, const json& b);

  system_context& ctx_;
  parts p_;
  std::unordered_map<address, location> locations_;
  std::unordered_map<address, std::vector<client_ref>> spawn_waiters_;  // spawns and moves, answered once placed
  std::set<address> hosted_;                                            // actors here placed by the leader
  std::set<address> creating_;                                          // of those, created and not yet reported
  std::map<std::string, std::vector<json>> fetch_waiters_;              // package id -> create requests
  // A member's discovery of its leader (a DEALER to the leader's public port).
  zmq::socket_t discovery_;
  std::unique_ptr<ipc::socket_watcher> discovery_watch_;
  std::string leader_peer_;  // the peer endpoint the uplink is connected to
  convention_clock::time_point uplink_since_{};
  convention_clock::time_point leader_heard_{};
  std::string untrusted_leader_key_;  // logged once
  bool not_a_leader_logged_ = false;
  std::unique_ptr<boost::asio::steady_timer> heartbeat_timer_;
};

}  // namespace troupe::supervisor
