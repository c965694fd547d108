// supervisor/system_convention.cpp — the system as part of a convention
// (docs/PROTOCOL.md §5): the leader's CurveZMQ peer socket and a member's
// link to it, membership and heartbeats, placement of actors on the system
// that fits, package distribution, chgcap, move and failover.
//
// The topology is a star: members talk to the leader only, and the leader
// relays what one member sends another. The leader decides every placement;
// members keep a copy of its table of locations to route client requests.
#include "supervisor/system_impl.hpp"

#include "manifests/sha256.hpp"
#include "supervisor/capabilities.hpp"

#include <troupe/client.hpp>

#include <charconv>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace troupe::supervisor {

namespace {

std::string hex_of(std::uint32_t id) { return address(id, 0).to_string().substr(1, 8); }

std::uint32_t id_of(const json& j) {
  if (!j.is_string()) return 0;
  const auto text = j.get<std::string>();
  if (text.empty() || text.size() > 8) return 0;
  std::uint32_t v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v, 16);
  return r.ec == std::errc{} && r.ptr == text.data() + text.size() ? v : 0;
}

const char* to_string(location::phase p) {
  switch (p) {
    case location::phase::placed: return "running";
    case location::phase::moving: return "moving";
    case location::phase::pending: return "pending";
  }
  return "?";
}

/// [identity][TRC1][command][body][blob]: a control message with an optional
/// binary frame (a package archive).
bool send_frames(zmq::socket_t& s, std::string_view identity, std::string_view command, const json& body,
                 const std::string& blob) {
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  try {
    if (!identity.empty() && !s.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      return false;
    const auto first = identity.empty() ? zmq::send_flags::sndmore | zmq::send_flags::dontwait
                                        : zmq::send_flags::sndmore;
    if (!s.send(zmq::buffer(ipc::control_signature.data(), ipc::control_signature.size()), first)) return false;
    s.send(zmq::buffer(command), zmq::send_flags::sndmore);
    if (blob.empty()) {
      s.send(zmq::buffer(text), zmq::send_flags::none);
    } else {
      s.send(zmq::buffer(text), zmq::send_flags::sndmore);
      s.send(zmq::buffer(blob), zmq::send_flags::none);
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;  // the member is gone (ROUTER_MANDATORY)
  }
}

/// A location in its wire form (docs/PROTOCOL.md §5.4); fields that are
/// missing read as empty. Throws json::exception on a field of the wrong type.
location location_from_json(const json& j) {
  location l;
  l.system = id_of(j.value("system", json()));
  l.type = j.value("type", std::string());
  l.package_id = j.value("package_id", std::string());
  l.name = j.value("name", std::string());
  const auto st = j.value("state", std::string());
  l.ph = st == "pending" ? location::phase::pending : st == "moving" ? location::phase::moving : location::phase::placed;
  l.reason = j.value("reason", std::string());
  return l;
}

/// Decodes parts[first..] as [TRC1][command][body] with an optional binary
/// frame after the body, which goes to blob.
result<ipc::control_message> decode_peer_message(std::vector<zmq::message_t>& parts, std::size_t first,
                                                 std::string& blob, std::size_t max_depth) {
  if (parts.size() == first + 4) {
    blob = parts.back().to_string();
    parts.pop_back();
  }
  return ipc::decode_control(parts, first, max_depth);
}

// Requests another system may forward here; anything else is refused.
bool forwardable(const std::string& command) {
  return command == "ask" || command == "tell" || command == "kill" || command == "spawn" ||
         command == "move";
}

}  // namespace

std::string system::self_hex() const { return hex_of(self_id()); }

std::string system::port_of(std::uint32_t id) const {
  if (const auto* m = members_.find(id)) return std::to_string(m->port);
  return hex_of(id);
}

member_info system::self_member() const {
  member_info m;
  m.system_id = self_id();
  m.host = opts_.bind_host;
  m.port = opts_.port;
  m.peer_endpoint = peer_endpoint_;
  m.public_key = curve_.public_key;
  m.caps = opts_.caps;
  m.actors = static_cast<std::uint32_t>(directory_.size());
  m.leader = leader_;
  return m;
}

// ---------------------------------------------------------------- setup

status system::setup_convention() {
  auto keys = ipc::load_or_create_keypair(dir_ / "curve");
  if (!keys) return keys.err();
  curve_ = *keys;
  const fs::path trusted = opts_.home / "convention" / "trusted";
  // Systems that share a TROUPE_HOME trust one another: whoever can write it
  // runs them all. A system elsewhere is trusted by copying its key here.
  if (auto s = ipc::trust_key(trusted, "system-" + std::to_string(opts_.port), curve_.public_key); !s) return s;
  leader_ = opts_.leader == opts_.bind_host + ":" + std::to_string(opts_.port);
  try {
    // Every system listens for its peers: members to the leader, and to one
    // another for what goes between two members (a direct link, no relay).
    {
      // The ZAP handler must be bound before a CURVE server socket is.
      zap_ = std::make_unique<ipc::zap_authenticator>(
          zmq_, [trusted] { return ipc::read_trusted(trusted); },
          [](const std::string& peer, const std::string& reason) {
            log_line(TROUPE_LOG_WARN, {}, "refused a system connecting from " + peer + ": " + reason);
          });
      zap_watch_ = std::make_unique<ipc::socket_watcher>(io_, zap_->socket(), [this] { on_zap(); });
      peer_ = zmq::socket_t(zmq_, zmq::socket_type::router);
      ipc::make_curve_server(peer_, curve_);
      peer_.set(zmq::sockopt::linger, 0);
      peer_.set(zmq::sockopt::router_mandatory, 1);
      peer_.set(zmq::sockopt::router_handover, 1);  // a member that rejoins takes over its routing id
      peer_.bind("tcp://" + opts_.bind_host + ":0");
      peer_endpoint_ = peer_.get(zmq::sockopt::last_endpoint);
      peer_watch_ = std::make_unique<ipc::socket_watcher>(io_, peer_, [this] { on_peer(); });
    }
    if (leader_) {
      leader_id_ = self_id();
    } else {
      auto ep = system_endpoint(opts_.leader);
      if (!ep) return ep.err();
      discovery_ = zmq::socket_t(zmq_, zmq::socket_type::dealer);
      discovery_.set(zmq::sockopt::linger, 0);
      // No queue of requests while the leader is away: one answer per try.
      discovery_.set(zmq::sockopt::immediate, 1);
      discovery_.connect(*ep);
      discovery_watch_ = std::make_unique<ipc::socket_watcher>(io_, discovery_, [this] { on_discovery(); });
    }
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, std::string("cannot open the convention link: ") + e.what());
  }
  members_.upsert(self_member(), convention_clock::now());
  heartbeat_timer_ = std::make_unique<asio::steady_timer>(io_);
  return ok_v;
}

void system::heartbeat_tick() {
  heartbeat_timer_->expires_after(opts_.heartbeat);
  heartbeat_timer_->async_wait([this](const boost::system::error_code& e) {
    if (!e && !stopping_) heartbeat_tick();
  });
  const auto now = convention_clock::now();
  if (leader_) {
    members_.heard(self_id(), now, static_cast<std::uint32_t>(directory_.size()));
    for (auto id : members_.expire(now, opts_.member_timeout, self_id()))
      on_member_down(id, "stopped answering heartbeats (" + std::to_string(opts_.member_timeout.count()) + " ms)", true);
    broadcast("members", json{{"members", members_json()}});
    return;
  }
  if (joined_ && now - leader_heard_ > opts_.member_timeout) leader_lost();
  if (!joined_) return discover_leader();
  send_peer(leader_id_, "heartbeat", json{{"actors", directory_.size()}, {"capabilities", to_json(opts_.caps)}});
}

void system::discover_leader() {
  // The leader's peer socket has a port of its own, and its key: both come
  // from its public port, and the key must be one this system trusts.
  send_control(discovery_, "", "status", json{{"rid", "discover"}});
  discovery_watch_->kick();
}

void system::on_discovery() {
  auto parts = ipc::recv_multipart(discovery_);
  auto m = ipc::decode_control(parts, 0, opts_.max_json_depth);
  // The discovery port is not authenticated: anything may answer there.
  // Answers queued while the leader was away are stale once joined.
  if (!m || joined_ || m->command != "reply" || !m->body.contains("ok") || m->body["ok"] != true) return;
  // Anything but two strings: not a leader (a --leader naming a member, say).
  const auto& pj = m->body.contains("peer") ? m->body["peer"] : json();
  const auto& kj = m->body.contains("key") ? m->body["key"] : json();
  if (!pj.is_string() || !kj.is_string()) {
    if (!not_a_leader_logged_)
      log_line(TROUPE_LOG_WARN, {}, "the system at " + opts_.leader + " does not lead a convention; retrying");
    not_a_leader_logged_ = true;
    return;
  }
  not_a_leader_logged_ = false;
  const auto peer = pj.get<std::string>();
  const auto key = kj.get<std::string>();
  if (peer.empty() || key.empty()) return;
  const auto trusted = ipc::read_trusted(opts_.home / "convention" / "trusted");
  if (trusted.find(key) == nullptr) {
    if (key == untrusted_leader_key_) return;  // said once
    untrusted_leader_key_ = key;
    log_line(TROUPE_LOG_WARN, {}, "not joining the convention: the leader at " + opts_.leader + " has key " + key +
                                      ", which is not in " + (opts_.home / "convention" / "trusted").string());
    return;
  }
  // libzmq never retries a connection the leader refused: after a while
  // without a welcome the link is opened again.
  if (peer == leader_peer_ && uplink_ && convention_clock::now() - uplink_since_ < opts_.member_timeout)
    return send_join();
  try {
    if (uplink_watch_) uplink_watch_->stop();
    uplink_watch_.reset();
    uplink_ = zmq::socket_t(zmq_, zmq::socket_type::dealer);
    ipc::make_curve_client(uplink_, curve_, key);
    uplink_.set(zmq::sockopt::routing_id, "s" + self_hex());
    uplink_.set(zmq::sockopt::linger, 200);  // "leaving" must get out at shutdown
    uplink_.connect(peer);
    uplink_watch_ = std::make_unique<ipc::socket_watcher>(io_, uplink_, [this] { on_uplink(); });
    uplink_watch_->start();
    leader_peer_ = peer;
    uplink_since_ = convention_clock::now();
  } catch (const zmq::error_t& e) {
    log_line(TROUPE_LOG_WARN, {}, "cannot connect to the leader's peer socket " + peer + ": " + e.what());
    return;
  }
  send_join();
}

void system::send_join() {
  json hosted = json::array();
  for (const auto* rec : directory_.all())
    if (hosted_for_convention_.count(rec->addr) && rec->state != actor_state::failed)
      hosted.push_back(json{{"address", rec->addr.to_string()}, {"type", rec->type},
                            {"package_id", rec->package_id}, {"name", rec->name}});
  const json body{{"member", to_json(self_member())}, {"hosted", hosted}, {"from", self_hex()}, {"to", json()}};
  if (!send_frames(uplink_, "", "join", body, {}))
    log_line(TROUPE_LOG_WARN, {}, "join not sent: the link to the leader is full");
  uplink_watch_->kick();
}

void system::leader_lost() {
  joined_ = false;
  // Fetches it will not answer: the leader asks again once it is back.
  fetch_waiters_.clear();
  members_.mark_down(leader_id_);
  log_line(TROUPE_LOG_WARN, {}, "the convention leader at " + opts_.leader + " stopped answering; serving on, rejoining when it returns");
  // Requests forwarded through it will not be answered.
  for (auto it = peer_calls_.begin(); it != peer_calls_.end();) {
    answer_error(it->second.client, "the convention leader at " + opts_.leader + " is unreachable", errc::unavailable);
    it = peer_calls_.erase(it);
  }
}

// ---------------------------------------------------------------- links

void system::on_zap() { zap_->handle_pending(); }

void system::on_peer() {
  auto parts = ipc::recv_multipart(peer_);
  if (parts.size() < 2) return;
  const std::string identity = parts[0].to_string();
  std::string blob;
  auto m = decode_peer_message(parts, 1, blob, opts_.max_json_depth);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed message from system '" + identity + "': " + m.err().message);
    return;
  }
  const std::uint32_t from = id_of(json(identity.size() > 1 ? identity.substr(1) : std::string()));
  if (from == 0 || identity[0] != 's') {
    log_line(TROUPE_LOG_WARN, {}, "dropped a message from a peer with a malformed routing id");
    return;
  }
  // Relayed when it is for another member (one hop through the leader).
  if (const std::uint32_t to = id_of(m->body.value("to", json())); to != 0 && to != self_id()) {
    if (!send_frames(peer_, "s" + hex_of(to), m->command, m->body, blob))
      log_line(TROUPE_LOG_WARN, {}, "'" + m->command + "' from " + port_of(from) + " to " + port_of(to) +
                                        " not relayed: that system is not connected");
    peer_watch_->kick();
    return;
  }
  handle_peer_guarded(from, m->command, m->body, blob);
}

void system::on_uplink() {
  auto parts = ipc::recv_multipart(uplink_);
  if (parts.empty()) return;
  std::string blob;
  auto m = decode_peer_message(parts, 0, blob, opts_.max_json_depth);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed message from the leader: " + m.err().message);
    return;
  }
  leader_heard_ = convention_clock::now();
  handle_peer_guarded(id_of(m->body.value("from", json())), m->command, m->body, blob);
}

void system::handle_peer_guarded(std::uint32_t from, const std::string& command, const json& b,
                                 const std::string& blob) {
  // A field of the wrong JSON type anywhere below drops the message, never the system.
  try {
    handle_peer(from, command, b, blob);
  } catch (const json::exception& e) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed '" + command + "' from system " + port_of(from) + ": " + e.what());
  }
}

bool system::send_peer(std::uint32_t to, const std::string& command, json body, const std::string& blob) {
  body["from"] = self_hex();
  body["to"] = hex_of(to);
  if (to == self_id()) {
    asio::post(io_, [this, command, body = std::move(body), blob] { handle_peer_guarded(self_id(), command, body, blob); });
    return true;
  }
  bool sent = false;
  if (leader_) {
    sent = send_frames(peer_, "s" + hex_of(to), command, body, blob);
    peer_watch_->kick();
  } else {
    // To another member: straight there when the link is up, else through the leader.
    if (to != leader_id_)
      if (auto* link = direct_link(to)) sent = send_frames(*link, "", command, body, blob);
    if (!sent && uplink_ && joined_) {
      sent = send_frames(uplink_, "", command, body, blob);
      uplink_watch_->kick();
    }
  }
  return sent;
}

zmq::socket_t* system::direct_link(std::uint32_t to) {
  if (auto it = direct_.find(to); it != direct_.end()) return &it->second;
  const auto* m = members_.find(to);
  if (m == nullptr || m->state != member_state::up || m->leader || m->peer_endpoint.ends_with(":0")) return nullptr;
  try {
    zmq::socket_t s(zmq_, zmq::socket_type::dealer);
    ipc::make_curve_client(s, curve_, m->public_key);  // the key the (authenticated) leader listed
    s.set(zmq::sockopt::routing_id, "s" + self_hex());
    s.set(zmq::sockopt::linger, 0);
    // Nothing queued for a peer not (or no longer) connected: such a send
    // fails at once and goes through the leader instead.
    s.set(zmq::sockopt::immediate, 1);
    s.connect(m->peer_endpoint);
    return &direct_.emplace(to, std::move(s)).first->second;
  } catch (const zmq::error_t& e) {
    log_line(TROUPE_LOG_WARN, {}, "no direct link to system " + port_of(to) + ": " + e.what());
    return nullptr;
  }
}

void system::broadcast(const std::string& command, const json& body) {
  if (!leader_) return;
  for (const auto* m : members_.all())
    if (m->system_id != self_id() && m->state == member_state::up) send_peer(m->system_id, command, body);
}

json system::members_json() const {
  json out = json::array();
  const auto now = convention_clock::now();
  for (const auto* m : members_.all()) {
    json j = to_json(*m);
    j["last_heard_ms"] = m->system_id == self_id()
                             ? 0
                             : std::chrono::duration_cast<std::chrono::milliseconds>(now - m->last_heard).count();
    out.push_back(std::move(j));
  }
  return out;
}

// ---------------------------------------------------------------- peer messages

void system::handle_peer(std::uint32_t from, const std::string& command, const json& b, const std::string& blob) {
  if (command == "call") return on_peer_call(from, b);
  if (command == "result") return on_peer_result(b);
  if (command == "data") return on_peer_data(blob);
  // Anything else a member takes from its leader only (other members reach
  // it directly, but only with calls, results and data).
  if (!leader_ && from != leader_id_ && from != self_id() && command != "welcome") {
    log_line(TROUPE_LOG_WARN, {}, "dropped '" + command + "' from system " + port_of(from) + ", which does not lead");
    return;
  }
  // What the leader asks of a host (itself included).
  if (command == "create") return on_create_request(b);
  if (command == "package" || command == "fetch_failed") return on_package(b, blob);
  if (command == "evict") {
    const auto a = address::parse(b.value("address", std::string()));
    if (!a) return;
    if (auto l = locations_.find(*a); l != locations_.end()) l->second.ph = location::phase::moving;
    auto* rec = directory_.find(*a);
    if (rec == nullptr || rec->state == actor_state::failed) {
      if (rec != nullptr) directory_.remove(*a);
      hosted_for_convention_.erase(*a);
      creating_for_convention_.erase(*a);
      send_peer(leader_id_, "evicted", json{{"address", a->to_string()}});
      return;
    }
    if (rec->state != actor_state::stopping) send_exit(*rec, b.value("reason", std::string("moved")));
    return;
  }
  if (leader_) {
    if (command == "join") return on_member_join(from, b);
    if (members_.find(from) == nullptr || members_.find(from)->state == member_state::down) {
      // Not (or no longer) a member, for instance after the leader restarted;
      // not one that is leaving (its last reports come after "leaving").
      if (command == "heartbeat") send_peer(from, "rejoin", json::object());
      return;
    }
    if (command == "heartbeat") {
      members_.heard(from, convention_clock::now(), b.value("actors", 0u));
      if (!b.contains("capabilities")) return;
      auto caps = capabilities_from_json(b["capabilities"]);
      if (!caps) {
        log_line(TROUPE_LOG_WARN, {}, "system " + port_of(from) + " sent malformed capabilities: " + caps.err().message);
        return;
      }
      if (*caps != members_.find(from)->caps) {
        members_.set_caps(from, *caps);
        log_line(TROUPE_LOG_INFO, {}, "system " + port_of(from) + " now has capabilities " + to_json(*caps).dump());
        check_fit(from);
        place_pending();
        broadcast("members", json{{"members", members_json()}});
      }
      return;
    }
    if (command == "leaving") return on_member_down(from, "stopped");
    if (command == "created" || command == "create_failed" || command == "evicted" || command == "gone") {
      const auto a = address::parse(b.value("address", std::string()));
      if (!a) return;
      auto it = locations_.find(*a);
      if (it == locations_.end()) return;
      auto& l = it->second;
      // Only the system the table names may report on an actor (a copy left
      // on a system cut off for a while must not overwrite the live one).
      if (from != l.system || ((command == "created" || command == "create_failed") && l.ph != location::phase::moving)) {
        log_line(command == "created" ? TROUPE_LOG_WARN : TROUPE_LOG_INFO, *a,
                 "ignored '" + command + "' from system " + port_of(from) + ", which does not host it (any more)");
        if (command == "created" && from != l.system)
          send_peer(from, "evict", json{{"address", a->to_string()}, {"reason", "a copy runs elsewhere"}});
        return;
      }
      if (command == "created") {
        l.created = true;
        l.ph = location::phase::placed;
        l.system = from;
        l.reason = l.moves == 0 ? std::string() : l.cause;  // a moved actor shows why it moved
        l.target = 0;
        l.fresh_worker = false;
        broadcast("located", location_json(*a, l));
        flush_held_calls(*a);
        flush_held_records(*a);
        if (auto w = spawn_waiters_.find(*a); w != spawn_waiters_.end()) {
          for (auto& c : w->second) answer(c, json{{"address", a->to_string()}, {"system", port_of(from)}});
          spawn_waiters_.erase(w);
        }
      } else if (command == "create_failed") {
        const auto why = "system " + port_of(from) + " refused it: " + b.value("reason", std::string());
        log_line(TROUPE_LOG_WARN, *a, why);
        members_.add_load(from, -1);
        l.refused.insert(from);
        l.reason = why;
        place_convention_actor(*a);
      } else if (command == "evicted") {
        members_.add_load(from, -1);
        place_convention_actor(*a);
      } else {  // gone: stopped or failed there for good
        members_.add_load(from, -1);
        forget_location(*a);
      }
      return;
    }
    if (command == "fetch") return on_fetch(from, b);
    log_line(TROUPE_LOG_WARN, {}, "dropped unknown command '" + command + "' from system " + port_of(from));
    return;
  }
  if (command == "welcome" || command == "members") {
    if (command == "welcome") {
      joined_ = true;
      leader_id_ = from;
      log_line(TROUPE_LOG_INFO, {}, "joined the convention led by " + opts_.leader);
      locations_.clear();
      for (const auto& j : b.value("locations", json::array()))
        if (const auto a = address::parse(j.value("address", std::string()))) locations_[*a] = location_from_json(j);
      // Requests held across the leader's absence: on to where their actor is, or failed.
      std::vector<address> held;
      for (const auto& [a, _] : held_calls_) held.push_back(a);
      for (const auto& [a, _] : held_records_) held.push_back(a);
      for (auto a : held) {
        auto it = locations_.find(a);
        if (it == locations_.end()) {
          fail_held_calls(a, "no actor at " + a.to_string() + " (unknown to the convention's leader)");
          held_records_.erase(a);
        } else if (it->second.ph == location::phase::placed) {
          flush_held_calls(a);
          flush_held_records(a);
        }
      }
    }
    std::set<std::uint32_t> listed;
    const auto now = convention_clock::now();
    for (const auto& j : b.value("members", json::array())) {
      auto m = member_from_json(j);
      if (!m) continue;
      const std::uint32_t id = m->system_id;
      const bool down = m->state == member_state::down;
      listed.insert(id);
      members_.upsert(std::move(*m), now);
      if (down) members_.mark_down(id);
    }
    std::vector<std::uint32_t> gone;
    for (const auto* m : members_.all())
      if (!listed.count(m->system_id) && m->system_id != self_id()) gone.push_back(m->system_id);
    for (auto id : gone) members_.remove(id);
    // Links to members that left or went down (a new one is made on the next send).
    std::erase_if(direct_, [this](const auto& link) {
      const auto* m = members_.find(link.first);
      return m == nullptr || m->state != member_state::up;
    });
    // Connected ahead of need: the first message then finds the link up (and
    // members still reach each other if the leader goes away meanwhile).
    for (const auto* m : members_.all())
      if (m->system_id != self_id() && m->system_id != leader_id_) (void)direct_link(m->system_id);
    return;
  }
  if (command == "rejoin") {
    if (!stopping_) send_join();
    return;
  }
  if (command == "located") {
    const auto a = address::parse(b.value("address", std::string()));
    if (!a) return;
    const location l = location_from_json(b);
    locations_[*a] = l;
    reroute_calls(*a);
    if (l.ph == location::phase::placed) {
      flush_held_calls(*a);
      flush_held_records(*a);
    }
    return;
  }
  if (command == "forget") {
    const auto a = address::parse(b.value("address", std::string()));
    if (!a) return;
    locations_.erase(*a);
    fail_held_calls(*a, "no actor at " + a->to_string() + " (stopped)");
    drop_held_records(*a, "no actor at " + a->to_string() + " (stopped)");
    return;
  }
  if (command == "unloaded") {
    if (auto* p = packages_.find(b.value("package_id", std::string())); p != nullptr && p->phase == package_phase::loaded)
      begin_unload(p->id, "unloaded by the convention leader");
    return;
  }
  log_line(TROUPE_LOG_WARN, {}, "dropped unknown command '" + command + "' from the leader");
}

void system::on_member_join(std::uint32_t from, const json& b) {
  auto m = member_from_json(b.value("member", json::object()));
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "refused a join from " + hex_of(from) + ": " + m.err().message);
    return;
  }
  if (m->system_id != from) {
    log_line(TROUPE_LOG_WARN, {}, "refused a join: it says system " + hex_of(m->system_id) + " from " + hex_of(from));
    return;
  }
  m->leader = false;
  m->state = member_state::up;
  // A system restarted on the same address has a new id: the old entry,
  // down, would otherwise linger (and `move --to PORT` could pick it).
  std::vector<std::uint32_t> replaced;
  for (const auto* old : members_.all())
    if (old->system_id != from && old->host == m->host && old->port == m->port && old->state == member_state::down)
      replaced.push_back(old->system_id);
  for (auto id : replaced) members_.remove(id);
  const bool was_up = members_.find(from) != nullptr && members_.find(from)->state == member_state::up;
  members_.upsert(*m, convention_clock::now());
  log_line(TROUPE_LOG_INFO, {}, std::string(was_up ? "system rejoined: " : "system joined: ") + m->host + ":" +
                                    std::to_string(m->port) + " with " + to_json(m->caps).dump());
  // What it hosts is where it is (the leader may have restarted and lost track).
  for (const auto& h : b.value("hosted", json::array())) {
    const auto a = address::parse(h.value("address", std::string()));
    if (!a) continue;
    location l;
    l.system = from;
    l.created = true;
    l.type = h.value("type", std::string());
    l.package_id = h.value("package_id", std::string());
    l.name = h.value("name", std::string());
    set_location(*a, std::move(l));
  }
  json locs = json::array();
  for (const auto& [a, l] : locations_) locs.push_back(location_json(a, l));
  send_peer(from, "welcome", json{{"members", members_json()}, {"locations", locs}});
  broadcast("members", json{{"members", members_json()}});
  check_fit(from);
  place_pending();
}

void system::on_member_down(std::uint32_t id, const std::string& why, bool expired) {
  // Marked down already when it expired (membership::expire); only once
  // when it says it leaves.
  const auto* m = members_.find(id);
  if (m == nullptr || (!expired && m->state == member_state::down)) return;
  const std::string name = port_of(id);
  members_.mark_down(id);
  log_line(TROUPE_LOG_WARN, {}, "system " + name + " " + why + ": placing its actors elsewhere");
  for (auto& [a, l] : locations_)
    if (l.system == id && l.ph != location::phase::pending) {
      l.ph = location::phase::moving;
      l.reason = "system " + name + " " + why;
      l.cause = l.reason;
      l.refused.clear();
    }
  std::vector<address> moving;
  for (const auto& [a, l] : locations_)
    if (l.system == id && l.ph == location::phase::moving) moving.push_back(a);
  for (auto a : moving) place_convention_actor(a);
  // Requests it was to answer go again once their actor is placed.
  for (auto it = peer_calls_.begin(); it != peer_calls_.end();) {
    if (it->second.system != id) {
      ++it;
      continue;
    }
    auto pc = std::move(it->second);
    it = peer_calls_.erase(it);
    const auto target = pc.body.value("target", std::string());
    if (!route_remote(pc.client, pc.command, pc.body, target))
      answer_error(pc.client, "system " + name + " " + why + " before answering", errc::unavailable);
  }
  broadcast("members", json{{"members", members_json()}});
}

// ---------------------------------------------------------------- locations and placement

json system::location_json(address a, const location& l) const {
  return json{{"address", a.to_string()}, {"system", hex_of(l.system)}, {"port", port_of(l.system)},
              {"type", l.type}, {"package_id", l.package_id}, {"name", l.name},
              {"state", to_string(l.ph)}, {"reason", l.reason}, {"moves", l.moves}};
}

void system::set_location(address a, location l) {
  locations_[a] = std::move(l);
  broadcast("located", location_json(a, locations_[a]));
}

void system::forget_location(address a) {
  if (locations_.erase(a) == 0) return;
  broadcast("forget", json{{"address", a.to_string()}});
  fail_held_calls(a, "no actor at " + a.to_string() + " (stopped)");
  drop_held_records(a, "no actor at " + a.to_string() + " (stopped)");
}

const std::vector<manifests::requirement>* system::requirements_of(const location& l) const {
  const auto* p = packages_.find(l.package_id);
  if (p == nullptr) return nullptr;
  const auto* spec = p->m.find_actor(l.type);
  return spec ? &spec->requirements : nullptr;
}

void system::place_convention_actor(address a) {
  auto it = locations_.find(a);
  if (it == locations_.end()) return;
  auto& l = it->second;
  const auto* reqs = requirements_of(l);
  if (reqs == nullptr) {
    const std::string why = "package " + l.package_id.substr(0, 12) + " is no longer loaded on the leader";
    if (auto w = spawn_waiters_.find(a); w != spawn_waiters_.end()) {
      for (auto& c : w->second) answer_error(c, why, errc::not_found);
      spawn_waiters_.erase(w);
    }
    return forget_location(a);
  }
  result<std::uint32_t> chosen = make_error(errc::unavailable, "");
  if (l.target != 0) {
    // An operator's move: that system or none.
    membership only;
    if (const auto* m = members_.find(l.target)) only.upsert(*m, convention_clock::now());
    chosen = choose_system(only, l.target, *reqs, l.refused, l.type);
  } else {
    // A new actor prefers the system asked for it; a moved one goes to the least loaded.
    chosen = choose_system(members_, l.created ? 0 : l.system, *reqs, l.refused, l.type);
  }
  if (!chosen) {
    const std::string why = l.reason.empty() || l.refused.empty() ? chosen.err().message
                                                                   : l.reason + "; " + chosen.err().message;
    if (auto w = spawn_waiters_.find(a); w != spawn_waiters_.end() && !l.created) {
      // A spawn that cannot be placed fails with the unmet requirement.
      for (auto& c : w->second) answer_error(c, why, l.refused.empty() ? errc::unavailable : errc::refused);
      spawn_waiters_.erase(w);
      return forget_location(a);
    }
    if (auto w = spawn_waiters_.find(a); w != spawn_waiters_.end()) {
      // An operator's move that found no place: it is pending now.
      for (auto& c : w->second) answer_error(c, a.to_string() + " is pending: " + why, errc::unavailable);
      spawn_waiters_.erase(w);
    }
    l.ph = location::phase::pending;
    l.reason = why;
    log_line(TROUPE_LOG_WARN, a, "pending: " + why);
    broadcast("located", location_json(a, l));
    return;
  }
  if (l.created) ++l.moves;
  l.ph = location::phase::moving;
  l.system = *chosen;
  members_.add_load(*chosen, 1);
  broadcast("located", location_json(a, l));
  if (!send_peer(*chosen, "create", json{{"address", a.to_string()}, {"type", l.type}, {"package_id", l.package_id},
                                         {"name", l.name}, {"fresh_worker", l.fresh_worker}, {"moves", l.moves}})) {
    // Not connected (yet, or any more): the next fitting system.
    members_.add_load(*chosen, -1);
    l.refused.insert(*chosen);
    l.reason = "system " + port_of(*chosen) + " is not connected";
    place_convention_actor(a);
  }
}

void system::place_pending() {
  std::vector<address> pending;
  for (const auto& [a, l] : locations_)
    if (l.ph == location::phase::pending) pending.push_back(a);
  for (auto a : pending) {
    locations_[a].refused.clear();
    place_convention_actor(a);
  }
}

void system::check_fit(std::uint32_t id) {
  const auto* m = members_.find(id);
  if (m == nullptr) return;
  std::vector<std::pair<address, std::string>> misfits;
  for (const auto& [a, l] : locations_) {
    if (l.system != id || l.ph != location::phase::placed) continue;
    const auto* reqs = requirements_of(l);
    if (reqs == nullptr) continue;
    if (auto why = manifests::unmet(m->caps, *reqs))
      misfits.emplace_back(a, "system " + std::to_string(m->port) + " no longer fits: " + *why);
  }
  for (auto& [a, why] : misfits) begin_move(a, why, 0, false);
}

void system::begin_move(address a, const std::string& reason, std::uint32_t target, bool fresh_worker) {
  auto& l = locations_[a];
  log_line(TROUPE_LOG_INFO, a, "moving: " + reason);
  l.ph = location::phase::moving;
  l.reason = reason;
  l.cause = reason;
  l.target = target;
  l.fresh_worker = fresh_worker;
  l.refused.clear();
  broadcast("located", location_json(a, l));
  // Its host unreachable: as good as gone (it is marked down soon anyway).
  if (!send_peer(l.system, "evict", json{{"address", a.to_string()}, {"reason", reason}})) place_convention_actor(a);
}

// ---------------------------------------------------------------- hosting for the convention

void system::reroute_calls(address a) {
  auto it = locations_.find(a);
  if (it == locations_.end()) return;
  std::vector<std::uint64_t> stale;
  for (const auto& [id, pc] : peer_calls_) {
    // Only requests to the actor's host; a move or spawn went to the leader.
    if (pc.command != "ask" && pc.command != "tell" && pc.command != "kill") continue;
    address target;
    if (find_location(pc.body.value("target", std::string()), target) == nullptr || target != a) continue;
    // Only from a host that is gone: a live one answers what it received
    // (before its exit request), and sending it again would run it twice.
    const auto* host = members_.find(pc.system);
    const bool host_gone = host == nullptr || host->state == member_state::down;
    if (host_gone && (it->second.ph != location::phase::placed || it->second.system != pc.system)) stale.push_back(id);
  }
  // Sent to where it was: it follows its actor (held while it moves).
  for (auto id : stale) {
    auto pc = std::move(peer_calls_.at(id));
    peer_calls_.erase(id);
    pc.timer->cancel();
    if (!route_remote(pc.client, pc.command, pc.body, pc.body.value("target", std::string())))
      answer_error(pc.client, "no actor at " + a.to_string(), errc::not_found);
  }
}

void system::on_create_request(const json& b) {
  // Checked whole now: the body waits (for a fetch, a load) and is read later.
  const bool well_formed = b.contains("address") && b["address"].is_string() &&
                           address::parse(b["address"].get<std::string>()) && b.contains("type") &&
                           b["type"].is_string() && b.contains("package_id") && b["package_id"].is_string() &&
                           (!b.contains("name") || b["name"].is_string()) &&
                           (!b.contains("fresh_worker") || b["fresh_worker"].is_boolean()) &&
                           (!b.contains("moves") || b["moves"].is_number_unsigned());
  if (!well_formed) {
    log_line(TROUPE_LOG_WARN, {}, "dropped a malformed 'create': " + b.dump().substr(0, 200));
    return;
  }
  if (stopping_) {
    send_peer(leader_id_, "create_failed",
              json{{"address", b.value("address", std::string())}, {"reason", "the system is shutting down"}});
    return;
  }
  const auto id = b.value("package_id", std::string());
  if (auto* p = packages_.find(id); p != nullptr && p->phase == package_phase::loaded) return create_requested(b);
  if (auto* p = packages_.find(id); p != nullptr && p->phase == package_phase::loading) {
    load_waiters_[id].push_back([this, b](const result<json>& r) {
      if (r) return create_requested(b);
      send_peer(leader_id_, "create_failed", json{{"address", b.value("address", std::string())}, {"reason", r.err().message}});
    });
    return;
  }
  if (leader_) {
    send_peer(self_id(), "create_failed",
              json{{"address", b.value("address", std::string())}, {"reason", "package " + id.substr(0, 12) + " is not loaded"}});
    return;
  }
  auto& waiting = fetch_waiters_[id];
  waiting.push_back(b);
  if (waiting.size() == 1) {
    log_line(TROUPE_LOG_INFO, {}, "fetching package " + id.substr(0, 12) + " from the leader");
    send_peer(leader_id_, "fetch", json{{"package_id", id}});
  }
}

void system::create_requested(const json& b) {
  const auto a = address::parse(b.value("address", std::string()));
  if (!a) return;
  const auto type = b.value("type", std::string());
  auto fail = [&](const std::string& why) {
    send_peer(leader_id_, "create_failed", json{{"address", a->to_string()}, {"reason", why}});
  };
  if (auto* old = directory_.find(*a)) {
    if (old->state != actor_state::failed) return fail("an actor already runs at " + a->to_string() + " here");
    directory_.remove(*a);
  }
  if (auto s = place(*a, type, b.value("package_id", std::string()), b.value("name", std::string()), {},
                     b.value("fresh_worker", false));
      !s)
    return fail(s.err().message);
  if (auto* rec = directory_.find(*a)) rec->restarts = b.value("moves", 0u);
  hosted_for_convention_.insert(*a);
  creating_for_convention_.insert(*a);
}

void system::report_created(address a) {
  // Only the creation the leader asked for; a restart here changes nothing there.
  if (creating_for_convention_.erase(a)) send_peer(leader_id_, "created", json{{"address", a.to_string()}});
}

void system::report_gone(address a, bool failed, const std::string& reason) {
  creating_for_convention_.erase(a);
  if (hosted_for_convention_.erase(a) == 0) return;
  auto it = locations_.find(a);
  const bool moving = it != locations_.end() && it->second.ph == location::phase::moving;
  // Moving on: a failed record left here would answer for the new copy.
  if (moving && directory_.find(a) != nullptr) directory_.remove(a);
  send_peer(leader_id_, moving ? "evicted" : "gone",
            json{{"address", a.to_string()}, {"failed", failed}, {"reason", reason}});
}

void system::on_fetch(std::uint32_t from, const json& b) {
  const auto id = b.value("package_id", std::string());
  const auto* p = packages_.find(id);
  std::string why;
  std::string bytes;
  if (p == nullptr || p->phase == package_phase::unloading) why = "package " + id.substr(0, 12) + " is not loaded on the leader";
  else if (p->signer.empty()) why = "package " + p->m.package + " " + p->m.version.text + " was loaded unsigned from a directory: it is not distributed";
  else {
    std::ifstream in(p->source, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    bytes = s.str();
    if (!in || bytes.empty()) why = "cannot read " + p->source;
  }
  if (!why.empty()) return (void)send_peer(from, "fetch_failed", json{{"package_id", id}, {"reason", why}});
  log_line(TROUPE_LOG_INFO, {}, "sending package " + p->m.package + " " + p->m.version.text + " to system " + port_of(from));
  send_peer(from, "package", json{{"package_id", id}}, bytes);
}

void system::on_package(const json& b, const std::string& blob) {
  const auto id = b.value("package_id", std::string());
  auto it = fetch_waiters_.find(id);
  if (it == fetch_waiters_.end()) return;
  auto creates = std::move(it->second);
  fetch_waiters_.erase(it);
  auto fail_all = [this, creates](const std::string& why) {
    log_line(TROUPE_LOG_WARN, {}, why);
    for (const auto& c : creates)
      send_peer(leader_id_, "create_failed", json{{"address", c.value("address", std::string())}, {"reason", why}});
  };
  if (blob.empty()) return fail_all("cannot fetch package " + id.substr(0, 12) + ": " + b.value("reason", std::string("no archive")));
  if (manifests::sha256_hex(blob) != id) return fail_all("the leader sent an archive that is not package " + id.substr(0, 12));
  // Verified here with this system's own keys, like any load.
  std::error_code ec;
  fs::create_directories(dir_ / "fetched", ec);
  const fs::path file = dir_ / "fetched" / (id + ".tpkg");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
    if (!out) return fail_all("cannot write " + file.string());
  }
  fetched_packages_.insert(id);
  load_archive(file, [this, creates, file, fail_all](const result<json>& r) mutable {
    std::error_code ec2;
    fs::remove(file, ec2);
    if (!r) return fail_all("refused package from the leader: " + r.err().message);
    for (const auto& c : creates) create_requested(c);
  });
}

// ---------------------------------------------------------------- data between systems

std::uint32_t system::remote_host_of(address a) const {
  if (auto it = locations_.find(a); it != locations_.end()) return it->second.system;
  // An actor the convention did not place (created by another actor) lives
  // where its address was allocated.
  if (a.system() != self_id())
    if (const auto* m = members_.find(a.system()); m != nullptr && m->state == member_state::up) return a.system();
  return 0;
}

void system::relay_record(const ipc::record_view& r) {
  if (directory_.find(r.to) != nullptr) return deliver_relayed(r);
  const auto it = locations_.find(r.to);
  if (it != locations_.end() && it->second.ph != location::phase::placed) {
    // Moving or pending: kept (bounded) until it runs again.
    auto& q = held_records_[r.to];
    if (q.size() >= opts_.held_limit)
      return bounce_relayed(r, "dead letter: " + r.to.to_string() + " is " + to_string(it->second.ph) + " and " +
                                   std::to_string(q.size()) + " messages already wait for it");
    q.push_back(relayed_record{r.kind, r.to, r.from, r.correlation, std::string(r.type), std::string(r.payload)});
    return;
  }
  const std::uint32_t to = remote_host_of(r.to);
  if (to == 0 || to == self_id()) return bounce_relayed(r, "no actor at " + r.to.to_string());
  std::string frame;
  ipc::begin_batch(frame);
  ipc::append_record(frame, ipc::record_view{r.kind, 0, r.to, r.from, r.correlation, 0, r.type, r.payload});
  if (!send_peer(to, "data", json::object(), frame))
    bounce_relayed(r, "system " + port_of(to) + " hosting " + r.to.to_string() + " is unreachable");
}

void system::deliver_relayed(const ipc::record_view& r) {
  auto* rec = directory_.find(r.to);
  if (rec == nullptr) {
    if (remote_host_of(r.to) != 0 && remote_host_of(r.to) != self_id()) return relay_record(r);  // moved on
    return bounce_relayed(r, "no actor at " + r.to.to_string() + " (stopped)");
  }
  if (rec->state == actor_state::failed) return bounce_relayed(r, r.to.to_string() + " has failed: " + rec->last_reason);
  auto w = workers_.find(rec->worker);
  if (rec->state != actor_state::running || w == workers_.end() || w->second.st != worker_proc::state::ready) {
    if (held_records_[r.to].size() >= opts_.held_limit)
      return bounce_relayed(r, "dead letter: " + r.to.to_string() + " is not running and " +
                                   std::to_string(opts_.held_limit) + " messages already wait for it");
    held_records_[r.to].push_back(
        relayed_record{r.kind, r.to, r.from, r.correlation, std::string(r.type), std::string(r.payload)});
    return;
  }
  link_.send(link_.connect(w->second.inbox), ipc::record_view{r.kind, 0, r.to, r.from, r.correlation, 0, r.type, r.payload});
}

void system::bounce_relayed(const ipc::record_view& r, const std::string& reason) {
  // As a worker does: an ask fails, a tell comes back as a dead letter; a
  // lost answer is dropped (answering it could loop).
  if (r.kind != ipc::record_kind::ask && r.kind != ipc::record_kind::tell) {
    log_line(TROUPE_LOG_WARN, r.to, "dropped a relayed message: " + reason);
    return;
  }
  const auto back = r.kind == ipc::record_kind::ask ? ipc::record_kind::ask_failed : ipc::record_kind::dead_letter;
  const ipc::record_view b{back, 0, r.from, r.to, r.correlation, 0, r.type, reason};
  if (r.from == gateway_address()) return;  // a client's: its ask is answered by the gateway's own timer
  if (directory_.find(r.from) != nullptr) return deliver_relayed(b);
  relay_record(b);
}

void system::flush_held_records(address a) {
  auto it = held_records_.find(a);
  if (it == held_records_.end()) return;
  auto records = std::move(it->second);
  held_records_.erase(it);
  for (const auto& h : records)
    relay_record(ipc::record_view{h.kind, 0, h.to, h.from, h.correlation, 0, h.type, h.payload});
}

void system::drop_held_records(address a, const std::string& reason) {
  auto it = held_records_.find(a);
  if (it == held_records_.end()) return;
  auto records = std::move(it->second);
  held_records_.erase(it);
  for (const auto& h : records)
    bounce_relayed(ipc::record_view{h.kind, 0, h.to, h.from, h.correlation, 0, h.type, h.payload}, reason);
}

void system::on_peer_data(const std::string& blob) {
  auto s = ipc::decode_batch(blob, [this](const ipc::record_view& r) {
    switch (r.kind) {
      case ipc::record_kind::tell:
      case ipc::record_kind::ask:
      case ipc::record_kind::reply:
      case ipc::record_kind::ask_failed:
      case ipc::record_kind::dead_letter:
      case ipc::record_kind::poison:
        return deliver_relayed(r);
      default:
        // Exit requests and notices are the local system's alone.
        log_line(TROUPE_LOG_WARN, {}, "dropped a relayed record of kind " + std::to_string(int(r.kind)));
    }
  });
  if (!s) log_line(TROUPE_LOG_WARN, {}, "dropped a malformed data frame from another system: " + s.err().message);
}

// ---------------------------------------------------------------- client requests

location* system::find_location(const std::string& target, address& out) {
  if (auto parsed = address::parse(target)) {
    auto it = locations_.find(*parsed);
    if (it == locations_.end()) return nullptr;
    out = *parsed;
    return &it->second;
  }
  if (target.empty()) return nullptr;
  for (auto& [addr, loc] : locations_)
    if (loc.name == target) {
      out = addr;
      return &loc;
    }
  return nullptr;
}

bool system::route_remote(const client_ref& c, const std::string& command, const json& b, const std::string& target) {
  address a;
  location* l = find_location(target, a);
  if (l == nullptr) return false;
  const auto timeout = std::chrono::milliseconds(b.value("timeout_ms", default_ask_timeout.count()));
  if (l->ph == location::phase::placed) {
    if (l->system == self_id()) return false;  // here, or not yet known here: the local answer
    forward_call(c, l->system, command, b, timeout);
    return true;
  }
  if (command == "kill" && l->ph == location::phase::pending) {
    // Nothing runs: the leader forgets it (and its held requests fail).
    if (!leader_) {
      forward_call(c, leader_id_, "kill", b, timeout);
      return true;
    }
    forget_location(a);
    answer(c, json{{"address", a.to_string()}});
    return true;
  }
  // Moving or pending: held until it is placed, within a bound.
  auto& q = held_calls_[a];
  if (q.size() >= opts_.held_limit) {
    answer_error(c, "dead letter: " + a.to_string() + " is " + to_string(l->ph) + " (" + l->reason + ") and " +
                        std::to_string(q.size()) + " requests already wait for it",
                 errc::unavailable);
    return true;
  }
  held_call h{c, command, b, next_call_++, nullptr};
  if (command == "tell") {
    // A tell is accepted now and delivered once its actor runs again.
    answer(c, json{{"address", a.to_string()}, {"held", true}});
    h.client = client_ref{};
  } else {
    // An ask (or kill) waits no longer than its own timeout.
    h.timer = std::make_shared<asio::steady_timer>(io_, timeout);
    h.timer->async_wait([this, a, id = h.id, timeout](const boost::system::error_code& e) {
      if (e) return;
      auto it = held_calls_.find(a);
      if (it == held_calls_.end()) return;
      auto& calls = it->second;
      auto h2 = std::find_if(calls.begin(), calls.end(), [id](const held_call& x) { return x.id == id; });
      if (h2 == calls.end()) return;
      auto l2 = locations_.find(a);
      answer_error(h2->client,
                   h2->command + " to " + a.to_string() + " timed out after " + std::to_string(timeout.count()) +
                       " ms: it is " + (l2 == locations_.end() ? std::string("gone") : std::string(to_string(l2->second.ph)) +
                                                                                         " (" + l2->second.reason + ")"),
                   errc::timeout);
      calls.erase(h2);
    });
  }
  q.push_back(std::move(h));
  return true;
}

void system::forward_call(const client_ref& c, std::uint32_t to, const std::string& command, const json& b,
                          std::chrono::milliseconds timeout) {
  const std::uint64_t id = next_call_++;
  peer_call pc{c, to, command, b, std::make_unique<asio::steady_timer>(io_, timeout + std::chrono::seconds(2))};
  pc.timer->async_wait([this, id](const boost::system::error_code& e) {
    if (e) return;
    auto it = peer_calls_.find(id);
    if (it == peer_calls_.end()) return;
    answer_error(it->second.client, "system " + port_of(it->second.system) + " did not answer '" + it->second.command + "'",
                 errc::timeout);
    peer_calls_.erase(it);
  });
  if (!send_peer(to, "call", json{{"call", id}, {"command", command}, {"body", b}})) {
    pc.timer->cancel();
    // Its system is gone: held until the leader places its actor again (or
    // the request times out).
    address a;
    if (auto* l = find_location(b.value("target", std::string()), a)) {
      l->ph = location::phase::moving;
      if (l->reason.empty()) l->reason = "system " + port_of(to) + " is unreachable";
      if (route_remote(c, command, b, b.value("target", std::string()))) return;
    }
    return answer_error(c, "cannot reach system " + port_of(to) +
                               (leader_ ? ": it is not connected" : ": the convention leader at " + opts_.leader + " is unreachable"),
                        errc::unavailable);
  }
  peer_calls_.emplace(id, std::move(pc));
}

void system::on_peer_call(std::uint32_t from, const json& b) {
  const auto call = b.value("call", std::uint64_t{0});
  const auto command = b.value("command", std::string());
  client_ref c{"", json(call), from, call};
  if (!forwardable(command) || !b.contains("body") || !b["body"].is_object())
    return answer_error(c, "'" + command + "' cannot be forwarded between systems", errc::invalid_argument);
  try {
    dispatch(c, command, b["body"]);
  } catch (const json::exception& e) {
    answer_error(c, "malformed '" + command + "' request: " + e.what(), errc::invalid_argument);
  }
}

void system::on_peer_result(const json& b) {
  auto it = peer_calls_.find(b.value("call", std::uint64_t{0}));
  if (it == peer_calls_.end()) return;
  if (!b.contains("reply") || !b["reply"].is_object()) return;  // malformed: its timer answers
  auto pc = std::move(it->second);
  peer_calls_.erase(it);
  pc.timer->cancel();
  json reply = b["reply"];
  // Moved away while the request travelled: it follows its actor (only
  // then: a handler's failure also answers not_found, and must not loop).
  address moved;
  const auto* l = find_location(pc.body.value("target", std::string()), moved);
  if (!reply.value("ok", false) && reply.value("code", std::string()) == "not_found" && l != nullptr &&
      (l->ph != location::phase::placed || l->system != pc.system) &&
      route_remote(pc.client, pc.command, pc.body, pc.body.value("target", std::string())))
    return;
  reply["rid"] = pc.client.rid;
  deliver_reply(pc.client, std::move(reply));
}

void system::deliver_reply(const client_ref& c, json body) {
  if (c.via == 0 && c.identity.empty()) return;  // a held tell: its client had its answer
  if (c.via == 0) {
    public_->send_control(c.identity, "reply", body);
    return;
  }
  send_peer(c.via, "result", json{{"call", c.call}, {"reply", std::move(body)}});
}

void system::flush_held_calls(address a) {
  auto it = held_calls_.find(a);
  if (it == held_calls_.end()) return;
  auto calls = std::move(it->second);
  held_calls_.erase(it);
  for (auto& h : calls) {
    if (h.timer) h.timer->cancel();
    try {
      dispatch(h.client, h.command, h.body);
    } catch (const json::exception& e) {
      answer_error(h.client, "malformed '" + h.command + "' request: " + e.what(), errc::invalid_argument);
    }
  }
}

void system::fail_held_calls(address a, const std::string& reason) {
  auto it = held_calls_.find(a);
  if (it == held_calls_.end()) return;
  auto calls = std::move(it->second);
  held_calls_.erase(it);
  for (auto& h : calls) {
    if (h.timer) h.timer->cancel();
    answer_error(h.client, reason, errc::not_found);
  }
}

void system::cmd_systems(const client_ref& c) {
  members_.heard(self_id(), convention_clock::now(), static_cast<std::uint32_t>(directory_.size()));
  answer(c, json{{"leader", opts_.leader}, {"self", self_hex()}, {"is_leader", leader_},
                 {"joined", leader_ || joined_}, {"systems", members_json()}});
}

void system::cmd_chgcap(const client_ref& c, const json& b) {
  const auto op = b.value("op", std::string());
  const auto name = b.value("name", std::string());
  const auto trimmed = name.substr(0, name.find_last_not_of(' ') + 1);
  if (name.empty() || name.find(',') != std::string::npos || name.find('=') != std::string::npos ||
      trimmed != name || name.front() == ' ')
    return answer_error(c, "chgcap: '" + name + "' is not a capability name", errc::invalid_argument);
  if (std::any_of(name.begin(), name.end(), [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; }))
    return answer_error(c, "chgcap: a capability name has no control characters", errc::invalid_argument);
  auto caps = opts_.caps;
  if (op == "add") caps[name] = true;
  else if (op == "set") {
    const auto v = parse_capability_value(b.value("value", std::string()));
    if (const auto* d = std::get_if<double>(&v); d != nullptr && !std::isfinite(*d))
      return answer_error(c, "chgcap: " + name + " must be a finite number", errc::invalid_argument);
    caps[name] = v;
  }
  else if (op == "remove") {
    if (caps.erase(name) == 0) return answer_error(c, "this system has no capability '" + name + "'", errc::not_found);
  } else {
    return answer_error(c, "chgcap: op must be add, remove or set", errc::invalid_argument);
  }
  opts_.caps = std::move(caps);
  members_.set_caps(self_id(), opts_.caps);
  log_line(TROUPE_LOG_INFO, {}, "capabilities now " + to_json(opts_.caps).dump());
  if (leader_) {
    check_fit(self_id());
    place_pending();
    broadcast("members", json{{"members", members_json()}});
  } else if (joined_) {
    send_peer(leader_id_, "heartbeat", json{{"actors", directory_.size()}, {"capabilities", to_json(opts_.caps)}});
  }
  answer(c, json{{"capabilities", to_json(opts_.caps)}});
}

void system::cmd_move(const client_ref& c, const json& b) {
  if (!leader_) {
    if (!joined_) return answer_error(c, "the convention leader at " + opts_.leader + " is unreachable", errc::unavailable);
    return forward_call(c, leader_id_, "move", b, std::chrono::seconds(10));
  }
  const auto target = b.value("target", std::string());
  address a;
  if (auto parsed = address::parse(target)) a = *parsed;
  else
    for (const auto& [addr, l] : locations_)
      if (l.name == target) a = addr;
  auto it = locations_.find(a);
  if (!a || it == locations_.end()) return answer_error(c, "unknown address or name '" + target + "'", errc::not_found);
  if (it->second.ph != location::phase::placed)
    return answer_error(c, a.to_string() + " is " + to_string(it->second.ph) + ": " + it->second.reason, errc::unavailable);
  std::uint32_t dest = it->second.system;
  if (b.contains("port") && !b["port"].is_null()) {
    if (!b["port"].is_number_unsigned() || b["port"].get<std::uint64_t>() == 0 || b["port"].get<std::uint64_t>() > 65535)
      return answer_error(c, "move: port must be an integer from 1 to 65535", errc::invalid_argument);
    const auto* m = members_.find_port(b["port"].get<std::uint16_t>());
    if (m == nullptr) return answer_error(c, "no system on port " + b["port"].dump() + " in the convention", errc::not_found);
    if (m->state != member_state::up) return answer_error(c, "system " + std::to_string(m->port) + " is down", errc::unavailable);
    dest = m->system_id;
  }
  const bool fresh = b.value("new_worker", false);
  if (dest == it->second.system && !fresh)
    return answer_error(c, a.to_string() + " already runs on " + port_of(dest) + " (add --new-worker to move it to a new worker there)",
                        errc::invalid_argument);
  if (const auto* reqs = requirements_of(it->second))
    if (auto why = manifests::unmet(members_.find(dest)->caps, *reqs))
      return answer_error(c, "system " + port_of(dest) + " cannot host " + it->second.type + ": " + *why, errc::refused);
  spawn_waiters_[a].push_back(c);
  begin_move(a, "moved by the operator", dest, fresh);
}

void system::cmd_convention_spawn(const client_ref& c, const json& b, const std::string& type,
                                  const std::string& package_id) {
  const auto name = b.value("name", std::string());
  if (!name.empty()) {
    if (auto s = directory_.check_name(name); !s) return answer_error(c, s.err().message, s.err().code);
    for (const auto& [_, l] : locations_)
      if (l.name == name) return answer_error(c, "global name '" + name + "' is taken", errc::invalid_argument);
  }
  location l;
  l.type = type;
  l.package_id = package_id;
  l.name = name;
  // Local first: the system the client asked.
  const bool wait = b.value("wait", false);  // read before anything is recorded
  const std::uint32_t origin = id_of(b.value("origin", json()));
  l.system = origin != 0 ? origin : self_id();
  l.ph = location::phase::moving;
  const address a = directory_.allocate();
  locations_[a] = std::move(l);
  if (!wait) {
    spawn_waiters_[a].push_back(c);  // answered once created, or with why no system can take it
    return place_convention_actor(a);
  }
  place_convention_actor(a);
  if (auto it = locations_.find(a); it != locations_.end() && it->second.ph == location::phase::pending)
    return answer(c, json{{"address", a.to_string()}, {"state", "pending"}, {"reason", it->second.reason}});
  spawn_waiters_[a].push_back(c);
}

}  // namespace troupe::supervisor
