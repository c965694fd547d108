#include "supervisor/client_port.hpp"

#include "ipc/commands.hpp"
#include "ipc/control.hpp"
#include "ipc/curve.hpp"
#include "ipc/json_limits.hpp"
#include "ipc/log.hpp"
#include "supervisor/process.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace troupe::supervisor {

using ipc::log_line;
namespace cmd = ipc::cmd;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view local_domain = "troupe-local";
constexpr std::string_view tcp_domain = "troupe-client";
// Descriptors client connections leave free (files, the other listener).
// Workers are refused below 40 (worker_pool.cpp), which leaves clients about
// 30 of them: the guard must not cut those short.
constexpr std::size_t client_descriptor_reserve = 8;
constexpr auto listen_retry = std::chrono::milliseconds(500);

// What the read role may do: look, ask and tell. Everything else (load,
// spawn, kill, chgcap, move, shutdown, …) needs admin.
bool read_allows(std::string_view command) {
  for (auto c : {cmd::client::status, cmd::client::ping, cmd::client::list, cmd::client::avail, cmd::client::role,
                 cmd::client::actors, cmd::client::ask, cmd::client::tell, cmd::client::systems, cmd::client::config,
                 cmd::client::events, cmd::client::top})
    if (command == c) return true;
  return false;
}

bool loopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// Whether uid is a member of gid: its primary group or a supplementary one.
bool uid_in_group(uid_t uid, gid_t gid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  if (pw.pw_gid == gid) return true;
  int n = 256;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) return false;
  return std::find(groups.begin(), groups.begin() + n, gid) != groups.begin() + n;
}

}  // namespace

std::optional<unsigned long> peer_uid(std::string_view address) {
  // "HOST:UID:GID:PID" (libzmq appends SO_PEERCRED to an ipc peer's address).
  std::size_t end = address.size();
  for (int field = 0; field < 2; ++field) {
    end = address.rfind(':', end - 1);
    if (end == std::string_view::npos || end == 0) return std::nullopt;
  }
  const auto start = address.rfind(':', end - 1);
  if (start == std::string_view::npos) return std::nullopt;
  const auto text = address.substr(start + 1, end - start - 1);
  unsigned long uid = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), uid);
  if (text.empty() || r.ec != std::errc{} || r.ptr != text.data() + text.size()) return std::nullopt;
  return uid;
}

void client_port::admit_clients() {
  const auto refused = [](const std::string& peer, const std::string& reason) {
    log_line(TROUPE_LOG_WARN, {}, "refused a client connecting from " + peer + ": " + reason);
  };
  // The local socket: the system's own user, root, or a member of --client-group.
  ctx_.zap->admit(
      std::string(local_domain),
      [gid = ctx_.opts.client_gid](const ipc::zap_authenticator::request_info& r) -> ipc::zap_authenticator::answer {
        const auto uid = peer_uid(r.address);
        if (!uid) return {"400", "no peer credentials", "", "no peer credentials in '" + r.address + "'"};
        const auto u = static_cast<uid_t>(*uid);
        if (u == ::geteuid() || u == 0 || (gid >= 0 && uid_in_group(u, static_cast<gid_t>(gid))))
          return {"200", "OK", "admin:uid " + std::to_string(*uid), ""};
        return {"400", "uid not allowed", "",
                "uid " + std::to_string(*uid) + " is neither the system's user nor in its --client-group"};
      },
      refused);
  // TCP: CURVE keys of HOME/clients/admin/ and HOME/clients/read/, read at
  // each connection so a key added or removed counts without a restart.
  // Systems this one trusts may read too: a member discovers its leader
  // through the leader's status.
  const fs::path clients = ctx_.opts.home / "clients";
  const fs::path systems = ctx_.opts.home / "convention" / "trusted";
  ctx_.zap->admit(
      std::string(tcp_domain),
      [clients, systems](const ipc::zap_authenticator::request_info& r) -> ipc::zap_authenticator::answer {
        if (r.mechanism != "CURVE")
          return {"400", "only CURVE is accepted", "", "mechanism " + r.mechanism + " refused: only CURVE"};
        for (const char* role : {"admin", "read"}) {
          const auto set = ipc::read_trusted(clients / role);
          if (const std::string* name = set.find(r.key)) return {"200", "OK", std::string(role) + ":" + *name, ""};
        }
        if (const std::string* name = ipc::read_trusted(systems).find(r.key)) return {"200", "OK", "read:" + *name, ""};
        return {"400", "unknown key", "",
                "key " + r.key + " is neither a client's (" + clients.string() +
                    "/admin|read) nor a trusted system's (" + systems.string() + ")"};
      },
      refused);
}

status client_port::bind() {
  if (ctx_.opts.insecure_tcp && !loopback(ctx_.opts.bind_host))
    return make_error(errc::invalid_argument, "--insecure-tcp is only allowed on a loopback --bind, not " +
                                                  ctx_.opts.bind_host + " (clients elsewhere use keys)");
  admit_clients();
  try {
    zmq::socket_t socket(ctx_.zmq, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 500);  // the answer to "shutdown" must leave
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(ctx_.opts.max_client_message));
    if (!ctx_.opts.insecure_tcp) {
      auto keys = ipc::load_or_create_keypair(ctx_.dir / "curve");
      if (!keys) return keys.err();
      ipc::make_curve_server(socket, *keys, tcp_domain);
    }
    socket.bind("tcp://" + ctx_.where());
    tcp_guard_.name = "TCP";
    tcp_guard_.endpoint = "tcp://" + ctx_.where();
    tcp_guard_.max_connections = ctx_.opts.max_tcp_clients;
    tcp_guard_.limit_option = "--max-tcp-clients";
    tcp_guard_.socket = &tcp_;
    guard(tcp_guard_, socket);
    tcp_ = std::make_unique<ipc::watched_socket>(ctx_.io, std::move(socket), [this] { on_readable(*tcp_, false); });
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, "cannot listen on " + ctx_.where() + ": " + e.what());
  }
  return ok_v;
}

status client_port::bind_local() {
  const fs::path file = ctx_.run_dir / local_socket_file;
  try {
    zmq::socket_t socket(ctx_.zmq, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 500);
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(ctx_.opts.max_client_message));
    ipc::require_zap(socket, local_domain);
    socket.bind(local_endpoint());
    local_guard_.name = "local";
    local_guard_.endpoint = local_endpoint();
    local_guard_.max_connections = ctx_.opts.max_tcp_clients;  // no option of its own: the same bound
    local_guard_.limit_option = "--max-tcp-clients";
    local_guard_.socket = &local_;
    guard(local_guard_, socket);
    local_ = std::make_unique<ipc::watched_socket>(ctx_.io, std::move(socket), [this] { on_readable(*local_, true); });
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, "cannot listen on " + file.string() + ": " + e.what());
  }
  if (ctx_.opts.client_gid < 0) {
    // Connecting needs write permission: the system's user only.
    if (::chmod(file.c_str(), 0600) != 0)
      return make_error(errc::io, "cannot chmod " + file.string() + ": " + std::strerror(errno));
  } else {
    // The group reaches the socket: traverse (not list) every directory down
    // to it, connect to it. The ZAP check above still applies per uid.
    const auto gid = static_cast<gid_t>(ctx_.opts.client_gid);
    for (const fs::path& d : {ctx_.opts.home, ctx_.opts.home / "systems", ctx_.dir, ctx_.run_dir}) {
      if (::chown(d.c_str(), static_cast<uid_t>(-1), gid) != 0 || ::chmod(d.c_str(), 0710) != 0)
        return make_error(errc::io, "cannot open " + d.string() + " to --client-group: " + std::strerror(errno));
    }
    if (::chown(file.c_str(), static_cast<uid_t>(-1), gid) != 0 || ::chmod(file.c_str(), 0660) != 0)
      return make_error(errc::io, "cannot open " + file.string() + " to --client-group: " + std::strerror(errno));
  }
  return ok_v;
}

void client_port::start() {
  tcp_->start();
  tcp_guard_.watch->start();
  if (local_) {
    local_->start();
    local_guard_.watch->start();
  }
}

void client_port::stop() {
  if (backlog_timer_) backlog_timer_->cancel();
  tcp_->stop();
  tcp_guard_.watch->stop();
  if (local_) {
    local_->stop();
    local_guard_.watch->stop();
  }
}

void client_port::guard(listener_guard& g, zmq::socket_t& socket) {
  const std::string monitor = "inproc://troupe-client-port-" + std::to_string(ctx_.opts.port) + "-" + g.name;
  if (zmq_socket_monitor(socket.handle(), monitor.c_str(), ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0)
    throw zmq::error_t();
  g.monitor = zmq::socket_t(ctx_.zmq, zmq::socket_type::pair);
  g.monitor.set(zmq::sockopt::linger, 0);
  g.monitor.connect(monitor);
  g.watch = std::make_unique<ipc::socket_watcher>(ctx_.io, g.monitor, [this, &g] { on_listener_event(g); });
  g.retry = std::make_unique<boost::asio::steady_timer>(ctx_.io);
}

void client_port::on_listener_event(listener_guard& g) {
  zmq::message_t event;
  while (g.monitor.recv(event, zmq::recv_flags::dontwait)) {
    std::uint16_t id = 0;
    if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
    while (event.more() && g.monitor.recv(event, zmq::recv_flags::dontwait)) {
    }
    if (id == ZMQ_EVENT_ACCEPTED) {
      ++g.connections;
      if (g.paused) continue;
      if (g.connections >= g.max_connections)
        pause(g, std::to_string(g.connections) + " connections, the most it accepts (start " + g.limit_option + ")");
      else if (const auto fds = descriptors_in_use(); fds.room() < client_descriptor_reserve)
        pause(g, std::to_string(fds.open) + " of " + std::to_string(fds.limit) + " descriptors in use");
    } else if (id == ZMQ_EVENT_DISCONNECTED) {
      if (g.connections > 0) --g.connections;
    }
  }
}

void client_port::pause(listener_guard& g, const std::string& why) {
  // Closing the listener also ends the connections it accepted; their
  // clients connect again once it listens again.
  try {
    (*g.socket)->raw().unbind(g.endpoint);
  } catch (const zmq::error_t& e) {
    log_line(TROUPE_LOG_ERROR, {}, "cannot stop accepting " + g.name + " clients: " + e.what());
    return;
  }
  g.paused = true;
  log_line(TROUPE_LOG_WARN, {}, "not accepting " + g.name + " clients for now: " + why);
  resume(g);
}

void client_port::resume(listener_guard& g) {
  // Listens again once connections have gone and descriptors are free, tried
  // every listen_retry (a listener that was closed reports no disconnections).
  g.retry->expires_after(listen_retry);
  g.retry->async_wait([this, &g](const boost::system::error_code& e) {
    if (e || !g.paused || ctx_.stopping) return;
    if (g.connections >= g.max_connections * 3 / 4 || descriptors_in_use().room() < 2 * client_descriptor_reserve)
      return resume(g);
    try {
      (*g.socket)->raw().bind(g.endpoint);
    } catch (const zmq::error_t&) {
      return resume(g);
    }
    g.paused = false;
    log_line(TROUPE_LOG_INFO, {}, "accepting " + g.name + " clients again");
  });
}

std::string client_port::role_of(const zmq::message_t& frame, bool local) const {
  const char* user = zmq_msg_gets(frame.handle(), "User-Id");
  if (user == nullptr || *user == '\0') return !local && ctx_.opts.insecure_tcp ? "admin" : "";
  const std::string_view id(user);
  return std::string(id.substr(0, id.find(':')));
}

void client_port::on_readable(ipc::watched_socket& socket, bool local) {
  auto parts = socket.receive();
  if (parts.size() < 2) return;
  const std::string identity = parts[0].to_string();
  auto m = ipc::decode_control(parts, 1, ctx_.opts.max_json_depth);
  if (!m) {
    // Answer what can be answered; a peer that does not speak the protocol
    // at all is only logged (never crashes or stalls the system).
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed client message: " + m.err().message);
    // The rid when the last frame still holds one at its top level, so the
    // client can match the error instead of waiting for its timeout.
    const json rid = ipc::top_level_scalar(parts.back().to_string_view(), "rid");
    auto body = ipc::error_reply(rid, m.err().message);
    body["code"] = to_string(m.err().code == errc::limit ? errc::limit : errc::protocol);
    socket.send_control(identity, cmd::reply, body);
    return;
  }
  client_ref c{identity, m->body.value("rid", json())};
  c.local = local;
  const std::string role = role_of(parts[1], local);
  if (role != "admin" && !(role == "read" && read_allows(m->command))) {
    const char* user = zmq_msg_gets(parts[1].handle(), "User-Id");
    const std::string who = user && *user ? std::string(user) : "an unauthenticated client";
    log_line(TROUPE_LOG_WARN, {}, "refused '" + m->command + "' of " + who + ": it needs the admin role");
    return answer_error(c, "permission denied: '" + m->command + "' needs the admin role (this client: " + who + ")",
                        errc::refused);
  }
  if (ctx_.stopping && m->command != cmd::client::status && m->command != cmd::client::ping &&
      m->command != cmd::client::shutdown)
    return answer_error(c, "the system is shutting down", errc::unavailable);
  // A request's body holds the client's payloads (ask, tell): only at debug
  // level, which an operator turns on knowingly (docs/SECURITY.md).
  if (ipc::log_enabled(TROUPE_LOG_DEBUG))
    log_line(TROUPE_LOG_DEBUG, {},
             "client request '" + m->command + "' (" + (local ? "local" : "tcp") +
                 "): " + m->body.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 4096));
  dispatch(c, m->command, m->body);
}

void client_port::dispatch(const client_ref& c, const std::string& command, const json& body) {
  auto it = handlers_.find(command);
  if (it == handlers_.end()) return answer_error(c, "unknown command '" + command + "'", errc::invalid_argument);
  try {
    it->second(c, body);
  } catch (const json::exception& e) {
    // A field of the wrong JSON type: the client's mistake, not ours.
    answer_error(c, "malformed '" + command + "' request: " + e.what(), errc::invalid_argument);
  }
}

client_ref client_port::expect(std::function<void(json)> done) {
  client_ref c;
  c.internal = ++next_internal_;
  internal_.emplace(c.internal, std::move(done));
  return c;
}

void client_port::call(const std::string& command, const json& body, std::function<void(json)> done) {
  const client_ref c = expect(std::move(done));
  if (ctx_.stopping && command != cmd::client::status && command != cmd::client::ping)
    return answer_error(c, "the system is shutting down", errc::unavailable);
  if (ipc::log_enabled(TROUPE_LOG_DEBUG))
    log_line(TROUPE_LOG_DEBUG, {},
             "dashboard request '" + command +
                 "': " + body.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 4096));
  dispatch(c, command, body);
}

client_port::push_result client_port::push(const client_ref& c, const json& body) {
  if (c.via != 0 || c.internal != 0 || c.identity.empty()) return push_result::gone;
  if (backlog_.count({c.local, c.identity})) return push_result::full;  // answers wait ahead of it
  switch (send_reply(c.local, c.identity, body.dump(-1, ' ', false, json::error_handler_t::replace))) {
    case sent::yes:
      return push_result::sent;
    case sent::full:
      return push_result::full;
    case sent::gone:
      break;
  }
  return push_result::gone;
}

client_port::sent client_port::send_reply(bool local, const std::string& identity, const std::string& text) {
  auto* socket = local ? local_.get() : tcp_.get();
  if (socket == nullptr) return sent::gone;
  const bool ok = socket->send_with([&](zmq::socket_t& s) {
    return ipc::send_parts(s, {identity, std::string_view(ipc::control_signature.data(), ipc::control_signature.size()),
                               cmd::reply, text});
  });
  if (ok) return sent::yes;
  // EAGAIN: its pipe is full; EHOSTUNREACH (ROUTER_MANDATORY): it left.
  return zmq_errno() == EAGAIN ? sent::full : sent::gone;
}

namespace {
// What one client may have waiting: far more than any reasonable pipeline
// (a window of thousands of requests), far less than the daemon's memory.
constexpr std::size_t backlog_answers = 100000;
constexpr std::size_t backlog_bytes = std::size_t{64} << 20;
// And all clients together: many connections that each stop reading must
// not add up to the daemon's memory.
constexpr std::size_t backlog_total_bytes = std::size_t{256} << 20;
constexpr auto backlog_wait_max = std::chrono::milliseconds(50);
}  // namespace

void client_port::keep_answer(bool local, const std::string& identity, std::string text) {
  auto& b = backlog_[{local, identity}];
  if (b.answers.size() >= backlog_answers || b.bytes + text.size() > backlog_bytes ||
      backlog_total_ + text.size() > backlog_total_bytes) {
    if (b.dropped++ == 0)
      log_line(TROUPE_LOG_WARN, {},
               std::string("a ") + (local ? "local" : "TCP") +
                   " client does not read its answers: " + std::to_string(b.answers.size()) + " wait for it (" +
                   std::to_string(backlog_total_) + " bytes for all clients); further answers to it are dropped");
    if (b.answers.empty()) backlog_.erase({local, identity});
    return;
  }
  b.bytes += text.size();
  backlog_total_ += text.size();
  b.answers.push_back(std::move(text));
  arm_backlog();
}

void client_port::arm_backlog() {
  if (backlog_armed_ || backlog_.empty()) return;
  if (!backlog_timer_) backlog_timer_ = std::make_unique<boost::asio::steady_timer>(ctx_.io);
  backlog_armed_ = true;
  backlog_timer_->expires_after(backlog_wait_);
  backlog_timer_->async_wait([this](const boost::system::error_code& e) {
    backlog_armed_ = false;
    if (!e) flush_backlog();
  });
}

void client_port::flush_backlog() {
  bool progress = false;
  for (auto it = backlog_.begin(); it != backlog_.end();) {
    auto& b = it->second;
    sent r = sent::yes;
    while (!b.answers.empty() && (r = send_reply(it->first.first, it->first.second, b.answers.front())) == sent::yes) {
      b.bytes -= b.answers.front().size();
      backlog_total_ -= b.answers.front().size();
      b.answers.pop_front();
      progress = true;
    }
    if (r == sent::gone || b.answers.empty()) {
      backlog_total_ -= b.bytes;
      if (b.dropped > 0)
        log_line(TROUPE_LOG_WARN, {}, "a client that did not read its answers lost " + std::to_string(b.dropped));
      it = backlog_.erase(it);
    } else {
      ++it;
    }
  }
  // Quick while the client keeps reading, slower while it does not.
  backlog_wait_ = progress ? std::chrono::milliseconds(1) : std::min(backlog_wait_ * 2, backlog_wait_max);
  arm_backlog();
}

void client_port::answer(const client_ref& c, json fields) { deliver(c, ipc::ok_reply(c.rid, std::move(fields))); }

void client_port::answer_error(const client_ref& c, std::string_view text, errc code) {
  auto body = ipc::error_reply(c.rid, text);
  body["code"] = to_string(code);
  deliver(c, std::move(body));
}

void client_port::deliver(const client_ref& c, json body) {
  if (c.nobody()) return;  // a held tell: its client had its answer
  if (c.internal != 0) {
    auto it = internal_.find(c.internal);
    if (it == internal_.end()) return;  // answered already
    auto done = std::move(it->second);
    internal_.erase(it);
    body.erase("rid");
    done(std::move(body));
    return;
  }
  if (c.via != 0) {
    if (reply_elsewhere) reply_elsewhere(c, std::move(body));
    return;
  }
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  const bool local = c.local && local_;
  // Behind answers that wait already, in order; else now, or kept when its pipe is full.
  if (backlog_.count({local, c.identity})) return keep_answer(local, c.identity, std::move(text));
  if (send_reply(local, c.identity, text) == sent::full) keep_answer(local, c.identity, std::move(text));
}

}  // namespace troupe::supervisor
