// supervisor/system_packages.cpp — the package half of the system: load
// (verify, extract, start the package's worker and wait for it to register),
// the version lifecycle of a group (on_load, on_deactivate, on_reactivate,
// auto_unload, keep), unload, list, avail, refresh and role.
#include "supervisor/system_impl.hpp"

#include "manifests/package_dir.hpp"

#include <csignal>
#include <fstream>

namespace troupe::supervisor {

namespace {

std::string short_id(const std::string& id) { return id.substr(0, 12); }

std::string describe(const package_entry& p) {
  return p.m.package + " " + p.m.version.text + " (" + short_id(p.id) + ")";
}

}  // namespace

// ---------------------------------------------------------------- load

void system::cmd_load(const client_ref& c, const json& b) {
  load_done done = [this, c](const result<json>& r) {
    if (r) answer(c, *r);
    else answer_error(c, r.err().message, r.err().code);
  };
  const auto path = b.value("path", std::string());
  const auto group = b.value("group", std::string());
  const bool unsigned_dir = b.value("unsigned", false);
  if (!path.empty()) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      if (!unsigned_dir)
        return answer_error(c, path + " is a directory package: it loads only with --unsigned, on a system "
                                      "started with --allow-unsigned");
      if (!opts_.allow_unsigned)
        return answer_error(c, "this system refuses unsigned packages (" + path +
                                   "); start it with --allow-unsigned to load directory packages");
      return load_directory(path, std::move(done));
    }
    if (unsigned_dir)
      return answer_error(c, "--unsigned is for directory packages; " + path + " is not a directory",
                          errc::invalid_argument);
    return load_archive(path, std::move(done));
  }
  if (group.empty())
    return answer_error(c, "load: give a package archive, a group name or (with --unsigned) a directory",
                        errc::invalid_argument);
  auto newest = newest_of(store_, group);
  if (!newest) return answer_error(c, newest.err().message, newest.err().code);
  load_archive(*newest, std::move(done));
}

void system::load_archive(const fs::path& file, load_done done) {
  bool copied = false;
  auto archive = verify_and_keep(store_, file, &copied);
  if (!archive) {
    log_line(TROUPE_LOG_WARN, {}, "refused package: " + archive.err().message);
    return done(archive.err());
  }
  if (join_existing(archive->id, done)) return;
  auto root = manifests::extract_archive(*archive, store_.cache);
  if (!root) {
    log_line(TROUPE_LOG_ERROR, {}, "cannot extract " + archive->source + ": " + root.err().message);
    std::error_code ec;
    if (copied) fs::remove(archive->source, ec);  // not loaded: not kept either
    return done(root.err());
  }
  package_entry e;
  e.id = archive->id;
  e.m = std::move(archive->m);
  e.root = *root;
  e.library = *root / e.m.library;
  e.lib_dir = *root / "lib";
  e.source = archive->source;
  e.signer = archive->signer.name;
  e.adopted = copied;
  begin_load(std::move(e), std::move(done));
}

void system::load_directory(const fs::path& dir, load_done done) {
  auto pkg = manifests::open_package_dir(fs::absolute(dir));
  if (!pkg) return done(pkg.err());
  if (join_existing(pkg->id, done)) return;
  package_entry e;
  e.id = pkg->id;
  e.m = std::move(pkg->m);
  e.root = pkg->root;
  e.library = pkg->library;
  e.lib_dir = pkg->lib_dir;
  e.source = pkg->root.string();
  begin_load(std::move(e), std::move(done));
}

bool system::join_existing(const std::string& id, load_done& done) {
  auto* p = packages_.find(id);
  if (p == nullptr) return false;
  if (p->phase == package_phase::loading) load_waiters_[id].push_back(std::move(done));
  else if (p->phase == package_phase::unloading)
    done(make_error(errc::refused, "package " + id + " is being unloaded; load it again once it is gone"));
  else done(describe_load(*p, true));  // loading a loaded package again is a no-op
  return true;
}

void system::begin_load(package_entry entry, load_done done) {
  const std::string id = entry.id;
  packages_.add(std::move(entry));
  load_waiters_[id].push_back(std::move(done));
  // The worker starts now: it proves the library loads (entry point, ABI,
  // the actor types the manifest declares) before the package is accepted,
  // and the first spawn then finds it running.
  auto w = worker_for(id);
  if (!w) return fail_load(id, w.err().message);
  auto timer = std::make_unique<asio::steady_timer>(io_, load_registration_timeout);
  timer->async_wait([this, id](const boost::system::error_code& e) {
    if (e) return;
    auto* p = packages_.find(id);
    if (p != nullptr && p->phase == package_phase::loading)
      fail_load(id, "its worker did not register within " +
                        std::to_string(load_registration_timeout.count()) + " s");
  });
  package_timers_[id] = std::move(timer);
}

void system::on_worker_ready(worker_proc& w, const json& rid, const json& types) {
  auto* pkg = packages_.find(w.package_id);
  const bool loading = pkg != nullptr && pkg->phase == package_phase::loading;
  if (loading) {
    std::string missing, registered;
    for (const auto& t : types)
      if (t.is_string()) registered += (registered.empty() ? "" : ", ") + t.get<std::string>();
    for (const auto& spec : pkg->m.actors)
      if (std::find(types.begin(), types.end(), json(spec.type)) == types.end())
        missing += (missing.empty() ? "" : ", ") + spec.type;
    if (!missing.empty()) {
      const std::string reason = pkg->library.filename().string() + " does not register actor type " + missing +
                                 " declared by its manifest (it registers: " +
                                 (registered.empty() ? "none" : registered) + ")";
      reply_worker_error(w.identity, rid, reason);
      return fail_load(pkg->id, reason);
    }
  }
  w.st = worker_proc::state::ready;
  reply_worker(w.identity, rid, json::object());
  (void)link_.connect(w.inbox);  // connect now: the first client ask need not wait for it
  for (auto& create : w.pending_creates) to_worker(w, "create", create);
  w.pending_creates.clear();
  if (loading) finish_load(pkg->id);
}

void system::finish_load(const std::string& id) {
  auto* p = packages_.find(id);
  if (p == nullptr) return;
  package_timers_.erase(id);
  p->phase = package_phase::loaded;
  log_line(TROUPE_LOG_INFO, {}, "loaded package " + describe(*p) +
                                    (p->signer.empty() ? ", unsigned" : ", signed by " + p->signer));
  const std::string group = p->m.package;
  const auto change = packages_.update_active(group);
  run_on_load(*p);
  apply_activation(group, change, false);
  publish_loaded();
  if (!p->signer.empty())
    for (const auto& f : prune(store_, group, p->m.keep, loaded_archives()))
      log_line(TROUPE_LOG_INFO, {}, "keep " + std::to_string(p->m.keep) + ": deleted " + f.string());
  auto waiters = std::move(load_waiters_[id]);
  load_waiters_.erase(id);
  const json body = describe_load(*p, false);
  for (auto& done : waiters) done(body);
  replenish_standby_soon();
}

void system::fail_load(const std::string& id, const std::string& reason) {
  auto* p = packages_.find(id);
  if (p == nullptr) return;
  package_timers_.erase(id);
  const std::string message = "cannot load " + p->m.package + " " + p->m.version.text + " (" + p->source + "): " + reason;
  log_line(TROUPE_LOG_ERROR, {}, message);
  if (auto w = workers_.find(p->worker); w != workers_.end()) {
    // Whatever it is doing, the package is refused: it goes now.
    w->second.st = worker_proc::state::stopping;
    if (w->second.child) w->second.child->signal(SIGKILL);
  }
  if (p->adopted) {
    std::error_code ec;
    fs::remove(p->source, ec);  // refused: the package directory is left as it was
  }
  auto waiters = std::move(load_waiters_[id]);
  load_waiters_.erase(id);
  packages_.erase(id);
  for (auto& done : waiters) done(make_error(errc::refused, message));
  replenish_standby_soon();
}

json system::describe_load(const package_entry& p, bool already) const {
  return json{{"id", p.id},
              {"group", p.m.package},
              {"version", p.m.version.text},
              {"active", p.active},
              {"already_loaded", already},
              {"signer", p.signer.empty() ? json() : json(p.signer)},
              {"source", p.source}};
}

std::set<fs::path> system::loaded_archives() const {
  std::set<fs::path> files;
  for (const auto* p : packages_.all()) files.insert(p->source);
  // packages/ is shared by the systems of one TROUPE_HOME: what the others
  // have loaded is spared too (a stale list of a dead system only spares more).
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(opts_.home / "systems", ec)) {
    std::ifstream in(e.path() / "loaded");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) files.insert(line);
  }
  return files;
}

void system::reload_after_crash() {
  // `loaded` outlives the system only when it died without stopping: the
  // packages a convention's leader had are its members' source, so they are
  // loaded again (and verified again, with today's keys).
  std::ifstream in(dir_ / "loaded");
  std::string line;
  std::vector<std::string> archives;
  while (std::getline(in, line))
    if (!line.empty()) archives.push_back(line);
  if (archives.empty()) return;
  log_line(TROUPE_LOG_WARN, {}, "the previous run on this port ended without stopping: loading its " +
                                    std::to_string(archives.size()) + " packages again");
  for (const auto& file : archives)
    load_archive(file, [file](const result<json>& r) {
      if (r) log_line(TROUPE_LOG_INFO, {}, "loaded again: " + file);
      else log_line(TROUPE_LOG_WARN, {}, "not loaded again: " + file + ": " + r.err().message);
    });
}

void system::publish_loaded() const {
  // Written aside and renamed, so another system never reads half a list.
  const fs::path tmp = dir_ / "loaded.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto* p : packages_.all())
      if (p->phase != package_phase::unloading && !p->signer.empty()) out << p->source << "\n";
  }
  std::error_code ec;
  fs::rename(tmp, dir_ / "loaded", ec);
}

// ---------------------------------------------------------------- versions

void system::run_on_load(package_entry& p) {
  // A package fetched to host an actor for the convention: its on_load actors
  // run on the leader, where it was loaded.
  if (fetched_packages_.count(p.id)) return;
  for (const auto& spec : p.m.actors) {
    if (!spec.on_load) continue;
    const address a = directory_.allocate();
    if (auto s = place(a, spec.type, p.id, {}, {}); !s) {
      log_line(TROUPE_LOG_WARN, {}, "on_load of " + describe(p) + ": cannot create " + spec.type + ": " + s.err().message);
      continue;
    }
    p.on_load[spec.type] = a;
    if (spec.on_load->role) p.roles[*spec.on_load->role] = a;
    if (spec.on_load->message)
      send_from_gateway(*directory_.find(a), ipc::record_kind::tell, 0, "json", spec.on_load->message->dump());
  }
}

void system::send_hook(const package_entry& p, const char* which) {
  const bool deactivate = std::string_view(which) == "on_deactivate";
  std::size_t sent = 0;
  for (const auto& spec : p.m.actors) {
    const auto& h = deactivate ? spec.on_deactivate : spec.on_reactivate;
    if (!h || !h->message) continue;
    const std::string payload = h->message->dump();
    std::vector<address> targets;
    for (const auto* rec : directory_.all())
      if (rec->package_id == p.id && rec->type == spec.type &&
          (rec->state == actor_state::running || rec->state == actor_state::starting))
        targets.push_back(rec->addr);
    for (address a : targets) send_from_gateway(*directory_.find(a), ipc::record_kind::tell, 0, "json", payload);
    sent += targets.size();
  }
  if (sent > 0) log_line(TROUPE_LOG_INFO, {}, std::string(which) + " sent to " + std::to_string(sent) + " actors of " + describe(p));
}

void system::apply_activation(const std::string& group, const activation& change, bool reactivating) {
  auto* old = change.deactivated.empty() ? nullptr : packages_.find(change.deactivated);
  auto* now = change.activated.empty() ? nullptr : packages_.find(change.activated);
  if (change.changed()) {
    if (old != nullptr && old->phase == package_phase::loaded) {
      log_line(TROUPE_LOG_INFO, {}, "deactivated " + describe(*old));
      send_hook(*old, "on_deactivate");
    }
    if (now != nullptr && reactivating) {
      log_line(TROUPE_LOG_INFO, {}, "reactivated " + describe(*now));
      send_hook(*now, "on_reactivate");
    }
  }
  bind_group_names(group);
  if (change.changed() && old != nullptr && old->phase == package_phase::loaded && old->m.auto_unload)
    begin_unload(old->id, "auto_unload: a newer version of its group is active");
}

void system::bind_group_names(const std::string& group) {
  const package_entry* active = nullptr;
  std::map<std::string, std::string> names;  // global name -> actor type, as the active version declares it
  for (const auto* p : packages_.all()) {
    if (p->m.package != group || !p->active) continue;
    active = p;
    for (const auto& spec : p->m.actors)
      if (spec.on_load && spec.on_load->global_name) names[*spec.on_load->global_name] = spec.type;
  }
  if (active == nullptr) return;
  // A group's global names follow its active version: they move to the
  // actors its on_load created, from actors of older versions of the group.
  for (const auto& [name, type] : names) {
    auto it = active->on_load.find(type);
    if (it == active->on_load.end()) continue;
    const auto* want = directory_.find(it->second);
    if (want == nullptr || want->state == actor_state::failed || want->name == name) continue;
    if (const auto* holder = directory_.find_name(name)) {
      const auto* holder_pkg = packages_.find(holder->package_id);
      if (holder_pkg == nullptr || holder_pkg->m.package != group) {
        log_line(TROUPE_LOG_WARN, {}, "global name '" + name + "' of " + describe(*active) + " is held by " +
                                          holder->addr.to_string() + " of another group; left there");
        continue;
      }
      directory_.unbind_name(holder->addr);
    }
    if (auto s = directory_.bind_name(it->second, name); !s) {
      log_line(TROUPE_LOG_WARN, {}, "global name '" + name + "': " + s.err().message);
      continue;
    }
    for (auto& [_, w] : workers_)
      if (w.st == worker_proc::state::ready) to_worker(w, "forget_name", json{{"name", name}});
  }
}

// ---------------------------------------------------------------- unload

void system::cmd_unload(const client_ref& c, const json& b) {
  const auto spec = b.value("package", std::string());
  // Already being unloaded (named by id or prefix): wait for the same end.
  if (is_hex_id_prefix(spec) && spec.size() >= 6)
    for (const auto* p : packages_.all())
      if (p->phase == package_phase::unloading && p->id.starts_with(spec)) {
        unload_waiters_[p->id].push_back(c);
        return;
      }
  auto p = packages_.resolve(spec);
  if (!p) return answer_error(c, p.err().message, p.err().code);
  if (!(*p)->id.starts_with(spec))
    return answer_error(c, "unload takes a package hash or a prefix of one; '" + spec +
                               "' is a group (its active version is " + (*p)->id + ")",
                        errc::invalid_argument);
  const std::string id = (*p)->id;
  unload_waiters_[id].push_back(c);
  begin_unload(id, "unloaded by the operator");
}

void system::begin_unload(const std::string& id, const char* reason) {
  auto* p = packages_.find(id);
  if (p == nullptr || p->phase == package_phase::unloading) return;
  log_line(TROUPE_LOG_INFO, {}, "unloading " + describe(*p) + ": " + reason);
  // The director manual's order: on_deactivate, then exit requests. A
  // version that is no longer active had its on_deactivate already.
  if (p->active) send_hook(*p, "on_deactivate");
  p->phase = package_phase::unloading;
  // Members that fetched it unload it too; its actors there stop.
  broadcast("unloaded", json{{"package_id", id}});
  const std::string group = p->m.package;
  apply_activation(group, packages_.update_active(group), true);

  std::vector<address> mine;
  for (const auto* rec : directory_.all())
    if (rec->package_id == id) mine.push_back(rec->addr);
  for (address a : mine) {
    auto* rec = directory_.find(a);
    if (rec == nullptr) continue;
    if (rec->state == actor_state::running) {
      send_exit(*rec, "package unloaded");
    } else if (rec->state == actor_state::failed) {
      directory_.remove(a);
    } else if (rec->state == actor_state::starting) {
      auto w = workers_.find(rec->worker);
      if (w == workers_.end() || w->second.st != worker_proc::state::ready) {
        drop_pending_create(a);  // never created: nothing to stop
        notify_watchers(a, exit_event::stopped, "package unloaded");  // an unload is no failure
        fail_actor(*rec, "package unloaded");
        directory_.remove(a);
      }  // else its creation is under way; on_created stops it
    }
  }
  auto timer = std::make_unique<asio::steady_timer>(io_, unload_grace);
  timer->async_wait([this, id](const boost::system::error_code& e) {
    if (e) return;
    auto* pkg = packages_.find(id);
    if (pkg == nullptr) return;
    for (auto& [_, w] : workers_)  // its shared worker and its dedicated ones
      if (w.package_id == id && w.child) {
        log_line(TROUPE_LOG_WARN, {}, "unloading " + describe(*pkg) + ": actors did not stop in time: SIGKILL " +
                                          w.identity);
        w.st = worker_proc::state::stopping;
        w.child->signal(SIGKILL);
      }
  });
  package_timers_[id] = std::move(timer);
  maybe_finish_unload(id);
}

void system::send_exit(actor_record& rec, const std::string& reason) {
  // On the data path, so it arrives after the messages sent before it.
  send_from_gateway(rec, ipc::record_kind::exit, 0, "exit", reason);
  rec.state = actor_state::stopping;
}

void system::maybe_finish_unload(const std::string& id) {
  auto* p = packages_.find(id);
  if (p == nullptr || p->phase != package_phase::unloading) return;
  for (const auto* rec : directory_.all())
    if (rec->package_id == id) return;  // actors still stopping
  // Then its workers: the shared one and any dedicated ones.
  std::vector<std::uint32_t> crashed;  // waiting for their restart: nothing to stop
  bool stopping = false;
  for (auto& [wid, w] : workers_) {
    if (w.package_id != id) continue;
    if (!w.child) {
      crashed.push_back(wid);
      continue;
    }
    if (w.st == worker_proc::state::starting) w.child->signal(SIGTERM);  // not connected yet
    else if (w.st != worker_proc::state::stopping) to_worker(w, "shutdown", json{{"reason", "package unloaded"}});
    w.st = worker_proc::state::stopping;
    stopping = true;
  }
  for (auto wid : crashed) forget_worker(wid);
  if (stopping) return;  // on_worker_exit comes back here once each is gone
  log_line(TROUPE_LOG_INFO, {}, "unloaded " + describe(*p));
  const json body{{"id", p->id}, {"group", p->m.package}, {"version", p->m.version.text}};
  package_timers_.erase(id);
  packages_.erase(id);
  publish_loaded();
  auto waiters = std::move(unload_waiters_[id]);
  unload_waiters_.erase(id);
  for (auto& c : waiters) answer(c, body);
}

// ---------------------------------------------------------------- queries

void system::cmd_list(const client_ref& c) {
  json out = json::array();
  for (const auto* p : packages_.all()) {
    std::size_t actors = 0;
    for (const auto* rec : directory_.all()) actors += rec->package_id == p->id;
    json types = json::array();
    for (const auto& a : p->m.actors) types.push_back(a.type);
    json roles = json::object();
    for (const auto& [role, a] : p->roles) roles[role] = a.to_string();
    json entry{{"group", p->m.package}, {"version", p->m.version.text}, {"id", p->id},
               {"active", p->active}, {"phase", to_string(p->phase)}, {"actors", actors},
               {"types", types}, {"roles", roles}, {"source", p->source},
               {"signer", p->signer.empty() ? json() : json(p->signer)}, {"worker_pid", json()}};
    if (auto w = workers_.find(p->worker); w != workers_.end() && w->second.child)
      entry["worker_pid"] = w->second.child->pid();
    if (!p->broken.empty()) entry["error"] = p->broken;
    out.push_back(std::move(entry));
  }
  answer(c, json{{"packages", out}});
}

void system::cmd_avail(const client_ref& c) {
  json groups = json::array();
  for (const auto& a : scan(store_)) {
    if (groups.empty() || groups.back()["group"] != a.group)
      groups.push_back(json{{"group", a.group}, {"archives", json::array()}});
    const auto* p = a.id.empty() ? nullptr : packages_.find(a.id);
    json entry{{"file", a.file.string()}, {"version", a.version}, {"id", a.id},
               {"loaded", p != nullptr && p->phase == package_phase::loaded},
               {"active", p != nullptr && p->active},
               {"signer", a.signer.empty() ? json() : json(a.signer)}};
    if (!a.error.empty()) entry["error"] = a.error;
    groups.back()["archives"].push_back(std::move(entry));
  }
  answer(c, json{{"dir", store_.packages.string()}, {"groups", groups}});
}

void system::cmd_refresh(const client_ref& c) {
  struct refresh_op {
    client_ref client;
    std::size_t pending = 1;  // held by this function until every load has started
    json results = json::array();
  };
  auto op = std::make_shared<refresh_op>();
  op->client = c;
  auto finish_one = [this, op] {
    if (--op->pending == 0) answer(op->client, json{{"groups", op->results}});
  };
  std::string last_group;
  for (const auto& a : scan(store_)) {
    if (a.group == last_group) continue;  // newest first: only the first of each group
    last_group = a.group;
    json entry{{"group", a.group}, {"version", a.version}, {"id", a.id}, {"file", a.file.string()}};
    if (!a.error.empty()) {
      entry["error"] = a.error;
      op->results.push_back(std::move(entry));
      continue;
    }
    if (const auto* p = packages_.find(a.id); p != nullptr && p->phase != package_phase::unloading) {
      entry["already_loaded"] = true;
      op->results.push_back(std::move(entry));
      continue;
    }
    ++op->pending;
    load_archive(a.file, [op, entry, finish_one](const result<json>& r) mutable {
      if (r) {
        entry["already_loaded"] = r->value("already_loaded", false);
        entry["active"] = r->value("active", false);
      } else {
        entry["error"] = r.err().message;
      }
      op->results.push_back(std::move(entry));
      finish_one();
    });
  }
  finish_one();
}

void system::cmd_role(const client_ref& c, const json& b) {
  const auto name = b.value("role", std::string());
  if (name.empty()) return answer_error(c, "role: no role name given", errc::invalid_argument);
  auto a = packages_.role(name, b.value("group", std::string()));
  if (!a) return answer_error(c, a.err().message, a.err().code);
  const auto* rec = directory_.find(*a);
  const auto* p = rec ? packages_.find(rec->package_id) : nullptr;
  answer(c, json{{"role", name},
                 {"address", a->to_string()},
                 {"state", rec ? json(to_string(rec->state)) : json("stopped")},
                 {"group", p ? json(p->m.package) : json()},
                 {"version", p ? json(p->m.version.text) : json()},
                 {"id", p ? json(p->id) : json()}});
}

}  // namespace troupe::supervisor
