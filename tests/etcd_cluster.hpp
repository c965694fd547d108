// tests/etcd_cluster.hpp — a real etcd for one test: N members on free
// loopback ports, each with a data directory of its own under a temporary
// directory, tuned (heartbeat 50 ms, election 500 ms) so that leases of
// about one second work. Members can be killed and started again; the
// destructor kills what is left (only pids it started itself) and removes the
// directory, also when the test fails. Header-only; used by unit and
// integration tests. available() is false when etcd is not installed.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace troupe::testing {

class etcd_cluster {
 public:
  static bool available() { return std::filesystem::exists("/usr/bin/etcd"); }

  /// also_on: another address of this host the client ports listen on too
  /// (the root side of a veth pair a test made), for systems in a network
  /// namespace; endpoints(also_on) names them.
  explicit etcd_cluster(int members = 1, std::string also_on = {}) : also_on_(std::move(also_on)) {
    char tmpl[] = "/tmp/tretcd.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    for (int i = 0; i < members; ++i) nodes_.push_back(node{"n" + std::to_string(i), free_port(), free_port(), -1});
    for (auto& n : nodes_)
      cluster_ += (cluster_.empty() ? "" : ",") + n.name + "=http://127.0.0.1:" + std::to_string(n.peer);
    for (std::size_t i = 0; i < nodes_.size(); ++i) start(i);
    if (!wait_ready()) throw std::runtime_error("etcd did not become ready in " + dir_.string());
  }
  ~etcd_cluster() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) kill(i);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;

  /// "http://127.0.0.1:P1,http://127.0.0.1:P2,..." — what `troupe start --etcd` takes.
  [[nodiscard]] std::string endpoints(const std::string& host = "127.0.0.1") const {
    std::string out;
    for (const auto& n : nodes_)
      out += std::string(out.empty() ? "" : ",") + "http://" + host + ":" + std::to_string(n.client);
    return out;
  }
  [[nodiscard]] std::size_t size() const { return nodes_.size(); }
  [[nodiscard]] pid_t pid(std::size_t i) const { return nodes_[i].pid; }

  /// SIGKILLs member i (a pid this fixture started) and reaps it.
  void kill(std::size_t i) {
    auto& n = nodes_[i];
    if (n.pid <= 0) return;
    ::kill(n.pid, SIGKILL);
    ::waitpid(n.pid, nullptr, 0);
    n.pid = -1;
  }
  /// Starts member i again with its data (it rejoins the cluster).
  void start(std::size_t i) {
    auto& n = nodes_[i];
    if (n.pid > 0) return;
    const std::string peer = "http://127.0.0.1:" + std::to_string(n.peer);
    const std::string client = "http://127.0.0.1:" + std::to_string(n.client);
    std::vector<std::string> args = {
        "/usr/bin/etcd",
        "--name",
        n.name,
        "--data-dir",
        (dir_ / n.name).string(),
        "--listen-client-urls",
        also_on_.empty() ? client : client + ",http://" + also_on_ + ":" + std::to_string(n.client),
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        cluster_,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        dir_.filename().string(),
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "500",
        "--logger",
        "zap",
        "--log-outputs",
        (dir_ / (n.name + ".log")).string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
    if (rc != 0 || pid <= 0) throw std::runtime_error("cannot start etcd");
    n.pid = pid;
  }
  /// Until a client port of every running member accepts connections and
  /// the cluster answers (bounded by 20 s).
  bool wait_ready() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      for (auto& n : nodes_)  // one that exited (bad flags, a port taken) will not come up
        if (n.pid > 0 && ::waitpid(n.pid, nullptr, WNOHANG) == n.pid) {
          n.pid = -1;
          return false;
        }
      bool all = true;
      for (const auto& n : nodes_)
        if (n.pid > 0 && !accepts(n.client)) all = false;
      if (all && healthy()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a synchronisation
    }
    return false;
  }

 private:
  struct node {
    std::string name;
    std::uint16_t client = 0;
    std::uint16_t peer = 0;
    pid_t pid = -1;
  };

  static std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("cannot pick a free port");
    }
    ::close(fd);
    return ntohs(sa.sin_port);
  }
  static bool accepts(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
  }
  // A quorum answers /health with {"health":"true"}: asked with etcdctl-free
  // plain HTTP over a socket.
  bool healthy() const {
    for (const auto& n : nodes_) {
      if (n.pid <= 0) continue;
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      sa.sin_port = htons(n.client);
      timeval tv{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string answer;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        const std::string req = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
          char buf[512];
          ssize_t got = 0;
          while ((got = ::read(fd, buf, sizeof buf)) > 0) answer.append(buf, static_cast<std::size_t>(got));
        }
      }
      ::close(fd);
      if (answer.find("\"health\":\"true\"") != std::string::npos) return true;
    }
    return false;
  }

  std::string also_on_;
  std::filesystem::path dir_;
  std::vector<node> nodes_;
  std::string cluster_;
};

}  // namespace troupe::testing
