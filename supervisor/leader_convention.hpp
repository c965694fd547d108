// supervisor/leader_convention.hpp — the built-in convention (docs/PROTOCOL.md
// §5), the zero-dependency mode: the system on the convention address
// (--leader) leads; the others discover it through its public port, join it
// over the peer link and heartbeat. The leader keeps the member table and the
// table of locations and broadcasts every change; members keep copies to
// route requests, and serve on while the leader is away (nothing is placed
// again without a leader).
//
// Without a quorum it cannot fence a member that is only cut off: such a
// member serves its actors while they run elsewhere too, until it comes
// back. Then the answer to its join names the instances placed elsewhere
// meanwhile (their epochs), and it stops them before serving them: two
// instances exist while a partition lasts, never after (docs/OPERATIONS.md §8.6).
// Threading: the loop's thread only.
#pragma once

#include "supervisor/placement_convention.hpp"

#include "supervisor/beacon.hpp"
#include "supervisor/desired_state.hpp"

#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>

namespace troupe::supervisor {

class leader_convention final : public placement_convention {
 public:
  using placement_convention::placement_convention;

  status setup() override;
  void start() override;
  void stop() override;
  void describe(json& status) const override;
  [[nodiscard]] std::string leader_unreachable() const override {
    return "the convention leader at " + ctx_.opts.leader + " is unreachable";
  }
  void keep_desired_state(desired_state& state, std::vector<saved_actor> recovered) override;

 private:
  void located(address a, const location& l) override;
  void forgotten(address a) override;
  void send_create(std::uint32_t to, address a, const location& l, std::function<void(bool)> then) override;
  void capabilities_changed() override;
  std::uint64_t next_epoch() override { return ++epoch_; }
  void describe_systems(json& out) const override;
  void when_durable(std::function<void()> f) override;

  /// What the desired state keeps of a's location: an actor that ran here,
  /// or a pending one (members' come back with their joins); else nothing.
  [[nodiscard]] std::optional<saved_actor> desired_actor(address a, const location& l) const;
  /// After a crash: the actors the last run kept, here again at their
  /// addresses and names once their packages are loaded again.
  void restore_actors();

  void register_handlers();
  /// Registers a command only the leader takes (from members, or itself).
  void on_leader(std::string_view command, peer_link::handler h);
  /// Registers a command only a member takes (from its leader).
  void on_member(std::string_view command, peer_link::handler h);
  /// Registers a command any host takes from the leader (the leader from itself).
  void on_host(std::string_view command, peer_link::handler h);
  void heartbeat_tick();
  void discover_leader();
  void on_discovery(const std::string& key);
  void send_join();
  void leader_lost();
  void on_member_join(std::uint32_t from, const json& b);
  void on_member_down(std::uint32_t id, const std::string& why, bool expired = false);
  void on_heartbeat(std::uint32_t from, const json& b);
  void on_welcome_or_members(std::uint32_t from, const json& b, bool welcome);
  void broadcast(std::string_view command, const json& body);

  // A member's discovery of its leader: a CURVE DEALER to the leader's
  // public port per key this system trusts (the leader holds one of them;
  // only that one completes a handshake).
  struct discovery_link {
    zmq::socket_t socket;
    std::unique_ptr<ipc::socket_watcher> watch;
  };
  std::map<std::string, std::unique_ptr<discovery_link>> discovery_;  // by candidate key
  std::string leader_endpoint_;                                       // tcp://… of --leader
  convention_clock::time_point discovery_since_{};
  bool no_leader_logged_ = false;
  std::string leader_peer_;  // the peer endpoint the uplink is connected to
  convention_clock::time_point uplink_since_{};
  convention_clock::time_point leader_heard_{};
  std::string untrusted_leader_key_;  // logged once
  bool not_a_leader_logged_ = false;
  std::unique_ptr<boost::asio::steady_timer> heartbeat_timer_;
  // Heartbeats on a thread of their own, so data never delays them.
  std::unique_ptr<beacon> beacon_;
  desired_state* desired_ = nullptr;
  std::vector<saved_actor> recovered_;
  // Epochs grow across restarts of the leader: they start at its start time.
  std::uint64_t epoch_ = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
};

}  // namespace troupe::supervisor
