// tests/integration/notify_test.cpp — the daemon under a service manager
// (packaging/troupe@.service, Type=notify): `troupe start --foreground` with
// NOTIFY_SOCKET set sends READY=1 (with MAINPID and STATUS) once its port
// answers, and STOPPING=1 when SIGTERM begins its shutdown, as systemd would
// send it. The test plays systemd: it binds the datagram socket in a temporary
// directory and starts the daemon as its own child, the only process it
// signals.
#include "tests/integration/harness.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

using namespace troupe::testing;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

// The child daemon: SIGKILLed and reaped at the end of the test whatever
// happened, unless it was reaped already.
struct child_daemon {
  pid_t pid = 0;
  int status = 0;
  bool reaped = false;

  ~child_daemon() {
    if (pid <= 0 || reaped) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  /// Waits up to deadline for the child to exit; whether it did.
  bool wait_exit(std::chrono::milliseconds deadline) {
    const auto end = clock_type::now() + deadline;
    while (!reaped && clock_type::now() < end) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid)
        reaped = true;
      else if (r < 0)
        break;
      else
        ::usleep(10000);
    }
    return reaped;
  }
};

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

/// The next datagram on fd within deadline ("" when none came).
std::string next_datagram(int fd, std::chrono::milliseconds deadline) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return {};
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

/// Datagrams until one holds `field` (READY=1, STOPPING=1), within deadline; that one.
std::string wait_for(int fd, const std::string& field, std::chrono::milliseconds deadline) {
  const auto end = clock_type::now() + deadline;
  while (clock_type::now() < end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock_type::now());
    std::string d = next_datagram(fd, std::max(left, std::chrono::milliseconds(1)));
    if (("\n" + d + "\n").find("\n" + field + "\n") != std::string::npos) return d;
  }
  return {};
}

}  // namespace

TEST_CASE("sd_notify READY and STOPPING", "[notify]") {
#ifndef TROUPE_HAVE_LIBSYSTEMD
  WARN("built without libsystemd: the daemon sends no sd_notify notices");
  return;
#else
  temp_dir dir("troupe-ntf");
  const fs::path home = dir.path / "home";
  fs::create_directories(home);
  const fs::path sock_path = dir.path / "notify.sock";

  fd_guard sock{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  REQUIRE(sock.fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(sock_path.string().size() < sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock_path.c_str());
  REQUIRE(::bind(sock.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);

  const std::uint16_t port = free_port();
  const std::string where = "127.0.0.1:" + std::to_string(port);
  const std::string troupe = bin("troupe");
  const std::string log = (dir.path / "daemon.log").string();
  std::vector<std::string> args = {troupe, "start", "--foreground", "--port", std::to_string(port), "--leader", where};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // This environment with TROUPE_HOME and NOTIFY_SOCKET set, made before the fork.
  std::vector<std::string> env_s = {"TROUPE_HOME=" + home.string(), "NOTIFY_SOCKET=" + sock_path.string()};
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "TROUPE_HOME=", 12) != 0 && std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0 &&
        std::strncmp(*e, "TROUPE_SYSTEM=", 14) != 0)
      env_s.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  child_daemon daemon;
  daemon.pid = ::fork();
  REQUIRE(daemon.pid >= 0);
  if (daemon.pid == 0) {
    // The child: only async-signal-safe calls until exec.
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::execve(troupe.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  REQUIRE(daemon.pid > 0);

  const std::string ready = wait_for(sock.fd, "READY=1", std::chrono::seconds(20));
  INFO("daemon log: " << slurp(log));
  REQUIRE(!ready.empty());
  // At READY the port answers at once: what systemd orders after the unit may use it.
  const auto status = run_process(troupe, {"--system", where, "status"}, {{"TROUPE_HOME", home.string()}}, {},
                                  std::chrono::seconds(10));
  CHECK(status.exit_code == 0);
  CHECK(ready.find("MAINPID=" + std::to_string(daemon.pid) + "\n") != std::string::npos);
  CHECK(ready.find("STATUS=serving on " + where) != std::string::npos);

  // systemctl stop: SIGTERM to the main process, which stops its workers itself.
  REQUIRE(::kill(daemon.pid, SIGTERM) == 0);
  const std::string stopping = wait_for(sock.fd, "STOPPING=1", std::chrono::seconds(10));
  CHECK(!stopping.empty());
  REQUIRE(daemon.wait_exit(std::chrono::seconds(20)));
  CHECK(WIFEXITED(daemon.status));
  CHECK(WEXITSTATUS(daemon.status) == 0);
#endif
}

TEST_CASE("bootstart writes the service options", "[bootstart]") {
  temp_dir dir("troupe-boot");
  const std::string d = dir.path.string();
  const auto boot = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "bootstart");
    args.insert(args.end(), {"--defaults-dir", d, "--no-enable"});
    return run_process(bin("troupe"), args, {{"TROUPE_HOME", (dir.path / "home").string()}}, {},
                       std::chrono::seconds(10));
  };
  const auto r = boot({"1977", "--caps", "morse", "--leader", "127.0.0.1:1900", "--allow-unsigned"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(slurp(dir.path / "troupe-1977")
            .find("\nTROUPE_OPTS=\"--caps morse --leader 127.0.0.1:1900 --allow-unsigned\"\n") != std::string::npos);

  // Checked as start checks them: a usage error, and nothing written.
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"1978", "--port", "1978"},
                                              {"1978", "--foreground"},
                                              {"1978", "--standby", "99"},
                                              {"1978", "--leader", "a b:1"},
                                              {"0"}}) {
    INFO(bad[1 % bad.size()]);
    CHECK(boot(bad).exit_code == 2);
  }
  CHECK(!fs::exists(dir.path / "troupe-1978"));
}
