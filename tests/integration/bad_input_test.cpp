// Bad input from outside never kills the daemon or a worker: garbage on the
// public TCP port, strangers on the control socket, malformed data frames in
// a worker's inbox. After each, `troupe status` answers and an actor that was
// running before still answers an ask.
#include "tests/integration/harness.hpp"

#include "ipc/control.hpp"
#include "ipc/protocol.hpp"
#include "ipc/wire.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;
namespace ipc = troupe::ipc;

namespace {

const std::string signature(ipc::control_signature.data(), ipc::control_signature.size());

/// The system still serves: status answers and the actor answers an ask.
void check_still_serving(const test_system& sys, const std::string& actor) {
  auto status = sys.run({"status", "--json"});
  INFO(status.err);
  REQUIRE(status.exit_code == 0);
  CHECK(json::parse(status.out)["state"] == "running");
  CHECK(sys.ask(actor, json{{"echo", "still here"}}) == "still here");
}

void send_frames(zmq::socket_t& s, const std::vector<std::string>& frames) {
  ipc::send_parts(s, std::vector<std::string_view>(frames.begin(), frames.end()));
}

/// The next message on a DEALER, decoded, within 5 s.
std::optional<ipc::control_message> receive_answer(zmq::socket_t& s) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, 5000ms) <= 0) return std::nullopt;
  auto parts = ipc::recv_multipart(s);
  auto m = ipc::decode_control(parts);
  if (!m) return std::nullopt;
  return *m;
}

/// Waits (bounded) until the daemon's log holds text. Only a way to know the
/// daemon has read a message that gets no answer; the test asserts on the
/// system's behaviour afterwards, not on the log.
void wait_logged(const test_system& sys, const std::string& text) {
  troupe::testing::eventually([&] { return sys.log().find(text) != std::string::npos; }, 5s);
}

struct fixture {
  test_system sys;
  std::string actor;
  fixture() {
    const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
    actor = sys.spawn({"Relay", "--package", pkg});
  }
};

}  // namespace

TEST_CASE("malformed client messages on the public port are answered with an error", "[integration][robustness]") {
  fixture f;
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(f.sys.client_endpoint());

  struct bad_message {
    const char* what;
    std::vector<std::string> frames;
  };
  const std::vector<bad_message> cases{
      {"a single garbage frame", {"\x01\x02garbage\xff"}},
      {"an empty frame", {""}},
      {"a wrong signature", {"XYZ\x01", "status", "{}"}},
      {"a wrong protocol version", {"TRC\x09", "status", "{}"}},
      {"a body that is not JSON", {signature, "status", "{not json"}},
      {"a JSON array body", {signature, "status", "[1,2,3]"}},
      {"an empty command name", {signature, "", "{}"}},
      {"a command name of 1000 bytes", {signature, std::string(1000, 'x'), "{}"}},
      {"an unknown command", {signature, "frobnicate", R"({"rid":1})"}},
      {"a spawn whose type is a number", {signature, "spawn", R"({"rid":2,"type":42})"}},
      {"a load whose path is an object", {signature, "load", R"({"rid":3,"path":{"a":1}})"}},
      {"an ask whose timeout is text", {signature, "ask", R"({"rid":4,"target":"x","payload":1,"timeout_ms":"soon"})"}},
      {"an ask without a target", {signature, "ask", R"({"rid":5,"payload":1})"}},
      {"five frames", {signature, "status", "{}", "extra", "frames"}},
      {"a wrong protocol version with a rid", {"TRC\x09", "status", R"({"rid":77})"}},
  };
  for (const auto& c : cases) {
    INFO("sent " << c.what);
    send_frames(dealer, c.frames);
    auto answer = receive_answer(dealer);
    REQUIRE(answer);
    CHECK(answer->command == "reply");
    CHECK(answer->body.value("ok", true) == false);
    CHECK_FALSE(answer->body.value("error", std::string()).empty());
    CHECK_FALSE(answer->body.value("code", std::string()).empty());
    // A rid that can still be read comes back, so a client can match the error.
    if (c.frames.back() == R"({"rid":77})") {
      CHECK(answer->body.value("rid", json()) == json(77));
      CHECK(answer->body.value("code", std::string()) == "protocol");
    }
    check_still_serving(f.sys, f.actor);
  }
}

TEST_CASE("JSON nested 80,000 levels deep in a rid or a payload is refused as a limit and crashes nothing",
          "[integration][robustness]") {
  // 160 KB of brackets overflowed the daemon's stack through a recursive dump
  // (echoing the rid, forwarding the payload), even under a bad signature.
  fixture f;
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(f.sys.client_endpoint());
  const std::string deep = std::string(80000, '[') + std::string(80000, ']');

  struct deep_message {
    const char* what;
    std::vector<std::string> frames;
    const char* code;
    json rid;  // echoed when it can be read at the top level
  };
  const std::vector<deep_message> cases{
      {"a deep rid", {signature, "status", R"({"rid":)" + deep + "}"}, "limit", nullptr},
      {"a deep rid under a bad signature", {"XYZ\x01", "status", R"({"rid":)" + deep + "}"}, "protocol", nullptr},
      {"a deep payload",
       {signature, "ask", R"({"rid":9,"target":")" + f.actor + R"(","payload":)" + deep + "}"},
       "limit",
       9},
      {"a deep tell",
       {signature, "tell", R"({"rid":9,"target":")" + f.actor + R"(","payload":{"a":)" + deep + "}}"},
       "limit",
       9},
      {"a deep payload under a bad signature",
       {"XYZ\x01", "ask", R"({"rid":"r","payload":)" + deep + "}"},
       "protocol",
       "r"},
  };
  for (const auto& c : cases) {
    INFO("sent " << c.what);
    send_frames(dealer, c.frames);
    auto answer = receive_answer(dealer);
    REQUIRE(answer);
    CHECK(answer->body.value("ok", true) == false);
    CHECK(answer->body.value("code", std::string()) == c.code);
    CHECK(answer->body.value("rid", json()) == c.rid);
    check_still_serving(f.sys, f.actor);
  }
}

TEST_CASE("the JSON depth limit is the operator's to set, and nesting within it passes through",
          "[integration][robustness]") {
  test_system sys({"--max-json-depth", "16"});
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  const std::string actor = sys.spawn({"Relay", "--package", pkg});
  json within = json::array();
  for (int i = 0; i < 10; ++i) within = json::array({within});
  CHECK(sys.ask(actor, json{{"echo", within}}) == within);
  json beyond = within;
  for (int i = 0; i < 10; ++i) beyond = json::array({beyond});
  auto r = sys.run({"ask", actor, json{{"echo", beyond}}.dump()});
  troupe::testing::check_one_line_failure(r, 1);  // a refusal, not a usage error
  CHECK(r.err.find("JSON nested deeper than 16 levels") != std::string::npos);
  check_still_serving(sys, actor);
}

TEST_CASE("peers that do not speak ZMTP on the public port are dropped", "[integration][robustness]") {
  fixture f;

  SECTION("raw bytes over a plain TCP connection") {
    for (const std::string& garbage : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                                       std::string("\xff\0\0\0\0\0\0\0\x01\x00junk", 14), std::string(70000, '\xAB')}) {
      const int fd = troupe::testing::connect_loopback(f.sys.port());
      REQUIRE(fd >= 0);
      (void)::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
      ::shutdown(fd, SHUT_WR);
      // Read what the daemon says (its ZMTP greeting) until it hangs up or 2 s pass.
      char buf[256];
      pollfd p{fd, POLLIN, 0};
      while (::poll(&p, 1, 2000) > 0 && ::recv(fd, buf, sizeof buf, 0) > 0) {
      }
      ::close(fd);
      check_still_serving(f.sys, f.actor);
    }
  }

  SECTION("a ZeroMQ socket of an incompatible type") {
    zmq::context_t ctx;
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 0);
    push.connect("tcp://" + f.sys.where());
    (void)push.send(zmq::buffer(signature), zmq::send_flags::dontwait);
    check_still_serving(f.sys, f.actor);
  }
}

TEST_CASE("strangers on the control socket are ignored", "[integration][robustness]") {
  fixture f;
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 1000);
  dealer.set(zmq::sockopt::routing_id, "intruder");
  REQUIRE(!f.sys.run_socket("c.sock").empty());
  dealer.connect("ipc://" + f.sys.run_socket("c.sock").string());

  SECTION("garbage") {
    send_frames(dealer, {std::string("\x00\x01\x02 not a control message", 25)});
    send_frames(dealer, {signature, "hello", "[]"});
    send_frames(dealer, {"TRC\x07", "hello", "{}"});
    wait_logged(f.sys, "dropped malformed control message from 'intruder'");
  }
  SECTION("a fake hello and other worker commands") {
    send_frames(dealer, {signature, "hello",
                         R"({"rid":1,"worker":1,"pid":1,"inbox":"ipc:///tmp/x","types":["Relay"],"abi":1})"});
    send_frames(dealer, {signature, "fatal", R"({"worker":1,"error":"I am not w1"})"});
    send_frames(dealer, {signature, "stopped", R"({"address":16,"failed":true,"reason":"lie"})"});
    wait_logged(f.sys, "'stopped' from unknown peer 'intruder'");
    // No answer comes back to a peer the system did not start.
    zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
    CHECK(zmq::poll(&item, 1, 0ms) == 0);
  }
  check_still_serving(f.sys, f.actor);
  // The package was not marked broken by the fake "fatal": a new actor starts.
  const std::string second = f.sys.spawn({"Relay"});
  CHECK(f.sys.ask(second, json{{"echo", 2}}) == 2);
}

TEST_CASE("malformed data frames in a worker's inbox are dropped", "[integration][robustness]") {
  fixture f;
  const auto target = troupe::address::parse(f.actor);
  REQUIRE(target);
  zmq::context_t ctx;
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 1000);
  // The first worker's inbox: run/TAG-w1-<incarnation>.sock, its first process.
  REQUIRE(!f.sys.run_socket("w1-1.sock").empty());
  push.connect("ipc://" + f.sys.run_socket("w1-1.sock").string());

  auto batch = [](const std::vector<ipc::record_view>& records) {
    std::string frame;
    ipc::begin_batch(frame);
    for (const auto& r : records) ipc::append_record(frame, r);
    return frame;
  };
  const troupe::address stranger(0x12345678u, 99);
  const troupe::address unknown(target->system(), 999999);
  ipc::record_view tell{ipc::record_kind::tell, 0, *target, stranger, 0, 0, "json", R"({"n":1})"};

  std::string good = batch({tell});
  std::string truncated = good.substr(0, good.size() - 5);
  std::string unknown_kind = good;
  unknown_kind[4 + 4] = '\x63';  // kind 99
  std::string long_length = good;
  long_length[5] = '\x10';  // a record length of about 1 MiB in a frame of a few bytes
  std::string wrong_version = good;
  wrong_version[3] = '\x09';

  struct bad_frame {
    const char* what;
    std::string frame;
  };
  const std::vector<bad_frame> cases{
      {"an empty frame", ""},
      {"a bad signature", "XXXX" + good.substr(4)},
      {"a wrong protocol version", wrong_version},
      {"a signature alone", good.substr(0, 4)},
      {"a truncated record", truncated},
      {"a record longer than its frame", long_length},
      {"an unknown record kind", unknown_kind},
      {"a tell to an unknown actor", batch({{ipc::record_kind::tell, 0, unknown, stranger, 0, 0, "json", "1"}})},
      {"an ask to an unknown actor", batch({{ipc::record_kind::ask, 0, unknown, stranger, 7, 0, "json", "1"}})},
      {"a reply nobody waits for", batch({{ipc::record_kind::reply, 0, *target, stranger, 12345, 0, "json", "1"}})},
      {"an ask from nobody to the actor",
       batch({{ipc::record_kind::ask, 0, *target, {}, 1, 0, "json", R"({"echo":1})"}})},
  };
  std::uint64_t tells = 0;
  for (const auto& c : cases) {
    INFO("sent " << c.what);
    push.send(zmq::buffer(c.frame), zmq::send_flags::none);
    // A good tell behind it on the same pipe: once the actor has counted it,
    // the bad frame before it has been read.
    push.send(zmq::buffer(good), zmq::send_flags::none);
    ++tells;
    json count;
    troupe::testing::eventually(
        [&] {
          count = f.sys.ask(f.actor, json{{"tell_count", true}});
          return count["count"] == tells;
        },
        10s);
    CHECK(count["count"] == tells);
    check_still_serving(f.sys, f.actor);
  }
  auto v = f.sys.actor(f.actor);
  REQUIRE(v);
  CHECK(v->restarts() == 0);
}

TEST_CASE(
    "what a system keeps is its user's alone whatever the umask, and a load of a file that is not a trusted "
    "package writes nothing",
    "[integration][robustness][files]") {
  namespace fs = std::filesystem;
  const mode_t old = ::umask(0);  // the most open an operator's shell could have
  test_system s;
  ::umask(old);
  auto mode = [](const fs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 010000u;
  };
  for (const fs::path& d : {s.home(), s.home() / "systems", s.state_dir(), s.state_dir() / "run", s.home() / "packages",
                            s.home() / "keys", s.home() / "cache"}) {
    INFO(d);
    CHECK(mode(d) == 0700);
  }
  CHECK(mode(s.state_dir() / "system.log") == 0600);  // it holds payloads
  int sockets = 0;
  for (const auto& e : fs::directory_iterator(s.state_dir() / "run")) {
    if (!e.is_socket()) continue;
    ++sockets;
    INFO(e.path());
    CHECK((mode(e.path()) & 077) == 0);
  }
  CHECK(sockets >= 2);  // control and gateway at least

  // A file its client may read but that is no package (as /etc/shadow would
  // be for a root daemon): refused, and no byte of it lands in packages/.
  const fs::path secret = s.home() / "secret.tpkg";
  std::ofstream(secret) << "root:$6$not-a-package$:19000:0:99999:7:::\n";
  const auto r = s.run({"load", secret.string()});
  CHECK(r.exit_code != 0);
  for (const auto& e : fs::directory_iterator(s.home() / "packages")) FAIL_CHECK("left in packages/: " << e.path());
}

namespace {
/// The resident memory of a process, KiB (0 when unreadable).
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}
}  // namespace

TEST_CASE("a client frame over --max-client-message is dropped before it is buffered; the system serves on",
          "[integration][robustness]") {
  test_system sys({"--max-client-message", "1M"});
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  const std::string actor = sys.spawn({"Relay", "--package", pkg});
  const auto status = json::parse(sys.run({"status", "--json"}).out);
  CHECK(status["limits"]["max_client_message"] == 1 << 20);
  const long before = rss_kib(sys.daemon_pid());
  REQUIRE(before > 0);
  {
    zmq::context_t ctx;
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 2000);  // the frames must leave before the socket goes
    dealer.connect(sys.client_endpoint());
    // 100 MB in the last frame: the daemon peaked at 936 MB on these before.
    const std::string big(100u << 20, 'x');
    for (int i = 0; i < 3; ++i)
      send_frames(dealer, {signature, "ask", R"({"rid":1,"target":")" + actor + R"(","payload":")" + big + "\"}"});
  }
  check_still_serving(sys, actor);
  // Refused from its header: far less than one such frame was ever held.
  CHECK(rss_kib(sys.daemon_pid()) - before < 50 * 1024);
  // Within the limit, a large ask passes.
  const std::string fits(100u << 10, 'y');  // within the limit and a command line
  CHECK(sys.ask(actor, json{{"echo", fits}}) == fits);
}
