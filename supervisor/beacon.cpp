// The built-in convention's heartbeats on their own thread. See beacon.hpp.
#include "supervisor/beacon.hpp"

#include "base/hex.hpp"
#include "ipc/log.hpp"

namespace troupe::supervisor {

using ipc::log_line;

namespace {
constexpr std::string_view beat = "beat";
}

beacon::beacon(zmq::context_t& zmq, std::uint32_t id, ipc::curve_keypair keys, std::chrono::milliseconds interval,
               std::chrono::milliseconds stall_limit)
    : zmq_(zmq),
      id_(id),
      keys_(std::move(keys)),
      interval_(interval),
      stall_limit_(stall_limit),
      loop_turned_ms_(now_ms()) {}

beacon::~beacon() { stop(); }

status beacon::listen(const std::string& host) {
  try {
    zmq::socket_t router(zmq_, zmq::socket_type::router);
    ipc::make_curve_server(router, keys_);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::router_handover, 1);  // a member that rejoins takes over its routing id
    router.set(zmq::sockopt::sndhwm, 64);
    router.bind("tcp://" + host + ":0");
    endpoint_ = router.get(zmq::sockopt::last_endpoint);
    router_ = std::move(router);
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, std::string("cannot open the heartbeat socket: ") + e.what());
  }
  return ok_v;
}

void beacon::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void beacon::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void beacon::beat_to(const std::string& endpoint, const std::string& server_key) {
  std::lock_guard lock(m_);
  if (endpoint == target_ && server_key == target_key_) return;
  target_ = endpoint;
  target_key_ = server_key;
  ++target_generation_;
  leader_heard_.reset();
}

std::optional<beacon::clock::time_point> beacon::heard(std::uint32_t id) const {
  std::lock_guard lock(m_);
  auto it = heard_.find(id);
  if (it == heard_.end()) return std::nullopt;
  return it->second;
}

std::optional<beacon::clock::time_point> beacon::leader_heard() const {
  std::lock_guard lock(m_);
  return leader_heard_;
}

void beacon::run() {
  zmq::socket_t dealer;
  std::uint64_t generation = 0;
  auto next_beat = clock::now();
  const auto tick = std::min(interval_ / 2, std::chrono::milliseconds(50));
  while (!stop_) {
    // A new leader to beat to: a new link (the old one's queue goes with it).
    {
      std::unique_lock lock(m_);
      if (generation != target_generation_) {
        generation = target_generation_;
        const auto target = target_, key = target_key_;
        lock.unlock();
        dealer = zmq::socket_t();
        if (!target.empty()) {
          try {
            zmq::socket_t s(zmq_, zmq::socket_type::dealer);
            ipc::make_curve_client(s, keys_, key);
            s.set(zmq::sockopt::linger, 0);
            s.set(zmq::sockopt::immediate, 1);  // no beats queued for a leader not connected
            s.set(zmq::sockopt::sndhwm, 4);
            s.set(zmq::sockopt::routing_id, "s" + base::hex32(id_));
            s.connect(target);
            dealer = std::move(s);
          } catch (const zmq::error_t& e) {
            log_line(TROUPE_LOG_WARN, {}, std::string("cannot open the heartbeat link: ") + e.what());
          }
        }
      }
    }
    zmq::pollitem_t items[2];
    int n = 0;
    int router_at = -1, dealer_at = -1;
    if (router_) {
      items[n] = {router_.handle(), 0, ZMQ_POLLIN, 0};
      router_at = n++;
    }
    if (dealer) {
      items[n] = {dealer.handle(), 0, ZMQ_POLLIN, 0};
      dealer_at = n++;
    }
    try {
      zmq::poll(items, n, tick);
      const bool alive = loop_alive();
      if (router_at >= 0 && (items[router_at].revents & ZMQ_POLLIN) != 0) {
        // Drained whole: a burst of beats costs one wakeup.
        for (int i = 0; i < 256; ++i) {
          zmq::message_t who, what;
          if (!router_.recv(who, zmq::recv_flags::dontwait)) break;
          while (router_.get(zmq::sockopt::rcvmore) && router_.recv(what, zmq::recv_flags::dontwait)) {
          }
          const auto identity = who.to_string();
          const std::uint32_t from =
              identity.size() > 1 && identity[0] == 's' ? base::parse_hex32(identity.substr(1)) : 0;
          if (from == 0 || !alive) continue;
          {
            std::lock_guard lock(m_);
            heard_[from] = clock::now();
          }
          router_.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
          router_.send(zmq::buffer(beat), zmq::send_flags::dontwait);
        }
      }
      if (dealer_at >= 0 && (items[dealer_at].revents & ZMQ_POLLIN) != 0) {
        for (int i = 0; i < 256; ++i) {
          zmq::message_t echo;
          if (!dealer.recv(echo, zmq::recv_flags::dontwait)) break;
          std::lock_guard lock(m_);
          if (alive) leader_heard_ = clock::now();
        }
      }
      if (dealer && alive && clock::now() >= next_beat) {
        (void)dealer.send(zmq::buffer(beat), zmq::send_flags::dontwait);
        next_beat = clock::now() + interval_;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      log_line(TROUPE_LOG_WARN, {}, std::string("heartbeat socket: ") + e.what());
    }
  }
}

}  // namespace troupe::supervisor
