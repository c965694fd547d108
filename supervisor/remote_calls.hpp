// supervisor/remote_calls.hpp — client requests for actors of the convention
// that do not run here (docs/PROTOCOL.md §5.8): forwarded to the actor's host
// as a `call` and answered from its `result`; held (bounded, within the
// request's own timeout) while the actor moves or waits for a system; sent
// on when it runs again, after it when it moved, failed when it is gone.
// Requests other systems forward here are run as a client's would be.
// Threading: the loop's thread only.
#pragma once

#include "base/held_queue.hpp"
#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/convention.hpp"
#include "supervisor/peer_link.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

namespace troupe::supervisor {

class remote_calls {
 public:
  remote_calls(system_context& ctx, client_port& port, peer_link& link)
      : ctx_(ctx), port_(port), link_(link), held_(ctx.opts.held_limit) {}

  /// Registers call and result with the peer link, and the port's way back
  /// to a system that forwarded a request.
  void attach(convention& conv);
  void stop();

  /// A request for an actor this system does not host: forwarded, held or
  /// failed. False when target is not an actor of the convention either.
  bool route(const client_ref& c, const std::string& command, const json& b, const std::string& target);
  /// Sends a request to system `to` and answers the client from its result.
  void forward(const client_ref& c, std::uint32_t to, const std::string& command, const json& b,
               std::chrono::milliseconds timeout);

  /// The actor runs again: what was held for it goes.
  void release_held(address a);
  /// The actor is gone: what was held for it fails with reason (not_found).
  void fail_held(address a, const std::string& reason);
  /// Requests forwarded to where a was, now that it moved away from a host
  /// that is gone: their outcome is unknown.
  void reroute(address a);
  /// System `system` went down (or, for a member, the leader): what it took
  /// and did not answer fails as unknown (it may have been carried out).
  void system_lost(std::uint32_t system, const std::string& why);
  /// Addresses with requests held (the leader came back: each goes on or fails).
  [[nodiscard]] std::vector<address> held_addresses() const { return held_.keys(); }
  /// Everything held now (metrics).
  [[nodiscard]] std::size_t held_total() const { return held_.total(); }

 private:
  struct held_call {
    client_ref client;  // empty for a tell (answered when held)
    std::string command;
    json body;
    std::uint64_t id = 0;
    std::shared_ptr<boost::asio::steady_timer> timer;  // an ask's own timeout
  };
  struct call {
    client_ref client;
    std::uint32_t system = 0;
    std::string command;
    json body;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  void on_call(std::uint32_t from, const json& b);
  void on_result(const json& b);

  system_context& ctx_;
  client_port& port_;
  peer_link& link_;
  convention* convention_ = nullptr;
  base::held_queue<address, held_call> held_;
  std::unordered_map<std::uint64_t, call> calls_;
  std::uint64_t next_call_ = 1;
};

}  // namespace troupe::supervisor
