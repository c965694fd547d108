// supervisor/worker_pool.hpp — the system's worker processes: the control
// socket they register on (c.sock, docs/PROTOCOL.md §4), starting them
// (limits first: --max-workers, descriptors), the standby workers kept ahead
// of need, handing a worker its package, and noticing through a pidfd when
// one exits. What a control message means is decided by whoever registered
// its handler (supervision, packages); what an exit means, by supervision.
// Threading: the loop's thread only.
#pragma once

#include "ipc/control.hpp"
#include "ipc/handling_marker.hpp"
#include "ipc/log_relay.hpp"
#include "ipc/reactor.hpp"
#include "supervisor/cgroup.hpp"
#include "supervisor/context.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/packages.hpp"
#include "supervisor/process.hpp"

#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::supervisor {

using json = nlohmann::json;

struct worker_proc {
  std::uint32_t id = 0;
  std::string package_id;  // empty for a standby worker
  // Hosts the one actor of an `isolation: dedicated` type, and goes with it;
  // else the package's shared worker (package_entry::worker) or a standby.
  bool dedicated = false;
  // Runs troupe-worker-python (a package of runtime python), else troupe-worker.
  // Standbys are native: a python package's worker is always started for it.
  bool python = false;
  std::string identity;  // ROUTER routing id: "w<id>"
  // A new inbox for each process (w<id>-<incarnation>.sock): what senders
  // still queued for a dead one can never reach its successor.
  std::string inbox;
  std::uint32_t incarnation = 0;
  // starting: launched; standby: said hello, waits for a package (its hello
  // unanswered); assigned: told its package, loading it; ready: serving.
  enum class state { starting, standby, assigned, ready, stopping } st = state::starting;
  json hello_rid;  // answered with the package assignment
  std::unique_ptr<child_watch> child;
  // Actors to create once it is "ready". Their bodies are made as they go
  // (create_body_for), a batch at a time: a restart of 100,000 actors never
  // holds 100,000 JSON bodies at once.
  std::vector<address> pending_creates;
  // A crashed worker waits here before it is started again (restart.backoff).
  std::unique_ptr<boost::asio::steady_timer> restart_timer;
  // Exited before "hello" and its "fatal" (the reason) not read yet: the
  // package is failed when it arrives or when this timer runs out.
  std::unique_ptr<boost::asio::steady_timer> fatal_grace;
  std::string exit_how;
  // The last process's pid and wait status, kept past its exit (events).
  int last_pid = 0;
  int last_wait_status = 0;
  // A started process that does not say hello in time (its control socket
  // gone with TROUPE_HOME, say) is killed, so that its actors fail with a
  // reason instead of staying "starting" for ever.
  std::unique_ptr<boost::asio::steady_timer> hello_deadline;
  std::string killed_because;    // set when the system killed it for that
  std::filesystem::path cgroup;  // of this process, when the host has cgroup v2 delegated
  // Its tcp inbox for workers of other systems and that inbox's CurveZMQ
  // public key (direct links, docs/PROTOCOL.md §5.13), from its `ready`;
  // empty without direct links, and from its exit until its next `ready`.
  std::string direct_inbox;
  std::string direct_key;
};

/// The state's name, as `top` and the metrics label show it.
[[nodiscard]] const char* to_string(worker_proc::state s);

class worker_pool {
 public:
  /// A control message from worker w; rid is its request id (null for events).
  using handler = std::function<void(worker_proc& w, const json& rid, const json& body)>;
  /// A worker's process ended: how (as text), and what it was handling.
  using exit_handler = std::function<void(worker_proc& w, const std::string& how, const ipc::handling_snapshot& last)>;

  worker_pool(system_context& ctx, package_set& packages, directory& actors, ipc::data_link& link)
      : ctx_(ctx), packages_(packages), actors_(actors), link_(link) {}

  /// Binds c.sock. Errors name the directory.
  status bind();
  void start() { watch_->start(); }
  void stop();

  void handle(std::string_view command, handler h) { handlers_[std::string(command)] = std::move(h); }
  exit_handler on_exit;
  /// Set by the system: called when the last worker is forgotten while stopping.
  std::function<void()> on_drained;
  /// Set by direct_links: the "direct" part of the answer to hello (null: none).
  std::function<json()> direct_spec;
  /// Set by packages: a worker could not be given its package (links).
  std::function<void(const std::string& package_id, const std::string& why)> on_assignment_failed;

  // Messages to workers. Undeliverable ones (the worker is gone) are logged:
  // its exit is handled through its pidfd.
  void send(const worker_proc& w, std::string_view command, const json& body);
  void send_to(const std::string& identity, std::string_view command, const json& body);
  void reply(const worker_proc& w, const json& rid, json fields);
  void reply_error(const worker_proc& w, const json& rid, std::string_view text);
  /// To every ready worker.
  void send_ready(std::string_view command, const json& body);
  /// Tells every other worker that the process at inbox died and which
  /// record it was handling (no-loss delivery: they send the rest again).
  void announce_death(std::uint32_t id, const std::string& inbox, const ipc::handling_snapshot& last,
                      const std::string& how);

  [[nodiscard]] worker_proc* find(std::uint32_t id);
  [[nodiscard]] const worker_proc* find(std::uint32_t id) const;
  [[nodiscard]] std::map<std::uint32_t, worker_proc>& all() { return workers_; }
  [[nodiscard]] const std::map<std::uint32_t, worker_proc>& all() const { return workers_; }
  [[nodiscard]] bool empty() const { return workers_.empty(); }
  /// The pid of worker id's process, 0 when it has none.
  [[nodiscard]] int pid_of(std::uint32_t id) const;

  /// The package's shared worker: its own, else a standby given the package,
  /// else a new one. dedicated: always a standby or a new one, for one actor.
  result<worker_proc*> worker_for(const std::string& package_id, bool dedicated = false);
  /// Hands dead's package and pending creates to a standby (no exec on the
  /// restart path) and forgets dead; the standby, or nullptr when none.
  worker_proc* adopt_standby(std::uint32_t dead);
  /// Starts worker w's process again (after a crash).
  status restart(worker_proc& w) { return start_process(w); }
  /// Asks w to stop (SIGTERM before it connected, else "shutdown"); its
  /// exit is then expected.
  void stop_worker(worker_proc& w, const std::string& reason);
  /// Forgets a worker and its run/wN directory; a package whose shared
  /// worker it was has none until its next spawn.
  void forget(std::uint32_t id);
  /// The worker has registered its package's types: it serves, and gets the
  /// creations that waited for it.
  void mark_ready(worker_proc& w, const json& rid);
  /// The create body of actor a for w, or nothing when a no longer waits
  /// for w (killed meanwhile, say). Set by supervision.
  std::function<std::optional<json>(const worker_proc& w, address a)> create_body_for;
  /// Sends the creates that waited for w to be ready, create_batch to a message.
  void send_creates(worker_proc& w);
  static constexpr std::size_t create_batch = 256;
  /// Keeps opts.standby_workers workers started ahead of need (now, or
  /// standby_delay from now: starting a process blocks the loop a moment).
  void replenish_standby();
  void replenish_standby_soon();

  [[nodiscard]] std::filesystem::path marker_of(const worker_proc& w) const {
    return ctx_.run_dir / w.identity / "handling";
  }

 private:
  void on_control();
  result<worker_proc*> launch_worker(bool python = false);
  /// The executable of a worker of the given runtime.
  [[nodiscard]] std::filesystem::path executable(bool python) const;
  status assign(worker_proc& w, package_entry& pkg);
  void send_assignment(worker_proc& w);
  /// What a python worker needs of its package (null for a native one).
  static json python_assignment(const package_entry& pkg);
  status start_process(worker_proc& w);
  void on_process_exit(std::uint32_t id, const child_exit& how);
  status apply_limits(const worker_proc& w, const package_entry& pkg);

  system_context& ctx_;
  package_set& packages_;
  directory& actors_;  // address blocks for workers
  ipc::data_link& link_;
  zmq::socket_t control_;
  std::unique_ptr<ipc::socket_watcher> watch_;
  std::unique_ptr<ipc::log_relay> logs_;  ///< reads the workers' stdout and stderr
  std::unordered_map<std::string, handler> handlers_;
  std::map<std::uint32_t, worker_proc> workers_;
  std::uint32_t next_id_ = 1;
  std::unique_ptr<boost::asio::steady_timer> standby_timer_;
  bool standby_shortage_logged_ = false;
  std::optional<cgroup_tree> cgroups_;       // none: contained by the subreaper chain alone
  std::set<std::string> unenforced_logged_;  // package ids told they have a limit not applied here
};

}  // namespace troupe::supervisor
