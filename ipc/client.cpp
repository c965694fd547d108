#include <troupe/client.hpp>

#include "ipc/commands.hpp"
#include "ipc/control.hpp"

#include <charconv>

namespace troupe {

using json = nlohmann::json;

struct client::impl {
  std::string endpoint;
  zmq::context_t ctx{1};
  zmq::socket_t socket;
  std::uint64_t next_rid = 1;

  void open() {
    socket = zmq::socket_t(ctx, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    // No ZMQ_IMMEDIATE: with it libzmq drops the connection's pipe, and with
    // it an answer received but not yet read, as soon as the peer
    // disconnects, so the answer to "shutdown" (sent just before the system
    // closes its socket) was sometimes lost. A request queued before the
    // connection is up is sent once it is; one never answered is dropped by
    // open() after the timeout (linger 0).
    socket.connect(endpoint);
  }
};

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

result<client> client::connect(std::string_view system) {
  auto ep = system_endpoint(system);
  if (!ep) return ep.err();
  auto p = std::make_unique<impl>();
  p->endpoint = *ep;
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
    zmq::pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, left);
    if (!(item.revents & ZMQ_POLLIN)) continue;
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
