// worker/runtime.hpp — the worker process: hosts the actors of one package
// version on one Boost.Asio loop.
//
// Messages between actors of this worker stay in memory (a run queue of
// envelopes, no serialisation, no syscall). Messages to actors elsewhere go
// straight to the hosting worker's inbox over ZeroMQ (data_link); the
// supervisor is only asked where an address lives (resolve), once per address.
//
// Threading: everything runs on the thread that calls run(); package code is
// only ever called from it.
#pragma once

#include <unistd.h>

#include "base/exit_codes.hpp"
#include "base/restart.hpp"
#include "ipc/control.hpp"
#include "ipc/curve.hpp"
#include "ipc/delivery.hpp"
#include "ipc/fence_page.hpp"
#include "ipc/handling_marker.hpp"
#include "ipc/reactor.hpp"
#include "worker/package_host.hpp"

#include <troupe/abi.h>
#include <troupe/address.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace troupe::worker {

/// Loads a package that is not a shared library (runtime python): fills out
/// from the supervisor's assignment (its answer to hello), with the host
/// table the package's actors call. Runs once, on the loop's thread.
using package_loader =
    std::function<status(const ipc::json& assignment, const troupe_host_v1* host, troupe_package_v1& out)>;

struct options {
  std::string control_endpoint;  ///< supervisor's control socket (ipc://)
  std::string inbox_endpoint;    ///< this worker's data-plane inbox to bind (ipc://)
  std::uint32_t worker_id = 0;
  std::string marker_file;  ///< the handling marker the supervisor reads after a death
  std::string fence_file;   ///< the system's fence page (etcd conventions)
  // A worker starts without a package (it may wait as a standby); the
  // supervisor's answer to "hello" names the library and package id.
  std::string library;  ///< the package library to dlopen
  std::string package_id;
  /// Set by a worker of another runtime (troupe-worker-python): loads the
  /// package instead of dlopen; the runtime's data plane, acks, watchdog and
  /// control protocol are the same.
  package_loader loader;
};

/// A message queued for delivery inside this worker (owns its bytes).
struct envelope {
  envelope() = default;
  envelope(troupe_message_kind k, address t, address f, std::uint64_t corr, std::string ty, std::string p,
           std::uint8_t fl = 0)
      : kind(k), to(t), from(f), correlation(corr), type(std::move(ty)), payload(std::move(p)), flags(fl) {}

  troupe_message_kind kind = TROUPE_MSG_TELL;
  address to;
  address from;
  std::uint64_t correlation = 0;
  std::string type;
  std::string payload;
  std::uint8_t flags = 0;  ///< record flags (docs/PROTOCOL.md §3.2)
  std::string reason;      ///< POISON and EXITED: why
  ipc::cause cause;        ///< the inbound record it stems from; holds one count of it
};

/// The restart policy of an actor's type (manifest `restart:`), as the
/// supervisor passes it in "create", applied here to handler failures
/// (base/restart.hpp); the history starts with the restarts the supervisor
/// already counted.
struct restart_rule {
  base::restart_spec spec;
  base::restart_history history;
};

struct actor_slot {
  address addr;
  const troupe_actor_type_v1* type = nullptr;
  void* state = nullptr;
  std::uint32_t restarts = 0;
  bool exiting = false;
  restart_rule rule;
  std::uint32_t max_handle_ms = 0;  ///< manifest max_handle_time (0: none)
  bool fenced = false;              ///< placed by a convention that fences: lives while the fence page holds
  std::int64_t lease = 0;           ///< the lease it was created under (fenced)
  // Messages its handler took (every kind, as the handling marker counts),
  // for `stats` (docs/PROTOCOL.md §4.3): plain integers of the loop's thread.
  std::uint64_t handled = 0;
  std::uint64_t window_base = 0;  ///< handled when the current window began
  std::uint64_t last_window = 0;  ///< handled within the last completed window
};

class runtime {
 public:
  explicit runtime(options opts);
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Loads the package, registers with the supervisor and serves until told
  /// to shut down. Returns a process exit code.
  int run();

  // Host functions (troupe_host_v1), reached through the C trampolines.
  troupe_address host_spawn(troupe_context* ctx, std::string_view type, std::string_view package,
                            std::string_view name);
  std::uint64_t host_ask(troupe_context* ctx, address to, std::string_view type, std::string_view payload,
                         std::uint32_t timeout_ms);
  int host_reply(troupe_context* ctx, std::string_view type, std::string_view payload);
  int host_reply_to(troupe_context* ctx, address to, std::uint64_t correlation, std::string_view type,
                    std::string_view payload);
  int host_tell(troupe_context* ctx, address to, std::string_view type, std::string_view payload);
  int host_stop(troupe_context* ctx, address target);
  std::uint64_t host_schedule(troupe_context* ctx, std::uint32_t delay_ms, std::string_view type,
                              std::string_view payload);
  int host_cancel(std::uint64_t timer_id);
  void host_log(troupe_context* ctx, int level, std::string_view text);
  troupe_address host_lookup(std::string_view name);
  /// watch (on = true) or unwatch target for the actor of ctx.
  int host_watch(troupe_context* ctx, address target, bool on);

 private:
  using reply_handler = std::function<void(const ipc::json& body)>;

  status start();
  void on_control();
  void drain_deferred_control();
  void on_inbox();
  /// A frame from either inbox; direct: the tcp inbox of direct links.
  void on_frame(std::string_view frame, bool direct);
  void handle_control(const ipc::control_message& m);
  /// Direct links (docs/PROTOCOL.md §5.13): the tcp inbox, its key pair and
  /// its ZAP handler, from the "direct" part of the answer to hello.
  status start_direct(const ipc::json& spec);
  void on_admit(const ipc::json& body);
  /// Closes the direct links idle for a while (their routes are resolved again).
  void sweep_idle_links();
  // The supervisor's commands (docs/PROTOCOL.md §4.3), by handle_control's table.
  void on_reply(const ipc::json& body);
  void on_stop(const ipc::json& body);
  void on_forget_route(const ipc::json& body);
  void on_forget_name(const ipc::json& body);
  void on_shutdown(const ipc::json& body);
  /// The supervisor's `stats`: this worker's busiest actors (troupe top, metrics).
  void on_stats(const ipc::json& body);
  /// Destroys every fenced actor the fence page no longer holds: their
  /// system could not renew its lease, and they may run elsewhere any moment.
  void fence_now();
  void handle_control_guarded(const ipc::control_message& m);
  void request(std::string_view command, ipc::json body, reply_handler then);
  /// A control request answered before it returns (see runtime.cpp for when).
  result<ipc::json> call_now(std::string_view command, ipc::json body);
  void send_event(std::string_view command, const ipc::json& body);

  // Delivery.
  /// Sends a message produced by the handler running now: it counts
  /// against that handler's record (no-loss delivery).
  void emit(envelope env);
  void route(envelope env);
  void enqueue_local(envelope env);
  void drain_run_queue();
  void deliver_remote(const ipc::record_view& r, ipc::cause c, bool direct = false);
  /// An exit notice of a watched actor (record kind exited) to its watcher.
  void deliver_exit_notice(const ipc::record_view& r);
  void invoke(actor_slot& slot, troupe_message_kind kind, address from, std::uint64_t corr, std::string_view type,
              std::string_view payload, std::string_view reason = {});
  /// Acknowledges what the ledger says is done.
  void send_acks();
  /// Drops one count of c (its record or one of its outputs is done).
  void release(ipc::cause c) { ledger_.release(c); }
  /// A worker died (supervisor's "peer_died"): what it had not acknowledged
  /// is sent again, except the record it was handling, returned as poison.
  void on_peer_died(const ipc::json& body);
  /// Returns env (a tell or ask whose receiver died handling it) to its sender.
  void poison(envelope env, const std::string& reason);
  void start_watchdog();
  /// Returns an undeliverable ask or tell to its sender. stale_route: the
  /// destination is not hosted where it was sent (the sender drops its route).
  void bounce(troupe_message_kind kind, address to, address from, std::uint64_t corr, std::string_view type,
              std::string_view reason, bool stale_route = true);
  void resolve(address target);
  void on_resolved(address target, const ipc::json& body);
  void complete_ask(address asker, troupe_message_kind kind, std::uint64_t corr, std::string_view type,
                    std::string_view payload);

  // Lifecycle of actors.
  void create_actor(const ipc::json& body);
  /// Creates one actor of a "create": its address, or an invalid one when
  /// it was refused (create_failed sent).
  address create_one(const ipc::json& body);
  void restart_in_place(actor_slot& slot, std::string_view reason);
  /// fenced: stopped because its system lost the lease it was placed under.
  void finish_exit(address a, std::string_view reason, bool failed = false, bool fenced = false);
  void shutdown(int code, const std::string& reason = "system shutdown");
  /// dlopens the package the supervisor assigned and reports its types.
  void load_package(const ipc::json& assignment);
  address next_address();

  options opts_;
  boost::asio::io_context io_{1};
  zmq::context_t zmq_{1};
  zmq::socket_t control_;
  zmq::socket_t inbox_;
  std::unique_ptr<ipc::socket_watcher> control_watch_;
  std::unique_ptr<ipc::socket_watcher> inbox_watch_;
  ipc::data_link link_;
  boost::asio::signal_set signals_;
  package_host package_;
  int exit_code_ = worker_exit_ok;
  const pid_t parent_ = ::getppid();  // the daemon; another parent means it died
  bool shutting_down_ = false;

  // No-loss delivery (docs/PROTOCOL.md §3.4); off with --delivery best-effort.
  bool no_loss_ = false;
  ipc::inbound_ledger ledger_;
  ipc::cause current_cause_;  // of the handler running now
  ipc::handling_marker marker_;
  // max_handle_time: a thread that kills this process when one handler runs
  // too long (it cannot be interrupted otherwise).
  std::thread watchdog_;
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_stop_ = false;
  std::atomic<std::uint32_t> watchdog_tick_ms_{0};
  // Fencing: the system's page, and for the watchdog how many fenced actors
  // live and under which lease (one at a time: an actor of a new lease is
  // created only after those of the old one are gone).
  ipc::fence_page fence_;
  std::atomic<std::uint32_t> fenced_actors_{0};
  std::atomic<std::int64_t> fenced_lease_{0};

  std::unordered_map<address, actor_slot> actors_;
  // The window of `stats` (messages handled per actor): when the current one
  // began and how long the last completed one lasted (0: none completed).
  std::int64_t window_start_ms_ = 0;
  std::int64_t last_window_ms_ = 0;
  std::deque<envelope> run_queue_;
  bool drain_scheduled_ = false;

  // Direct links: a PULL on tcp (CurveZMQ server with a key pair of this
  // process, never the system's), admitting only the keys the supervisor
  // names (admit); its ZAP handler runs on this loop.
  zmq::socket_t direct_inbox_;
  std::unique_ptr<ipc::socket_watcher> direct_watch_;
  std::string direct_endpoint_;
  std::string direct_key_;  // its public key (Z85)
  std::unique_ptr<ipc::zap_authenticator> zap_;
  std::unique_ptr<ipc::socket_watcher> zap_watch_;
  std::set<std::string> admitted_keys_;
  std::set<std::string> refused_keys_;  // logged once each
  std::size_t max_direct_peers_ = 256;
  std::chrono::milliseconds direct_idle_{60000};
  std::unique_ptr<boost::asio::steady_timer> idle_timer_;
  std::string gateway_endpoint_;

  std::unordered_map<address, ipc::data_link::peer*> routes_;
  std::unordered_map<address, std::vector<envelope>> unresolved_;
  std::unordered_map<std::string, address> names_;

  std::uint64_t next_rid_ = 1;
  std::unordered_map<std::uint64_t, reply_handler> pending_requests_;
  std::deque<std::vector<zmq::message_t>> deferred_control_;

  struct pending_ask {
    address asker;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  std::uint64_t next_ask_ = 1;
  std::unordered_map<std::uint64_t, pending_ask> asks_;

  struct timer_entry {
    address owner;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  std::uint64_t next_timer_ = 1;
  std::unordered_map<std::uint64_t, timer_entry> timers_;

  std::uint32_t system_id_ = 0;
  std::uint32_t lease_next_ = 0;
  std::uint32_t lease_end_ = 0;
  std::uint32_t lease_extra_first_ = 0;  // a further block received ahead of need
  std::uint32_t lease_extra_end_ = 0;
  bool lease_requested_ = false;
};

}  // namespace troupe::worker
