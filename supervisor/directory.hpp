// supervisor/directory.hpp — the system's directory of actors: where each
// address lives, its global name, its state and restart count. Pure
// bookkeeping, no I/O, so it is unit-tested on its own.
// Not thread-safe; owned by the supervisor's loop thread.
#pragma once

#include "base/restart.hpp"
#include "base/shared_string.hpp"

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::supervisor {

enum class actor_state {
  starting,  ///< placed; its worker has not confirmed creation yet
  running,
  stopping,  ///< exit request sent
  failed,    ///< could not be (re)started; kept so look-ups explain why
};

[[nodiscard]] const char* to_string(actor_state s);

class directory;

/// An actor's state as its record holds it: read like an actor_state, set
/// only through directory::set_state, which keeps the counts by state
/// (directory::count_by_state) right.
class actor_state_field {
 public:
  constexpr actor_state_field(actor_state s = actor_state::starting) : s_(s) {}  // NOLINT: records are built with one
  constexpr operator actor_state() const { return s_; }                          // NOLINT: read as the enum
  actor_state_field& operator=(actor_state) = delete;                            // directory::set_state

 private:
  friend class directory;
  actor_state s_;
};

/// One per actor, so its texts are shared_strings: the package id and type
/// are those of the package's table, and a worker's restart gives all its
/// actors one reason (base/shared_string.hpp).
struct actor_record {
  address addr;
  base::shared_string type;
  base::shared_string package_id;
  base::shared_string name;  ///< global name, may be empty
  std::uint32_t worker = 0;
  actor_state_field state;
  std::uint32_t restarts = 0;
  base::shared_string last_reason;
  address parent;
  /// Its restarts within its restart.within window, of its worker and of
  /// its handlers alike: the OTP intensity count (base/restart.hpp).
  base::restart_history history;
};

/// A block of serials handed to a worker for the addresses it allocates.
struct serial_block {
  std::uint32_t first = 0;
  std::uint32_t count = 0;
};

class directory {
 public:
  explicit directory(std::uint32_t system_id);

  [[nodiscard]] std::uint32_t system_id() const { return system_id_; }

  /// A fresh address for an actor created by the system itself.
  address allocate();
  /// A block of serials for a worker to allocate from.
  serial_block allocate_block(std::uint32_t count);
  /// Whether serial was handed out by this system (addresses are never reused).
  [[nodiscard]] bool allocated(address a) const;

  /// A system restarted after a crash: serials below `below` were handed
  /// out by its earlier run and never are again.
  void skip_serials_below(std::uint32_t below);
  /// Reserves serials ahead (the desired state keeps how far): returns the
  /// bound below which serials may now be handed out without asking.
  std::uint32_t reserve_ahead();
  /// When set, called with a new bound before a serial at or past the last
  /// one reserved is handed out (once per reserve_chunk serials).
  std::function<void(std::uint32_t below)> on_reserve;
  static constexpr std::uint32_t reserve_chunk = 1u << 16;

  /// Adds an actor. Errors: the address is taken, the name is taken or
  /// malformed.
  status add(actor_record rec);
  /// Whether name may be given to a new actor: well-formed and not taken.
  [[nodiscard]] status check_name(std::string_view name) const;
  /// Removes an actor and frees its name. Unknown addresses are ignored.
  void remove(address a);
  /// Gives the actor at a the global name (replacing a name it had). Errors:
  /// no such actor, the name is malformed or held by another actor.
  status bind_name(address a, std::string_view name);
  /// Takes the actor's global name away, if it has one.
  void unbind_name(address a);

  /// Sets an actor's state (its record is in this directory).
  void set_state(actor_record& rec, actor_state s);

  [[nodiscard]] actor_record* find(address a);
  [[nodiscard]] const actor_record* find(address a) const;
  [[nodiscard]] actor_record* find_name(std::string_view name);
  /// Resolves "@..." address text or a global name.
  [[nodiscard]] actor_record* find_target(std::string_view target);

  [[nodiscard]] std::vector<actor_record*> on_worker(std::uint32_t worker);
  /// How many actors are in each state, indexed by actor_state: kept as
  /// they change, so `status` can tell it at any size without a pass.
  [[nodiscard]] const std::array<std::size_t, 4>& count_by_state() const { return by_state_; }
  [[nodiscard]] std::size_t size() const { return actors_.size(); }
  /// All actors ordered by address (stable output for the CLI).
  [[nodiscard]] std::vector<const actor_record*> all() const;

 private:
  std::uint32_t system_id_;
  std::uint32_t next_serial_;
  std::uint32_t reserved_below_ = 0;
  void reserve_for(std::uint32_t count);
  std::unordered_map<address, actor_record> actors_;
  std::unordered_map<std::string, address> names_;
  std::array<std::size_t, 4> by_state_{};
  static std::size_t index(actor_state s) { return static_cast<std::size_t>(s); }
};

/// Whether name is a valid global name: 1..128 printable characters, not
/// starting with '@'.
[[nodiscard]] bool valid_global_name(std::string_view name);

}  // namespace troupe::supervisor
