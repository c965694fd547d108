// supervisor/supervision.hpp — the actors of this system and what becomes of
// them (docs/OPERATIONS.md §6, §7): the directory (address, name, state,
// worker, restarts), placing an actor in a worker, what workers report
// (created, stopped, restarted), restart decisions when a worker dies (the
// table in base/restart.hpp), watches and their exit notices, and the client
// commands `actors` and `kill` for what runs here. It tells the event bus
// when an actor runs, restarts, fails or is gone.
// Threading: the loop's thread only.
#pragma once

#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/convention.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/events.hpp"
#include "supervisor/gateway.hpp"
#include "supervisor/packages.hpp"
#include "supervisor/watches.hpp"
#include "supervisor/worker_pool.hpp"

#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe::supervisor {

class package_manager;
class direct_links;

class supervision {
 public:
  supervision(system_context& ctx, event_bus& bus, client_port& port, worker_pool& pool, gateway& gw, directory& actors,
              package_set& packages)
      : ctx_(ctx), bus_(bus), port_(port), pool_(pool), gateway_(gw), actors_(actors), packages_(packages) {}

  /// The components it asks in turn (they are built after it).
  void attach(package_manager& manager, convention& conv);
  /// Resolves of other systems' actors go through it (docs/PROTOCOL.md §5.13).
  void attach(direct_links& links) { direct_ = &links; }
  /// Registers its worker commands and client commands.
  void register_handlers();

  /// Creates actor a of type (package package_id) in a worker: the
  /// package's, or one of its own (dedicated type, or fresh_worker).
  /// Errors: the name is taken or invalid, the package is not loaded or
  /// cannot start, no worker can be started.
  status place(address a, const std::string& type, const std::string& package_id, const std::string& name,
               address parent, bool fresh_worker = false);
  /// Sends a an exit request on the data path (after what was sent before).
  void send_exit(actor_record& rec, const std::string& reason);
  /// Gives up on an actor: it stays listed, failed, so look-ups say why.
  void fail_actor(actor_record& rec, const std::string& reason);
  /// The actor stopped (or, with failed, failed for good).
  void stopped(address a, bool failed, const std::string& reason, bool fenced = false);
  /// Forgets a creation not yet sent to a starting worker.
  void drop_pending_create(address a);
  /// A package whose worker cannot start any more is failed at once, with
  /// one clear error, not retried forever: every actor of worker id fails.
  void fail_unstarted_worker(std::uint32_t id);
  /// Tells every watcher of target what happened to it; stopped and failed
  /// end the watches of target and those target held.
  void notify_watchers(address target, exit_event event, const std::string& reason);

  void cmd_actors(const client_ref& c, const nlohmann::json& body);
  /// `kill` of an actor of this system; false when the target is not here.
  bool kill_here(const client_ref& c, const std::string& target);

  /// At shutdown: workers waiting for a restart have no process to stop.
  void drop_waiting_workers();

 private:
  void on_worker_exit(worker_proc& w, const std::string& how, const ipc::handling_snapshot& last);
  void settle_worker_exit(std::uint32_t id, const std::string& how);
  void restart_after_crash(worker_proc& w, package_entry& pkg, const std::string& how);
  /// Stops a dedicated worker once its actor is gone for good.
  void retire_dedicated_worker(std::uint32_t id);
  /// The worker's "create" for rec, with its restart policy and count.
  [[nodiscard]] json create_body(const actor_record& rec, const package_entry& pkg) const;

  void resolve_for(worker_proc& w, const json& rid, address a);
  void on_created(const std::string& identity, address a);
  /// A first creation not confirmed in time (its worker stopped, say):
  /// failed, so its spawner is answered; a late `created` stops it.
  void arm_creation_deadline(address a);
  void on_create_failed(address a, const std::string& why);
  void on_watch_request(worker_proc& w, const json& rid, const json& b, bool on);
  void send_exit_notice(address watcher, address target, exit_event event, const std::string& reason);

  system_context& ctx_;
  event_bus& bus_;
  client_port& port_;
  worker_pool& pool_;
  gateway& gateway_;
  directory& actors_;
  package_set& packages_;
  package_manager* manager_ = nullptr;
  convention* convention_ = nullptr;
  direct_links* direct_ = nullptr;
  watch_table watches_;
  std::unordered_map<address, std::vector<client_ref>> kill_waiters_;
  std::unordered_map<address, std::vector<std::pair<std::string, json>>> resolve_waiters_;  // worker identity, rid
  std::unordered_map<address, std::unique_ptr<boost::asio::steady_timer>> creation_deadlines_;
};

}  // namespace troupe::supervisor
