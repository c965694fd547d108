#include "ipc/reactor.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <random>

namespace troupe::ipc {

namespace asio = boost::asio;

socket_watcher::socket_watcher(asio::io_context& io, zmq::socket_t& socket, std::function<void()> on_event,
                               bool want_read)
    : io_(io),
      socket_(socket),
      on_event_(std::move(on_event)),
      want_read_(want_read),
      fd_(io, socket.get(zmq::sockopt::fd)) {}

socket_watcher::~socket_watcher() {
  *alive_ = false;
  fd_.cancel();
  fd_.release();  // the descriptor belongs to ZeroMQ
}

void socket_watcher::start() {
  stopped_ = false;
  arm();
  kick();  // events may already be pending: the edge may have passed
}

void socket_watcher::stop() {
  stopped_ = true;
  fd_.cancel();
}

bool socket_watcher::ready() const {
  const int ev = socket_.get(zmq::sockopt::events);
  return (ev & (want_read_ ? ZMQ_POLLIN : ZMQ_POLLOUT)) != 0;
}

void socket_watcher::arm() {
  if (armed_) return;
  armed_ = true;
  fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                 [this, alive = alive_](const boost::system::error_code& ec) {
                   if (!*alive) return;
                   armed_ = false;
                   if (ec || stopped_) return;
                   drain();
                 });
}

void socket_watcher::kick() {
  if (kick_pending_) return;
  kick_pending_ = true;
  asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    kick_pending_ = false;
    if (!stopped_) drain();
  });
}

void socket_watcher::drain() {
  // A budget keeps one busy socket from starving the rest of the loop.
  for (int budget = 256; budget > 0; --budget) {
    if (stopped_) return;
    if (!ready()) {
      arm();
      return;
    }
    auto alive = alive_;
    on_event_();
    if (!*alive) return;  // the callback destroyed us
  }
  kick();
}

watched_socket::watched_socket(asio::io_context& io, zmq::socket_t socket, std::function<void()> on_readable)
    : socket_(std::move(socket)), watcher_(io, socket_, std::move(on_readable)) {}

std::vector<zmq::message_t> watched_socket::receive() { return recv_multipart(socket_); }

bool watched_socket::send_control(std::string_view identity, std::string_view command, const nlohmann::json& body,
                                  std::string_view blob) {
  const bool sent = ipc::send_control(socket_, identity, command, body, blob);
  watcher_.kick();
  return sent;
}

void configure_data_socket(zmq::socket_t& socket) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 100000);
  socket.set(zmq::sockopt::rcvhwm, 100000);
  socket.set(zmq::sockopt::reconnect_ivl, 10);
  socket.set(zmq::sockopt::reconnect_ivl_max, 200);
}

void configure_control_socket(zmq::socket_t& socket) {
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
}

data_link::data_link(asio::io_context& io, zmq::context_t& zmq) : io_(io), zmq_(zmq) {}

data_link::~data_link() { *alive_ = false; }

data_link::peer* data_link::connect(const std::string& endpoint, const std::string& server_key) {
  learn_server_key(endpoint, server_key);
  return connect(endpoint);
}

void data_link::learn_server_key(const std::string& endpoint, const std::string& key) {
  if (endpoint.starts_with("tcp://") && valid_curve_key(key)) server_keys_[endpoint] = key;
}

bool data_link::reachable(std::string_view endpoint) const {
  return !endpoint.starts_with("tcp://") || server_keys_.count(std::string(endpoint)) != 0;
}

void data_link::enable_direct(std::string tcp_ack_endpoint, curve_keypair own, std::chrono::milliseconds resend_after) {
  direct_ack_endpoint_ = std::move(tcp_ack_endpoint);
  identity_ = std::move(own);
  resend_after_ = resend_after;
}

data_link::peer* data_link::connect(const std::string& endpoint) {
  auto it = peers_.find(endpoint);
  if (it != peers_.end()) return it->second.get();
  auto p = std::make_unique<peer>();
  p->endpoint = endpoint;
  p->socket = zmq::socket_t(zmq_, zmq::socket_type::push);
  configure_data_socket(p->socket);
  if (auto key = server_keys_.find(endpoint); key != server_keys_.end() && direct_enabled()) {
    // A worker of another system: authenticated both ways by CurveZMQ.
    make_curve_client(p->socket, identity_, key->second);
    p->direct = true;
    p->last_used = clock();
  }
  p->socket.connect(endpoint);
  auto* raw = p.get();
  peers_.emplace(endpoint, std::move(p));
  return raw;
}

void data_link::disconnect(const std::string& endpoint) {
  auto it = peers_.find(endpoint);
  if (it == peers_.end()) return;
  std::erase(dirty_, it->second.get());
  if (it->second->channel_id != 0) channels_.erase(it->second->channel_id);
  peers_.erase(it);
}

namespace {
// Records a receiver acknowledges; the rest (exit requests, exit notices,
// channel records, acks) are the system's or the link's own and never resent.
bool sequenced(record_kind k) {
  switch (k) {
    case record_kind::tell:
    case record_kind::ask:
    case record_kind::reply:
    case record_kind::ask_failed:
    case record_kind::dead_letter:
    case record_kind::poison:
      return true;
    default:
      return false;
  }
}
}  // namespace

void data_link::enable_acks(std::string ack_endpoint) {
  ack_endpoint_ = std::move(ack_endpoint);
  // Channel ids must not repeat across processes that talk to one receiver:
  // the high half is this process's, from a random device, once.
  std::random_device rd;
  next_channel_id_ = (std::uint64_t{rd()} << 32) | 1;
}

void data_link::send(peer* p, const record_view& r, cause c) {
  if (p->batch.empty()) {
    begin_batch(p->batch);
    if (acks_enabled()) {
      if (p->channel_id == 0) {
        p->channel_id = next_channel_id_++;
        channels_.emplace(p->channel_id, p);
      }
      // A tcp peer acknowledges to this process's tcp inbox.
      append_record(
          p->batch,
          record_view{
              record_kind::channel, 0, {}, {}, p->channel_id, 0, {}, p->direct ? direct_ack_endpoint_ : ack_endpoint_});
    }
  }
  if (acks_enabled() && sequenced(r.kind)) {
    record_view numbered = r;
    numbered.seq = p->next_seq++;
    if (p->batch_first_seq == 0) p->batch_first_seq = numbered.seq;
    p->batch_causes.push_back(c);
    append_record(p->batch, numbered);
  } else {
    append_record(p->batch, r);
  }
  if (p->direct) p->last_used = clock();
  if (p->batch.size() >= batch_flush_bytes) {
    flush_peer(*p);
    return;
  }
  if (!p->dirty) {
    p->dirty = true;
    dirty_.push_back(p);
    schedule_flush();
  }
}

void data_link::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // post, not dispatch: every record produced in this loop turn joins the batch.
  asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    flush();
    flush_scheduled_ = false;  // after: what before_flush adds goes in this flush
  });
}

void data_link::flush() {
  if (before_flush) before_flush();
  auto dirty = std::move(dirty_);
  dirty_.clear();
  for (peer* p : dirty) flush_peer(*p);
}

namespace {
// Hands a frame to ZeroMQ without copying. The frame may also be kept until
// acknowledged, so ZeroMQ gets a reference of its own, dropped from its I/O
// thread once sent (shared_ptr counts atomically); the frame is never
// modified after it was built.
zmq::message_t share(const std::shared_ptr<const std::string>& frame) {
  auto* ref = new std::shared_ptr<const std::string>(frame);
  return zmq::message_t(
      const_cast<char*>(frame->data()), frame->size(),
      [](void*, void* hint) { delete static_cast<std::shared_ptr<const std::string>*>(hint); }, ref);
}
}  // namespace

void data_link::flush_peer(peer& p) {
  p.dirty = false;
  if (!p.batch.empty()) {
    auto frame = std::make_shared<const std::string>(std::move(p.batch));
    p.batch.clear();
    if (p.batch_first_seq != 0) keep(p, frame);
    p.stalled.push_back(std::move(frame));
  }
  while (!p.stalled.empty()) {
    zmq::message_t msg = share(p.stalled.front());
    if (!p.socket.send(msg, zmq::send_flags::dontwait)) {
      // Pipe full: ZeroMQ did not take the frame; wait for the socket to
      // become writable.
      if (!p.writable) {
        p.writable = std::make_unique<socket_watcher>(
            io_, p.socket, [this, &p] { flush_peer(p); }, /*want_read=*/false);
      }
      p.writable->start();
      return;
    }
    p.stalled.pop_front();
  }
  if (p.writable) p.writable->stop();
}

void data_link::keep(peer& p, std::shared_ptr<const std::string> frame) {
  kept_batch b;
  b.frame = std::move(frame);
  b.first_seq = p.batch_first_seq;
  b.causes = std::move(p.batch_causes);
  b.acked.assign(b.causes.size(), false);
  b.sent_at = clock();
  if (p.direct) {
    if (p.unacked.empty()) p.last_progress = b.sent_at;  // the timeout runs from the oldest
    arm_resend();
  }
  p.unacked.push_back(std::move(b));
  p.batch_causes.clear();
  p.batch_first_seq = 0;
}

void data_link::on_ack(std::uint64_t channel_id, std::uint64_t first, std::uint64_t last,
                       const std::function<void(cause)>& on_release) {
  auto it = channels_.find(channel_id);
  if (it == channels_.end() || first == 0 || last < first) return;
  peer& p = *it->second;
  auto& unacked = p.unacked;
  bool progress = false;
  // Frames are in seq order: find the first that may hold `first`.
  auto b = std::lower_bound(unacked.begin(), unacked.end(), first, [](const kept_batch& k, std::uint64_t seq) {
    return k.first_seq + k.causes.size() <= seq;
  });
  for (; b != unacked.end() && b->first_seq <= last; ++b) {
    const std::uint64_t hi = std::min(last, b->first_seq + b->causes.size() - 1);
    for (std::uint64_t seq = std::max(first, b->first_seq); seq <= hi; ++seq) {
      const std::size_t i = seq - b->first_seq;
      if (b->acked[i]) continue;
      b->acked[i] = true;
      ++b->acked_count;
      progress = true;
      if (b->causes[i]) on_release(b->causes[i]);
    }
  }
  while (!unacked.empty() && unacked.front().acked_count == unacked.front().causes.size()) unacked.pop_front();
  if (progress && p.direct) {
    p.last_progress = p.last_used = clock();
    p.backoff = 0;
  }
}

void data_link::arm_resend() {
  if (resend_armed_) return;
  if (!resend_timer_) resend_timer_ = std::make_unique<asio::steady_timer>(io_);
  resend_armed_ = true;
  resend_timer_->expires_after(std::chrono::milliseconds(100));
  resend_timer_->async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!*alive || ec) return;
    resend_armed_ = false;
    resend_due(clock());
  });
}

void data_link::resend_due(std::chrono::steady_clock::time_point now) {
  bool waiting = false;
  for (auto& [_, owned] : peers_) {
    peer& p = *owned;
    if (!p.direct || p.unacked.empty()) continue;
    waiting = true;
    // Frames ZeroMQ has not taken yet are not lost: wait for them to leave.
    if (!p.stalled.empty() || now - p.last_progress < resend_after_ * (1 << p.backoff)) continue;
    // Go back: everything not acknowledged, in order. The receiver drops
    // the copies of what it took (acknowledging again those it had done)
    // and takes the rest in order.
    for (const auto& b : p.unacked) p.stalled.push_back(b.frame);
    resent_frames_ += p.unacked.size();
    p.last_progress = now;
    if (p.backoff < 3) ++p.backoff;
    flush_peer(p);
  }
  if (waiting) arm_resend();
}

std::vector<std::string> data_link::idle_direct_peers(std::chrono::steady_clock::time_point now,
                                                      std::chrono::milliseconds idle) const {
  std::vector<std::string> out;
  for (const auto& [endpoint, p] : peers_)
    if (p->direct && p->unacked.empty() && p->stalled.empty() && p->batch.empty() && now - p->last_used >= idle)
      out.push_back(endpoint);
  return out;
}

std::size_t data_link::direct_peers() const {
  std::size_t n = 0;
  for (const auto& [_, p] : peers_) n += p->direct;
  return n;
}

std::vector<data_link::kept_batch> data_link::take_unacked(const std::string& endpoint) {
  std::vector<kept_batch> out;
  auto it = peers_.find(endpoint);
  if (it == peers_.end()) return out;
  peer& p = *it->second;
  if (!p.batch.empty() && p.batch_first_seq != 0) keep(p, std::make_shared<const std::string>(std::move(p.batch)));
  out.assign(std::make_move_iterator(p.unacked.begin()), std::make_move_iterator(p.unacked.end()));
  if (p.channel_id != 0) channels_.erase(p.channel_id);
  disconnect(endpoint);
  return out;
}

std::size_t data_link::unacknowledged_batches() const {
  std::size_t n = 0;
  for (const auto& [_, p] : peers_) n += p->unacked.size();
  return n;
}

data_link::backlog data_link::backlog_of(const std::string& endpoint) const {
  backlog out;
  auto it = peers_.find(endpoint);
  if (it == peers_.end()) return out;
  const peer& p = *it->second;
  for (const auto& b : p.unacked) {
    out.unacked_records += b.causes.size() - b.acked_count;
    if (!out.oldest && b.acked_count < b.causes.size()) out.oldest = b.sent_at;
  }
  out.queued_batches = p.stalled.size() + (p.batch.empty() ? 0 : 1);
  return out;
}

std::size_t data_link::pending_batches() const {
  std::size_t n = 0;
  for (const auto& [_, p] : peers_) n += p->stalled.size() + (p->batch.empty() ? 0 : 1);
  return n;
}

void send_acks(inbound_ledger& ledger, data_link& link) {
  ledger.take_acks([&link](std::string_view endpoint, std::uint64_t channel, std::uint64_t first, std::uint64_t last) {
    // A tcp inbox whose key this process was not given cannot be reached
    // (its CurveZMQ server would refuse the connection): the sender sends
    // again, and the supervisors' word on it (admit, peer_died) settles it.
    if (!link.reachable(endpoint)) return;
    const std::string from = encode_ack_first(first);
    link.send(link.connect(std::string(endpoint)), record_view{record_kind::ack, 0, {}, {}, channel, last, {}, from});
  });
}

}  // namespace troupe::ipc
