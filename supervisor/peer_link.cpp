#include "supervisor/peer_link.hpp"

#include "base/hex.hpp"
#include "ipc/log.hpp"

#include <boost/asio/post.hpp>

namespace troupe::supervisor {

using ipc::log_line;

std::string peer_link::name(std::uint32_t id) const { return name_of ? name_of(id) : base::hex32(id); }

status peer_link::bind() {
  auto keys = ipc::load_or_create_keypair(ctx_.dir / "curve");
  if (!keys) return keys.err();
  keys_ = *keys;
  const auto trusted = trusted_dir();
  // Systems that share a TROUPE_HOME trust one another: whoever can write it
  // runs them all. A system elsewhere is trusted by copying its key here.
  if (auto s = ipc::trust_key(trusted, "system-" + std::to_string(ctx_.opts.port), keys_.public_key); !s) return s;
  try {
    // The system bound the context's ZAP handler before any CURVE server.
    ctx_.zap->admit(std::string(ipc::peer_zap_domain),
                    ipc::zap_authenticator::curve_policy([trusted] { return ipc::read_trusted(trusted); }),
                    [](const std::string& peer, const std::string& reason) {
                      log_line(TROUPE_LOG_WARN, {}, "refused a system connecting from " + peer + ": " + reason);
                    });
    zmq::socket_t router(ctx_.zmq, zmq::socket_type::router);
    ipc::make_curve_server(router, keys_);
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::router_mandatory, 1);
    router.set(zmq::sockopt::router_handover, 1);  // a member that rejoins takes over its routing id
    router.bind("tcp://" + ctx_.opts.bind_host + ":0");
    endpoint_ = router.get(zmq::sockopt::last_endpoint);
    router_ = std::make_unique<ipc::watched_socket>(ctx_.io, std::move(router), [this] { on_router(); });
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, std::string("cannot open the convention link: ") + e.what());
  }
  return ok_v;
}

void peer_link::start() { router_->start(); }

void peer_link::stop() {
  if (router_) router_->stop();
  if (uplink_) uplink_->stop();
}

status peer_link::connect_uplink(const std::string& endpoint, const std::string& key) {
  try {
    if (uplink_) uplink_->stop();
    uplink_.reset();
    zmq::socket_t s(ctx_.zmq, zmq::socket_type::dealer);
    ipc::make_curve_client(s, keys_, key);
    s.set(zmq::sockopt::routing_id, "s" + base::hex32(ctx_.id));
    s.set(zmq::sockopt::linger, 200);  // "leaving" must get out at shutdown
    s.connect(endpoint);
    uplink_ = std::make_unique<ipc::watched_socket>(ctx_.io, std::move(s), [this] { on_uplink(); });
    uplink_->start();
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, "cannot connect to the leader's peer socket " + endpoint + ": " + e.what());
  }
  return ok_v;
}

// ---------------------------------------------------------------- receiving

void peer_link::on_router() {
  auto parts = router_->receive();
  if (parts.size() < 2) return;
  const std::string identity = parts[0].to_string();
  auto m = ipc::decode_control(parts, 1, ctx_.opts.max_json_depth, /*with_blob=*/true);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed message from system '" + identity + "': " + m.err().message);
    return;
  }
  const std::uint32_t from = identity.size() > 1 && identity[0] == 's' ? base::parse_hex32(identity.substr(1)) : 0;
  if (from == 0) {
    log_line(TROUPE_LOG_WARN, {}, "dropped a message from a peer with a malformed routing id");
    return;
  }
  // Relayed when it is for another member (one hop through the leader).
  const auto& to_field = m->body.contains("to") ? m->body["to"] : json();
  const std::uint32_t to = to_field.is_string() ? base::parse_hex32(to_field.get<std::string>()) : 0;
  if (to != 0 && to != ctx_.id) {
    if (router_->send_control("s" + base::hex32(to), m->command, m->body, m->blob)) return;
    // A full or missing link drops it: what is numbered comes again, the rest
    // is the sender's to retry. Said once in a while, not per message.
    auto& [logged, dropped] = unrelayed_[{from, to}];
    ++dropped;
    const auto now = std::chrono::steady_clock::now();
    if (now - logged < std::chrono::seconds(5)) return;
    log_line(TROUPE_LOG_WARN, {},
             std::to_string(dropped) + " messages from " + name(from) + " to " + name(to) + " (the last '" +
                 m->command + "') not relayed: that system is not connected or its link is full");
    logged = now;
    dropped = 0;
    return;
  }
  dispatch(from, *m);
}

void peer_link::on_uplink() {
  auto parts = uplink_->receive();
  if (parts.empty()) return;
  auto m = ipc::decode_control(parts, 0, ctx_.opts.max_json_depth, /*with_blob=*/true);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed message from the leader: " + m.err().message);
    return;
  }
  if (on_uplink_message) on_uplink_message();
  const auto& from_field = m->body.contains("from") ? m->body["from"] : json();
  dispatch(from_field.is_string() ? base::parse_hex32(from_field.get<std::string>()) : 0, *m);
}

void peer_link::dispatch(std::uint32_t from, const ipc::control_message& m) {
  auto h = handlers_.find(m.command);
  if (h == handlers_.end()) {
    log_line(TROUPE_LOG_WARN, {}, "dropped unknown command '" + m.command + "' from system " + name(from));
    return;
  }
  // A field of the wrong JSON type anywhere below drops the message, never the system.
  try {
    h->second(from, m.body, m.blob);
  } catch (const json::exception& e) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed '" + m.command + "' from system " + name(from) + ": " + e.what());
  }
}

// ---------------------------------------------------------------- sending

bool peer_link::send(std::uint32_t to, std::string_view command, json body, const std::string& blob) {
  body["from"] = base::hex32(ctx_.id);
  body["to"] = base::hex32(to);
  if (to == ctx_.id) {
    boost::asio::post(ctx_.io, [this, m = ipc::control_message{std::string(command), std::move(body), blob}] {
      dispatch(ctx_.id, m);
    });
    return true;
  }
  if (state_.direct) {
    if (auto* link = direct_link(to)) return link->send_control("", command, body, blob);
    // Not (yet) a member this system knows: back over the connection it made
    // to this system's ROUTER, if it made one.
    return router_->send_control("s" + base::hex32(to), command, body, blob);
  }
  if (state_.leads) return router_->send_control("s" + base::hex32(to), command, body, blob);
  // To another member: straight there when the link is up, else through the leader.
  if (to != state_.leader)
    if (auto* link = direct_link(to); link != nullptr && link->send_control("", command, body, blob)) {
      direct_took_[to] = std::chrono::steady_clock::now();
      return true;
    }
  if (uplink_ && state_.joined) return uplink_->send_control("", command, body, blob);
  return false;
}

bool peer_link::send_in_order(std::uint32_t to, std::string_view command, json body, const std::string& blob) {
  if (!state_.direct && !state_.leads && to != state_.leader && to != ctx_.id)
    if (auto* link = direct_link(to)) {
      body["from"] = base::hex32(ctx_.id);
      body["to"] = base::hex32(to);
      const auto now = std::chrono::steady_clock::now();
      if (link->send_control("", command, body, blob)) {
        direct_took_[to] = now;
        return true;
      }
      if (auto t = direct_took_.find(to); t != direct_took_.end() && now - t->second < ctx_.opts.member_timeout)
        return false;  // up and full
    }
  return send(to, command, std::move(body), blob);
}

bool peer_link::send_uplink(std::string_view command, const json& body) {
  return uplink_ && uplink_->send_control("", command, body);
}

ipc::watched_socket* peer_link::direct_link(std::uint32_t to) {
  if (auto it = direct_.find(to); it != direct_.end()) return it->second.get();
  const auto* m = members_.find(to);
  if (m == nullptr || m->state != member_state::up || (m->leader && !state_.direct) || m->peer_endpoint.ends_with(":0"))
    return nullptr;
  try {
    zmq::socket_t s(ctx_.zmq, zmq::socket_type::dealer);
    ipc::make_curve_client(s, keys_, m->public_key);  // the key the (authenticated) leader listed
    s.set(zmq::sockopt::routing_id, "s" + base::hex32(ctx_.id));
    s.set(zmq::sockopt::linger, 0);
    // In the star, nothing is queued for a peer not (or no longer)
    // connected: such a send fails at once and goes through the leader
    // instead. With direct links only, it waits for the connection.
    if (!state_.direct) s.set(zmq::sockopt::immediate, 1);
    s.connect(m->peer_endpoint);
    auto link = std::make_unique<ipc::watched_socket>(ctx_.io, std::move(s), [this, to] { on_direct(to); });
    link->start();
    return direct_.emplace(to, std::move(link)).first->second.get();
  } catch (const zmq::error_t& e) {
    log_line(TROUPE_LOG_WARN, {}, "no direct link to system " + name(to) + ": " + e.what());
    return nullptr;
  }
}

void peer_link::on_direct(std::uint32_t to) {
  auto it = direct_.find(to);
  if (it == direct_.end()) return;
  auto parts = it->second->receive();
  if (parts.empty()) return;
  auto m = ipc::decode_control(parts, 0, ctx_.opts.max_json_depth, /*with_blob=*/true);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed message from system " + name(to) + ": " + m.err().message);
    return;
  }
  dispatch(to, *m);
}

void peer_link::prune_direct() {
  std::erase_if(direct_, [this](const auto& link) {
    const auto* m = members_.find(link.first);
    return m == nullptr || m->state != member_state::up;
  });
  std::erase_if(direct_took_, [this](const auto& took) { return direct_.count(took.first) == 0; });
}

}  // namespace troupe::supervisor
