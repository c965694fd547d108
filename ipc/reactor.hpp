// ipc/reactor.hpp — ZeroMQ sockets driven by a Boost.Asio loop.
//
// socket_watcher waits on a socket's ZMQ_FD with the loop, so an idle process
// sleeps in epoll: no polling, no busy wait. ZMQ_FD is edge-triggered and
// shared by reads and writes, so after every wake-up the watcher re-reads
// ZMQ_EVENTS and drains; after sending on a socket it also watches, call
// kick() so a read that arrived during the send is not missed.
//
// data_link is the sending half of the data plane: one PUSH socket per peer
// endpoint, records batched per peer and flushed once per loop turn. With
// acks enabled it is also the sending half of no-loss delivery
// (ipc/delivery.hpp): records are numbered per peer and kept until acknowledged.
//
// Threading: everything here belongs to the thread running the io_context.
#pragma once

#include "ipc/control.hpp"
#include "ipc/curve.hpp"
#include "ipc/delivery.hpp"
#include "ipc/wire.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <zmq.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::ipc {

class socket_watcher {
 public:
  /// on_event is called while the socket has ZMQ_POLLIN (when want_read) or
  /// ZMQ_POLLOUT (when !want_read); it must consume or send at least once.
  socket_watcher(boost::asio::io_context& io, zmq::socket_t& socket, std::function<void()> on_event,
                 bool want_read = true);
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

/// A socket read from the loop and written from any handler on it. Every
/// send through it re-checks the socket: a send processes ZeroMQ's pending
/// commands and can consume the ZMQ_FD edge of a message that arrived
/// meanwhile, which would then wait for the next unrelated wake-up (a client
/// pipelining requests stalled until another client sent something).
class watched_socket {
 public:
  /// on_readable as for socket_watcher; call start() once the socket is bound.
  watched_socket(boost::asio::io_context& io, zmq::socket_t socket, std::function<void()> on_readable);
  watched_socket(const watched_socket&) = delete;
  watched_socket& operator=(const watched_socket&) = delete;

  void start() { watcher_.start(); }
  void stop() { watcher_.stop(); }
  /// The next whole message, without blocking; empty when none.
  std::vector<zmq::message_t> receive();
  /// send_control (ipc/control.hpp) on this socket, then a re-check.
  bool send_control(std::string_view identity, std::string_view command, const nlohmann::json& body,
                    std::string_view blob = {});
  /// Runs send(socket) (any other framing), then re-checks; returns its result.
  template <class F>
  decltype(auto) send_with(F&& send) {
    struct rechecks {
      socket_watcher& w;
      ~rechecks() { w.kick(); }
    } after{watcher_};
    return send(socket_);
  }
  /// For options and binding; sends belong to the functions above.
  zmq::socket_t& raw() { return socket_; }

 private:
  zmq::socket_t socket_;
  socket_watcher watcher_;
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
  /// A tcp endpoint whose server key is known (learn_server_key) is a
  /// CurveZMQ server: the connection is a CURVE client with this process's
  /// own key pair (enable_direct). The pointer stays valid until
  /// disconnect(endpoint) or destruction.
  peer* connect(const std::string& endpoint);
  /// connect(endpoint), expecting server_key at a tcp endpoint.
  peer* connect(const std::string& endpoint, const std::string& server_key);
  void disconnect(const std::string& endpoint);
  [[nodiscard]] bool connected(const std::string& endpoint) const { return peers_.count(endpoint) != 0; }

  /// Direct links between systems (docs/PROTOCOL.md §5.13): this process's
  /// CurveZMQ identity, its tcp inbox (the ack endpoint its tcp peers are
  /// told), and how long a frame sent to a tcp peer waits for its ack before
  /// everything not acknowledged goes again (tcp loses what was in flight
  /// when a connection drops; ipc does not).
  void enable_direct(std::string tcp_ack_endpoint, curve_keypair own, std::chrono::milliseconds resend_after);
  [[nodiscard]] bool direct_enabled() const { return !direct_ack_endpoint_.empty(); }
  /// The server key of the tcp inbox at endpoint (from the supervisor).
  void learn_server_key(const std::string& endpoint, const std::string& key);
  void forget_server_key(const std::string& endpoint) { server_keys_.erase(endpoint); }
  /// Whether acks for endpoint can be sent: an ipc endpoint, or a tcp one whose key is known.
  [[nodiscard]] bool reachable(std::string_view endpoint) const;
  /// Sends again, from the oldest, the frames of each tcp peer on which
  /// nothing was acknowledged for its timeout (go-back; each go-back doubles
  /// that peer's timeout, up to 8 times, until an ack makes progress). Runs
  /// every 100 ms from the loop while something waits; tests call it with
  /// their own clock.
  void resend_due(std::chrono::steady_clock::time_point now);
  /// The clock of sent_at and of resends (tests inject theirs).
  std::function<std::chrono::steady_clock::time_point()> clock = [] { return std::chrono::steady_clock::now(); };
  /// tcp peers that carried nothing since idle before now and keep nothing.
  [[nodiscard]] std::vector<std::string> idle_direct_peers(std::chrono::steady_clock::time_point now,
                                                           std::chrono::milliseconds idle) const;
  /// Connected tcp peers.
  [[nodiscard]] std::size_t direct_peers() const;
  /// Frames sent again by resend_due (tests, metrics).
  [[nodiscard]] std::uint64_t resent_frames() const { return resent_frames_; }

  /// Turns on no-loss delivery (docs/PROTOCOL.md §3.4): tells, asks, replies
  /// and bounces get a sequence number per peer and are kept until the peer
  /// acknowledges them; every batch opens with a channel record naming
  /// ack_endpoint, where the peer sends its acks.
  void enable_acks(std::string ack_endpoint);
  [[nodiscard]] bool acks_enabled() const { return !ack_endpoint_.empty(); }

  /// Queues a record for peer; it leaves at the end of this loop turn, or at
  /// once when the peer's batch is full. c, the inbound record that caused
  /// it, is released (on_release of on_ack) once the peer acknowledges it;
  /// without acks there is nothing to release: pass none.
  void send(peer* p, const record_view& r, cause c = {});

  /// A frame kept until each of its numbered records is acknowledged. Its
  /// numbered records are consecutive: first_seq, first_seq + 1, ...
  struct kept_batch {
    std::shared_ptr<const std::string> frame;  ///< the whole data frame as sent
    std::uint64_t first_seq = 0;
    std::vector<cause> causes;  ///< by seq - first_seq (none: channel 0)
    std::vector<bool> acked;    ///< by seq - first_seq
    std::size_t acked_count = 0;
    std::chrono::steady_clock::time_point sent_at;  ///< when it was handed to ZeroMQ

    [[nodiscard]] bool holds(std::uint64_t seq) const { return seq >= first_seq && seq - first_seq < causes.size(); }
    [[nodiscard]] bool is_acked(std::uint64_t seq) const { return holds(seq) && acked[seq - first_seq]; }
    [[nodiscard]] cause cause_of(std::uint64_t seq) const { return holds(seq) ? causes[seq - first_seq] : cause{}; }
  };

  /// An ack of records first..last of the channel: calls on_release for the
  /// cause of each record newly acknowledged, and drops the frames whose
  /// records are all acknowledged. Acks are selective, not cumulative: a
  /// record whose handler waits for an answer from this side must not hold
  /// back the acknowledgement of later ones (that would deadlock two
  /// workers that message each other). Unknown channels (a peer since
  /// dropped) are ignored.
  void on_ack(std::uint64_t channel_id, std::uint64_t first, std::uint64_t last,
              const std::function<void(cause)>& on_release);

  /// The process at endpoint died: returns the frames it had not
  /// acknowledged, oldest first, and forgets the peer (its queued frames go).
  /// The causes of the records in them are not released: that is the caller's
  /// to do as it sends them again or gives up on them.
  std::vector<kept_batch> take_unacked(const std::string& endpoint);

  /// Records sent and not acknowledged yet, over all peers (tests, metrics).
  [[nodiscard]] std::size_t unacknowledged_batches() const;

  /// Sends every pending batch now.
  void flush();
  /// Called as a flush begins: what its owner holds back until something
  /// goes anyway (the gateway's acknowledgements) joins the batches of it.
  std::function<void()> before_flush;

  /// Records queued but not yet handed to ZeroMQ (for tests and metrics).
  [[nodiscard]] std::size_t pending_batches() const;

  /// What one peer has not taken yet (metrics: a worker's mailbox as its
  /// senders here see it).
  struct backlog {
    std::size_t unacked_records = 0;  ///< sent, not acknowledged
    std::size_t queued_batches = 0;   ///< not handed to ZeroMQ yet (its pipe full, or this turn's)
    std::optional<std::chrono::steady_clock::time_point> oldest;  ///< the oldest unacknowledged batch's send time
  };
  [[nodiscard]] backlog backlog_of(const std::string& endpoint) const;

 private:
  void flush_peer(peer& p);
  /// Moves the numbered records of p's batch (sent as frame) to p.unacked.
  void keep(peer& p, std::shared_ptr<const std::string> frame);
  void schedule_flush();
  void arm_resend();

  boost::asio::io_context& io_;
  zmq::context_t& zmq_;
  std::string ack_endpoint_;
  std::string direct_ack_endpoint_;
  curve_keypair identity_;
  std::chrono::milliseconds resend_after_{500};
  std::unordered_map<std::string, std::string> server_keys_;  // tcp endpoint -> its CurveZMQ key
  std::unique_ptr<boost::asio::steady_timer> resend_timer_;
  bool resend_armed_ = false;
  std::uint64_t resent_frames_ = 0;
  std::uint64_t next_channel_id_ = 0;
  std::unordered_map<std::uint64_t, peer*> channels_;  // by channel id
  std::unordered_map<std::string, std::unique_ptr<peer>> peers_;
  std::vector<peer*> dirty_;
  bool flush_scheduled_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

struct data_link::peer {
  std::string endpoint;
  zmq::socket_t socket;
  std::string batch;                                       // records not yet handed to ZeroMQ
  std::deque<std::shared_ptr<const std::string>> stalled;  // refused by a full pipe, in order
  std::unique_ptr<socket_watcher> writable;                // armed while stalled is non-empty
  bool dirty = false;
  // No-loss delivery: this peer's channel.
  std::uint64_t channel_id = 0;
  std::uint64_t next_seq = 1;
  std::uint64_t batch_first_seq = 0;  // first seq in batch (0: none numbered)
  std::vector<cause> batch_causes;    // one per numbered record of batch
  std::deque<kept_batch> unacked;
  // Direct links (tcp, CurveZMQ): frames may be lost with a connection.
  bool direct = false;
  std::chrono::steady_clock::time_point last_used{};      // a record sent or acknowledged
  std::chrono::steady_clock::time_point last_progress{};  // an ack made progress (or the first frame left)
  int backoff = 0;                                        // go-backs since the last progress (timeout << backoff)
};

/// The receiving half of the data plane, one for workers and the gateway:
/// a frame's link records are taken here (a channel record opens its channel
/// in the ledger, with no-loss delivery; an ack record releases, through
/// on_release(cause), what the peer acknowledged), and every other record goes
/// to deliver(record, cause), in order. The cause holds one count of its
/// record in the ledger (none without no-loss delivery or sequence number):
/// the receiver releases it once the record is handled. Returns what
/// decode_batch returns; records before a malformed one have been delivered.
template <class Deliver, class Release>
status receive_frame(std::string_view frame, bool no_loss, data_link& link, inbound_ledger& ledger, Deliver&& deliver,
                     Release&& on_release) {
  std::uint32_t channel = 0;  // set by the channel record opening a no-loss batch
  return decode_batch(frame, [&](const record_view& r) {
    switch (r.kind) {
      case record_kind::channel:
        if (no_loss) channel = ledger.open(r.correlation, r.payload);
        return;
      case record_kind::ack:
        link.on_ack(r.correlation, decode_ack_first(r.payload), r.seq, on_release);
        return;
      default:
        break;
    }
    if (channel == 0 || r.seq == 0) return deliver(r, cause{});
    // Once and in order per channel: a copy sent again over tcp is dropped
    // (and acknowledged again if done), a record past a loss waits for it.
    if (ledger.arrive(channel, r.seq) != inbound_ledger::arrival::take) return;
    deliver(r, ledger.begin(channel, r.seq));
  });
}

/// Sends the acks the ledger has ready (runs of records done), each to the
/// endpoint its channel named.
void send_acks(inbound_ledger& ledger, data_link& link);

}  // namespace troupe::ipc
