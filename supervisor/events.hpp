// supervisor/events.hpp — what happens to actors and workers of a system, told
// to whoever subscribed: the gateway releases or fails what it held, the
// convention reports to its leader, packages finish an unload, and (a
// component's one line of code away) metrics count and an event stream
// shows it. Subscribers run in the order they subscribed (system.cpp wires
// them), synchronously, on the loop's thread; they must not unsubscribe.
#pragma once

#include <troupe/address.hpp>

#include <functional>
#include <string>
#include <vector>

namespace troupe::supervisor {

/// An actor left this system for good: stopped (killed, its own stop, an
/// unload, evicted for a move) or, with failed, given up on.
struct actor_gone {
  address addr;
  std::string package_id;
  bool failed = false;
  std::string reason;
  std::string type;  ///< its actor type
  std::string name;  ///< its global name, may be empty
  /// Stopped by its worker because this system lost its etcd lease: still
  /// the convention's, placed again by the leader (not a stop to report).
  bool fenced = false;
};

/// A worker process ended.
struct worker_exited {
  std::uint32_t worker = 0;
  std::string package_id;     ///< empty for a standby
  std::string how;            ///< "killed by SIGKILL", "exit code 3", a watchdog's verdict
  bool expected = false;      ///< told to stop (shutdown, unload, its actor gone)
  int pid = 0;                ///< the process that ended
  int signal = 0;             ///< the signal that ended it, 0 when it exited
  int exit_code = -1;         ///< its exit code, -1 when a signal ended it
  std::uint64_t handled = 0;  ///< messages its handlers took in its life (handling marker)
  std::uint64_t sent = 0;     ///< messages its actors sent
};

class event_bus {
 public:
  template <class E>
  using handler = std::function<void(const E&)>;

  /// An actor runs (created, or created again after a restart of its worker).
  void on_running(std::function<void(address)> f) { running_.push_back(std::move(f)); }
  /// An actor was restarted in place or with its worker, under its address.
  void on_restarted(std::function<void(address, const std::string&)> f) { restarted_.push_back(std::move(f)); }
  /// An actor was failed: it will not run again (it stays listed, failed).
  void on_failed(std::function<void(address, const std::string&)> f) { failed_.push_back(std::move(f)); }
  void on_gone(handler<actor_gone> f) { gone_.push_back(std::move(f)); }
  void on_worker_exited(handler<worker_exited> f) { exited_.push_back(std::move(f)); }

  void running(address a) const {
    for (const auto& f : running_) f(a);
  }
  void restarted(address a, const std::string& reason) const {
    for (const auto& f : restarted_) f(a, reason);
  }
  void failed(address a, const std::string& reason) const {
    for (const auto& f : failed_) f(a, reason);
  }
  void gone(const actor_gone& e) const {
    for (const auto& f : gone_) f(e);
  }
  void exited(const worker_exited& e) const {
    for (const auto& f : exited_) f(e);
  }

 private:
  std::vector<std::function<void(address)>> running_;
  std::vector<std::function<void(address, const std::string&)>> restarted_;
  std::vector<std::function<void(address, const std::string&)>> failed_;
  std::vector<handler<actor_gone>> gone_;
  std::vector<handler<worker_exited>> exited_;
};

}  // namespace troupe::supervisor
