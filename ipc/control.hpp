// ipc/control.hpp — control-plane messages: [signature][command][JSON body]
// (docs/PROTOCOL.md §4). Requests that expect an answer carry "rid" in the
// body; the answer is the command "reply" with the same rid and either
// "ok": true plus results or "ok": false plus "error".
//
// Decoding never throws: malformed input becomes an error value.
#pragma once

#include "ipc/json_limits.hpp"
#include "ipc/protocol.hpp"

#include <troupe/result.hpp>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace troupe::ipc {

using json = nlohmann::json;

struct control_message {
  std::string command;
  json body = json::object();
  std::string blob;  ///< the optional binary fourth frame (between systems, §5.3)
};

/// Decodes parts[first..] as a control message, [signature][command][body],
/// whose body is nested at most max_depth levels (ipc/json_limits.hpp); with
/// with_blob a fourth frame is taken as its blob.
result<control_message> decode_control(const std::vector<zmq::message_t>& parts, std::size_t first = 0,
                                       std::size_t max_depth = default_max_json_depth, bool with_blob = false);

/// Sends a control message, preceded by a routing identity frame when
/// identity is non-empty (ROUTER sockets) and followed by blob as a fourth
/// frame when it is not empty. Non-blocking: returns false when the message
/// could not be queued (peer gone with ROUTER_MANDATORY, or HWM).
bool send_control(zmq::socket_t& socket, std::string_view identity, std::string_view command, const json& body,
                  std::string_view blob = {});

/// Sends parts as one multipart message (frames as they are, no signature
/// added; a test's malformed frames, say). Non-blocking for the first frame:
/// false when it could not be queued.
bool send_parts(zmq::socket_t& socket, const std::vector<std::string_view>& parts);

/// Receives one whole multipart message without blocking; empty when none.
std::vector<zmq::message_t> recv_multipart(zmq::socket_t& socket);

/// Builds the body of a successful reply to rid.
json ok_reply(const json& rid, json fields = json::object());
/// Builds the body of a failed reply to rid; control characters of message
/// are escaped as \xNN (an error is one line).
json error_reply(const json& rid, std::string_view message);

}  // namespace troupe::ipc
