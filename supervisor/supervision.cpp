#include "supervisor/supervision.hpp"

#include "ipc/commands.hpp"
#include "ipc/log.hpp"
#include "supervisor/actor_query.hpp"
#include "supervisor/direct_links.hpp"
#include "supervisor/package_manager.hpp"

#include <sys/wait.h>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace cmd = ipc::cmd;
using ipc::log_line;

namespace {
// How long a worker that exited before registering may take to deliver its
// "fatal" reason (normally it is already on the control socket).
constexpr auto fatal_grace_period = std::chrono::seconds(1);
}  // namespace

void supervision::attach(package_manager& manager, convention& conv) {
  manager_ = &manager;
  convention_ = &conv;
}

void supervision::register_handlers() {
  pool_.on_exit = [this](worker_proc& w, const std::string& how, const ipc::handling_snapshot& last) {
    on_worker_exit(w, how, last);
  };
  pool_.handle(cmd::worker::resolve, [this](worker_proc& w, const json& rid, const json& b) {
    resolve_for(w, rid, address(b.value("address", std::uint64_t{0})));
  });
  pool_.handle(cmd::worker::lookup, [this](worker_proc& w, const json& rid, const json& b) {
    const auto name = b.value("name", std::string());
    address remote;
    if (auto* rec = actors_.find_name(name)) return pool_.reply(w, rid, json{{"address", rec->addr.value()}});
    if (!name.empty() && name.front() != '@' && convention_->find(name, remote) != nullptr)
      return pool_.reply(w, rid, json{{"address", remote.value()}});  // a name of the convention
    pool_.reply_error(w, rid, "unknown name '" + name + "'");
  });
  pool_.handle(cmd::worker::spawn, [this](worker_proc& w, const json& rid, const json& b) {
    const address a(b.value("address", std::uint64_t{0}));
    if (ctx_.stopping) return pool_.reply_error(w, rid, "spawn: the system is shutting down");
    if (!actors_.allocated(a)) return pool_.reply_error(w, rid, "spawn: address not leased by this system");
    const auto type = b.value("type", std::string());
    auto pkg = packages_.choose(type, b.value("package", std::string()));
    status s = pkg ? place(a, type, *pkg, b.value("name", std::string()), address(b.value("parent", std::uint64_t{0})))
                   : status(pkg.err());
    if (!s) {
      // Recorded failed, so that messages to the address explain themselves.
      (void)actors_.add(
          actor_record{a, type, pkg ? *pkg : w.package_id, {}, 0, actor_state::failed, 0, s.err().message, {}, {}});
      return pool_.reply_error(w, rid, s.err().message);
    }
    pool_.reply(w, rid, json{{"address", a.value()}});
  });
  pool_.handle(cmd::worker::kill, [this](worker_proc& w, const json& rid, const json& b) {
    const address a(b.value("address", std::uint64_t{0}));
    auto* rec = actors_.find(a);
    auto* target = rec ? pool_.find(rec->worker) : nullptr;
    if (rec != nullptr && target != nullptr && target->st == worker_proc::state::ready) {
      actors_.set_state(*rec, actor_state::stopping);
      pool_.send(*target, cmd::supervisor::stop, json{{"address", a.value()}, {"reason", "stopped"}});
    } else if (rec != nullptr) {
      drop_pending_create(a);
      stopped(a, false, "stopped");
    }
    pool_.reply(w, rid, json::object());
  });
  pool_.create_body_for = [this](const worker_proc& w, address a) -> std::optional<json> {
    const auto* rec = actors_.find(a);
    if (rec == nullptr || rec->worker != w.id || rec->state != actor_state::starting) return std::nullopt;
    const auto* pkg = packages_.find(rec->package_id);
    if (pkg == nullptr) return std::nullopt;
    return create_body(*rec, *pkg);
  };
  pool_.handle(cmd::worker::created, [this](worker_proc& w, const json&, const json& b) {
    if (auto list = b.find("addresses"); list != b.end() && list->is_array()) {
      const std::string identity = w.identity;  // w may be gone once one of them is handled
      for (const auto& a : *list)
        if (a.is_number_unsigned()) on_created(identity, address(a.get<std::uint64_t>()));
      return;
    }
    on_created(w.identity, address(b.value("address", std::uint64_t{0})));
  });
  pool_.handle(cmd::worker::create_failed, [this](worker_proc&, const json&, const json& b) {
    on_create_failed(address(b.value("address", std::uint64_t{0})), b.value("error", std::string("creation failed")));
  });
  pool_.handle(cmd::worker::restarted, [this](worker_proc&, const json&, const json& b) {
    const address a(b.value("address", std::uint64_t{0}));
    if (auto* rec = actors_.find(a)) {
      rec->restarts = b.value("restarts", rec->restarts + 1);
      rec->last_reason = b.value("reason", std::string());
      rec->history.count(base::restart_clock::now());  // one intensity count for both kinds
      notify_watchers(a, exit_event::restarted, rec->last_reason);
      bus_.restarted(a, rec->last_reason);
    }
  });
  pool_.handle(cmd::worker::stopped, [this](worker_proc&, const json&, const json& b) {
    stopped(address(b.value("address", std::uint64_t{0})), b.value("failed", false), b.value("reason", std::string()),
            b.value("fenced", false));
  });
  pool_.handle(cmd::worker::watch,
               [this](worker_proc& w, const json& rid, const json& b) { on_watch_request(w, rid, b, true); });
  pool_.handle(cmd::worker::unwatch,
               [this](worker_proc& w, const json& rid, const json& b) { on_watch_request(w, rid, b, false); });
  port_.handle(cmd::client::actors, [this](const client_ref& c, const json& b) { cmd_actors(c, b); });
}

// ---------------------------------------------------------------- placing actors

status supervision::place(address a, const std::string& type, const std::string& package_id, const std::string& name,
                          address parent, bool fresh_worker) {
  // Checked before a worker is started for nothing.
  if (!name.empty())
    if (auto s = actors_.check_name(name); !s) return s;
  auto* pkg = packages_.find(package_id);
  if (pkg == nullptr || pkg->phase == package_phase::unloading)
    return make_error(errc::not_found, "package " + package_id + " is not loaded on this system");
  if (!pkg->broken.empty())
    return make_error(errc::refused,
                      "package " + pkg->m.package + " " + pkg->m.version.text + " cannot start: " + pkg->broken);
  const auto* spec = pkg->m.find_actor(type);
  const bool dedicated = fresh_worker || (spec != nullptr && spec->isolation == manifests::isolation_mode::dedicated);
  auto w = pool_.worker_for(package_id, dedicated);
  if (!w) return w.err();
  actor_record rec{a, pkg->type_ref(type), pkg->id, name, (*w)->id, actor_state::starting, 0, {}, parent, {}};
  if (auto s = actors_.add(std::move(rec)); !s) {
    retire_dedicated_worker((*w)->id);  // started for this actor alone
    return s;
  }
  if ((*w)->st == worker_proc::state::ready)
    pool_.send(**w, cmd::supervisor::create, create_body(*actors_.find(a), *pkg));
  else
    (*w)->pending_creates.push_back(a);
  arm_creation_deadline(a);
  return ok_v;
}

void supervision::arm_creation_deadline(address a) {
  // A worker starts and creates an actor in milliseconds; this bound only
  // catches one that stopped answering, before the spawner's own timeout.
  static constexpr auto deadline = std::chrono::seconds(10);
  auto& timer = creation_deadlines_[a];
  timer = std::make_unique<boost::asio::steady_timer>(ctx_.io, deadline);
  timer->async_wait([this, a](const boost::system::error_code& e) {
    if (e) return;
    creation_deadlines_.erase(a);
    auto* rec = actors_.find(a);
    if (rec == nullptr || rec->state != actor_state::starting) return;
    const auto* w = pool_.find(rec->worker);
    drop_pending_create(a);
    on_create_failed(a, "not created within " + std::to_string(deadline.count()) + " s: worker " +
                            (w != nullptr ? w->identity : std::to_string(rec->worker)) + " does not answer");
  });
}

json supervision::create_body(const actor_record& rec, const package_entry& pkg) const {
  // The worker applies the restart policy to handler failures itself, so it
  // gets the policy and the restarts already counted in the current window.
  const auto* spec = pkg.m.find_actor(rec.type);
  const base::restart_spec policy = spec ? spec->restart : base::restart_spec{};
  json recent = json::array();
  for (auto age : rec.history.ages(base::restart_clock::now())) recent.push_back(age.count());
  json body{{"address", rec.addr.value()},
            {"type", rec.type},
            {"restarts", rec.restarts},
            {"restart",
             {{"policy", base::to_string(policy.policy)},
              {"max_restarts", policy.max_restarts},
              {"within_ms", policy.within.count()},
              {"recent_ms", recent}}},
            {"max_handle_time_ms", spec ? spec->max_handle_time.count() : 0}};
  // An actor of a convention that fences lives only while the fence page
  // holds the lease it was created under (the worker reads the page).
  if (const auto lease = convention_->fence_lease(); lease && convention_->hosts(rec.addr)) {
    body["fenced"] = true;
    body["lease"] = std::to_string(*lease);
  }
  return body;
}

void supervision::send_exit(actor_record& rec, const std::string& reason) {
  // On the data path, so it arrives after the messages sent before it.
  gateway_.send(rec, ipc::record_kind::exit, 0, "exit", reason);
  actors_.set_state(rec, actor_state::stopping);
}

void supervision::drop_pending_create(address a) {
  for (auto& [_, w] : pool_.all()) std::erase(w.pending_creates, a);
}

void supervision::retire_dedicated_worker(std::uint32_t id) {
  auto* w = pool_.find(id);
  // A dead one is forgotten where its exit is handled.
  if (w == nullptr || !w->dedicated || !w->child || w->st == worker_proc::state::stopping) return;
  for (const auto* rec : actors_.on_worker(id))
    if (rec->state != actor_state::failed) return;  // its actor is still there
  pool_.stop_worker(*w, "its actor is gone");
}

// ---------------------------------------------------------------- what workers report

void supervision::resolve_for(worker_proc& w, const json& rid, address a) {
  const std::string gateway_endpoint = ctx_.endpoint_of("g.sock");
  if (a == gateway_.self()) return pool_.reply(w, rid, json{{"endpoint", gateway_endpoint}});
  auto* rec = actors_.find(a);
  // An actor on another system: reached through this system's gateway.
  if (rec == nullptr) {
    const std::uint32_t host = convention_->host_of(a);
    if (host != 0 && host != ctx_.id) {
      // Straight to its worker when both systems can (a direct link), else
      // through this system's gateway.
      if (direct_ != nullptr) return direct_->resolve(w, rid, a, host);
      return pool_.reply(w, rid, json{{"endpoint", gateway_endpoint}});
    }
    return pool_.reply_error(w, rid, "no actor at " + a.to_string());
  }
  if (rec->state == actor_state::failed)
    return pool_.reply_error(w, rid, a.to_string() + " has failed: " + rec->last_reason);
  if (rec->state == actor_state::running) {
    const auto* host = pool_.find(rec->worker);
    if (host == nullptr) return pool_.reply_error(w, rid, "no actor at " + a.to_string() + " (its worker is gone)");
    return pool_.reply(w, rid, json{{"endpoint", host->inbox}});
  }
  resolve_waiters_[a].emplace_back(w.identity, rid);  // answered once it runs
}

void supervision::on_created(const std::string& identity, address a) {
  creation_deadlines_.erase(a);
  auto* rec = actors_.find(a);
  auto* w = rec ? pool_.find(rec->worker) : nullptr;
  if (rec == nullptr || w == nullptr || w->identity != identity || rec->state == actor_state::failed) {
    // Killed while its creation was under way, or given up on (too late):
    // it must not live on unseen.
    pool_.send_to(identity, cmd::supervisor::stop, json{{"address", a.value()}, {"reason", "killed"}});
    return;
  }
  actors_.set_state(*rec, actor_state::running);
  if (auto it = resolve_waiters_.find(a); it != resolve_waiters_.end()) {
    for (auto& [waiter, rid] : it->second)
      pool_.send_to(waiter, cmd::reply, ipc::ok_reply(rid, json{{"endpoint", w->inbox}}));
    resolve_waiters_.erase(it);
  }
  bus_.running(a);
}

void supervision::on_create_failed(address a, const std::string& why) {
  creation_deadlines_.erase(a);
  auto* rec = actors_.find(a);
  if (rec == nullptr) return;
  log_line(TROUPE_LOG_WARN, a, "creation failed: " + why);
  const std::uint32_t worker = rec->worker;
  if (convention_->create_failed_here(a, why)) {
    // The convention places it elsewhere, or tells its spawner why not.
    actors_.remove(a);
    retire_dedicated_worker(worker);
    return;
  }
  fail_actor(*rec, why);
  // A failed first creation leaves nothing to keep; a failed re-creation is
  // kept so that senders learn why.
  if (rec->restarts == 0) actors_.remove(a);
  retire_dedicated_worker(worker);
}

void supervision::fail_actor(actor_record& rec, const std::string& reason) {
  actors_.set_state(rec, actor_state::failed);
  rec.last_reason = reason;
  const address a = rec.addr;
  if (auto it = resolve_waiters_.find(a); it != resolve_waiters_.end()) {
    for (auto& [identity, rid] : it->second)
      pool_.send_to(identity, cmd::reply, ipc::error_reply(rid, a.to_string() + " has failed: " + reason));
    resolve_waiters_.erase(it);
  }
  if (auto it = kill_waiters_.find(a); it != kill_waiters_.end()) {
    for (auto& c : it->second) port_.answer(c, json{{"address", a.to_string()}});
    kill_waiters_.erase(it);
  }
  notify_watchers(a, exit_event::failed, reason);
  bus_.failed(a, reason);
}

void supervision::stopped(address a, bool failed, const std::string& reason, bool fenced) {
  auto* rec = actors_.find(a);
  if (rec == nullptr) return;
  const std::string package_id = rec->package_id;
  const std::string type = rec->type;
  const std::string name = rec->name;
  const std::uint32_t worker = rec->worker;
  const auto* pkg = packages_.find(package_id);
  if (pkg != nullptr && pkg->phase == package_phase::unloading) failed = false;  // nothing to keep
  if (failed) {
    fail_actor(*rec, reason);
  } else {
    if (auto it = resolve_waiters_.find(a); it != resolve_waiters_.end()) {
      for (auto& [identity, rid] : it->second)
        pool_.send_to(identity, cmd::reply, ipc::error_reply(rid, "no actor at " + a.to_string() + " (stopped)"));
      resolve_waiters_.erase(it);
    }
    notify_watchers(a, exit_event::stopped, reason);
    actors_.remove(a);
  }
  if (auto it = kill_waiters_.find(a); it != kill_waiters_.end()) {
    for (auto& c : it->second) port_.answer(c, json{{"address", a.to_string()}});
    kill_waiters_.erase(it);
  }
  retire_dedicated_worker(worker);
  manager_->maybe_finish_unload(package_id);
  bus_.gone(actor_gone{a, package_id, failed, reason, type, name, fenced});
}

// ---------------------------------------------------------------- a worker's death

void supervision::on_worker_exit(worker_proc& w, const std::string& how, const ipc::handling_snapshot& last) {
  const std::uint32_t id = w.id;
  const std::string inbox = w.inbox;
  worker_exited ended{id, w.package_id, how, ctx_.stopping || w.st == worker_proc::state::stopping};
  ended.pid = w.last_pid;
  ended.handled = last.handled;
  ended.sent = last.sent;
  if (WIFSIGNALED(w.last_wait_status)) ended.signal = WTERMSIG(w.last_wait_status);
  if (WIFEXITED(w.last_wait_status)) ended.exit_code = WEXITSTATUS(w.last_wait_status);
  if (ctx_.stopping) {
    for (auto* rec : actors_.on_worker(id)) actors_.remove(rec->addr);  // nothing may route to it now
    bus_.exited(ended);
    pool_.forget(id);
    return;
  }
  // Told first: what it causes (restarts, failures) comes after it.
  bus_.exited(ended);
  pool_.announce_death(id, inbox, last, how);
  if (direct_ != nullptr) direct_->worker_exited(w, last, how);  // and to the systems it was linked with
  auto kept = gateway_.take_unacked(inbox);
  settle_worker_exit(id, how);
  // After the restart decisions: what goes again is held until its actor
  // runs, or fails at once if it will not come back.
  gateway_.resend(std::move(kept), last, how);
}

void supervision::settle_worker_exit(std::uint32_t id, const std::string& how) {
  worker_proc& w = *pool_.find(id);
  auto* pkg = packages_.find(w.package_id);
  const bool never_registered = w.st == worker_proc::state::starting || w.st == worker_proc::state::standby ||
                                w.st == worker_proc::state::assigned;
  auto hosted = actors_.on_worker(id);
  if (w.package_id.empty()) {
    // A standby. Replaced only if it had come up once: one that cannot even
    // start would be restarted in a loop.
    const bool was_healthy = !never_registered || w.st == worker_proc::state::standby;
    pool_.forget(id);
    if (was_healthy) pool_.replenish_standby();
    return;
  }
  if (pkg == nullptr || pkg->phase == package_phase::unloading) {
    // Its package is going (or already gone): nothing comes back.
    const std::string package_id = w.package_id;
    std::vector<address> gone;
    for (auto* rec : hosted) gone.push_back(rec->addr);
    pool_.forget(id);
    for (address a : gone) stopped(a, false, "package unloaded");
    manager_->maybe_finish_unload(package_id);
    return;
  }
  if (!pkg->broken.empty()) {
    // It said why it cannot load its library ("fatal"): retrying cannot help.
    w.exit_how = how;
    return fail_unstarted_worker(id);
  }
  if (never_registered) {
    w.exit_how = how;
    // Its "fatal" with the reason may still be on the control socket: the
    // exit can be seen first. Wait a moment for it rather than fail the
    // package with a vaguer reason.
    w.fatal_grace = std::make_unique<asio::steady_timer>(ctx_.io, fatal_grace_period);
    w.fatal_grace->async_wait([this, id](const boost::system::error_code& e) {
      if (!e) fail_unstarted_worker(id);
    });
    return;
  }
  restart_after_crash(w, *pkg, how);
}

void supervision::restart_after_crash(worker_proc& w, package_entry& pkg, const std::string& how) {
  // Each actor by its manifest's restart policy (base/restart.hpp): a crash
  // is never a normal exit.
  const auto now = base::restart_clock::now();
  const std::uint32_t id = w.id;
  base::restart_spec eager;  // the quickest backoff among those coming back
  std::uint32_t worst_streak = 0;
  bool any = false;
  const base::shared_string reason("worker " + how);  // one copy for all of them
  for (auto* rec : actors_.on_worker(id)) {
    if (rec->state == actor_state::stopping) {
      stopped(rec->addr, false, "killed");  // it was going away: do not bring it back
      continue;
    }
    if (rec->state == actor_state::failed) continue;
    const auto* spec = pkg.m.find_actor(rec->type);
    const base::restart_spec policy = spec ? spec->restart : base::restart_spec{};
    const auto d = rec->history.on_exit(policy, base::exit_kind::crash, reason, now);
    if (d.act != base::restart_decision::action::restart) {
      fail_actor(*rec, d.reason);
      continue;
    }
    if (!any || policy.backoff_min < eager.backoff_min) eager = policy;
    worst_streak = std::max(worst_streak, d.streak);
    any = true;
    actors_.set_state(*rec, actor_state::starting);
    ++rec->restarts;
    rec->last_reason = reason;
    w.pending_creates.push_back(rec->addr);
    notify_watchers(rec->addr, exit_event::restarted, rec->last_reason);
    bus_.restarted(rec->addr, rec->last_reason);
  }
  if (!any) {
    pool_.forget(id);
    return;
  }
  // The first restart in a window is immediate; further ones back off.
  const auto delay = base::backoff_delay(eager, worst_streak);
  auto start = [this, id] {
    if (pool_.find(id) == nullptr) return;
    if (auto* standby = pool_.adopt_standby(id)) {
      for (auto* rec : actors_.on_worker(id)) rec->worker = standby->id;
      return;
    }
    if (auto s = pool_.restart(*pool_.find(id)); !s) {
      for (auto* rec : actors_.on_worker(id)) fail_actor(*rec, s.err().message);
      pool_.forget(id);
    }
  };
  if (delay.count() == 0) return start();
  log_line(TROUPE_LOG_INFO, {},
           "worker " + w.identity + " restarts in " + std::to_string(delay.count()) + " ms (backoff)");
  w.st = worker_proc::state::starting;
  w.restart_timer = std::make_unique<asio::steady_timer>(ctx_.io, delay);
  w.restart_timer->async_wait([start](const boost::system::error_code& e) {
    if (!e) start();
  });
}

void supervision::fail_unstarted_worker(std::uint32_t id) {
  auto* w = pool_.find(id);
  if (w == nullptr) return;
  if (w->fatal_grace) w->fatal_grace->cancel();
  auto* pkg = packages_.find(w->package_id);
  std::string reason = "worker exited before registering (" +
                       (w->killed_because.empty() ? w->exit_how : w->killed_because + ": " + w->exit_how) + ")";
  if (pkg != nullptr && pkg->phase == package_phase::loading) {
    const std::string package_id = pkg->id;
    pool_.forget(id);
    return manager_->fail_load(package_id, reason);
  }
  if (pkg != nullptr) {
    if (pkg->broken.empty()) pkg->broken = reason;
    reason = pkg->broken;
  }
  for (auto* rec : actors_.on_worker(id)) {
    const address a = rec->addr;
    const std::string package_id = rec->package_id;
    const std::string type = rec->type;
    const std::string name = rec->name;
    fail_actor(*rec, reason);
    actors_.remove(a);
    bus_.gone(actor_gone{a, package_id, true, reason, type, name});
  }
  pool_.forget(id);
}

void supervision::drop_waiting_workers() {
  std::vector<std::uint32_t> waiting;  // crashed, waiting for their restart: no process
  for (auto& [id, w] : pool_.all())
    if (w.st == worker_proc::state::starting && !w.child) waiting.push_back(id);
  for (auto id : waiting) {
    for (auto* rec : actors_.on_worker(id)) actors_.remove(rec->addr);
    pool_.forget(id);
  }
}

// ---------------------------------------------------------------- client commands

void supervision::cmd_actors(const client_ref& c, const json& body) {
  auto q = actor_query::from_json(body);
  if (!q) return port_.answer_error(c, q.err().message, q.err().code);
  // Filtered on the records' fields, and JSON made only for the page: a
  // page of 100,000 actors costs a pass over them, not 100,000 rows.
  const std::string here = ctx_.where();
  const package_entry* pkg = nullptr;  // the last one looked up: most actors share it
  auto package_of = [&](const actor_record& rec) {
    if (pkg == nullptr || !pkg->id.shares_with(rec.package_id)) pkg = packages_.find(rec.package_id);
    return pkg;
  };
  struct entry {
    address addr;
    const actor_record* rec;  // an actor here, or
    json* row;                // one of the convention's elsewhere
  };
  std::vector<entry> rows;
  for (const auto* rec : actors_.all()) {  // in address order
    const auto* p = package_of(*rec);
    if (q->matches(p ? std::string_view(p->m.package) : std::string_view(), rec->package_id, to_string(rec->state),
                   here))
      rows.push_back({rec->addr, rec, nullptr});
  }
  // Actors of the convention hosted elsewhere, or waiting for a system.
  json elsewhere = json::array();
  convention_->list_elsewhere(elsewhere, actors_);
  bool merged = false;
  for (auto& row : elsewhere)
    if (q->matches(row))
      if (auto a = address::parse(row.value("address", std::string()))) {
        rows.push_back({*a, nullptr, &row});
        merged = true;
      }
  if (merged) std::sort(rows.begin(), rows.end(), [](const entry& x, const entry& y) { return x.addr < y.addr; });
  std::vector<address> sorted;
  sorted.reserve(rows.size());
  for (const auto& e : rows) sorted.push_back(e.addr);
  const auto b = q->page_bounds(sorted);
  json out = json::array();
  for (auto i = b.first; i != b.last; ++i) {
    const entry& e = rows[i];
    if (e.row != nullptr) {
      out.push_back(std::move(*e.row));
      continue;
    }
    const actor_record& rec = *e.rec;
    const auto* p = package_of(rec);
    const int pid = pool_.pid_of(rec.worker);
    out.push_back(json{{"address", rec.addr.to_string()},
                       {"name", rec.name.empty() ? json() : json(rec.name)},
                       {"type", rec.type},
                       {"package", p ? json(p->m.package) : json()},
                       {"version", p ? json(p->m.version.text) : json()},
                       {"package_id", rec.package_id},
                       {"system", here},
                       {"worker_pid", pid > 0 ? json(pid) : json()},
                       {"state", to_string(rec.state)},
                       {"restarts", rec.restarts},
                       {"last_reason", rec.last_reason.empty() ? json() : json(rec.last_reason)}});
  }
  const json next = b.more ? out.back()["address"] : json();
  port_.answer(c, json{{"actors", std::move(out)}, {"total", rows.size()}, {"next", next}});
}

bool supervision::kill_here(const client_ref& c, const std::string& target) {
  auto* rec = actors_.find_target(target);
  if (rec == nullptr) return false;
  auto* w = pool_.find(rec->worker);
  if (rec->state == actor_state::failed || w == nullptr || w->st != worker_proc::state::ready) {
    const address a = rec->addr;
    drop_pending_create(a);
    stopped(a, false, "killed");
    port_.answer(c, json{{"address", a.to_string()}});
    return true;
  }
  actors_.set_state(*rec, actor_state::stopping);
  kill_waiters_[rec->addr].push_back(c);
  pool_.send(*w, cmd::supervisor::stop, json{{"address", rec->addr.value()}, {"reason", "killed"}});
  return true;
}

// ---------------------------------------------------------------- watches
//
// An actor asks to be told when another stops, is restarted or fails
// (Erlang's monitors, Thespian's ChildActorExited). The supervisor sees every
// one of those events, so it keeps the watches and sends the exit notices,
// from its gateway on the data path (docs/PROTOCOL.md §4.4).

void supervision::on_watch_request(worker_proc& w, const json& rid, const json& b, bool on) {
  const std::string what = on ? "watch" : "unwatch";
  const address watcher(b.value("watcher", std::uint64_t{0}));
  const address target(b.value("target", std::uint64_t{0}));
  const auto* rec = actors_.find(watcher);
  if (rec == nullptr || rec->worker != w.id)
    return pool_.reply_error(w, rid, what + ": " + watcher.to_string() + " is not an actor of this worker");
  if (!target.valid()) return pool_.reply_error(w, rid, what + ": no target address");
  if (!on) {
    watches_.remove(watcher, target);  // no watch: nothing to end
    return pool_.reply(w, rid, json::object());
  }
  pool_.reply(w, rid, json::object());
  // A target that cannot stop, restart or fail any more is answered at once,
  // so that a watcher never waits for a notice that cannot come.
  const auto* t = actors_.find(target);
  if (t == nullptr) return send_exit_notice(watcher, target, exit_event::stopped, "no actor at " + target.to_string());
  if (t->state == actor_state::failed) return send_exit_notice(watcher, target, exit_event::failed, t->last_reason);
  watches_.add(watcher, target);
}

void supervision::notify_watchers(address target, exit_event event, const std::string& reason) {
  if (event == exit_event::restarted) {
    for (address w : watches_.watchers_of(target)) send_exit_notice(w, target, event, reason);
    return;
  }
  watches_.end_watches_by(target);
  for (address w : watches_.end_watches_of(target))
    if (w != target) send_exit_notice(w, target, event, reason);  // itself: gone, nobody to tell
}

void supervision::send_exit_notice(address watcher, address target, exit_event event, const std::string& reason) {
  if (ctx_.stopping) return;  // every watcher is being stopped too
  auto* rec = actors_.find(watcher);
  if (rec == nullptr || rec->state == actor_state::failed) return;
  // The watched address travels in the correlation field: `from` is the
  // gateway, the only sender a worker accepts exit notices from.
  const auto* w = pool_.find(rec->worker);
  if (w != nullptr && !w->child) {
    // Its worker died and is not running again yet: the notice waits, like
    // a client message, until the watcher runs again.
    gateway_.hold(watcher, ipc::record_kind::exited, target.value(), to_string(event), reason);
    return;
  }
  gateway_.send(*rec, ipc::record_kind::exited, target.value(), to_string(event), reason);
}

}  // namespace troupe::supervisor
