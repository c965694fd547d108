// supervisor/beacon.hpp — the built-in convention's heartbeats, on a thread
// and sockets of their own (docs/PROTOCOL.md §5.11).
//
// Liveness must not wait behind data: a member that parses a 45 MB request,
// or a peer link busy carrying one, would otherwise miss heartbeats and be
// declared lost. So each system's beacon thread beats on a CurveZMQ socket
// that carries nothing else: a member's DEALER sends `beat` to its leader's
// beacon every heartbeat interval; the leader's ROUTER notes when it heard
// each member and echoes the beat, which is how the member hears its leader.
// The convention reads those times on its loop.
//
// The thread answers for the whole system only while the system's loop
// runs: a loop that has not turned for `stall_limit` (a deadlock, not a big
// message) makes the beacon fall silent, so the others see the system lost.
#pragma once

#include "ipc/curve.hpp"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace troupe::supervisor {

class beacon {
 public:
  using clock = std::chrono::steady_clock;

  beacon(zmq::context_t& zmq, std::uint32_t id, ipc::curve_keypair keys, std::chrono::milliseconds interval,
         std::chrono::milliseconds stall_limit);
  ~beacon();
  beacon(const beacon&) = delete;
  beacon& operator=(const beacon&) = delete;

  /// The leader's side: binds its ROUTER on an ephemeral port of host (the
  /// ZAP handler of the context admits only trusted systems).
  status listen(const std::string& host);
  /// tcp://HOST:PORT of the ROUTER (empty unless listening).
  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }
  /// Starts the thread.
  void start();
  /// Ends the thread (its sockets close with it).
  void stop();

  /// A member's side: beats to this leader's beacon from now on (a new
  /// endpoint or key replaces the old link; empty: no leader to beat to).
  void beat_to(const std::string& endpoint, const std::string& server_key);

  /// The loop turned: called from the system's loop at each of its ticks.
  void loop_turned() { loop_turned_ms_.store(now_ms()); }

  /// When the leader last heard member id (leader's side), if ever.
  [[nodiscard]] std::optional<clock::time_point> heard(std::uint32_t id) const;
  /// When this member last heard its leader's echo (member's side).
  [[nodiscard]] std::optional<clock::time_point> leader_heard() const;

 private:
  void run();
  [[nodiscard]] bool loop_alive() const { return now_ms() - loop_turned_ms_.load() < stall_limit_.count(); }
  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now().time_since_epoch()).count();
  }

  zmq::context_t& zmq_;
  std::uint32_t id_;
  ipc::curve_keypair keys_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds stall_limit_;
  std::string endpoint_;
  zmq::socket_t router_;  // built on the caller's thread, used only by the beacon's once it runs
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> loop_turned_ms_;

  mutable std::mutex m_;
  std::string target_, target_key_;  // where a member beats (guarded by m_)
  std::uint64_t target_generation_ = 0;
  std::map<std::uint32_t, clock::time_point> heard_;  // leader: member -> last beat
  std::optional<clock::time_point> leader_heard_;
};

}  // namespace troupe::supervisor
