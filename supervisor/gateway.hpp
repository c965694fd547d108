// supervisor/gateway.hpp — where client messages enter the data plane
// (docs/PROTOCOL.md §3.6, §7.3): a client's ask or tell is sent from the
// system's gateway address to the actor's worker, and the reply comes back
// to the gateway's inbox (g.sock, a PULL socket) with no-loss delivery like
// any worker's. It also sends the system's own records (exit requests, exit
// notices, on_load and lifecycle messages). What it sends to an actor that
// is not running is held until it runs, or failed when it will not; what a
// dead worker had not acknowledged is sent again (or fails as poison).
// Threading: the loop's thread only.
#pragma once

#include "base/held_queue.hpp"
#include "ipc/delivery.hpp"
#include "ipc/handling_marker.hpp"
#include "ipc/reactor.hpp"
#include "supervisor/client_port.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/worker_pool.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace prometheus {
class Histogram;
}

namespace troupe::supervisor {

class gateway {
 public:
  gateway(system_context& ctx, client_port& port, ipc::data_link& link, worker_pool& pool, directory& actors)
      : ctx_(ctx), port_(port), link_(link), pool_(pool), actors_(actors) {}

  /// Binds g.sock; turns on acknowledged delivery when the system asks for it.
  status bind();
  void start() { watch_->start(); }
  void stop();

  [[nodiscard]] address self() const { return address(ctx_.id, ipc::gateway_serial); }

  /// The client commands ask and tell for an actor of this system; others
  /// go to route_elsewhere first (the convention), which returns false when
  /// the target is none of its business.
  void cmd_send(const client_ref& c, const json& body, bool is_ask);
  std::function<bool(const client_ref&, const std::string& command, const json& body, const std::string& target)>
      route_elsewhere;
  /// Whether an actor here is not the convention's instance to serve: one
  /// stopping here that is leaving for another system, or a stale one placed
  /// elsewhere meanwhile. Its requests go where the convention says instead.
  std::function<bool(address, bool stopping)> elsewhere;
  /// A record a worker sent the gateway for an actor of another system.
  std::function<void(const ipc::record_view&)> relay;

  /// Sends a record from the gateway to rec's worker, or holds it until the
  /// actor runs. c is released when the worker acknowledges the record.
  void send(actor_record& rec, ipc::record_kind kind, std::uint64_t corr, const std::string& type,
            const std::string& payload, ipc::cause c = {});
  /// Holds a record for an actor whose worker is not running (an exit notice
  /// for a watcher waiting for its restart).
  void hold(address a, ipc::record_kind kind, std::uint64_t corr, std::string type, std::string payload);
  /// The actor runs: what was held for it goes.
  void release_held(address a);
  /// The actor will not run: held asks fail with reason, held tells are dropped.
  void fail_held(address a, const std::string& reason);

  /// A worker died: its unacknowledged records are taken from the link
  /// before anything restarts, and sent again once the restart decisions
  /// are made (held until the actor runs; failed when it will not come back;
  /// the one being handled fails its ask as poison).
  std::vector<ipc::data_link::kept_batch> take_unacked(const std::string& inbox);
  void resend(std::vector<ipc::data_link::kept_batch> kept, const ipc::handling_snapshot& last, const std::string& how);

  /// What went through, for metrics: plain counts on the loop's thread.
  struct counters {
    std::uint64_t out = 0;           ///< records sent to workers (client messages, lifecycle, exits)
    std::uint64_t in = 0;            ///< records workers sent the gateway (replies, bounces)
    std::uint64_t poison = 0;        ///< client messages returned or failed as poison
    std::uint64_t dead_letters = 0;  ///< client tells that found no actor
    std::uint64_t held_refused = 0;  ///< client messages refused: --max-held reached
    std::uint64_t relayed = 0;       ///< records workers sent for actors of other systems (§5.9)
  };
  [[nodiscard]] const counters& counts() const { return counts_; }
  /// Client messages held now for actors not running.
  [[nodiscard]] std::size_t held_total() const { return held_.total(); }
  /// Set by metrics (--metrics): the time from a client's ask to its answer.
  prometheus::Histogram* ask_latency = nullptr;

 private:
  struct held_record {
    ipc::record_kind kind;
    std::uint64_t correlation;
    std::string type;
    std::string payload;
    ipc::cause cause;
  };
  struct pending_ask {
    client_ref client;
    std::unique_ptr<boost::asio::steady_timer> timer;
    bool tell = false;                                ///< a tell another system forwarded: answered once handled
    address to;                                       ///< its actor
    std::chrono::steady_clock::time_point started{};  ///< set only with metrics on
  };
  /// The cause a forwarded tell's record carries: released (acknowledged by
  /// the worker once handled) it answers the tell; channel is no ledger's.
  static constexpr std::uint32_t forwarded_tells = 0xffffffffu;
  void tell_handled(std::uint64_t corr);
  /// Answers a forwarded tell that was definitely not delivered (the host
  /// gave its actor up): its sender may take it elsewhere.
  void tell_not_delivered(std::uint64_t corr, const std::string& why);

  void on_readable();
  void deliver(const ipc::record_view& r);
  /// Answers and forgets ask corr, if it still waits.
  void answer_ask(std::uint64_t corr, const std::string& text, errc code);

  system_context& ctx_;
  client_port& port_;
  ipc::data_link& link_;
  worker_pool& pool_;
  directory& actors_;
  zmq::socket_t inbox_;
  std::unique_ptr<ipc::socket_watcher> watch_;
  ipc::inbound_ledger ledger_;  // acknowledges what workers send the gateway
  // Acknowledgements wait for the next batch to go (the next ask to that
  // worker carries them) or ack_delay at most: a worker is not woken for
  // the ack of each reply. Safe here, unlike in a worker: the gateway
  // handles what it takes on the spot, so a late ack can cause no resend.
  void acks_due();
  static constexpr std::chrono::milliseconds ack_delay{1};
  std::unique_ptr<boost::asio::steady_timer> ack_timer_;
  bool ack_armed_ = false;
  base::held_queue<address, held_record> held_;
  std::unordered_map<std::uint64_t, pending_ask> asks_;
  std::uint64_t next_correlation_ = 1;
  counters counts_;
};

}  // namespace troupe::supervisor
