// supervisor/system.cpp — one system: the small owner that wires the
// components (docs/ARCHITECTURE.md) and runs them on one loop. It builds them
// in dependency order, subscribes them to the event bus in a fixed order
// (below), answers status and shutdown, and stops them in reverse.
#include "supervisor/system.hpp"

#include "base/hex.hpp"
#include "ipc/commands.hpp"
#include "ipc/curve.hpp"
#include "ipc/fence_page.hpp"
#include "ipc/log.hpp"
#include "supervisor/capabilities.hpp"
#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/dashboard.hpp"
#include "supervisor/data_relay.hpp"
#include "supervisor/desired_state.hpp"
#include "supervisor/direct_links.hpp"
#include "supervisor/etcd_convention.hpp"
#include "supervisor/event_stream.hpp"
#include "supervisor/events.hpp"
#include "supervisor/gateway.hpp"
#include "supervisor/http_server.hpp"
#include "supervisor/leader_convention.hpp"
#include "supervisor/metrics.hpp"
#include "supervisor/package_manager.hpp"
#include "supervisor/peer_link.hpp"
#include "supervisor/remote_calls.hpp"
#include "supervisor/supervision.hpp"
#include "supervisor/worker_pool.hpp"
#include "supervisor/worker_stats.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/stat.h>
#include <unistd.h>

#ifdef TROUPE_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace cmd = ipc::cmd;
using ipc::log_line;

fs::path state_dir(const fs::path& home, std::uint16_t port) { return home / "systems" / std::to_string(port); }

namespace {

constexpr auto shutdown_grace = std::chrono::seconds(5);
constexpr std::size_t max_ipc_path = 107;  // sun_path less its NUL

// A fresh id at every start, except after a crash of a system that keeps
// its desired state: its addresses then stay valid (the serials go on from
// where they were). An address of a run that stopped is never one of this
// run's actors.
std::uint32_t make_system_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint32_t> dist(1, 0xffffffffu);
  return dist(rd);
}

// The built-in leader of its convention (a lone system included) is the one
// authority on its actors: it keeps them itself. A member's, or any on etcd,
// are placed again by the convention when their system is lost.
bool keeps_desired_state(const system_options& opts) {
  return opts.etcd.empty() && opts.leader == opts.bind_host + ":" + std::to_string(opts.port);
}

recovered_state recover(const system_options& opts) {
  if (!keeps_desired_state(opts)) return {};
  return read_state_file(state_dir(opts.home, opts.port) / "state.json");
}

void report_ready(int fd, const std::string& line) {
  if (fd < 0) return;
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

// The service manager's readiness protocol (sd_notify(3)), for a daemon that
// systemd runs in the foreground with Type=notify (packaging/troupe@.service).
// Does nothing unless NOTIFY_SOCKET is set, or when built without libsystemd.
void notify_systemd(const std::string& state) {
#ifdef TROUPE_HAVE_LIBSYSTEMD
  if (int r = sd_notify(0, state.c_str()); r < 0)
    log_line(TROUPE_LOG_WARN, {}, "sd_notify failed: " + std::string(std::strerror(-r)));
#else
  (void)state;
#endif
}

// The HTTP listener of the dashboard (and of /metrics when they share it):
// bodies up to the dashboard's, streams for its events.
http_server::limits dashboard_limits() {
  http_server::limits l;
  l.max_body_bytes = dashboard::max_body;
  return l;
}

const char* log_target_word(ipc::log_target t) {
  switch (t) {
    case ipc::log_target::file:
      return "file";
    case ipc::log_target::journal:
      return "journal";
    default:
      return "stderr";
  }
}

}  // namespace

class system {
 public:
  explicit system(const system_options& opts)
      : recovered_(recover(opts)),
        ctx_{opts,
             io_,
             zmq_,
             state_dir(opts.home, opts.port),
             state_dir(opts.home, opts.port) / "run",
             recovered_.state ? recovered_.state->system_id : make_system_id()},
        signals_(io_, SIGTERM, SIGINT),
        hangup_(io_, SIGHUP),
        actors_(ctx_.id),
        data_(io_, zmq_),
        port_(ctx_),
        events_(ctx_, port_, actors_, packages_),
        pool_(ctx_, packages_, actors_, data_),
        gateway_(ctx_, port_, data_, pool_, actors_),
        supervision_(ctx_, bus_, port_, pool_, gateway_, actors_, packages_),
        packages_manager_(ctx_, port_, pool_, gateway_, supervision_, actors_, packages_),
        peers_(ctx_, members_, link_state_),
        calls_(ctx_, port_, peers_),
        relay_(ctx_, actors_, pool_, data_, peers_),
        direct_(ctx_, pool_, actors_, peers_),
        convention_(make_convention()),
        stats_(ctx_, port_, pool_, actors_, packages_, data_, gateway_, started_) {
    ctx_.run_tag = base::hex32(make_system_id());
    ctx_.events = &events_.ring();
  }

  int run();
  /// Why run() failed to start the system.
  [[nodiscard]] const std::string& failure() const { return failure_; }

 private:
  /// The built-in leader, or etcd when the system was started --etcd.
  std::unique_ptr<convention> make_convention() {
    const placement_convention::parts parts{
        port_, supervision_, actors_, packages_manager_, packages_, peers_, link_state_, members_, calls_, relay_};
    if (ctx_.opts.etcd.empty()) return std::make_unique<leader_convention>(ctx_, parts);
    auto endpoints = etcd::parse_endpoints(ctx_.opts.etcd);  // checked by the CLI
    return std::make_unique<etcd_convention>(ctx_, parts, endpoints ? *endpoints : std::vector<etcd::endpoint>{});
  }
  status setup();
  void keep_desired_state();
  void wire();
  void serve();
  void announce_ready(std::chrono::steady_clock::time_point deadline);
  /// "standalone (...)", "leader of the convention", "member of ... led by HOST:PORT": what `start` prints.
  [[nodiscard]] std::string role_text() const;
  static constexpr auto join_wait = std::chrono::seconds(3);
  void cmd_status(const client_ref& c);
  [[nodiscard]] json actor_states() const;
  void begin_shutdown();
  void finish_shutdown();
  void on_hangup();

  asio::io_context io_{1};
  zmq::context_t zmq_{1};
  recovered_state recovered_;  // read before the id is chosen
  system_context ctx_;
  desired_state desired_{io_, ctx_.dir / "state.json"};
  asio::signal_set signals_;
  asio::signal_set hangup_;                      // SIGHUP: the log file is opened again (logrotate)
  std::unique_ptr<ipc::zap_authenticator> zap_;  // before every socket; closed after them
  std::unique_ptr<ipc::socket_watcher> zap_watch_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  event_bus bus_;
  // The tables several components read: actors and packages.
  directory actors_;
  package_set packages_;
  ipc::data_link data_;  // the system's sending half of the data plane
  membership members_;
  link_state link_state_;
  // The components, in dependency order.
  client_port port_;
  event_stream events_;  // the ring every component records in (ctx_.events)
  worker_pool pool_;
  gateway gateway_;
  supervision supervision_;
  package_manager packages_manager_;
  peer_link peers_;
  remote_calls calls_;
  data_relay relay_;
  direct_links direct_;
  std::unique_ptr<convention> convention_;
  worker_stats stats_;  // `top`, and the series of --metrics-actors
  // --metrics: the registry and the HTTP server on this loop (none when off).
  std::unique_ptr<metrics> metrics_;
  std::unique_ptr<http_server> http_;
  status serve_metrics();
  // --http: the dashboard, on http_ when --metrics names the same address,
  // else on a listener of its own (none when off).
  std::unique_ptr<http_server> dashboard_http_;
  std::unique_ptr<dashboard> dashboard_;
  status serve_dashboard();
  std::unique_ptr<asio::steady_timer> shutdown_timer_;
  asio::steady_timer ready_timer_{io_};
  bool finished_ = false;
  std::string failure_;
};

// ---------------------------------------------------------------- start

status system::setup() {
  raise_descriptor_limit();
  std::error_code ec;
  fs::create_directories(ctx_.run_dir, ec);
  if (ec) return make_error(errc::io, "cannot create " + ctx_.run_dir.string() + ": " + ec.message());
  if (auto s = packages_manager_.setup(); !s) return s;
  if (ctx_.endpoint_of("w4294967295-4294967295.sock").size() - 6 > max_ipc_path)
    return make_error(errc::invalid_argument,
                      "TROUPE_HOME path too long for ipc sockets (" + ctx_.run_dir.string() + "); use a shorter one");
  try {
    // Before any socket that authenticates binds (ipc/curve.hpp).
    zap_ = std::make_unique<ipc::zap_authenticator>(zmq_);
    ctx_.zap = zap_.get();
    zap_watch_ = std::make_unique<ipc::socket_watcher>(io_, zap_->socket(), [this] { zap_->handle_pending(); });
    // The sockets its workers connect to: processes of the system's own user
    // only, checked by SO_PEERCRED at each connection, whatever the modes of
    // run/ and its sockets (a umask of 000 once let another user forge a
    // worker's messages).
    zap_->admit(
        std::string(ipc::worker_zap_domain),
        [](const ipc::zap_authenticator::request_info& r) -> ipc::zap_authenticator::answer {
          const auto uid = peer_uid(r.address);
          if (uid && static_cast<uid_t>(*uid) == ::geteuid()) return {"200", "OK", "worker", ""};
          return {"400", "not the system's user", "",
                  "a process of uid " + (uid ? std::to_string(*uid) : std::string("?")) +
                      " tried a worker socket: only the system's own user's processes may"};
        },
        [](const std::string& peer, const std::string& reason) {
          log_line(TROUPE_LOG_WARN, {}, "refused a connection to a worker socket from " + peer + ": " + reason);
        });
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, std::string("cannot bind the ZAP handler: ") + e.what());
  }
  if (auto s = port_.bind(); !s) return s;
  // The port is ours: sockets left in run/ belong to a system on this port
  // that died without cleaning up (only now is removing them safe).
  for (const auto& e : fs::directory_iterator(ctx_.run_dir, ec)) fs::remove_all(e.path(), ec);
  fs::create_directories(ctx_.run_dir / "empty", ec);
  if (auto s = ipc::create_fence_file(ctx_.fence_file()); !s) return s;
  if (auto s = port_.bind_local(); !s) return s;
  if (auto s = pool_.bind(); !s) return s;
  if (auto s = gateway_.bind(); !s) return s;
  if (auto s = peers_.bind(); !s) return s;
  if (auto s = convention_->setup(); !s) return s;
  if (auto s = serve_metrics(); !s) return s;
  if (auto s = serve_dashboard(); !s) return s;
  wire();
  zap_watch_->start();
  keep_desired_state();
  port_.start();
  pool_.start();
  gateway_.start();
  peers_.start();
  signals_.async_wait([this](const boost::system::error_code& e, int) {
    if (!e) begin_shutdown();
  });
  on_hangup();
  std::ofstream(ctx_.dir / "pid") << ::getpid() << "\n";
  // Clients of this home find the local socket of a system bound elsewhere
  // than loopback by its address (troupe/client.hpp).
  std::ofstream(ctx_.dir / "where") << ctx_.where() << "\n";
  return ok_v;
}

status system::serve_metrics() {
  if (ctx_.opts.metrics.empty()) return ok_v;
  metrics_ = std::make_unique<metrics>(ctx_);
  metrics_->observe(events_.ring());
  gateway_.ask_latency = metrics_->ask_latency();
  metrics_->on_scrape([this](std::vector<prometheus::MetricFamily>& out) {
    add_system_families(out,
                        scrape_sources{actors_, packages_, pool_, gateway_, data_, members_, events_, relay_, calls_,
                                       *convention_, started_},
                        *metrics_);
    stats_.add_named_families(out);
  });
  http_ = std::make_unique<http_server>(
      io_, ctx_.opts.http == ctx_.opts.metrics ? dashboard_limits() : http_server::limits{});
  http_->route("/metrics", [this](const std::string&) {
    return http_server::response{200, "text/plain; version=0.0.4; charset=utf-8", metrics_->scrape(), {}};
  });
  if (auto s = http_->listen(ctx_.opts.metrics); !s) return s;
  log_line(TROUPE_LOG_INFO, {}, "metrics on http://" + ctx_.opts.metrics + "/metrics");
  return ok_v;
}

status system::serve_dashboard() {
  if (ctx_.opts.http.empty()) return ok_v;
  http_server* on = http_.get();
  if (ctx_.opts.http != ctx_.opts.metrics) {
    dashboard_http_ = std::make_unique<http_server>(io_, dashboard_limits());
    if (auto s = dashboard_http_->listen(ctx_.opts.http); !s) return s;
    on = dashboard_http_.get();
  }
  dashboard::reach reach{[this](std::uint16_t port) -> std::uint32_t {
                           const auto* m = members_.find_port(port);
                           return m != nullptr ? m->system_id : 0;
                         },
                         [this](const client_ref& c, std::uint32_t to, const std::string& command, const json& body,
                                std::chrono::milliseconds timeout) { calls_.forward(c, to, command, body, timeout); }};
  dashboard_ = std::make_unique<dashboard>(ctx_, *on, port_, events_.ring(), std::move(reach));
  if (auto s = dashboard_->setup(); !s) return s;
  // The URL only: its token is for those who may read it (troupe dashboard).
  log_line(TROUPE_LOG_INFO, {}, "dashboard on " + dashboard_->url() + " (its token: troupe dashboard)");
  return ok_v;
}

void system::keep_desired_state() {
  // Only now, with the port bound: a second daemon refused on a busy port
  // must not touch the running one's file.
  if (!supervisor::keeps_desired_state(ctx_.opts)) {
    std::error_code ec;
    if (fs::remove(desired_.file(), ec))
      log_line(
          TROUPE_LOG_INFO, {},
          "removed " + desired_.file().string() + ": this system does not lead its convention, which keeps its actors");
    return;
  }
  if (!recovered_.problem.empty()) {
    // Never fatal: the system starts empty, and the file stays for a look.
    const fs::path aside = desired_.file().string() + ".bad";
    std::error_code ec;
    fs::rename(desired_.file(), aside, ec);
    log_line(TROUPE_LOG_WARN, {},
             "ignored the desired state " + recovered_.problem + "; moved to " + aside.string() +
                 (ec ? " (failed: " + ec.message() + ")" : "") + "; no actor restored from it");
  }
  std::vector<saved_actor> actors;
  if (recovered_.state) {
    actors_.skip_serials_below(recovered_.state->serials_below);
    actors = std::move(recovered_.state->actors);
  }
  actors_.on_reserve = [this](std::uint32_t below) { desired_.reserve(below); };
  convention_->keep_desired_state(desired_, actors);
  if (auto s = desired_.begin(ctx_.id, actors_.reserve_ahead(), std::move(actors)); !s)
    log_line(TROUPE_LOG_ERROR, {}, "cannot keep the desired state: " + s.err().message);
}

void system::wire() {
  supervision_.attach(packages_manager_, *convention_);
  supervision_.register_handlers();
  packages_manager_.register_handlers();
  calls_.attach(*convention_);
  relay_.attach(*convention_);
  direct_.attach(*convention_);
  supervision_.attach(direct_);
  gateway_.route_elsewhere = [this](const client_ref& c, const std::string& command, const json& b,
                                    const std::string& target) { return calls_.route(c, command, b, target); };
  gateway_.elsewhere = [this](address a, bool stopping) {
    return (stopping && convention_->leaving(a)) || convention_->placed_elsewhere(a);
  };
  gateway_.relay = [this](const ipc::record_view& r) { relay_.relay(r); };
  pool_.on_drained = [this] { finish_shutdown(); };

  // The event ring hears first: what a subscriber reads is in the order it
  // happened, before what it causes.
  events_.register_handlers();
  stats_.register_handlers();
  bus_.on_running([this](address a) { events_.actor_event(event_kind::actor_started, a, ""); });
  bus_.on_restarted(
      [this](address a, const std::string& reason) { events_.actor_event(event_kind::actor_restarted, a, reason); });
  bus_.on_failed(
      [this](address a, const std::string& reason) { events_.actor_event(event_kind::actor_failed, a, reason); });
  bus_.on_gone([this](const actor_gone& e) { events_.actor_gone(e); });
  bus_.on_worker_exited([this](const worker_exited& e) {
    events_.worker_exited(e);
    if (metrics_) {
      // Its counts, gone with its marker file's next use, stay in its version's.
      const auto* p = packages_.find(e.package_id);
      metrics_->retire_worker(p ? p->m.package : "", p ? p->m.version.text : "", e.handled, e.sent);
    }
  });

  // What waits for an actor goes when it runs, in this order: client
  // messages, records from other systems, the convention's report, and an
  // unload that caught it being created.
  bus_.on_running([this](address a) {
    gateway_.release_held(a);
    relay_.release_held(a);
    convention_->running_here(a);
    packages_manager_.on_running(a);
    direct_.running(a);
  });
  bus_.on_failed([this](address a, const std::string& reason) {
    const std::string why = a.to_string() + " has failed: " + reason;
    gateway_.fail_held(a, why);
    relay_.drop_held(a, why);
    convention_->failed_here(a, reason);
    direct_.not_here(a);
  });
  bus_.on_gone([this](const actor_gone& e) {
    if (!e.failed) {  // a failure told them already
      const std::string why = "no actor at " + e.addr.to_string() + " (stopped)";
      gateway_.fail_held(e.addr, why);
      if (!(convention_->hosts(e.addr) && convention_->leaving(e.addr)))
        relay_.drop_held(e.addr, why);  // a moving one's follow it
    }
    convention_->gone_here(e.addr, e.failed, e.reason, e.fenced);
    direct_.not_here(e.addr);
  });

  port_.handle(cmd::client::status, [this](const client_ref& c, const json&) { cmd_status(c); });
  port_.handle(cmd::client::ping, [this](const client_ref& c, const json&) { cmd_status(c); });
  port_.handle(cmd::client::config, [this](const client_ref& c, const json&) {
    json options = json::object();
    for (const auto& [name, v] : ctx_.opts.configuration)
      options[name] = json{{"value", v.value}, {"source", v.source}};
    port_.answer(c, json{{"options", options}});
  });
  port_.handle(cmd::client::dashboard, [this](const client_ref& c, const json&) {
    if (!dashboard_)
      return port_.answer_error(c, "this system serves no dashboard (start it with --http HOST:PORT)", errc::not_found);
    port_.answer(c, json{{"url", dashboard_->url()}, {"token", dashboard_->token()}});
  });
  port_.handle(cmd::client::shutdown, [this](const client_ref& c, const json&) {
    port_.answer(c, json{{"pid", ::getpid()}});
    begin_shutdown();
  });
  port_.handle(cmd::client::ask, [this](const client_ref& c, const json& b) { gateway_.cmd_send(c, b, true); });
  port_.handle(cmd::client::tell, [this](const client_ref& c, const json& b) { gateway_.cmd_send(c, b, false); });
  port_.handle(cmd::client::kill, [this](const client_ref& c, const json& b) {
    const auto target = b.value("target", std::string());
    if (supervision_.kill_here(c, target) || calls_.route(c, std::string(cmd::client::kill), b, target)) return;
    port_.answer_error(c, "unknown address or name '" + target + "'", errc::not_found);
  });
}

void system::serve() {
  pool_.replenish_standby();
  convention_->start();
  stats_.start_named();
  log_line(TROUPE_LOG_INFO, {}, "system " + base::hex32(ctx_.id) + " serving on " + ctx_.where());
  // Ready once the loop runs (a client let in after the notice is answered:
  // the sockets are bound) and, for a member, once its leader has welcomed
  // it: a `start` that returned before the join left the next command
  // (`systems`, an ask through it) racing the join. A leader that does not
  // answer within join_wait does not hold the start up: the role says so.
  asio::post(io_, [this] { announce_ready(std::chrono::steady_clock::now() + join_wait); });
}

void system::announce_ready(std::chrono::steady_clock::time_point deadline) {
  if (!convention_->joined() && std::chrono::steady_clock::now() < deadline) {
    ready_timer_.expires_after(std::chrono::milliseconds(10));
    ready_timer_.async_wait([this, deadline](const boost::system::error_code& ec) {
      if (!ec) announce_ready(deadline);
    });
    return;
  }
  const std::string role = role_text();
  log_line(TROUPE_LOG_INFO, {}, "ready: " + role);
  report_ready(ctx_.opts.ready_fd, "ready " + std::to_string(::getpid()) + " " + role + "\n");
  notify_systemd("READY=1\nMAINPID=" + std::to_string(::getpid()) + "\nSTATUS=serving on " + ctx_.where() + ", " +
                 role);
}

std::string system::role_text() const {
  const std::string store = ctx_.opts.etcd.empty() ? "" : " on etcd (convention '" + ctx_.opts.convention + "')";
  if (convention_->leads()) {
    if (ctx_.opts.etcd.empty() && ctx_.opts.leader == ctx_.where())
      return "standalone (systems join it with --leader " + ctx_.where() + ")";
    return "leader of the convention" + store;
  }
  if (!convention_->joined())
    return "member, not joined yet: the leader" + store + " at " +
           (ctx_.opts.etcd.empty() ? ctx_.opts.leader : std::string("(none elected)")) +
           " has not answered; it joins when it does";
  const std::string leader =
      ctx_.opts.etcd.empty() ? ctx_.opts.leader : "the system on port " + convention_->port_of(convention_->leader());
  return "member of the convention" + store + " led by " + leader;
}

int system::run() {
  ipc::set_log_tag("system:" + std::to_string(ctx_.opts.port));
  if (auto s = setup(); !s) {
    log_line(TROUPE_LOG_ERROR, {}, s.err().message);
    failure_ = s.err().message;
    report_ready(ctx_.opts.ready_fd, "error " + s.err().message + "\n");
    notify_systemd("STATUS=failed: " + s.err().message);
    return system_exit_setup;
  }
  serve();
  io_.run();
  std::error_code ec;
  desired_.forget();  // a clean stop: the next start begins afresh
  fs::remove(ctx_.dir / "pid", ec);
  fs::remove(ctx_.dir / "where", ec);
  fs::remove(ctx_.dir / "loaded", ec);
  for (const auto& e : fs::directory_iterator(ctx_.run_dir, ec)) fs::remove_all(e.path(), ec);
  log_line(TROUPE_LOG_INFO, {}, "system stopped");
  return system_exit_ok;
}

void system::on_hangup() {
  hangup_.async_wait([this](const boost::system::error_code& e, int) {
    if (e) return;
    // The workers' lines come through the daemon (ipc/log_relay.hpp): they
    // follow the new file with it.
    if (auto s = ipc::reopen_log(); !s)
      log_line(TROUPE_LOG_ERROR, {}, s.err().message + "; logging on to the old file");
    else
      log_line(TROUPE_LOG_INFO, {}, "log reopened (SIGHUP)");
    on_hangup();
  });
}

// ---------------------------------------------------------------- status

json system::actor_states() const {
  const auto n = actors_.count_by_state();
  json out = json::object();
  for (auto st : {actor_state::starting, actor_state::running, actor_state::stopping, actor_state::failed})
    out[to_string(st)] = n[static_cast<std::size_t>(st)];
  return out;
}

void system::cmd_status(const client_ref& c) {
  const auto up = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
  std::size_t workers = 0, standby = 0, standby_ready = 0;
  for (const auto& [_, w] : pool_.all()) {
    // Workers of loaded packages (one refused a moment ago may not be reaped yet).
    workers += packages_.find(w.package_id) != nullptr;
    standby += w.package_id.empty();
    standby_ready += w.package_id.empty() && w.st == worker_proc::state::standby;
  }
  json status{{"system", base::hex32(ctx_.id)},
              {"port", ctx_.opts.port},
              {"pid", ::getpid()},
              {"uptime_ms", up.count()},
              {"capabilities", to_json(ctx_.opts.caps)},
              {"packages", packages_.size()},
              {"workers", workers},
              {"standby_workers", standby},
              {"standby_ready", standby_ready},
              {"standby_target", ctx_.opts.standby_workers},
              {"actors", actors_.size()},
              {"actor_states", actor_states()},
              {"limits",
               {{"max_workers", ctx_.opts.max_workers},
                {"max_json_depth", ctx_.opts.max_json_depth},
                {"max_client_message", ctx_.opts.max_client_message},
                {"max_held", ctx_.opts.held_limit},
                {"max_tcp_clients", ctx_.opts.max_tcp_clients},
                {"max_event_subscribers", ctx_.opts.max_event_subscribers},
                {"event_ring", event_stream::ring_size},
                {"max_package_size", ctx_.opts.limits.max_archive_bytes}}},
              {"log",
               {{"target", log_target_word(*ctx_.opts.log_target)},
                {"file", log_file_of(ctx_.opts).string()},
                {"level", ipc::log_level_word(ctx_.opts.log_level)}}},
              {"state", ctx_.stopping ? "stopping" : "running"},
              {"metrics", ctx_.opts.metrics.empty() ? json(nullptr) : json(ctx_.opts.metrics)},
              // Records of other systems' actors: how many the gateway relayed
              // (the supervisors' way, §5.9) and how many links went direct (§5.13).
              {"data",
               {{"relayed", gateway_.counts().relayed},
                {"direct_links", direct_.enabled()},
                {"linked", direct_.counts().linked},
                {"fallbacks", direct_.counts().fallbacks},
                {"hosted", direct_.counts().hosted},
                {"remote_inboxes", direct_.remote_inboxes()}}},
              {"dashboard", dashboard_ ? json(dashboard_->url()) : json(nullptr)}};
  convention_->describe(status);
  port_.answer(c, std::move(status));
}

// ---------------------------------------------------------------- shutdown

void system::begin_shutdown() {
  if (ctx_.stopping) return;
  ctx_.stopping = true;
  notify_systemd("STOPPING=1\nSTATUS=stopping " + std::to_string(actors_.size()) + " actors");
  convention_->stop();
  stats_.stop();
  log_line(TROUPE_LOG_INFO, {}, "shutting down: exit requests to " + std::to_string(actors_.size()) + " actors");
  packages_manager_.stop();
  for (auto& [_, w] : pool_.all())
    if (w.child && w.st != worker_proc::state::stopping) pool_.stop_worker(w, "");
  supervision_.drop_waiting_workers();  // crashed, waiting for their restart: no process
  if (pool_.empty()) return finish_shutdown();
  shutdown_timer_ = std::make_unique<asio::steady_timer>(io_, shutdown_grace);
  shutdown_timer_->async_wait([this](const boost::system::error_code& e) {
    if (e) return;
    for (auto& [_, w] : pool_.all())
      if (w.child) {
        log_line(TROUPE_LOG_WARN, {}, "worker " + w.identity + " did not stop in time: SIGKILL");
        w.child->signal(SIGKILL);
      }
  });
}

void system::finish_shutdown() {
  if (finished_ || !ctx_.stopping || !pool_.empty()) return;
  finished_ = true;
  if (shutdown_timer_) shutdown_timer_->cancel();
  signals_.cancel();
  hangup_.cancel();
  events_.stop();
  if (dashboard_) dashboard_->stop();
  if (dashboard_http_) dashboard_http_->stop();
  if (http_) http_->stop();
  port_.stop();
  pool_.stop();
  gateway_.stop();
  peers_.stop();
  calls_.stop();
  relay_.stop();
  direct_.stop();
  zap_watch_->stop();
  io_.stop();
}

void make_private(const fs::path& home, std::uint16_t port) {
  // What the daemon creates is its user's alone: directories 0700, files
  // 0600 (keys and sockets included), whatever umask it was started with.
  ::umask(077);
  // Directories an older troupe made with the umask's modes are closed too.
  const fs::path state = state_dir(home, port);
  for (const fs::path& d : {home, home / "systems", state, state / "run", home / "packages", home / "keys",
                            home / "cache", home / "convention", home / "convention" / "trusted", home / "clients",
                            home / "clients" / "admin", home / "clients" / "read"}) {
    std::error_code ec;
    if (fs::is_directory(d, ec)) fs::permissions(d, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  std::error_code ec;
  if (fs::exists(state / "system.log", ec))
    fs::permissions(state / "system.log", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace,
                    ec);
}

fs::path log_file_of(const system_options& opts) {
  return opts.log_file.empty() ? state_dir(opts.home, opts.port) / "system.log" : opts.log_file;
}

int run_system(const system_options& given) {
  make_private(given.home, given.port);
  system_options opts = given;
  if (!opts.log_target) opts.log_target = ipc::stderr_is_journal() ? ipc::log_target::journal : ipc::log_target::file;
  ipc::log_config log{opts.log_level,    opts.log_format,   *opts.log_target,
                      log_file_of(opts), opts.log_max_size, opts.log_files};
  // Whether stderr is somewhere else than the log (a terminal, a test's
  // pipe): a failure to start is told there too.
  bool stderr_elsewhere = log.target == ipc::log_target::file;
  struct stat err {};
  struct stat file {};
  if (stderr_elsewhere && ::fstat(STDERR_FILENO, &err) == 0 && ::stat(log.file.c_str(), &file) == 0)
    stderr_elsewhere = err.st_dev != file.st_dev || err.st_ino != file.st_ino;
  std::error_code ec;
  if (log.target == ipc::log_target::file) fs::create_directories(log.file.parent_path(), ec);
  if (auto st = ipc::configure_log(log); !st) {
    std::fprintf(stderr, "troupe: %s\n", st.err().message.c_str());
    report_ready(opts.ready_fd, "error " + st.err().message + "\n");
    return system_exit_setup;
  }
  system s(opts);
  const int code = s.run();
  if (code != system_exit_ok && stderr_elsewhere) std::fprintf(stderr, "troupe: %s\n", s.failure().c_str());
  return code;
}

}  // namespace troupe::supervisor
