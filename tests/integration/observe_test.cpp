// The event stream and /metrics of a real system (issue 15): a worker killed
// shows in `events` as its exit then its actor's restart, in order;
// `promtool check metrics` accepts /metrics; a real Prometheus scrapes it
// and sees troupe_actor_restarts_total rise after the SIGKILL; the HTTP
// server refuses bad requests and serves on.
#include "tests/integration/harness.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using troupe::testing::actor_view;
using troupe::testing::eventually;
using troupe::testing::free_port;
using troupe::testing::json;
using troupe::testing::run_process;
using troupe::testing::test_system;

namespace fs = std::filesystem;

namespace {

struct http_answer {
  int status = 0;
  std::string body;
};

// One HTTP/1.0 request on 127.0.0.1:port (the server closes after it);
// status 0 when nothing answered. Reads at most 5 s.
http_answer http_request(std::uint16_t port, const std::string& request) {
  http_answer out;
  const int fd = troupe::testing::connect_loopback(port, std::chrono::seconds(5));
  if (fd < 0) return out;
  const timeval bound{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  std::size_t off = 0;
  while (off < request.size()) {
    const auto n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return out;
  out.status = std::atoi(raw.substr(9, 3).c_str());
  if (auto end = raw.find("\r\n\r\n"); end != std::string::npos) out.body = raw.substr(end + 4);
  return out;
}

http_answer http_get(std::uint16_t port, const std::string& path) {
  return http_request(port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

std::optional<std::string> find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    const auto end = dirs.find(':', start);
    const std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty() && ::access((fs::path(dir) / name).c_str(), X_OK) == 0) return (fs::path(dir) / name).string();
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nullopt;
}

// A process this test starts and always ends: SIGKILL and reap in the
// destructor, whatever the test did meanwhile.
class child_process {
 public:
  child_process(const std::string& exe, const std::vector<std::string>& args, const fs::path& log) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
      }
      std::vector<char*> argv;
      std::vector<std::string> all{exe};
      all.insert(all.end(), args.begin(), args.end());
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(exe.c_str(), argv.data());
      _exit(127);
    }
  }
  ~child_process() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  [[nodiscard]] bool running() const {
    int st = 0;
    return ::waitpid(pid_, &st, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

// The value of an instant query's first result, or nothing (no series yet).
std::optional<double> prometheus_value(std::uint16_t port, const std::string& query) {
  const auto r = http_get(port, "/api/v1/query?query=" + url_encode(query));
  if (r.status != 200) return std::nullopt;
  const auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || j.value("status", std::string()) != "success") return std::nullopt;
  const auto& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return std::nullopt;
  return std::stod(result[0]["value"][1].get<std::string>());
}

}  // namespace

TEST_CASE("a killed worker shows in the event stream as its exit, then its actor's restart", "[integration][observe]") {
  const std::uint16_t metrics_port = free_port();
  test_system sys({"--metrics", std::to_string(metrics_port)});
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  const std::string relay = sys.spawn({"Relay", "--package", pkg, "--name", "relay"});
  CHECK(sys.ask(relay, json{{"echo", "before"}}) == "before");
  const auto before = sys.actor(relay);
  REQUIRE(before);
  const int old_pid = before->worker_pid();

  // A follower through the client API, subscribed before the kill.
  auto c = troupe::client::connect(sys.where(), sys.connect_options());
  REQUIRE(c);
  auto first = c->events(0, true);
  REQUIRE(first);
  CHECK(first->value("following", false));
  CHECK(first->value("heartbeat_ms", 0) > 0);
  bool loaded = false, started = false;
  for (const auto& e : (*first)["events"]) {
    loaded = loaded || e["kind"] == "package_loaded";
    started = started || (e["kind"] == "actor_started" && e["address"] == relay);
  }
  CHECK(loaded);
  CHECK(started);

  troupe::testing::kill_process(old_pid);
  std::vector<json> seen;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto has = [&seen](const std::string& kind, const std::function<bool(const json&)>& pred) {
    for (std::size_t i = 0; i < seen.size(); ++i)
      if (seen[i]["kind"] == kind && pred(seen[i])) return static_cast<int>(i);
    return -1;
  };
  auto is_relay = [&relay](const json& e) { return e.value("address", std::string()) == relay; };
  while (std::chrono::steady_clock::now() < deadline && has("actor_started", is_relay) < 0) {
    auto next = c->next_events(std::chrono::milliseconds(500));
    if (!next) {
      REQUIRE(next.err().code == troupe::errc::timeout);
      continue;
    }
    CHECK(next->value("missed", 1) == 0);
    for (const auto& e : (*next)["events"]) seen.push_back(e);
  }
  INFO(json(seen).dump(1));
  const int exited = has("worker_exited", [old_pid](const json& e) { return e.value("pid", 0) == old_pid; });
  const int restarted = has("actor_restarted", is_relay);
  const int running = has("actor_started", is_relay);
  REQUIRE(exited >= 0);
  REQUIRE(restarted >= 0);
  REQUIRE(running >= 0);
  CHECK(exited < restarted);
  CHECK(restarted < running);
  CHECK(seen[exited]["signal"] == SIGKILL);
  CHECK(seen[exited]["package"] == "relay");
  CHECK(seen[exited]["expected"] == false);
  CHECK_THAT(seen[restarted].value("reason", std::string()), Catch::Contains("SIGKILL"));
  CHECK(seen[restarted]["name"] == "relay");
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i]["seq"].get<int>() == seen[i - 1]["seq"].get<int>() + 1);
  REQUIRE(c->unsubscribe_events());

  // The CLI shows the same, in order, one JSON object a line.
  auto r = sys.run({"events", "--json"});
  REQUIRE(r.exit_code == 0);
  std::vector<json> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  auto index_of = [&lines](const std::string& kind, const std::function<bool(const json&)>& pred) {
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (lines[i]["kind"] == kind && pred(lines[i])) return static_cast<int>(i);
    return -1;
  };
  CHECK(index_of("worker_exited", [old_pid](const json& e) { return e.value("pid", 0) == old_pid; }) <
        index_of("actor_restarted", is_relay));
  auto text = sys.run({"events", "--since", std::to_string(seen[exited]["seq"].get<int>() - 1)});
  REQUIRE(text.exit_code == 0);
  CHECK_THAT(text.out, Catch::Contains("worker_exited") && Catch::Contains("pid " + std::to_string(old_pid)) &&
                           Catch::Contains("actor_restarted " + relay));

  // The metrics count it.
  const auto m = http_get(metrics_port, "/metrics");
  REQUIRE(m.status == 200);
  CHECK_THAT(m.body, Catch::Contains("troupe_actor_restarts_total{cause=\"worker_signal\",package=\"relay\","));
  CHECK_THAT(m.body, Catch::Contains("troupe_worker_exits_total{code=\"\",expected=\"false\",package=\"relay\""));
  CHECK_THAT(m.body, Catch::Contains("signal=\"SIGKILL\""));
  CHECK_THAT(m.body, Catch::Contains("troupe_actors{package=\"relay\",state=\"running\",version=\"1.0.0\"} 1"));
  CHECK_THAT(m.body, Catch::Contains("troupe_process_resident_memory_bytes{package=\"relay\",process=\"worker\""));
  CHECK_THAT(m.body, Catch::Contains("troupe_gateway_ask_seconds_count"));

  // `events --follow` ends with the system: one line on stderr, exit 3.
  std::optional<troupe::testing::run_result> follow;
  std::thread t([&] { follow = sys.run({"events", "--follow"}); });
  // It follows once the system counts a subscriber (read through status? no:
  // through the metrics gauge).
  CHECK(eventually(
      [&] { return http_get(metrics_port, "/metrics").body.find("troupe_event_subscribers 1") != std::string::npos; }));
  sys.stop();
  t.join();
  REQUIRE(follow);
  INFO(follow->err);
  CHECK(follow->exit_code == 3);
  CHECK(follow->err_lines() == 1);
  CHECK_THAT(follow->err, Catch::Contains("stopping"));
}

TEST_CASE("promtool accepts /metrics and a real Prometheus sees restarts rise after a SIGKILL",
          "[integration][observe]") {
  const auto prometheus = find_program("prometheus");
  const auto promtool = find_program("promtool");
  if (!prometheus || !promtool) {
    WARN("prometheus or promtool is not installed (Debian package prometheus): skipped");
    return;
  }
  const std::uint16_t metrics_port = free_port();
  test_system sys({"--metrics", "127.0.0.1:" + std::to_string(metrics_port)});
  sys.load(TROUPE_RELAY_V1_PKG);
  const std::string relay = sys.spawn({"Relay"});
  CHECK(sys.ask(relay, json{{"echo", 1}}) == 1);

  const auto text = http_get(metrics_port, "/metrics");
  REQUIRE(text.status == 200);
  auto check = run_process(*promtool, {"check", "metrics"}, {}, text.body, std::chrono::seconds(30));
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);

  troupe::testing::temp_dir dir("troupe-prom");
  const std::uint16_t web_port = free_port();
  {
    std::ofstream cfg(dir.path / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: troupe\n    static_configs:\n      - targets: ['127.0.0.1:" << metrics_port
        << "']\n";
  }
  child_process prom(
      *prometheus,
      {"--config.file=" + (dir.path / "prometheus.yml").string(), "--storage.tsdb.path=" + (dir.path / "data").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(web_port), "--log.level=warn"},
      dir.path / "prometheus.log");
  // Up, and scraping the system.
  const bool scraping = eventually(
      [&] {
        const auto up = prometheus_value(web_port, "up{job=\"troupe\"}");
        return up && *up == 1;
      },
      std::chrono::seconds(60));
  INFO(troupe::testing::slurp(dir.path / "prometheus.log"));
  REQUIRE(prom.running());
  REQUIRE(scraping);
  const auto before = prometheus_value(web_port, "sum(troupe_actor_restarts_total)").value_or(0);

  const auto v = sys.actor(relay);
  REQUIRE(v);
  troupe::testing::kill_process(v->worker_pid());
  REQUIRE(sys.wait_for_actor(relay, [](const actor_view& a) { return a.restarts() >= 1 && a.state() == "running"; }));
  double after = before;
  CHECK(eventually(
      [&] {
        after = prometheus_value(web_port, "sum(troupe_actor_restarts_total)").value_or(0);
        return after >= before + 1;
      },
      std::chrono::seconds(30)));
  CHECK(after >= before + 1);
}

TEST_CASE("the metrics server refuses bad requests and serves on", "[integration][observe]") {
  const std::uint16_t metrics_port = free_port();
  test_system sys({"--metrics", std::to_string(metrics_port)});
  CHECK(http_get(metrics_port, "/nope").status == 404);
  CHECK(http_get(metrics_port, "/metrics?x=1").status == 200);
  CHECK(http_request(metrics_port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").status == 405);
  CHECK(http_request(metrics_port, "garbage\r\n\r\n").status == 400);
  const std::string huge = "GET /metrics HTTP/1.0\r\nX-Pad: " + std::string(20000, 'a') + "\r\n\r\n";
  CHECK(http_request(metrics_port, huge).status == 413);
  // Idle connections beyond the limit are closed at once; the daemon answers.
  std::vector<int> idle;
  for (int i = 0; i < 40; ++i)
    if (const int fd = troupe::testing::connect_loopback(metrics_port, std::chrono::seconds(1)); fd >= 0)
      idle.push_back(fd);
  CHECK(sys.run({"status"}).exit_code == 0);
  for (int fd : idle) ::close(fd);
  CHECK(eventually([&] { return http_get(metrics_port, "/metrics").status == 200; }));
  // A port in use is refused at start, with the address.
  auto clash = run_process(troupe::testing::bin("troupe"),
                           {"start", "--port", std::to_string(free_port()), "--metrics", std::to_string(metrics_port)},
                           {{"TROUPE_HOME", sys.home().string()}}, {}, std::chrono::seconds(30));
  CHECK(clash.exit_code != 0);
  CHECK_THAT(clash.err, Catch::Contains("cannot listen for HTTP on 127.0.0.1:" + std::to_string(metrics_port)));
}
