// The package half of a system: load (verify, extract, start the package's
// worker and wait for it to register), the version lifecycle of a group,
// unload, and the package queries. See package_manager.hpp.
#include "supervisor/package_manager.hpp"

#include "base/files.hpp"
#include "ipc/commands.hpp"
#include "ipc/log.hpp"
#include "manifests/package_dir.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace cmd = ipc::cmd;
using ipc::log_line;

namespace {

// A loaded package's worker must register within this time, or the load fails.
constexpr auto load_registration_timeout = std::chrono::seconds(10);
// An unloaded package's actors get this long to stop before its worker is killed.
constexpr auto unload_grace = std::chrono::seconds(5);

std::string short_id(const std::string& id) { return id.substr(0, 12); }

std::string describe(const package_entry& p) {
  return p.m.package + " " + p.m.version.text + " (" + short_id(p.id) + ")";
}

}  // namespace

void package_manager::register_handlers() {
  port_.handle(cmd::client::load, [this](const client_ref& c, const json& b) { cmd_load(c, b); });
  port_.handle(cmd::client::unload, [this](const client_ref& c, const json& b) { cmd_unload(c, b); });
  port_.handle(cmd::client::list, [this](const client_ref& c, const json&) { cmd_list(c); });
  port_.handle(cmd::client::avail, [this](const client_ref& c, const json&) { cmd_avail(c); });
  port_.handle(cmd::client::refresh, [this](const client_ref& c, const json&) { cmd_refresh(c); });
  port_.handle(cmd::client::role, [this](const client_ref& c, const json& b) { cmd_role(c, b); });
  pool_.handle(cmd::worker::ready, [this](worker_proc& w, const json& rid, const json& b) {
    if (w.st != worker_proc::state::assigned) return pool_.reply_error(w, rid, "not expecting ready");
    on_worker_ready(w, rid, b.value("types", json::array()));
  });
  pool_.handle(cmd::worker::fatal, [this](worker_proc& w, const json&, const json& b) { on_fatal(w, b); });
  pool_.on_assignment_failed = [this](const std::string& id, const std::string& why) {
    if (const auto* p = packages_.find(id); p != nullptr && p->phase == package_phase::loading) fail_load(id, why);
  };
}

void package_manager::stop() {
  // Loads and unloads under way end with the system; their clients learn why.
  timers_.clear();
  read_buffer_timer_.reset();
  const auto going = make_error(errc::unavailable, "the system is shutting down");
  for (auto& [_, waiters] : std::exchange(load_waiters_, {}))
    for (auto& done : waiters) done(going);
  for (auto& [_, waiters] : std::exchange(unload_waiters_, {}))
    for (auto& c : waiters) port_.answer_error(c, going.message, going.code);
}

bool package_manager::when_loaded(const std::string& id, load_done done) {
  auto* p = packages_.find(id);
  if (p == nullptr || p->phase == package_phase::unloading) return false;
  if (p->phase == package_phase::loading)
    load_waiters_[id].push_back(std::move(done));
  else
    done(describe_load(*p, true));
  return true;
}

void package_manager::on_running(address a) {
  // Created while its package was being unloaded: it goes at once.
  if (auto* r = directory_.find(a))
    if (auto* p = packages_.find(r->package_id); p != nullptr && p->phase == package_phase::unloading)
      actors_.send_exit(*r, "package unloaded");
}

void package_manager::on_fatal(worker_proc& w, const json& b) {
  const auto reason = b.value("error", std::string("worker could not start"));
  auto* pkg = packages_.find(w.package_id);
  if (pkg == nullptr) return;
  if (pkg->phase == package_phase::loading) return fail_load(pkg->id, reason);
  pkg->broken = reason;
  log_line(TROUPE_LOG_ERROR, {}, "package " + pkg->m.package + " cannot start: " + pkg->broken);
  if (w.fatal_grace) actors_.fail_unstarted_worker(w.id);  // it already exited: fail it now
}

// ---------------------------------------------------------------- load

void package_manager::cmd_load(const client_ref& c, const json& b) {
  load_done done = [this, c](const result<json>& r) {
    if (r)
      port_.answer(c, *r);
    else
      port_.answer_error(c, r.err().message, r.err().code);
  };
  const auto path = b.value("path", std::string());
  const auto group = b.value("group", std::string());
  const bool unsigned_dir = b.value("unsigned", false);
  if (!path.empty()) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      if (!unsigned_dir)
        return port_.answer_error(c, path +
                                         " is a directory package: it loads only with --unsigned, on a system "
                                         "started with --allow-unsigned");
      if (!ctx_.opts.allow_unsigned)
        return port_.answer_error(c, "this system refuses unsigned packages (" + path +
                                         "); start it with --allow-unsigned to load directory packages");
      return load_directory(path, std::move(done));
    }
    if (unsigned_dir)
      return port_.answer_error(c, "--unsigned is for directory packages; " + path + " is not a directory",
                                errc::invalid_argument);
    return load_archive(path, std::move(done));
  }
  if (group.empty())
    return port_.answer_error(c, "load: give a package archive, a group name or (with --unsigned) a directory",
                              errc::invalid_argument);
  auto newest = newest_of(store_, group);
  if (!newest) return port_.answer_error(c, newest.err().message, newest.err().code);
  load_archive(*newest, std::move(done));
}

void package_manager::load_archive(const fs::path& file, load_done done) {
  bool copied = false;
  auto archive = verify_and_keep(store_, file, &copied, &read_buffer_);
  if (!archive) {
    log_line(TROUPE_LOG_WARN, {}, "refused package: " + archive.err().message);
    ctx_.note(package_event(event_kind::package_refused, "", "", "", archive.err().message));
    return done(archive.err());
  }
  if (join_existing(archive->id, done)) return;
  auto root = manifests::extract_archive(*archive, store_.cache, trees_of(archive->m.package));
  if (!root) {
    log_line(TROUPE_LOG_ERROR, {}, "cannot extract " + archive->source + ": " + root.err().message);
    std::error_code ec;
    if (copied) fs::remove(archive->source, ec);  // not loaded: not kept either
    return done(root.err());
  }
  keep_read_buffer(std::move(archive->payload));
  auto& recent = recent_trees_[archive->m.package];
  if (std::find(recent.begin(), recent.end(), *root) == recent.end()) recent.push_front(*root);
  if (recent.size() > 3) recent.pop_back();
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

std::vector<fs::path> package_manager::trees_of(const std::string& group) const {
  // The group's loaded versions, then the trees extracted last (an unloaded
  // version's tree stays in the cache).
  std::vector<fs::path> out;
  for (const auto* p : packages_.all())
    if (p->m.package == group && !p->root.empty() && p->source != p->root.string()) out.push_back(p->root);
  if (auto it = recent_trees_.find(group); it != recent_trees_.end())
    for (const auto& t : it->second)
      if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  return out;
}

void package_manager::keep_read_buffer(std::string bytes) {
  constexpr std::size_t max_kept = std::size_t{64} << 20;
  constexpr auto kept_for = std::chrono::seconds(30);
  if (bytes.capacity() > max_kept) return;
  read_buffer_ = std::move(bytes);
  if (!read_buffer_timer_) read_buffer_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  read_buffer_timer_->expires_after(kept_for);
  read_buffer_timer_->async_wait([this](const boost::system::error_code& e) {
    if (!e) std::string().swap(read_buffer_);
  });
}

void package_manager::load_directory(const fs::path& dir, load_done done) {
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

bool package_manager::join_existing(const std::string& id, load_done& done) {
  auto* p = packages_.find(id);
  if (p == nullptr) return false;
  if (p->phase == package_phase::loading)
    load_waiters_[id].push_back(std::move(done));
  else if (p->phase == package_phase::unloading)
    done(make_error(errc::refused, "package " + id + " is being unloaded; load it again once it is gone"));
  else
    done(describe_load(*p, true));  // loading a loaded package again is a no-op
  return true;
}

void package_manager::begin_load(package_entry entry, load_done done) {
  const std::string id = entry.id;
  packages_.add(std::move(entry));
  load_waiters_[id].push_back(std::move(done));
  // The worker starts now: it proves the library loads (entry point, ABI,
  // the actor types the manifest declares) before the package is accepted,
  // and the first spawn then finds it running.
  auto w = pool_.worker_for(id);
  if (!w) return fail_load(id, w.err().message);
  auto timer = std::make_unique<asio::steady_timer>(ctx_.io, load_registration_timeout);
  timer->async_wait([this, id](const boost::system::error_code& e) {
    if (e) return;
    auto* p = packages_.find(id);
    if (p != nullptr && p->phase == package_phase::loading)
      fail_load(id, "its worker did not register within " + std::to_string(load_registration_timeout.count()) + " s");
  });
  timers_[id] = std::move(timer);
}

void package_manager::on_worker_ready(worker_proc& w, const json& rid, const json& types) {
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
      const std::string reason =
          pkg->library.filename().string() + " does not register actor type " + missing +
          " declared by its manifest (it registers: " + (registered.empty() ? "none" : registered) + ")";
      pool_.reply_error(w, rid, reason);
      return fail_load(pkg->id, reason);
    }
  }
  pool_.mark_ready(w, rid);
  if (loading) finish_load(pkg->id);
}

void package_manager::finish_load(const std::string& id) {
  auto* p = packages_.find(id);
  if (p == nullptr) return;
  timers_.erase(id);
  p->phase = package_phase::loaded;
  log_line(TROUPE_LOG_INFO, {},
           "loaded package " + describe(*p) + (p->signer.empty() ? ", unsigned" : ", signed by " + p->signer));
  ctx_.note(package_event(event_kind::package_loaded, p->m.package, p->m.version.text, p->id));
  const std::string group = p->m.package;
  const auto change = packages_.update_active(group);
  run_on_load(*p);
  apply_activation(group, change, false);
  publish_loaded();
  if (on_loaded) on_loaded(*p);
  if (!p->signer.empty())
    for (const auto& f : prune(store_, group, p->m.keep, loaded_archives()))
      log_line(TROUPE_LOG_INFO, {}, "keep " + std::to_string(p->m.keep) + ": deleted " + f.string());
  auto waiters = std::move(load_waiters_[id]);
  load_waiters_.erase(id);
  const json body = describe_load(*p, false);
  for (auto& done : waiters) done(body);
  pool_.replenish_standby_soon();
}

void package_manager::fail_load(const std::string& id, const std::string& reason) {
  auto* p = packages_.find(id);
  if (p == nullptr) return;
  timers_.erase(id);
  const std::string message =
      "cannot load " + p->m.package + " " + p->m.version.text + " (" + p->source + "): " + reason;
  log_line(TROUPE_LOG_ERROR, {}, message);
  ctx_.note(package_event(event_kind::package_refused, p->m.package, p->m.version.text, p->id, reason));
  if (auto* w = pool_.find(p->worker)) {
    // Whatever it is doing, the package is refused: it goes now.
    w->st = worker_proc::state::stopping;
    if (w->child) w->child->signal(SIGKILL);
  }
  if (p->adopted) {
    std::error_code ec;
    fs::remove(p->source, ec);  // refused: the package directory is left as it was
  }
  auto waiters = std::move(load_waiters_[id]);
  load_waiters_.erase(id);
  packages_.erase(id);
  for (auto& done : waiters) done(make_error(errc::refused, message));
  pool_.replenish_standby_soon();
}

json package_manager::describe_load(const package_entry& p, bool already) const {
  return json{{"id", p.id},         {"group", p.m.package},      {"version", p.m.version.text},
              {"active", p.active}, {"already_loaded", already}, {"signer", p.signer.empty() ? json() : json(p.signer)},
              {"source", p.source}};
}

std::set<fs::path> package_manager::loaded_archives() const {
  std::set<fs::path> files;
  for (const auto* p : packages_.all()) files.insert(p->source);
  // packages/ is shared by the systems of one TROUPE_HOME: what the others
  // have loaded is spared too (a stale list of a dead system only spares more).
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ctx_.opts.home / "systems", ec)) {
    std::ifstream in(e.path() / "loaded");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) files.insert(line);
  }
  return files;
}

void package_manager::reload_after_crash() {
  // `loaded` outlives the system only when it died without stopping: the
  // packages a convention's leader had are its members' source, so they are
  // loaded again (and verified again, with today's keys).
  std::ifstream in(ctx_.dir / "loaded");
  std::string line;
  std::vector<std::string> archives;
  while (std::getline(in, line))
    if (!line.empty()) archives.push_back(line);
  if (archives.empty()) return;
  log_line(TROUPE_LOG_WARN, {},
           "the previous run on this port ended without stopping: loading its " + std::to_string(archives.size()) +
               " packages again");
  for (const auto& file : archives)
    load_archive(file, [file](const result<json>& r) {
      if (r)
        log_line(TROUPE_LOG_INFO, {}, "loaded again: " + file);
      else
        log_line(TROUPE_LOG_WARN, {}, "not loaded again: " + file + ": " + r.err().message);
    });
}

void package_manager::publish_loaded() const {
  // Atomically (another system never reads half a list) and on disk before
  // the load is answered: the actors a crash restores need their packages.
  std::string list;
  for (const auto* p : packages_.all())
    if (p->phase != package_phase::unloading && !p->signer.empty()) list += p->source + "\n";
  if (auto s = base::write_file_atomically(ctx_.dir / "loaded", list, 0600); !s)
    log_line(TROUPE_LOG_WARN, {}, "the loaded packages are not kept for a crash: " + s.err().message);
}

// ---------------------------------------------------------------- versions

void package_manager::run_on_load(package_entry& p) {
  // A package fetched to host an actor for the convention: its on_load actors
  // run on the leader, where it was loaded.
  if (fetched_.count(p.id)) return;
  for (const auto& spec : p.m.actors) {
    if (!spec.on_load) continue;
    const address a = directory_.allocate();
    if (auto s = actors_.place(a, spec.type, p.id, {}, {}); !s) {
      log_line(TROUPE_LOG_WARN, {},
               "on_load of " + describe(p) + ": cannot create " + spec.type + ": " + s.err().message);
      continue;
    }
    p.on_load[spec.type] = a;
    if (spec.on_load->role) p.roles[*spec.on_load->role] = a;
    if (spec.on_load->message)
      gateway_.send(*directory_.find(a), ipc::record_kind::tell, 0, "json", spec.on_load->message->dump());
  }
}

void package_manager::send_hook(const package_entry& p, const char* which) {
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
    for (address a : targets) gateway_.send(*directory_.find(a), ipc::record_kind::tell, 0, "json", payload);
    sent += targets.size();
  }
  if (sent > 0)
    log_line(TROUPE_LOG_INFO, {},
             std::string(which) + " sent to " + std::to_string(sent) + " actors of " + describe(p));
}

void package_manager::apply_activation(const std::string& group, const activation& change, bool reactivating) {
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

void package_manager::bind_group_names(const std::string& group) {
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
        log_line(TROUPE_LOG_WARN, {},
                 "global name '" + name + "' of " + describe(*active) + " is held by " + holder->addr.to_string() +
                     " of another group; left there");
        continue;
      }
      directory_.unbind_name(holder->addr);
    }
    if (auto s = directory_.bind_name(it->second, name); !s) {
      log_line(TROUPE_LOG_WARN, {}, "global name '" + name + "': " + s.err().message);
      continue;
    }
    pool_.send_ready(cmd::supervisor::forget_name, json{{"name", name}});
  }
}

// ---------------------------------------------------------------- unload

void package_manager::cmd_unload(const client_ref& c, const json& b) {
  const auto spec = b.value("package", std::string());
  // Already being unloaded (named by id or prefix): wait for the same end.
  if (is_hex_id_prefix(spec) && spec.size() >= 6)
    for (const auto* p : packages_.all())
      if (p->phase == package_phase::unloading && p->id.str().starts_with(spec)) {
        unload_waiters_[p->id].push_back(c);
        return;
      }
  auto p = packages_.resolve(spec);
  if (!p) return port_.answer_error(c, p.err().message, p.err().code);
  if (!(*p)->id.str().starts_with(spec))
    return port_.answer_error(c,
                              "unload takes a package hash or a prefix of one; '" + spec +
                                  "' is a group (its active version is " + (*p)->id + ")",
                              errc::invalid_argument);
  const std::string id = (*p)->id;
  unload_waiters_[id].push_back(c);
  begin_unload(id, "unloaded by the operator");
}

void package_manager::begin_unload(const std::string& id, const char* reason) {
  auto* p = packages_.find(id);
  if (p == nullptr || p->phase == package_phase::unloading) return;
  log_line(TROUPE_LOG_INFO, {}, "unloading " + describe(*p) + ": " + reason);
  // The director manual's order: on_deactivate, then exit requests. A
  // version that is no longer active had its on_deactivate already.
  if (p->active) send_hook(*p, "on_deactivate");
  p->phase = package_phase::unloading;
  // Members that fetched it unload it too; its actors there stop.
  if (on_unloading) on_unloading(id);
  const std::string group = p->m.package;
  apply_activation(group, packages_.update_active(group), true);

  std::vector<address> mine;
  for (const auto* rec : directory_.all())
    if (rec->package_id == id) mine.push_back(rec->addr);
  for (address a : mine) {
    auto* rec = directory_.find(a);
    if (rec == nullptr) continue;
    if (rec->state == actor_state::running) {
      actors_.send_exit(*rec, "package unloaded");
    } else if (rec->state == actor_state::failed) {
      directory_.remove(a);
    } else if (rec->state == actor_state::starting) {
      const auto* w = pool_.find(rec->worker);
      if (w == nullptr || w->st != worker_proc::state::ready) {
        actors_.drop_pending_create(a);                                       // never created: nothing to stop
        actors_.notify_watchers(a, exit_event::stopped, "package unloaded");  // an unload is no failure
        actors_.fail_actor(*rec, "package unloaded");
        directory_.remove(a);
      }  // else its creation is under way; on_created stops it
    }
  }
  auto timer = std::make_unique<asio::steady_timer>(ctx_.io, unload_grace);
  timer->async_wait([this, id](const boost::system::error_code& e) {
    if (e) return;
    auto* pkg = packages_.find(id);
    if (pkg == nullptr) return;
    for (auto& [_, w] : pool_.all())  // its shared worker and its dedicated ones
      if (w.package_id == id && w.child) {
        log_line(TROUPE_LOG_WARN, {},
                 "unloading " + describe(*pkg) + ": actors did not stop in time: SIGKILL " + w.identity);
        w.st = worker_proc::state::stopping;
        w.child->signal(SIGKILL);
      }
  });
  timers_[id] = std::move(timer);
  maybe_finish_unload(id);
}

void package_manager::maybe_finish_unload(const std::string& id) {
  auto* p = packages_.find(id);
  if (p == nullptr || p->phase != package_phase::unloading) return;
  for (const auto* rec : directory_.all())
    if (rec->package_id == id) return;  // actors still stopping
  // Then its workers: the shared one and any dedicated ones.
  std::vector<std::uint32_t> crashed;  // waiting for their restart: nothing to stop
  bool stopping = false;
  for (auto& [wid, w] : pool_.all()) {
    if (w.package_id != id) continue;
    if (!w.child) {
      crashed.push_back(wid);
      continue;
    }
    pool_.stop_worker(w, "package unloaded");
    stopping = true;
  }
  for (auto wid : crashed) pool_.forget(wid);
  if (stopping) return;  // on_worker_exit comes back here once each is gone
  log_line(TROUPE_LOG_INFO, {}, "unloaded " + describe(*p));
  ctx_.note(package_event(event_kind::package_unloaded, p->m.package, p->m.version.text, p->id));
  const json body{{"id", p->id}, {"group", p->m.package}, {"version", p->m.version.text}};
  timers_.erase(id);
  packages_.erase(id);
  publish_loaded();
  auto waiters = std::move(unload_waiters_[id]);
  unload_waiters_.erase(id);
  for (auto& c : waiters) port_.answer(c, body);
}

// ---------------------------------------------------------------- queries

void package_manager::cmd_list(const client_ref& c) {
  json out = json::array();
  for (const auto* p : packages_.all()) {
    std::size_t actors = 0;
    for (const auto* rec : directory_.all()) actors += rec->package_id == p->id;
    json types = json::array();
    for (const auto& a : p->m.actors) types.push_back(a.type);
    json roles = json::object();
    for (const auto& [role, a] : p->roles) roles[role] = a.to_string();
    json entry{{"group", p->m.package},
               {"version", p->m.version.text},
               {"id", p->id},
               {"active", p->active},
               {"phase", to_string(p->phase)},
               {"actors", actors},
               {"types", types},
               {"roles", roles},
               {"source", p->source},
               {"signer", p->signer.empty() ? json() : json(p->signer)},
               {"worker_pid", json()}};
    if (const int pid = pool_.pid_of(p->worker); pid > 0) entry["worker_pid"] = pid;
    if (!p->broken.empty()) entry["error"] = p->broken;
    out.push_back(std::move(entry));
  }
  port_.answer(c, json{{"packages", out}});
}

void package_manager::cmd_avail(const client_ref& c) {
  json groups = json::array();
  for (const auto& a : scan(store_)) {
    if (groups.empty() || groups.back()["group"] != a.group)
      groups.push_back(json{{"group", a.group}, {"archives", json::array()}});
    const auto* p = a.id.empty() ? nullptr : packages_.find(a.id);
    json entry{{"file", a.file.string()},
               {"version", a.version},
               {"id", a.id},
               {"loaded", p != nullptr && p->phase == package_phase::loaded},
               {"active", p != nullptr && p->active},
               {"signer", a.signer.empty() ? json() : json(a.signer)}};
    if (!a.error.empty()) entry["error"] = a.error;
    groups.back()["archives"].push_back(std::move(entry));
  }
  port_.answer(c, json{{"dir", store_.packages.string()}, {"groups", groups}});
}

void package_manager::cmd_refresh(const client_ref& c) {
  struct refresh_op {
    client_ref client;
    std::size_t pending = 1;  // held by this function until every load has started
    json results = json::array();
  };
  auto op = std::make_shared<refresh_op>();
  op->client = c;
  auto finish_one = [this, op] {
    if (--op->pending == 0) port_.answer(op->client, json{{"groups", op->results}});
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

void package_manager::cmd_role(const client_ref& c, const json& b) {
  const auto name = b.value("role", std::string());
  if (name.empty()) return port_.answer_error(c, "role: no role name given", errc::invalid_argument);
  auto a = packages_.role(name, b.value("group", std::string()));
  if (!a) return port_.answer_error(c, a.err().message, a.err().code);
  const auto* rec = directory_.find(*a);
  const auto* p = rec ? packages_.find(rec->package_id) : nullptr;
  port_.answer(c, json{{"role", name},
                       {"address", a->to_string()},
                       {"state", rec ? json(to_string(rec->state)) : json("stopped")},
                       {"group", p ? json(p->m.package) : json()},
                       {"version", p ? json(p->m.version.text) : json()},
                       {"id", p ? json(p->id) : json()}});
}

}  // namespace troupe::supervisor
