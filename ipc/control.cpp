#include "ipc/control.hpp"

#include "base/hex.hpp"

#include <cstring>

namespace troupe::ipc {

result<control_message> decode_control(const std::vector<zmq::message_t>& parts, std::size_t first,
                                       std::size_t max_depth, bool with_blob) {
  if (parts.size() < first + 3)
    return make_error(errc::protocol, "control message has " +
                                          std::to_string(parts.size() < first ? 0 : parts.size() - first) +
                                          " frames, expected 3");
  if (parts.size() > first + (with_blob ? 4 : 3)) return make_error(errc::protocol, "control message has extra frames");
  const auto& sig = parts[first];
  if (sig.size() != control_signature.size() || std::memcmp(sig.data(), control_signature.data(), 3) != 0)
    return make_error(errc::protocol, "control message does not start with the TRC signature");
  if (static_cast<const unsigned char*>(sig.data())[3] != protocol_version)
    return make_error(errc::protocol, "unsupported control protocol version " +
                                          std::to_string(static_cast<const unsigned char*>(sig.data())[3]));
  control_message m;
  m.command = parts[first + 1].to_string();
  if (m.command.empty() || m.command.size() > 64)
    return make_error(errc::protocol, "control command name is empty or too long");
  const auto body = parts[first + 2].to_string_view();
  auto parsed = parse_json(body, max_depth);
  if (!parsed)
    return make_error(parsed.err().code == errc::limit ? errc::limit : errc::protocol,
                      "body of control command '" + m.command + "': " + parsed.err().message);
  if (!parsed->is_object())
    return make_error(errc::protocol, "body of control command '" + m.command + "' is not a JSON object");
  m.body = std::move(*parsed);
  if (parts.size() == first + 4) m.blob = parts[first + 3].to_string();
  return m;
}

bool send_parts(zmq::socket_t& socket, const std::vector<std::string_view>& parts) {
  try {
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const bool last = i + 1 == parts.size();
      // Once the first frame is queued ZeroMQ takes the rest of the message.
      auto flags = last ? zmq::send_flags::none : zmq::send_flags::sndmore;
      if (i == 0) flags = flags | zmq::send_flags::dontwait;
      if (!socket.send(zmq::buffer(parts[i].data(), parts[i].size()), flags) && i == 0) return false;
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;  // EHOSTUNREACH with ROUTER_MANDATORY: the peer is gone
  }
}

bool send_control(zmq::socket_t& socket, std::string_view identity, std::string_view command, const json& body,
                  std::string_view blob) {
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  std::vector<std::string_view> parts;
  parts.reserve(5);
  if (!identity.empty()) parts.push_back(identity);
  parts.push_back(std::string_view(control_signature.data(), control_signature.size()));
  parts.push_back(command);
  parts.push_back(text);
  if (!blob.empty()) parts.push_back(blob);
  return send_parts(socket, parts);
}

std::vector<zmq::message_t> recv_multipart(zmq::socket_t& socket) {
  std::vector<zmq::message_t> parts;
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return parts;
  bool more = part.more();
  parts.push_back(std::move(part));
  while (more) {
    zmq::message_t next;
    (void)socket.recv(next);  // the rest of a multipart message is already here
    more = next.more();
    parts.push_back(std::move(next));
  }
  return parts;
}

json ok_reply(const json& rid, json fields) {
  fields["rid"] = rid;
  fields["ok"] = true;
  return fields;
}

json error_reply(const json& rid, std::string_view message) {
  // An error is one line (§4.1), and it often quotes what a client sent (a
  // command name, a group, a path): control characters are escaped as \xNN,
  // so a newline in a request cannot break the answer or the lines a client
  // prints or logs from it.
  return json{{"rid", rid}, {"ok", false}, {"error", base::escape_controls(message)}};
}

}  // namespace troupe::ipc
