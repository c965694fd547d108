// supervisor/placement_convention.hpp — what both kinds of convention share
// (docs/PROTOCOL.md §5.4-5.10): the table of locations, choosing a system for
// an actor (capabilities, load, refusals), moves (chgcap, move, a lost
// system), hosting the actors the leader places here, fetching their
// packages, and the client commands spawn, systems, chgcap and move.
//
// How a decision reaches the other systems, and who may take one, is the
// subclass's: the built-in leader (leader_convention) broadcasts it over the
// peer links; on etcd (etcd_convention) the elected leader writes it to the
// store, and every system follows the store.
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

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::supervisor {

class placement_convention : public convention {
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
  placement_convention(system_context& ctx, parts p) : ctx_(ctx), p_(p) {}

  void list_elsewhere(json& out, const directory& here) const override;
  location* find(const std::string& target, address& out) override;
  const location* at(address a) const override;
  std::uint32_t host_of(address a) const override;
  bool leaving(address a) const override;
  bool placed_elsewhere(address a) const override;
  [[nodiscard]] std::string port_of(std::uint32_t system) const override;
  [[nodiscard]] bool leads() const override { return p_.state.leads; }
  [[nodiscard]] std::uint32_t leader() const override { return p_.state.leader; }
  [[nodiscard]] bool joined() const override { return p_.state.leads || p_.state.joined; }
  [[nodiscard]] bool gone(std::uint32_t system) const override;
  void forget(address a) override { forget_location(a); }
  void running_here(address a) override { report_created(a); }
  void failed_here(address a, const std::string& reason) override;
  void gone_here(address a, bool failed, const std::string& reason, bool fenced) override {
    report_gone(a, failed, reason, fenced);
  }
  bool hosts(address a) const override { return hosted_.count(a) != 0; }
  bool create_failed_here(address a, const std::string& why) override;

 protected:
  // ---- How decisions travel: the subclass's.
  /// The leader changed a's location (or made it): tell the convention.
  virtual void located(address a, const location& l) = 0;
  /// As located, then `then` once the convention has recorded it (etcd:
  /// once the store took it; never when it did not).
  virtual void located_then(address a, const location& l, std::function<void()> then) {
    located(a, l);
    then();
  }
  /// The leader forgot a (stopped, failed, its package gone).
  virtual void forgotten(address a) = 0;
  /// The leader asks host `to` to create a: true when the request left.
  /// Returns through `then` (right away, or once the placement is recorded).
  virtual void send_create(std::uint32_t to, address a, const location& l, std::function<void(bool sent)> then) = 0;
  /// This system's capabilities changed (chgcap): tell whoever decides.
  virtual void capabilities_changed() = 0;
  /// A new placement's epoch (the leader's).
  virtual std::uint64_t next_epoch() = 0;
  /// The systems as `troupe systems` lists them (plus mode-specific fields).
  virtual void describe_systems(json& out) const = 0;
  /// Whether a package the leader does not have loaded is gone for good (its
  /// actors are forgotten) rather than not loaded yet (they wait, pending).
  [[nodiscard]] virtual bool package_gone(const std::string& package_id) const {
    (void)package_id;
    return true;
  }
  /// Why a create the leader sent cannot be honoured here ("": it can).
  [[nodiscard]] virtual std::string refuses_create(const json& body) const {
    (void)body;
    return {};
  }
  /// Whether this system was just elected and still reads the convention's
  /// state (its packages): spawns wait for it rather than fail.
  [[nodiscard]] virtual bool taking_over() const { return false; }
  /// Runs f once the leader's decisions so far are kept on disk (a spawn is
  /// answered then): at once where nothing is kept.
  virtual void when_durable(std::function<void()> f) { f(); }
  /// Where a host fetches a package it lacks: the leader, by default.
  [[nodiscard]] virtual std::uint32_t fetch_source(const std::string& package_id) const {
    (void)package_id;
    return p_.state.leader;
  }

  // ---- Shared.
  /// Records a system event (joined, lost, fenced) of system id in the
  /// event ring (event_ring.hpp), with its public port when known.
  void note_system(event_kind kind, std::uint32_t id, const std::string& reason);
  /// Records leader_changed when the leader is not the one last recorded
  /// (0: none now).
  void note_leader(std::uint32_t id, const std::string& reason);
  std::uint32_t noted_leader_ = 0;

  /// Registers the host-side peer commands (create, package, fetch_failed,
  /// evict, fetch) through `guard`, and the client commands.
  /// Capabilities as chgcap left them in the last run (systems/PORT/
  /// capabilities.json), when the system starts with the same --caps as
  /// then; other --caps mean the operator changed them, and they win.
  void restore_capabilities();
  void register_shared(const std::function<void(std::string_view, peer_link::handler)>& host_side,
                       const std::function<void(std::string_view, peer_link::handler)>& leader_side);
  [[nodiscard]] member_info self_member() const;
  [[nodiscard]] json members_json() const;
  [[nodiscard]] json location_json(address a, const location& l) const;
  [[nodiscard]] location location_from_json(const json& j) const;
  /// Makes l share the package table's copies of its package id and type
  /// (one location per actor of the convention, on every system).
  void share_texts(location& l) const;
  void set_location(address a, location l);
  void forget_location(address a);
  /// Leader: places a (moving or pending) actor on a system that fits.
  void place(address a);
  void place_pending();
  /// Leader: moves the actors on system id that no longer fit its capabilities.
  void check_fit(std::uint32_t id);
  void begin_move(address a, const std::string& reason, std::uint32_t target, bool fresh_worker);
  /// Leader: system id is lost; its actors are placed elsewhere (or pending).
  void system_lost(std::uint32_t id, const std::string& why);
  [[nodiscard]] const std::vector<manifests::requirement>* requirements_of(const location& l) const;
  /// The actor runs again where the leader says: what waited for it goes.
  void release_held(address a);
  void fail_held(address a, const std::string& reason);
  /// Answers the spawn or move waiting for a.
  void answer_waiters(address a, const std::function<void(const client_ref&)>& f);
  /// Leader: a host's report (created, create_failed, evicted, gone).
  void on_report(std::uint32_t from, std::string_view command, const json& b);
  void on_create_request(const json& b);
  void create_requested(const json& b);
  void evict(const json& b);
  void report_created(address a);
  void report_gone(address a, bool failed, const std::string& reason, bool fenced = false);
  /// Stops instances here that the convention placed elsewhere meanwhile
  /// (they are stale), without a report: before anything is served for them.
  void stop_stale(const std::vector<address>& stale);
  void on_fetch(std::uint32_t from, const json& b);
  void on_package(const json& b, const std::string& blob);
  void cmd_spawn(const client_ref& c, const json& b);
  /// A spawn or move asked of a system that does not lead: to the leader.
  void to_leader(const client_ref& c, std::string_view command, const json& b, std::chrono::milliseconds timeout);
  /// The spawns that waited for taking_over() to end: run, or failed with why.
  void run_held_spawns();
  void fail_held_spawns(const std::string& why);
  void spawn_here(const client_ref& c, const json& b, const std::string& type, const std::string& package_id);
  void cmd_systems(const client_ref& c);
  void cmd_chgcap(const client_ref& c, const json& b);
  void cmd_move(const client_ref& c, const json& b);
  /// Runs again the moves that came while a was moving, once it is placed,
  /// pending or gone (posted: never in the middle of a transition).
  void retry_moves(address a);

  system_context& ctx_;
  parts p_;
  std::unordered_map<address, location> locations_;
  std::unordered_map<address, std::vector<client_ref>> spawn_waiters_;  // spawns and moves, answered once placed
  // Moves asked while their actor was moving (a chgcap's re-placement under
  // way): run once it lands, at most max_deferred_moves per actor.
  std::unordered_map<address, std::vector<std::pair<client_ref, json>>> deferred_moves_;
  static constexpr std::size_t max_deferred_moves = 16;
  std::map<address, std::uint64_t> hosted_;                 // actors here placed by the leader, with their epoch
  manifests::capabilities started_caps_;                    // the --caps this run started with
  std::set<address> creating_;                              // of those, created and not yet reported
  std::map<std::string, std::vector<json>> fetch_waiters_;  // package id -> create requests
  std::vector<std::pair<client_ref, json>> held_spawns_;    // asked while taking over
};

}  // namespace troupe::supervisor
