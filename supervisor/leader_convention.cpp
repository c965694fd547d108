// The built-in convention: discovery of the leader, joins, heartbeats, loss
// of a member or of the leader, and how the leader tells its decisions. See
// leader_convention.hpp.
#include "supervisor/leader_convention.hpp"

#include "base/hex.hpp"
#include "ipc/commands.hpp"
#include "ipc/log.hpp"
#include "supervisor/capabilities.hpp"

#include <algorithm>

#include <troupe/client.hpp>

namespace troupe::supervisor {

namespace cmd = ipc::cmd;
using ipc::log_line;

// ---------------------------------------------------------------- setup

status leader_convention::setup() {
  restore_capabilities();
  p_.state.leads = ctx_.opts.leader == ctx_.where();
  p_.link.name_of = [this](std::uint32_t id) { return port_of(id); };
  p_.link.on_uplink_message = [this] { leader_heard_ = convention_clock::now(); };
  if (p_.state.leads) {
    p_.state.leader = ctx_.id;
  } else {
    auto ep = system_endpoint(ctx_.opts.leader);
    if (!ep) return ep.err();
    leader_endpoint_ = *ep;
  }
  p_.members.upsert(self_member(), convention_clock::now());
  heartbeat_timer_ = std::make_unique<boost::asio::steady_timer>(ctx_.io);
  // A loop that has not turned for this long is hung, not busy with a big message.
  const auto stall_limit = std::max(std::chrono::milliseconds(10000), 10 * ctx_.opts.member_timeout);
  beacon_ = std::make_unique<beacon>(ctx_.zmq, ctx_.id, p_.link.keys(), ctx_.opts.heartbeat, stall_limit);
  if (p_.state.leads)
    if (auto s = beacon_->listen(ctx_.opts.bind_host); !s) return s;
  register_handlers();
  p_.packages.on_unloading = [this](const std::string& id) {
    broadcast(cmd::peer::unloaded, json{{"package_id", id}});
  };
  return ok_v;
}

void leader_convention::start() {
  beacon_->start();
  heartbeat_tick();
  if (p_.state.leads) {
    p_.packages.reload_after_crash();
    restore_actors();
  }
}

void leader_convention::stop() {
  if (heartbeat_timer_) heartbeat_timer_->cancel();
  // The leader places this system's actors elsewhere at once, not after a timeout.
  if (!p_.state.leads && p_.state.joined) p_.link.send(p_.state.leader, cmd::peer::leaving, json::object());
  for (auto& [key, link] : discovery_) link->watch->stop();
  beacon_->stop();
}

void leader_convention::describe(json& status) const {
  status["leader"] = ctx_.opts.leader;
  status["is_leader"] = p_.state.leads;
  status["joined"] = p_.state.leads || p_.state.joined;
  // What a member needs to join: the peer socket and the key it must trust.
  status["peer"] = p_.state.leads ? json(p_.link.endpoint()) : json();
  status["beacon"] = p_.state.leads ? json(beacon_->endpoint()) : json();
  status["key"] = p_.link.public_key();
}

// ---------------------------------------------------------------- commands between systems

void leader_convention::on_host(std::string_view command, peer_link::handler h) {
  p_.link.handle(command, [this, command, h](std::uint32_t from, const json& b, const std::string& blob) {
    // What a host takes from its leader only (the leader from itself).
    if (!p_.state.leads && from != p_.state.leader && from != ctx_.id) {
      log_line(TROUPE_LOG_WARN, {},
               "dropped '" + std::string(command) + "' from system " + port_of(from) + ", which does not lead");
      return;
    }
    h(from, b, blob);
  });
}

void leader_convention::on_member(std::string_view command, peer_link::handler h) {
  p_.link.handle(command, [this, command, h](std::uint32_t from, const json& b, const std::string& blob) {
    if (p_.state.leads) {
      // Members lead nothing: from an up member this is a mistake, from
      // anyone else not worth a line.
      if (!gone(from))
        log_line(TROUPE_LOG_WARN, {},
                 "dropped unknown command '" + std::string(command) + "' from system " + port_of(from));
      return;
    }
    if (from != p_.state.leader && from != ctx_.id && command != cmd::peer::welcome) {
      log_line(TROUPE_LOG_WARN, {},
               "dropped '" + std::string(command) + "' from system " + port_of(from) + ", which does not lead");
      return;
    }
    h(from, b, blob);
  });
}

void leader_convention::on_leader(std::string_view command, peer_link::handler h) {
  p_.link.handle(command, [this, command, h](std::uint32_t from, const json& b, const std::string& blob) {
    if (!p_.state.leads) {
      if (from != p_.state.leader && from != ctx_.id)
        log_line(TROUPE_LOG_WARN, {},
                 "dropped '" + std::string(command) + "' from system " + port_of(from) + ", which does not lead");
      else
        log_line(TROUPE_LOG_WARN, {}, "dropped unknown command '" + std::string(command) + "' from the leader");
      return;
    }
    if (command != cmd::peer::join && gone(from)) {
      // Not (or no longer) a member, for instance after the leader restarted;
      // not one that is leaving (its last reports come after "leaving").
      if (command == cmd::peer::heartbeat) p_.link.send(from, cmd::peer::rejoin, json::object());
      return;
    }
    h(from, b, blob);
  });
}

void leader_convention::register_handlers() {
  using blob_t = const std::string&;
  register_shared([this](std::string_view c, peer_link::handler h) { on_host(c, std::move(h)); },
                  [this](std::string_view c, peer_link::handler h) { on_leader(c, std::move(h)); });
  // What members tell the leader.
  on_leader(cmd::peer::join, [this](std::uint32_t from, const json& b, blob_t) { on_member_join(from, b); });
  on_leader(cmd::peer::heartbeat, [this](std::uint32_t from, const json& b, blob_t) { on_heartbeat(from, b); });
  on_leader(cmd::peer::leaving, [this](std::uint32_t from, const json&, blob_t) { on_member_down(from, "stopped"); });
  // What the leader tells its members.
  on_member(cmd::peer::welcome,
            [this](std::uint32_t from, const json& b, blob_t) { on_welcome_or_members(from, b, true); });
  on_member(cmd::peer::members,
            [this](std::uint32_t from, const json& b, blob_t) { on_welcome_or_members(from, b, false); });
  on_member(cmd::peer::rejoin, [this](std::uint32_t, const json&, blob_t) {
    if (!ctx_.stopping) send_join();
  });
  on_member(cmd::peer::located, [this](std::uint32_t, const json& b, blob_t) {
    const auto a = address::parse(b.value("address", std::string()));
    if (!a) return;
    const location l = location_from_json(b);
    locations_[*a] = l;
    p_.calls.reroute(*a);
    if (l.ph == location::phase::placed) release_held(*a);
  });
  on_member(cmd::peer::forget_location, [this](std::uint32_t, const json& b, blob_t) {
    const auto a = address::parse(b.value("address", std::string()));
    if (!a) return;
    locations_.erase(*a);
    fail_held(*a, "no actor at " + a->to_string() + " (stopped)");
  });
  on_member(cmd::peer::unloaded, [this](std::uint32_t, const json& b, blob_t) {
    if (auto* p = p_.package_table.find(b.value("package_id", std::string()));
        p != nullptr && p->phase == package_phase::loaded)
      p_.packages.begin_unload(p->id, "unloaded by the convention leader");
  });
}

// ---------------------------------------------------------------- how the leader tells its decisions

void leader_convention::located(address a, const location& l) {
  if (desired_ != nullptr) desired_->set(a, desired_actor(a, l));
  broadcast(cmd::peer::located, location_json(a, l));
}

void leader_convention::forgotten(address a) {
  if (desired_ != nullptr) desired_->set(a, std::nullopt);
  broadcast(cmd::peer::forget_location, json{{"address", a.to_string()}});
}

// ---------------------------------------------------------------- the desired state (a crash)

void leader_convention::keep_desired_state(desired_state& state, std::vector<saved_actor> recovered) {
  if (!p_.state.leads) return;
  desired_ = &state;
  recovered_ = std::move(recovered);
  // A snapshot is the table as it is, and the actors of the earlier run
  // not yet placed again (restore_actors takes them).
  state.source = [this](const desired_state::actor_visitor& visit) {
    for (const auto& s : recovered_)
      if (!locations_.count(s.addr)) visit(s);  // an address twice would make the file unreadable
    for (const auto& [a, l] : locations_)
      if (auto s = desired_actor(a, l)) visit(*s);
  };
}

void leader_convention::when_durable(std::function<void()> f) {
  if (desired_ == nullptr) return f();
  desired_->when_durable(std::move(f));
}

std::optional<saved_actor> leader_convention::desired_actor(address a, const location& l) const {
  const bool pending = l.ph == location::phase::pending;
  // Ran here (placed, or moving within this system): spawns not yet
  // answered are left out, so a spawn is kept exactly when it is answered.
  if (!pending && !(l.system == ctx_.id && l.created)) return std::nullopt;
  saved_actor s;
  s.addr = a;
  s.type = l.type;
  s.package_id = l.package_id;
  s.name = l.name;
  s.restarts = l.moves;
  s.pending = pending;
  if (const auto* p = p_.package_table.find(l.package_id)) {
    s.group = p->m.package;
    s.version = p->m.version.text;
    if (const auto* spec = p->m.find_actor(l.type)) s.restart = base::to_string(spec->restart.policy);
  }
  return s;
}

void leader_convention::restore_actors() {
  auto saved = std::exchange(recovered_, {});
  if (saved.empty()) return;
  log_line(TROUPE_LOG_WARN, {},
           "the previous run on this port ended without stopping: re-creating its " + std::to_string(saved.size()) +
               " actors at their addresses");
  for (const auto& s : saved) {
    location l;
    l.system = ctx_.id;
    l.type = s.type;
    l.package_id = s.package_id;
    share_texts(l);
    l.name = s.name;
    l.created = true;
    l.moves = s.restarts + (s.pending ? 0 : 1);  // a re-creation counts as a restart
    if (s.pending) {
      // Pending it was: placed when a system fits, once its package is back.
      l.ph = location::phase::pending;
      l.reason = "waiting for a system that fits (kept across a crash of the leader)";
      set_location(s.addr, std::move(l));
      const address a = s.addr;
      (void)p_.packages.when_loaded(s.package_id, [this, a](const result<json>& r) {
        if (auto it = locations_.find(a); r && it != locations_.end() && it->second.ph == location::phase::pending)
          place(a);
      });
      continue;
    }
    l.ph = location::phase::moving;
    l.reason = l.cause = "re-created after its system crashed";
    l.epoch = next_epoch();
    set_location(s.addr, l);
    // Requests for it wait until it runs; its package's load (just begun)
    // is waited for by the create; a package that cannot be loaded again
    // makes the create fail, and the actor is forgotten (logged).
    send_create(ctx_.id, s.addr, l, [](bool) {});
  }
}

void leader_convention::send_create(std::uint32_t to, address a, const location& l, std::function<void(bool)> then) {
  then(p_.link.send(to, cmd::peer::create,
                    json{{"address", a.to_string()},
                         {"type", l.type},
                         {"package_id", l.package_id},
                         {"name", l.name},
                         {"fresh_worker", l.fresh_worker},
                         {"moves", l.moves},
                         {"epoch", l.epoch}}));
}

void leader_convention::capabilities_changed() {
  if (p_.state.leads) {
    check_fit(ctx_.id);
    place_pending();
    broadcast(cmd::peer::members, json{{"members", members_json()}});
  } else if (p_.state.joined) {
    p_.link.send(p_.state.leader, cmd::peer::heartbeat,
                 json{{"actors", p_.dir.size()}, {"capabilities", to_json(ctx_.opts.caps)}});
  }
}

void leader_convention::describe_systems(json& out) const {
  out["mode"] = "leader";
  out["leader"] = ctx_.opts.leader;
  out["limits"] =
      "built-in leader: a member cut off from it keeps serving its actors while they are placed elsewhere "
      "(two instances while a partition lasts; the stale one stops when it rejoins); without the leader "
      "nothing is placed again";
}

void leader_convention::broadcast(std::string_view command, const json& body) {
  if (!p_.state.leads) return;
  for (const auto* m : p_.members.all())
    if (m->system_id != ctx_.id && m->state == member_state::up) p_.link.send(m->system_id, command, body);
}

// ---------------------------------------------------------------- heartbeats and discovery

void leader_convention::heartbeat_tick() {
  heartbeat_timer_->expires_after(ctx_.opts.heartbeat);
  heartbeat_timer_->async_wait([this](const boost::system::error_code& e) {
    if (!e && !ctx_.stopping) heartbeat_tick();
  });
  const auto now = convention_clock::now();
  beacon_->loop_turned();
  if (p_.state.leads) {
    p_.members.heard(ctx_.id, now, static_cast<std::uint32_t>(p_.dir.size()));
    // What the beacon heard while this loop was busy counts.
    for (const auto* m : p_.members.all())
      if (auto t = beacon_->heard(m->system_id);
          t && m->state == member_state::up && m->system_id != ctx_.id && *t > m->last_heard)
        p_.members.heard(m->system_id, *t, m->actors);
    for (auto id : p_.members.expire(now, ctx_.opts.member_timeout, ctx_.id))
      on_member_down(id, "stopped answering heartbeats (" + std::to_string(ctx_.opts.member_timeout.count()) + " ms)",
                     true);
    broadcast(cmd::peer::members, json{{"members", members_json()}});
    return;
  }
  if (auto t = beacon_->leader_heard(); t && *t > leader_heard_) leader_heard_ = *t;
  if (p_.state.joined && now - leader_heard_ > ctx_.opts.member_timeout) leader_lost();
  if (!p_.state.joined) return discover_leader();
  p_.link.send(p_.state.leader, cmd::peer::heartbeat,
               json{{"actors", p_.dir.size()}, {"capabilities", to_json(ctx_.opts.caps)}});
}

void leader_convention::discover_leader() {
  // The leader's peer socket has a port of its own: it comes from its public
  // port, a CurveZMQ server with the same key as its peer socket. That key is
  // one this system trusts, or it would not join; which one is not known, so
  // each is tried (only the leader's completes a handshake, and its public
  // port admits the systems it trusts to ask for status).
  constexpr std::size_t max_candidates = 64;
  const auto trusted = ipc::read_trusted(p_.link.trusted_dir());
  const auto now = convention_clock::now();
  if (discovery_since_ == convention_clock::time_point{}) discovery_since_ = now;
  for (auto it = discovery_.begin(); it != discovery_.end();)
    it = trusted.name_by_key.count(it->first) ? std::next(it) : discovery_.erase(it);
  for (const auto& [key, name] : trusted.name_by_key) {
    if (key == p_.link.public_key() || discovery_.count(key) || discovery_.size() >= max_candidates) continue;
    auto link = std::make_unique<discovery_link>();
    try {
      link->socket = zmq::socket_t(ctx_.zmq, zmq::socket_type::dealer);
      link->socket.set(zmq::sockopt::linger, 0);
      // No queue of requests while the leader is away (or the key is not
      // the leader's): one answer per try.
      link->socket.set(zmq::sockopt::immediate, 1);
      link->socket.set(zmq::sockopt::reconnect_ivl, 200);
      link->socket.set(zmq::sockopt::reconnect_ivl_max, 2000);  // wrong keys fail at every handshake
      ipc::make_curve_client(link->socket, p_.link.keys(), key);
      link->socket.connect(leader_endpoint_);
    } catch (const zmq::error_t& e) {
      log_line(TROUPE_LOG_WARN, {}, std::string("cannot open a discovery link: ") + e.what());
      continue;
    }
    link->watch =
        std::make_unique<ipc::socket_watcher>(ctx_.io, link->socket, [this, key = key] { on_discovery(key); });
    link->watch->start();
    discovery_.emplace(key, std::move(link));
  }
  for (auto& [key, link] : discovery_) {
    ipc::send_control(link->socket, "", cmd::client::status, json{{"rid", "discover"}});
    link->watch->kick();
  }
  if (discovery_.empty() && !no_leader_logged_) {
    no_leader_logged_ = true;
    log_line(TROUPE_LOG_WARN, {},
             "not joining the convention: the leader at " + ctx_.opts.leader +
                 " cannot be reached: " + p_.link.trusted_dir().string() +
                 " holds no key but this system's own (copy the leader's " + "curve/curve.pub there); still trying");
  }
  if (!no_leader_logged_ && now - discovery_since_ > std::chrono::seconds(5)) {
    no_leader_logged_ = true;
    log_line(TROUPE_LOG_WARN, {},
             "no answer yet from the convention leader at " + ctx_.opts.leader +
                 " (is it running, and is its curve.pub in " + p_.link.trusted_dir().string() + "?); still trying");
  }
}

void leader_convention::on_discovery(const std::string& candidate) {
  auto it = discovery_.find(candidate);
  if (it == discovery_.end()) return;
  auto frames = ipc::recv_multipart(it->second->socket);
  auto m = ipc::decode_control(frames, 0, ctx_.opts.max_json_depth);
  // Answers queued while the leader was away are stale once joined.
  if (!m || p_.state.joined || m->command != cmd::reply || !m->body.contains("ok") || m->body["ok"] != true) return;
  // Anything but two strings: not a leader (a --leader naming a member, say).
  const auto& pj = m->body.contains("peer") ? m->body["peer"] : json();
  const auto& kj = m->body.contains("key") ? m->body["key"] : json();
  if (!pj.is_string() || !kj.is_string()) {
    if (!not_a_leader_logged_)
      log_line(TROUPE_LOG_WARN, {}, "the system at " + ctx_.opts.leader + " does not lead a convention; retrying");
    not_a_leader_logged_ = true;
    return;
  }
  not_a_leader_logged_ = false;
  const auto peer = pj.get<std::string>();
  const auto key = kj.get<std::string>();
  if (peer.empty() || key.empty() || key != candidate) return;
  const auto trusted = ipc::read_trusted(p_.link.trusted_dir());
  if (trusted.find(key) == nullptr) {
    if (key == untrusted_leader_key_) return;  // said once
    untrusted_leader_key_ = key;
    log_line(TROUPE_LOG_WARN, {},
             "not joining the convention: the leader at " + ctx_.opts.leader + " has key " + key +
                 ", which is not in " + p_.link.trusted_dir().string());
    return;
  }
  // libzmq never retries a connection the leader refused: after a while
  // without a welcome the link is opened again.
  if (peer == leader_peer_ && p_.link.has_uplink() &&
      convention_clock::now() - uplink_since_ < ctx_.opts.member_timeout)
    return send_join();
  if (auto s = p_.link.connect_uplink(peer, key); !s) {
    log_line(TROUPE_LOG_WARN, {}, s.err().message);
    return;
  }
  leader_peer_ = peer;
  uplink_since_ = convention_clock::now();
  discovery_since_ = {};  // a later loss of the leader is timed afresh
  no_leader_logged_ = false;
  // Its beacon, where it has one: heartbeats that no data delays.
  if (const auto& bj = m->body.contains("beacon") ? m->body["beacon"] : json(); bj.is_string())
    beacon_->beat_to(bj.get<std::string>(), key);
  send_join();
}

void leader_convention::send_join() {
  json hosted = json::array();
  for (const auto* rec : p_.dir.all())
    if (auto h = hosted_.find(rec->addr); h != hosted_.end() && rec->state != actor_state::failed)
      hosted.push_back(json{{"address", rec->addr.to_string()},
                            {"type", rec->type},
                            {"package_id", rec->package_id},
                            {"name", rec->name},
                            {"epoch", h->second}});
  const json body{
      {"member", to_json(self_member())}, {"hosted", hosted}, {"from", base::hex32(ctx_.id)}, {"to", json()}};
  if (!p_.link.send_uplink(cmd::peer::join, body))
    log_line(TROUPE_LOG_WARN, {}, "join not sent: the link to the leader is full");
}

void leader_convention::leader_lost() {
  p_.state.joined = false;
  // The creates waiting for a fetch are kept: the welcome says which the
  // leader still waits for (on_welcome_or_members).
  p_.members.mark_down(p_.state.leader);
  log_line(
      TROUPE_LOG_WARN, {},
      "the convention leader at " + ctx_.opts.leader + " stopped answering; serving on, rejoining when it returns");
  // Requests forwarded through it will not be answered.
  p_.calls.system_lost(p_.state.leader, "stopped answering");
  note_system(event_kind::system_lost, p_.state.leader, "the convention leader stopped answering");
}

// ---------------------------------------------------------------- membership

void leader_convention::on_member_join(std::uint32_t from, const json& b) {
  auto m = member_from_json(b.value("member", json::object()));
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "refused a join from " + base::hex32(from) + ": " + m.err().message);
    return;
  }
  if (m->system_id != from) {
    log_line(TROUPE_LOG_WARN, {},
             "refused a join: it says system " + base::hex32(m->system_id) + " from " + base::hex32(from));
    return;
  }
  m->leader = false;
  m->state = member_state::up;
  // A system restarted on the same address has a new id: the old entry,
  // down, would otherwise linger (and `move --to PORT` could pick it).
  std::vector<std::uint32_t> replaced;
  for (const auto* old : p_.members.all())
    if (old->system_id != from && old->host == m->host && old->port == m->port && old->state == member_state::down)
      replaced.push_back(old->system_id);
  for (auto id : replaced) p_.members.remove(id);
  const bool was_up = !gone(from);
  p_.members.upsert(*m, convention_clock::now());
  log_line(TROUPE_LOG_INFO, {},
           std::string(was_up ? "system rejoined: " : "system joined: ") + m->host + ":" + std::to_string(m->port) +
               " with " + to_json(m->caps).dump());
  note_system(event_kind::system_joined, from, was_up ? "rejoined" : "joined");
  // What it hosts is where it is, unless its actors were placed elsewhere
  // meanwhile (it was declared lost): those instances are stale, and it
  // stops them before it serves them (the welcome names them). What the
  // leader does not know (it restarted and lost track) is taken as it is.
  json stale = json::array();
  for (const auto& h : b.value("hosted", json::array())) {
    const auto a = address::parse(h.value("address", std::string()));
    if (!a) continue;
    const auto epoch = h.value("epoch", std::uint64_t{0});
    if (auto known = locations_.find(*a); known != locations_.end()) {
      auto& l = known->second;
      if (l.system != from || (l.epoch != 0 && epoch != l.epoch)) {
        log_line(TROUPE_LOG_WARN, *a,
                 "system " + std::to_string(m->port) + " still runs an instance placed elsewhere since: it stops it");
        stale.push_back(a->to_string());
      } else if (l.ph == location::phase::pending) {
        // It went pending when this system was lost (nothing else fitted)
        // and runs here still, the same placement: running again, here.
        // Placed anew instead, it would be refused here (it runs already)
        // and stay pending, or start a second time on another system.
        log_line(TROUPE_LOG_INFO, *a, "runs again on system " + std::to_string(m->port) + ", which came back with it");
        l.ph = location::phase::placed;
        l.created = true;
        l.reason = l.moves == 0 ? base::shared_string() : l.cause;
        l.target = 0;
        l.fresh_worker = false;
        l.refused.clear();
        located(*a, l);
        retry_moves(*a);
        release_held(*a);
      }
      continue;
    }
    location l;
    l.system = from;
    l.created = true;
    l.type = h.value("type", std::string());
    l.package_id = h.value("package_id", std::string());
    share_texts(l);
    l.name = h.value("name", std::string());
    l.epoch = epoch;
    epoch_ = std::max(epoch_, epoch);
    set_location(*a, std::move(l));
  }
  json locs = json::array();
  for (const auto& [a, l] : locations_) locs.push_back(location_json(a, l));
  p_.link.send(from, cmd::peer::welcome, json{{"members", members_json()}, {"locations", locs}, {"stale", stale}});
  broadcast(cmd::peer::members, json{{"members", members_json()}});
  check_fit(from);
  place_pending();
}

void leader_convention::on_heartbeat(std::uint32_t from, const json& b) {
  p_.members.heard(from, convention_clock::now(), b.value("actors", 0u));
  if (!b.contains("capabilities")) return;
  auto caps = capabilities_from_json(b["capabilities"]);
  if (!caps) {
    log_line(TROUPE_LOG_WARN, {}, "system " + port_of(from) + " sent malformed capabilities: " + caps.err().message);
    return;
  }
  if (*caps != p_.members.find(from)->caps) {
    p_.members.set_caps(from, *caps);
    log_line(TROUPE_LOG_INFO, {}, "system " + port_of(from) + " now has capabilities " + to_json(*caps).dump());
    check_fit(from);
    place_pending();
    broadcast(cmd::peer::members, json{{"members", members_json()}});
  }
}

void leader_convention::on_member_down(std::uint32_t id, const std::string& why, bool expired) {
  // Marked down already when it expired (membership::expire); only once
  // when it says it leaves.
  const auto* m = p_.members.find(id);
  if (m == nullptr || (!expired && m->state == member_state::down)) return;
  const std::string name = port_of(id);
  p_.members.mark_down(id);
  log_line(TROUPE_LOG_WARN, {}, "system " + name + " " + why + ": placing its actors elsewhere");
  system_lost(id, why);
  broadcast(cmd::peer::members, json{{"members", members_json()}});
}

void leader_convention::on_welcome_or_members(std::uint32_t from, const json& b, bool welcome) {
  if (welcome) {
    p_.state.joined = true;
    p_.state.leader = from;
    log_line(TROUPE_LOG_INFO, {}, "joined the convention led by " + ctx_.opts.leader);
    note_system(event_kind::system_joined, ctx_.id, "joined the convention led by " + ctx_.opts.leader);
    locations_.clear();
    for (const auto& j : b.value("locations", json::array())) {
      const auto a = address::parse(j.value("address", std::string()));
      if (!a) continue;
      locations_[*a] = location_from_json(j);
    }
    // Instances here that run elsewhere too since this system was lost: stopped first.
    std::vector<address> stale;
    for (const auto& t : b.value("stale", json::array()))
      if (const auto a = address::parse(t.is_string() ? t.get<std::string>() : std::string())) stale.push_back(*a);
    stop_stale(stale);
    // Creates that waited for a fetch while the leader was away (nothing
    // asks for them again): those its table still waits for here, the same
    // placement moving to this system, fetch again; the others (placed
    // elsewhere since, or unknown to a restarted leader) are dropped.
    for (auto it = fetch_waiters_.begin(); it != fetch_waiters_.end();) {
      auto& creates = it->second;
      std::erase_if(creates, [&](const json& c) {
        const auto a = address::parse(c.value("address", std::string()));
        const auto l = a ? locations_.find(*a) : locations_.end();
        return l == locations_.end() || l->second.ph != location::phase::moving || l->second.system != ctx_.id ||
               l->second.epoch != c.value("epoch", std::uint64_t{0});
      });
      if (creates.empty()) {
        it = fetch_waiters_.erase(it);
        continue;
      }
      log_line(TROUPE_LOG_INFO, {}, "fetching package " + it->first.substr(0, 12) + " from the leader again");
      p_.link.send(fetch_source(it->first), cmd::peer::fetch, json{{"package_id", it->first}});
      ++it;
    }
    // Requests held across the leader's absence: on to where their actor is, or failed.
    std::vector<address> held = p_.calls.held_addresses();
    for (auto a : p_.relay.held_addresses()) held.push_back(a);
    for (auto a : held) {
      auto it = locations_.find(a);
      if (it == locations_.end()) {
        // Records held for an actor starting here stay; the others bounce,
        // as the requests fail (an ask comes back failed, a tell a dead letter).
        const std::string why = "no actor at " + a.to_string() + " (unknown to the convention's leader)";
        p_.calls.fail_held(a, why);
        if (p_.dir.find(a) == nullptr) p_.relay.drop_held(a, why);
      } else if (it->second.ph == location::phase::placed) {
        release_held(a);
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
    p_.members.upsert(std::move(*m), now);
    if (down) p_.members.mark_down(id);
  }
  std::vector<std::uint32_t> dropped;
  for (const auto* m : p_.members.all())
    if (!listed.count(m->system_id) && m->system_id != ctx_.id) dropped.push_back(m->system_id);
  for (auto id : dropped) p_.members.remove(id);
  // Links to members that left or went down (a new one is made on the next send).
  p_.link.prune_direct();
  // Connected ahead of need: the first message then finds the link up (and
  // members still reach each other if the leader goes away meanwhile).
  for (const auto* m : p_.members.all())
    if (m->system_id != ctx_.id && m->system_id != p_.state.leader) p_.link.prepare_direct(m->system_id);
}

}  // namespace troupe::supervisor
