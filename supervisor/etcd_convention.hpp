// supervisor/etcd_convention.hpp — a convention coordinated by etcd
// (`troupe start --etcd URL[,URL...]`, docs/OPERATIONS.md §8.7,
// docs/PROTOCOL.md §5.12). Every system registers itself under a lease
// whose TTL is the member timeout; a lost lease is a lost member. The leader
// is elected (a key created only if absent, under the winner's lease), and
// only it places actors: it writes each placement to the store in a
// transaction that holds only while it still leads, then asks the host to
// create the actor with the placement's epoch (the store revision of that
// write). Every system follows the store through one watch: members,
// leader, placements and the package set. Nothing of this is on the path of
// a message between actors.
//
// Fencing: a system that cannot renew its lease in time stops the actors
// the convention placed on it before the lease can expire; unless every etcd
// endpoint refuses connections or has no leader: the store is down for everyone
// and nothing can be placed again meanwhile. The lease is kept on a thread of
// its own (lease_keeper.hpp), which tells the workers through the fence page,
// so neither a busy loop nor a stopped system lets an actor outlive it.
// Threading: the loop's thread only (but the keeper's).
#pragma once

#include "etcd/client.hpp"
#include "supervisor/lease_keeper.hpp"
#include "supervisor/placement_convention.hpp"

#include <boost/asio/steady_timer.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace troupe::supervisor {

class etcd_convention final : public placement_convention {
 public:
  etcd_convention(system_context& ctx, parts p, std::vector<etcd::endpoint> endpoints)
      : placement_convention(ctx, p), endpoints_(std::move(endpoints)) {}

  status setup() override;
  void start() override;
  void stop() override;
  void describe(json& status) const override;
  [[nodiscard]] std::string leader_unreachable() const override;
  /// The lease the convention's actors here live under (0: none yet).
  [[nodiscard]] std::optional<std::int64_t> fence_lease() const override { return lease_; }

 private:
  void located(address a, const location& l) override;
  void located_then(address a, const location& l, std::function<void()> then) override;
  void forgotten(address a) override;
  void send_create(std::uint32_t to, address a, const location& l, std::function<void(bool)> then) override;
  void capabilities_changed() override;
  /// Epochs grow with leaderships and placements: the revision that made
  /// this system leader in the high bits, a count of its placements below.
  std::uint64_t next_epoch() override {
    return (static_cast<std::uint64_t>(leader_revision_) << 20) | (++placements_ & 0xfffff);
  }
  void describe_systems(json& out) const override;
  [[nodiscard]] std::uint32_t fetch_source(const std::string& package_id) const override;
  [[nodiscard]] bool package_gone(const std::string& package_id) const override;
  [[nodiscard]] bool taking_over() const override { return taking_over_; }

  [[nodiscard]] std::string key(const std::string& tail) const { return prefix_ + tail; }
  /// "HOST:PORT" of the elected leader, or null.
  [[nodiscard]] json leader_where() const;
  void register_handlers();
  /// Handles what `leader` sent before the store showed it leads; drops
  /// what others sent long ago.
  void handle_early(std::uint32_t leader);

  // The lease (from the keeper) and fencing.
  void granted(std::int64_t lease);
  void fence(std::int64_t lease, const std::string& why);
  /// Why a create the leader sent cannot be honoured here ("": it can).
  [[nodiscard]] std::string refuses_create(const json& body) const override;
  // Registration and what the store holds.
  void put_member();
  void read_all();
  void watch_from(std::int64_t revision);
  void apply(const etcd::event& e);
  void member_changed(const etcd::event& e, const std::string& id_text);
  void actor_changed(const etcd::event& e, const std::string& addr_text);
  void package_changed(const etcd::event& e, const std::string& tail);
  // Leadership.
  void campaign();
  void lead(std::int64_t revision);
  void step_down(const std::string& why);
  /// A new leader: loads the convention's packages, then settles what the
  /// previous one left (actors on lost systems, creations under way).
  void take_over();
  void settle();
  /// Writes ops if this system still leads; a lost leadership steps down.
  void write(std::vector<etcd::operation> ops, std::function<void(std::int64_t revision)> then = {});
  /// Loads the packages of the convention that this leader lacks.
  void load_packages();

  std::vector<etcd::endpoint> endpoints_;
  std::unique_ptr<etcd::client> client_;
  std::string prefix_;
  std::unique_ptr<etcd::client::watch> watch_;
  struct early_message {
    std::uint32_t from;
    std::string command;
    json body;
    std::string blob;
    peer_link::handler handler;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<early_message> early_;                            // from a system not (yet) known to lead
  std::unique_ptr<boost::asio::steady_timer> retry_timer_;      // reading the store again
  std::unique_ptr<boost::asio::steady_timer> campaign_timer_;   // an election the store did not answer
  std::unique_ptr<boost::asio::steady_timer> take_over_timer_;  // the bound of a take-over
  std::unique_ptr<lease_keeper> keeper_;
  std::int64_t lease_ = 0;  // the keeper's lease as this loop knows it (0: lost, none yet)
  bool registered_ = false;
  bool fenced_ = false;
  std::map<std::uint32_t, std::int64_t> member_leases_;  // system -> the lease its member key lives under
  std::int64_t leader_revision_ = 0;                     // the leader key's create revision, while this system leads
  bool taking_over_ = false;
  std::uint64_t placements_ = 0;
  std::map<std::string, json> package_set_;                 // id -> record
  std::map<std::string, std::set<std::uint32_t>> holders_;  // id -> systems that have it
  std::set<std::string> loading_;                           // packages this leader is loading
  std::set<std::uint32_t> untrusted_;                       // registered systems whose key is not trusted (logged once)
  // Their registrations, looked at again every second while any is left: a
  // key trusted after the system registered (its operator copies it now)
  // makes it a member without waiting for it to register again.
  std::map<std::uint32_t, std::pair<etcd::event, std::string>> untrusted_records_;
  std::unique_ptr<boost::asio::steady_timer> trust_timer_;
  bool trust_timer_running_ = false;
  void recheck_untrusted();
};

}  // namespace troupe::supervisor
