#include "tests/integration/harness.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef TROUPE_BIN_DIR
#error "TROUPE_BIN_DIR must name the directory holding troupe and troupe-worker"
#endif

extern char** environ;

namespace troupe::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// ---------------------------------------------------------------- emergency cleanup
//
// Destructors clean up after a failed assertion. For a fatal signal (a crash
// of the test itself, or Ctrl-C) the process groups of the live systems are
// SIGKILLed from the handler: kill() is async-signal-safe, the table is
// plain atomics. Catch2 installs its own handlers per test and restores
// these before re-raising, so both run.

constexpr std::size_t max_live_systems = 16;
std::array<std::atomic<pid_t>, max_live_systems> live_groups{};

void register_group(pid_t pgid) {
  for (auto& slot : live_groups) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pgid)) return;
  }
}

void unregister_group(pid_t pgid) {
  for (auto& slot : live_groups) {
    pid_t expected = pgid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

extern "C" void on_fatal_signal(int sig) {
  for (auto& slot : live_groups) {
    const pid_t pgid = slot.load();
    if (pgid > 0) ::kill(-pgid, SIGKILL);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

struct process_setup {
  process_setup() {
    // Writing to the stdin pipe of a program that already exited must be an
    // error (EPIPE), not the end of the test run.
    ::signal(SIGPIPE, SIG_IGN);
    // Workers are crashed on purpose (SIGSEGV): no core files from them, as
    // every process started from here inherits this limit.
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    // The daemon is orphaned by `troupe start` (double fork); as a
    // subreaper this process adopts it, reaps it, and keeps it in its
    // process tree, where a runner that kills the tree finds it.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
      ::signal(sig, on_fatal_signal);
  }
};
const process_setup setup_once;

// ---------------------------------------------------------------- small helpers

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Splits a NUL-separated /proc file (cmdline, environ).
std::vector<std::string> nul_fields(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// Waits until pid has exited (zombie or gone), through a pidfd, up to timeout.
bool wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  ::close(fd);
  return r > 0;
}

/// Reaps every exited child (the adopted daemon and orphaned workers).
void reap_children() {
  int status = 0;
  while (::waitpid(-1, &status, WNOHANG) > 0) {
  }
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

// ---------------------------------------------------------------- processes

std::string run_result::last_line() const {
  std::istringstream in(out);
  std::string line;
  std::string last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

std::size_t run_result::err_lines() const {
  std::istringstream in(err);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) n += !line.empty();
  return n;
}

run_result run_process(const std::string& exe, const std::vector<std::string>& args,
                       const std::map<std::string, std::optional<std::string>>& env, const std::string& input,
                       std::chrono::milliseconds timeout) {
  int in_pipe[2];
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));

  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    const auto key = std::string(kv.substr(0, kv.find('=')));
    if (env.count(key) == 0) env_s.emplace_back(kv);
  }
  for (const auto& [k, v] : env)
    if (v) env_s.push_back(k + "=" + *v);
  auto argv = c_strings(argv_s);
  auto envp = c_strings(env_s);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  // The child starts with default signal handling and an empty mask, not
  // with this process's ignored SIGPIPE and test handlers.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigset_t none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    throw std::runtime_error("cannot run " + exe + ": " + std::strerror(rc));
  }

  run_result r;
  std::size_t written = 0;
  int in_fd = in_pipe[1];
  ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0];
  int err_fd = err_pipe[0];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool killed = false;
  while (out_fd >= 0 || err_fd >= 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    std::array<pollfd, 3> fds{pollfd{out_fd, POLLIN, 0}, pollfd{err_fd, POLLIN, 0}, pollfd{in_fd, POLLOUT, 0}};
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    char buf[4096];
    auto drain = [&](pollfd& p, int& fd, std::string& sink) {
      if (fd < 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        sink.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fd);
        fd = -1;
      }
    };
    drain(fds[0], out_fd, r.out);
    drain(fds[1], err_fd, r.err);
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t n = ::write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd})
    if (fd >= 0) ::close(fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (killed)
    r.exit_code = -1;
  else if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    r.exit_code = 128 + WTERMSIG(status);
  return r;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);  // poll interval, not a synchronisation
  }
}

int connect_loopback(std::uint16_t port, std::chrono::milliseconds send_timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (send_timeout.count() > 0) {
    const timeval bound{static_cast<time_t>(send_timeout.count() / 1000),
                        static_cast<suseconds_t>(send_timeout.count() % 1000 * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void kill_process(pid_t pid) {
  REQUIRE(pid > 0);
  REQUIRE(::kill(pid, SIGKILL) == 0);
}

stopped_process::stopped_process(pid_t pid) : pid_(pid) {
  REQUIRE(pid > 0);
  REQUIRE(::kill(pid, SIGSTOP) == 0);
  stopped_ = true;
}

void stopped_process::resume() {
  if (stopped_) ::kill(pid_, SIGCONT);  // positive and checked above
  stopped_ = false;
}

pid_t only_package_worker(const test_system& sys) {
  const auto list = json::parse(sys.run({"list", "--json"}).out);
  REQUIRE(list.size() == 1);
  REQUIRE(list[0]["worker_pid"].is_number_integer());
  const auto pid = list[0]["worker_pid"].get<pid_t>();
  REQUIRE(pid > 0);  // the package's worker, a child of the test's system
  return pid;
}

void check_one_line_failure(const run_result& r, int code) {
  INFO("stdout: " << r.out << "stderr: " << r.err);
  CHECK(r.exit_code == code);
  CHECK(r.out.empty());
  CHECK(r.err_lines() == 1);
  CHECK_THAT(r.err, Catch::StartsWith("troupe: "));
}

std::string bin(const std::string& name) { return std::string(TROUPE_BIN_DIR) + "/" + name; }

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  socklen_t len = sizeof sa;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

// ---------------------------------------------------------------- test_system

namespace {
/// A fresh TROUPE_HOME that trusts the build's development key. Short and
/// under /tmp: ipc:// socket paths must stay below 107 bytes.
fs::path make_home() {
  char tmpl[] = "/tmp/trt.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  const fs::path home = tmpl;
  try {
    fs::create_directories(home / "keys");
    fs::copy_file(TROUPE_DEV_PUB, home / "keys" / "dev.pub");
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(home, ec);
    throw std::runtime_error(std::string("cannot make a TROUPE_HOME: ") + e.what());
  }
  return home;
}
}  // namespace

test_system::test_system(std::vector<std::string> start_args) : test_system(0, std::move(start_args)) {}

test_system::test_system(std::uint16_t port, std::vector<std::string> start_args) : home_(make_home()) {
  start(port, start_args);
}

test_system::test_system(const test_system& home_of, std::uint16_t port, std::vector<std::string> start_args)
    : home_(home_of.home_), owns_home_(false) {
  start(port, start_args);
}

test_system::test_system(const test_system& home_of, std::vector<std::string> start_args, host_spec host)
    : home_(home_of.home_), host_(std::move(host)), owns_home_(false) {
  start(0, start_args);
}

test_system::test_system(std::vector<std::string> start_args, host_spec host)
    : home_(make_home()), host_(std::move(host)) {
  start(0, start_args);
}

void test_system::start(std::uint16_t port, const std::vector<std::string>& start_args) {
  std::string why;
  try {
    // A free port was free when picked; a parallel test may take it before
    // the daemon binds it, so a start that fails is retried on another port.
    // A port the caller chose is tried once.
    for (int attempt = 0; attempt < (port == 0 ? 5 : 1); ++attempt) {
      port_ = port == 0 ? free_port() : port;
      std::vector<std::string> args{"start", "--port", std::to_string(port_)};
      args.insert(args.end(), start_args.begin(), start_args.end());
      // A convention of its own (as without --leader, said explicitly), unless
      // the caller names a leader or runs on etcd.
      if (std::find(args.begin(), args.end(), "--leader") == args.end() &&
          std::find(args.begin(), args.end(), "--etcd") == args.end())
        args.insert(args.end(), {"--leader", where()});
      if (host_.address != "127.0.0.1") args.insert(args.end(), {"--bind", host_.address});
      run_result r;
      if (host_.launcher.empty()) {
        r = run(args);
      } else {
        std::vector<std::string> full(host_.launcher.begin() + 1, host_.launcher.end());
        full.insert(full.end(), {bin("troupe"), "--system", where()});
        full.insert(full.end(), args.begin(), args.end());
        r = run_process(
            host_.launcher.front(), full,
            {{"TROUPE_HOME", home_.string()}, {"TROUPE_SYSTEM", std::nullopt}, {"TROUPE_WORKER", std::nullopt}});
      }
      if (r.exit_code == 0) {
        daemon_pid_ = std::stoi(read_file(state_dir() / "pid"));
        daemon_pgid_ = ::getpgid(daemon_pid_);
        if (daemon_pgid_ > 0) register_group(daemon_pgid_);
        return;
      }
      why = r.err;
    }
  } catch (const std::exception& e) {
    why = e.what();
  }
  // No destructor runs for a constructor that throws: clean up here. Any
  // daemon a failed attempt left carries this TROUPE_HOME in its environment
  // (or, in a shared home, this port on its command line).
  kill_everything();
  if (daemon_pgid_ > 0) unregister_group(daemon_pgid_);
  if (owns_home_) {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }
  throw std::runtime_error("troupe start --port " + std::to_string(port_) + " failed: " + why);
}

test_system::~test_system() {
  try {
    client_.reset();
    if (!stopped_) (void)stop();
  } catch (...) {
    // Cleanup below must run whatever happened.
  }
  kill_everything();
  if (daemon_pgid_ > 0) unregister_group(daemon_pgid_);
  // For a developer reading why a test failed: TROUPE_TEST_KEEP_LOGS=DIR
  // keeps each system's log there as PORT-PID.log.
  if (const char* keep = std::getenv("TROUPE_TEST_KEEP_LOGS"); keep != nullptr && *keep != '\0') {
    std::error_code ec;
    fs::create_directories(keep, ec);
    fs::copy_file(state_dir() / "system.log",
                  fs::path(keep) / (std::to_string(port_) + "-" + std::to_string(daemon_pid_) + ".log"),
                  fs::copy_options::overwrite_existing, ec);
  }
  if (owns_home_) {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }
}

std::string test_system::where() const { return host_.address + ":" + std::to_string(port_); }

fs::path test_system::state_dir() const { return home_ / "systems" / std::to_string(port_); }

fs::path test_system::run_socket(const std::string& name) const {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_dir() / "run", ec)) {
    const auto file = e.path().filename().string();
    if (file.size() == 9 + name.size() && file[8] == '-' && file.substr(9) == name) return e.path();
  }
  return {};
}

run_result test_system::run(std::initializer_list<std::string> args) const {
  return run(std::vector<std::string>(args));
}

run_result test_system::run(const std::vector<std::string>& args) const {
  std::vector<std::string> full{"--system", where()};
  full.insert(full.end(), args.begin(), args.end());
  return run_process(
      bin("troupe"), full,
      {{"TROUPE_HOME", home_.string()}, {"TROUPE_SYSTEM", std::nullopt}, {"TROUPE_WORKER", std::nullopt}});
}

run_result test_system::run_program(const std::string& name, const std::vector<std::string>& args,
                                    const std::string& input) const {
  return run_process(bin(name), args, {{"TROUPE_HOME", home_.string()}, {"TROUPE_SYSTEM", where()}}, input);
}

troupe::client& test_system::client() {
  if (!client_) {
    auto c = troupe::client::connect(where(), connect_options());
    if (!c) throw std::runtime_error("client::connect: " + c.err().message);
    client_.emplace(std::move(*c));
  }
  return *client_;
}

std::string test_system::load(const std::string& pkg, const std::vector<std::string>& extra) const {
  std::vector<std::string> args{"load", pkg};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run(args);
  INFO("troupe load " << pkg << ": " << r.err);
  REQUIRE(r.exit_code == 0);
  return r.last_line();
}

std::string test_system::spawn(const std::vector<std::string>& args) const {
  std::vector<std::string> full{"spawn"};
  full.insert(full.end(), args.begin(), args.end());
  auto r = run(full);
  INFO("troupe spawn: " << r.err);
  REQUIRE(r.exit_code == 0);
  return r.last_line();
}

json test_system::ask(const std::string& target, const json& payload) const {
  auto r = run({"ask", target, payload.dump()});
  INFO("troupe ask " << target << " " << payload.dump() << ": " << r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

json test_system::actors() const {
  auto r = run({"actors", "--json"});
  if (r.exit_code != 0) return json::array();
  json j = json::parse(r.out, nullptr, false);
  return j.is_array() ? j : json::array();
}

std::optional<actor_view> test_system::actor(const std::string& address) const {
  for (const auto& a : actors())
    if (a.value("address", std::string()) == address) return actor_view{a};
  return std::nullopt;
}

std::optional<actor_view> test_system::wait_for_actor(const std::string& address,
                                                      const std::function<bool(const actor_view&)>& pred,
                                                      std::chrono::seconds deadline) const {
  std::optional<actor_view> last;
  eventually(
      [&] {
        last = actor(address);
        return last && pred(*last);
      },
      deadline);
  return last;
}

namespace {

/// Live troupe / troupe-worker processes naming home (environment or command
/// line) or, for the daemon, started with --port port. Without whole_home
/// (a home shared by several systems), only the daemon started with --port
/// port and the processes naming HOME/systems/PORT/ on their command line
/// (its workers' sockets).
std::vector<pid_t> fixture_processes(const fs::path& home, std::uint16_t port, bool whole_home = true) {
  std::error_code ec;
  const fs::path dir = fs::canonical(TROUPE_BIN_DIR, ec);
  const std::string troupe_exe = (dir / "troupe").string();
  const std::string worker_exe = (dir / "troupe-worker").string();
  const std::string python_worker_exe = (dir / "troupe-worker-python").string();
  const std::string home_env = "TROUPE_HOME=" + home.string();
  const std::string port_text = std::to_string(port);
  const std::string port_dir = (home / "systems" / port_text).string() + "/";
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    std::error_code lec;
    std::string exe = fs::read_symlink(e.path() / "exe", lec).string();  // fails for zombies
    if (lec) continue;
    if (const auto del = exe.rfind(" (deleted)"); del != std::string::npos) exe.erase(del);
    if (exe != troupe_exe && exe != worker_exe && exe != python_worker_exe) continue;
    const auto cmdline = nul_fields(read_file(e.path() / "cmdline"));
    const auto environ_fields = nul_fields(read_file(e.path() / "environ"));
    bool ours = false;
    if (whole_home)
      for (const auto& f : environ_fields) ours = ours || f == home_env;
    for (std::size_t i = 0; i < cmdline.size(); ++i) {
      ours = ours || cmdline[i].find(whole_home ? home.string() : port_dir) != std::string::npos;
      ours = ours || (cmdline[i] == "--port" && i + 1 < cmdline.size() && cmdline[i + 1] == port_text);
    }
    if (ours) out.push_back(pid);
  }
  return out;
}

}  // namespace

std::size_t test_system::live_processes() const { return fixture_processes(home_, port_, owns_home_).size(); }

run_result test_system::stop() {
  stopped_ = true;
  client_.reset();
  auto r =
      run_process(bin("troupe"), {"stop", std::to_string(port_)},
                  {{"TROUPE_HOME", home_.string()}, {"TROUPE_SYSTEM", std::nullopt}}, {}, std::chrono::seconds(40));
  reap_children();
  return r;
}

void test_system::kill_daemon() {
  stopped_ = true;
  client_.reset();
  if (daemon_pid_ <= 0) return;
  ::kill(daemon_pid_, SIGKILL);
  (void)wait_exit(daemon_pid_, 5s);
  // Adopted by this process (a subreaper); waitpid(-1) here could take the
  // exit status of a command another thread is waiting for.
  int status = 0;
  while (::waitpid(daemon_pid_, &status, WNOHANG) < 0 && errno == EINTR) {
  }
}

void test_system::signal_daemon(int sig) const {
  REQUIRE(daemon_pid_ > 0);
  REQUIRE(::kill(daemon_pid_, sig) == 0);
}

std::string test_system::log() const { return read_file(state_dir() / "system.log"); }

void test_system::kill_everything() noexcept {
  try {
    for (int round = 0; round < 3; ++round) {
      auto left = fixture_processes(home_, port_, owns_home_);
      if (left.empty()) break;
      // The daemon's group holds it and its workers (it is not the group
      // leader, see docs/OPERATIONS.md §3): one signal for all of them.
      for (pid_t pid : left)
        if (daemon_pgid_ > 1 && ::getpgid(pid) == daemon_pgid_) ::kill(-daemon_pgid_, SIGKILL);
      for (pid_t pid : left) ::kill(pid, SIGKILL);
      for (pid_t pid : left) (void)wait_exit(pid, 5s);
      reap_children();
    }
    reap_children();
  } catch (...) {
    // Never throw from cleanup.
  }
}

}  // namespace troupe::testing
