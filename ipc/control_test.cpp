// Tests of control-plane messages (docs/PROTOCOL.md §4): [signature][command][JSON body],
// sent over real inproc sockets and decoded; malformed messages become errors.
#include "ipc/control.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using troupe::errc;
using namespace troupe::ipc;

namespace {

/// Waits (up to a generous bound) until socket has a message, then reads it whole.
std::vector<zmq::message_t> receive(zmq::socket_t& socket) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  const int n = zmq::poll(&item, 1, std::chrono::milliseconds(5000));
  REQUIRE(n == 1);
  auto parts = recv_multipart(socket);
  REQUIRE_FALSE(parts.empty());
  return parts;
}

std::vector<zmq::message_t> frames(const std::vector<std::string>& texts) {
  std::vector<zmq::message_t> parts;
  for (const auto& t : texts) parts.emplace_back(t.data(), t.size());
  return parts;
}

const std::string signature = "TRC\x01"s;

void require_protocol_error(const troupe::result<control_message>& m) {
  REQUIRE_FALSE(m.ok());
  CHECK(m.err().code == errc::protocol);
  CHECK_FALSE(m.err().message.empty());
}

}  // namespace

TEST_CASE("a control message sent over a PAIR socket decodes to its command and body", "[control]") {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair);
  zmq::socket_t b(ctx, zmq::socket_type::pair);
  a.bind("inproc://control-pair");
  b.connect("inproc://control-pair");

  const json body = {{"rid", 7}, {"name", "counter"}, {"args", {1, 2, 3}}};
  REQUIRE(send_control(a, "", "spawn", body));

  const auto parts = receive(b);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].to_string() == signature);
  CHECK(parts[1].to_string() == "spawn");
  CHECK(json::parse(parts[2].to_string()) == body);

  const auto m = decode_control(parts);
  REQUIRE(m.ok());
  CHECK(m->command == "spawn");
  CHECK(m->body == body);
}

TEST_CASE("a control message has the documented frames on the wire", "[control]") {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair);
  zmq::socket_t b(ctx, zmq::socket_type::pair);
  a.bind("inproc://control-golden");
  b.connect("inproc://control-golden");

  REQUIRE(send_control(a, "", "ping", json{{"rid", 1}}));
  const auto parts = receive(b);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].to_string() == "TRC\x01"s);
  CHECK(parts[1].to_string() == "ping");
  CHECK(parts[2].to_string() == R"({"rid":1})");

  const auto m = decode_control(frames({"TRC\x01"s, "ping", R"({"rid":1})"}));
  REQUIRE(m.ok());
  CHECK(m->command == "ping");
  CHECK(m->body == json{{"rid", 1}});
}

TEST_CASE("a DEALER request reaches a ROUTER behind its identity and the reply comes back", "[control]") {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  router.set(zmq::sockopt::router_mandatory, 1);
  dealer.set(zmq::sockopt::routing_id, "worker-3");
  router.bind("inproc://control-router");
  dealer.connect("inproc://control-router");

  REQUIRE(send_control(dealer, "", "status", json{{"rid", "r-1"}}));
  const auto request = receive(router);
  REQUIRE(request.size() == 4);
  CHECK(request[0].to_string() == "worker-3");
  const auto m = decode_control(request, 1);
  REQUIRE(m.ok());
  CHECK(m->command == "status");
  CHECK(m->body.at("rid") == "r-1");

  const std::string identity = request[0].to_string();
  REQUIRE(send_control(router, identity, "reply", ok_reply(m->body.at("rid"), {{"actors", 4}})));
  const auto reply = receive(dealer);
  REQUIRE(reply.size() == 3);
  const auto r = decode_control(reply);
  REQUIRE(r.ok());
  CHECK(r->command == "reply");
  CHECK(r->body == json{{"rid", "r-1"}, {"ok", true}, {"actors", 4}});
}

TEST_CASE("sending to an unknown ROUTER identity fails without throwing", "[control]") {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::router_mandatory, 1);
  router.bind("inproc://control-nobody");
  bool sent = true;
  CHECK_NOTHROW(sent = send_control(router, "nobody", "ping", json::object()));
  CHECK_FALSE(sent);
}

TEST_CASE("a body holding invalid UTF-8 is still sent as valid JSON", "[control]") {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair);
  zmq::socket_t b(ctx, zmq::socket_type::pair);
  a.bind("inproc://control-utf8");
  b.connect("inproc://control-utf8");

  REQUIRE(send_control(a, "", "log", json{{"text", "bad \xff byte"}}));
  const auto m = decode_control(receive(b));
  REQUIRE(m.ok());
  CHECK(m->body.at("text") == "bad \xef\xbf\xbd byte");  // U+FFFD
}

TEST_CASE("recv_multipart returns nothing when no message is waiting", "[control]") {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair);
  a.bind("inproc://control-empty");
  CHECK(recv_multipart(a).empty());
}

TEST_CASE("a control message with two frames is refused", "[control]") {
  require_protocol_error(decode_control(frames({signature, "ping"})));
}

TEST_CASE("a control message with four frames is refused", "[control]") {
  require_protocol_error(decode_control(frames({signature, "ping", "{}", "{}"})));
}

TEST_CASE("a control message with no frames at all is refused", "[control]") {
  require_protocol_error(decode_control(frames({})));
  require_protocol_error(decode_control(frames({}), 1));
  require_protocol_error(decode_control(frames({"identity"}), 1));
}

TEST_CASE("decoding after a routing identity skips exactly that frame", "[control]") {
  const auto m = decode_control(frames({"identity", signature, "ping", "{}"}), 1);
  REQUIRE(m.ok());
  CHECK(m->command == "ping");
  require_protocol_error(decode_control(frames({"identity", signature, "ping", "{}"})));
}

TEST_CASE("a control message with a bad signature is refused", "[control]") {
  for (const auto& sig : {"TRD\x01"s, "trc\x01"s, "TRC"s, "TRC\x01\x00"s, ""s}) {
    INFO("signature of " << sig.size() << " bytes");
    require_protocol_error(decode_control(frames({sig, "ping", "{}"})));
  }
}

TEST_CASE("a control message of another protocol version is refused", "[control]") {
  for (const auto& sig : {"TRC\x00"s, "TRC\x02"s, "TRC\xff"s}) {
    const auto m = decode_control(frames({sig, "ping", "{}"}));
    require_protocol_error(m);
    CHECK(m.err().message.find("version") != std::string::npos);
  }
}

TEST_CASE("a control body that is not JSON is refused", "[control]") {
  for (const auto& body : {""s, "{"s, "{\"rid\":}"s, "not json"s, "{} trailing"s}) {
    INFO("body " << body);
    require_protocol_error(decode_control(frames({signature, "ping", body})));
  }
}

TEST_CASE("a control body that is JSON but not an object is refused", "[control]") {
  for (const auto& body : {"[1,2,3]"s, "[]"s, "42"s, "\"text\""s, "null"s, "true"s}) {
    INFO("body " << body);
    require_protocol_error(decode_control(frames({signature, "ping", body})));
  }
}

TEST_CASE("a control message with an empty or overlong command is refused", "[control]") {
  require_protocol_error(decode_control(frames({signature, "", "{}"})));
  require_protocol_error(decode_control(frames({signature, std::string(65, 'c'), "{}"})));
  CHECK(decode_control(frames({signature, std::string(64, 'c'), "{}"})).ok());
}

TEST_CASE("ok_reply carries the rid, ok true and the given fields", "[control]") {
  CHECK(ok_reply(12) == json{{"rid", 12}, {"ok", true}});
  CHECK(ok_reply("a", {{"pid", 99}, {"name", "w1"}}) == json{{"rid", "a"}, {"ok", true}, {"pid", 99}, {"name", "w1"}});
  // The reply's own keys win over fields of the same name.
  CHECK(ok_reply(3, {{"ok", false}, {"rid", 4}}) == json{{"rid", 3}, {"ok", true}});
}

TEST_CASE("error_reply carries the rid, ok false and the message, nothing else", "[control]") {
  const json e = error_reply(12, "no such actor @3fa9c012.17");
  CHECK(e == json{{"rid", 12}, {"ok", false}, {"error", "no such actor @3fa9c012.17"}});
  CHECK(e.size() == 3);
  CHECK(error_reply(nullptr, "x").at("rid").is_null());
}

TEST_CASE("a control body nested deeper than the limit is refused as a limit, not parsed", "[control]") {
  const std::string deep = "{\"rid\":" + std::string(80000, '[') + std::string(80000, ']') + "}";
  auto parts = frames({signature, "status", deep});
  auto m = decode_control(parts, 0, 64);
  REQUIRE_FALSE(m.ok());
  CHECK(m.err().code == errc::limit);
  CHECK(m.err().message == "body of control command 'status': JSON nested deeper than 64 levels");
}

TEST_CASE("every error code a reply carries reads back as itself; an unknown name as refused", "[control]") {
  for (int i = 0; i <= static_cast<int>(troupe::errc::unknown); ++i) {
    const auto c = static_cast<troupe::errc>(i);
    INFO(troupe::to_string(c));
    CHECK(troupe::errc_from_string(troupe::to_string(c)) == c);
  }
  CHECK(troupe::errc_from_string("no_such_code") == troupe::errc::refused);
}

TEST_CASE("an error reply stays on one line whatever it quotes", "[control]") {
  // A client's command name or group with a newline came back in its error
  // as is (found by troupe-attack, class 1).
  const auto body = troupe::ipc::error_reply(7, "unknown command 'sta\ntus\r\x01\x7f'");
  CHECK(body["error"] == "unknown command 'sta\\x0atus\\x0d\\x01\\x7f'");
  CHECK(body["rid"] == 7);
  CHECK(troupe::ipc::error_reply(nullptr, "caf\xc3\xa9 \t")["error"] == "caf\xc3\xa9 \\x09");
}
