// What both kinds of convention share: the table of locations, placement,
// moves, hosting for the convention, package fetches and the client commands.
// See placement_convention.hpp.
#include "supervisor/placement_convention.hpp"

#include "base/files.hpp"
#include "base/hex.hpp"
#include "ipc/commands.hpp"
#include "ipc/log.hpp"
#include "manifests/sha256.hpp"
#include "supervisor/capabilities.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace troupe::supervisor {

namespace fs = std::filesystem;
namespace cmd = ipc::cmd;
using ipc::log_line;

const char* to_string(location::phase p) {
  switch (p) {
    case location::phase::placed:
      return "running";
    case location::phase::moving:
      return "moving";
    case location::phase::pending:
      return "pending";
  }
  return "?";
}

void placement_convention::share_texts(location& l) const {
  if (const auto* p = p_.package_table.find(l.package_id)) {
    l.package_id = p->id;
    l.type = p->type_ref(l.type);
  }
}

location placement_convention::location_from_json(const json& j) const {
  location l;
  const auto& system = j.contains("system") ? j["system"] : json();
  l.system = system.is_string() ? base::parse_hex32(system.get<std::string>()) : 0;
  l.type = j.value("type", std::string());
  l.package_id = j.value("package_id", std::string());
  l.name = j.value("name", std::string());
  const auto st = j.value("state", std::string());
  l.ph = st == "pending"  ? location::phase::pending
         : st == "moving" ? location::phase::moving
                          : location::phase::placed;
  l.reason = j.value("reason", std::string());
  l.moves = j.value("moves", 0u);
  l.epoch = j.value("epoch", std::uint64_t{0});
  share_texts(l);
  return l;
}

std::string placement_convention::port_of(std::uint32_t id) const {
  if (const auto* m = p_.members.find(id)) return std::to_string(m->port);
  return base::hex32(id);
}

void placement_convention::note_system(event_kind kind, std::uint32_t id, const std::string& reason) {
  event e;
  e.kind = kind;
  if (const auto* m = p_.members.find(id)) e.port = m->port;
  if (id == ctx_.id) e.port = ctx_.opts.port;
  e.reason = reason;
  ctx_.note(std::move(e));
}

void placement_convention::note_leader(std::uint32_t id, const std::string& reason) {
  if (id == noted_leader_) return;
  noted_leader_ = id;
  event e;
  e.kind = event_kind::leader_changed;
  if (const auto* m = p_.members.find(id)) e.port = m->port;
  if (id == ctx_.id) e.port = ctx_.opts.port;
  e.reason = reason;
  ctx_.note(std::move(e));
}

bool placement_convention::gone(std::uint32_t system) const {
  const auto* m = p_.members.find(system);
  return m == nullptr || m->state == member_state::down;
}

member_info placement_convention::self_member() const {
  member_info m;
  m.system_id = ctx_.id;
  m.host = ctx_.opts.bind_host;
  m.port = ctx_.opts.port;
  m.peer_endpoint = p_.link.endpoint();
  m.public_key = p_.link.public_key();
  m.caps = ctx_.opts.caps;
  m.actors = static_cast<std::uint32_t>(p_.dir.size());
  m.leader = p_.state.leads;
  return m;
}

json placement_convention::members_json() const {
  json out = json::array();
  const auto now = convention_clock::now();
  for (const auto* m : p_.members.all()) {
    json j = to_json(*m);
    j["leader"] = m->system_id == p_.state.leader;
    j["last_heard_ms"] = m->system_id == ctx_.id || (p_.state.direct && m->state == member_state::up)
                             ? 0  // on etcd, an up member's lease holds: heard as of now
                             : std::chrono::duration_cast<std::chrono::milliseconds>(now - m->last_heard).count();
    out.push_back(std::move(j));
  }
  return out;
}

void placement_convention::register_shared(
    const std::function<void(std::string_view, peer_link::handler)>& host_side,
    const std::function<void(std::string_view, peer_link::handler)>& leader_side) {
  using blob_t = const std::string&;
  // What the leader asks of a host (itself included).
  host_side(cmd::peer::create, [this](std::uint32_t, const json& b, blob_t) { on_create_request(b); });
  host_side(cmd::peer::package, [this](std::uint32_t, const json& b, blob_t blob) { on_package(b, blob); });
  host_side(cmd::peer::fetch_failed, [this](std::uint32_t, const json& b, blob_t blob) { on_package(b, blob); });
  host_side(cmd::peer::evict, [this](std::uint32_t, const json& b, blob_t) { evict(b); });
  // What hosts tell the leader.
  for (auto report : {cmd::peer::created, cmd::peer::create_failed, cmd::peer::evicted, cmd::peer::gone})
    leader_side(report, [this, report](std::uint32_t from, const json& b, blob_t) { on_report(from, report, b); });
  leader_side(cmd::peer::fetch, [this](std::uint32_t from, const json& b, blob_t) { on_fetch(from, b); });
  // Client commands the convention answers.
  p_.port.handle(cmd::client::spawn, [this](const client_ref& c, const json& b) { cmd_spawn(c, b); });
  p_.port.handle(cmd::client::systems, [this](const client_ref& c, const json&) { cmd_systems(c); });
  p_.port.handle(cmd::client::chgcap, [this](const client_ref& c, const json& b) { cmd_chgcap(c, b); });
  p_.port.handle(cmd::client::move, [this](const client_ref& c, const json& b) { cmd_move(c, b); });
}

// ---------------------------------------------------------------- the table

json placement_convention::location_json(address a, const location& l) const {
  return json{{"address", a.to_string()},   {"system", base::hex32(l.system)},
              {"port", port_of(l.system)},  {"type", l.type},
              {"package_id", l.package_id}, {"name", l.name},
              {"state", to_string(l.ph)},   {"reason", l.reason},
              {"moves", l.moves},           {"epoch", l.epoch}};
}

void placement_convention::set_location(address a, location l) {
  locations_[a] = std::move(l);
  located(a, locations_[a]);
}

void placement_convention::retry_moves(address a) {
  if (!deferred_moves_.count(a)) return;
  boost::asio::post(ctx_.io, [this, a] {
    auto it = deferred_moves_.find(a);
    if (it == deferred_moves_.end()) return;
    auto moves = std::move(it->second);
    deferred_moves_.erase(it);
    for (auto& [c, b] : moves) cmd_move(c, b);  // moving again: deferred again
  });
}

void placement_convention::forget_location(address a) {
  retry_moves(a);  // answered "unknown address"
  if (locations_.erase(a) == 0) return;
  forgotten(a);
  fail_held(a, "no actor at " + a.to_string() + " (stopped)");
}

void placement_convention::release_held(address a) {
  p_.calls.release_held(a);
  p_.relay.release_held(a);
}

void placement_convention::fail_held(address a, const std::string& reason) {
  p_.calls.fail_held(a, reason);
  p_.relay.drop_held(a, reason);
}

void placement_convention::answer_waiters(address a, const std::function<void(const client_ref&)>& f) {
  auto w = spawn_waiters_.find(a);
  if (w == spawn_waiters_.end()) return;
  auto waiters = std::move(w->second);
  spawn_waiters_.erase(w);
  for (auto& c : waiters) f(c);
}

location* placement_convention::find(const std::string& target, address& out) {
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

const location* placement_convention::at(address a) const {
  auto it = locations_.find(a);
  return it == locations_.end() ? nullptr : &it->second;
}

std::uint32_t placement_convention::host_of(address a) const {
  if (auto it = locations_.find(a); it != locations_.end()) return it->second.system;
  // An actor the convention did not place (created by another actor) lives
  // where its address was allocated.
  if (a.system() != ctx_.id)
    if (const auto* m = p_.members.find(a.system()); m != nullptr && m->state == member_state::up) return a.system();
  return 0;
}

bool placement_convention::leaving(address a) const {
  const auto* l = at(a);
  return l != nullptr && l->ph != location::phase::placed;
}

bool placement_convention::placed_elsewhere(address a) const {
  const auto* l = at(a);
  return l != nullptr && l->ph == location::phase::placed && l->system != ctx_.id && hosted_.count(a) == 0;
}

void placement_convention::list_elsewhere(json& out, const directory& here) const {
  for (const auto& [a, l] : locations_) {
    if (here.find(a) != nullptr) continue;
    const auto* pkg = p_.package_table.find(l.package_id);
    const auto* m = p_.members.find(l.system);
    out.push_back(json{{"address", a.to_string()},
                       {"name", l.name.empty() ? json() : json(l.name)},
                       {"type", l.type},
                       {"package", pkg ? json(pkg->m.package) : json()},
                       {"version", pkg ? json(pkg->m.version.text) : json()},
                       {"package_id", l.package_id},
                       {"system", m ? json(m->host + ":" + std::to_string(m->port)) : json()},
                       {"worker_pid", json()},
                       {"state", to_string(l.ph)},
                       {"restarts", l.moves},
                       {"last_reason", l.reason.empty() ? json() : json(l.reason)}});
  }
}

// ---------------------------------------------------------------- placement (the leader)

const std::vector<manifests::requirement>* placement_convention::requirements_of(const location& l) const {
  const auto* p = p_.package_table.find(l.package_id);
  if (p == nullptr) return nullptr;
  const auto* spec = p->m.find_actor(l.type);
  return spec ? &spec->requirements : nullptr;
}

void placement_convention::place(address a) {
  auto it = locations_.find(a);
  if (it == locations_.end()) return;
  auto& l = it->second;
  const auto* reqs = requirements_of(l);
  if (reqs == nullptr) {
    if (!package_gone(l.package_id)) {
      // Not loaded here yet (a new leader loading its convention's packages):
      // pending until it is.
      l.ph = location::phase::pending;
      l.reason = "package " + l.package_id.substr(0, 12) + " is not loaded on the leader yet";
      located(a, l);
      retry_moves(a);
      return;
    }
    const std::string why = "package " + l.package_id.substr(0, 12) + " is no longer loaded on the leader";
    answer_waiters(a, [&](const client_ref& c) { p_.port.answer_error(c, why, errc::not_found); });
    return forget_location(a);
  }
  result<std::uint32_t> chosen = make_error(errc::unavailable, "");
  if (l.target != 0) {
    // An operator's move: that system or none.
    membership only;
    if (const auto* m = p_.members.find(l.target)) only.upsert(*m, convention_clock::now());
    chosen = choose_system(only, l.target, *reqs, l.refused, l.type);
  } else {
    // A new actor prefers the system asked for it; a moved one goes to the least loaded.
    chosen = choose_system(p_.members, l.created ? 0 : l.system, *reqs, l.refused, l.type);
  }
  if (!chosen) {
    const std::string why =
        l.reason.empty() || l.refused.empty() ? chosen.err().message : l.reason + "; " + chosen.err().message;
    if (spawn_waiters_.count(a) && !l.created) {
      // A spawn that cannot be placed fails with the unmet requirement.
      const errc code = l.refused.empty() ? errc::unavailable : errc::refused;
      answer_waiters(a, [&](const client_ref& c) { p_.port.answer_error(c, why, code); });
      return forget_location(a);
    }
    // An operator's move that found no place: it is pending now.
    answer_waiters(a, [&](const client_ref& c) {
      p_.port.answer_error(c, a.to_string() + " is pending: " + why, errc::unavailable);
    });
    l.ph = location::phase::pending;
    l.reason = why;
    log_line(TROUPE_LOG_WARN, a, "pending: " + why);
    auto pending = actor_event(event_kind::actor_pending, a, why);
    pending.name = l.name;
    pending.type = l.type;
    ctx_.note(std::move(pending));
    retry_moves(a);
    located(a, l);
    return;
  }
  if (l.created) ++l.moves;
  l.ph = location::phase::moving;
  l.system = *chosen;
  l.epoch = next_epoch();
  p_.members.add_load(*chosen, 1);
  located(a, l);
  const std::uint32_t to = *chosen;
  const std::uint64_t epoch = l.epoch;
  send_create(to, a, l, [this, a, to, epoch](bool sent) {
    auto now = locations_.find(a);
    if (sent || now == locations_.end() || now->second.epoch != epoch) return;
    // Not connected (yet, or any more): the next fitting system.
    p_.members.add_load(to, -1);
    now->second.refuse(to);
    now->second.reason = "system " + port_of(to) + " is not connected";
    place(a);
  });
}

void placement_convention::place_pending() {
  std::vector<address> pending;
  for (const auto& [a, l] : locations_)
    if (l.ph == location::phase::pending) pending.push_back(a);
  for (auto a : pending) {
    locations_[a].refused.clear();
    place(a);
  }
}

void placement_convention::check_fit(std::uint32_t id) {
  const auto* m = p_.members.find(id);
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

void placement_convention::begin_move(address a, const std::string& reason, std::uint32_t target, bool fresh_worker) {
  auto& l = locations_[a];
  log_line(TROUPE_LOG_INFO, a, "moving: " + reason);
  auto moved = actor_event(event_kind::actor_moved, a, reason);
  if (const auto* m = p_.members.find(target)) moved.port = m->port;
  ctx_.note(std::move(moved));
  l.ph = location::phase::moving;
  l.reason = reason;
  l.cause = reason;
  l.target = target;
  l.fresh_worker = fresh_worker;
  l.refused.clear();
  // Evicted only once the move is recorded: an actor stopped for a move the
  // store never took would be running nowhere, and recorded as running.
  located_then(a, l, [this, a, host = l.system, reason] {
    auto it = locations_.find(a);
    if (it == locations_.end() || it->second.ph != location::phase::moving || it->second.system != host) return;
    // Its host unreachable: as good as gone (it is marked down soon anyway).
    if (!p_.link.send(host, cmd::peer::evict, json{{"address", a.to_string()}, {"reason", reason}})) place(a);
  });
}

void placement_convention::system_lost(std::uint32_t id, const std::string& why) {
  const std::string name = port_of(id);
  note_system(event_kind::system_lost, id, why);
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
  for (auto a : moving) place(a);
  p_.calls.system_lost(id, why);
}

void placement_convention::on_report(std::uint32_t from, std::string_view command, const json& b) {
  const auto a = address::parse(b.value("address", std::string()));
  if (!a) return;
  auto it = locations_.find(*a);
  if (it == locations_.end()) return;
  auto& l = it->second;
  const bool creation = command == cmd::peer::created || command == cmd::peer::create_failed;
  // Only the system the table names may report on an actor, about the
  // placement the table holds (a copy left on a system cut off for a while
  // must not overwrite the live one).
  const bool stale_epoch = b.contains("epoch") && b["epoch"].is_number_unsigned() && l.epoch != 0 &&
                           b["epoch"].get<std::uint64_t>() != l.epoch;
  if (from != l.system || stale_epoch || (creation && l.ph != location::phase::moving)) {
    log_line(
        command == cmd::peer::created ? TROUPE_LOG_WARN : TROUPE_LOG_INFO, *a,
        "ignored '" + std::string(command) + "' from system " + port_of(from) + ", which does not host it (any more)");
    if (command == cmd::peer::created && (from != l.system || stale_epoch))
      p_.link.send(from, cmd::peer::evict, json{{"address", a->to_string()}, {"reason", "a copy runs elsewhere"}});
    return;
  }
  if (command == cmd::peer::created) {
    l.created = true;
    l.ph = location::phase::placed;
    l.system = from;
    l.reason = l.moves == 0 ? base::shared_string() : l.cause;  // a moved actor shows why it moved
    l.target = 0;
    l.fresh_worker = false;
    located(*a, l);
    release_held(*a);
    retry_moves(*a);
    // Answered once kept: a client told of an address finds it after a crash.
    when_durable([this, addr = *a, port = port_of(from)] {
      answer_waiters(addr, [&](const client_ref& c) {
        p_.port.answer(c, json{{"address", addr.to_string()}, {"system", port}});
      });
    });
  } else if (command == cmd::peer::create_failed) {
    const auto why = "system " + port_of(from) + " refused it: " + b.value("reason", std::string());
    log_line(TROUPE_LOG_WARN, *a, why);
    p_.members.add_load(from, -1);
    l.refuse(from);
    l.reason = why;
    place(*a);
  } else if (command == cmd::peer::evicted) {
    p_.members.add_load(from, -1);
    place(*a);
  } else {  // gone: stopped or failed there for good
    p_.members.add_load(from, -1);
    forget_location(*a);
  }
}

// ---------------------------------------------------------------- hosting for the convention

void placement_convention::on_create_request(const json& b) {
  // Checked whole now: the body waits (for a fetch, a load) and is read later.
  const bool well_formed = b.contains("address") && b["address"].is_string() &&
                           address::parse(b["address"].get<std::string>()) && b.contains("type") &&
                           b["type"].is_string() && b.contains("package_id") && b["package_id"].is_string() &&
                           (!b.contains("name") || b["name"].is_string()) &&
                           (!b.contains("fresh_worker") || b["fresh_worker"].is_boolean()) &&
                           (!b.contains("moves") || b["moves"].is_number_unsigned()) &&
                           (!b.contains("epoch") || b["epoch"].is_number_unsigned());
  if (!well_formed) {
    // Its body only at debug level: the log holds no request body otherwise.
    log_line(TROUPE_LOG_WARN, {}, "dropped a malformed 'create' from the convention's leader");
    if (ipc::log_enabled(TROUPE_LOG_DEBUG))
      log_line(TROUPE_LOG_DEBUG, {},
               "the malformed 'create': " + b.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 200));
    return;
  }
  const auto fail = [this, &b](const std::string& why) {
    p_.link.send(p_.state.leader, cmd::peer::create_failed,
                 json{{"address", b.value("address", std::string())},
                      {"reason", why},
                      {"epoch", b.value("epoch", std::uint64_t{0})}});
  };
  if (ctx_.stopping) return fail("the system is shutting down");
  const auto id = b.value("package_id", std::string());
  const bool known = p_.packages.when_loaded(id, [this, b, fail](const result<json>& r) {
    if (r) return create_requested(b);
    fail(r.err().message);
  });
  if (known) return;
  if (p_.state.leads) {
    p_.link.send(ctx_.id, cmd::peer::create_failed,
                 json{{"address", b.value("address", std::string())},
                      {"reason", "package " + id.substr(0, 12) + " is not loaded"},
                      {"epoch", b.value("epoch", std::uint64_t{0})}});
    return;
  }
  auto& waiting = fetch_waiters_[id];
  waiting.push_back(b);
  if (waiting.size() == 1) {
    log_line(TROUPE_LOG_INFO, {}, "fetching package " + id.substr(0, 12) + " from the leader");
    p_.link.send(fetch_source(id), cmd::peer::fetch, json{{"package_id", id}});
  }
}

void placement_convention::create_requested(const json& b) {
  const auto a = address::parse(b.value("address", std::string()));
  if (!a) return;
  const auto type = b.value("type", std::string());
  const auto epoch = b.value("epoch", std::uint64_t{0});
  auto fail = [&](const std::string& why) {
    p_.link.send(p_.state.leader, cmd::peer::create_failed,
                 json{{"address", a->to_string()}, {"reason", why}, {"epoch", epoch}});
  };
  if (auto why = refuses_create(b); !why.empty()) return fail(why);
  if (auto* old = p_.dir.find(*a)) {
    // The same placement asked again (a new leader finishing what the old
    // one started): it is here already.
    if (auto h = hosted_.find(*a);
        h != hosted_.end() && h->second == epoch && epoch != 0 && old->state != actor_state::failed) {
      if (old->state == actor_state::running)
        p_.link.send(p_.state.leader, cmd::peer::created, json{{"address", a->to_string()}, {"epoch", epoch}});
      else
        creating_.insert(*a);
      return;
    }
    if (old->state != actor_state::failed) return fail("an actor already runs at " + a->to_string() + " here");
    p_.dir.remove(*a);
  }
  hosted_[*a] = epoch;  // before: its creation says it is the convention's
  if (auto s = p_.actors.place(*a, type, b.value("package_id", std::string()), b.value("name", std::string()), {},
                               b.value("fresh_worker", false));
      !s) {
    hosted_.erase(*a);
    return fail(s.err().message);
  }
  if (auto* rec = p_.dir.find(*a)) rec->restarts = b.value("moves", 0u);
  creating_.insert(*a);
}

void placement_convention::evict(const json& b) {
  const auto a = address::parse(b.value("address", std::string()));
  if (!a) return;
  // A host's copy of the location says it is moving once it leaves here; an
  // evict of a copy left over ("a copy runs elsewhere") leaves the live
  // instance's location alone, and the leader's table is changed by the
  // leader's decisions only.
  if (auto l = locations_.find(*a); l != locations_.end() && !p_.state.leads && l->second.system == ctx_.id)
    l->second.ph = location::phase::moving;
  auto* rec = p_.dir.find(*a);
  if (rec == nullptr || rec->state == actor_state::failed) {
    if (rec != nullptr) p_.dir.remove(*a);
    hosted_.erase(*a);
    creating_.erase(*a);
    p_.link.send(p_.state.leader, cmd::peer::evicted, json{{"address", a->to_string()}});
    return;
  }
  if (rec->state != actor_state::stopping) p_.actors.send_exit(*rec, b.value("reason", std::string("moved")));
}

void placement_convention::failed_here(address a, const std::string& reason) {
  answer_waiters(a, [&](const client_ref& c) { p_.port.answer_error(c, reason); });
}

bool placement_convention::create_failed_here(address a, const std::string& why) {
  creating_.erase(a);
  auto it = hosted_.find(a);
  if (it == hosted_.end()) return false;
  const auto epoch = it->second;
  hosted_.erase(it);
  p_.link.send(p_.state.leader, cmd::peer::create_failed,
               json{{"address", a.to_string()}, {"reason", why}, {"epoch", epoch}});
  return true;
}

void placement_convention::report_created(address a) {
  // Only the creation the leader asked for; a restart here changes nothing there.
  if (creating_.erase(a))
    p_.link.send(p_.state.leader, cmd::peer::created, json{{"address", a.to_string()}, {"epoch", hosted_[a]}});
}

void placement_convention::report_gone(address a, bool failed, const std::string& reason, bool fenced) {
  creating_.erase(a);
  auto h = hosted_.find(a);
  if (h == hosted_.end()) return;
  const auto epoch = h->second;
  hosted_.erase(h);
  // Stopped by its worker when this system lost its lease (before this loop
  // saw the loss): a stale instance, as fence() stops them, reported to
  // nobody. Reported "gone", the leader took it for stopped on purpose and
  // forgot it: it was never placed again (the etcd rejoin flake).
  if (fenced) return;
  // A system that stops takes its actors out of service, not out of the
  // convention: they are placed elsewhere (or wait), never forgotten.
  if (ctx_.stopping) return;
  auto it = locations_.find(a);
  // Moving, or a copy left over that the table places elsewhere (evicted as such).
  const bool moving =
      it != locations_.end() && (it->second.ph == location::phase::moving || it->second.system != ctx_.id);
  // Moving on: a failed record left here would answer for the new copy.
  if (moving && p_.dir.find(a) != nullptr) p_.dir.remove(a);
  p_.link.send(p_.state.leader, moving ? cmd::peer::evicted : cmd::peer::gone,
               json{{"address", a.to_string()}, {"failed", failed}, {"reason", reason}, {"epoch", epoch}});
}

void placement_convention::stop_stale(const std::vector<address>& stale) {
  for (address a : stale) {
    creating_.erase(a);
    if (hosted_.erase(a) == 0) continue;  // not (or no longer) here: nothing to stop
    log_line(TROUPE_LOG_WARN, a,
             "stopping a stale instance: the convention placed it elsewhere while this system was cut off");
    auto* rec = p_.dir.find(a);
    if (rec == nullptr) continue;
    if (rec->state == actor_state::failed) {
      p_.dir.remove(a);
      continue;
    }
    if (rec->state != actor_state::stopping) p_.actors.send_exit(*rec, "a newer instance runs elsewhere");
  }
}

// ---------------------------------------------------------------- client commands

void placement_convention::cmd_spawn(const client_ref& c, const json& b) {
  const auto type = b.value("type", std::string());
  if (type.empty()) return p_.port.answer_error(c, "spawn: no actor type given", errc::invalid_argument);
  if (!p_.state.leads) {
    // The leader holds the packages and places every actor of the convention.
    json forwarded = b;
    if (c.via == 0) forwarded["origin"] = base::hex32(ctx_.id);
    return to_leader(c, cmd::client::spawn, forwarded, std::chrono::seconds(15));
  }
  if (taking_over()) {
    // Bounded by the take-over's own bound (etcd_convention::take_over).
    constexpr std::size_t held_spawns_limit = 1000;
    if (held_spawns_.size() >= held_spawns_limit)
      return p_.port.answer_error(c,
                                  "the convention's new leader is still loading its packages and " +
                                      std::to_string(held_spawns_limit) + " spawns already wait",
                                  errc::unavailable);
    held_spawns_.emplace_back(c, b);
    return;
  }
  auto pkg = p_.package_table.choose(type, b.value("package", std::string()));
  if (!pkg) return p_.port.answer_error(c, pkg.err().message, pkg.err().code);
  spawn_here(c, b, type, *pkg);
}

void placement_convention::run_held_spawns() {
  for (auto& [c, b] : std::exchange(held_spawns_, {})) cmd_spawn(c, b);
}

void placement_convention::fail_held_spawns(const std::string& why) {
  for (auto& [c, b] : std::exchange(held_spawns_, {})) p_.port.answer_error(c, why, errc::unavailable);
}

void placement_convention::spawn_here(const client_ref& c, const json& b, const std::string& type,
                                      const std::string& package_id) {
  const auto name = b.value("name", std::string());
  if (!name.empty()) {
    if (auto s = p_.dir.check_name(name); !s) return p_.port.answer_error(c, s.err().message, s.err().code);
    for (const auto& [_, l] : locations_)
      if (l.name == name) return p_.port.answer_error(c, "global name '" + name + "' is taken", errc::invalid_argument);
  }
  location l;
  l.type = type;
  l.package_id = package_id;
  l.name = name;
  share_texts(l);
  // Local first: the system the client asked.
  const bool wait = b.value("wait", false);  // read before anything is recorded
  const auto& origin = b.contains("origin") ? b["origin"] : json();
  const std::uint32_t from = origin.is_string() ? base::parse_hex32(origin.get<std::string>()) : 0;
  l.system = from != 0 ? from : ctx_.id;
  l.ph = location::phase::moving;
  const address a = p_.dir.allocate();
  locations_[a] = std::move(l);
  if (!wait) {
    spawn_waiters_[a].push_back(c);  // answered once created, or with why no system can take it
    return place(a);
  }
  place(a);
  if (auto it = locations_.find(a); it != locations_.end() && it->second.ph == location::phase::pending)
    return when_durable([this, c, a, reason = it->second.reason] {
      p_.port.answer(c, json{{"address", a.to_string()}, {"state", "pending"}, {"reason", reason}});
    });
  spawn_waiters_[a].push_back(c);
}

void placement_convention::cmd_systems(const client_ref& c) {
  p_.members.heard(ctx_.id, convention_clock::now(), static_cast<std::uint32_t>(p_.dir.size()));
  json out{
      {"self", base::hex32(ctx_.id)}, {"is_leader", p_.state.leads}, {"joined", joined()}, {"systems", members_json()}};
  describe_systems(out);
  p_.port.answer(c, out);
}

namespace {
std::filesystem::path capabilities_file(const system_context& ctx) { return ctx.dir / "capabilities.json"; }
}  // namespace

void placement_convention::restore_capabilities() {
  started_caps_ = ctx_.opts.caps;
  auto text = base::read_regular_file(capabilities_file(ctx_), 1 << 20);
  if (!text) return;  // none: chgcap was never used
  const json saved = json::parse(text->bytes, nullptr, false);
  const auto started = saved.is_object() && saved.contains("started_with")
                           ? capabilities_from_json(saved["started_with"])
                           : result<manifests::capabilities>(make_error(errc::invalid_argument, "no started_with"));
  const auto now = saved.is_object() && saved.contains("now")
                       ? capabilities_from_json(saved["now"])
                       : result<manifests::capabilities>(make_error(errc::invalid_argument, "no now"));
  if (!started || !now) {
    log_line(TROUPE_LOG_WARN, {}, "ignored " + capabilities_file(ctx_).string() + ": not what chgcap writes");
    return;
  }
  if (*started != ctx_.opts.caps) {
    log_line(TROUPE_LOG_INFO, {},
             "started with other capabilities than last time: those chgcap set then (" + to_json(*now).dump() +
                 ") are dropped");
    std::error_code ec;
    std::filesystem::remove(capabilities_file(ctx_), ec);
    return;
  }
  ctx_.opts.caps = *now;
  if (*now != started_caps_) log_line(TROUPE_LOG_INFO, {}, "capabilities as chgcap left them: " + to_json(*now).dump());
}

void placement_convention::cmd_chgcap(const client_ref& c, const json& b) {
  const auto op = b.value("op", std::string());
  const auto name = b.value("name", std::string());
  const auto trimmed = name.substr(0, name.find_last_not_of(' ') + 1);
  if (name.empty() || name.find(',') != std::string::npos || name.find('=') != std::string::npos || trimmed != name ||
      name.front() == ' ')
    return p_.port.answer_error(c, "chgcap: '" + name + "' is not a capability name", errc::invalid_argument);
  if (std::any_of(name.begin(), name.end(), [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; }))
    return p_.port.answer_error(c, "chgcap: a capability name has no control characters", errc::invalid_argument);
  auto caps = ctx_.opts.caps;
  if (op == "add") {
    caps[name] = true;
  } else if (op == "set") {
    const auto v = parse_capability_value(b.value("value", std::string()));
    if (const auto* d = std::get_if<double>(&v); d != nullptr && !std::isfinite(*d))
      return p_.port.answer_error(c, "chgcap: " + name + " must be a finite number", errc::invalid_argument);
    caps[name] = v;
  } else if (op == "remove") {
    if (caps.erase(name) == 0)
      return p_.port.answer_error(c, "this system has no capability '" + name + "'", errc::not_found);
  } else {
    return p_.port.answer_error(c, "chgcap: op must be add, remove or set", errc::invalid_argument);
  }
  // Kept for the next start with the same --caps (restore_capabilities).
  const json saved{{"started_with", to_json(started_caps_)}, {"now", to_json(caps)}};
  if (auto s = base::write_file_atomically(capabilities_file(ctx_), saved.dump() + "\n", 0600); !s)
    log_line(TROUPE_LOG_WARN, {}, "chgcap is not kept for the next start: " + s.err().message);
  ctx_.opts.caps = std::move(caps);
  p_.members.set_caps(ctx_.id, ctx_.opts.caps);
  log_line(TROUPE_LOG_INFO, {}, "capabilities now " + to_json(ctx_.opts.caps).dump());
  capabilities_changed();
  p_.port.answer(c, json{{"capabilities", to_json(ctx_.opts.caps)}});
}

void placement_convention::to_leader(const client_ref& c, std::string_view command, const json& b,
                                     std::chrono::milliseconds timeout) {
  if (!p_.state.joined || p_.state.leader == 0 || p_.state.leader == ctx_.id)
    return p_.port.answer_error(c, leader_unreachable(), errc::unavailable);
  // Forwarded once only: two systems that each take the other for the
  // leader (a change of leader under way) must not pass it back and forth.
  if (c.via != 0)
    return p_.port.answer_error(c, "system " + port_of(ctx_.id) + " does not lead the convention (any more)",
                                errc::unavailable);
  p_.calls.forward(c, p_.state.leader, std::string(command), b, timeout);
}

void placement_convention::cmd_move(const client_ref& c, const json& b) {
  if (!p_.state.leads) return to_leader(c, cmd::client::move, b, std::chrono::seconds(10));
  const auto target = b.value("target", std::string());
  address a;
  if (auto parsed = address::parse(target))
    a = *parsed;
  else
    for (const auto& [addr, l] : locations_)
      if (l.name == target) a = addr;
  auto it = locations_.find(a);
  if (!a || it == locations_.end())
    return p_.port.answer_error(c, "unknown address or name '" + target + "'", errc::not_found);
  if (it->second.ph == location::phase::moving) {
    // Being re-placed already (say by the chgcap just before): this move
    // follows once it lands, rather than failing with the reason of a
    // placement that is under way.
    auto& q = deferred_moves_[a];
    if (q.size() >= max_deferred_moves)
      return p_.port.answer_error(
          c, a.to_string() + " is moving, and " + std::to_string(q.size()) + " moves of it already wait",
          errc::unavailable);
    q.emplace_back(c, b);
    return;
  }
  if (it->second.ph != location::phase::placed)
    return p_.port.answer_error(c, a.to_string() + " is " + to_string(it->second.ph) + ": " + it->second.reason,
                                errc::unavailable);
  std::uint32_t dest = it->second.system;
  if (b.contains("port") && !b["port"].is_null()) {
    if (!b["port"].is_number_unsigned() || b["port"].get<std::uint64_t>() == 0 ||
        b["port"].get<std::uint64_t>() > 65535)
      return p_.port.answer_error(c, "move: port must be an integer from 1 to 65535", errc::invalid_argument);
    const auto* m = p_.members.find_port(b["port"].get<std::uint16_t>());
    if (m == nullptr)
      return p_.port.answer_error(c, "no system on port " + b["port"].dump() + " in the convention", errc::not_found);
    if (m->state != member_state::up)
      return p_.port.answer_error(c, "system " + std::to_string(m->port) + " is down", errc::unavailable);
    dest = m->system_id;
  }
  const bool fresh = b.value("new_worker", false);
  if (dest == it->second.system && !fresh)
    return p_.port.answer_error(
        c, a.to_string() + " already runs on " + port_of(dest) + " (add --new-worker to move it to a new worker there)",
        errc::invalid_argument);
  if (const auto* reqs = requirements_of(it->second))
    if (auto why = manifests::unmet(p_.members.find(dest)->caps, *reqs))
      return p_.port.answer_error(c, "system " + port_of(dest) + " cannot host " + it->second.type + ": " + *why,
                                  errc::refused);
  spawn_waiters_[a].push_back(c);
  begin_move(a, "moved by the operator", dest, fresh);
}

// ---------------------------------------------------------------- package distribution

void placement_convention::on_fetch(std::uint32_t from, const json& b) {
  const auto id = b.value("package_id", std::string());
  const auto* p = p_.package_table.find(id);
  std::string why;
  std::string bytes;
  if (p == nullptr || p->phase == package_phase::unloading)
    why = "package " + id.substr(0, 12) + " is not loaded on the leader";
  else if (p->signer.empty())
    why = "package " + p->m.package + " " + p->m.version.text +
          " was loaded unsigned from a directory: it is not distributed";
  else {
    std::ifstream in(p->source, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    bytes = s.str();
    if (!in || bytes.empty()) why = "cannot read " + p->source;
  }
  if (!why.empty()) return (void)p_.link.send(from, cmd::peer::fetch_failed, json{{"package_id", id}, {"reason", why}});
  log_line(TROUPE_LOG_INFO, {},
           "sending package " + p->m.package + " " + p->m.version.text + " to system " + port_of(from));
  p_.link.send(from, cmd::peer::package, json{{"package_id", id}}, bytes);
}

void placement_convention::on_package(const json& b, const std::string& blob) {
  const auto id = b.value("package_id", std::string());
  auto it = fetch_waiters_.find(id);
  if (it == fetch_waiters_.end()) return;
  auto creates = std::move(it->second);
  fetch_waiters_.erase(it);
  auto fail_all = [this, creates](const std::string& why) {
    log_line(TROUPE_LOG_WARN, {}, why);
    for (const auto& c : creates)
      p_.link.send(p_.state.leader, cmd::peer::create_failed,
                   json{{"address", c.value("address", std::string())},
                        {"reason", why},
                        {"epoch", c.value("epoch", std::uint64_t{0})}});
  };
  if (blob.empty())
    return fail_all("cannot fetch package " + id.substr(0, 12) + ": " + b.value("reason", std::string("no archive")));
  if (manifests::sha256_hex(blob) != id)
    return fail_all("the leader sent an archive that is not package " + id.substr(0, 12));
  // Verified here with this system's own keys, like any load.
  std::error_code ec;
  fs::create_directories(ctx_.dir / "fetched", ec);
  const fs::path file = ctx_.dir / "fetched" / (id + ".tpkg");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(blob.data(), static_cast<std::streamsize>(blob.size()));
    if (!out) return fail_all("cannot write " + file.string());
  }
  p_.packages.mark_fetched(id);
  p_.packages.load_archive(file, [this, creates, file, fail_all](const result<json>& r) mutable {
    std::error_code ec2;
    fs::remove(file, ec2);
    if (!r) return fail_all("refused package from the leader: " + r.err().message);
    for (const auto& c : creates) create_requested(c);
  });
}

}  // namespace troupe::supervisor
