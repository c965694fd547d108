// supervisor/system_impl.hpp — the system class, shared by the files that
// implement it: system.cpp (sockets, clients, workers, shutdown),
// system_packages.cpp (loading, versions, unloading) and system_watches.cpp
// (watches and exit notices). Internal to the
// supervisor component; nothing outside supervisor/ includes it.
#pragma once

#include "supervisor/system.hpp"

#include "ipc/control.hpp"
#include "ipc/delivery.hpp"
#include "ipc/handling_marker.hpp"
#include "ipc/log.hpp"
#include "ipc/reactor.hpp"
#include "ipc/curve.hpp"
#include "supervisor/convention.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/package_store.hpp"
#include "supervisor/packages.hpp"
#include "supervisor/process.hpp"
#include "supervisor/watches.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using ipc::json;
using ipc::log_line;
using ipc::send_control;

constexpr auto default_ask_timeout = std::chrono::milliseconds(5000);
constexpr auto shutdown_grace = std::chrono::seconds(5);
// How long a worker that exited before registering may take to deliver its
// "fatal" reason (normally it is already on the control socket).
constexpr auto fatal_grace_period = std::chrono::seconds(1);
constexpr std::size_t max_ipc_path = 107;  // sun_path less its NUL
// A loaded package's worker must register within this time, or the load fails.
constexpr auto load_registration_timeout = std::chrono::seconds(10);
// An unloaded package's actors get this long to stop before its worker is killed.
constexpr auto unload_grace = std::chrono::seconds(5);
// Descriptors one worker costs the daemon (its pidfd, its control and
// gateway connections, the data socket to its inbox and that socket's
// mailbox), with room for the launch's own pipe.
constexpr std::size_t worker_descriptor_cost = 8;
// Kept free for clients, package files and ZeroMQ's own needs.
constexpr std::size_t descriptor_reserve = 32;
// A load's replacement standby starts this long after the load is answered.
constexpr auto standby_delay = std::chrono::milliseconds(10);

/// A client request waiting for an event (a creation, a stop, a reply).
/// A client request waiting for an event (a creation, a stop, a reply). A
/// request forwarded by another system of the convention has no identity: its
/// answer goes back to system `via` as the result of call `call`.
struct client_ref {
  std::string identity;
  json rid;
  std::uint32_t via = 0;
  std::uint64_t call = 0;
};

/// Where the convention has placed an actor (docs/PROTOCOL.md §5). The
/// leader's table is the truth; members keep a copy to route client requests.
struct location {
  std::uint32_t system = 0;  ///< where it runs; for moving and pending, where it ran
  std::string type;
  std::string package_id;
  std::string name;
  enum class phase { placed, moving, pending } ph = phase::placed;
  std::uint32_t moves = 0;
  std::string reason;  ///< why it is moving or pending; once placed again, why it moved
  std::string cause;   ///< what started its last move
  bool fresh_worker = false;  ///< re-create it in a worker of its own (move --new-worker)
  std::uint32_t target = 0;  ///< moving: the system chosen for it (0: any that fits)
  std::set<std::uint32_t> refused;  ///< systems that could not create it (no key for its package, ...)
  bool created = false;  ///< has run somewhere: a new placement is a move
};

/// A client request for an actor that is moving or pending: held, bounded.
struct held_call {
  client_ref client;  // empty for a tell (answered when held)
  std::string command;
  json body;
  std::uint64_t id = 0;
  std::shared_ptr<asio::steady_timer> timer;  // an ask's own timeout
};

/// A data record for an actor of another system, kept while it moves.
struct relayed_record {
  ipc::record_kind kind;
  address to;
  address from;
  std::uint64_t correlation;
  std::string type;
  std::string payload;
};

/// A request forwarded to another system, waiting for its result.
struct peer_call {
  client_ref client;
  std::uint32_t system = 0;
  std::string command;
  json body;
  std::unique_ptr<asio::steady_timer> timer;
};

struct worker_proc {
  std::uint32_t id = 0;
  std::string package_id;  // empty for a standby worker
  // Hosts the one actor of an `isolation: dedicated` type, and goes with it;
  // else the package's shared worker (package_entry::worker) or a standby.
  bool dedicated = false;
  std::string identity;    // ROUTER routing id: "w<id>"
  // A new inbox for each process (w<id>-<incarnation>.sock): what senders
  // still queued for a dead one can never reach its successor.
  std::string inbox;
  std::uint32_t incarnation = 0;
  // starting: launched; standby: said hello, waits for a package (its hello
  // unanswered); assigned: told its package, loading it; ready: serving.
  enum class state { starting, standby, assigned, ready, stopping } st = state::starting;
  json hello_rid;  // answered with the package assignment
  std::unique_ptr<child_watch> child;
  std::vector<json> pending_creates;  // create bodies waiting for "hello"
  // A crashed worker waits here before it is started again (restart.backoff).
  std::unique_ptr<asio::steady_timer> restart_timer;
  // Exited before "hello" and its "fatal" (the reason) not read yet: the
  // package is failed when it arrives or when this timer runs out.
  std::unique_ptr<asio::steady_timer> fatal_grace;
  std::string exit_how;
};

/// A client ask or tell waiting for its target to be created.
struct held_message {
  ipc::record_kind kind;
  std::uint64_t correlation;
  std::string type;
  std::string payload;
};

struct gateway_ask {
  client_ref client;
  std::unique_ptr<asio::steady_timer> timer;
};

class system {
 public:
  explicit system(const system_options& opts)
      : opts_(opts),
        dir_(state_dir(opts.home, opts.port)),
        run_dir_(dir_ / "run"),
        directory_(0),
        link_(io_, zmq_),
        signals_(io_, SIGTERM, SIGINT),
        store_(store_in(opts.home, opts.limits)) {}

  int run();

 private:
  status setup();
  void finish_setup();

  // Public socket (clients).
  void on_public();
  void handle_client(const std::string& identity, const ipc::control_message& m);
  void answer(const client_ref& c, json body) { deliver_reply(c, ipc::ok_reply(c.rid, std::move(body))); }
  void answer_error(const client_ref& c, std::string_view text, errc code = errc::refused) {
    auto body = ipc::error_reply(c.rid, text);
    body["code"] = to_string(code);
    deliver_reply(c, std::move(body));
  }
  /// Sends a reply body to a client, or back to the system that forwarded its request.
  void deliver_reply(const client_ref& c, json body);
  void cmd_status(const client_ref& c);
  void cmd_load(const client_ref& c, const json& b);
  void cmd_unload(const client_ref& c, const json& b);
  void cmd_list(const client_ref& c);
  void cmd_avail(const client_ref& c);
  void cmd_refresh(const client_ref& c);
  void cmd_role(const client_ref& c, const json& b);
  void cmd_spawn(const client_ref& c, const json& b);
  void cmd_send(const client_ref& c, const json& b, bool is_ask);
  void cmd_actors(const client_ref& c);
  void cmd_kill(const client_ref& c, const json& b);
  void cmd_shutdown(const client_ref& c);
  /// Runs one client request (also one forwarded by another system, or held).
  void dispatch(const client_ref& c, const std::string& command, const json& b);

  // Convention (system_convention.cpp).
  status setup_convention();
  [[nodiscard]] bool is_leader() const { return leader_; }
  [[nodiscard]] std::uint32_t self_id() const { return directory_.system_id(); }
  [[nodiscard]] std::string self_hex() const;
  [[nodiscard]] member_info self_member() const;
  void on_peer();      // the leader's peer ROUTER
  void on_uplink();    // a member's DEALER to the leader
  void on_discovery(); // a member's DEALER to the leader's public port
  void on_zap();
  void handle_peer(std::uint32_t from, const std::string& command, const json& b, const std::string& blob);
  /// handle_peer, with a malformed message logged and dropped.
  void handle_peer_guarded(std::uint32_t from, const std::string& command, const json& b, const std::string& blob);
  /// Sends to a system of the convention (through the leader for a member's
  /// peer); to this system itself, handled on the next turn of the loop.
  bool send_peer(std::uint32_t to, const std::string& command, json body, const std::string& blob = {});
  void broadcast(const std::string& command, const json& body);
  /// A member's direct link to another member (DEALER, CurveZMQ client), made
  /// when the leader lists it (or on first use); nullptr when that member is
  /// unknown, down or not listening.
  zmq::socket_t* direct_link(std::uint32_t to);
  void heartbeat_tick();
  void discover_leader();
  void send_join();
  void leader_lost();
  void on_member_join(std::uint32_t from, const json& b);
  void on_member_down(std::uint32_t id, const std::string& why, bool expired = false);
  [[nodiscard]] json members_json() const;
  [[nodiscard]] json location_json(address a, const location& l) const;
  void set_location(address a, location l);
  void forget_location(address a);
  /// Leader: places a (moving or pending) actor on a system that fits.
  void place_convention_actor(address a);
  void place_pending();
  /// Leader: moves the actors on system id that no longer fit its capabilities.
  void check_fit(std::uint32_t id);
  void begin_move(address a, const std::string& reason, std::uint32_t target, bool fresh_worker);
  [[nodiscard]] const std::vector<manifests::requirement>* requirements_of(const location& l) const;
  [[nodiscard]] std::string port_of(std::uint32_t id) const;
  // Requests served for the convention.
  void cmd_systems(const client_ref& c);
  void cmd_chgcap(const client_ref& c, const json& b);
  void cmd_move(const client_ref& c, const json& b);
  void cmd_convention_spawn(const client_ref& c, const json& b, const std::string& type, const std::string& package_id);
  /// A request for an actor this system does not host: forwarded, held or
  /// failed. False when target is not a convention actor either.
  bool route_remote(const client_ref& c, const std::string& command, const json& b, const std::string& target);
  void forward_call(const client_ref& c, std::uint32_t to, const std::string& command, const json& b,
                    std::chrono::milliseconds timeout);
  // Data records between systems: a worker's message to an actor elsewhere
  // goes to this system's gateway, over the peer link, to the host's worker.
  [[nodiscard]] std::uint32_t remote_host_of(address a) const;
  void relay_record(const ipc::record_view& r);
  void deliver_relayed(const ipc::record_view& r);
  void bounce_relayed(const ipc::record_view& r, const std::string& reason);
  void flush_held_records(address a);
  /// Bounces what waits for a: asks fail, tells come back as dead letters.
  void drop_held_records(address a, const std::string& reason);
  void on_peer_data(const std::string& blob);
  /// The convention's actor at an address text or global name.
  location* find_location(const std::string& target, address& out);
  /// Requests forwarded to where a was, now that it moved: sent after it.
  void reroute_calls(address a);
  void flush_held_calls(address a);
  void fail_held_calls(address a, const std::string& reason);
  void on_peer_call(std::uint32_t from, const json& b);
  void on_peer_result(const json& b);
  void on_create_request(const json& b);
  void create_requested(const json& b);
  void on_fetch(std::uint32_t from, const json& b);
  void on_package(const json& b, const std::string& blob);
  /// This system hosts a for the convention: tell the leader what became of it.
  void report_created(address a);
  void report_gone(address a, bool failed, const std::string& reason);

  // Control socket (workers).
  void on_control();
  void handle_worker(const std::string& identity, const ipc::control_message& m);
  void to_worker(const worker_proc& w, std::string_view command, const json& body) {
    send_to_worker(w.identity, command, body);
  }
  void reply_worker(const std::string& identity, const json& rid, json fields) {
    send_to_worker(identity, "reply", ipc::ok_reply(rid, std::move(fields)));
  }
  void reply_worker_error(const std::string& identity, const json& rid, std::string_view text) {
    send_to_worker(identity, "reply", ipc::error_reply(rid, text));
  }
  void send_to_worker(const std::string& identity, std::string_view command, const json& body) {
    // Fails only when the worker is gone (ROUTER_MANDATORY); its exit is
    // handled through its pidfd.
    if (!send_control(control_, identity, command, body))
      log_line(TROUPE_LOG_WARN, {}, "control message '" + std::string(command) + "' to " +
                                        identity + " not delivered: worker gone");
    control_watch_->kick();
  }
  void on_created(const std::string& identity, address a);
  /// Forgets a creation not yet sent to a starting worker.
  void drop_pending_create(address a);
  void on_create_failed(address a, const std::string& why);
  void on_stopped(address a, bool failed, const std::string& reason);
  void resolve_for(const std::string& identity, const json& rid, address a);

  // Placement and workers.
  result<std::string> choose_package(const std::string& type, const std::string& spec);
  status place(address a, const std::string& type, const std::string& package_id,
               const std::string& name, address parent, bool fresh_worker = false);
  /// The package's shared worker: its own, else a standby given the package,
  /// else a new one. dedicated: always a standby or a new one, for one actor.
  result<worker_proc*> worker_for(const std::string& package_id, bool dedicated = false);
  /// Stops a dedicated worker once its actor is gone for good (stopped, or
  /// failed while the worker lives on).
  void retire_dedicated_worker(std::uint32_t id);
  result<worker_proc*> launch_worker();
  /// Drops a worker's record and its run/wN directory; a package whose
  /// shared worker it was has none until its next spawn.
  void forget_worker(std::uint32_t id);
  status assign(worker_proc& w, package_entry& pkg);
  void send_assignment(worker_proc& w);
  /// Keeps opts_.standby_workers workers started ahead of need.
  void replenish_standby();
  /// The same, standby_delay from now (after a load is answered).
  void replenish_standby_soon();
  status start_worker(worker_proc& w);
  void on_worker_exit(std::uint32_t id, int wait_status);
  void fail_unstarted_worker(std::uint32_t id);
  /// Applies each hosted actor's restart policy after its worker died; starts
  /// the worker again (after the backoff) when any actor is to come back.
  void restart_after_crash(worker_proc& w, package_entry& pkg, const std::string& how);
  /// Hands a dead worker's package and actors to a standby worker (no exec
  /// on the restart path); false when there is none.
  bool adopt_standby(worker_proc& dead);
  /// What befell the actors of a worker that exited (on_worker_exit).
  void settle_worker_exit(std::uint32_t id, const std::string& how);
  /// Tells every other worker that the process at inbox died, and which
  /// record it was handling (no-loss delivery: they send the rest again).
  void announce_death(std::uint32_t id, const std::string& inbox, const ipc::handling_snapshot& last,
                      const std::string& how);
  [[nodiscard]] fs::path marker_of(const worker_proc& w) const { return run_dir_ / w.identity / "handling"; }
  /// The worker's "create" for rec, with its restart policy and count.
  [[nodiscard]] json create_body(const actor_record& rec, const package_entry& pkg) const;
  void fail_actor(actor_record& rec, const std::string& reason);

  // Packages (system_packages.cpp).
  using load_done = std::function<void(const result<json>&)>;
  /// Verifies and registers a package, starts its worker; done runs once it
  /// registered (or failed). Loading a loaded package is a no-op.
  void load_archive(const fs::path& file, load_done done);
  void load_directory(const fs::path& dir, load_done done);
  /// When id is loaded, loading or unloading, answers done (or queues it) and returns true.
  bool join_existing(const std::string& id, load_done& done);
  void begin_load(package_entry entry, load_done done);
  void on_worker_ready(worker_proc& w, const json& rid, const json& types);
  void finish_load(const std::string& id);
  void fail_load(const std::string& id, const std::string& reason);
  [[nodiscard]] json describe_load(const package_entry& p, bool already) const;
  /// Applies a change of a group's active version: on_deactivate, then
  /// on_reactivate when reactivating, global names, auto_unload.
  void apply_activation(const std::string& group, const activation& change, bool reactivating);
  void send_hook(const package_entry& p, const char* which);
  void run_on_load(package_entry& p);
  void bind_group_names(const std::string& group);
  void begin_unload(const std::string& id, const char* reason);
  void maybe_finish_unload(const std::string& id);
  void send_exit(actor_record& rec, const std::string& reason);
  /// Archives loaded by this system or, as systems/*/loaded says, by another
  /// system of the same TROUPE_HOME: keep never deletes them.
  [[nodiscard]] std::set<fs::path> loaded_archives() const;
  void publish_loaded() const;
  /// A leader that died without stopping loads again what it had loaded.
  void reload_after_crash();

  // Watches (system_watches.cpp).
  /// Answers a worker's "watch" (on) or "unwatch" request.
  void on_watch_request(const worker_proc& w, const json& rid, const json& b, bool on);
  /// Tells every watcher of target what happened to it; stopped and failed
  /// end the watches of target and those target held.
  void notify_watchers(address target, exit_event event, const std::string& reason);
  void send_exit_notice(address watcher, address target, exit_event event, const std::string& reason);

  // Gateway (client messages into the data plane).
  void on_gateway();
  /// The gateway's own share of a worker's death: its unacknowledged client
  /// messages go again (held until the actor runs), the one being handled
  /// fails its ask as poison.
  void resend_from_gateway(std::vector<ipc::data_link::kept_batch> kept, const ipc::handling_snapshot& last,
                           const std::string& how);
  void send_gateway_acks();
  void send_from_gateway(actor_record& rec, ipc::record_kind kind, std::uint64_t corr,
                         const std::string& type, const std::string& payload);
  void flush_held(address a);
  void fail_held(address a, const std::string& reason);
  [[nodiscard]] address gateway_address() const {
    return address(directory_.system_id(), ipc::gateway_serial);
  }

  void begin_shutdown();
  void maybe_finish_shutdown();
  [[nodiscard]] std::string endpoint_of(const std::string& file) const {
    return "ipc://" + (run_dir_ / file).string();
  }

  system_options opts_;
  fs::path dir_;
  fs::path run_dir_;
  asio::io_context io_{1};
  zmq::context_t zmq_{1};
  std::unique_ptr<ipc::watched_socket> public_;  // clients: every answer re-checks it
  zmq::socket_t control_;
  zmq::socket_t gateway_;
  std::unique_ptr<ipc::socket_watcher> control_watch_;
  std::unique_ptr<ipc::socket_watcher> gateway_watch_;
  directory directory_;
  ipc::data_link link_;
  ipc::inbound_ledger gateway_ledger_;  // acknowledges what workers send the gateway
  asio::signal_set signals_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  package_store store_;
  package_set packages_;
  std::map<std::string, std::vector<load_done>> load_waiters_;              // by package id
  std::map<std::string, std::vector<client_ref>> unload_waiters_;           // by package id
  std::map<std::string, std::unique_ptr<asio::steady_timer>> package_timers_;  // load / unload deadlines
  std::map<std::uint32_t, worker_proc> workers_;
  std::uint32_t next_worker_id_ = 1;

  std::unordered_map<address, std::vector<client_ref>> spawn_waiters_;
  std::unordered_map<address, std::vector<client_ref>> kill_waiters_;
  std::unordered_map<address, std::vector<std::pair<std::string, json>>> resolve_waiters_;
  std::unordered_map<address, std::vector<held_message>> held_;
  watch_table watches_;
  std::unordered_map<std::uint64_t, gateway_ask> gateway_asks_;
  std::uint64_t next_correlation_ = 1;

  // Convention (system_convention.cpp).
  bool leader_ = false;
  ipc::curve_keypair curve_;
  std::unique_ptr<ipc::zap_authenticator> zap_;
  std::unique_ptr<ipc::socket_watcher> zap_watch_;
  zmq::socket_t peer_;       // leader: ROUTER, CurveZMQ server
  std::string peer_endpoint_;
  zmq::socket_t uplink_;     // member: DEALER, CurveZMQ client of the leader's peer socket
  zmq::socket_t discovery_;  // member: DEALER to the leader's public port
  std::unique_ptr<ipc::socket_watcher> peer_watch_;
  std::unique_ptr<ipc::socket_watcher> uplink_watch_;
  std::unique_ptr<ipc::socket_watcher> discovery_watch_;
  std::map<std::uint32_t, zmq::socket_t> direct_;  // member: links to other members, send only
  std::string leader_peer_;  // member: the peer endpoint the uplink is connected to
  convention_clock::time_point uplink_since_{};
  std::string untrusted_leader_key_;  // logged once
  bool not_a_leader_logged_ = false;
  bool joined_ = false;
  std::uint32_t leader_id_ = 0;
  convention_clock::time_point leader_heard_{};
  std::unique_ptr<asio::steady_timer> heartbeat_timer_;
  membership members_;
  std::unordered_map<address, location> locations_;
  std::unordered_map<address, std::vector<held_call>> held_calls_;
  std::unordered_map<address, std::vector<relayed_record>> held_records_;
  std::unordered_map<std::uint64_t, peer_call> peer_calls_;
  std::uint64_t next_call_ = 1;
  std::set<address> hosted_for_convention_;  // actors here placed by the leader
  std::set<address> creating_for_convention_;  // of those, created and not yet reported
  std::map<std::string, std::vector<json>> fetch_waiters_;  // package id -> create requests
  std::set<std::string> fetched_packages_;  // fetched for the convention: no on_load actors here

  std::unique_ptr<asio::steady_timer> standby_timer_;
  bool standby_shortage_logged_ = false;
  bool stopping_ = false;
  std::unique_ptr<asio::steady_timer> shutdown_timer_;
};

}  // namespace troupe::supervisor
