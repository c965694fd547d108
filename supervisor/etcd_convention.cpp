// A convention coordinated by etcd. See etcd_convention.hpp.
#include "supervisor/etcd_convention.hpp"

#include "ipc/json_limits.hpp"

#include "base/hex.hpp"
#include "ipc/commands.hpp"
#include "ipc/log.hpp"
#include "manifests/sha256.hpp"

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace cmd = ipc::cmd;
using ipc::log_line;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

std::string joined_endpoints(const std::vector<etcd::endpoint>& eps) {
  std::string out;
  for (const auto& e : eps) out += (out.empty() ? "" : ",") + e.text();
  return out;
}

constexpr auto retry_delay = milliseconds(250);

/// A value of the store as JSON, within the depth limit every outside input
/// gets (anyone who reaches etcd can write it); {} when it is not JSON.
json store_json(const std::string& key, std::string_view text, std::size_t max_depth) {
  auto j = ipc::parse_json(text, max_depth);
  if (j && j->is_object()) return std::move(*j);
  log_line(TROUPE_LOG_WARN, {},
           "ignored a malformed etcd record " + key + ": " + (j ? std::string("not a JSON object") : j.err().message));
  return json::object();
}

}  // namespace

// ---------------------------------------------------------------- set-up

status etcd_convention::setup() {
  restore_capabilities();
  const auto timeout = std::max(milliseconds(200), ctx_.opts.member_timeout / 2);
  client_ = std::make_unique<etcd::client>(ctx_.io, endpoints_, timeout);
  prefix_ = "troupe/" + ctx_.opts.convention + "/";
  const auto ttl = std::chrono::seconds(std::max<long>(1, (ctx_.opts.member_timeout.count() + 999) / 1000));
  keeper_ = std::make_unique<lease_keeper>(
      ctx_.io, endpoints_, ttl, timeout, ctx_.fence_file(),
      lease_keeper::handlers{[this](std::int64_t lease) { granted(lease); },
                             [this](std::int64_t lease, const std::string& why) { fence(lease, why); }});
  p_.state.direct = true;
  p_.state.leads = false;
  p_.state.leader = 0;
  p_.state.joined = false;
  p_.link.name_of = [this](std::uint32_t id) { return port_of(id); };
  p_.members.upsert(self_member(), convention_clock::now());
  retry_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  trust_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  campaign_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  take_over_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  register_handlers();
  p_.packages.on_loaded = [this](const package_entry& p) {
    loading_.erase(p.id);
    if (taking_over_ && loading_.empty()) settle();
    if (p.signer.empty() || lease_ == 0) return;  // unsigned directories are not distributed
    const json record{
        {"group", p.m.package}, {"version", p.m.version.text}, {"file", fs::path(p.source).filename().string()}};
    client_->txn({etcd::compare::absent(key("packages/" + p.id))},
                 {etcd::operation::put(key("packages/" + p.id), record.dump())}, {}, [](result<etcd::txn_result>) {});
    client_->put(key("holders/" + p.id + "/" + base::hex32(ctx_.id)), "", lease_, [](result<std::int64_t>) {});
  };
  p_.packages.on_unloading = [this](const std::string& id) {
    client_->erase(key("packages/" + id), "", [](result<std::int64_t>) {});
    client_->erase(key("holders/" + id + "/"), etcd::prefix_end(key("holders/" + id + "/")),
                   [](result<std::int64_t>) {});
  };
  return ok_v;
}

void etcd_convention::register_handlers() {
  auto from_leader = [this](std::string_view command, peer_link::handler h) {
    p_.link.handle(command, [this, command, h](std::uint32_t from, const json& b, const std::string& blob) {
      if (from != p_.state.leader && from != ctx_.id) {
        // A leader just elected may send before this system's watch shows
        // the election: kept a while, handled if the store says it leads.
        constexpr std::size_t early_limit = 1000;
        if (early_.size() < early_limit) {
          early_.push_back({from, std::string(command), b, blob, h, std::chrono::steady_clock::now()});
          return;
        }
        log_line(TROUPE_LOG_WARN, {},
                 "dropped '" + std::string(command) + "' from system " + port_of(from) + ", which does not lead");
        return;
      }
      h(from, b, blob);
    });
  };
  auto host_side = [this, from_leader](std::string_view command, peer_link::handler h) {
    // A package comes from whichever system has it; the rest from the leader.
    if (command == cmd::peer::package || command == cmd::peer::fetch_failed)
      return p_.link.handle(command, std::move(h));
    from_leader(command, std::move(h));
  };
  auto leader_side = [this](std::string_view command, peer_link::handler h) {
    // Any system serves a fetch of a package it has; reports go to the leader.
    if (command == cmd::peer::fetch) return p_.link.handle(command, std::move(h));
    p_.link.handle(command, [this, command, h](std::uint32_t from, const json& b, const std::string& blob) {
      if (!p_.state.leads) {
        log_line(TROUPE_LOG_INFO, {},
                 "dropped '" + std::string(command) + "' from system " + port_of(from) + ": this system does not lead");
        return;
      }
      h(from, b, blob);
    });
  };
  register_shared(host_side, leader_side);
}

void etcd_convention::start() {
  if (auto s = keeper_->start(); !s) log_line(TROUPE_LOG_ERROR, {}, "cannot keep an etcd lease: " + s.err().message);
}

void etcd_convention::stop() {
  fail_held_spawns("the system is stopping");
  retry_timer_->cancel();
  trust_timer_->cancel();
  campaign_timer_->cancel();
  take_over_timer_->cancel();
  watch_.reset();
  // The member and leader keys go with the lease: the next leader need not
  // wait for it to expire, this system's actors are placed elsewhere at once.
  keeper_->stop(std::max(milliseconds(200), ctx_.opts.member_timeout / 2));
  lease_ = 0;
}

std::string etcd_convention::leader_unreachable() const {
  if (p_.state.leader == 0 || p_.state.leader == ctx_.id)
    return "no convention leader is elected (etcd at " + joined_endpoints(endpoints_) + ")";
  return "the convention leader (system " + port_of(p_.state.leader) + ") is unreachable";
}

void etcd_convention::describe(json& status) const {
  status["coordination"] = "etcd";
  status["etcd"] = joined_endpoints(endpoints_);
  status["leader"] = leader_where();
  status["is_leader"] = p_.state.leads;
  status["joined"] = joined();
  status["fenced"] = fenced_;
  status["peer"] = p_.link.endpoint();
  status["key"] = p_.link.public_key();
  status["lease"] = json{{"id", std::to_string(lease_)},
                         {"ttl_ms", keeper_->ttl().count() * 1000},
                         {"valid_for_ms", keeper_->valid_for().count()},
                         {"store_down", keeper_->store_down()}};
}

json etcd_convention::leader_where() const {
  const auto* m = p_.members.find(p_.state.leader);
  if (p_.state.leader == 0 || m == nullptr) return json();
  return m->host + ":" + std::to_string(m->port);
}

void etcd_convention::describe_systems(json& out) const {
  out["mode"] = "etcd";
  out["etcd"] = joined_endpoints(endpoints_);
  out["convention"] = ctx_.opts.convention;
  out["leader"] = leader_where();
  out["fenced"] = fenced_;
  // Each system's lease as the store last showed it; this one's with what is left of it.
  for (auto& m : out["systems"]) {
    const std::uint32_t id = base::parse_hex32(m.value("system", std::string()));
    json lease{{"state", m.value("state", std::string()) == "up" ? "held" : "lost"}};
    if (auto l = member_leases_.find(id); l != member_leases_.end()) lease["id"] = std::to_string(l->second);
    if (id == ctx_.id) {
      lease = json{{"state", lease_ != 0 ? "held" : (fenced_ ? "lost" : "none")},
                   {"id", std::to_string(lease_)},
                   {"valid_for_ms", keeper_->valid_for().count()},
                   {"store_down", keeper_->store_down()}};
    }
    m["lease"] = std::move(lease);
  }
  out["limits"] =
      "etcd: a system that cannot renew its lease stops the convention's actors it hosts before the lease "
      "expires, so no address has two live instances; while every etcd endpoint refuses connections or has no leader, "
      "nothing "
      "is placed again and systems serve what they host";
}

// ---------------------------------------------------------------- the lease and fencing

void etcd_convention::granted(std::int64_t lease) {
  lease_ = lease;
  fenced_ = false;
  registered_ = false;
  put_member();
  read_all();
}

// The keeper lost the lease and has moved the fence page already: the
// workers drop the convention's actors whatever this loop does. Here the
// system stops them too (reported to nobody: the leader places them again
// once the lease is gone) and leaves the convention until the next lease.
void etcd_convention::fence(std::int64_t lease, const std::string& why) {
  if (lease != lease_ || lease_ == 0) return;
  fenced_ = true;
  std::vector<address> mine;
  for (const auto& [a, _] : hosted_) mine.push_back(a);
  log_line(TROUPE_LOG_WARN, {},
           "fenced: " + why + ": stopping the " + std::to_string(mine.size()) + " actors the convention placed here");
  note_system(event_kind::system_fenced, ctx_.id, why);
  stop_stale(mine);
  if (p_.state.leads) step_down("fenced");
  p_.state.joined = false;
  lease_ = 0;
  registered_ = false;
  watch_.reset();
}

std::string etcd_convention::refuses_create(const json& body) const {
  // Placed under an older lease of this system: the leader has placed it
  // again elsewhere since it saw that lease go, or will.
  if (lease_ == 0) return "this system holds no etcd lease now";
  const auto it = body.find("lease");
  if (it == body.end() || !it->is_string()) return {};  // fenced under the lease it holds now
  if (lease_ != 0 && it->get<std::string>() == std::to_string(lease_)) return {};
  return "placed under lease " + it->get<std::string>() + ", which this system no longer holds";
}

// ---------------------------------------------------------------- what the store holds

void etcd_convention::put_member() {
  if (lease_ == 0) return;
  json m = to_json(self_member());
  m["lease"] = std::to_string(lease_);
  client_->put(key("members/" + base::hex32(ctx_.id)), m.dump(), lease_, [this](result<std::int64_t> r) {
    if (!r)
      log_line(TROUPE_LOG_WARN, {}, "cannot register with etcd: " + r.err().message);
    else
      registered_ = true;
  });
}

void etcd_convention::read_all() {
  client_->range(prefix_, etcd::prefix_end(prefix_), [this](result<etcd::range_result> r) {
    if (!r) {
      retry_timer_->expires_after(retry_delay);
      retry_timer_->async_wait([this](const boost::system::error_code& e) {
        if (!e && lease_ != 0) read_all();
      });
      return;
    }
    // A fresh picture: what is not in the store any more is forgotten.
    std::set<std::uint32_t> before;
    for (const auto* m : p_.members.all())
      if (m->system_id != ctx_.id && m->state == member_state::up) before.insert(m->system_id);
    if (!p_.state.leads) locations_.clear();
    package_set_.clear();
    holders_.clear();
    p_.state.leader = 0;
    for (const auto& kv : r->kvs) {
      apply(etcd::event{false, kv});
      if (kv.key.starts_with(key("members/"))) before.erase(base::parse_hex32(kv.key.substr(key("members/").size())));
    }
    for (auto gone_id : before) {
      etcd::event e{};
      e.deleted = true;
      e.kv.key = key("members/" + base::hex32(gone_id));
      member_changed(e, base::hex32(gone_id));
    }
    if (p_.state.leader == 0) p_.state.leads = false;
    watch_from(r->revision + 1);
    if (p_.state.leader == 0)
      campaign();
    else
      p_.state.joined = true;
  });
}

void etcd_convention::watch_from(std::int64_t revision) {
  watch_ = client_->watch_prefix(
      prefix_, revision,
      [this](const std::vector<etcd::event>& events, std::int64_t) {
        for (const auto& e : events) apply(e);
      },
      [this](const error& why) {
        if (ctx_.stopping) return;
        log_line(TROUPE_LOG_INFO, {}, "etcd watch ended (" + why.message + "); reading the store again");
        retry_timer_->expires_after(retry_delay);
        retry_timer_->async_wait([this](const boost::system::error_code& e) {
          if (!e && lease_ != 0) read_all();
        });
      });
}

void etcd_convention::apply(const etcd::event& e) {
  if (!e.kv.key.starts_with(prefix_)) return;
  const std::string tail = e.kv.key.substr(prefix_.size());
  try {
    if (tail.starts_with("members/")) return member_changed(e, tail.substr(8));
    if (tail.starts_with("actors/")) return actor_changed(e, tail.substr(7));
    if (tail.starts_with("packages/") || tail.starts_with("holders/")) return package_changed(e, tail);
    if (tail == "leader") {
      if (e.deleted) {
        p_.state.leader = 0;
        if (p_.state.leads) step_down("its leadership key is gone");
        if (!ctx_.stopping && lease_ != 0 && !fenced_) campaign();
        return;
      }
      const std::uint32_t id = base::parse_hex32(e.kv.value);
      p_.state.leader = id;
      p_.state.joined = true;
      note_leader(id, "elected on etcd");
      handle_early(id);
      if (id != ctx_.id && p_.state.leads) step_down("another system leads");
      // Its own key, under its live lease: it still leads (it had stepped
      // down while the store could not be written).
      if (id == ctx_.id && !p_.state.leads && e.kv.lease == lease_ && lease_ != 0) lead(e.kv.create_revision);
      return;
    }
  } catch (const json::exception& ex) {
    log_line(TROUPE_LOG_WARN, {}, "ignored a malformed etcd record " + e.kv.key + ": " + ex.what());
  }
}

void etcd_convention::handle_early(std::uint32_t leader) {
  const auto too_old = std::chrono::steady_clock::now() - 2 * ctx_.opts.member_timeout;
  for (auto& m : std::exchange(early_, {})) {
    if (m.from == leader)
      m.handler(m.from, m.body, m.blob);
    else if (m.at < too_old)
      log_line(TROUPE_LOG_WARN, {},
               "dropped '" + m.command + "' from system " + port_of(m.from) + ", which does not lead");
    else
      early_.push_back(std::move(m));
  }
}

void etcd_convention::member_changed(const etcd::event& e, const std::string& id_text) {
  const std::uint32_t id = base::parse_hex32(id_text);
  if (id == 0) return;
  if (e.deleted) {
    untrusted_records_.erase(id);
    if (id == ctx_.id) {
      if (!ctx_.stopping && lease_ != 0) keeper_->give_up(lease_, "its registration expired");
      return;
    }
    const auto* m = p_.members.find(id);
    if (m == nullptr || m->state == member_state::down) return;
    p_.members.mark_down(id);
    p_.link.prune_direct();
    log_line(TROUPE_LOG_WARN, {},
             "system " + port_of(id) + " lost its lease: " +
                 (p_.state.leads ? "placing its actors elsewhere" : "its actors are placed elsewhere"));
    if (p_.state.leads && !taking_over_) return system_lost(id, "lost its lease");
    // What this system forwarded to it (a spawn to a dead leader, say) is
    // answered now, as unknown, rather than after its timeout.
    p_.calls.system_lost(id, "lost its lease");
    return;
  }
  auto m = member_from_json(store_json(e.kv.key, e.kv.value, ctx_.opts.max_json_depth));
  if (!m || m->system_id != id) return;
  member_leases_[id] = e.kv.lease;
  // A system this one does not trust is no member of its convention: no
  // link to it would be admitted, nothing is placed on it.
  if (id != ctx_.id && ipc::read_trusted(p_.link.trusted_dir()).find(m->public_key) == nullptr) {
    untrusted_records_[id] = {e, id_text};
    if (!trust_timer_running_) recheck_untrusted();
    if (untrusted_.insert(id).second)
      log_line(TROUPE_LOG_WARN, {},
               "system " + m->host + ":" + std::to_string(m->port) + " registered on etcd with key " + m->public_key +
                   ", which is not in " + p_.link.trusted_dir().string() + ": not a member here");
    return;
  }
  const auto* before = p_.members.find(id);
  const bool fresh = before == nullptr || before->state == member_state::down;
  const bool caps_changed = before != nullptr && before->caps != m->caps;
  if (id == ctx_.id) {
    if (caps_changed && p_.state.leads) {
      check_fit(id);
      place_pending();
    }
    return;
  }
  m->leader = false;
  // A system started again on the same address has a new id: its old entry,
  // down, would otherwise linger (and `move --to PORT` could pick it).
  std::vector<std::uint32_t> replaced;
  for (const auto* old : p_.members.all())
    if (old->system_id != id && old->host == m->host && old->port == m->port && old->state == member_state::down)
      replaced.push_back(old->system_id);
  for (auto old : replaced) p_.members.remove(old);
  p_.members.upsert(std::move(*m), convention_clock::now());
  if (fresh) {
    log_line(TROUPE_LOG_INFO, {}, "system joined: " + port_of(id));
    note_system(event_kind::system_joined, id, "registered on etcd");
  }
  if (!p_.state.leads || taking_over_) return;
  if (caps_changed) check_fit(id);
  if (fresh || caps_changed) place_pending();
}

void etcd_convention::recheck_untrusted() {
  trust_timer_running_ = true;
  trust_timer_->expires_after(std::chrono::seconds(1));
  trust_timer_->async_wait([this](const boost::system::error_code& ec) {
    trust_timer_running_ = false;
    if (ec || ctx_.stopping || untrusted_records_.empty()) return;
    const auto trusted = ipc::read_trusted(p_.link.trusted_dir());
    std::vector<std::pair<etcd::event, std::string>> now;
    for (auto it = untrusted_records_.begin(); it != untrusted_records_.end();) {
      const auto m =
          member_from_json(store_json(it->second.first.kv.key, it->second.first.kv.value, ctx_.opts.max_json_depth));
      if (m && trusted.find(m->public_key) != nullptr) {
        now.push_back(std::move(it->second));
        untrusted_.erase(it->first);
        it = untrusted_records_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [e, id_text] : now) {
      log_line(TROUPE_LOG_INFO, {}, "system " + id_text + " is trusted now: taken as a member");
      member_changed(e, id_text);
    }
    if (!untrusted_records_.empty()) recheck_untrusted();
  });
}

void etcd_convention::actor_changed(const etcd::event& e, const std::string& addr_text) {
  const auto a = address::parse(addr_text);
  if (!a || p_.state.leads) return;  // the leader's table is the one it writes
  if (e.deleted) {
    if (locations_.erase(*a) != 0) fail_held(*a, "no actor at " + a->to_string() + " (stopped)");
    return;
  }
  const json record = store_json(e.kv.key, e.kv.value, ctx_.opts.max_json_depth);
  if (record.empty()) return;
  const location l = location_from_json(record);
  locations_[*a] = l;
  // This system runs an older instance (it was cut off): stopped now.
  if (auto h = hosted_.find(*a); h != hosted_.end() &&
                                 (l.system != ctx_.id || (l.epoch != 0 && h->second != l.epoch)) &&
                                 l.ph == location::phase::placed)
    stop_stale({*a});
  p_.calls.reroute(*a);
  if (l.ph == location::phase::placed) release_held(*a);
}

void etcd_convention::package_changed(const etcd::event& e, const std::string& tail) {
  if (tail.starts_with("packages/")) {
    const std::string id = tail.substr(9);
    if (e.deleted) {
      package_set_.erase(id);
      if (auto* p = p_.package_table.find(id); p != nullptr && p->phase == package_phase::loaded)
        p_.packages.begin_unload(id, "unloaded from the convention");
      return;
    }
    package_set_[id] = store_json(e.kv.key, e.kv.value, ctx_.opts.max_json_depth);
    if (p_.state.leads) load_packages();
    return;
  }
  // holders/<id>/<system>
  const std::string rest = tail.substr(8);
  const auto slash = rest.find('/');
  if (slash == std::string::npos) return;
  const std::string id = rest.substr(0, slash);
  const std::uint32_t system = base::parse_hex32(rest.substr(slash + 1));
  if (system == 0) return;
  if (e.deleted)
    holders_[id].erase(system);
  else
    holders_[id].insert(system);
}

std::uint32_t etcd_convention::fetch_source(const std::string& package_id) const {
  if (auto it = holders_.find(package_id); it != holders_.end())
    for (auto system : it->second)
      if (system != ctx_.id && !gone(system)) return system;
  return p_.state.leader;
}

bool etcd_convention::package_gone(const std::string& package_id) const { return package_set_.count(package_id) == 0; }

// ---------------------------------------------------------------- leadership

void etcd_convention::campaign() {
  if (lease_ == 0 || ctx_.stopping || fenced_) return;
  const std::string k = key("leader");
  client_->txn({etcd::compare::absent(k)}, {etcd::operation::put(k, base::hex32(ctx_.id), lease_)},
               {etcd::operation::get(k)}, [this](result<etcd::txn_result> t) {
                 if (!t) {
                   // The store did not answer: nobody may lead yet, try again.
                   campaign_timer_->expires_after(retry_delay);
                   campaign_timer_->async_wait([this](const boost::system::error_code& e) {
                     if (!e && p_.state.leader == 0 && !p_.state.leads) campaign();
                   });
                   return;
                 }
                 if (t->succeeded) return lead(t->revision);
                 if (!t->ranges.empty() && !t->ranges[0].kvs.empty()) {
                   p_.state.leader = base::parse_hex32(t->ranges[0].kvs[0].value);
                   p_.state.joined = true;
                 }
               });
}

void etcd_convention::lead(std::int64_t revision) {
  // Both the campaign's answer and the watch tell it; the first one counts.
  if (p_.state.leads && leader_revision_ == revision) return;
  leader_revision_ = revision;
  p_.state.leads = true;
  p_.state.leader = ctx_.id;
  p_.state.joined = true;
  log_line(TROUPE_LOG_INFO, {}, "leads the convention (elected on etcd)");
  note_leader(ctx_.id, "elected on etcd");
  take_over();
}

void etcd_convention::step_down(const std::string& why) {
  if (!p_.state.leads) return;
  log_line(TROUPE_LOG_WARN, {}, "no longer leads the convention: " + why);
  note_leader(0, why);
  p_.state.leads = false;
  p_.state.leader = 0;  // the store says who leads now (read_all below, or the watch)
  taking_over_ = false;
  leader_revision_ = 0;
  // What waited for this leader's decisions is answered by the next one.
  for (auto& [a, waiters] : std::exchange(spawn_waiters_, {}))
    for (auto& c : waiters)
      p_.port.answer_error(c, "the convention's leader changed before " + a.to_string() + " was placed",
                           errc::unavailable);
  fail_held_spawns("the convention's leader changed before the spawn was placed");
  read_all();
}

void etcd_convention::take_over() {
  taking_over_ = true;
  client_->range(key("actors/"), etcd::prefix_end(key("actors/")), [this](result<etcd::range_result> r) {
    if (!p_.state.leads) return;
    if (!r) return step_down("cannot read the placements: " + r.err().message);
    locations_.clear();
    for (const auto& kv : r->kvs) {
      const auto a = address::parse(kv.key.substr(key("actors/").size()));
      const json record = store_json(kv.key, kv.value, ctx_.opts.max_json_depth);
      if (a && !record.empty()) locations_[*a] = location_from_json(record);
    }
    load_packages();
    if (loading_.empty()) return settle();
    // Bounded: a package that cannot be loaded here leaves its actors pending.
    take_over_timer_->expires_after(std::chrono::seconds(5));
    take_over_timer_->async_wait([this](const boost::system::error_code& e) {
      if (!e && taking_over_) settle();
    });
  });
}

void etcd_convention::load_packages() {
  for (const auto& [id, record] : package_set_) {
    if (p_.package_table.find(id) != nullptr || loading_.count(id)) continue;
    loading_.insert(id);
    const fs::path mine = p_.packages.store().packages / record.value("file", std::string("?"));
    std::error_code ec;
    const auto hash = fs::exists(mine, ec) ? manifests::sha256_file_hex(mine) : result<std::string>(std::string());
    if (hash && *hash == id) {
      p_.packages.load_archive(mine, [id = id](const result<json>& r) {
        if (!r)
          log_line(TROUPE_LOG_WARN, {},
                   "cannot load package " + id.substr(0, 12) + " of the convention: " + r.err().message);
      });
      continue;
    }
    auto& waiting = fetch_waiters_[id];
    if (waiting.empty()) {
      log_line(TROUPE_LOG_INFO, {}, "fetching package " + id.substr(0, 12) + " of the convention");
      p_.link.send(fetch_source(id), cmd::peer::fetch, json{{"package_id", id}});
    }
  }
}

void etcd_convention::settle() {
  if (!taking_over_) return;
  taking_over_ = false;
  // Creations the previous leader started are asked again (a host that has
  // one already says created); actors on systems that are gone are placed
  // again; pending ones are tried.
  std::map<std::uint32_t, std::vector<address>> on_lost;
  for (auto& [a, l] : locations_) {
    if (l.ph == location::phase::pending) continue;
    if (gone(l.system)) {
      on_lost[l.system].push_back(a);
      continue;
    }
    if (l.ph == location::phase::moving) {
      const address addr = a;
      send_create(l.system, a, l, [this, addr](bool sent) {
        if (!sent) place(addr);
      });
    }
  }
  for (const auto& [system, _] : on_lost) system_lost(system, "lost its lease");
  place_pending();
  log_line(TROUPE_LOG_INFO, {}, "took over " + std::to_string(locations_.size()) + " placements");
  run_held_spawns();
}

void etcd_convention::write(std::vector<etcd::operation> ops, std::function<void(std::int64_t)> then) {
  if (!p_.state.leads) return;
  client_->txn({etcd::compare::create_revision_is(key("leader"), leader_revision_)}, std::move(ops), {},
               [this, then = std::move(then)](result<etcd::txn_result> t) {
                 if (!t) return step_down("cannot write to etcd: " + t.err().message);
                 if (!t->succeeded) return step_down("another system leads");
                 if (then) then(t->revision);
               });
}

// ---------------------------------------------------------------- how the leader tells its decisions

void etcd_convention::located(address a, const location& l) {
  write({etcd::operation::put(key("actors/" + a.to_string()), location_json(a, l).dump())});
}

void etcd_convention::located_then(address a, const location& l, std::function<void()> then) {
  write({etcd::operation::put(key("actors/" + a.to_string()), location_json(a, l).dump())},
        [then = std::move(then)](std::int64_t) { then(); });
}

void etcd_convention::forgotten(address a) { write({etcd::operation::erase(key("actors/" + a.to_string()))}); }

void etcd_convention::send_create(std::uint32_t to, address a, const location& l, std::function<void(bool)> then) {
  const location& placed = l;
  json body{{"address", a.to_string()},
            {"type", placed.type},
            {"package_id", placed.package_id},
            {"name", placed.name},
            {"fresh_worker", placed.fresh_worker},
            {"moves", placed.moves},
            {"epoch", placed.epoch}};
  // The host refuses it once it no longer holds the lease the leader saw.
  if (auto held = member_leases_.find(to); held != member_leases_.end()) body["lease"] = std::to_string(held->second);
  // Recorded first: a leader that dies now leaves a placement its successor finishes.
  write({etcd::operation::put(key("actors/" + a.to_string()), location_json(a, placed).dump())},
        [this, to, body, then](std::int64_t) { then(p_.link.send(to, cmd::peer::create, body)); });
}

void etcd_convention::capabilities_changed() {
  put_member();
  if (!p_.state.leads) return;  // the leader sees the record change
  check_fit(ctx_.id);
  place_pending();
}

}  // namespace troupe::supervisor
