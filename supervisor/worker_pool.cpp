#include "supervisor/worker_pool.hpp"

#include "ipc/commands.hpp"
#include "ipc/curve.hpp"
#include "ipc/log.hpp"
#include "ipc/log_relay.hpp"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace cmd = ipc::cmd;
using ipc::log_line;

namespace {

// Descriptors one worker costs the daemon (its pidfd, its control and
// gateway connections, the data socket to its inbox and that socket's
// mailbox, its stdout and stderr read by the log relay), with room for the
// launch's own pipe.
constexpr std::size_t worker_descriptor_cost = 10;
// Kept free for clients, package files and ZeroMQ's own needs.
constexpr std::size_t descriptor_reserve = 32;
// A load's replacement standby starts this long after the load is answered.
constexpr auto standby_delay = std::chrono::milliseconds(10);
/// A worker registers in milliseconds; only a wedged one takes this long.
constexpr auto hello_deadline_period = std::chrono::seconds(10);

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

}  // namespace

const char* to_string(worker_proc::state s) {
  switch (s) {
    case worker_proc::state::starting:
      return "starting";
    case worker_proc::state::standby:
      return "standby";
    case worker_proc::state::assigned:
      return "assigned";
    case worker_proc::state::ready:
      return "ready";
    case worker_proc::state::stopping:
      return "stopping";
  }
  return "starting";
}

status worker_pool::bind() {
  try {
    control_ = zmq::socket_t(ctx_.zmq, zmq::socket_type::router);
    control_.set(zmq::sockopt::linger, 0);
    // A restarted worker reconnects under its old routing id: hand it over
    // instead of routing into the dead connection (libzmq #1575).
    control_.set(zmq::sockopt::router_handover, 1);
    control_.set(zmq::sockopt::router_mandatory, 1);
    ipc::configure_control_socket(control_);
    ipc::require_zap(control_, ipc::worker_zap_domain);  // the system's user only (system.cpp)
    control_.bind(ctx_.endpoint_of("c.sock"));
  } catch (const zmq::error_t& e) {
    return make_error(
        errc::io, std::string("cannot bind the system's ipc sockets in ") + ctx_.run_dir.string() + ": " + e.what());
  }
  watch_ = std::make_unique<ipc::socket_watcher>(ctx_.io, control_, [this] { on_control(); });
  logs_ = std::make_unique<ipc::log_relay>();
  // A cgroup per worker where the host allows it (docs/OPERATIONS.md §6).
  std::ostringstream own;
  own << std::ifstream("/proc/self/cgroup").rdbuf();
  std::string why_not;
  cgroups_ = cgroup_tree::detect("/sys/fs/cgroup", own.str(), why_not);
  if (cgroups_)
    log_line(TROUPE_LOG_INFO, {},
             "containment: a cgroup per worker under " + cgroups_->base().string() + " (memory.max " +
                 (cgroups_->has_memory() ? "on" : "off") + ", pids.max " + (cgroups_->has_pids() ? "on" : "off") +
                 "), and workers are child subreapers");
  else
    log_line(TROUPE_LOG_INFO, {}, "containment: workers and the daemon are child subreapers; no cgroup: " + why_not);
  handle(cmd::worker::hello, [this](worker_proc& w, const json& rid, const json&) {
    if (w.st != worker_proc::state::starting) return reply_error(w, rid, "already registered");
    w.hello_rid = rid;
    w.st = worker_proc::state::standby;
    if (w.hello_deadline) w.hello_deadline->cancel();
    if (!w.package_id.empty()) send_assignment(w);  // else answered once it gets a package
  });
  handle(cmd::worker::lease, [this](worker_proc& w, const json& rid, const json&) {
    auto block = actors_.allocate_block(ipc::address_block_size);
    reply(w, rid, json{{"first", block.first}, {"count", block.count}});
  });
  handle(cmd::worker::bye, [](worker_proc& w, const json&, const json&) { w.st = worker_proc::state::stopping; });
  return ok_v;
}

void worker_pool::stop() {
  if (standby_timer_) standby_timer_->cancel();
  if (watch_) watch_->stop();
  if (logs_) logs_->stop();  // once the workers are gone: their last lines are read
}

// ---------------------------------------------------------------- control messages

void worker_pool::on_control() {
  auto parts = ipc::recv_multipart(control_);
  if (parts.size() < 2) return;
  const std::string identity = parts[0].to_string();
  auto m = ipc::decode_control(parts, 1, ctx_.opts.max_json_depth);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed control message from '" + identity + "': " + m.err().message);
    return;
  }
  worker_proc* w = nullptr;
  for (auto& [_, candidate] : workers_)
    if (candidate.identity == identity) w = &candidate;
  if (w == nullptr) {
    log_line(TROUPE_LOG_WARN, {}, "control message '" + m->command + "' from unknown peer '" + identity + "'");
    return;
  }
  auto h = handlers_.find(m->command);
  if (h == handlers_.end()) {
    log_line(TROUPE_LOG_WARN, {}, "unknown control command '" + m->command + "' from " + identity);
    return;
  }
  if (m->command == cmd::worker::ready) {
    // Its tcp inbox for direct links, whoever handles the rest of `ready`.
    w->direct_inbox.clear();
    w->direct_key.clear();
    if (const auto d = m->body.find("direct"); d != m->body.end() && d->is_object()) {
      const auto endpoint = d->value("endpoint", std::string());
      const auto key = d->value("key", std::string());
      if (endpoint.starts_with("tcp://") && ipc::valid_curve_key(key)) {
        w->direct_inbox = endpoint;
        w->direct_key = key;
      }
    }
  }
  try {
    h->second(*w, m->body.value("rid", json()), m->body);
  } catch (const json::exception& e) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed '" + m->command + "' from " + identity + ": " + e.what());
  }
}

void worker_pool::send_to(const std::string& identity, std::string_view command, const json& body) {
  // Fails only when the worker is gone (ROUTER_MANDATORY); its exit is
  // handled through its pidfd.
  if (!ipc::send_control(control_, identity, command, body))
    log_line(TROUPE_LOG_WARN, {},
             "control message '" + std::string(command) + "' to " + identity + " not delivered: worker gone");
  watch_->kick();
}

void worker_pool::send(const worker_proc& w, std::string_view command, const json& body) {
  send_to(w.identity, command, body);
}

void worker_pool::reply(const worker_proc& w, const json& rid, json fields) {
  send(w, cmd::reply, ipc::ok_reply(rid, std::move(fields)));
}

void worker_pool::reply_error(const worker_proc& w, const json& rid, std::string_view text) {
  send(w, cmd::reply, ipc::error_reply(rid, text));
}

void worker_pool::send_ready(std::string_view command, const json& body) {
  for (auto& [_, w] : workers_)
    if (w.st == worker_proc::state::ready) send(w, command, body);
}

void worker_pool::announce_death(std::uint32_t id, const std::string& inbox, const ipc::handling_snapshot& last,
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
      send(w, cmd::supervisor::peer_died, body);
}

// ---------------------------------------------------------------- workers

worker_proc* worker_pool::find(std::uint32_t id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

const worker_proc* worker_pool::find(std::uint32_t id) const {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

int worker_pool::pid_of(std::uint32_t id) const {
  const auto* w = find(id);
  return w != nullptr && w->child ? w->child->pid() : 0;
}

result<worker_proc*> worker_pool::worker_for(const std::string& package_id, bool dedicated) {
  auto& pkg = *packages_.find(package_id);
  if (!dedicated)
    if (auto it = workers_.find(pkg.worker); it != workers_.end()) return &it->second;
  // A standby worker has already paid for exec, dynamic linking and its
  // sockets: the package only waits for its own dlopen.
  const bool python = pkg.m.runtime == manifests::runtime_kind::python;
  worker_proc* w = nullptr;
  for (auto& [_, candidate] : workers_)
    if (!python && candidate.package_id.empty() &&
        (candidate.st == worker_proc::state::starting || candidate.st == worker_proc::state::standby)) {
      w = &candidate;
      break;
    }
  if (w == nullptr) {
    auto launched = launch_worker(python);
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

fs::path worker_pool::executable(bool python) const {
  if (!python) return ctx_.opts.worker_exe;
  if (!ctx_.opts.worker_python_exe.empty()) return ctx_.opts.worker_python_exe;
  const char* env = std::getenv("TROUPE_WORKER_PYTHON");
  if (env != nullptr && *env != '\0') return env;
  return ctx_.opts.worker_exe.parent_path() / "troupe-worker-python";
}

result<worker_proc*> worker_pool::launch_worker(bool python) {
  // Refused before the process exists: past its descriptor limit the daemon
  // could not accept the worker's connections (ZeroMQ aborts on EMFILE in an
  // ipc listener, and spins on it in a TCP one).
  if (workers_.size() >= ctx_.opts.max_workers)
    return make_error(errc::limit, "cannot start another worker: " + std::to_string(workers_.size()) +
                                       " run, the most this system allows (start --max-workers)");
  if (const auto fds = descriptors_in_use(); fds.room() < worker_descriptor_cost + descriptor_reserve)
    return make_error(errc::limit, "cannot start another worker: " + std::to_string(fds.open) + " of " +
                                       std::to_string(fds.limit) +
                                       " descriptors in use (RLIMIT_NOFILE; each worker takes about " +
                                       std::to_string(worker_descriptor_cost) + ")");
  const std::uint32_t id = next_id_++;
  worker_proc& w = workers_[id];
  w.id = id;
  w.identity = "w" + std::to_string(id);
  w.python = python;
  if (auto s = start_process(w); !s) {
    forget(id);
    return s.err();
  }
  return &w;
}

void worker_pool::forget(std::uint32_t id) {
  if (auto it = workers_.find(id); it != workers_.end()) {
    // Its inbox is gone for good: drop the connection, or ZeroMQ keeps a
    // socket retrying it for the life of the system.
    link_.disconnect(it->second.inbox);
    if (auto* p = packages_.find(it->second.package_id); p != nullptr && p->worker == id) p->worker = 0;
  }
  std::error_code ec;
  fs::remove_all(ctx_.run_dir / ("w" + std::to_string(id)), ec);
  workers_.erase(id);
  if (ctx_.stopping && workers_.empty() && on_drained) on_drained();
}

void worker_pool::stop_worker(worker_proc& w, const std::string& reason) {
  if (w.st == worker_proc::state::starting) {
    if (w.child) w.child->signal(SIGTERM);  // not connected yet
  } else if (w.st != worker_proc::state::stopping) {
    send(w, cmd::supervisor::shutdown, reason.empty() ? json::object() : json{{"reason", reason}});
  }
  w.st = worker_proc::state::stopping;
}

worker_proc* worker_pool::adopt_standby(std::uint32_t dead_id) {
  // A standby has already paid for exec, dynamic linking and its sockets:
  // handing it the dead worker's package and actors saves most of a restart.
  auto* dead = find(dead_id);
  if (dead == nullptr) return nullptr;
  worker_proc* standby = nullptr;
  for (auto& [_, candidate] : workers_) {
    if (!candidate.package_id.empty() || candidate.id == dead_id) continue;
    if (candidate.st == worker_proc::state::standby) {
      standby = &candidate;
      break;
    }
    if (candidate.st == worker_proc::state::starting && standby == nullptr) standby = &candidate;
  }
  auto* pkg = packages_.find(dead->package_id);
  if (standby == nullptr || pkg == nullptr || dead->python) return nullptr;  // standbys are native
  standby->dedicated = dead->dedicated;
  standby->pending_creates = std::move(dead->pending_creates);
  const bool shared = pkg->worker == dead_id;
  log_line(TROUPE_LOG_INFO, {}, "standby worker " + standby->identity + " takes over from " + dead->identity);
  forget(dead_id);
  if (shared) pkg->worker = standby->id;
  (void)assign(*standby, *pkg);
  replenish_standby_soon();
  return standby;
}

void worker_pool::replenish_standby_soon() {
  // Starting a process blocks this loop until its exec, and its start-up
  // competes for the CPUs: not while the client that just loaded a package
  // spawns and asks its first actor.
  if (standby_timer_ == nullptr) standby_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  standby_timer_->expires_after(standby_delay);
  standby_timer_->async_wait([this](const boost::system::error_code& e) {
    if (!e) replenish_standby();
  });
}

void worker_pool::replenish_standby() {
  if (ctx_.stopping) return;
  std::uint32_t waiting = 0;
  for (const auto& [_, w] : workers_) waiting += w.package_id.empty();
  for (; waiting < ctx_.opts.standby_workers; ++waiting) {
    auto w = launch_worker();
    if (!w) {
      // Once per shortage, not at every spawn while it lasts.
      if (!standby_shortage_logged_) log_line(TROUPE_LOG_WARN, {}, "cannot start a standby worker: " + w.err().message);
      standby_shortage_logged_ = true;
      return;
    }
    standby_shortage_logged_ = false;
    log_line(TROUPE_LOG_INFO, {}, "worker " + (*w)->identity + " is a standby");
  }
}

status worker_pool::assign(worker_proc& w, package_entry& pkg) {
  w.package_id = pkg.id;
  log_line(TROUPE_LOG_INFO, {},
           "worker " + w.identity + " runs " + pkg.m.package + " " + pkg.m.version.text +
               (w.dedicated ? " (dedicated)" : ""));
  if (w.st == worker_proc::state::standby) send_assignment(w);
  return ok_v;
}

void worker_pool::send_assignment(worker_proc& w) {
  const auto& pkg = *packages_.find(w.package_id);
  // Pointed at the package only now: at exec they led to an empty
  // directory, so the worker's own libraries never come from a package.
  const fs::path dir = ctx_.run_dir / w.identity;
  std::error_code ec;
  const fs::path lib = fs::is_directory(pkg.lib_dir, ec) ? pkg.lib_dir : ctx_.run_dir / "empty";
  status linked = replace_link(dir / "lib", lib);
  if (linked) linked = replace_link(dir / "pkg", pkg.root);
  // Before the worker hears its package: none of the package's code runs
  // without its limits.
  if (linked) linked = apply_limits(w, pkg);
  if (!linked) {
    reply_error(w, w.hello_rid, linked.err().message);
    w.st = worker_proc::state::stopping;
    if (on_assignment_failed) on_assignment_failed(pkg.id, linked.err().message);
    return;
  }
  auto block = actors_.allocate_block(ipc::address_block_size);
  reply(w, w.hello_rid,
        json{{"system", ctx_.id},
             {"first", block.first},
             {"count", block.count},
             {"gateway", ctx_.endpoint_of("g.sock")},
             {"library", pkg.library.string()},
             {"package_id", pkg.id},
             {"runtime", pkg.m.runtime == manifests::runtime_kind::python ? "python" : "native"},
             {"python", python_assignment(pkg)},
             {"delivery", ctx_.opts.no_loss ? "no-loss" : "best-effort"},
             {"direct", direct_spec ? direct_spec() : json()}});
  w.st = worker_proc::state::assigned;
}

json worker_pool::python_assignment(const package_entry& pkg) {
  if (pkg.m.runtime != manifests::runtime_kind::python) return nullptr;
  json classes = json::object();
  for (const auto& a : pkg.m.actors) classes[a.type] = a.class_name();
  return json{{"root", pkg.root.string()},
              {"module", pkg.m.module},
              {"classes", classes},
              {"system_packages", pkg.m.system_packages}};
}

status worker_pool::apply_limits(const worker_proc& w, const package_entry& pkg) {
  const auto& limits = pkg.m.limits;
  if (limits.empty()) return ok_v;
  if (!w.child) return make_error(errc::internal, "worker " + w.identity + " has no process to limit");
  if (auto s = apply_rlimits(w.child->pid(), limits); !s) return s;
  if (cgroups_ && !w.cgroup.empty())
    if (auto s = cgroups_->apply(w.cgroup, limits); !s) return s;
  const bool pids = cgroups_ && cgroups_->has_pids() && !w.cgroup.empty();
  if (limits.processes && !pids && unenforced_logged_.insert(pkg.id).second)
    log_line(TROUPE_LOG_WARN, {},
             pkg.m.package + " " + pkg.m.version.text +
                 ": limits.processes is not enforced on this host (it needs cgroup v2 with the pids controller "
                 "delegated)");
  return ok_v;
}

void worker_pool::send_creates(worker_proc& w) {
  // In batches: a worker restarted with 100,000 actors gets a few hundred
  // messages and answers as many "created", not 100,000 of each.
  const auto all = std::exchange(w.pending_creates, {});
  if (all.size() == 1) {
    if (auto body = create_body_for(w, all.front())) send(w, cmd::supervisor::create, *body);
    return;
  }
  for (std::size_t i = 0; i < all.size(); i += create_batch) {
    json batch = json::array();
    for (std::size_t j = i; j < std::min(all.size(), i + create_batch); ++j)
      if (auto body = create_body_for(w, all[j])) batch.push_back(std::move(*body));
    if (!batch.empty()) send(w, cmd::supervisor::create, json{{"actors", std::move(batch)}});
  }
}

void worker_pool::mark_ready(worker_proc& w, const json& rid) {
  w.st = worker_proc::state::ready;
  reply(w, rid, json::object());
  (void)link_.connect(w.inbox);  // connect now: the first client ask need not wait for it
  send_creates(w);
}

status worker_pool::start_process(worker_proc& w) {
  // Its library path goes through these links, which lead nowhere until it
  // is told its package (send_assignment).
  const fs::path dir = ctx_.run_dir / w.identity;
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (const char* link : {"lib", "pkg"})
    if (auto s = replace_link(dir / link, ctx_.run_dir / "empty"); !s) return s;
  if (auto s = ipc::create_handling_file(marker_of(w)); !s) return s;
  w.inbox = ctx_.endpoint_of(w.identity + "-" + std::to_string(++w.incarnation) + ".sock");
  launch_spec spec;
  spec.exe = executable(w.python).string();
  spec.args = {"--control",   ctx_.endpoint_of("c.sock"), "--inbox",     w.inbox,
               "--worker-id", std::to_string(w.id),       "--marker",    marker_of(w).string(),
               "--fence",     ctx_.fence_file().string(), "--log-level", ipc::log_level_word(ctx_.opts.log_level)};
  // Its stdout and stderr are sockets the log relay reads (ipc/log_relay.hpp):
  // its records and whatever its package prints reach the system's log,
  // rotated or reopened, under its tag. Sockets, not pipes: the worker's
  // logger sends with MSG_NOSIGNAL, so a dead daemon costs it no SIGPIPE.
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) != 0 ||
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err) != 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1]})
      if (fd >= 0) ::close(fd);
    return make_error(errc::io, "cannot make the output sockets of worker " + w.identity + ": " + std::strerror(e));
  }
  // The daemon only reads: a worker blocked writing waits for the relay,
  // never for this loop.
  ::shutdown(out[0], SHUT_WR);
  ::shutdown(err[0], SHUT_WR);
  spec.stdout_fd = out[1];
  spec.stderr_fd = err[1];
  // Its package's private libraries, and nothing of another package's,
  // through links that send_assignment() points at that package (glibc
  // reads LD_LIBRARY_PATH once, at exec, but follows the links at each dlopen).
  spec.env["LD_LIBRARY_PATH"] = (dir / "lib").string() + ":" + (dir / "pkg").string();
  if (cgroups_) {
    // Its own cgroup, so that what its package starts is killed with it
    // (cgroup.kill) even past setsid(); without one, the subreaper chain.
    auto cg = cgroups_->make(w.identity + "-" + std::to_string(w.incarnation));
    if (cg)
      spec.cgroup = *cg;
    else
      log_line(TROUPE_LOG_WARN, {}, "worker " + w.identity + " runs without a cgroup: " + cg.err().message);
  }
  w.cgroup = spec.cgroup;
  w.st = worker_proc::state::starting;
  const std::uint32_t id = w.id;
  auto child = launch(ctx_.io, spec, [this, id](const child_exit& how) { on_process_exit(id, how); });
  ::close(out[1]);
  ::close(err[1]);
  if (child) {
    logs_->add(out[0], w.identity, TROUPE_LOG_INFO);  // what a package prints
    logs_->add(err[0], w.identity, TROUPE_LOG_WARN);  // its errors, and the worker's records
  } else {
    ::close(out[0]);
    ::close(err[0]);
  }
  if (!child && !w.cgroup.empty()) {
    cgroup_tree::remove(w.cgroup);
    w.cgroup.clear();
  }
  if (!child) return child.err();
  w.child = std::move(*child);
  w.killed_because.clear();
  w.hello_deadline = std::make_unique<asio::steady_timer>(ctx_.io, hello_deadline_period);
  w.hello_deadline->async_wait([this, id, pid = w.child->pid()](const boost::system::error_code& e) {
    auto* late = find(id);
    if (e || late == nullptr || !late->child || late->child->pid() != pid || late->st != worker_proc::state::starting)
      return;
    late->killed_because = "it did not register within " + std::to_string(hello_deadline_period.count()) + " s";
    log_line(TROUPE_LOG_WARN, {}, "worker " + late->identity + ": " + late->killed_because + "; killing it");
    late->child->signal(SIGKILL);
  });
  const auto* pkg = packages_.find(w.package_id);
  log_line(TROUPE_LOG_INFO, {},
           "started worker " + w.identity + " (pid " + std::to_string(w.child->pid()) + ")" +
               (pkg ? " for " + pkg->m.package + " " + pkg->m.version.text : ""));
  return ok_v;
}

void worker_pool::on_process_exit(std::uint32_t id, const child_exit& ended) {
  auto* w = find(id);
  if (w == nullptr) return;
  const int wait_status = ended.wait_status;
  std::string how = describe_wait_status(wait_status);
  // Which of its package's limits killed it, when that can be known.
  if (const auto* pkg = packages_.find(w->package_id); pkg != nullptr && WIFSIGNALED(wait_status)) {
    const auto& limits = pkg->m.limits;
    const int sig = WTERMSIG(wait_status);
    if (limits.cpu_time && (sig == SIGXCPU || (sig == SIGKILL && ended.cpu >= *limits.cpu_time)))
      how += ": CPU limit of " + std::to_string(limits.cpu_time->count()) + " s (limits.cpu_time)";
    else if (limits.memory && sig == SIGKILL && !w->cgroup.empty() && cgroup_tree::oom_killed(w->cgroup))
      how += ": memory limit of " + std::to_string(*limits.memory >> 20) + " MiB (limits.memory)";
  }
  if (!w->cgroup.empty()) {
    if (!cgroup_tree::remove(w->cgroup))
      log_line(TROUPE_LOG_WARN, {}, "cannot remove cgroup " + w->cgroup.string() + " of worker " + w->identity);
    w->cgroup.clear();
  }
  const auto last = ipc::read_handling_file(marker_of(*w));
  if (last.hung)
    how = "killed by its watchdog: a handler of " + last.actor.to_string() + " ran past its max_handle_time (" +
          std::to_string(last.limit_ms) + " ms)";
  if (ctx_.stopping || w->st == worker_proc::state::stopping)
    log_line(TROUPE_LOG_INFO, {}, "worker " + w->identity + " exited (" + how + ")");
  else
    log_line(TROUPE_LOG_WARN, {}, "worker " + w->identity + " died (" + how + ")");
  w->last_pid = w->child->pid();
  w->last_wait_status = wait_status;
  w->child.reset();
  std::error_code ec;
  fs::remove(w->inbox.substr(6), ec);  // a killed process leaves its ipc socket file
  if (on_exit) on_exit(*w, how, last);
}

}  // namespace troupe::supervisor
