// supervisor/direct_links.hpp — records between workers of two systems
// without the supervisors in the path (docs/PROTOCOL.md §5.13). Each worker
// of a system with direct links binds a tcp inbox, a CurveZMQ server with a
// key pair of its own, and reports it in `ready`. When a worker resolves an
// actor of another system, this component asks that system (`link`) for the
// hosting worker's tcp inbox; the host tells its worker to admit the
// asker's key and answers with its own inbox and key (`linked`); the asker
// tells its worker to admit that key and answers the resolve with them. Any
// refusal, an older peer or no answer in time answers the resolve with the
// gateway, as before: the supervisors' path (§5.9) stays the fallback.
//
// It also carries deaths across: a worker that dies is announced to the
// systems it was linked with (`worker_died`), which send their workers
// `peer_died` for its tcp inbox (no-loss recovery, §3.6); a system that is
// lost counts as the death of every worker of it that its workers know.
// The supervisors stay the control plane: no record passes through here.
// Threading: the loop's thread only.
#pragma once

#include "ipc/handling_marker.hpp"
#include "supervisor/context.hpp"
#include "supervisor/convention.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/peer_link.hpp"
#include "supervisor/worker_pool.hpp"

#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::supervisor {

class direct_links {
 public:
  direct_links(system_context& ctx, worker_pool& pool, directory& actors, peer_link& peers)
      : ctx_(ctx), pool_(pool), actors_(actors), peers_(peers) {}

  /// Registers its peer and worker commands; workers get "direct" in hello.
  void attach(convention& conv);
  void stop();

  /// Direct links are on (start --direct-links on, and no-loss delivery).
  [[nodiscard]] bool enabled() const { return ctx_.opts.direct_links && ctx_.opts.no_loss; }

  /// Worker w resolves a, an actor of system host: answered with the hosting
  /// worker's tcp inbox and key, or with this system's gateway.
  void resolve(worker_proc& w, const json& rid, address a, std::uint32_t host);
  /// The actor runs here: link requests that waited for it go on.
  void running(address a);
  /// The actor will not run here: link requests that waited for it are refused.
  void not_here(address a);
  /// Worker w's process ended, before anything restarts: the systems it was
  /// linked with are told (their workers send again what it had not
  /// acknowledged, and return the record it was handling as poison).
  void worker_exited(worker_proc& w, const ipc::handling_snapshot& last, const std::string& how);

  struct counters {
    std::uint64_t linked = 0;     ///< resolves answered with a direct link
    std::uint64_t fallbacks = 0;  ///< resolves of another system's actor answered with the gateway
    std::uint64_t hosted = 0;     ///< links this system's workers accepted
  };
  [[nodiscard]] const counters& counts() const { return counts_; }
  /// Workers of other systems this system's workers know (tcp inboxes).
  [[nodiscard]] std::size_t remote_inboxes() const;

 private:
  struct asking {
    std::uint32_t worker = 0;
    std::string inbox;  // the worker's process then (a restart has another)
    json rid;
    std::uint32_t system = 0;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct request {
    std::uint32_t system = 0;
    std::string req;
    std::string endpoint;  // the asking worker's tcp inbox
    std::string key;       // its public key
  };
  struct admitting {
    request r;
    std::uint32_t worker = 0;
    std::string inbox;
  };

  void on_link(std::uint32_t from, const json& b);
  void try_link(request r, address a);
  void refuse(const request& r, const std::string& why);
  void on_linked(std::uint32_t from, const json& b);
  void fall_back(std::uint64_t req);
  void on_admitted(worker_proc& w, const json& b);
  void on_worker_died(std::uint32_t from, const json& b);
  /// Tells every worker with a package that the process at inbox is gone.
  void announce(const json& peer_died);
  void arm_sweep();
  /// Systems lost: their workers count as dead.
  void sweep();
  [[nodiscard]] std::string gateway_endpoint() const { return ctx_.endpoint_of("g.sock"); }

  system_context& ctx_;
  worker_pool& pool_;
  directory& actors_;
  peer_link& peers_;
  convention* convention_ = nullptr;
  std::uint64_t next_req_ = 1;
  std::map<std::uint64_t, asking> asking_;  // this system's resolves waiting for `linked`
  std::uint64_t next_ref_ = 1;
  std::map<std::uint64_t, admitting> admitting_;                   // waiting for the worker's `admitted`
  std::unordered_map<address, std::vector<request>> waiting_run_;  // for an actor starting here
  // Systems each worker (by id) is linked with: told when it dies.
  std::map<std::uint32_t, std::set<std::uint32_t>> worker_systems_;
  // Other systems' worker inboxes (endpoint -> key) this system's workers were told of.
  std::map<std::uint32_t, std::map<std::string, std::string>> remote_;
  std::unique_ptr<boost::asio::steady_timer> sweep_timer_;
  bool sweep_armed_ = false;
  counters counts_;
};

}  // namespace troupe::supervisor
