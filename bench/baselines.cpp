// bench/baselines.cpp — what troupe's figures are compared with, measured in
// the same run: raw ZeroMQ ipc:// and tcp:// between two processes, plain in-process
// queues and objects, and a bare fork+exec.
#include "bench/bench.hpp"

#include <troupe/actor.hpp>

#include <zmq.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unordered_map>
#include <utility>

namespace troupe::bench {

// ---------------------------------------------------------------- helpers

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::int64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "NNN kB"
  }
  return 0;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw bench_error("cannot read /proc/self/exe");
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string self_dir() {
  auto exe = self_exe();
  return exe.substr(0, exe.rfind('/'));
}

child_process::child_process(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw bench_error("fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    ::execv(args[0], args.data());
    _exit(127);
  }
}

child_process::~child_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

int child_process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  while (pid_ > 0) {
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

process_watch::process_watch(pid_t pid) : fd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {
  if (fd_ < 0) throw bench_error("pidfd_open " + std::to_string(pid) + ": " + std::strerror(errno));
}

process_watch::~process_watch() { ::close(fd_); }

void process_watch::wait_exit() {
  pollfd p{fd_, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
}

bool process_watch::exited() const {
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

namespace {

// The same data-socket options as troupe (ipc::configure_data_socket).
void data_socket_options(zmq::socket_t& s) {
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 100000);
  s.set(zmq::sockopt::rcvhwm, 100000);
}

/// A baseline child's end: PULL bound at pull_ep (connected there when
/// connect_pull), PUSH connected to push_ep.
std::pair<zmq::socket_t, zmq::socket_t> child_sockets(zmq::context_t& ctx, const std::string& pull_ep,
                                                      const std::string& push_ep, bool connect_pull = false) {
  zmq::socket_t in(ctx, zmq::socket_type::pull);
  zmq::socket_t out(ctx, zmq::socket_type::push);
  data_socket_options(in);
  data_socket_options(out);
  if (connect_pull)
    in.connect(pull_ep);
  else
    in.bind(pull_ep);
  out.connect(push_ep);
  return {std::move(in), std::move(out)};
}

}  // namespace

// ---------------------------------------------------------------- raw ZeroMQ: children

int zmq_echo_main(const std::string& pull_ep, const std::string& push_ep, bool connect_pull) {
  zmq::context_t ctx{1};
  auto [in, out] = child_sockets(ctx, pull_ep, push_ep, connect_pull);
  for (;;) {
    zmq::message_t m;
    if (!in.recv(m)) continue;
    if (m.size() == 0) return 0;  // the end
    out.send(m, zmq::send_flags::none);
  }
}

int zmq_sink_main(const std::string& pull_ep, const std::string& push_ep, std::uint64_t n, int reps,
                  bool connect_pull) {
  zmq::context_t ctx{1};
  auto [in, out] = child_sockets(ctx, pull_ep, push_ep, connect_pull);
  zmq::message_t m;
  (void)in.recv(m);  // hello: both connections are up
  out.send(zmq::buffer("hello", 5), zmq::send_flags::none);
  for (int r = 0; r < reps; ++r) {
    for (std::uint64_t i = 0; i < n; ++i) (void)in.recv(m);
    const std::int64_t t = now_ns();
    out.send(zmq::message_t(&t, sizeof t), zmq::send_flags::none);
  }
  return 0;
}

// ---------------------------------------------------------------- raw ZeroMQ: parent

struct raw_zmq_rtt::impl {
  zmq::context_t ctx{1};
  zmq::socket_t out{ctx, zmq::socket_type::push};
  zmq::socket_t in{ctx, zmq::socket_type::pull};
  std::string payload;
  std::unique_ptr<child_process> child;
};

raw_zmq_rtt::raw_zmq_rtt(const std::string& dir, std::size_t payload_bytes, raw_transport transport)
    : impl_(std::make_unique<impl>()) {
  data_socket_options(impl_->out);
  data_socket_options(impl_->in);
  if (transport == raw_transport::tcp) {
    // Both ends bound here on ephemeral ports (no port to guess), the child
    // connects both; once connected the path is the same as with ipc://.
    impl_->in.bind("tcp://127.0.0.1:*");
    impl_->out.bind("tcp://127.0.0.1:*");
    const std::string back = impl_->in.get(zmq::sockopt::last_endpoint);
    const std::string fwd = impl_->out.get(zmq::sockopt::last_endpoint);
    impl_->child =
        std::make_unique<child_process>(std::vector<std::string>{self_exe(), "--zmq-echo-connect", fwd, back});
  } else {
    const std::string fwd = "ipc://" + dir + "/raw-echo-in.sock";
    const std::string back = "ipc://" + dir + "/raw-echo-out.sock";
    impl_->in.bind(back);
    impl_->child = std::make_unique<child_process>(std::vector<std::string>{self_exe(), "--zmq-echo", fwd, back});
    impl_->out.connect(fwd);
  }
  impl_->payload.assign(payload_bytes, 'x');
  (void)run(500);  // warm-up: connections, caches, frequency
}

pid_t raw_zmq_rtt::child_pid() const { return impl_->child ? impl_->child->pid() : -1; }

const char* suffix(placement p) { return p == placement::same_cpu ? "_same_cpu" : "_split_cpu"; }

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool pin_process(pid_t pid, int cpu, const std::vector<int>& cpus) {
  if (pid <= 0) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0)
    CPU_SET(cpu, &set);
  else
    for (int c : cpus) CPU_SET(c, &set);
  // Every thread: ZeroMQ's I/O thread carries the messages.
  std::error_code ec;
  bool any = false;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    const pid_t tid = static_cast<pid_t>(std::atoi(t.path().filename().c_str()));
    if (tid > 0 && ::sched_setaffinity(tid, sizeof set, &set) == 0) any = true;
  }
  return any;
}

raw_zmq_rtt::~raw_zmq_rtt() {
  if (!impl_->child) return;
  impl_->out.send(zmq::message_t(), zmq::send_flags::dontwait);
  impl_->child->wait(std::chrono::seconds(2));
}

rtt_stats raw_zmq_rtt::run(std::size_t n) {
  std::vector<double> us;
  us.reserve(n);
  zmq::message_t reply;
  for (std::size_t i = 0; i < n; ++i) {
    const auto t0 = now_ns();
    impl_->out.send(zmq::buffer(impl_->payload), zmq::send_flags::none);
    if (!impl_->in.recv(reply)) throw bench_error("raw zmq echo: receive failed");
    us.push_back(static_cast<double>(now_ns() - t0) / 1000.0);
  }
  return {percentile(us, 0.5), percentile(us, 0.99)};
}

struct raw_zmq_oneway::impl {
  zmq::context_t ctx{1};
  zmq::socket_t out{ctx, zmq::socket_type::push};
  zmq::socket_t in{ctx, zmq::socket_type::pull};
  std::string payload;
  std::uint64_t n = 0;
  int reps_left = 0;
  std::unique_ptr<child_process> child;
};

raw_zmq_oneway::raw_zmq_oneway(const std::string& dir, std::uint64_t n, int reps, std::size_t payload_bytes,
                               raw_transport transport)
    : impl_(std::make_unique<impl>()) {
  data_socket_options(impl_->out);
  data_socket_options(impl_->in);
  if (transport == raw_transport::tcp) {
    // As raw_zmq_rtt: both ends bound here on ephemeral ports, the child connects.
    impl_->in.bind("tcp://127.0.0.1:*");
    impl_->out.bind("tcp://127.0.0.1:*");
    const std::string back = impl_->in.get(zmq::sockopt::last_endpoint);
    const std::string fwd = impl_->out.get(zmq::sockopt::last_endpoint);
    impl_->child = std::make_unique<child_process>(
        std::vector<std::string>{self_exe(), "--zmq-sink-connect", fwd, back, std::to_string(n), std::to_string(reps)});
  } else {
    const std::string fwd = "ipc://" + dir + "/raw-sink-in.sock";
    const std::string back = "ipc://" + dir + "/raw-sink-out.sock";
    impl_->in.bind(back);
    impl_->child = std::make_unique<child_process>(
        std::vector<std::string>{self_exe(), "--zmq-sink", fwd, back, std::to_string(n), std::to_string(reps)});
    impl_->out.connect(fwd);
  }
  zmq::message_t m;
  impl_->out.send(zmq::buffer("hello", 5), zmq::send_flags::none);
  if (!impl_->in.recv(m)) throw bench_error("raw zmq sink: no hello");
  impl_->payload.assign(payload_bytes, 'x');
  impl_->n = n;
  impl_->reps_left = reps;
}

raw_zmq_oneway::~raw_zmq_oneway() {
  if (impl_->child && impl_->reps_left == 0) impl_->child->wait(std::chrono::seconds(5));
}

pid_t raw_zmq_oneway::child_pid() const { return impl_->child ? impl_->child->pid() : -1; }

double raw_zmq_oneway::run() {
  if (impl_->reps_left-- <= 0) throw bench_error("raw zmq sink: no repetition left");
  zmq::message_t m;
  const auto t0 = now_ns();
  for (std::uint64_t i = 0; i < impl_->n; ++i) impl_->out.send(zmq::buffer(impl_->payload), zmq::send_flags::none);
  if (!impl_->in.recv(m) || m.size() != sizeof(std::int64_t)) throw bench_error("raw zmq sink: no stamp");
  std::int64_t t_last = 0;
  std::memcpy(&t_last, m.data(), sizeof t_last);
  return static_cast<double>(impl_->n) * 1e9 / static_cast<double>(t_last - t0);
}

// ---------------------------------------------------------------- in-process

namespace {

struct plain_msg {
  struct plain_receiver* to;
  std::uint64_t from;
  std::array<char, 64> payload;
};

struct plain_receiver {
  virtual ~plain_receiver() = default;
  virtual void receive(const plain_msg& m) = 0;
};

struct counting_receiver final : plain_receiver {
  std::uint64_t count = 0;
  char last = 0;
  void receive(const plain_msg& m) override {
    ++count;
    last = m.payload[static_cast<std::size_t>(count & 63)];
  }
};

}  // namespace

double deque_pass_rate(std::uint64_t n, std::size_t chunk) {
  std::deque<plain_msg> q;
  counting_receiver sink;
  plain_receiver* target = &sink;
  plain_msg proto{target, 1, {}};
  proto.payload.fill('x');
  const auto t0 = now_ns();
  std::uint64_t left = n;
  while (left > 0) {
    const std::uint64_t k = std::min<std::uint64_t>(chunk, left);
    for (std::uint64_t i = 0; i < k; ++i) q.push_back(proto);
    left -= k;
    while (!q.empty()) {
      plain_msg m = q.front();
      q.pop_front();
      m.to->receive(m);
    }
  }
  const auto t1 = now_ns();
  if (sink.count != n) throw bench_error("deque pass lost messages");
  return static_cast<double>(n) * 1e9 / static_cast<double>(t1 - t0);
}

namespace {

struct ring_msg {
  struct ring_obj* to;
  std::uint64_t left;
};

struct ring_obj {
  ring_obj* next = nullptr;
  std::deque<ring_msg>* queue = nullptr;
  bool* done = nullptr;
  virtual ~ring_obj() = default;
  virtual void receive(std::uint64_t left) {
    if (left == 0)
      *done = true;
    else
      queue->push_back({next, left - 1});
  }
};

}  // namespace

double plain_ring_ns_per_hop(std::size_t nodes, std::size_t laps) {
  std::deque<ring_msg> q;
  bool done = false;
  std::vector<std::unique_ptr<ring_obj>> ring;
  ring.reserve(nodes);
  for (std::size_t i = 0; i < nodes; ++i) ring.push_back(std::make_unique<ring_obj>());
  for (std::size_t i = 0; i < nodes; ++i) {
    ring[i]->next = ring[(i + 1) % nodes].get();
    ring[i]->queue = &q;
    ring[i]->done = &done;
  }
  const std::uint64_t hops = static_cast<std::uint64_t>(nodes) * laps;
  const auto t0 = now_ns();
  q.push_back({ring[0].get(), hops});
  while (!q.empty()) {
    ring_msg m = q.front();
    q.pop_front();
    m.to->receive(m.left);
  }
  const auto t1 = now_ns();
  if (!done) throw bench_error("plain ring: token lost");
  return static_cast<double>(t1 - t0) / static_cast<double>(hops);
}

namespace {

struct idle_actor final : troupe::actor {
  void receive(troupe::context&, const troupe::message&) override {}
};

// The worker's per-actor record (worker/runtime.hpp actor_slot), copied here
// so the baseline does not depend on worker internals.
struct plain_slot {
  address addr;
  const void* type = nullptr;
  void* state = nullptr;
  std::uint32_t restarts = 0;
  bool exiting = false;
};

}  // namespace

double plain_actor_bytes_here(std::size_t n) {
  std::unordered_map<address, plain_slot> table;
  const auto before = rss_bytes(::getpid());
  for (std::size_t i = 0; i < n; ++i) {
    const address a(1, static_cast<std::uint32_t>(i + 16));
    table.emplace(a, plain_slot{a, nullptr, new idle_actor(), 0, false});
  }
  const auto after = rss_bytes(::getpid());
  for (auto& [_, s] : table) delete static_cast<idle_actor*>(s.state);
  return static_cast<double>(after - before) / static_cast<double>(n);
}

int plain_actors_main(std::size_t n) {
  std::printf("%.3f\n", plain_actor_bytes_here(n));
  return 0;
}

double plain_actor_bytes(std::size_t n) {
  // In a fresh process: in this one, memory freed by earlier runs would be
  // reused and the growth of the heap would hide the objects.
  return child_figure({"--plain-actors", std::to_string(n)});
}

double child_figure(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw bench_error("pipe failed");
  std::vector<std::string> argv{self_exe()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw bench_error("fork failed");
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::execv(raw[0], raw.data());
    _exit(127);
  }
  ::close(fds[1]);
  std::string got;
  char buf[128];
  for (ssize_t r; (r = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  try {
    return std::stod(got);
  } catch (const std::exception&) {
    throw bench_error("troupe-bench " + args.front() + " printed '" + got + "'");
  }
}

double bare_fork_exec_ms(const std::string& exe, const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw bench_error("pipe failed");
  std::vector<std::string> argv{exe, std::to_string(fds[1])};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  const auto t0 = now_ns();
  const pid_t pid = ::fork();
  if (pid < 0) throw bench_error("fork failed");
  if (pid == 0) {
    ::fcntl(fds[1], F_SETFD, 0);  // keep the write end across exec
    ::execv(raw[0], raw.data());
    _exit(127);
  }
  ::close(fds[1]);
  std::string got;
  char buf[64];
  while (got.find('\n') == std::string::npos) {
    ssize_t r = ::read(fds[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  const auto t1 = now_ns();
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (got != "ready\n") throw bench_error(exe + " did not say ready");
  return static_cast<double>(t1 - t0) / 1e6;
}

namespace {

/// fork+exec of `exe FD --stay` (troupe-bench-ready), which dies with the
/// bench; returns its pid and, in ready_fd, the pipe it says "ready" on.
pid_t launch_staying(const std::string& exe, int& ready_fd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw bench_error("pipe failed");
  std::vector<std::string> argv{exe, std::to_string(fds[1]), "--stay"};
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw bench_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    ::fcntl(fds[1], F_SETFD, 0);  // keep the write end across exec
    ::execv(raw[0], raw.data());
    _exit(127);
  }
  ::close(fds[1]);
  ready_fd = fds[0];
  return pid;
}

/// Reads ready_fd until the child's "ready" line (or its end), then closes it.
bool read_ready(int ready_fd) {
  std::string got;
  char buf[64];
  while (got.find('\n') == std::string::npos) {
    const ssize_t r = ::read(ready_fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  ::close(ready_fd);
  return got == "ready\n";
}

}  // namespace

std::vector<double> bare_notice_respawn_ms(const std::string& exe, int samples) {
  int ready_fd = -1;
  pid_t child = launch_staying(exe, ready_fd);
  auto finish = [&child] {
    if (child > 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      child = -1;
    }
  };
  std::vector<double> ms;
  try {
    if (!read_ready(ready_fd)) throw bench_error(exe + " --stay did not say ready");
    for (int i = 0; i < samples; ++i) {
      process_watch watch(child);  // opened ahead, as a supervisor holds one per child
      const auto t0 = now_ns();
      ::kill(child, SIGKILL);
      watch.wait_exit();
      ::waitpid(child, nullptr, 0);
      child = launch_staying(exe, ready_fd);
      if (!read_ready(ready_fd)) throw bench_error(exe + " --stay did not say ready");
      ms.push_back(static_cast<double>(now_ns() - t0) / 1e6);
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
  return ms;
}

}  // namespace troupe::bench
