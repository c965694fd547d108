// `troupe top` against a real system (issue 15), in a pseudo-terminal made
// here (openpty): it shows the workers and an actor, quits on q and on
// Ctrl-C with the terminal's modes as they were, and when the daemon is
// SIGKILLed it leaves the screen and says so in one line, exit 3. Also the
// plain snapshot for scripts (--once, --json), the client command `top`'s
// answer and its refusals, and the per-actor series of --metrics-actors.
// Runs in a pid namespace of its own (it kills a daemon).
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

using troupe::testing::eventually;
using troupe::testing::free_port;
using troupe::testing::json;
using troupe::testing::test_system;

namespace {

/// `troupe ARGS...` on the slave side of a new pseudo-terminal (its
/// controlling terminal, 50 x 200), as a person would run it. Ended by
/// SIGKILL in the destructor when still running.
class pty_process {
 public:
  pty_process(const test_system& sys, const std::vector<std::string>& args) {
    winsize ws{};
    ws.ws_row = 50;
    ws.ws_col = 200;
    REQUIRE(::openpty(&master_, &slave_, nullptr, nullptr, &ws) == 0);
    ::fcntl(master_, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave_, F_SETFD, FD_CLOEXEC);
    REQUIRE(::tcgetattr(slave_, &before_) == 0);
    const std::string exe = troupe::testing::bin("troupe");
    std::vector<std::string> all{exe, "--system", sys.where()};
    all.insert(all.end(), args.begin(), args.end());
    const std::string home = "TROUPE_HOME=" + sys.home().string();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::setsid();
      ::ioctl(slave_, TIOCSCTTY, 0);
      ::dup2(slave_, 0);
      ::dup2(slave_, 1);
      ::dup2(slave_, 2);
      ::putenv(const_cast<char*>(home.c_str()));
      ::setenv("TERM", "xterm", 1);
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(exe.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~pty_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(master_);
    ::close(slave_);
  }
  pty_process(const pty_process&) = delete;
  pty_process& operator=(const pty_process&) = delete;

  /// Reads the terminal until pred holds for all output so far, or deadline.
  bool read_until(const std::function<bool(const std::string&)>& pred,
                  std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!pred(out_)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 200))) <= 0) continue;
      char buf[8192];
      const auto n = ::read(master_, buf, sizeof buf);
      if (n > 0) out_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  void type(const std::string& keys) {
    REQUIRE(::write(master_, keys.data(), keys.size()) == static_cast<ssize_t>(keys.size()));
  }
  /// Waits for the exit (bounded), reading what it still writes; the exit code, or -1.
  int wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(15)) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        (void)read_until([](const std::string&) { return false; }, std::chrono::milliseconds(100));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      (void)read_until([](const std::string&) { return false; }, std::chrono::milliseconds(50));
    }
    return -1;
  }
  [[nodiscard]] const std::string& output() const { return out_; }
  /// The terminal's modes now are those it had before the program ran.
  void check_modes_restored() const {
    termios now{};
    REQUIRE(::tcgetattr(slave_, &now) == 0);
    CHECK(now.c_lflag == before_.c_lflag);
    CHECK(now.c_iflag == before_.c_iflag);
    CHECK(now.c_oflag == before_.c_oflag);
    CHECK(now.c_cc[VMIN] == before_.c_cc[VMIN]);
    CHECK(now.c_cc[VTIME] == before_.c_cc[VTIME]);
    CHECK((now.c_lflag & ICANON) != 0);
    CHECK((now.c_lflag & ECHO) != 0);
    // The alternate screen was entered, then left, with the cursor shown again.
    const auto entered = out_.find("\x1b[?1049h");
    const auto left = out_.rfind("\x1b[?1049l");
    CHECK(entered != std::string::npos);
    CHECK(left != std::string::npos);
    CHECK(left > entered);
    CHECK(out_.rfind("\x1b[?25h") != std::string::npos);
  }

 private:
  int master_ = -1;
  int slave_ = -1;
  termios before_{};
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string out_;
};

/// A system with the relay package and one named, asked Relay.
struct relay_system {
  test_system sys;
  std::string relay;
  explicit relay_system(std::vector<std::string> args = {}) : sys(std::move(args)) {
    const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
    relay = sys.spawn({"Relay", "--package", pkg, "--name", "relay"});
    CHECK(sys.ask(relay, json{{"echo", "hi"}}) == "hi");
  }
};

/// GET /metrics on 127.0.0.1:port (HTTP/1.0: the server closes after it); its body.
std::string http_get(std::uint16_t port) {
  const int fd = troupe::testing::connect_loopback(port, std::chrono::seconds(5));
  if (fd < 0) return {};
  const timeval bound{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return {};
  }
  std::string raw;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  const auto end = raw.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : raw.substr(end + 4);
}

/// The value of FAMILY{actor="NAME"} in a scrape, -1 when absent.
double named_value(const std::string& body, const std::string& family, const std::string& name) {
  const std::string key = family + "{actor=\"" + name + "\"} ";
  const auto at = body.find(key);
  if (at == std::string::npos) return -1;
  return std::strtod(body.c_str() + at + key.size(), nullptr);
}

bool shows_view(const std::string& out, const std::string& relay) {
  return out.find("WORKERS") != std::string::npos && out.find("relay 1.0.0") != std::string::npos &&
         out.find(relay) != std::string::npos && out.find("127.0.0.1:") != std::string::npos;
}

}  // namespace

TEST_CASE("troupe top in a terminal shows workers and an actor, and quits on q and on Ctrl-C", "[integration][top]") {
  relay_system s;
  {
    pty_process top(s.sys, {"top", "--interval", "200"});
    REQUIRE(top.read_until([&](const std::string& o) { return shows_view(o, s.relay); }));
    // A refresh or two later, the rates are there (a CPU% column with a number).
    CHECK(top.read_until([](const std::string& o) { return o.find("BUSIEST ACTORS") != std::string::npos; }));
    top.type("q");
    const int code = top.wait_exit();
    INFO(top.output());
    CHECK(code == 0);
    top.check_modes_restored();
  }
  {
    pty_process top(s.sys, {"top", "--interval", "200"});
    REQUIRE(top.read_until([&](const std::string& o) { return shows_view(o, s.relay); }));
    top.type("\x03");  // Ctrl-C: SIGINT from the terminal
    const int code = top.wait_exit();
    INFO(top.output());
    CHECK(code == 0);
    top.check_modes_restored();
  }
}

TEST_CASE("troupe top leaves the screen and exits 3 when its system is killed", "[integration][top]") {
  relay_system s;
  pty_process top(s.sys, {"top", "--interval", "200"});
  REQUIRE(top.read_until([&](const std::string& o) { return shows_view(o, s.relay); }));
  troupe::testing::kill_process(s.sys.daemon_pid());
  const int code = top.wait_exit(std::chrono::seconds(20));
  INFO(top.output());
  CHECK(code == 3);
  const std::string& out = top.output();
  const auto message = out.find("troupe top: lost the system at " + s.sys.where());
  REQUIRE(message != std::string::npos);
  // The message comes after the screen was left, on one line.
  CHECK(message > out.rfind("\x1b[?1049l"));
  CHECK(out.find('\n', message) == out.size() - 1);  // one line, the last
  top.check_modes_restored();
}

TEST_CASE("troupe top --once prints a plain snapshot; the top command checks its fields", "[integration][top]") {
  relay_system s;
  auto r = s.sys.run({"top", "--once", "--interval", "200"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);  // no escapes for scripts
  CHECK(shows_view(r.out, s.relay));
  CHECK_THAT(r.out, Catch::Contains("RESTARTS IN THE LAST MINUTE: 0"));

  auto j = s.sys.run({"--json", "top", "--batch", "2", "--interval", "200"});
  INFO(j.out << j.err);
  REQUIRE(j.exit_code == 0);
  std::istringstream in(j.out);
  std::vector<json> snaps;
  for (std::string line; std::getline(in, line);) snaps.push_back(json::parse(line));
  REQUIRE(snaps.size() == 2);
  const json& t = snaps[1]["top"];
  bool relay_worker = false;
  for (const auto& w : t["workers"])
    if (w["package"] == "relay") {
      relay_worker = true;
      CHECK(w["pid"].is_number_integer());
      CHECK(w["rss_bytes"].get<double>() > 0);
      CHECK(w["answered"] == true);
      CHECK(w["handled"].get<int>() >= 1);
      CHECK(snaps[1]["rates"]["workers"].contains(std::to_string(w["worker"].get<int>())));
    }
  CHECK(relay_worker);
  REQUIRE(t["busiest"].size() >= 1);
  CHECK(t["busiest"][0]["address"] == s.relay);
  CHECK(t["busiest"][0]["name"] == "relay");
  CHECK(t["busiest"][0]["handled"].get<int>() >= 1);
  CHECK(snaps[1]["systems"]["systems"].size() == 1);

  // The busiest actor is the one that handled most in the last window.
  const std::string quiet = s.sys.spawn({"Relay", "--name", "quiet"});
  auto& c = s.sys.client();
  for (int i = 0; i < 50; ++i) REQUIRE(c.ask(s.relay, json{{"echo", i}}));
  auto busy = c.call("top", json{{"actors", 1}, {"window_ms", 100}});
  REQUIRE(busy);
  CHECK((*busy)["busiest"].size() == 1);
  CHECK((*busy)["busiest"][0]["address"] == s.relay);

  // Bad fields: one line, nothing changes.
  for (const json& bad : {json{{"actors", 101}}, json{{"actors", -1}}, json{{"actors", "x"}}, json{{"window_ms", 5}},
                          json{{"window_ms", 1.5}}}) {
    auto e = c.call("top", bad);
    REQUIRE_FALSE(e);
    CHECK(e.err().code == troupe::errc::invalid_argument);
    CHECK(e.err().message.find('\n') == std::string::npos);
  }
  auto usage = s.sys.run({"top", "--interval", "5"});
  CHECK(usage.exit_code == 2);
  CHECK(s.sys.run({"status"}).exit_code == 0);
}

TEST_CASE("--metrics-actors gives named actors series of their own, bounded", "[integration][top][observe]") {
  const std::uint16_t metrics_port = free_port();
  relay_system s(
      {"--metrics", std::to_string(metrics_port), "--metrics-actors", "relay,job-*", "--metrics-actors-max", "2"});
  s.sys.spawn({"Relay", "--name", "other"});
  auto& c = s.sys.client();
  for (int i = 0; i < 20; ++i) REQUIRE(c.ask("relay", json{{"echo", i}}));
  std::string body;
  // Read from the workers every second: the count appears within a few.
  CHECK(eventually(
      [&] {
        body = http_get(metrics_port);
        return named_value(body, "troupe_named_actor_messages_handled_total", "relay") >= 21;
      },
      std::chrono::seconds(15)));
  INFO(body);
  CHECK(named_value(body, "troupe_named_actor_running", "relay") == 1);
  CHECK(named_value(body, "troupe_named_actor_restarts_total", "relay") == 0);
  CHECK(named_value(body, "troupe_named_actor_mailbox", "relay") == 0);
  CHECK_THAT(body, !Catch::Contains("actor=\"other\""));
  // No family of its own has a per-actor label otherwise.
  CHECK_THAT(body, !Catch::Contains("troupe_actors{actor="));

  // Two more names match; at most 2 are kept, the first in name order:
  // job-1 and job-2 ("relay" sorts after them).
  s.sys.spawn({"Relay", "--name", "job-1"});
  s.sys.spawn({"Relay", "--name", "job-2"});
  CHECK(eventually(
      [&] {
        body = http_get(metrics_port);
        return named_value(body, "troupe_named_actor_running", "job-2") == 1 &&
               body.find("actor=\"relay\"") == std::string::npos;
      },
      std::chrono::seconds(15)));
  INFO(body);
  CHECK(named_value(body, "troupe_named_actor_running", "job-1") == 1);
}

TEST_CASE("without --metrics-actors there is no per-actor series; the option needs --metrics", "[integration][top]") {
  const std::uint16_t metrics_port = free_port();
  relay_system s({"--metrics", std::to_string(metrics_port)});
  const std::string body = http_get(metrics_port);
  CHECK_THAT(body, Catch::Contains("troupe_actors{"));
  CHECK_THAT(body, !Catch::Contains("actor=\""));
  CHECK_THAT(body, !Catch::Contains("troupe_named_actor"));
  auto bad = troupe::testing::run_process(troupe::testing::bin("troupe"),
                                          {"start", "--port", std::to_string(free_port()), "--metrics-actors", "x"},
                                          {{"TROUPE_HOME", s.sys.home().string()}}, {}, std::chrono::seconds(30));
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--metrics-actors"));
  bad = troupe::testing::run_process(troupe::testing::bin("troupe"),
                                     {"start", "--port", std::to_string(free_port()), "--metrics",
                                      std::to_string(free_port()), "--metrics-actors", "a,,b"},
                                     {{"TROUPE_HOME", s.sys.home().string()}}, {}, std::chrono::seconds(30));
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--metrics-actors takes globs"));
}

TEST_CASE("a worker stuck in a handler does not hold top up: its row says it did not answer", "[integration][top]") {
  test_system sys;
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string loner = sys.spawn({"Loner"});  // a worker of its own
  const std::string watcher = sys.spawn({"Watcher"});
  const int pid = sys.ask(loner, json{{"pid", true}}).get<int>();
  REQUIRE(pid > 0);
  REQUIRE(sys.run({"tell", loner, json{{"block_ms", 20000}}.dump()}).exit_code == 0);
  const auto blocking = sys.home() / ("blocking-" + loner.substr(1));
  REQUIRE(eventually([&] { return std::filesystem::exists(blocking); }));

  auto t = sys.client().call("top", json::object());
  REQUIRE(t);
  bool stuck_seen = false, other_answered = false;
  for (const auto& w : (*t)["workers"]) {
    if (w["pid"] == pid) {
      stuck_seen = true;
      CHECK(w["answered"] == false);
      CHECK(w["queued"].is_null());
    } else if (w["package"] == "supervision") {
      other_answered = other_answered || w["answered"] == true;
    }
  }
  CHECK(stuck_seen);
  CHECK(other_answered);  // the Watcher's worker
  // Its actor is missing from the busiest (its worker could not say); the watcher is there.
  bool watcher_listed = false;
  for (const auto& a : (*t)["busiest"]) {
    CHECK(a["address"] != loner);
    watcher_listed = watcher_listed || a["address"] == watcher;
  }
  CHECK(watcher_listed);
  auto text = sys.run({"top", "--once", "--interval", "100"});
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("busy"));
  CHECK(sys.run({"status"}).exit_code == 0);
}
