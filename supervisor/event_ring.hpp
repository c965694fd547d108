// supervisor/event_ring.hpp — what happened in a system, as typed events
// numbered in order, kept in a ring of fixed size so that a client that
// subscribes late (`troupe events`, `troupe top`, the dashboard) gets the
// recent past and then follows (docs/PROTOCOL.md §6.5, docs/OPERATIONS.md
// §11). Components record; observers (the event stream, metrics) hear each
// event as it is recorded. No I/O: the clock is given, so the ring is
// unit-tested with a clock of its own.
// Threading: the loop's thread only.
#pragma once

#include <troupe/address.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::supervisor {

enum class event_kind : std::uint8_t {
  actor_started,     ///< runs (created, or created again after a restart)
  actor_restarted,   ///< will run again under its address (its worker or a handler died)
  actor_failed,      ///< given up on: stays listed, failed
  actor_stopped,     ///< left this system (killed, its own stop, an unload, moved away)
  actor_moved,       ///< the convention moves it to another system (system_port)
  actor_pending,     ///< no system can host it for now
  worker_exited,     ///< a worker process ended (signal or exit_code)
  package_loaded,    ///< a package version is loaded
  package_unloaded,  ///< a package version is gone
  package_refused,   ///< a load was refused (reason)
  system_joined,     ///< a system joined the convention (or this one joined it)
  system_lost,       ///< a system of the convention was declared lost or left
  system_fenced,     ///< this system's actors stopped: its lease was lost (etcd)
  leader_changed,    ///< the convention's leader changed (system_port: the new one, 0: none)
};

/// The kind's wire name: "actor_started", "worker_exited", …
[[nodiscard]] std::string_view to_string(event_kind k);
[[nodiscard]] std::optional<event_kind> event_kind_from_string(std::string_view s);
/// Every kind, in declaration order.
[[nodiscard]] const std::vector<event_kind>& all_event_kinds();

/// One event; the fields a kind does not use keep their defaults and are
/// left out of its JSON form.
struct event {
  std::uint64_t seq = 0;     ///< 1, 2, … in the order recorded (set by the ring)
  std::int64_t time_ms = 0;  ///< Unix time in milliseconds (set by the ring)
  event_kind kind = event_kind::actor_started;
  address addr;              ///< the actor (actor_*)
  std::string name;          ///< its global name
  std::string type;          ///< its actor type
  std::string package;       ///< package group (actor_*, worker_exited, package_*)
  std::string version;       ///< package version
  std::string package_id;    ///< package id (hex)
  std::uint16_t port = 0;    ///< a system's public port (system_*, leader_changed, actor_moved: the destination)
  std::uint32_t worker = 0;  ///< worker id (w<N>)
  int pid = 0;               ///< worker pid (worker_exited)
  int signal = 0;            ///< the signal that ended it (worker_exited), 0: none
  int exit_code = -1;        ///< its exit code (worker_exited), -1: killed by a signal
  bool expected = false;     ///< worker_exited: it was told to stop
  std::string reason;        ///< why, in words
};

/// An event of kind about actor a (name, type and package filled by the caller).
[[nodiscard]] event actor_event(event_kind kind, address a, std::string reason = {});
/// An event of kind about a package version.
[[nodiscard]] event package_event(event_kind kind, std::string package, std::string version, std::string id,
                                  std::string reason = {});

/// The event as one JSON object: seq, time_ms, kind, then the fields set.
[[nodiscard]] nlohmann::json to_json(const event& e);
/// Parses what to_json wrote (clients); nothing when it is not an event.
[[nodiscard]] std::optional<event> event_from_json(const nlohmann::json& j);
/// One line for people: "actor_restarted @3fa9c012.17 counter (demo 1.0.0): worker killed by SIGKILL".
[[nodiscard]] std::string describe(const event& e);

class event_ring {
 public:
  using clock = std::function<std::int64_t()>;  ///< Unix time in ms
  /// Unix time from the system clock.
  static std::int64_t system_now_ms();

  explicit event_ring(std::size_t capacity, clock now = system_now_ms);

  /// Numbers and stamps e, keeps it (dropping the oldest when full) and
  /// tells every observer, in the order they subscribed.
  const event& record(event e);
  /// Called for each event recorded, after it is kept.
  void on_record(std::function<void(const event&)> f) { observers_.push_back(std::move(f)); }

  /// The events numbered after `after`, oldest first, at most max of them;
  /// missed: how many numbered after `after` are no longer kept.
  struct slice {
    std::vector<event> events;
    std::uint64_t missed = 0;
  };
  [[nodiscard]] slice since(std::uint64_t after, std::size_t max) const;

  [[nodiscard]] std::uint64_t last_seq() const { return next_seq_ - 1; }
  /// The oldest number still kept (last_seq() + 1 when empty).
  [[nodiscard]] std::uint64_t first_seq() const { return next_seq_ - kept_; }
  [[nodiscard]] std::size_t size() const { return kept_; }
  [[nodiscard]] std::size_t capacity() const { return slots_.size(); }

 private:
  std::vector<event> slots_;  // seq n at (n - 1) % capacity
  std::size_t kept_ = 0;
  std::uint64_t next_seq_ = 1;
  clock now_;
  std::vector<std::function<void(const event&)>> observers_;
};

}  // namespace troupe::supervisor
