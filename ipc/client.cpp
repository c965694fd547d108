#include <troupe/client.hpp>

#include "ipc/commands.hpp"
#include "ipc/control.hpp"
#include "ipc/curve.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>

namespace troupe {

using json = nlohmann::json;

namespace {

std::atomic<std::uint64_t> next_monitor{1};

}  // namespace

struct client::impl {
  std::string endpoint;
  std::optional<ipc::curve_keypair> keys;  // CURVE over TCP
  std::string server_key;
  std::string refused_hint;  // what a refusal of this client's credentials means
  zmq::context_t ctx{1};
  zmq::socket_t socket;
  zmq::socket_t monitor;  // handshake failures: the system refused us
  std::uint64_t next_rid = 1;
  int unexplained = 0;  // handshakes that failed without a reason
  bool fail_fast = false;
  bool connected = false;  // this socket's connection was up once
  // The event subscription (events with follow): its rid, 0 when none.
  std::uint64_t events_rid = 0;
  std::chrono::milliseconds events_heartbeat{1000};
  std::chrono::steady_clock::time_point events_heard;

  void open() {
    unexplained = 0;
    connected = false;
    socket = zmq::socket_t(ctx, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    if (keys) ipc::make_curve_client(socket, *keys, server_key);
    const std::string mon = "inproc://troupe-client-monitor-" + std::to_string(next_monitor++);
    if (zmq_socket_monitor(socket.handle(), mon.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               (fail_fast ? ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED : 0)) != 0)
      throw zmq::error_t();
    monitor = zmq::socket_t(ctx, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(mon);
    // No ZMQ_IMMEDIATE: with it libzmq drops the connection's pipe, and with
    // it an answer received but not yet read, as soon as the peer
    // disconnects, so the answer to "shutdown" (sent just before the system
    // closes its socket) was sometimes lost. A request queued before the
    // connection is up is sent once it is; one never answered is dropped by
    // open() after the timeout (linger 0).
    socket.connect(endpoint);
  }

  /// A handshake failure the monitor reported, as the error to return.
  std::optional<error> refusal() {
    zmq::message_t event;
    if (!monitor.recv(event, zmq::recv_flags::dontwait)) return std::nullopt;
    std::uint16_t id = 0;
    if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
    while (event.more() && monitor.recv(event, zmq::recv_flags::dontwait)) {
    }
    // libzmq schedules a retry after a connect that failed (refused, or no
    // socket file: at once on a local address), and after a connection that
    // ended: only a retry before any connection means nothing listens.
    if (id == ZMQ_EVENT_CONNECTED) connected = true;
    if (id == ZMQ_EVENT_CONNECTED || (id == ZMQ_EVENT_CONNECT_RETRIED && connected)) return std::nullopt;
    if (id == ZMQ_EVENT_CONNECT_RETRIED)
      return make_error(errc::unavailable,
                        "nothing listens at " + endpoint + " (connection refused: is the system running?)");
    // A handshake cut short without a reason is what a plain-text client of
    // a CurveZMQ server sees, sometimes; once could also be a system going
    // away mid-handshake, so only a few in a row count.
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && ++unexplained < 3) return std::nullopt;
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
      return make_error(errc::refused, "the system at " + endpoint + " refused " + refused_hint);
    return make_error(errc::refused, "the system at " + endpoint + " ended the handshake: " +
                                         (keys ? "it does not speak CurveZMQ with this key (is it the system whose "
                                                 "public key this client was given?)"
                                               : "it accepts no plain-text clients; on its host run as its user (the "
                                                 "local socket), elsewhere use a client key (troupe keygen --client) "
                                                 "and the system's public key in TROUPE_SERVER_KEY"));
  }
};

std::filesystem::path default_home() {
  if (const char* env = std::getenv("TROUPE_HOME"); env && *env) return env;
  if (const char* home = std::getenv("HOME"); home && *home) return std::filesystem::path(home) / ".troupe";
  return "/var/lib/troupe";
}

result<std::string> system_endpoint(std::string_view system) {
  std::string_view host = "127.0.0.1";
  std::string_view port_text = system;
  if (auto colon = system.rfind(':'); colon != std::string_view::npos) {
    host = system.substr(0, colon);
    port_text = system.substr(colon + 1);
  }
  unsigned port = 0;
  auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || r.ec != std::errc{} || r.ptr != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return make_error(errc::invalid_argument, "system '" + std::string(system) + "' is not HOST:PORT");
  return "tcp://" + std::string(host) + ":" + std::to_string(port);
}

namespace {

bool loopback_host(std::string_view endpoint) {
  // endpoint is "tcp://HOST:PORT"
  const auto host = endpoint.substr(6, endpoint.rfind(':') - 6);
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// Whether the system of this home on endpoint's port is bound to its host
// (it writes HOST:PORT in DIR/where while it runs).
bool bound_here(const std::filesystem::path& system_dir, std::string_view endpoint) {
  std::ifstream in(system_dir / "where");
  std::string where;
  return in && std::getline(in, where) && "tcp://" + where == endpoint;
}

// A key given as Z85 text, or as the file holding it.
result<std::string> read_server_key(const std::string& text) {
  if (ipc::valid_curve_key(text)) return text;
  std::ifstream in(text);
  std::string key;
  if (in && std::getline(in, key) && ipc::valid_curve_key(key)) return key.substr(0, 40);
  return make_error(errc::invalid_argument,
                    "the system's public key '" + text + "' is neither 40 Z85 characters nor a file holding them");
}

}  // namespace

result<client> client::connect(std::string_view system, const connect_options& options) {
  auto ep = system_endpoint(system);
  if (!ep) return ep.err();
  const std::filesystem::path home = options.home.empty() ? default_home() : options.home;
  const std::string port = ep->substr(ep->rfind(':') + 1);
  const std::filesystem::path system_dir = home / "systems" / port;
  auto p = std::make_unique<impl>();
  p->endpoint = *ep;
  p->fail_fast = options.fail_fast;
  const bool local = loopback_host(*ep) || bound_here(system_dir, *ep);
  const auto sock = system_dir / "run" / "client.sock";
  if (local && !options.tcp_only && ::access(sock.c_str(), R_OK | W_OK) == 0) {
    p->endpoint = "ipc://" + sock.string();
    p->refused_hint = "this user (uid " + std::to_string(::geteuid()) +
                      "): only its own user, root and members of its --client-group may use its local socket";
  } else {
    std::string key_text = options.server_key;
    if (key_text.empty())
      if (const char* env = std::getenv("TROUPE_SERVER_KEY"); env && *env) key_text = env;
    std::error_code ec;  // an unreadable directory is as good as a missing file here
    if (key_text.empty() && local && std::filesystem::exists(system_dir / "curve" / "curve.pub", ec))
      key_text = (system_dir / "curve" / "curve.pub").string();
    const auto client_dir = home / "client";
    if (!key_text.empty() && std::filesystem::exists(client_dir / "curve.key", ec)) {
      auto server_key = read_server_key(key_text);
      if (!server_key) return server_key.err();
      auto keys = ipc::load_or_create_keypair(client_dir);
      if (!keys) return keys.err();
      p->keys = *keys;
      p->server_key = *server_key;
      p->refused_hint = "this client's key " + keys->public_key +
                        " (its operator allows it: troupe trust-client NAME KEY --role read|admin)";
    }
  }
  try {
    p->open();
  } catch (const zmq::error_t& e) {
    return make_error(errc::invalid_argument, "cannot connect to " + p->endpoint + ": " + e.what());
  }
  return client(std::move(p));
}

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() = default;

const std::string& client::endpoint() const { return impl_->endpoint; }

result<json> client::call(std::string_view command, const json& body, std::chrono::milliseconds timeout) {
  json req = body.is_object() ? body : json::object();
  const std::uint64_t rid = impl_->next_rid++;
  req["rid"] = rid;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto unavailable = [&] {
    // A late answer must not be read as the answer to the next call.
    impl_->open();
    return make_error(errc::unavailable, "no answer from the system at " + impl_->endpoint + " within " +
                                             std::to_string(timeout.count()) + " ms (is it running?)");
  };
  auto refused = [&](error e) {
    impl_->open();  // the refused connection is not retried by libzmq
    return e;
  };
  // Wait until the request can be queued (at once: no ZMQ_IMMEDIATE, no HWM reached).
  for (;;) {
    zmq::pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return unavailable();
    zmq::poll(&item, 1, left);
    if (item.revents & ZMQ_POLLOUT) break;
  }
  if (!ipc::send_control(impl_->socket, {}, command, req)) return unavailable();
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return unavailable();
    zmq::pollitem_t items[] = {{impl_->socket.handle(), 0, ZMQ_POLLIN, 0}, {impl_->monitor.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, left);
    if (items[1].revents & ZMQ_POLLIN)
      if (auto e = impl_->refusal()) return refused(*e);
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    auto parts = ipc::recv_multipart(impl_->socket);
    auto msg = ipc::decode_control(parts);
    if (!msg) return make_error(errc::protocol, "malformed answer from the system: " + msg.err().message);
    if (msg->command != ipc::cmd::reply || msg->body.value("rid", json()) != json(rid))
      continue;  // a stale answer to an earlier, timed-out call
    if (!msg->body.value("ok", false)) {
      auto text = msg->body.value("error", std::string("the system refused without a reason"));
      return make_error(errc_from_string(msg->body.value("code", std::string())), text);
    }
    msg->body.erase("rid");
    msg->body.erase("ok");
    return std::move(msg->body);
  }
}

result<json> client::events(std::uint64_t since, bool follow) {
  const std::uint64_t rid = impl_->next_rid;  // the one call() takes
  auto r = call(ipc::cmd::client::events, json{{"since", since}, {"follow", follow}});
  if (!r) return r;
  if (follow) {
    impl_->events_rid = rid;
    impl_->events_heartbeat = std::chrono::milliseconds(r->value("heartbeat_ms", std::int64_t{1000}));
    impl_->events_heard = std::chrono::steady_clock::now();
  }
  return r;
}

result<json> client::next_events(std::chrono::milliseconds timeout) {
  if (impl_->events_rid == 0) return make_error(errc::invalid_argument, "no event subscription is open");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now - impl_->events_heard > 5 * impl_->events_heartbeat) {
      impl_->events_rid = 0;
      return make_error(errc::unavailable, "the system at " + impl_->endpoint + " stopped sending its events (" +
                                               std::to_string(5 * impl_->events_heartbeat.count()) +
                                               " ms without a heartbeat): it went away");
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left.count() <= 0)
      return make_error(errc::timeout, "no event within " + std::to_string(timeout.count()) + " ms");
    left = std::min(left, impl_->events_heartbeat);
    zmq::pollitem_t items[] = {{impl_->socket.handle(), 0, ZMQ_POLLIN, 0}, {impl_->monitor.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, left);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      return make_error(errc::timeout, "interrupted");  // a signal: the caller decides
    }
    if (items[1].revents & ZMQ_POLLIN)
      if (auto e = impl_->refusal()) return *e;
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    auto parts = ipc::recv_multipart(impl_->socket);
    auto msg = ipc::decode_control(parts);
    if (!msg) return make_error(errc::protocol, "malformed message from the system: " + msg.err().message);
    if (msg->command != ipc::cmd::reply || msg->body.value("rid", json()) != json(impl_->events_rid)) continue;
    impl_->events_heard = std::chrono::steady_clock::now();
    if (!msg->body.value("ok", false)) {
      impl_->events_rid = 0;
      return make_error(errc_from_string(msg->body.value("code", std::string())),
                        msg->body.value("error", std::string("the system ended the subscription")));
    }
    if (msg->body.contains("end")) impl_->events_rid = 0;
    msg->body.erase("rid");
    msg->body.erase("ok");
    return std::move(msg->body);
  }
}

status client::unsubscribe_events(std::chrono::milliseconds timeout) {
  auto r = call(ipc::cmd::client::events, json{{"unsubscribe", true}}, timeout);
  impl_->events_rid = 0;
  if (!r) return r.err();
  return ok_v;
}

result<address> client::spawn(std::string_view type, std::string_view package, std::string_view name) {
  json body{{"type", type}};
  if (!package.empty()) body["package"] = package;
  if (!name.empty()) body["name"] = name;
  auto r = call(ipc::cmd::client::spawn, body);
  if (!r) return r.err();
  auto a = address::parse(r->value("address", std::string()));
  if (!a) return make_error(errc::protocol, "spawn answer carries no valid address");
  return *a;
}

result<json> client::ask(std::string_view target, const json& payload, std::chrono::milliseconds timeout,
                         std::string_view type) {
  json body{{"target", target}, {"type", type}, {"payload", payload}, {"timeout_ms", timeout.count()}};
  auto r = call(ipc::cmd::client::ask, body, timeout + std::chrono::seconds(2));
  if (!r) return r.err();
  return r->value("payload", json());
}

status client::tell(std::string_view target, const json& payload, std::string_view type) {
  json body{{"target", target}, {"type", type}, {"payload", payload}};
  auto r = call(ipc::cmd::client::tell, body);
  if (!r) return r.err();
  return ok_v;
}

}  // namespace troupe
