#include "supervisor/system_impl.hpp"

#include "supervisor/capabilities.hpp"

#include <unistd.h>

#include <csignal>
#include <fstream>
#include <random>
#include <utility>

namespace troupe::supervisor {

fs::path state_dir(const fs::path& home, std::uint16_t port) {
  return home / "systems" / std::to_string(port);
}

namespace {

// A fresh id at every start: serials restart at 16, so an address from an
// earlier run can never be mistaken for one of this run's actors.
std::uint32_t make_system_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint32_t> dist(1, 0xffffffffu);
  return dist(rd);
}

status replace_link(const fs::path& link, const fs::path& target) {
  // A new link renamed over the old one: the switch is atomic for a worker
  // resolving a library through it.
  fs::path tmp = link;
  tmp += ".new";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_directory_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, link, ec);
  if (ec) return make_error(errc::io, "cannot link " + link.string() + " to " + target.string() + ": " + ec.message());
  return ok_v;
}

/// A reply's payload as the client gets it: its JSON, or the bytes as a
/// string when they are not JSON. Too deeply nested is an error: the reply
/// is dumped again on its way out.
result<json> payload_as_json(std::string_view payload, std::size_t max_depth) {
  auto j = ipc::parse_json(payload, max_depth);
  if (j) return j;
  if (j.err().code == errc::limit) return j.err();
  return json(std::string(payload));
}


}  // namespace

// ---------------------------------------------------------------- setup

status system::setup() {
  raise_descriptor_limit();
  std::error_code ec;
  fs::create_directories(run_dir_, ec);
  if (ec) return make_error(errc::io, "cannot create " + run_dir_.string() + ": " + ec.message());
  if (auto s = prepare(store_); !s) return s;
  if (endpoint_of("w4294967295-4294967295.sock").size() - 6 > max_ipc_path)
    return make_error(errc::invalid_argument, "TROUPE_HOME path too long for ipc sockets (" +
                                                  run_dir_.string() + "); use a shorter one");
  directory_ = directory(make_system_id());
  try {
    zmq::socket_t socket(zmq_, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 500);  // the answer to "shutdown" must leave
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.bind("tcp://" + opts_.bind_host + ":" + std::to_string(opts_.port));
    public_ = std::make_unique<ipc::watched_socket>(io_, std::move(socket), [this] { on_public(); });
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, "cannot listen on " + opts_.bind_host + ":" +
                                    std::to_string(opts_.port) + ": " + e.what());
  }
  // The port is ours: sockets left in run/ belong to a system on this port
  // that died without cleaning up (only now is removing them safe).
  for (const auto& e : fs::directory_iterator(run_dir_, ec)) fs::remove_all(e.path(), ec);
  fs::create_directories(run_dir_ / "empty", ec);
  try {
    control_ = zmq::socket_t(zmq_, zmq::socket_type::router);
    control_.set(zmq::sockopt::linger, 0);
    // A restarted worker reconnects under its old routing id: hand it over
    // instead of routing into the dead connection (libzmq #1575).
    control_.set(zmq::sockopt::router_handover, 1);
    control_.set(zmq::sockopt::router_mandatory, 1);
    ipc::configure_control_socket(control_);
    control_.bind(endpoint_of("c.sock"));
    gateway_ = zmq::socket_t(zmq_, zmq::socket_type::pull);
    ipc::configure_data_socket(gateway_);
    gateway_.bind(endpoint_of("g.sock"));
    if (opts_.no_loss) link_.enable_acks(endpoint_of("g.sock"));
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, std::string("cannot bind the system's ipc sockets in ") +
                                    run_dir_.string() + ": " + e.what());
  }
  if (auto s = setup_convention(); !s) return s;
  control_watch_ = std::make_unique<ipc::socket_watcher>(io_, control_, [this] { on_control(); });
  gateway_watch_ = std::make_unique<ipc::socket_watcher>(io_, gateway_, [this] { on_gateway(); });
  public_->start();
  control_watch_->start();
  gateway_watch_->start();
  for (auto* w : {zap_watch_.get(), peer_watch_.get(), discovery_watch_.get()})
    if (w != nullptr) w->start();
  signals_.async_wait([this](const boost::system::error_code& e, int) {
    if (!e) begin_shutdown();
  });
  std::ofstream(dir_ / "pid") << ::getpid() << "\n";
  return ok_v;
}

void system::finish_setup() {
  replenish_standby();
  heartbeat_tick();
  if (leader_) reload_after_crash();
  log_line(TROUPE_LOG_INFO, {}, "system " + address(directory_.system_id(), 0).to_string().substr(1, 8) +
                                    " serving on " + opts_.bind_host + ":" + std::to_string(opts_.port));
  if (opts_.ready_fd >= 0) {
    const std::string line = "ready " + std::to_string(::getpid()) + "\n";
    (void)!::write(opts_.ready_fd, line.data(), line.size());
    ::close(opts_.ready_fd);
  }
}

int system::run() {
  ipc::set_log_tag("system:" + std::to_string(opts_.port));
  if (auto s = setup(); !s) {
    log_line(TROUPE_LOG_ERROR, {}, s.err().message);
    if (opts_.ready_fd >= 0) {
      const std::string line = "error " + s.err().message + "\n";
      (void)!::write(opts_.ready_fd, line.data(), line.size());
      ::close(opts_.ready_fd);
    }
    return system_exit_setup;
  }
  finish_setup();
  io_.run();
  std::error_code ec;
  fs::remove(dir_ / "pid", ec);
  fs::remove(dir_ / "loaded", ec);
  for (const auto& e : fs::directory_iterator(run_dir_, ec)) fs::remove_all(e.path(), ec);
  log_line(TROUPE_LOG_INFO, {}, "system stopped");
  return system_exit_ok;
}

// ---------------------------------------------------------------- clients

void system::on_public() {
  auto parts = public_->receive();
  if (parts.size() < 2) return;
  const std::string identity = parts[0].to_string();
  auto m = ipc::decode_control(parts, 1, opts_.max_json_depth);
  if (!m) {
    // Answer what can be answered; a peer that does not speak the protocol
    // at all is only logged (never crashes or stalls the system).
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed client message: " + m.err().message);
    // Echo the rid when the last frame still reads as a body carrying one, so
    // the client can match the error instead of waiting for its timeout.
    const json rid = ipc::top_level_scalar(parts.back().to_string_view(), "rid");
    auto body = ipc::error_reply(rid, m.err().message);
    body["code"] = to_string(m.err().code == errc::limit ? errc::limit : errc::protocol);
    public_->send_control(identity, "reply", body);
    return;
  }
  handle_client(identity, *m);
}

void system::handle_client(const std::string& identity, const ipc::control_message& m) {
  client_ref c{identity, m.body.value("rid", json())};
  if (stopping_ && m.command != "status" && m.command != "ping" && m.command != "shutdown")
    return answer_error(c, "the system is shutting down", errc::unavailable);
  try {
    dispatch(c, m.command, m.body);
  } catch (const json::exception& e) {
    // A field of the wrong JSON type: the client's mistake, not ours.
    answer_error(c, "malformed '" + m.command + "' request: " + e.what(), errc::invalid_argument);
  }
}

void system::dispatch(const client_ref& c, const std::string& command, const json& b) {
  if (command == "status" || command == "ping") cmd_status(c);
  else if (command == "load") cmd_load(c, b);
  else if (command == "unload") cmd_unload(c, b);
  else if (command == "list") cmd_list(c);
  else if (command == "avail") cmd_avail(c);
  else if (command == "refresh") cmd_refresh(c);
  else if (command == "role") cmd_role(c, b);
  else if (command == "spawn") cmd_spawn(c, b);
  else if (command == "tell") cmd_send(c, b, false);
  else if (command == "ask") cmd_send(c, b, true);
  else if (command == "actors") cmd_actors(c);
  else if (command == "kill") cmd_kill(c, b);
  else if (command == "systems") cmd_systems(c);
  else if (command == "chgcap") cmd_chgcap(c, b);
  else if (command == "move") cmd_move(c, b);
  else if (command == "shutdown") cmd_shutdown(c);
  else answer_error(c, "unknown command '" + command + "'", errc::invalid_argument);
}

void system::cmd_status(const client_ref& c) {
  const auto up = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  answer(c, json{{"system", address(directory_.system_id(), 0).to_string().substr(1, 8)},
                 {"port", opts_.port},
                 {"pid", ::getpid()},
                 {"uptime_ms", up.count()},
                 {"capabilities", to_json(opts_.caps)},
                 {"packages", packages_.size()},
                 // Workers of loaded packages (one refused a moment ago may not be reaped yet).
                 {"workers", std::count_if(workers_.begin(), workers_.end(),
                                           [this](const auto& w) { return packages_.find(w.second.package_id) != nullptr; })},
                 {"standby_workers", std::count_if(workers_.begin(), workers_.end(),
                                                   [](const auto& w) { return w.second.package_id.empty(); })},
                 {"standby_ready", std::count_if(workers_.begin(), workers_.end(), [](const auto& w) {
                    return w.second.package_id.empty() && w.second.st == worker_proc::state::standby;
                  })},
                 {"standby_target", opts_.standby_workers},
                 {"actors", directory_.size()},
                 {"state", stopping_ ? "stopping" : "running"},
                 {"leader", opts_.leader},
                 {"is_leader", leader_},
                 {"joined", leader_ || joined_},
                 // What a member needs to join: the peer socket and the key it must trust.
                 {"peer", leader_ ? json(peer_endpoint_) : json()},
                 {"key", curve_.public_key}});
}

result<std::string> system::choose_package(const std::string& type, const std::string& spec) {
  if (!spec.empty()) {
    auto p = packages_.resolve(spec);
    if (!p) return p.err();
    if ((*p)->m.find_actor(type) == nullptr)
      return make_error(errc::not_found, "unknown actor type '" + type + "' (not in package " + (*p)->m.package +
                                             " " + (*p)->m.version.text + ")");
    return (*p)->id;
  }
  std::vector<const package_entry*> with_type;
  for (const auto* p : packages_.all())
    if (p->active && p->m.find_actor(type) != nullptr) with_type.push_back(p);
  if (with_type.empty()) return make_error(errc::not_found, "unknown actor type '" + type + "' (not in any loaded package)");
  if (with_type.size() > 1) {
    std::string groups;
    for (const auto* p : with_type) groups += (groups.empty() ? "" : ", ") + p->m.package;
    return make_error(errc::invalid_argument, "actor type '" + type + "' is in several packages (" +
                                                  groups + "): pass --package");
  }
  return with_type.front()->id;
}

void system::cmd_spawn(const client_ref& c, const json& b) {
  const auto type = b.value("type", std::string());
  const auto name = b.value("name", std::string());
  if (type.empty()) return answer_error(c, "spawn: no actor type given", errc::invalid_argument);
  if (!leader_) {
    // The leader holds the packages and places every actor of the convention.
    if (!joined_) return answer_error(c, "the convention leader at " + opts_.leader + " is unreachable", errc::unavailable);
    json forwarded = b;
    if (c.via == 0) forwarded["origin"] = self_hex();
    return forward_call(c, leader_id_, "spawn", forwarded, std::chrono::seconds(15));
  }
  auto pkg = choose_package(type, b.value("package", std::string()));
  if (!pkg) return answer_error(c, pkg.err().message, pkg.err().code);
  cmd_convention_spawn(c, b, type, *pkg);
}

status system::place(address a, const std::string& type, const std::string& package_id,
                     const std::string& name, address parent, bool fresh_worker) {
  // Checked before a worker is started for nothing.
  if (!name.empty())
    if (auto s = directory_.check_name(name); !s) return s;
  auto* pkg = packages_.find(package_id);
  if (pkg == nullptr || pkg->phase == package_phase::unloading)
    return make_error(errc::not_found, "package " + package_id + " is not loaded on this system");
  if (!pkg->broken.empty())
    return make_error(errc::refused, "package " + pkg->m.package + " " + pkg->m.version.text +
                                         " cannot start: " + pkg->broken);
  const auto* spec = pkg->m.find_actor(type);
  const bool dedicated =
      fresh_worker || (spec != nullptr && spec->isolation == manifests::isolation_mode::dedicated);
  auto w = worker_for(package_id, dedicated);
  if (!w) return w.err();
  actor_record rec{a, type, package_id, name, (*w)->id, actor_state::starting, 0, {}, parent, {}};
  if (auto s = directory_.add(std::move(rec)); !s) {
    retire_dedicated_worker((*w)->id);  // started for this actor alone
    return s;
  }
  json create = create_body(*directory_.find(a), *pkg);
  if ((*w)->st == worker_proc::state::ready) to_worker(**w, "create", create);
  else (*w)->pending_creates.push_back(std::move(create));
  return ok_v;
}

result<worker_proc*> system::worker_for(const std::string& package_id, bool dedicated) {
  auto& pkg = *packages_.find(package_id);
  if (!dedicated)
    if (auto it = workers_.find(pkg.worker); it != workers_.end()) return &it->second;
  // A standby worker has already paid for exec, dynamic linking and its
  // sockets: the package only waits for its own dlopen.
  worker_proc* w = nullptr;
  for (auto& [_, candidate] : workers_)
    if (candidate.package_id.empty() && (candidate.st == worker_proc::state::starting ||
                                         candidate.st == worker_proc::state::standby)) {
      w = &candidate;
      break;
    }
  if (w == nullptr) {
    auto launched = launch_worker();
    if (!launched) return launched.err();
    w = *launched;
  }
  w->dedicated = dedicated;
  if (!dedicated) pkg.worker = w->id;
  if (auto s = assign(*w, pkg); !s) return s.err();
  // Replaced once a load is answered (finish_load): starting a process
  // blocks this loop for a moment.
  if (pkg.phase != package_phase::loading) replenish_standby();
  return w;
}

result<worker_proc*> system::launch_worker() {
  // Refused before the process exists: past its descriptor limit the daemon
  // could not accept the worker's connections (ZeroMQ aborts on EMFILE in an
  // ipc listener, and spins on it in a TCP one).
  if (workers_.size() >= opts_.max_workers)
    return make_error(errc::limit, "cannot start another worker: " + std::to_string(workers_.size()) +
                                       " run, the most this system allows (start --max-workers)");
  if (const auto fds = descriptors_in_use(); fds.room() < worker_descriptor_cost + descriptor_reserve)
    return make_error(errc::limit, "cannot start another worker: " + std::to_string(fds.open) + " of " +
                                       std::to_string(fds.limit) +
                                       " descriptors in use (RLIMIT_NOFILE; each worker takes about " +
                                       std::to_string(worker_descriptor_cost) + ")");
  const std::uint32_t id = next_worker_id_++;
  worker_proc& w = workers_[id];
  w.id = id;
  w.identity = "w" + std::to_string(id);
  if (auto s = start_worker(w); !s) {
    forget_worker(id);
    return s.err();
  }
  return &w;
}

void system::forget_worker(std::uint32_t id) {
  if (auto it = workers_.find(id); it != workers_.end()) {
    // Its inbox is gone for good: drop the connection, or ZeroMQ keeps a
    // socket retrying it for the life of the system.
    link_.disconnect(it->second.inbox);
    if (auto* p = packages_.find(it->second.package_id); p != nullptr && p->worker == id) p->worker = 0;
  }
  std::error_code ec;
  fs::remove_all(run_dir_ / ("w" + std::to_string(id)), ec);
  workers_.erase(id);
}

void system::retire_dedicated_worker(std::uint32_t id) {
  auto it = workers_.find(id);
  // A dead one is forgotten where its exit is handled.
  if (it == workers_.end() || !it->second.dedicated || !it->second.child) return;
  worker_proc& w = it->second;
  if (w.st == worker_proc::state::stopping) return;
  for (const auto* rec : directory_.on_worker(id))
    if (rec->state != actor_state::failed) return;  // its actor is still there
  if (w.st == worker_proc::state::starting) w.child->signal(SIGTERM);  // not connected yet
  else to_worker(w, "shutdown", json{{"reason", "its actor is gone"}});
  w.st = worker_proc::state::stopping;  // on_worker_exit then forgets it
}

void system::replenish_standby_soon() {
  // Starting a process blocks this loop until its exec, and its start-up
  // competes for the CPUs: not while the client that just loaded a package
  // spawns and asks its first actor.
  if (standby_timer_ == nullptr) standby_timer_ = std::make_unique<asio::steady_timer>(io_);
  standby_timer_->expires_after(standby_delay);
  standby_timer_->async_wait([this](const boost::system::error_code& e) {
    if (!e) replenish_standby();
  });
}

status system::assign(worker_proc& w, package_entry& pkg) {
  w.package_id = pkg.id;
  log_line(TROUPE_LOG_INFO, {}, "worker " + w.identity + " runs " + pkg.m.package + " " + pkg.m.version.text +
                                    (w.dedicated ? " (dedicated)" : ""));
  if (w.st == worker_proc::state::standby) send_assignment(w);
  return ok_v;
}

void system::send_assignment(worker_proc& w) {
  const auto& pkg = *packages_.find(w.package_id);
  // Pointed at the package only now: at exec they led to an empty
  // directory, so the worker's own libraries never come from a package.
  const fs::path dir = run_dir_ / w.identity;
  std::error_code ec;
  const fs::path lib = fs::is_directory(pkg.lib_dir, ec) ? pkg.lib_dir : run_dir_ / "empty";
  status linked = replace_link(dir / "lib", lib);
  if (linked) linked = replace_link(dir / "pkg", pkg.root);
  if (!linked) {
    reply_worker_error(w.identity, w.hello_rid, linked.err().message);
    w.st = worker_proc::state::stopping;
    if (pkg.phase == package_phase::loading) fail_load(pkg.id, linked.err().message);
    return;
  }
  auto block = directory_.allocate_block(ipc::address_block_size);
  reply_worker(w.identity, w.hello_rid,
               json{{"system", directory_.system_id()}, {"first", block.first}, {"count", block.count},
                    {"gateway", endpoint_of("g.sock")}, {"library", pkg.library.string()},
                    {"package_id", pkg.id}, {"delivery", opts_.no_loss ? "no-loss" : "best-effort"}});
  w.st = worker_proc::state::assigned;
}

void system::replenish_standby() {
  if (stopping_) return;
  std::uint32_t waiting = 0;
  for (const auto& [_, w] : workers_) waiting += w.package_id.empty();
  for (; waiting < opts_.standby_workers; ++waiting) {
    auto w = launch_worker();
    if (!w) {
      // Once per shortage, not at every spawn while it lasts.
      if (!standby_shortage_logged_)
        log_line(TROUPE_LOG_WARN, {}, "cannot start a standby worker: " + w.err().message);
      standby_shortage_logged_ = true;
      return;
    }
    standby_shortage_logged_ = false;
    log_line(TROUPE_LOG_INFO, {}, "worker " + (*w)->identity + " is a standby");
  }
}


status system::start_worker(worker_proc& w) {
  // Its library path goes through these links, which lead nowhere until it
  // is told its package (send_assignment).
  const fs::path dir = run_dir_ / w.identity;
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (const char* link : {"lib", "pkg"})
    if (auto s = replace_link(dir / link, run_dir_ / "empty"); !s) return s;
  if (auto s = ipc::create_handling_file(marker_of(w)); !s) return s;
  w.inbox = endpoint_of(w.identity + "-" + std::to_string(++w.incarnation) + ".sock");
  launch_spec spec;
  spec.exe = opts_.worker_exe.string();
  spec.args = {"--control", endpoint_of("c.sock"), "--inbox", w.inbox, "--worker-id", std::to_string(w.id),
               "--marker", marker_of(w).string()};
  // Its package's private libraries, and nothing of another package's,
  // through links that send_assignment() points at that package (glibc
  // reads LD_LIBRARY_PATH once, at exec, but follows the links at each dlopen).
  spec.env["LD_LIBRARY_PATH"] = (dir / "lib").string() + ":" + (dir / "pkg").string();
  w.st = worker_proc::state::starting;
  const std::uint32_t id = w.id;
  auto child = launch(io_, spec, [this, id](int st) { on_worker_exit(id, st); });
  if (!child) return child.err();
  w.child = std::move(*child);
  const auto* pkg = packages_.find(w.package_id);
  log_line(TROUPE_LOG_INFO, {}, "started worker " + w.identity + " (pid " + std::to_string(w.child->pid()) + ")" +
                                    (pkg ? " for " + pkg->m.package + " " + pkg->m.version.text : ""));
  return ok_v;
}

void system::cmd_send(const client_ref& c, const json& b, bool is_ask) {
  const auto target = b.value("target", std::string());
  auto* rec = directory_.find_target(target);
  if (rec != nullptr && rec->state == actor_state::stopping)
    if (auto l = locations_.find(rec->addr); l != locations_.end() && l->second.ph != location::phase::placed)
      rec = nullptr;  // leaving this system: held until it runs elsewhere
  if (rec == nullptr && route_remote(c, is_ask ? "ask" : "tell", b, target)) return;
  if (rec == nullptr) {
    std::string what = target.empty() ? "no target given"
                       : target.front() == '@' && !address::parse(target)
                           ? "'" + target + "' is not a valid address"
                           : "unknown address or name '" + target + "'";
    return answer_error(c, what, errc::not_found);
  }
  if (rec->state == actor_state::failed)
    return answer_error(c, rec->addr.to_string() + " has failed: " + rec->last_reason, errc::not_found);
  if (!b.contains("payload")) return answer_error(c, "no payload given", errc::invalid_argument);
  const auto type = b.value("type", std::string("json"));
  const auto payload = b["payload"].dump();
  if (!ipc::record_fits(type.size(), payload.size()))
    return answer_error(c, "message too large (type at most 65535 bytes, record at most 64 MiB)",
                        errc::invalid_argument);
  if (!is_ask) {
    send_from_gateway(*rec, ipc::record_kind::tell, 0, type, payload);
    return answer(c, json{{"address", rec->addr.to_string()}});
  }
  const std::uint64_t corr = next_correlation_++;
  auto timeout = std::chrono::milliseconds(b.value("timeout_ms", default_ask_timeout.count()));
  auto timer = std::make_unique<asio::steady_timer>(io_, timeout);
  timer->async_wait([this, corr, a = rec->addr, timeout](const boost::system::error_code& e) {
    if (e) return;
    auto it = gateway_asks_.find(corr);
    if (it == gateway_asks_.end()) return;
    answer_error(it->second.client,
                 "ask to " + a.to_string() + " timed out after " + std::to_string(timeout.count()) + " ms",
                 errc::timeout);
    gateway_asks_.erase(it);
  });
  gateway_asks_.emplace(corr, gateway_ask{c, std::move(timer)});
  send_from_gateway(*rec, ipc::record_kind::ask, corr, type, payload);
}

void system::send_from_gateway(actor_record& rec, ipc::record_kind kind, std::uint64_t corr,
                               const std::string& type, const std::string& payload) {
  auto w = workers_.find(rec.worker);
  if (rec.state != actor_state::running || w == workers_.end() ||
      w->second.st != worker_proc::state::ready) {
    held_[rec.addr].push_back(held_message{kind, corr, type, payload});
    return;
  }
  link_.send(link_.connect(w->second.inbox),
             ipc::record_view{kind, 0, rec.addr, gateway_address(), corr, 0, type, payload});
}

void system::flush_held(address a) {
  auto it = held_.find(a);
  if (it == held_.end()) return;
  auto msgs = std::move(it->second);
  held_.erase(it);
  auto* rec = directory_.find(a);
  if (rec == nullptr) return;
  for (auto& m : msgs) send_from_gateway(*rec, m.kind, m.correlation, m.type, m.payload);
}

void system::fail_held(address a, const std::string& reason) {
  auto it = held_.find(a);
  if (it == held_.end()) return;
  for (auto& m : it->second) {
    if (m.kind != ipc::record_kind::ask) continue;
    if (auto g = gateway_asks_.find(m.correlation); g != gateway_asks_.end()) {
      answer_error(g->second.client, reason, errc::not_found);
      gateway_asks_.erase(g);
    }
  }
  held_.erase(it);
}

void system::on_gateway() {
  zmq::message_t frame;
  if (!gateway_.recv(frame, zmq::recv_flags::dontwait)) return;
  std::uint32_t channel = 0;
  auto s = ipc::decode_batch(frame.to_string_view(), [this, &channel](const ipc::record_view& r) {
    switch (r.kind) {
      case ipc::record_kind::channel:
        if (opts_.no_loss) channel = gateway_ledger_.open(r.correlation, r.payload);
        return;
      case ipc::record_kind::ack:
        // The gateway's messages cause nothing it must acknowledge in turn.
        link_.on_ack(r.correlation, ipc::decode_ack_first(r.payload), r.seq, [](ipc::cause) {});
        return;
      default:
        break;
    }
    // Everything here is handled on the spot: acknowledged once the frame is read.
    if (channel != 0 && r.seq != 0) gateway_ledger_.release(gateway_ledger_.begin(channel, r.seq));
    // For an actor of another system (resolve_for sent the worker here).
    if (r.to != gateway_address()) return relay_record(r);
    if (r.kind == ipc::record_kind::dead_letter) {
      log_line(TROUPE_LOG_WARN, {}, "dead letter for a client message to " + r.from.to_string() +
                                        ": " + std::string(r.payload));
      return;
    }
    if (r.kind == ipc::record_kind::poison) {
      auto parts = ipc::decode_poison(r.payload);
      log_line(TROUPE_LOG_WARN, {}, "client message to " + r.from.to_string() + " returned as poison: " +
                                        (parts ? std::string(parts->first) : parts.err().message));
      return;
    }
    if (r.kind != ipc::record_kind::reply && r.kind != ipc::record_kind::ask_failed) return;
    auto it = gateway_asks_.find(r.correlation);
    if (it == gateway_asks_.end()) return;  // answered after its timeout
    if (r.kind == ipc::record_kind::reply) {
      if (auto payload = payload_as_json(r.payload, opts_.max_json_depth))
        answer(it->second.client,
               json{{"payload", std::move(*payload)}, {"type", std::string(r.type)}, {"from", r.from.to_string()}});
      else
        answer_error(it->second.client, "the reply of " + r.from.to_string() + " is refused: " + payload.err().message,
                     errc::limit);
    } else
      answer_error(it->second.client, std::string(r.payload), errc::not_found);
    it->second.timer->cancel();
    gateway_asks_.erase(it);
  });
  if (!s) log_line(TROUPE_LOG_WARN, {}, "dropped malformed data frame on the gateway: " + s.err().message);
  send_gateway_acks();
}

void system::send_gateway_acks() {
  gateway_ledger_.take_acks([this](std::string_view endpoint, std::uint64_t channel, std::uint64_t first,
                                    std::uint64_t last) {
    const std::string from = ipc::encode_ack_first(first);
    link_.send(link_.connect(std::string(endpoint)),
               ipc::record_view{ipc::record_kind::ack, 0, {}, {}, channel, last, {}, from});
  });
}

void system::resend_from_gateway(std::vector<ipc::data_link::kept_batch> kept,
                                 const ipc::handling_snapshot& last, const std::string& how) {
  for (auto& batch : kept) {
    std::uint64_t channel_id = 0;
    auto s = ipc::decode_batch(*batch.frame, [&](const ipc::record_view& r) {
      if (r.kind == ipc::record_kind::channel) channel_id = r.correlation;
      if (r.seq == 0 || !batch.holds(r.seq) || batch.is_acked(r.seq)) return;
      if (r.kind != ipc::record_kind::tell && r.kind != ipc::record_kind::ask) return;
      const bool poisoned = last.handling && channel_id == last.origin.channel_id && r.seq == last.origin.seq;
      auto* rec = directory_.find(r.to);
      std::string failure;
      if (poisoned) failure = "poison: " + r.to.to_string() + " died (" + how + ") while handling this message";
      else if (rec == nullptr) failure = "no actor at " + r.to.to_string() + " (stopped)";
      else if (rec->state == actor_state::failed) failure = r.to.to_string() + " has failed: " + rec->last_reason;
      if (failure.empty()) {
        send_from_gateway(*rec, r.kind, r.correlation, std::string(r.type), std::string(r.payload));
        return;
      }
      if (r.kind == ipc::record_kind::tell) {
        log_line(TROUPE_LOG_WARN, {}, "client message to " + r.to.to_string() + " lost: " + failure);
        return;
      }
      if (auto g = gateway_asks_.find(r.correlation); g != gateway_asks_.end()) {
        answer_error(g->second.client, failure, poisoned ? errc::refused : errc::not_found);
        g->second.timer->cancel();
        gateway_asks_.erase(g);
      }
    });
    if (!s) log_line(TROUPE_LOG_ERROR, {}, "kept frame unreadable (a bug): " + s.err().message);
  }
}

void system::cmd_actors(const client_ref& c) {
  json out = json::array();
  for (const auto* rec : directory_.all()) {
    const auto* pkg = packages_.find(rec->package_id);
    json entry{{"address", rec->addr.to_string()},
               {"name", rec->name.empty() ? json() : json(rec->name)},
               {"type", rec->type},
               {"package", pkg ? json(pkg->m.package) : json()},
               {"version", pkg ? json(pkg->m.version.text) : json()},
               {"package_id", rec->package_id},
               {"system", opts_.bind_host + ":" + std::to_string(opts_.port)},
               {"worker_pid", json()},
               {"state", to_string(rec->state)},
               {"restarts", rec->restarts},
               {"last_reason", rec->last_reason.empty() ? json() : json(rec->last_reason)}};
    if (auto w = workers_.find(rec->worker); w != workers_.end() && w->second.child)
      entry["worker_pid"] = w->second.child->pid();
    out.push_back(std::move(entry));
  }
  // Actors of the convention hosted elsewhere, or waiting for a system.
  for (const auto& [a, l] : locations_) {
    if (directory_.find(a) != nullptr) continue;
    const auto* pkg = packages_.find(l.package_id);
    const auto* m = members_.find(l.system);
    out.push_back(json{{"address", a.to_string()},
                       {"name", l.name.empty() ? json() : json(l.name)},
                       {"type", l.type},
                       {"package", pkg ? json(pkg->m.package) : json()},
                       {"version", pkg ? json(pkg->m.version.text) : json()},
                       {"package_id", l.package_id},
                       {"system", m ? json(m->host + ":" + std::to_string(m->port)) : json()},
                       {"worker_pid", json()},
                       {"state", l.ph == location::phase::placed ? "running"
                                 : l.ph == location::phase::moving ? "moving" : "pending"},
                       {"restarts", l.moves},
                       {"last_reason", l.reason.empty() ? json() : json(l.reason)}});
  }
  answer(c, json{{"actors", out}});
}

void system::cmd_kill(const client_ref& c, const json& b) {
  const auto target = b.value("target", std::string());
  auto* rec = directory_.find_target(target);
  if (rec == nullptr && route_remote(c, "kill", b, target)) return;
  if (rec == nullptr) return answer_error(c, "unknown address or name '" + target + "'", errc::not_found);
  auto w = workers_.find(rec->worker);
  if (rec->state == actor_state::failed || w == workers_.end() ||
      w->second.st != worker_proc::state::ready) {
    const address a = rec->addr;
    drop_pending_create(a);
    on_stopped(a, false, "killed");
    return answer(c, json{{"address", a.to_string()}});
  }
  rec->state = actor_state::stopping;
  kill_waiters_[rec->addr].push_back(c);
  to_worker(w->second, "stop", json{{"address", rec->addr.value()}, {"reason", "killed"}});
}

void system::cmd_shutdown(const client_ref& c) {
  answer(c, json{{"pid", ::getpid()}});
  begin_shutdown();
}

// ---------------------------------------------------------------- workers

void system::on_control() {
  auto parts = ipc::recv_multipart(control_);
  if (parts.size() < 2) return;
  const std::string identity = parts[0].to_string();
  auto m = ipc::decode_control(parts, 1, opts_.max_json_depth);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed control message from '" + identity + "': " + m.err().message);
    return;
  }
  try {
    handle_worker(identity, *m);
  } catch (const json::exception& e) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed '" + m->command + "' from " + identity + ": " + e.what());
  }
}

void system::handle_worker(const std::string& identity, const ipc::control_message& m) {
  const auto& b = m.body;
  const json rid = b.value("rid", json());
  worker_proc* w = nullptr;
  for (auto& [_, candidate] : workers_)
    if (candidate.identity == identity) w = &candidate;
  if (w == nullptr) {
    log_line(TROUPE_LOG_WARN, {}, "control message '" + m.command + "' from unknown peer '" + identity + "'");
    return;
  }
  const address a(b.value("address", std::uint64_t{0}));
  if (m.command == "hello") {
    if (w->st != worker_proc::state::starting) return reply_worker_error(identity, rid, "already registered");
    w->hello_rid = rid;
    w->st = worker_proc::state::standby;
    if (!w->package_id.empty()) send_assignment(*w);  // else answered once it gets a package
  } else if (m.command == "ready") {
    if (w->st != worker_proc::state::assigned) return reply_worker_error(identity, rid, "not expecting ready");
    on_worker_ready(*w, rid, b.value("types", json::array()));
  } else if (m.command == "fatal") {
    const auto reason = b.value("error", std::string("worker could not start"));
    auto* pkg = packages_.find(w->package_id);
    if (pkg == nullptr) return;
    if (pkg->phase == package_phase::loading) return fail_load(pkg->id, reason);
    pkg->broken = reason;
    log_line(TROUPE_LOG_ERROR, {}, "package " + pkg->m.package + " cannot start: " + pkg->broken);
    if (w->fatal_grace) fail_unstarted_worker(w->id);  // it already exited: fail it now
  } else if (m.command == "resolve") {
    resolve_for(identity, rid, a);
  } else if (m.command == "lookup") {
    const auto name = b.value("name", std::string());
    address remote;
    auto* rec = directory_.find_name(name);
    if (rec != nullptr) reply_worker(identity, rid, json{{"address", rec->addr.value()}});
    else if (!name.empty() && name.front() != '@' && find_location(name, remote) != nullptr)
      reply_worker(identity, rid, json{{"address", remote.value()}});  // a name of the convention
    else reply_worker_error(identity, rid, "unknown name '" + name + "'");
  } else if (m.command == "lease") {
    auto block = directory_.allocate_block(ipc::address_block_size);
    reply_worker(identity, rid, json{{"first", block.first}, {"count", block.count}});
  } else if (m.command == "spawn") {
    if (stopping_) return reply_worker_error(identity, rid, "spawn: the system is shutting down");
    if (!directory_.allocated(a)) return reply_worker_error(identity, rid, "spawn: address not leased by this system");
    auto pkg = choose_package(b.value("type", std::string()), b.value("package", std::string()));
    status s = pkg ? place(a, b.value("type", std::string()), *pkg, b.value("name", std::string()),
                           address(b.value("parent", std::uint64_t{0})))
                   : status(pkg.err());
    if (!s) {
      // Record the failure so messages to the address explain themselves.
      (void)directory_.add(actor_record{a, b.value("type", std::string()), pkg ? *pkg : w->package_id, {}, 0,
                                  actor_state::failed, 0, s.err().message, {}, {}});
      return reply_worker_error(identity, rid, s.err().message);
    }
    reply_worker(identity, rid, json{{"address", a.value()}});
  } else if (m.command == "kill") {
    auto* rec = directory_.find(a);
    auto target = rec ? workers_.find(rec->worker) : workers_.end();
    if (rec != nullptr && target != workers_.end() && target->second.st == worker_proc::state::ready) {
      rec->state = actor_state::stopping;
      to_worker(target->second, "stop", json{{"address", a.value()}, {"reason", "stopped"}});
    } else if (rec != nullptr) {
      drop_pending_create(a);
      on_stopped(a, false, "stopped");
    }
    reply_worker(identity, rid, json::object());
  } else if (m.command == "created") {
    on_created(identity, a);
  } else if (m.command == "create_failed") {
    on_create_failed(a, b.value("error", std::string("creation failed")));
  } else if (m.command == "restarted") {
    if (auto* rec = directory_.find(a)) {
      rec->restarts = b.value("restarts", rec->restarts + 1);
      rec->last_reason = b.value("reason", std::string());
      rec->recent_restarts.push_back(std::chrono::steady_clock::now());  // one intensity count for both kinds
      notify_watchers(a, exit_event::restarted, rec->last_reason);
    }
  } else if (m.command == "stopped") {
    on_stopped(a, b.value("failed", false), b.value("reason", std::string()));
  } else if (m.command == "watch" || m.command == "unwatch") {
    on_watch_request(*w, rid, b, m.command == "watch");
  } else if (m.command == "bye") {
    w->st = worker_proc::state::stopping;
  } else {
    log_line(TROUPE_LOG_WARN, {}, "unknown control command '" + m.command + "' from " + identity);
  }
}

void system::resolve_for(const std::string& identity, const json& rid, address a) {
  if (a == gateway_address()) return reply_worker(identity, rid, json{{"endpoint", endpoint_of("g.sock")}});
  auto* rec = directory_.find(a);
  // An actor on another system: reached through this system's gateway.
  if (rec == nullptr && remote_host_of(a) != 0 && remote_host_of(a) != self_id())
    return reply_worker(identity, rid, json{{"endpoint", endpoint_of("g.sock")}});
  if (rec == nullptr) return reply_worker_error(identity, rid, "no actor at " + a.to_string());
  if (rec->state == actor_state::failed)
    return reply_worker_error(identity, rid, a.to_string() + " has failed: " + rec->last_reason);
  if (rec->state == actor_state::running) {
    auto w = workers_.find(rec->worker);
    if (w == workers_.end()) return reply_worker_error(identity, rid, "no actor at " + a.to_string() + " (its worker is gone)");
    return reply_worker(identity, rid, json{{"endpoint", w->second.inbox}});
  }
  resolve_waiters_[a].emplace_back(identity, rid);  // answered once it runs
}

void system::on_created(const std::string& identity, address a) {
  auto* rec = directory_.find(a);
  auto w = rec ? workers_.find(rec->worker) : workers_.end();
  if (rec == nullptr || w == workers_.end() || w->second.identity != identity) {
    // Killed while its creation was under way: it must not live on unseen.
    send_to_worker(identity, "stop", json{{"address", a.value()}, {"reason", "killed"}});
    return;
  }
  rec->state = actor_state::running;
  const auto& inbox = w->second.inbox;
  if (auto it = resolve_waiters_.find(a); it != resolve_waiters_.end()) {
    for (auto& [waiter, rid] : it->second) reply_worker(waiter, rid, json{{"endpoint", inbox}});
    resolve_waiters_.erase(it);
  }
  if (auto it = spawn_waiters_.find(a); it != spawn_waiters_.end() && !hosted_for_convention_.count(a)) {
    for (auto& c : it->second) answer(c, json{{"address", a.to_string()}});
    spawn_waiters_.erase(it);
  }
  flush_held(a);
  flush_held_records(a);
  report_created(a);
  // Created while its package was being unloaded: it goes at once.
  if (auto* r = directory_.find(a))
    if (auto* p = packages_.find(r->package_id); p != nullptr && p->phase == package_phase::unloading)
      send_exit(*r, "package unloaded");
}

void system::drop_pending_create(address a) {
  for (auto& [_, w] : workers_)
    std::erase_if(w.pending_creates, [a](const json& create) {
      return create.value("address", std::uint64_t{0}) == a.value();
    });
}

void system::fail_actor(actor_record& rec, const std::string& reason) {
  rec.state = actor_state::failed;
  rec.last_reason = reason;
  const address a = rec.addr;
  if (auto it = resolve_waiters_.find(a); it != resolve_waiters_.end()) {
    for (auto& [identity, rid] : it->second) reply_worker_error(identity, rid, a.to_string() + " has failed: " + reason);
    resolve_waiters_.erase(it);
  }
  if (auto it = spawn_waiters_.find(a); it != spawn_waiters_.end()) {
    for (auto& c : it->second) answer_error(c, reason);
    spawn_waiters_.erase(it);
  }
  fail_held(a, a.to_string() + " has failed: " + reason);
  drop_held_records(a, a.to_string() + " has failed: " + reason);
  if (auto it = kill_waiters_.find(a); it != kill_waiters_.end()) {
    for (auto& c : it->second) answer(c, json{{"address", a.to_string()}});
    kill_waiters_.erase(it);
  }
  notify_watchers(a, exit_event::failed, reason);
}

void system::on_create_failed(address a, const std::string& why) {
  auto* rec = directory_.find(a);
  if (rec == nullptr) return;
  log_line(TROUPE_LOG_WARN, a, "creation failed: " + why);
  creating_for_convention_.erase(a);
  if (hosted_for_convention_.erase(a)) {
    // The leader places it elsewhere, or tells its spawner why not.
    send_peer(leader_id_, "create_failed", json{{"address", a.to_string()}, {"reason", why}});
    const std::uint32_t worker = rec->worker;
    directory_.remove(a);
    retire_dedicated_worker(worker);
    return;
  }
  const std::uint32_t worker = rec->worker;
  fail_actor(*rec, why);
  // A failed first creation leaves nothing to keep; a failed re-creation is
  // kept so that senders learn why.
  if (rec->restarts == 0) directory_.remove(a);
  retire_dedicated_worker(worker);
}

void system::on_stopped(address a, bool failed, const std::string& reason) {
  auto* rec = directory_.find(a);
  if (rec == nullptr) return;
  const std::string package_id = rec->package_id;
  const std::uint32_t worker = rec->worker;
  const auto* pkg = packages_.find(package_id);
  if (pkg != nullptr && pkg->phase == package_phase::unloading) failed = false;  // nothing to keep
  if (failed) {
    fail_actor(*rec, reason);
  } else {
    fail_held(a, "no actor at " + a.to_string() + " (stopped)");
    if (!hosted_for_convention_.count(a) || locations_.find(a) == locations_.end() ||
        locations_[a].ph == location::phase::placed)
      drop_held_records(a, "no actor at " + a.to_string() + " (stopped)");  // (a moving one's follow it)
    if (auto it = resolve_waiters_.find(a); it != resolve_waiters_.end()) {
      for (auto& [identity, rid] : it->second) reply_worker_error(identity, rid, "no actor at " + a.to_string() + " (stopped)");
      resolve_waiters_.erase(it);
    }
    notify_watchers(a, exit_event::stopped, reason);
    directory_.remove(a);
  }
  if (auto it = kill_waiters_.find(a); it != kill_waiters_.end()) {
    for (auto& c : it->second) answer(c, json{{"address", a.to_string()}});
    kill_waiters_.erase(it);
  }
  retire_dedicated_worker(worker);
  maybe_finish_unload(package_id);
  report_gone(a, failed, reason);
}

void system::on_worker_exit(std::uint32_t id, int wait_status) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  worker_proc& w = it->second;
  std::string how = describe_wait_status(wait_status);
  const auto last = ipc::read_handling_file(marker_of(w));
  if (last.hung)
    how = "killed by its watchdog: a handler of " + last.actor.to_string() + " ran past its max_handle_time (" +
          std::to_string(last.limit_ms) + " ms)";
  if (stopping_ || w.st == worker_proc::state::stopping) {
    log_line(TROUPE_LOG_INFO, {}, "worker " + w.identity + " exited (" + how + ")");
  } else {
    log_line(TROUPE_LOG_WARN, {}, "worker " + w.identity + " died (" + how + ")");
  }
  w.child.reset();
  const std::string inbox = w.inbox;
  std::error_code ec;
  fs::remove(inbox.substr(6), ec);  // a killed process leaves its ipc socket file
  if (stopping_) {
    for (auto* rec : directory_.on_worker(id)) directory_.remove(rec->addr);  // nothing may route to it now
    workers_.erase(it);
    maybe_finish_shutdown();
    return;
  }
  announce_death(id, inbox, last, how);
  auto kept = link_.take_unacked(inbox);
  gateway_ledger_.forget_endpoint(inbox);
  settle_worker_exit(id, how);
  // After the restart decisions: what goes again is held until its actor
  // runs, or fails at once if it will not come back.
  resend_from_gateway(std::move(kept), last, how);
}

void system::announce_death(std::uint32_t id, const std::string& inbox, const ipc::handling_snapshot& last,
                            const std::string& how) {
  // Before anything restarts: a worker drops its routes to the dead inbox
  // and resolves again, so what it sends again reaches the new process.
  json body{{"inbox", inbox}, {"reason", "died (" + how + ")"}};
  if (last.handling && last.origin.channel_id != 0) {
    body["channel"] = last.origin.channel_id;
    body["seq"] = last.origin.seq;
  }
  for (auto& [other, w] : workers_)
    if (other != id && (w.st == worker_proc::state::assigned || w.st == worker_proc::state::ready))
      to_worker(w, "peer_died", body);
}

void system::settle_worker_exit(std::uint32_t id, const std::string& how) {
  worker_proc& w = workers_.at(id);
  auto* pkg = packages_.find(w.package_id);
  const bool never_registered = w.st == worker_proc::state::starting ||
                                w.st == worker_proc::state::standby || w.st == worker_proc::state::assigned;
  auto hosted = directory_.on_worker(id);
  if (w.package_id.empty()) {
    // A standby. Replaced only if it had come up once: one that cannot even
    // start would be restarted in a loop.
    const bool was_healthy = !never_registered || w.st == worker_proc::state::standby;
    forget_worker(id);
    if (was_healthy) replenish_standby();
    return;
  }
  if (pkg == nullptr || pkg->phase == package_phase::unloading) {
    // Its package is going (or already gone): nothing comes back.
    const std::string package_id = w.package_id;
    std::vector<address> gone;
    for (auto* rec : hosted) gone.push_back(rec->addr);
    forget_worker(id);
    for (address a : gone) on_stopped(a, false, "package unloaded");
    maybe_finish_unload(package_id);
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
    w.fatal_grace = std::make_unique<asio::steady_timer>(io_, fatal_grace_period);
    w.fatal_grace->async_wait([this, id](const boost::system::error_code& e) {
      if (!e) fail_unstarted_worker(id);
    });
    return;
  }
  restart_after_crash(w, *pkg, how);
}

json system::create_body(const actor_record& rec, const package_entry& pkg) const {
  // The worker applies the restart policy to handler failures itself, so it
  // gets the policy and the restarts already counted in the current window.
  const auto* spec = pkg.m.find_actor(rec.type);
  const manifests::restart_spec policy = spec ? spec->restart : manifests::restart_spec{};
  const auto now = std::chrono::steady_clock::now();
  json recent = json::array();
  for (auto t : rec.recent_restarts)
    recent.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count());
  const char* name = policy.policy == manifests::restart_policy::temporary   ? "temporary"
                     : policy.policy == manifests::restart_policy::transient ? "transient"
                                                                              : "permanent";
  return json{{"address", rec.addr.value()},
              {"type", rec.type},
              {"restarts", rec.restarts},
              {"restart", {{"policy", name},
                           {"max_restarts", policy.max_restarts},
                           {"within_ms", policy.within.count()},
                           {"recent_ms", recent}}},
              {"max_handle_time_ms", spec ? spec->max_handle_time.count() : 0}};
}

void system::restart_after_crash(worker_proc& w, package_entry& pkg, const std::string& how) {
  // Each actor by its manifest's restart policy (OTP): temporary never
  // comes back; permanent and transient do, since a crash is never a normal
  // exit, up to max_restarts within `within`, after which it is failed.
  const auto now = std::chrono::steady_clock::now();
  const std::uint32_t id = w.id;
  manifests::restart_spec eager;  // the quickest backoff among those coming back
  std::size_t worst_streak = 0;
  bool any = false;
  for (auto* rec : directory_.on_worker(id)) {
    if (rec->state == actor_state::stopping) {
      on_stopped(rec->addr, false, "killed");  // it was going away: do not bring it back
      continue;
    }
    if (rec->state == actor_state::failed) continue;
    const auto* spec = pkg.m.find_actor(rec->type);
    const manifests::restart_spec policy = spec ? spec->restart : manifests::restart_spec{};
    if (policy.policy == manifests::restart_policy::temporary) {
      fail_actor(*rec, "worker " + how + " (temporary: not restarted)");
      continue;
    }
    auto& recent = rec->recent_restarts;
    while (!recent.empty() && now - recent.front() > policy.within) recent.pop_front();
    if (recent.size() >= policy.max_restarts) {
      fail_actor(*rec, "restarted " + std::to_string(recent.size()) + " times within " +
                           std::to_string(policy.within.count()) + " ms (max_restarts), last: worker " + how);
      continue;
    }
    recent.push_back(now);
    if (!any || policy.backoff_min < eager.backoff_min) eager = policy;
    worst_streak = std::max(worst_streak, recent.size());
    any = true;
    rec->state = actor_state::starting;
    ++rec->restarts;
    rec->last_reason = "worker " + how;
    w.pending_creates.push_back(create_body(*rec, pkg));
    notify_watchers(rec->addr, exit_event::restarted, rec->last_reason);
  }
  if (!any) {
    forget_worker(id);
    return;
  }
  // The first restart in a window is immediate; each further one waits
  // backoff_min, doubling up to backoff_max.
  auto delay = std::chrono::milliseconds(0);
  if (worst_streak > 1) {
    delay = eager.backoff_min;
    for (std::size_t i = 2; i < worst_streak && delay < eager.backoff_max; ++i) delay *= 2;
    delay = std::min(delay, eager.backoff_max);
  }
  auto start = [this, id] {
    auto it = workers_.find(id);
    if (it == workers_.end()) return;
    if (adopt_standby(it->second)) return;
    if (auto s = start_worker(it->second); !s) {
      for (auto* rec : directory_.on_worker(id)) fail_actor(*rec, s.err().message);
      forget_worker(id);
    }
  };
  if (delay.count() == 0) return start();
  log_line(TROUPE_LOG_INFO, {}, "worker " + w.identity + " restarts in " + std::to_string(delay.count()) + " ms (backoff)");
  w.st = worker_proc::state::starting;
  w.restart_timer = std::make_unique<asio::steady_timer>(io_, delay);
  w.restart_timer->async_wait([start](const boost::system::error_code& e) {
    if (!e) start();
  });
}

bool system::adopt_standby(worker_proc& dead) {
  // A standby has already paid for exec, dynamic linking and its sockets:
  // handing it the dead worker's package and actors saves most of a restart.
  worker_proc* standby = nullptr;
  for (auto& [_, candidate] : workers_) {
    if (!candidate.package_id.empty() || candidate.id == dead.id) continue;
    if (candidate.st == worker_proc::state::standby) {
      standby = &candidate;
      break;
    }
    if (candidate.st == worker_proc::state::starting && standby == nullptr) standby = &candidate;
  }
  auto* pkg = packages_.find(dead.package_id);
  if (standby == nullptr || pkg == nullptr) return false;
  standby->dedicated = dead.dedicated;
  standby->pending_creates = std::move(dead.pending_creates);
  for (auto* rec : directory_.on_worker(dead.id)) rec->worker = standby->id;
  const bool shared = pkg->worker == dead.id;
  log_line(TROUPE_LOG_INFO, {}, "standby worker " + standby->identity + " takes over from " + dead.identity);
  forget_worker(dead.id);
  if (shared) pkg->worker = standby->id;
  (void)assign(*standby, *pkg);
  replenish_standby_soon();
  return true;
}

void system::fail_unstarted_worker(std::uint32_t id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  worker_proc& w = it->second;
  if (w.fatal_grace) w.fatal_grace->cancel();
  auto* pkg = packages_.find(w.package_id);
  if (pkg != nullptr && pkg->phase == package_phase::loading) {
    const std::string package_id = pkg->id;
    const std::string reason = "worker exited before registering (" + w.exit_how + ")";
    forget_worker(id);
    return fail_load(package_id, reason);
  }
  // A package whose worker cannot start any more is failed at once, with
  // one clear error, not retried forever.
  std::string reason = "worker exited before registering (" + w.exit_how + ")";
  if (pkg != nullptr) {
    if (pkg->broken.empty()) pkg->broken = reason;
    reason = pkg->broken;
  }
  for (auto* rec : directory_.on_worker(id)) {
    const address a = rec->addr;
    fail_actor(*rec, reason);
    directory_.remove(a);
    report_gone(a, true, reason);
  }
  forget_worker(id);
  maybe_finish_shutdown();
}

// ---------------------------------------------------------------- shutdown

void system::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  if (standby_timer_) standby_timer_->cancel();
  if (heartbeat_timer_) heartbeat_timer_->cancel();
  // The leader places this system's actors elsewhere at once, not after a timeout.
  if (!leader_ && joined_) send_peer(leader_id_, "leaving", json::object());
  log_line(TROUPE_LOG_INFO, {}, "shutting down: exit requests to " + std::to_string(directory_.size()) + " actors");
  // Loads and unloads under way end with the system; their clients learn why.
  package_timers_.clear();
  const auto going = make_error(errc::unavailable, "the system is shutting down");
  for (auto& [_, waiters] : std::exchange(load_waiters_, {}))
    for (auto& done : waiters) done(going);
  for (auto& [_, waiters] : std::exchange(unload_waiters_, {}))
    for (auto& c : waiters) answer_error(c, going.message, going.code);
  std::vector<std::uint32_t> waiting;  // crashed, waiting for their restart: no process
  for (auto& [id, w] : workers_) {
    if (w.st == worker_proc::state::starting) {
      if (w.child) w.child->signal(SIGTERM);  // not connected yet
      else waiting.push_back(id);
    } else if (w.st != worker_proc::state::stopping) {
      to_worker(w, "shutdown", json::object());
    }
  }
  for (auto id : waiting) {
    for (auto* rec : directory_.on_worker(id)) directory_.remove(rec->addr);
    forget_worker(id);
  }
  shutdown_timer_ = std::make_unique<asio::steady_timer>(io_, shutdown_grace);
  shutdown_timer_->async_wait([this](const boost::system::error_code& e) {
    if (e) return;
    for (auto& [_, w] : workers_)
      if (w.child) {
        log_line(TROUPE_LOG_WARN, {}, "worker " + w.identity + " did not stop in time: SIGKILL");
        w.child->signal(SIGKILL);
      }
  });
  maybe_finish_shutdown();
}

void system::maybe_finish_shutdown() {
  if (!stopping_ || !workers_.empty()) return;
  if (shutdown_timer_) shutdown_timer_->cancel();
  signals_.cancel();
  public_->stop();
  control_watch_->stop();
  gateway_watch_->stop();
  for (auto* w : {zap_watch_.get(), peer_watch_.get(), discovery_watch_.get(), uplink_watch_.get()})
    if (w != nullptr) w->stop();
  for (auto& [_, g] : gateway_asks_) g.timer->cancel();
  for (auto& [_, pc] : peer_calls_) pc.timer->cancel();
  io_.stop();
}

int run_system(const system_options& opts) {
  system s(opts);
  return s.run();
}

}  // namespace troupe::supervisor
