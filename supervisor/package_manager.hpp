// supervisor/package_manager.hpp — the packages of a system (docs/OPERATIONS.md
// §5): verifying and keeping archives (package_store), loading one (its worker
// must register every actor type the manifest declares before the load is
// answered), the version lifecycle of a group (on_load, on_deactivate,
// on_reactivate, global names, auto_unload, keep), unloading, and the client
// commands load, unload, list, avail, refresh and role.
// Threading: the loop's thread only.
#pragma once

#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/gateway.hpp"
#include "supervisor/package_store.hpp"
#include "supervisor/packages.hpp"
#include "supervisor/supervision.hpp"
#include "supervisor/worker_pool.hpp"

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace troupe::supervisor {

class package_manager {
 public:
  using load_done = std::function<void(const result<json>&)>;

  package_manager(system_context& ctx, client_port& port, worker_pool& pool, gateway& gw, supervision& actors,
                  directory& dir, package_set& packages)
      : ctx_(ctx),
        port_(port),
        pool_(pool),
        gateway_(gw),
        actors_(actors),
        directory_(dir),
        packages_(packages),
        store_(store_in(ctx.opts.home, ctx.opts.limits)) {}

  /// Creates the package directories.
  status setup() { return prepare(store_); }
  /// Registers its client and worker commands.
  void register_handlers();
  /// Loads, once serving, what a leader that died without stopping had loaded.
  void reload_after_crash();
  /// The system stops: loads and unloads under way end, their clients told why.
  void stop();

  /// Verifies and registers an archive, starts its worker; done runs once it
  /// registered (or failed). Loading a loaded package is a no-op.
  void load_archive(const std::filesystem::path& file, load_done done);
  /// Calls done when package id is loaded (at once when it is); false when
  /// it is neither loaded nor loading.
  bool when_loaded(const std::string& id, load_done done);
  /// A package fetched to host an actor for the convention: its on_load
  /// actors run on the system where it was loaded, not here.
  void mark_fetched(const std::string& id) { fetched_.insert(id); }
  void fail_load(const std::string& id, const std::string& reason);
  /// Ends an unload once the package's actors and then its workers are gone.
  void maybe_finish_unload(const std::string& id);
  /// Starts unloading package id (reason for the log).
  void begin_unload(const std::string& id, const char* reason);
  /// An actor runs: one created while its package was being unloaded goes at once.
  void on_running(address a);
  /// Told when a package starts unloading (a leader tells its members).
  std::function<void(const std::string& id)> on_unloading;
  /// Told when a package is loaded (and serves).
  std::function<void(const package_entry& p)> on_loaded;

  [[nodiscard]] const package_store& store() const { return store_; }

 private:
  void cmd_load(const client_ref& c, const json& b);
  void cmd_unload(const client_ref& c, const json& b);
  void cmd_list(const client_ref& c);
  void cmd_avail(const client_ref& c);
  void cmd_refresh(const client_ref& c);
  void cmd_role(const client_ref& c, const json& b);
  void on_worker_ready(worker_proc& w, const json& rid, const json& types);
  void on_fatal(worker_proc& w, const json& body);

  void load_directory(const std::filesystem::path& dir, load_done done);
  /// When id is loaded, loading or unloading, answers done (or queues it) and returns true.
  bool join_existing(const std::string& id, load_done& done);
  void begin_load(package_entry entry, load_done done);
  void finish_load(const std::string& id);
  [[nodiscard]] json describe_load(const package_entry& p, bool already) const;
  /// Applies a change of a group's active version: on_deactivate, then
  /// on_reactivate when reactivating, global names, auto_unload.
  void apply_activation(const std::string& group, const activation& change, bool reactivating);
  void send_hook(const package_entry& p, const char* which);
  void run_on_load(package_entry& p);
  void bind_group_names(const std::string& group);
  /// Archives loaded by this system or, as systems/*/loaded says, by another
  /// system of the same TROUPE_HOME: keep never deletes them.
  [[nodiscard]] std::set<std::filesystem::path> loaded_archives() const;
  void publish_loaded() const;
  /// Keeps an archive's memory for the next load (bounded), released when
  /// no load came for a while.
  void keep_read_buffer(std::string bytes);
  /// Extracted trees of group's versions, where a new version may find its
  /// unchanged files (manifests::extract_archive).
  [[nodiscard]] std::vector<std::filesystem::path> trees_of(const std::string& group) const;

  system_context& ctx_;
  client_port& port_;
  worker_pool& pool_;
  gateway& gateway_;
  supervision& actors_;
  directory& directory_;
  package_set& packages_;
  package_store store_;
  std::map<std::string, std::vector<load_done>> load_waiters_;                // by package id
  std::map<std::string, std::vector<client_ref>> unload_waiters_;             // by package id
  std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> timers_;  // load / unload deadlines
  std::set<std::string> fetched_;
  // What the last archive was read into: a load of a similar size reuses its
  // pages instead of faulting in fresh ones (docs/PERFORMANCE.md §3.3).
  std::string read_buffer_;
  std::map<std::string, std::deque<std::filesystem::path>> recent_trees_;  // by group, the last 3 extracted
  std::unique_ptr<boost::asio::steady_timer> read_buffer_timer_;
};

}  // namespace troupe::supervisor
