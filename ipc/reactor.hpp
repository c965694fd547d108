// ipc/reactor.hpp — ZeroMQ sockets driven by a Boost.Asio loop.
//
// socket_watcher waits on a socket's ZMQ_FD with the loop, so an idle process
// sleeps in epoll: no polling, no busy wait. ZMQ_FD is edge-triggered and
// shared by reads and writes, so after every wake-up the watcher re-reads
// ZMQ_EVENTS and drains; after sending on a socket it also watches, call
// kick() so a read that arrived during the send is not missed.
//
// data_link is the sending half of the data plane: one PUSH socket per peer
// endpoint, records batched per peer and flushed once per loop turn.
//
// Threading: everything here belongs to the thread running the io_context.
#pragma once

#include "ipc/wire.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <zmq.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::ipc {

class socket_watcher {
 public:
  /// on_event is called while the socket has ZMQ_POLLIN (when want_read) or
  /// ZMQ_POLLOUT (when !want_read); it must consume or send at least once.
  socket_watcher(boost::asio::io_context& io, zmq::socket_t& socket,
                 std::function<void()> on_event, bool want_read = true);
  ~socket_watcher();
  socket_watcher(const socket_watcher&) = delete;
  socket_watcher& operator=(const socket_watcher&) = delete;

  void start();
  void stop();
  /// Re-checks the socket soon (from the loop); call after sending on it.
  void kick();

 private:
  void arm();
  void drain();
  bool ready() const;

  boost::asio::io_context& io_;
  zmq::socket_t& socket_;
  std::function<void()> on_event_;
  bool want_read_;
  boost::asio::posix::stream_descriptor fd_;
  bool armed_ = false;
  bool stopped_ = true;
  bool kick_pending_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// Sockets created for the data plane get these options (docs/PROTOCOL.md §3.1).
void configure_data_socket(zmq::socket_t& socket);

/// Control-plane sockets never drop: no high-water mark, so a burst of
/// requests (spawns, leases) queues instead of vanishing (docs/PROTOCOL.md §4).
void configure_control_socket(zmq::socket_t& socket);

class data_link {
 public:
  data_link(boost::asio::io_context& io, zmq::context_t& zmq);
  ~data_link();
  data_link(const data_link&) = delete;
  data_link& operator=(const data_link&) = delete;

  struct peer;

  /// The peer at endpoint (ipc://... or tcp://...), connecting on first use.
  /// The pointer stays valid until disconnect(endpoint) or destruction.
  peer* connect(const std::string& endpoint);
  void disconnect(const std::string& endpoint);

  /// Queues a record for peer; it leaves at the end of this loop turn, or at
  /// once when the peer's batch is full.
  void send(peer* p, const record_view& r);

  /// Sends every pending batch now.
  void flush();

  /// Records queued but not yet handed to ZeroMQ (for tests and metrics).
  [[nodiscard]] std::size_t pending_batches() const;

 private:
  void flush_peer(peer& p);
  void schedule_flush();

  boost::asio::io_context& io_;
  zmq::context_t& zmq_;
  std::unordered_map<std::string, std::unique_ptr<peer>> peers_;
  std::vector<peer*> dirty_;
  bool flush_scheduled_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

struct data_link::peer {
  std::string endpoint;
  zmq::socket_t socket;
  std::string batch;                  // records not yet handed to ZeroMQ
  std::deque<std::string> stalled;    // batches refused by a full pipe, in order
  std::unique_ptr<socket_watcher> writable;  // armed while stalled is non-empty
  bool dirty = false;
};

}  // namespace troupe::ipc
