// supervisor/convention.hpp — the convention as the rest of a system sees it,
// however it is coordinated: where an actor of the convention runs (or waits),
// which system leads, and what becomes of the actors it placed here. The
// built-in leader (leader_convention.hpp) is one implementation; a
// coordination store (etcd) is another behind the same interface.
//
// The components that use it: the gateway and remote calls (route a client's
// request to an actor's host), the data relay (records between systems),
// supervision (resolve and look up actors elsewhere, report creations that
// failed). The implementation registers its own client commands (spawn,
// systems, chgcap, move) and peer commands, and subscribes to the system's
// events for the actors it placed here.
// Threading: the loop's thread only.
#pragma once

#include "supervisor/directory.hpp"

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace troupe::supervisor {

class desired_state;
struct saved_actor;

/// Where the convention has placed an actor (docs/PROTOCOL.md §5.4). The
/// leader's table is the truth; members keep a copy to route client requests.
struct location {
  std::uint32_t system = 0;  ///< where it runs; for moving and pending, where it ran
  base::shared_string type;  // shared_strings: one location per actor (directory.hpp)
  base::shared_string package_id;
  base::shared_string name;
  enum class phase { placed, moving, pending } ph = phase::placed;
  std::uint32_t moves = 0;
  /// Which placement this is: grows with every (re)placement. A host runs
  /// the instance of one epoch; reports and records of an older one are stale.
  std::uint64_t epoch = 0;
  base::shared_string reason;  ///< why it is moving or pending; once placed again, why it moved
  base::shared_string cause;   ///< what started its last move
  bool fresh_worker = false;   ///< re-create it in a worker of its own (move --new-worker)
  std::uint32_t target = 0;    ///< moving: the system chosen for it (0: any that fits)
  /// Systems that could not create it (no key for its package, ...): a few
  /// at most, and a vector is 24 bytes where an empty std::set is 48 (one
  /// location per actor of the convention).
  std::vector<std::uint32_t> refused;
  void refuse(std::uint32_t id) {
    if (std::find(refused.begin(), refused.end(), id) == refused.end()) refused.push_back(id);
  }
  bool created = false;  ///< has run somewhere: a new placement is a move
};

/// "running", "moving" or "pending": the state `actors` shows.
[[nodiscard]] const char* to_string(location::phase p);

class convention {
 public:
  virtual ~convention() = default;

  /// Keys, links and sockets; after the client port and the workers' sockets
  /// are bound. Errors end the start of the system.
  virtual status setup() = 0;
  /// Once serving: the first heartbeat, discovery, packages to load again.
  virtual void start() = 0;
  /// The system is stopping: a member tells its leader at once.
  virtual void stop() = 0;

  /// Adds the convention's fields to a `status` answer.
  virtual void describe(nlohmann::json& status) const = 0;
  /// Appends, as `actors` lists them, the actors of the convention that do
  /// not run here (running elsewhere, moving or pending).
  virtual void list_elsewhere(nlohmann::json& out, const directory& here) const = 0;

  /// The convention's actor at an address text or global name (out: its address).
  virtual location* find(const std::string& target, address& out) = 0;
  /// The convention's actor at address a, or nullptr.
  virtual const location* at(address a) const = 0;
  /// The system hosting a, when it is another one: 0 when a is not known
  /// to run elsewhere.
  virtual std::uint32_t host_of(address a) const = 0;
  /// An actor placed here that is leaving for another system (evicted for
  /// a move): what is sent to it is held for its new place.
  virtual bool leaving(address a) const = 0;
  /// An actor here whose convention placement names another system (a stale
  /// instance, until it is stopped): what is sent to it goes there instead.
  virtual bool placed_elsewhere(address a) const = 0;
  /// How operators name a system: its public port, else its id.
  [[nodiscard]] virtual std::string port_of(std::uint32_t system) const = 0;

  /// Who leads, for routing requests that only the leader answers.
  [[nodiscard]] virtual bool leads() const = 0;
  [[nodiscard]] virtual std::uint32_t leader() const = 0;  ///< 0 while none is known
  [[nodiscard]] virtual bool joined() const = 0;           ///< the leader itself counts as joined
  /// "the convention leader at HOST:PORT is unreachable"
  [[nodiscard]] virtual std::string leader_unreachable() const = 0;
  /// Whether system id is gone (down or unknown): what it was asked will not be answered.
  [[nodiscard]] virtual bool gone(std::uint32_t system) const = 0;
  /// The leader forgets a pending actor (killed before it ran anywhere).
  virtual void forget(address a) = 0;

  /// What becomes of the actors of this system (the system's events, in
  /// the order system.cpp wires them): the convention reports on those it
  /// placed here, and answers the spawns and moves that wait for them.
  virtual void running_here(address a) = 0;
  virtual void failed_here(address a, const std::string& reason) = 0;
  virtual void gone_here(address a, bool failed, const std::string& reason, bool fenced) = 0;

  /// When the convention fences (etcd): the lease the actors it placed here
  /// live under; the workers stop them when the fence page (ipc/fence_page.hpp)
  /// no longer holds that lease. None for the built-in leader, which cannot fence.
  [[nodiscard]] virtual std::optional<std::int64_t> fence_lease() const { return std::nullopt; }

  /// A system that leads its built-in convention (alone or with members)
  /// keeps the actors clients created in a desired state of its own and
  /// re-creates those it hosted after its own crash (recovered: what the
  /// last run left). Elsewhere the convention places them again (the
  /// leader's table, etcd), and nothing is kept here.
  virtual void keep_desired_state(desired_state& state, std::vector<saved_actor> recovered) {
    (void)state;
    (void)recovered;
  }

  /// Whether this system runs a for the convention (placed here).
  virtual bool hosts(address a) const = 0;
  /// A creation the convention asked of this system failed: true when it
  /// took the failure (to place the actor elsewhere), false when a is none
  /// of its actors.
  virtual bool create_failed_here(address a, const std::string& why) = 0;
};

}  // namespace troupe::supervisor
