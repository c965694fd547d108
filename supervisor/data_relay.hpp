// supervisor/data_relay.hpp — actor messages between systems (docs/PROTOCOL.md
// §5.9): a worker's record for an actor elsewhere comes to its system's
// gateway and goes over the peer link as `data`; the host delivers it to the
// actor's worker with its original sender. Records for an actor that moves
// are held (bounded) until it runs again; what cannot be delivered comes back
// as a worker would bounce it (an ask fails, a tell is a dead letter).
//
// Custody: records to each system travel on a numbered channel
// (base/seq_window.hpp). This system keeps each one until the receiver
// acknowledges that it took it (delivered it to a worker on its own no-loss
// link, held it, relayed it on or bounced it), sends the unacknowledged ones
// again when the link dropped them, and the receiver takes each number once
// and in order. When the receiving system is lost, what it had not taken
// goes where its actors are placed again.
// Threading: the loop's thread only.
#pragma once

#include "base/held_queue.hpp"
#include "base/seq_window.hpp"
#include "ipc/reactor.hpp"
#include "supervisor/context.hpp"
#include "supervisor/convention.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/peer_link.hpp"
#include "supervisor/worker_pool.hpp"

#include <boost/asio/steady_timer.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>

namespace troupe::supervisor {

class data_relay {
 public:
  data_relay(system_context& ctx, directory& actors, worker_pool& pool, ipc::data_link& link, peer_link& peers)
      : ctx_(ctx), actors_(actors), pool_(pool), link_(link), peers_(peers), held_(ctx.opts.held_limit) {}

  /// Registers `data` and `data_ack` with the peer link.
  void attach(convention& conv);
  void stop();

  /// A record a worker of this system sent for an actor elsewhere.
  void relay(const ipc::record_view& r);
  /// The actor runs again: what was held for it goes.
  void release_held(address a);
  /// Bounces what waits for a: asks fail, tells come back as dead letters;
  /// unless the convention has a elsewhere or moving (the instance here was
  /// a copy left over, or left for a move): then on to it, or held for it.
  void drop_held(address a, const std::string& reason);
  [[nodiscard]] std::vector<address> held_addresses() const { return held_.keys(); }
  /// Everything held now (metrics).
  [[nodiscard]] std::size_t held_total() const { return held_.total(); }
  /// Records sent to other systems and not yet acknowledged.
  [[nodiscard]] std::size_t unacknowledged() const;

 private:
  struct held_record {
    ipc::record_kind kind;
    address to;
    address from;
    std::uint64_t correlation;
    std::string type;
    std::string payload;
  };

  void deliver(const ipc::record_view& r);
  void bounce(const ipc::record_view& r, const std::string& reason);
  void on_data(std::uint32_t from, const json& body, const std::string& blob);
  void deliver_batch(const std::string& blob);
  void on_ack(std::uint32_t from, std::uint64_t channel, std::uint64_t upto);
  // Custody.
  void send_to(std::uint32_t system, held_record rec);
  bool transmit(std::uint32_t system, std::uint64_t channel, std::uint64_t seq, std::uint64_t first,
                const held_record& rec);
  void pump(std::uint32_t system, base::send_window<held_record>& w);
  void arm_resend();
  void resend_tick();
  /// Whether a kept record for a lost system is to go elsewhere now: its
  /// actor was placed again, is moving or gone, or was never the convention's.
  [[nodiscard]] bool goes_elsewhere(std::uint32_t lost, const held_record& rec) const;
  void flush_acks();
  static ipc::record_view view(const held_record& h) {
    return ipc::record_view{h.kind, 0, h.to, h.from, h.correlation, 0, h.type, h.payload};
  }
  [[nodiscard]] address gateway() const { return address(ctx_.id, ipc::gateway_serial); }
  static held_record keep(const ipc::record_view& r) {
    return held_record{r.kind, r.to, r.from, r.correlation, std::string(r.type), std::string(r.payload)};
  }

  system_context& ctx_;
  directory& actors_;
  worker_pool& pool_;
  ipc::data_link& link_;
  peer_link& peers_;
  convention* convention_ = nullptr;
  base::held_queue<address, held_record> held_;
  std::map<std::uint32_t, base::send_window<held_record>> out_;  // per receiving system
  base::receive_sequence<std::uint32_t> in_;                     // per sending system and channel
  std::set<std::pair<std::uint32_t, std::uint64_t>> acks_due_;   // (system, channel) taken from since the last flush
  bool acks_armed_ = false;
  std::unique_ptr<boost::asio::steady_timer> ack_timer_;
  std::unique_ptr<boost::asio::steady_timer> resend_timer_;
  bool resend_armed_ = false;
  base::seq_clock::time_point last_prune_{};
};

}  // namespace troupe::supervisor
