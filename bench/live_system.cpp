// bench/live_system.cpp — a troupe system for one bench run: started with the
// real CLI (`troupe start`) on a free port and a temporary TROUPE_HOME, driven
// through troupe::client, and stopped at the end whatever happened, leaving no
// process and no directory behind. Members of a convention share their
// leader's TROUPE_HOME (bench/convention_figures.cpp).
#include "bench/bench.hpp"
#include "ipc/curve.hpp"

#include <fstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>

extern char** environ;

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

namespace troupe::bench {

namespace fs = std::filesystem;

namespace {

// What to kill if the bench itself is interrupted, per running system
// (async-signal-safe: plain atomics and fixed buffers).
constexpr int max_systems = 8;
constexpr int max_tracked = 64;
struct tracked_system {
  std::atomic<bool> used{false};
  std::atomic<pid_t> system{-1};
  std::atomic<pid_t> workers[max_tracked];
  std::atomic<int> worker_count{0};
  char home[256];  // removed by the signal handler, through /bin/rm (empty: a member's)
};
tracked_system tracked[max_systems];

int claim_slot() {
  for (int i = 0; i < max_systems; ++i) {
    bool expected = false;
    if (tracked[i].used.compare_exchange_strong(expected, true)) return i;
  }
  throw bench_error("more than " + std::to_string(max_systems) + " systems at once");
}

void track(int slot, pid_t pid) {
  auto& t = tracked[slot];
  const int n = t.worker_count.load();
  for (int i = 0; i < n; ++i)
    if (t.workers[i].load() == pid) return;
  if (n < max_tracked) {
    t.workers[n].store(pid);
    t.worker_count.store(n + 1);
  }
}

void untrack(int slot, pid_t pid) {
  auto& t = tracked[slot];
  for (int i = 0; i < t.worker_count.load(); ++i)
    if (t.workers[i].load() == pid) t.workers[i].store(-1);
}

extern "C" void on_fatal_signal(int sig) {
  for (auto& t : tracked) {
    if (!t.used.load()) continue;
    // The system first, so it does not restart the workers killed next.
    if (pid_t s = t.system.load(); s > 0) ::kill(s, SIGKILL);
    for (int i = 0; i < t.worker_count.load(); ++i)
      if (pid_t p = t.workers[i].load(); p > 0) ::kill(p, SIGKILL);
    // fork, execve and waitpid are async-signal-safe; std::filesystem is not.
    if (t.home[0] == '\0') continue;
    if (pid_t rm = ::fork(); rm == 0) {
      const char* argv[] = {"rm", "-rf", t.home, nullptr};
      ::execve("/bin/rm", const_cast<char* const*>(argv), environ);
      _exit(127);
    } else if (rm > 0) {
      ::waitpid(rm, nullptr, 0);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// A zombie is gone: it waits only for its reaper (init here, for workers
// of a killed system), which may take a second or more to come by.
bool alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

}  // namespace

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

live_system::live_system(std::string troupe_exe) : troupe_exe_(std::move(troupe_exe)) {
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
}

live_system::live_system(std::string troupe_exe, const live_system& leader) : live_system(std::move(troupe_exe)) {
  if (leader.home_.empty() || leader.port_ == 0) throw bench_error("a member needs a started leader");
  home_ = leader.home_;
  owns_home_ = false;
  leader_port_ = leader.port_;
}

live_system::~live_system() { stop(); }

live_system::cli_result live_system::run_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv{troupe_exe_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  // This system's TROUPE_HOME for the CLI only: two systems may run at once.
  std::vector<std::string> env_text{"TROUPE_HOME=" + home_};
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "TROUPE_HOME=", 12) != 0) env_text.emplace_back(*e);
  std::vector<char*> env;
  for (auto& e : env_text) env.push_back(e.data());
  env.push_back(nullptr);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw bench_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw bench_error("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, 1);
    ::dup2(err_pipe[1], 2);
    ::execve(raw[0], raw.data(), env.data());
    _exit(127);
  }
  ::close(err_pipe[1]);
  cli_result r;
  char buf[512];
  for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    r.err.append(buf, static_cast<std::size_t>(n));
  }
  ::close(err_pipe[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

void live_system::start(const std::vector<std::string>& start_args) {
  if (!fs::exists(troupe_exe_)) throw bench_error(troupe_exe_ + " not found (build the project first)");
  if (running_) throw bench_error("system on port " + std::to_string(port_) + " is running already");
  if (slot_ < 0) {  // the first start (a restart after kill() keeps slot, home and port)
    slot_ = claim_slot();
    if (owns_home_) {
      char tmpl[] = "/tmp/troupe-bench-XXXXXX";  // short: ipc:// paths live in it
      if (::mkdtemp(tmpl) == nullptr) {
        tracked[slot_].used.store(false);
        slot_ = -1;
        throw bench_error("mkdtemp failed");
      }
      home_ = tmpl;
      std::snprintf(tracked[slot_].home, sizeof tracked[slot_].home, "%s", home_.c_str());
    }
    port_ = free_port();
  }
  reap_workers();   // of a killed predecessor on this port
  running_ = true;  // from here on stop() has something to clean up
  std::vector<std::string> args{"start", "--port", std::to_string(port_)};
  args.insert(args.end(), start_args.begin(), start_args.end());
  // A convention of its own (as without --leader), or its leader's for a
  // member, unless the caller names a leader or runs on etcd.
  if (std::find(args.begin(), args.end(), "--leader") == args.end() &&
      std::find(args.begin(), args.end(), "--etcd") == args.end())
    args.insert(args.end(), {"--leader", "127.0.0.1:" + std::to_string(leader_port_ != 0 ? leader_port_ : port_)});
  if (auto r = run_cli(args); r.exit_code != 0) {
    std::string command = "troupe";
    for (const auto& a : args) command += " " + a;
    throw bench_error("`" + command + "` failed (exit " + std::to_string(r.exit_code) +
                      "): " + r.err.substr(0, r.err.find('\n')));
  }
  connect_options how;
  how.home = home_;
  auto c = client::connect("127.0.0.1:" + std::to_string(port_), how);
  if (!c) throw bench_error(c.err().message);
  client_ = std::make_unique<client>(std::move(*c));
  auto st = client_->call("status", json::object(), std::chrono::seconds(5));
  if (!st) throw bench_error("system does not answer: " + st.err().message);
  system_pid_ = st->value("pid", -1);
  tracked[slot_].system.store(system_pid_);
}

void live_system::reap_workers() {
  if (slot_ < 0) return;
  auto& t = tracked[slot_];
  for (int i = 0; i < t.worker_count.load(); ++i) {
    const pid_t p = t.workers[i].load();
    for (int tries = 0; alive(p) && tries < 100; ++tries) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (alive(p)) ::kill(p, SIGKILL);
  }
  t.worker_count.store(0);
}

void live_system::stop() {
  if (slot_ < 0) return;  // never started, or stopped already
  client_.reset();
  if (running_) (void)run_cli({"stop", std::to_string(port_)});
  running_ = false;
  // Whatever did not go away with `troupe stop` is killed: the system first,
  // so that it does not restart the workers.
  if (alive(system_pid_)) ::kill(system_pid_, SIGKILL);
  system_pid_ = -1;
  reap_workers();
  auto& t = tracked[slot_];
  t.system.store(-1);
  t.home[0] = '\0';
  t.used.store(false);
  slot_ = -1;
  std::error_code ec;
  if (owns_home_ && !home_.empty()) fs::remove_all(home_, ec);
}

std::int64_t live_system::kill() {
  if (!running_) throw bench_error("kill: system on port " + std::to_string(port_) + " is not running");
  client_.reset();
  running_ = false;
  const pid_t pid = system_pid_;
  std::optional<process_watch> watch;
  if (alive(pid)) watch.emplace(pid);
  const std::int64_t t = now_ns();
  if (watch && ::kill(pid, SIGKILL) != 0) throw bench_error("cannot kill system " + std::to_string(pid));
  if (watch) watch->wait_exit();
  system_pid_ = -1;
  tracked[slot_].system.store(-1);
  return t;
}

json live_system::call(const std::string& command, const json& body, std::chrono::milliseconds timeout) {
  if (!client_) throw bench_error(command + ": system on port " + std::to_string(port_) + " is not running");
  auto r = client_->call(command, body, timeout);
  if (!r) throw bench_error(command + " " + body.dump() + " on port " + std::to_string(port_) + ": " + r.err().message);
  return *r;
}

void live_system::track_workers() {
  auto r = client_->call("list", json::object());
  if (!r) throw bench_error("list: " + r.err().message);
  for (const auto& p : (*r)["packages"])
    if (p["worker_pid"].is_number()) track(slot_, p["worker_pid"].get<pid_t>());
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

address live_system::spawn(const std::string& type, const std::string& package_id, const std::string& name) {
  auto a = client_->spawn(type, package_id, name);
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

result<json> live_system::try_ask(address target, const json& payload, std::chrono::milliseconds timeout) {
  return client_->ask(target.to_string(), payload, timeout);
}

result<json> live_system::try_ask(const std::string& target, const json& payload, std::chrono::milliseconds timeout) {
  return client_->ask(target, payload, timeout);
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

json live_system::poll(address target, const json& question, const std::function<bool(const json&)>& done,
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

void live_system::trust_own_client_key() {
  auto keys = ipc::load_or_create_keypair(fs::path(home_) / "client");
  if (!keys) throw bench_error("client key: " + keys.err().message);
  if (auto r = run_cli({"trust-client", "bench", keys->public_key}); r.exit_code != 0)
    throw bench_error("troupe trust-client failed: " + r.err.substr(0, r.err.find('\n')));
}

pid_t live_system::worker_pid(const std::string& package_id) {
  auto r = client_->call("list", json::object());
  if (!r) throw bench_error("list: " + r.err().message);
  for (const auto& p : (*r)["packages"]) {
    if (p["worker_pid"].is_number()) track(slot_, p["worker_pid"].get<pid_t>());
    if (p.value("id", std::string()) == package_id && p["worker_pid"].is_number()) return p["worker_pid"].get<pid_t>();
  }
  throw bench_error("no worker for package " + package_id.substr(0, 12));
}

void live_system::kill_worker(pid_t pid) {
  if (pid <= 0 || ::kill(pid, SIGKILL) != 0) throw bench_error("cannot kill worker " + std::to_string(pid));
  untrack(slot_, pid);
}

}  // namespace troupe::bench
