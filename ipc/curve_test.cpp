// Tests of CurveZMQ keys, the trusted set and the ZAP handler: key files in
// temp dirs, ZAP requests sent by hand, and real CURVE handshakes over
// tcp://127.0.0.1 between a ROUTER server and DEALER clients, each client in
// its own context. The server side runs in a poll loop on the test's thread
// (authenticator, server socket, the server's monitor), bounded by deadlines.
#include "ipc/curve.hpp"

#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace std::string_literals;
using troupe::errc;
using troupe::testing::slurp;
using troupe::testing::temp_dir;
using troupe::testing::write;
using namespace troupe::ipc;
namespace fs = std::filesystem;

namespace {

template <class T>
T must(troupe::result<T> r) {
  if (!r) FAIL(r.err().message);
  return std::move(r).value();
}

unsigned file_mode(const fs::path& file) {
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

ino_t inode(const fs::path& file) {
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  return st.st_ino;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string binary_key(const std::string& z85) {
  std::array<std::uint8_t, 32> raw{};
  REQUIRE(zmq_z85_decode(raw.data(), z85.c_str()) != nullptr);
  return std::string(reinterpret_cast<const char*>(raw.data()), raw.size());
}

// ------------------------------------------------------------ ZAP by hand

std::vector<std::string> frames_of(std::vector<zmq::message_t>& parts) {
  std::vector<std::string> texts;
  for (auto& p : parts) texts.push_back(p.to_string());
  return texts;
}

/// Sends request on a REQ socket connected to the ZAP endpoint, lets the
/// authenticator answer, and returns the reply's frames.
std::vector<std::string> ask(zmq::socket_t& req, zap_authenticator& auth, const std::vector<std::string>& request) {
  for (std::size_t i = 0; i < request.size(); ++i)
    req.send(zmq::buffer(request[i]), i + 1 < request.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  zmq::pollitem_t zap{auth.socket().handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&zap, 1, 5000ms) == 1);
  auth.handle_pending();
  zmq::pollitem_t back{req.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&back, 1, 5000ms) == 1);
  std::vector<zmq::message_t> parts;
  for (bool more = true; more;) {
    zmq::message_t part;
    REQUIRE(req.recv(part));
    more = part.more();
    parts.push_back(std::move(part));
  }
  return frames_of(parts);
}

// ------------------------------------------------------------ handshakes

struct delivery {
  std::string payload;
  std::string user_id;  // "" when the message carries none
};

/// The server side of a CURVE link: authenticator bound first, then a ROUTER
/// made with make_curve_server, watched by a monitor, on an ephemeral port.
struct curve_server {
  temp_dir dir{"troupe-curve"};
  fs::path trusted_dir = dir.path / "trusted";
  zmq::context_t ctx;
  std::vector<std::pair<std::string, std::string>> refusals;  // (peer, reason)
  zap_authenticator auth{
      ctx, [this] { return read_trusted(trusted_dir); },
      [this](const std::string& peer, const std::string& reason) { refusals.emplace_back(peer, reason); }};
  curve_keypair keys = must(generate_curve_keypair());
  zmq::socket_t router{ctx, zmq::socket_type::router};
  zmq::socket_t monitor{ctx, zmq::socket_type::pair};
  std::string endpoint;
  std::vector<delivery> received;
  std::vector<int> events;  // ZMQ_EVENT_* seen by the server's monitor

  curve_server() {
    router.set(zmq::sockopt::linger, 0);
    make_curve_server(router, keys);
    REQUIRE(zmq_socket_monitor(router.handle(), "inproc://curve-test-monitor",
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect("inproc://curve-test-monitor");
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }

  [[nodiscard]] bool saw(int event) const { return std::find(events.begin(), events.end(), event) != events.end(); }
  [[nodiscard]] bool saw_handshake_failure() const {
    return saw(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) || saw(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) ||
           saw(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
  }

  /// Serves ZAP, reads the server (and extra) sockets and the monitor until
  /// done() or bound passes; whether done() became true.
  bool pump(const std::function<bool()>& done, std::chrono::milliseconds bound,
            std::vector<zmq::socket_t*> extra = {}) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      std::vector<zmq::pollitem_t> items{{auth.socket().handle(), 0, ZMQ_POLLIN, 0},
                                         {router.handle(), 0, ZMQ_POLLIN, 0},
                                         {monitor.handle(), 0, ZMQ_POLLIN, 0}};
      for (auto* s : extra) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
      zmq::poll(items, left);
      auth.handle_pending();
      drain(router);
      for (auto* s : extra) drain(*s);
      zmq::message_t event;
      while (monitor.recv(event, zmq::recv_flags::dontwait)) {
        zmq::message_t address;
        (void)monitor.recv(address);
        std::uint16_t id = 0;
        std::memcpy(&id, event.data(), sizeof id);
        events.push_back(id);
      }
    }
    return true;
  }

  /// ROUTER messages: [routing id][payload].
  void drain(zmq::socket_t& s) {
    zmq::message_t id;
    while (s.recv(id, zmq::recv_flags::dontwait)) {
      zmq::message_t payload;
      (void)s.recv(payload);
      const char* user = zmq_msg_gets(payload.handle(), "User-Id");
      received.push_back({payload.to_string(), user != nullptr ? user : ""});
    }
  }
};

/// A client in a context of its own; linger 0, so a refused one closes at once.
struct peer {
  zmq::context_t ctx;
  zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
  peer() { dealer.set(zmq::sockopt::linger, 0); }
  void connect_and_send(const std::string& endpoint, const std::string& text) {
    dealer.connect(endpoint);
    // Queued until the handshake completes.
    REQUIRE(dealer.send(zmq::buffer(text), zmq::send_flags::dontwait));
  }
};

/// Writes bytes to the server's port over a plain TCP socket, then waits
/// (bounded) until the server drops the connection; whether it did.
bool send_raw_and_wait_for_close(const std::string& endpoint, const std::string& bytes) {
  const auto colon = endpoint.rfind(':');
  REQUIRE(colon != std::string::npos);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(colon + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  // MSG_NOSIGNAL: the server may hang up before everything is written.
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);  // the server's greeting, then EOF or RST
    closed = n <= 0;
  }
  ::close(fd);
  return closed;
}

}  // namespace

// ------------------------------------------------------------ key files

TEST_CASE("a key pair is created in a fresh directory, the secret at mode 0600, and read back", "[curve]") {
  temp_dir dir("troupe-curve");
  const fs::path keys = dir.path / "keys";  // does not exist yet

  const auto created = must(load_or_create_keypair(keys));
  CHECK(valid_curve_key(created.public_key));
  CHECK(valid_curve_key(created.secret_key));
  CHECK(created.public_key.size() == 40);
  CHECK(created.secret_key.size() == 40);
  CHECK(created.public_key != created.secret_key);
  CHECK(file_mode(keys / "curve.key") == 0600);
  CHECK(slurp(keys / "curve.key") == created.secret_key + "\n");
  CHECK(slurp(keys / "curve.pub") == created.public_key + "\n");
  CHECK(names_in(keys) == std::vector<std::string>{"curve.key", "curve.pub"});

  const auto again = must(load_or_create_keypair(keys));
  CHECK(again.public_key == created.public_key);
  CHECK(again.secret_key == created.secret_key);

  SECTION("a lost curve.pub is written again from the secret") {
    fs::remove(keys / "curve.pub");
    const auto restored = must(load_or_create_keypair(keys));
    CHECK(restored.public_key == created.public_key);
    CHECK(slurp(keys / "curve.pub") == created.public_key + "\n");
  }
  SECTION("surrounding whitespace in the files is ignored") {
    write(keys / "curve.key", "  " + created.secret_key + "\r\n\n");
    write(keys / "curve.pub", "\t" + created.public_key);
    const auto read = must(load_or_create_keypair(keys));
    CHECK(read.secret_key == created.secret_key);
    CHECK(read.public_key == created.public_key);
  }
}

TEST_CASE("a corrupted curve.pub or curve.key is a one-line error naming the file", "[curve]") {
  temp_dir dir("troupe-curve");
  const auto pair = must(load_or_create_keypair(dir.path));
  const auto other = must(generate_curve_keypair());

  std::string file, message;
  SECTION("curve.pub is not a key") {
    write(dir.path / "curve.pub", "not a key at all\n");
    file = (dir.path / "curve.pub").string();
    message = file + ": not a Z85 Curve25519 key";
  }
  SECTION("curve.pub is another key") {
    write(dir.path / "curve.pub", other.public_key + "\n");
    file = (dir.path / "curve.pub").string();
    message = file + ": does not match curve.key";
  }
  SECTION("curve.key is truncated") {
    write(dir.path / "curve.key", pair.secret_key.substr(0, 30) + "\n");
    file = (dir.path / "curve.key").string();
    message = file + ": not a Z85 Curve25519 key";
  }
  SECTION("curve.key holds characters outside Z85") {
    write(dir.path / "curve.key", std::string(40, '"') + "\n");
    file = (dir.path / "curve.key").string();
    message = file + ": not a Z85 Curve25519 key";
  }
  const auto r = load_or_create_keypair(dir.path);
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code == errc::invalid_argument);
  CHECK(r.err().message == message);
  CHECK(r.err().message.find('\n') == std::string::npos);
  // Nothing was replaced: the operator's files are evidence.
  CHECK(slurp(dir.path / "curve.key").size() > 0);
}

TEST_CASE("valid_curve_key accepts 40 Z85 characters that decode, whitespace around ignored", "[curve]") {
  const auto pair = must(generate_curve_keypair());
  CHECK(valid_curve_key(pair.public_key));
  CHECK(valid_curve_key(" \t" + pair.public_key + "\r\n"));
  CHECK_FALSE(valid_curve_key(""));
  CHECK_FALSE(valid_curve_key(pair.public_key.substr(1)));
  CHECK_FALSE(valid_curve_key(pair.public_key + "0"));
  CHECK_FALSE(valid_curve_key(pair.public_key.substr(0, 20) + " " + pair.public_key.substr(21)));
  CHECK_FALSE(valid_curve_key(std::string(40, '"')));  // not in the Z85 alphabet
  CHECK_FALSE(valid_curve_key(std::string(40, '#')));  // Z85, but overflows 32 bits
}

// ------------------------------------------------------------ trusted set

TEST_CASE("read_trusted lists each DIR/NAME.pub by name and reports malformed files", "[curve]") {
  temp_dir dir("troupe-curve");
  const auto alpha = must(generate_curve_keypair());
  const auto beta = must(generate_curve_keypair());
  const auto other = must(generate_curve_keypair());
  write(dir.path / "alpha.pub", alpha.public_key + "\n");
  write(dir.path / "beta.pub", "  " + beta.public_key + " \r\n\n");
  write(dir.path / "broken.pub", "this is not a key\n");
  write(dir.path / "notes.txt", other.public_key + "\n");  // not .pub: ignored
  write(dir.path / "beta.pub~", other.public_key + "\n");  // an editor's backup: ignored

  const auto set = read_trusted(dir.path);
  CHECK(set.name_by_key.size() == 2);
  REQUIRE(set.find(alpha.public_key) != nullptr);
  CHECK(*set.find(alpha.public_key) == "alpha");
  REQUIRE(set.find(beta.public_key) != nullptr);
  CHECK(*set.find(beta.public_key) == "beta");
  CHECK(set.find(other.public_key) == nullptr);
  CHECK(set.find(alpha.secret_key) == nullptr);
  REQUIRE(set.problems.size() == 1);
  CHECK(set.problems[0] == (dir.path / "broken.pub").string() + ": not a Z85 Curve25519 key");

  SECTION("a key under a second name is reported, the first name kept") {
    write(dir.path / "zulu.pub", alpha.public_key + "\n");
    const auto dup = read_trusted(dir.path);
    CHECK(*dup.find(alpha.public_key) == "alpha");
    REQUIRE(dup.problems.size() == 2);
    CHECK(dup.problems[1] == (dir.path / "zulu.pub").string() + ": same key as alpha.pub, skipped");
  }
  SECTION("an unreadable .pub is reported, the rest still read") {
    fs::create_directory(dir.path / "odd.pub");
    const auto with_dir = read_trusted(dir.path);
    CHECK(with_dir.name_by_key.size() == 2);
    REQUIRE(with_dir.problems.size() == 2);
    CHECK(with_dir.problems[1] == (dir.path / "odd.pub").string() + ": not a regular file");
  }
}

TEST_CASE("read_trusted of a missing directory is an empty set without problems", "[curve]") {
  temp_dir dir("troupe-curve");
  const auto set = read_trusted(dir.path / "nowhere");
  CHECK(set.name_by_key.empty());
  CHECK(set.problems.empty());
}

TEST_CASE("trust_key writes NAME.pub by rename, is idempotent, and rejects bad names and keys", "[curve]") {
  temp_dir dir("troupe-curve");
  const fs::path trusted = dir.path / "trusted";  // created by trust_key
  const auto first = must(generate_curve_keypair());
  const auto second = must(generate_curve_keypair());

  REQUIRE(trust_key(trusted, "peer-1.eu_west", first.public_key).ok());
  CHECK(slurp(trusted / "peer-1.eu_west.pub") == first.public_key + "\n");
  CHECK(names_in(trusted) == std::vector<std::string>{"peer-1.eu_west.pub"});  // no temp left
  const auto before = inode(trusted / "peer-1.eu_west.pub");

  // The same key again, even with whitespace around it: the file is left alone.
  REQUIRE(trust_key(trusted, "peer-1.eu_west", first.public_key).ok());
  REQUIRE(trust_key(trusted, "peer-1.eu_west", " " + first.public_key + "\n").ok());
  CHECK(inode(trusted / "peer-1.eu_west.pub") == before);

  // A new key replaces the file by rename: a new inode, never a half-written file.
  REQUIRE(trust_key(trusted, "peer-1.eu_west", second.public_key).ok());
  CHECK(slurp(trusted / "peer-1.eu_west.pub") == second.public_key + "\n");
  CHECK(inode(trusted / "peer-1.eu_west.pub") != before);
  CHECK(names_in(trusted) == std::vector<std::string>{"peer-1.eu_west.pub"});

  const auto set = read_trusted(trusted);
  REQUIRE(set.find(second.public_key) != nullptr);
  CHECK(*set.find(second.public_key) == "peer-1.eu_west");
  CHECK(set.problems.empty());

  for (const auto& name : {""s, "a b"s, "../escape"s, "a/b"s, "caf\xc3\xa9"s, "x\ny"s}) {
    INFO("name: " << name);
    const auto r = trust_key(trusted, name, first.public_key);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code == errc::invalid_argument);
    CHECK(r.err().message.find("not [A-Za-z0-9_.-]+") != std::string::npos);
  }
  for (const auto& key : {""s, "short"s, std::string(40, '"'), first.public_key + "x"}) {
    INFO("key: " << key);
    const auto r = trust_key(trusted, "peer-2", key);
    REQUIRE_FALSE(r.ok());
    CHECK(r.err().code == errc::invalid_argument);
    CHECK(r.err().message == "public key for 'peer-2': not a Z85 Curve25519 key");
  }
  CHECK(names_in(trusted) == std::vector<std::string>{"peer-1.eu_west.pub"});
  CHECK(names_in(dir.path) == std::vector<std::string>{"trusted"});
}

// ------------------------------------------------------------ ZAP requests

TEST_CASE("the ZAP handler answers requests sent by hand, malformed ones with 500", "[curve]") {
  zmq::context_t ctx;
  const auto known = must(generate_curve_keypair());
  const auto stranger = must(generate_curve_keypair());
  bool broken_store = false;
  std::vector<std::pair<std::string, std::string>> refusals;
  zap_authenticator auth(
      ctx,
      [&] {
        if (broken_store) throw std::runtime_error("disk on fire");
        trusted_set set;
        set.name_by_key[known.public_key] = "known";
        return set;
      },
      [&](const std::string& peer, const std::string& reason) { refusals.emplace_back(peer, reason); });
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect("inproc://zeromq.zap.01");

  const auto request = [](std::string id, std::string mechanism, std::vector<std::string> creds) {
    std::vector<std::string> r{"1.0", std::move(id), "troupe", "10.1.2.3", "", std::move(mechanism)};
    for (auto& c : creds) r.push_back(std::move(c));
    return r;
  };

  SECTION("a trusted key: 200 with the key's name as user id") {
    const auto reply = ask(req, auth, request("1", "CURVE", {binary_key(known.public_key)}));
    CHECK(reply == std::vector<std::string>{"1.0", "1", "200", "OK", "known", ""});
    CHECK(refusals.empty());
  }
  SECTION("an untrusted key: 400, and on_refused names key and peer") {
    const auto reply = ask(req, auth, request("2", "CURVE", {binary_key(stranger.public_key)}));
    CHECK(reply.at(2) == "400");
    CHECK(reply.at(4).empty());
    REQUIRE(refusals.size() == 1);
    CHECK(refusals[0].first == "10.1.2.3");
    CHECK(refusals[0].second == "untrusted key " + stranger.public_key + " from 10.1.2.3");
  }
  SECTION("NULL and PLAIN: 400, refused as mechanisms") {
    CHECK(ask(req, auth, request("3", "NULL", {})).at(2) == "400");
    CHECK(ask(req, auth, request("4", "PLAIN", {"user", "secret"})).at(2) == "400");
    REQUIRE(refusals.size() == 2);
    CHECK(refusals[0].second == "mechanism NULL refused: only CURVE");
    CHECK(refusals[1].second == "mechanism PLAIN refused: only CURVE");
  }
  SECTION("malformed requests: 500, the request id echoed when there is one") {
    CHECK(ask(req, auth, {"garbage"}) ==
          std::vector<std::string>{"1.0", "", "500", "malformed ZAP request: too few frames (1)", "", ""});
    CHECK(ask(req, auth, {"2.0", "7", "troupe", "a", "", "CURVE", binary_key(known.public_key)}).at(2) == "500");
    const auto short_key = ask(req, auth, request("8", "CURVE", {"too short"}));
    CHECK(short_key.at(1) == "8");
    CHECK(short_key.at(2) == "500");
    CHECK(ask(req, auth, request("9", "CURVE", {})).at(2) == "500");
    CHECK(ask(req, auth, request("10", "CURVE", {binary_key(known.public_key), "extra credentials"})).at(2) == "500");
    CHECK(refusals.empty());
    // Still answering properly afterwards.
    CHECK(ask(req, auth, request("11", "CURVE", {binary_key(known.public_key)})).at(2) == "200");
  }
  SECTION("a request without an envelope is dropped by the REP socket; the next is answered") {
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect("inproc://zeromq.zap.01");
    dealer.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    dealer.send(zmq::str_buffer("no delimiter before me"), zmq::send_flags::none);
    CHECK_NOTHROW(auth.handle_pending());
    CHECK(ask(req, auth, request("12", "CURVE", {binary_key(known.public_key)})).at(2) == "200");
  }
  SECTION("a trusted set that cannot be read: 500, refused, nothing thrown") {
    broken_store = true;
    const auto reply = ask(req, auth, request("13", "CURVE", {binary_key(known.public_key)}));
    CHECK(reply.at(2) == "500");
    REQUIRE(refusals.size() == 1);
    CHECK(refusals[0].second.find("disk on fire") != std::string::npos);
  }
}

TEST_CASE("each ZAP domain has its own policy; an unknown domain is refused", "[curve]") {
  zmq::context_t ctx;
  zap_authenticator auth(ctx);
  std::vector<std::string> refused;
  std::vector<zap_authenticator::request_info> seen;
  auth.admit(
      "local",
      [&](const zap_authenticator::request_info& r) -> zap_authenticator::answer {
        seen.push_back(r);
        if (r.address == "boom") throw std::runtime_error("policy bug");
        return {"200", "OK", "admin:" + r.address, ""};
      },
      [&](const std::string&, const std::string& reason) { refused.push_back(reason); });
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect("inproc://zeromq.zap.01");

  CHECK(ask(req, auth, {"1.0", "1", "local", "localhost:1000:1000:42", "", "NULL"}) ==
        std::vector<std::string>{"1.0", "1", "200", "OK", "admin:localhost:1000:1000:42", ""});
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].domain == "local");
  CHECK(seen[0].mechanism == "NULL");
  CHECK(seen[0].key.empty());
  // Another domain: no policy, refused (with no callback to call).
  CHECK(ask(req, auth, {"1.0", "2", "troupe", "127.0.0.1", "", "NULL"}).at(2) == "400");
  // A policy that throws: 500, refused, the reason heard.
  CHECK(ask(req, auth, {"1.0", "3", "local", "boom", "", "NULL"}).at(2) == "500");
  REQUIRE(refused.size() == 1);
  CHECK_THAT(refused[0], Catch::Contains("policy bug"));
  // CURVE credentials reach the policy as the Z85 key.
  const auto keys = must(generate_curve_keypair());
  CHECK(ask(req, auth, {"1.0", "4", "local", "10.0.0.1", "", "CURVE", binary_key(keys.public_key)}).at(2) == "200");
  CHECK(seen.back().key == keys.public_key);
}

TEST_CASE("a context has one ZAP handler: a second authenticator throws", "[curve]") {
  zmq::context_t ctx;
  const auto nobody = [] { return trusted_set{}; };
  zap_authenticator first(ctx, nobody, nullptr);
  CHECK_THROWS_AS(zap_authenticator(ctx, nobody, nullptr), zmq::error_t);
}

// ------------------------------------------------------------ handshakes

TEST_CASE("a trusted CURVE client gets through and its messages carry its name as User-Id", "[curve]") {
  curve_server server;
  const auto client_keys = must(generate_curve_keypair());
  REQUIRE(trust_key(server.trusted_dir, "alpha", client_keys.public_key).ok());

  peer client;
  make_curve_client(client.dealer, client_keys, server.keys.public_key);
  client.connect_and_send(server.endpoint, "hello from alpha");

  REQUIRE(server.pump([&] { return !server.received.empty(); }, 5000ms));
  CHECK(server.received[0].payload == "hello from alpha");
  CHECK(server.received[0].user_id == "alpha");
  CHECK(server.refusals.empty());
}

TEST_CASE("an untrusted CURVE client is refused and its message never arrives", "[curve]") {
  curve_server server;
  const auto trusted = must(generate_curve_keypair());
  REQUIRE(trust_key(server.trusted_dir, "someone-else", trusted.public_key).ok());
  const auto stranger = must(generate_curve_keypair());

  peer client;
  make_curve_client(client.dealer, stranger, server.keys.public_key);
  client.connect_and_send(server.endpoint, "let me in");

  REQUIRE(server.pump([&] { return !server.refusals.empty() && server.saw(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH); }, 5000ms));
  CHECK(server.refusals[0].first == "127.0.0.1");
  CHECK(server.refusals[0].second == "untrusted key " + stranger.public_key + " from 127.0.0.1");
  CHECK_FALSE(server.pump([&] { return !server.received.empty(); }, 300ms));
}

TEST_CASE("a client without CURVE (NULL mechanism) is refused at the greeting", "[curve]") {
  curve_server server;
  peer client;  // no make_curve_client: the NULL mechanism
  client.connect_and_send(server.endpoint, "plain text");

  REQUIRE(server.pump([&] { return server.saw_handshake_failure(); }, 5000ms));
  CHECK_FALSE(server.pump([&] { return !server.received.empty(); }, 300ms));
  CHECK(server.refusals.empty());  // mechanism mismatch: no ZAP request was made
}

TEST_CASE("NULL and PLAIN servers of the authenticator's context are refused by ZAP", "[curve]") {
  curve_server server;
  zmq::socket_t other(server.ctx, zmq::socket_type::router);
  other.set(zmq::sockopt::linger, 0);
  std::string mechanism;
  peer client;
  SECTION("NULL with a ZAP domain") {
    mechanism = "NULL";
    other.set(zmq::sockopt::zap_domain, "troupe");
  }
  SECTION("PLAIN") {
    mechanism = "PLAIN";
    other.set(zmq::sockopt::plain_server, true);
    other.set(zmq::sockopt::zap_domain, "troupe");
    client.dealer.set(zmq::sockopt::plain_username, "user");
    client.dealer.set(zmq::sockopt::plain_password, "secret");
  }
  other.bind("tcp://127.0.0.1:*");
  client.connect_and_send(other.get(zmq::sockopt::last_endpoint), "hello");

  REQUIRE(server.pump([&] { return !server.refusals.empty(); }, 5000ms, {&other}));
  CHECK(server.refusals[0].first == "127.0.0.1");
  CHECK(server.refusals[0].second == "mechanism " + mechanism + " refused: only CURVE");
  CHECK_FALSE(server.pump([&] { return !server.received.empty(); }, 300ms, {&other}));
}

TEST_CASE("a key trusted after the authenticator was made is accepted on a new connection", "[curve]") {
  curve_server server;
  const auto late = must(generate_curve_keypair());
  {
    peer refused;
    make_curve_client(refused.dealer, late, server.keys.public_key);
    refused.connect_and_send(server.endpoint, "too early");
    REQUIRE(server.pump([&] { return !server.refusals.empty(); }, 5000ms));
  }
  REQUIRE(trust_key(server.trusted_dir, "late", late.public_key).ok());

  peer client;
  make_curve_client(client.dealer, late, server.keys.public_key);
  client.connect_and_send(server.endpoint, "now trusted");
  REQUIRE(server.pump([&] { return !server.received.empty(); }, 5000ms));
  CHECK(server.received[0].payload == "now trusted");
  CHECK(server.received[0].user_id == "late");
  CHECK(server.refusals.size() == 1);
}

TEST_CASE("garbage bytes on the server's port crash nothing; a trusted client still gets through", "[curve]") {
  curve_server server;
  const auto client_keys = must(generate_curve_keypair());
  REQUIRE(trust_key(server.trusted_dir, "alpha", client_keys.public_key).ok());

  std::string noise = "GET / HTTP/1.1\r\nHost: troupe\r\n\r\n";
  for (int i = 0; i < 512; ++i) noise += static_cast<char>((i * 37 + 11) & 0xff);
  CHECK(send_raw_and_wait_for_close(server.endpoint, noise));

  // A ZMTP 3.0 greeting announcing CURVE, then a HELLO command that is too short.
  std::string greeting = "\xff"s + std::string(8, '\0') + "\x7f\x03\x00"s;
  greeting += "CURVE" + std::string(15, '\0');  // mechanism, 20 bytes
  greeting += std::string(32, '\0');            // as-server, filler
  const std::string hello = "\x04\x0a\x05HELLOjunk"s;
  CHECK(send_raw_and_wait_for_close(server.endpoint, greeting + hello));

  peer client;
  make_curve_client(client.dealer, client_keys, server.keys.public_key);
  client.connect_and_send(server.endpoint, "still here");
  REQUIRE(server.pump([&] { return !server.received.empty(); }, 5000ms));
  CHECK(server.received[0].payload == "still here");
  CHECK(server.received[0].user_id == "alpha");
  CHECK(server.refusals.empty());
}

TEST_CASE("a server made by make_curve_server refuses every client while no ZAP handler is bound", "[curve]") {
  // Without ZMQ_ZAP_ENFORCE_DOMAIN libzmq would admit this client unauthenticated.
  zmq::context_t ctx;
  const auto server_keys = must(generate_curve_keypair());
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  make_curve_server(router, server_keys);
  REQUIRE(zmq_socket_monitor(router.handle(), "inproc://curve-test-monitor", ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) ==
          0);
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::linger, 0);
  monitor.connect("inproc://curve-test-monitor");
  router.bind("tcp://127.0.0.1:*");

  peer client;
  make_curve_client(client.dealer, must(generate_curve_keypair()), server_keys.public_key);
  client.connect_and_send(router.get(zmq::sockopt::last_endpoint), "unchecked?");

  zmq::pollitem_t failed{monitor.handle(), 0, ZMQ_POLLIN, 0};
  REQUIRE(zmq::poll(&failed, 1, 5000ms) == 1);
  zmq::pollitem_t inbox{router.handle(), 0, ZMQ_POLLIN, 0};
  CHECK(zmq::poll(&inbox, 1, 300ms) == 0);
}
