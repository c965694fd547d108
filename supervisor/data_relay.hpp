// supervisor/data_relay.hpp — actor messages between systems (docs/PROTOCOL.md
// §5.9): a worker's record for an actor elsewhere comes to its system's
// gateway and goes over the peer link as `data`; the host delivers it to the
// actor's worker with its original sender. Records for an actor that moves
// are held (bounded) until it runs again; what cannot be delivered comes back
// as a worker would bounce it (an ask fails, a tell is a dead letter).
// Threading: the loop's thread only.
#pragma once

#include "base/held_queue.hpp"
#include "ipc/reactor.hpp"
#include "supervisor/context.hpp"
#include "supervisor/convention.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/peer_link.hpp"
#include "supervisor/worker_pool.hpp"

#include <string>

namespace troupe::supervisor {

class data_relay {
 public:
  data_relay(system_context& ctx, directory& actors, worker_pool& pool, ipc::data_link& link, peer_link& peers)
      : ctx_(ctx), actors_(actors), pool_(pool), link_(link), peers_(peers), held_(ctx.opts.held_limit) {}

  /// Registers `data` with the peer link.
  void attach(convention& conv);

  /// A record a worker of this system sent for an actor elsewhere.
  void relay(const ipc::record_view& r);
  /// The actor runs again: what was held for it goes.
  void release_held(address a);
  /// Bounces what waits for a: asks fail, tells come back as dead letters.
  void drop_held(address a, const std::string& reason);
  /// Forgets what was held for a without a word (the leader no longer knows it).
  void forget_held(address a) { (void)held_.take(a); }
  [[nodiscard]] std::vector<address> held_addresses() const { return held_.keys(); }

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
  void on_data(const std::string& blob);
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
};

}  // namespace troupe::supervisor
