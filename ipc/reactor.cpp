#include "ipc/reactor.hpp"

#include <boost/asio/post.hpp>

namespace troupe::ipc {

namespace asio = boost::asio;

socket_watcher::socket_watcher(asio::io_context& io, zmq::socket_t& socket,
                               std::function<void()> on_event, bool want_read)
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

data_link::peer* data_link::connect(const std::string& endpoint) {
  auto it = peers_.find(endpoint);
  if (it != peers_.end()) return it->second.get();
  auto p = std::make_unique<peer>();
  p->endpoint = endpoint;
  p->socket = zmq::socket_t(zmq_, zmq::socket_type::push);
  configure_data_socket(p->socket);
  p->socket.connect(endpoint);
  auto* raw = p.get();
  peers_.emplace(endpoint, std::move(p));
  return raw;
}

void data_link::disconnect(const std::string& endpoint) {
  auto it = peers_.find(endpoint);
  if (it == peers_.end()) return;
  std::erase(dirty_, it->second.get());
  peers_.erase(it);
}

void data_link::send(peer* p, const record_view& r) {
  if (p->batch.empty()) begin_batch(p->batch);
  append_record(p->batch, r);
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
    flush_scheduled_ = false;
    flush();
  });
}

void data_link::flush() {
  auto dirty = std::move(dirty_);
  dirty_.clear();
  for (peer* p : dirty) flush_peer(*p);
}

namespace {
// Hands a heap string to ZeroMQ without copying; ZeroMQ frees it when sent.
zmq::message_t adopt(std::string&& s) {
  auto* owned = new std::string(std::move(s));
  return zmq::message_t(owned->data(), owned->size(),
                        [](void*, void* hint) { delete static_cast<std::string*>(hint); },
                        owned);
}
}  // namespace

void data_link::flush_peer(peer& p) {
  p.dirty = false;
  if (!p.batch.empty()) {
    p.stalled.push_back(std::move(p.batch));
    p.batch.clear();
  }
  while (!p.stalled.empty()) {
    zmq::message_t msg = adopt(std::move(p.stalled.front()));
    if (!p.socket.send(msg, zmq::send_flags::dontwait)) {
      // Pipe full: keep the batch (ZeroMQ did not take ownership) and wait
      // for the socket to become writable.
      p.stalled.front().assign(static_cast<const char*>(msg.data()), msg.size());
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

std::size_t data_link::pending_batches() const {
  std::size_t n = 0;
  for (const auto& [_, p] : peers_) n += p->stalled.size() + (p->batch.empty() ? 0 : 1);
  return n;
}

}  // namespace troupe::ipc
