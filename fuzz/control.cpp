// fuzz/control.cpp — control-plane messages as the daemon's sockets receive
// them (ipc/control.hpp): decode_control over a multipart message, with the
// same depth limit, frame offset and blob flag as its callers (client_port,
// worker_pool and peer_link), then what the daemon does with a body it has
// decoded (dump it into a reply) or refused (read the rid to answer anyway).
//
// Input: fuzz/common.hpp; flags bit 0: a blob frame is allowed (peer_link),
// bit 1: the first part is a routing identity (ROUTER sockets).

#include "ipc/control.hpp"
#include "fuzz/common.hpp"
#include "ipc/json_limits.hpp"

#include <zmq.hpp>

#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe;
  const auto in = fuzz::split(data, size);
  const bool with_blob = (in.flags & 1) != 0;
  const std::size_t first = (in.flags & 2) != 0 ? 1 : 0;
  std::vector<zmq::message_t> parts;
  parts.reserve(in.parts.size());
  for (auto p : in.parts) parts.emplace_back(p.data(), p.size());

  auto m = ipc::decode_control(parts, first, ipc::default_max_json_depth, with_blob);
  if (m) {
    // What a handler does with a request: read its rid, answer it.
    const ipc::json rid = m->body.contains("rid") ? m->body["rid"] : ipc::json();
    const auto reply = ipc::ok_reply(rid, {{"echo", m->body}});
    (void)reply.dump(-1, ' ', false, ipc::json::error_handler_t::replace);
  } else if (!parts.empty()) {
    // client_port answers a refused request with the rid read from its body.
    const auto rid = ipc::top_level_scalar(parts.back().to_string_view(), "rid");
    (void)ipc::error_reply(rid, m.err().message).dump(-1, ' ', false, ipc::json::error_handler_t::replace);
  }
  return 0;
}
