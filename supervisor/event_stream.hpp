// supervisor/event_stream.hpp — the system's event ring and the client
// command `events` (docs/PROTOCOL.md §6.5): the recent past after a given
// number, and with `follow` every new event pushed to the client under the
// rid of its request, batched once per loop turn, until it unsubscribes,
// disconnects or the system stops. Subscribers are bounded; a slow one never
// holds the loop or memory: a batch its socket cannot take (ZeroMQ's HWM) is
// dropped and the next one says how many it missed. The system feeds the
// ring from the event bus (actor and worker events, with the fields the
// tables know); the conventions and the package manager record through
// system_context::note.
// Threading: the loop's thread only.
#pragma once

#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/event_ring.hpp"
#include "supervisor/events.hpp"
#include "supervisor/packages.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <list>

namespace troupe::supervisor {

class event_stream {
 public:
  static constexpr std::size_t ring_size = 4096;               ///< events kept for late subscribers
  static constexpr std::size_t batch_events = 256;             ///< events per message at most
  static constexpr std::size_t answer_events = 1000;           ///< events in a one-shot answer at most
  static constexpr std::chrono::milliseconds heartbeat{1000};  ///< quiet this long: an empty batch

  event_stream(system_context& ctx, client_port& port, const directory& actors, const package_set& packages);

  [[nodiscard]] event_ring& ring() { return ring_; }
  void register_handlers();
  /// Ends every subscription ("the system is stopping").
  void stop();

  // ---- From the event bus (system.cpp), with what the tables know.
  void actor_event(event_kind kind, address a, const std::string& reason);
  void actor_gone(const supervisor::actor_gone& g);
  void worker_exited(const supervisor::worker_exited& w);

  [[nodiscard]] std::size_t subscribers() const { return subs_.size(); }
  [[nodiscard]] std::uint64_t dropped() const { return dropped_; }

 private:
  struct subscriber {
    client_ref client;
    std::uint64_t sent_up_to = 0;  ///< the last seq pushed (or skipped)
    std::uint64_t missed = 0;      ///< events dropped since its last message that left
    std::chrono::steady_clock::time_point last_message;
  };
  void cmd_events(const client_ref& c, const json& body);
  void schedule_flush();
  void flush();
  /// Pushes what s has not had yet, up to a few batches; false when its
  /// client is gone.
  bool push_to(subscriber& s, bool heartbeat_due);
  void end(subscriber& s, const std::string& why);
  void arm_heartbeat();
  void fill_package(event& e, const std::string& package_id) const;

  system_context& ctx_;
  client_port& port_;
  const directory& actors_;
  const package_set& packages_;
  event_ring ring_;
  std::list<subscriber> subs_;
  bool flush_scheduled_ = false;
  std::uint64_t dropped_ = 0;  ///< events a subscriber's full socket did not take
  boost::asio::steady_timer heartbeat_timer_;
  bool heartbeat_armed_ = false;
};

}  // namespace troupe::supervisor
