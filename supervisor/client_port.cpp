#include "supervisor/client_port.hpp"

#include "ipc/commands.hpp"
#include "ipc/control.hpp"
#include "ipc/json_limits.hpp"
#include "ipc/log.hpp"

namespace troupe::supervisor {

using ipc::log_line;
namespace cmd = ipc::cmd;

status client_port::bind() {
  try {
    zmq::socket_t socket(ctx_.zmq, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 500);  // the answer to "shutdown" must leave
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(ctx_.opts.max_client_message));
    socket.bind("tcp://" + ctx_.where());
    socket_ = std::make_unique<ipc::watched_socket>(ctx_.io, std::move(socket), [this] { on_readable(); });
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, "cannot listen on " + ctx_.where() + ": " + e.what());
  }
  return ok_v;
}

void client_port::on_readable() {
  auto parts = socket_->receive();
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
    socket_->send_control(identity, cmd::reply, body);
    return;
  }
  const client_ref c{identity, m->body.value("rid", json())};
  if (ctx_.stopping && m->command != cmd::client::status && m->command != cmd::client::ping &&
      m->command != cmd::client::shutdown)
    return answer_error(c, "the system is shutting down", errc::unavailable);
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

void client_port::answer(const client_ref& c, json fields) { deliver(c, ipc::ok_reply(c.rid, std::move(fields))); }

void client_port::answer_error(const client_ref& c, std::string_view text, errc code) {
  auto body = ipc::error_reply(c.rid, text);
  body["code"] = to_string(code);
  deliver(c, std::move(body));
}

void client_port::deliver(const client_ref& c, json body) {
  if (c.nobody()) return;  // a held tell: its client had its answer
  if (c.via != 0) {
    if (reply_elsewhere) reply_elsewhere(c, std::move(body));
    return;
  }
  socket_->send_control(c.identity, cmd::reply, body);
}

}  // namespace troupe::supervisor
