// Who may use a system (docs/SECURITY.md §2): the local socket for the
// system's own user, CurveZMQ client keys with a role over TCP, plain text
// only with --insecure-tcp on loopback. Clients of another TROUPE_HOME play
// remote clients; `setpriv` plays another local user.
#include "tests/integration/harness.hpp"

#include "ipc/control.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

using troupe::testing::bin;
using troupe::testing::json;
using troupe::testing::run_process;
using troupe::testing::run_result;
using troupe::testing::test_system;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace ipc = troupe::ipc;

namespace {

/// A TROUPE_HOME of a client on "another host": no system of its own.
struct other_home {
  fs::path dir;
  other_home() {
    char tmpl[] = "/tmp/troupe-client-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~other_home() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  other_home(const other_home&) = delete;
  other_home& operator=(const other_home&) = delete;

  /// `troupe --system SYS ARGS...` from this home, given the system's public key.
  [[nodiscard]] run_result run(const test_system& sys, std::vector<std::string> args) const {
    args.insert(args.begin(), {"--system", sys.where()});
    return run_process(bin("troupe"), args,
                       {{"TROUPE_HOME", dir.string()},
                        {"TROUPE_SERVER_KEY", (sys.state_dir() / "curve" / "curve.pub").string()},
                        {"TROUPE_SYSTEM", std::nullopt}},
                       {}, 20s);
  }
  /// This home's client key (troupe keygen --client), as Z85.
  [[nodiscard]] std::string keygen(const test_system& sys) const {
    const auto r = run(sys, {"--json", "keygen", "--client"});
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out).at("public_key").get<std::string>();
  }
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("the local operator uses the local socket, closed to others", "[integration][auth]") {
  test_system sys;
  const auto r = sys.run({"status"});
  CHECK(r.exit_code == 0);
  const fs::path sock = sys.state_dir() / "run" / "client.sock";
  CHECK(mode_of(sock) == 0600);
  CHECK(mode_of(sys.state_dir() / "run") == 0700);
  CHECK(mode_of(sys.home()) == 0700);
  CHECK(sys.client().call("status", json::object()).ok());
}

TEST_CASE("a plain-text TCP client is refused with one clear line", "[integration][auth]") {
  test_system sys;
  other_home remote;
  const auto r = remote.run(sys, {"status"});
  troupe::testing::check_one_line_failure(r, 1);
  CHECK_THAT(r.err, Catch::Contains("accepts no plain-text clients"));

  // A raw ZeroMQ client gets no answer at all; the system serves on.
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("tcp://" + sys.where());
  REQUIRE(ipc::send_control(dealer, "", "shutdown", json{{"rid", 1}}));
  zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
  CHECK(zmq::poll(&item, 1, 500ms) == 0);
  CHECK(sys.run({"status"}).exit_code == 0);
}

TEST_CASE("client keys get the role they were given, on new connections", "[integration][auth]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  sys.spawn({"Morse", "--name", "Morse"});
  other_home remote;
  const std::string key = remote.keygen(sys);

  SECTION("an unknown key is refused, and the error says what to do") {
    const auto r = remote.run(sys, {"status"});
    troupe::testing::check_one_line_failure(r, 1);
    CHECK_THAT(r.err, Catch::Contains("refused this client's key " + key));
    CHECK_THAT(r.err, Catch::Contains("troupe trust-client"));
    CHECK_THAT(sys.log(), Catch::Contains("refused a client connecting from 127.0.0.1: key " + key));
  }
  SECTION("read: look, ask and tell; nothing that changes the system") {
    REQUIRE(sys.run({"trust-client", "bob", key}).exit_code == 0);
    CHECK(remote.run(sys, {"status"}).exit_code == 0);
    CHECK(remote.run(sys, {"actors"}).exit_code == 0);
    // troupe top over CurveZMQ with a read key (a snapshot: no terminal here).
    const auto top = remote.run(sys, {"top", "--once", "--interval", "100"});
    INFO(top.err);
    CHECK(top.exit_code == 0);
    CHECK_THAT(top.out, Catch::Contains("Morse") && Catch::Contains("encoders 1.0.0"));
    const auto asked = remote.run(sys, {"ask", "Morse", "\"SOS\""});
    CHECK(asked.exit_code == 0);
    CHECK_THAT(asked.out, Catch::Contains("..."));
    for (const std::vector<std::string>& admin_only :
         {std::vector<std::string>{"spawn", "Morse"}, {"kill", "Morse"}, {"unload", "0123"}, {"stop"}}) {
      const auto r = remote.run(sys, admin_only);
      INFO(admin_only[0] << ": " << r.err);
      CHECK(r.exit_code != 0);
      CHECK_THAT(r.err, Catch::Contains("needs the admin role (this client: read:bob)"));
    }
    CHECK(sys.run({"status"}).exit_code == 0);
    CHECK(sys.run({"ask", "Morse", "\"SOS\""}).exit_code == 0);  // still there
  }
  SECTION("admin: everything; a revoked key is refused on its next connection") {
    REQUIRE(sys.run({"trust-client", "alice", key, "--role", "admin"}).exit_code == 0);
    const auto spawned = remote.run(sys, {"spawn", "Morse"});
    CHECK(spawned.exit_code == 0);
    fs::remove(sys.home() / "clients" / "admin" / "alice.pub");
    const auto r = remote.run(sys, {"status"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("refused this client's key"));
  }
}

TEST_CASE("bad trust-client input changes nothing", "[integration][auth]") {
  test_system sys;
  CHECK(sys.run({"trust-client", "bob", "not-a-key"}).exit_code == 2);
  CHECK(sys.run({"trust-client", "bad/name", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"}).exit_code != 0);
  CHECK(sys.run({"trust-client", "bob", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "--role", "root"}).exit_code == 2);
  for (const char* role : {"read", "admin"})
    CHECK((!fs::exists(sys.home() / "clients" / role) || fs::is_empty(sys.home() / "clients" / role)));
}

TEST_CASE("--insecure-tcp serves plain text on loopback only", "[integration][auth]") {
  test_system sys({"--insecure-tcp"});
  other_home remote;
  CHECK(remote.run(sys, {"status"}).exit_code == 0);
  // Never on an address other hosts reach.
  const auto r =
      sys.run({"start", "--port", std::to_string(troupe::testing::free_port()), "--bind", "0.0.0.0", "--insecure-tcp"});
  CHECK(r.exit_code == 2);  // a usage error: the line, then the usage
  CHECK_THAT(r.err, Catch::StartsWith("troupe start: --insecure-tcp is only allowed with a loopback --bind"));
}

TEST_CASE("another local user is kept out unless in --client-group", "[integration][auth]") {
  if (::geteuid() != 0 || !fs::exists("/usr/bin/setpriv")) {
    WARN("needs root and setpriv to act as another user: skipped");
    return;
  }
  const auto as_nobody = [](const test_system& sys) {
    return run_process(
        "/usr/bin/setpriv",
        {"--reuid=nobody", "--regid=nogroup", "--clear-groups", bin("troupe"), "--system", sys.where(), "status"},
        {{"TROUPE_HOME", sys.home().string()}, {"HOME", "/nonexistent"}}, {}, 20s);
  };
  {
    test_system sys;
    const auto r = as_nobody(sys);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
  }
  {
    test_system sys({"--client-group", "nogroup"});
    const auto r = as_nobody(sys);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(mode_of(sys.state_dir() / "run" / "client.sock") == 0660);
  }
}

TEST_CASE("a worker socket refuses another uid even with its modes opened", "[integration][auth]") {
  if (::geteuid() != 0) {
    WARN("needs root to act as another user: skipped");
    return;
  }
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  sys.spawn({"Morse", "--name", "Morse"});
  // The umask-000 attack: every directory and socket open to everyone.
  const fs::path control = sys.run_socket("c.sock");
  REQUIRE(!control.empty());
  for (const fs::path& d : {sys.home(), sys.home() / "systems", sys.state_dir(), sys.state_dir() / "run"})
    fs::permissions(d, fs::perms::all);
  fs::permissions(control, fs::perms::all);
  // As nobody: connect and send what a worker would, a forged exit record among it.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    zmq::context_t ctx;
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 200);
    dealer.set(zmq::sockopt::routing_id, "w1");
    dealer.connect("ipc://" + control.string());
    for (int i = 0; i < 5; ++i)
      (void)ipc::send_control(dealer, "", "stopped", json{{"address", "@00000001.16"}, {"reason", "forged"}});
    zmq::pollitem_t none{nullptr, -1, 0, 0};
    (void)zmq::poll(&none, 0, 500ms);  // let the connection be tried and refused
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(troupe::testing::eventually(
      [&] { return sys.log().find("refused a connection to a worker socket from") != std::string::npos; }, 5s));
  CHECK_THAT(sys.log(), Catch::Contains("a process of uid 65534 tried a worker socket"));
  CHECK(sys.run({"ask", "Morse", "\"SOS\""}).exit_code == 0);
}
