// bench/live_system.cpp — a troupe system for one bench run: started with the
// real CLI (`troupe start`) on a free port and a temporary TROUPE_HOME, driven
// through troupe::client, and stopped at the end whatever happened, leaving no
// process and no directory behind.
#include "bench/bench.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace troupe::bench {

namespace fs = std::filesystem;

namespace {

// Processes to kill if the bench itself is interrupted (async-signal-safe).
constexpr int max_tracked = 64;
std::atomic<pid_t> tracked[max_tracked];
std::atomic<int> tracked_count{0};
std::atomic<pid_t> tracked_system{-1};
char tracked_home[256];  // removed by the signal handler, through /bin/rm

void track(pid_t pid) {
  const int n = tracked_count.load();
  for (int i = 0; i < n; ++i)
    if (tracked[i].load() == pid) return;
  if (n < max_tracked) {
    tracked[n].store(pid);
    tracked_count.store(n + 1);
  }
}

extern "C" void on_fatal_signal(int sig) {
  // The system first, so it does not restart the workers killed next.
  if (pid_t s = tracked_system.load(); s > 0) ::kill(s, SIGKILL);
  for (int i = 0; i < tracked_count.load(); ++i)
    if (pid_t p = tracked[i].load(); p > 0) ::kill(p, SIGKILL);
  // fork, execve and waitpid are async-signal-safe; std::filesystem is not.
  if (tracked_home[0] != '\0') {
    if (pid_t rm = ::fork(); rm == 0) {
      const char* argv[] = {"rm", "-rf", tracked_home, nullptr};
      ::execve("/bin/rm", const_cast<char* const*>(argv), environ);
      _exit(127);
    } else if (rm > 0) {
      ::waitpid(rm, nullptr, 0);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw bench_error("cannot find a free TCP port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

live_system::live_system(std::string troupe_exe) : troupe_exe_(std::move(troupe_exe)) {
  struct sigaction sa{};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
}

live_system::~live_system() { stop(); }

int live_system::run_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv{troupe_exe_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw bench_error("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, 1);
    ::execv(raw[0], raw.data());
    _exit(127);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void live_system::start() {
  if (!fs::exists(troupe_exe_)) throw bench_error(troupe_exe_ + " not found (build the project first)");
  char tmpl[] = "/tmp/troupe-bench-XXXXXX";  // short: ipc:// paths live in it
  if (::mkdtemp(tmpl) == nullptr) throw bench_error("mkdtemp failed");
  home_ = tmpl;
  std::snprintf(tracked_home, sizeof tracked_home, "%s", home_.c_str());
  ::setenv("TROUPE_HOME", home_.c_str(), 1);
  port_ = free_port();
  running_ = true;  // from here on stop() has something to clean up
  if (int rc = run_cli({"start", "--port", std::to_string(port_)}); rc != 0)
    throw bench_error("`troupe start --port " + std::to_string(port_) + "` failed (exit " +
                      std::to_string(rc) + "); see " + home_ + "/systems/" + std::to_string(port_) +
                      "/system.log");
  auto c = client::connect("127.0.0.1:" + std::to_string(port_));
  if (!c) throw bench_error(c.err().message);
  client_ = std::make_unique<client>(std::move(*c));
  auto st = client_->call("status", json::object(), std::chrono::seconds(5));
  if (!st) throw bench_error("system does not answer: " + st.err().message);
  system_pid_ = st->value("pid", -1);
  tracked_system.store(system_pid_);
}

void live_system::stop() {
  if (!running_) return;
  running_ = false;
  client_.reset();
  (void)run_cli({"stop", std::to_string(port_)});
  // Whatever did not go away with `troupe stop` is killed: the system first,
  // so that it does not restart the workers.
  if (alive(system_pid_)) ::kill(system_pid_, SIGKILL);
  for (int i = 0; i < tracked_count.load(); ++i) {
    const pid_t p = tracked[i].load();
    for (int tries = 0; alive(p) && tries < 100; ++tries)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (alive(p)) ::kill(p, SIGKILL);
  }
  tracked_system.store(-1);
  tracked_count.store(0);
  tracked_home[0] = '\0';
  std::error_code ec;
  if (!home_.empty()) fs::remove_all(home_, ec);
  ::unsetenv("TROUPE_HOME");
}

std::string live_system::load(const std::string& archive) {
  auto r = client_->call("load", json{{"path", archive}}, std::chrono::seconds(30));
  if (!r) throw bench_error("load " + archive + ": " + r.err().message);
  return r->value("id", std::string());
}

void live_system::unload(const std::string& package_id) {
  auto r = client_->call("unload", json{{"package", package_id}}, std::chrono::seconds(30));
  if (!r) throw bench_error("unload " + package_id.substr(0, 12) + ": " + r.err().message);
}

address live_system::spawn(const std::string& type, const std::string& package_id) {
  auto a = client_->spawn(type, package_id);
  if (!a) throw bench_error("spawn " + type + ": " + a.err().message);
  return *a;
}

json live_system::ask(address target, const json& payload, std::chrono::milliseconds timeout) {
  auto r = client_->ask(target.to_string(), payload, timeout);
  if (!r) throw bench_error("ask " + target.to_string() + " " + payload.dump() + ": " + r.err().message);
  if (r->is_object() && r->contains("error"))
    throw bench_error("ask " + target.to_string() + " " + payload.dump() + ": " + r->dump());
  return *r;
}

void live_system::wait_settled() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    auto r = client_->call("status", json::object());
    if (!r) throw bench_error("status: " + r.err().message);
    if (r->value("standby_ready", 0) >= r->value("standby_target", 0)) return;
    if (std::chrono::steady_clock::now() > deadline) throw bench_error("standby workers not up after 5 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

json live_system::poll(address target, const json& question,
                       const std::function<bool(const json&)>& done,
                       std::chrono::milliseconds timeout, std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    json r = ask(target, question);
    if (done(r)) return r;
    if (std::chrono::steady_clock::now() > deadline)
      throw bench_error("no result from " + target.to_string() + " in time, last: " + r.dump());
    std::this_thread::sleep_for(interval);
  }
}

pid_t live_system::worker_pid(const std::string& package_id) {
  auto r = client_->call("list", json::object());
  if (!r) throw bench_error("list: " + r.err().message);
  for (const auto& p : (*r)["packages"]) {
    if (p.contains("worker_pid")) track(p["worker_pid"].get<pid_t>());
    if (p.value("id", std::string()) == package_id && p.contains("worker_pid"))
      return p["worker_pid"].get<pid_t>();
  }
  throw bench_error("no worker for package " + package_id.substr(0, 12));
}

}  // namespace troupe::bench
