// bench/main.cpp — troupe-bench: measures troupe's figures (DESIGN.md §9)
// beside baselines measured in the same run, prints a table and writes
// --out FILE as JSON: [{name, value, unit, baseline, ratio}, ...].
// What each figure means: docs/PERFORMANCE.md.
//
//   troupe-bench [--out FILE] [--quick] [--reps N]
//                [--crash-only | --metrics-only | --load-only | --client-only | --python-only | --convention-only |
//                 --scale-only]
//
// Hidden sub-commands (processes of baselines, run by the bench itself):
//   troupe-bench --zmq-echo PULL_EP PUSH_EP
//   troupe-bench --zmq-echo-connect PULL_EP PUSH_EP   (connects its PULL: tcp)
//   troupe-bench --zmq-sink PULL_EP PUSH_EP N REPS
//   troupe-bench --plain-actors N
//   troupe-bench --plain-table N
//   troupe-bench --zmq-router-echo EP
#include "bench/bench.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#ifndef TROUPE_BENCH_PACKAGE
#error "TROUPE_BENCH_PACKAGE must name the bench package directory the build made"
#endif

namespace troupe::bench {

void say(const std::string& text) { std::cerr << "troupe-bench: " << text << std::endl; }

std::string fmt(double v) {
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 1e6)
    std::snprintf(buf, sizeof buf, "%.3e", v);
  else if (a >= 100)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a >= 1)
    std::snprintf(buf, sizeof buf, "%.2f", v);
  else
    std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct sizes {
  std::size_t rtt_samples = 3000;  // per repetition
  int reps = 7;                    // throughput and RTT repetitions
  std::uint64_t raw_msgs = 1000000;
  std::uint64_t cross_msgs = 1000000;
  std::uint64_t local_msgs = 2000000;
  std::size_t ring_nodes = 10000;
  std::size_t ring_laps = 100;
  int ring_reps = 5;
  std::size_t idle_actors = 10000;
  int spawn_samples = 15;
  int load_samples = 15;
  int signature_calls = 3000;
  int archive_samples = 21;
  int restart_kills = 30;
  int crash_samples = 7;
  int crash_actors = 20;
  convention_sizes convention;
  scale_sizes scale;
};

constexpr std::size_t payload_bytes = 64;
constexpr std::uint64_t chunk = 1000;

// ---------------------------------------------------------------- figures

struct cross_worker {
  std::string pkg_a, pkg_b;
};

void measure_rtt(live_system& sys, const cross_worker& pk, const sizes& z, std::vector<figure>& out,
                 std::vector<unavailable_figure>& unavailable) {
  say("cross-worker ask round trip vs raw ZeroMQ ipc round trip: unpinned, on one CPU, on two");
  raw_zmq_rtt raw(sys.home(), payload_bytes);
  const address pinger = sys.spawn("Pinger", pk.pkg_a);
  const address ponger = sys.spawn("Ponger", pk.pkg_b);
  const pid_t pinger_pid = sys.worker_pid(pk.pkg_a);
  const pid_t ponger_pid = sys.worker_pid(pk.pkg_b);
  // Polls are asks into the pinger's worker and would disturb the samples:
  // the driver sleeps through most of a run, guessing its length from the last.
  double us_per_ask = 100;
  auto run = [&](std::size_t n) {
    const auto t0 = now_ns();
    sys.ask(pinger, json{{"op", "run"}, {"target", ponger.value()}, {"n", n}, {"payload_bytes", payload_bytes}});
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<std::int64_t>(0.9 * us_per_ask * n)));
    json r = sys.poll(
        pinger, json{{"op", "result"}}, [](const json& j) { return j.value("done", false); }, 60s, 10ms);
    us_per_ask = static_cast<double>(now_ns() - t0) / 1000.0 / static_cast<double>(n);
    if (r.value("failures", 0) != 0) throw bench_error("cross-worker asks failed: " + r.dump());
    return rtt_stats{r.value("p50_us", 0.0), r.value("p99_us", 0.0)};
  };
  // Each endpoint pinned (placement) or all free (nullopt): troupe's two
  // workers, the system and this driver; the raw pair: this process and its
  // echo child. Same CPU: all on the first; split: initiator and its side on
  // the first, the answering side on the second.
  const std::vector<int> cpus = allowed_cpus();
  auto place = [&](std::optional<placement> p) {
    const int first = p ? cpus[0] : -1;
    const int second = !p ? -1 : *p == placement::same_cpu ? cpus[0] : cpus[1];
    pin_process(::getpid(), first, cpus);
    pin_process(sys.system_pid(), first, cpus);
    pin_process(pinger_pid, first, cpus);
    pin_process(ponger_pid, second, cpus);
    pin_process(raw.child_pid(), second, cpus);
  };
  std::vector<std::optional<placement>> placements{std::nullopt};
  if (!cpus.empty()) placements.push_back(placement::same_cpu);
  if (cpus.size() >= 2)
    placements.push_back(placement::split_cpu);
  else
    for (const char* n : {"cross_worker_ask_rtt_p50_split_cpu", "cross_worker_ask_rtt_p99_split_cpu"})
      unavailable.push_back({n, "us", "this process may use one CPU only"});
  (void)run(500);  // warm-up: route resolution, connections
  struct series {
    std::vector<double> t50, t99, b50, b99;
  };
  std::vector<series> got(placements.size());
  // Repetitions interleaved across placements: the machine's load weighs on all alike.
  for (int i = 0; i < z.reps; ++i)
    for (std::size_t k = 0; k < placements.size(); ++k) {
      place(placements[k]);
      auto b = raw.run(z.rtt_samples);
      auto t = run(z.rtt_samples);
      got[k].b50.push_back(b.p50_us);
      got[k].b99.push_back(b.p99_us);
      got[k].t50.push_back(t.p50_us);
      got[k].t99.push_back(t.p99_us);
    }
  place(std::nullopt);
  for (std::size_t k = 0; k < placements.size(); ++k) {
    const std::string sfx = placements[k] ? suffix(*placements[k]) : "";
    const std::string where = !placements[k]                          ? "unpinned"
                              : *placements[k] == placement::same_cpu ? "all on one CPU"
                                                                      : "the two ends on two CPUs";
    const std::string base = "raw ZeroMQ ipc PUSH/PULL round trip, 2 processes, 64 B, " + where;
    const auto& g = got[k];
    figure p50{"cross_worker_ask_rtt_p50" + sfx, median(g.t50), "us", median(g.b50), base, "<= 1.5x baseline", {}};
    p50.met = p50.ratio() <= 1.5;
    p50.samples = g.t50;
    p50.baseline_samples = g.b50;
    out.push_back(p50);
    figure p99{"cross_worker_ask_rtt_p99" + sfx, median(g.t99), "us", median(g.b99), base, "-", {}};
    p99.samples = g.t99;
    p99.baseline_samples = g.b99;
    out.push_back(p99);
  }
}

/// A client's ask through the gateway: this process, a C++ client over TCP
/// (CurveZMQ, as a remote client), asks the Ponger in its worker; the path
/// is two round trips, client-system over tcp and system-worker over ipc,
/// so the baseline is the raw tcp and raw ipc round trips of the same run
/// and placement added up.
void measure_client_ask(live_system& sys, const cross_worker& pk, const sizes& z, std::vector<figure>& out,
                        std::vector<unavailable_figure>& unavailable) {
  say("client ask through the gateway (C++ client over tcp) vs raw tcp + raw ipc round trips");
  raw_zmq_rtt raw_ipc(sys.home(), payload_bytes);
  raw_zmq_rtt raw_tcp(sys.home(), payload_bytes, raw_transport::tcp);
  sys.trust_own_client_key();
  connect_options how;
  how.home = sys.home();
  how.tcp_only = true;
  auto c = client::connect("127.0.0.1:" + std::to_string(sys.port()), how);
  if (!c) throw bench_error("client over tcp: " + c.err().message);
  const address ponger = sys.spawn("Ponger", pk.pkg_b);
  const pid_t ponger_pid = sys.worker_pid(pk.pkg_b);
  const json payload = std::string(payload_bytes - 2, 'x');  // 64 bytes of JSON text
  auto run = [&](std::size_t n) {
    std::vector<double> us;
    us.reserve(n);
    const std::string target = ponger.to_string();
    for (std::size_t i = 0; i < n; ++i) {
      const auto t0 = now_ns();
      auto r = c->ask(target, payload, std::chrono::seconds(5), "p");
      const auto t1 = now_ns();
      if (!r) throw bench_error("client ask failed: " + r.err().message);
      us.push_back(static_cast<double>(t1 - t0) / 1000.0);
    }
    return median(us);
  };
  const std::vector<int> cpus = allowed_cpus();
  std::vector<placement> placements;
  if (!cpus.empty()) placements.push_back(placement::same_cpu);
  if (cpus.size() >= 2)
    placements.push_back(placement::split_cpu);
  else
    unavailable.push_back({"client_ask_rtt_p50_split_cpu", "us", "this process may use one CPU only"});
  // Same CPU: everything on the first. Split: the client (this process) on
  // the first, the system, its worker and the raw echo children on the second.
  auto place = [&](std::optional<placement> p) {
    const int first = p ? cpus[0] : -1;
    const int second = !p ? -1 : *p == placement::same_cpu ? cpus[0] : cpus[1];
    pin_process(::getpid(), first, cpus);
    pin_process(sys.system_pid(), second, cpus);
    pin_process(ponger_pid, second, cpus);
    pin_process(raw_ipc.child_pid(), second, cpus);
    pin_process(raw_tcp.child_pid(), second, cpus);
  };
  (void)run(200);  // warm-up: connection, route
  struct series {
    std::vector<double> t, b;
  };
  std::vector<series> got(placements.size());
  for (int i = 0; i < z.reps; ++i)
    for (std::size_t k = 0; k < placements.size(); ++k) {
      place(placements[k]);
      const double b = raw_tcp.run(z.rtt_samples).p50_us + raw_ipc.run(z.rtt_samples).p50_us;
      got[k].b.push_back(b);
      got[k].t.push_back(run(z.rtt_samples));
    }
  place(std::nullopt);
  for (std::size_t k = 0; k < placements.size(); ++k) {
    const std::string where = placements[k] == placement::same_cpu ? "all on one CPU" : "client and system on two CPUs";
    figure f{
        std::string("client_ask_rtt_p50") + suffix(placements[k]),        median(got[k].t),   "us", median(got[k].b),
        "raw ZeroMQ tcp + raw ipc PUSH/PULL round trips, 64 B, " + where, "<= 1.3x baseline", {}};
    f.met = f.ratio() <= 1.3;
    f.samples = got[k].t;
    f.baseline_samples = got[k].b;
    out.push_back(f);
  }
}

/// N tells from blaster to sink, timed from the first send (in the blaster)
/// to the arrival of the N-th (in the sink); msg/s.
double blast(live_system& sys, address blaster, address sink, std::uint64_t n) {
  sys.ask(sink, json{{"op", "reset"}, {"expect", n}});
  sys.ask(
      blaster,
      json{{"op", "blast"}, {"target", sink.value()}, {"n", n}, {"chunk", chunk}, {"payload_bytes", payload_bytes}});
  json s = sys.poll(
      sink, json{{"op", "stats"}}, [n](const json& j) { return j.value("count", std::uint64_t{0}) >= n; }, 120s, 20ms);
  json b = sys.ask(blaster, json{{"op", "result"}});
  const auto first = b.value("first_ns", std::int64_t{0});
  const auto last = s.value("last_ns", std::int64_t{0});
  if (last <= first) throw bench_error("blast: bad timestamps " + b.dump() + " " + s.dump());
  return static_cast<double>(n) * 1e9 / static_cast<double>(last - first);
}

/// A second system, started `troupe start --delivery best-effort` (no acks,
/// no retention), with the bench package loaded twice as on the first: the
/// baseline of no_loss_throughput. When it cannot be started (a troupe
/// without the option refuses it), sys is null and `missing` says why.
struct best_effort_system {
  std::unique_ptr<live_system> sys;
  cross_worker pk;
  std::string missing;
};

best_effort_system start_best_effort(const std::string& troupe_exe) {
  best_effort_system be{std::make_unique<live_system>(troupe_exe), {}, {}};
  try {
    be.sys->start({"--delivery", "best-effort"});
    const bench_packages packages(be.sys->home(), TROUPE_BENCH_PACKAGE);
    be.pk = {be.sys->load(packages.bench("1.0.0")), be.sys->load(packages.bench("2.0.0"))};
  } catch (const bench_error& e) {
    be.missing = e.what();
    be.sys.reset();  // stops it
  }
  return be;
}

void measure_throughput(live_system& sys, const cross_worker& pk, best_effort_system& be, const sizes& z,
                        std::vector<figure>& out, std::vector<unavailable_figure>& unavailable) {
  say("cross-worker throughput vs raw ZeroMQ ipc one-way" +
      std::string(be.sys ? ", and vs the same on a best-effort system" : ""));
  const address blaster = sys.spawn("Blaster", pk.pkg_a);
  const address sink_b = sys.spawn("Ponger", pk.pkg_b);
  const address sink_a = sys.spawn("Ponger", pk.pkg_a);
  address be_blaster, be_sink;
  if (be.sys) {
    be_blaster = be.sys->spawn("Blaster", be.pk.pkg_a);
    be_sink = be.sys->spawn("Ponger", be.pk.pkg_b);
    (void)blast(*be.sys, be_blaster, be_sink, 20000);  // warm-up
  }
  raw_zmq_oneway raw_sink(sys.home(), z.raw_msgs, z.reps, payload_bytes);
  (void)blast(sys, blaster, sink_b, 20000);  // warm-up
  // Interleaved, so that the load of the shared machine weighs on all three
  // alike; the two systems take turns going first.
  std::vector<double> cross, raw, best_effort;
  for (int i = 0; i < z.reps; ++i) {
    raw.push_back(raw_sink.run());
    if (be.sys && i % 2 == 1) best_effort.push_back(blast(*be.sys, be_blaster, be_sink, z.cross_msgs));
    cross.push_back(blast(sys, blaster, sink_b, z.cross_msgs));
    if (be.sys && i % 2 == 0) best_effort.push_back(blast(*be.sys, be_blaster, be_sink, z.cross_msgs));
  }
  figure f{"cross_worker_throughput",
           median(cross),
           "msg/s",
           median(raw),
           "raw ZeroMQ ipc PUSH/PULL one-way, 2 processes, 64 B",
           ">= 0.25x baseline",
           {}};
  f.met = f.ratio() >= 0.25;
  out.push_back(f);

  if (be.sys) {
    figure nl{"no_loss_throughput",
              median(cross),
              "msg/s",
              median(best_effort),
              "cross_worker_throughput on a system started --delivery best-effort (no acks, no "
              "retention), interleaved with the default (no-loss) system's runs",
              ">= 0.8x baseline",
              {}};
    nl.met = nl.ratio() >= 0.8;
    out.push_back(nl);
    std::string ratios;
    for (std::size_t i = 0; i < cross.size(); ++i) ratios += " " + fmt(cross[i] / best_effort[i]);
    say("  no-loss / best-effort by repetition:" + ratios);
  } else {
    unavailable.push_back({"no_loss_throughput", "msg/s", be.missing});
    say("  no_loss_throughput unavailable: " + be.missing);
  }

  say("in-worker tell throughput vs a plain in-process std::deque pass");
  (void)blast(sys, blaster, sink_a, 20000);
  std::vector<double> local, plain;
  for (int i = 0; i < z.reps; ++i) {
    plain.push_back(deque_pass_rate(z.local_msgs, chunk));
    local.push_back(blast(sys, blaster, sink_a, z.local_msgs));
  }
  figure g{"in_worker_tell",
           median(local),
           "msg/s",
           median(plain),
           "plain std::deque pass in one process (64 B inline payload, virtual call)",
           ">= 3e6 msg/s",
           {}};
  g.met = g.value >= 3e6;
  out.push_back(g);
}

/// A thread that GETs http://127.0.0.1:PORT/metrics every period while
/// active, as a Prometheus would (more often than its usual 15 s), until
/// destroyed. Inactive, it scrapes nothing: the system without metrics is
/// measured without another system's scrapes beside it.
class scraper {
 public:
  scraper(std::uint16_t port, std::chrono::milliseconds period)
      : thread_([this, port, period] {
          std::unique_lock lock(mutex_);
          while (!stop_) {
            if (active_) {
              lock.unlock();
              if (scrape_once(port)) ++scrapes_;
              lock.lock();
            }
            wake_.wait_for(lock, period, [this] { return stop_; });
          }
        }) {}
  ~scraper() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  /// Scrapes (at once, then every period) or stops scraping.
  void active(bool on) {
    {
      std::lock_guard lock(mutex_);
      active_ = on;
    }
    if (on) wake_.notify_one();
  }
  [[nodiscard]] int scrapes() const { return scrapes_.load(); }

 private:
  static bool scrape_once(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const timeval bound{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
      if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[65536];
        std::string head;
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
          if (head.size() < 16) head.append(buf, static_cast<std::size_t>(n));
        ok = head.rfind("HTTP/1.1 200", 0) == 0;
      }
    }
    ::close(fd);
    return ok;
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool active_ = false;
  std::atomic<int> scrapes_{0};
  std::thread thread_;
};

/// metrics_on_*: the cross-worker figures of a system started --metrics
/// (and --metrics-actors for the actors measured) and scraped every second,
/// beside the same on a system started alike without it, in both placements
/// of measure_rtt (all on one CPU; the two ends on two CPUs), repetitions
/// interleaved (placement by placement, the two systems taking turns to go
/// first) so that the machine's load weighs on both alike. TROUPE_BENCH_AA=1
/// starts neither with --metrics: the spread between two systems of one
/// configuration, to read the figures against.
void measure_metrics_cost(const std::string& troupe_exe, const sizes& z, std::vector<figure>& out,
                          std::vector<unavailable_figure>& unavailable) {
  say("cross-worker ask round trip and throughput with --metrics (scraped every 1 s) vs without, on one CPU and on "
      "two");
  const std::vector<int> cpus = allowed_cpus();
  std::vector<std::optional<placement>> placements;
  if (!cpus.empty()) placements.push_back(placement::same_cpu);
  if (cpus.size() >= 2) placements.push_back(placement::split_cpu);
  if (placements.empty()) placements.push_back(std::nullopt);
  auto names = [](const std::optional<placement>& p) {
    const std::string sfx = p ? suffix(*p) : "";
    return std::pair<std::string, std::string>{"metrics_on_ask_rtt_p50" + sfx, "metrics_on_throughput" + sfx};
  };
  live_system off(troupe_exe);
  live_system on(troupe_exe);
  const std::uint16_t metrics_port = free_port();
  const bool aa = std::getenv("TROUPE_BENCH_AA") != nullptr;
  try {
    off.start();
    if (aa)
      on.start();
    else
      on.start({"--metrics", std::to_string(metrics_port), "--metrics-actors", "bench-*"});
  } catch (const bench_error& e) {
    for (const auto& p : placements) {
      unavailable.push_back({names(p).first, "us", e.what()});
      unavailable.push_back({names(p).second, "msg/s", e.what()});
    }
    say(std::string("  unavailable: ") + e.what());
    return;
  }
  const bench_packages packages(on.home(), TROUPE_BENCH_PACKAGE);
  const cross_worker pk_on{on.load(packages.bench("1.0.0")), on.load(packages.bench("2.0.0"))};
  const bench_packages packages_off(off.home(), TROUPE_BENCH_PACKAGE);
  const cross_worker pk_off{off.load(packages_off.bench("1.0.0")), off.load(packages_off.bench("2.0.0"))};
  struct side {
    live_system& sys;
    address pinger, ponger, blaster, sink;
    pid_t pid_a = -1, pid_b = -1;
    double us_per_ask = 100;
    std::vector<std::vector<double>> p50 = {}, tput = {};  // by placement
  };
  auto make_side = [&placements](live_system& sys, const cross_worker& pk) {
    // Global names on both systems: on the metrics one they have per-actor
    // series (--metrics-actors bench-*, read from their workers every second).
    side s{sys, sys.spawn("Pinger", pk.pkg_a, "bench-pinger"), sys.spawn("Ponger", pk.pkg_b, "bench-ponger"),
           sys.spawn("Blaster", pk.pkg_a, "bench-blaster"), sys.spawn("Ponger", pk.pkg_b, "bench-sink")};
    s.pid_a = sys.worker_pid(pk.pkg_a);
    s.pid_b = sys.worker_pid(pk.pkg_b);
    s.p50.resize(placements.size());
    s.tput.resize(placements.size());
    return s;
  };
  side sides[2] = {make_side(off, pk_off), make_side(on, pk_on)};
  // Both systems' processes and this driver (with the scraper thread), as
  // measure_rtt places them: the initiating side on the first CPU, the
  // answering side on the first (same_cpu) or the second (split_cpu).
  auto place = [&](const std::optional<placement>& p) {
    const int first = p ? cpus[0] : -1;
    const int second = !p ? -1 : *p == placement::same_cpu ? cpus[0] : cpus[1];
    pin_process(::getpid(), first, cpus);
    for (auto& s : sides) {
      pin_process(s.sys.system_pid(), first, cpus);
      pin_process(s.pid_a, first, cpus);
      pin_process(s.pid_b, second, cpus);
    }
  };
  auto rtt = [](side& s, std::size_t n) {
    const auto t0 = now_ns();
    s.sys.ask(s.pinger, json{{"op", "run"}, {"target", s.ponger.value()}, {"n", n}, {"payload_bytes", payload_bytes}});
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<std::int64_t>(0.9 * s.us_per_ask * n)));
    json r = s.sys.poll(
        s.pinger, json{{"op", "result"}}, [](const json& j) { return j.value("done", false); }, 60s, 10ms);
    s.us_per_ask = static_cast<double>(now_ns() - t0) / 1000.0 / static_cast<double>(n);
    if (r.value("failures", 0) != 0) throw bench_error("cross-worker asks failed: " + r.dump());
    return r.value("p50_us", 0.0);
  };
  for (auto& s : sides) {
    (void)rtt(s, 500);  // warm-up
    (void)blast(s.sys, s.blaster, s.sink, 20000);
  }
  scraper scrape(metrics_port, std::chrono::seconds(1));
  for (int i = 0; i < z.reps; ++i)
    for (std::size_t k = 0; k < placements.size(); ++k) {
      place(placements[k]);
      // After a move to other CPUs the first run is slower (caches, wake-up
      // paths): both systems warm up there before either is measured.
      for (auto& s : sides) {
        (void)rtt(s, 200);
        (void)blast(s.sys, s.blaster, s.sink, 20000);
      }
      for (int j = 0; j < 2; ++j) {
        const int which = (i + j) % 2;  // each goes first every other time
        side& s = sides[which];
        scrape.active(which == 1 && !aa);
        s.p50[k].push_back(rtt(s, z.rtt_samples));
        s.tput[k].push_back(blast(s.sys, s.blaster, s.sink, z.cross_msgs));
      }
      scrape.active(false);
    }
  place(std::nullopt);
  say("  " + std::to_string(scrape.scrapes()) + " scrapes of /metrics during the runs");
  if (scrape.scrapes() == 0 && !aa) throw bench_error("the metrics system was never scraped");
  for (std::size_t k = 0; k < placements.size(); ++k) {
    const auto [p50_name, tp_name] = names(placements[k]);
    const std::string where = !placements[k]                          ? "unpinned"
                              : *placements[k] == placement::same_cpu ? "all on one CPU"
                                                                      : "the two ends on two CPUs";
    figure p50{p50_name,
               median(sides[1].p50[k]),
               "us",
               median(sides[0].p50[k]),
               "cross_worker_ask_rtt_p50 without --metrics, " + where + ", interleaved",
               "<= 1.03x baseline",
               {}};
    p50.met = p50.ratio() <= 1.03;
    p50.samples = sides[1].p50[k];
    p50.baseline_samples = sides[0].p50[k];
    out.push_back(p50);
    figure tp{tp_name,
              median(sides[1].tput[k]),
              "msg/s",
              median(sides[0].tput[k]),
              "cross_worker_throughput without --metrics, " + where + ", interleaved",
              ">= 0.97x baseline",
              {}};
    tp.met = tp.ratio() >= 0.97;
    tp.samples = sides[1].tput[k];
    tp.baseline_samples = sides[0].tput[k];
    out.push_back(tp);
    std::string ask_ratios, tp_ratios;
    for (std::size_t i = 0; i < sides[0].tput[k].size(); ++i) {
      ask_ratios += " " + fmt(sides[1].p50[k][i] / sides[0].p50[k][i]);
      tp_ratios += " " + fmt(sides[1].tput[k][i] / sides[0].tput[k][i]);
    }
    say("  " + where + ": ask p50 on/off by repetition:" + ask_ratios + "; throughput on/off:" + tp_ratios);
    say("  " + where + ": ask p50 ratio " + fmt(p50.ratio()) + " (target <= 1.03), throughput ratio " +
        fmt(tp.ratio()) + " (target >= 0.97)");
  }
  on.stop();
  off.stop();
}

/// restart_after_sigkill: SIGKILL of the worker of an actor whose policy
/// restarts it at once, until the actor answers an ask again, beside a bare
/// parent noticing its child's SIGKILL and starting a new one
/// (bare_notice_spawn), interleaved sample by sample.
void measure_restart(live_system& sys, const bench_packages& pk, const sizes& z, const std::string& ready_exe,
                     std::vector<figure>& out) {
  say("SIGKILL of a worker to its actor answering again vs a bare notice + fork+exec");
  const std::string id = sys.load(pk.phoenix());
  const address phoenix = sys.spawn("Idle", id);
  (void)sys.ask(phoenix, json{{"op", "ping"}});
  std::vector<double> restart_ms, bare_ms;
  int failed_asks = 0;
  for (int i = 0; i <= z.restart_kills; ++i) {  // sample 0 is a warm-up
    const double bare = bare_notice_respawn_ms(ready_exe, 1).front();
    const pid_t pid = sys.worker_pid(id);
    process_watch watch(pid);
    const auto t0 = now_ns();
    sys.kill_worker(pid);
    // The first ask goes once the worker is gone: sent earlier, it could die
    // in the dying worker's socket buffer (delivery there is at most once,
    // docs/PROTOCOL.md §8) and cost an ask timeout. Then the system holds it
    // while the actor restarts; one that reaches the new worker before the
    // actor is back comes back failed, and is sent again.
    watch.wait_exit();
    for (;;) {
      auto r = sys.try_ask(phoenix, json{{"op", "ping"}}, 1s);
      if (r) break;
      ++failed_asks;
      if (now_ns() - t0 > 10'000'000'000)
        throw bench_error("actor in killed worker " + std::to_string(pid) +
                          " does not answer 10 s later: " + r.err().message);
    }
    const double restart = static_cast<double>(now_ns() - t0) / 1e6;
    if (i > 0) {
      restart_ms.push_back(restart);
      bare_ms.push_back(bare);
    }
  }
  sys.unload(id);
  say("  " + std::to_string(z.restart_kills) + " kills; " + std::to_string(failed_asks) +
      " asks failed during a restart and were sent again");
  const std::string base =
      "bare_notice_spawn: a parent SIGKILLs its child, notices (pidfd + poll), reaps it and "
      "fork+execs troupe-bench-ready (libzmq context + socket) until it writes 'ready' on a pipe";
  figure p50{"restart_after_sigkill_p50",
             percentile(restart_ms, 0.5),
             "ms",
             percentile(bare_ms, 0.5),
             base,
             "<=6ms, <=2.5x base",
             {}};
  p50.met = p50.value <= 6 && p50.ratio() <= 2.5;
  out.push_back(p50);
  out.push_back({"restart_after_sigkill_p99",
                 percentile(restart_ms, 0.99),
                 "ms",
                 percentile(bare_ms, 0.99),
                 base + " (p99)",
                 "-",
                 {}});
}

void measure_ring(live_system& sys, const cross_worker& pk, const sizes& z, std::vector<figure>& out) {
  say("ring of " + std::to_string(z.ring_nodes) + " actors vs a ring of plain objects");
  const address ring = sys.spawn("Ring", pk.pkg_a);
  sys.ask(ring, json{{"op", "build"}, {"n", z.ring_nodes}});
  json built = sys.poll(
      ring, json{{"op", "result"}}, [](const json& j) { return j.value("state", std::string()) == "ready"; }, 120s,
      50ms);
  say("  ring built in " + fmt(built.value("build_ms", 0.0)) + " ms (" +
      std::to_string(built.value("spawn_retries", 0)) + " spawn retries for address leases)");
  std::vector<double> hop, plain;
  for (int i = 0; i < z.ring_reps; ++i) {
    plain.push_back(plain_ring_ns_per_hop(z.ring_nodes, z.ring_laps) / 1000.0);
    sys.ask(ring, json{{"op", "run"}, {"laps", z.ring_laps}});
    json r = sys.poll(
        ring, json{{"op", "result"}}, [](const json& j) { return j.contains("per_hop_ns"); }, 120s, 50ms);
    hop.push_back(r.value("per_hop_ns", 0.0) / 1000.0);
  }
  figure f{"ring_hop",  median(hop), "us", median(plain), "ring of plain C++ objects through a std::deque, one process",
           "<= 0.4 us", {}};
  f.met = f.value <= 0.4;
  out.push_back(f);
}

void measure_spawn_and_memory(live_system& sys, const bench_packages& pk, const sizes& z, const std::string& ready_exe,
                              std::vector<figure>& out) {
  say("a new package version serving (load + spawn + first ask) vs a bare fork+exec of a program "
      "linked to libzmq");
  std::vector<double> bare;
  (void)bare_fork_exec_ms(ready_exe);
  for (int i = 0; i < z.spawn_samples + 2; ++i) bare.push_back(bare_fork_exec_ms(ready_exe));

  std::vector<double> spawn_ready, load_only, spawn_only, first_ask, warm_ask;
  std::string last_id;
  address last_spawner;
  auto ms = [](std::int64_t a, std::int64_t b) { return static_cast<double>(b - a) / 1e6; };
  for (int i = 0; i <= z.spawn_samples; ++i) {  // sample 0 is a warm-up
    const std::string file = pk.fresh(i);       // untimed: packed before the operator loads it
    sys.wait_settled();
    const auto t0 = now_ns();
    const std::string id = sys.load(file);  // starts the worker; answered once it registered
    const auto t1 = now_ns();
    const address a = sys.spawn("Spawner", id);  // answered once the actor exists
    const auto t2 = now_ns();
    sys.ask(a, json{{"op", "ping"}});
    const auto t3 = now_ns();
    sys.ask(a, json{{"op", "ping"}});
    const auto t4 = now_ns();
    (void)sys.worker_pid(id);
    if (i > 0) {
      load_only.push_back(ms(t0, t1));
      spawn_only.push_back(ms(t1, t2));
      spawn_ready.push_back(ms(t0, t3));
      first_ask.push_back(ms(t2, t3));
      warm_ask.push_back(ms(t3, t4));
    }
    // Untimed: the previous version goes, as when an operator rolls versions;
    // this keeps the worker count and the package directory (keep: 3) steady.
    if (!last_id.empty()) sys.unload(last_id);
    last_id = id;
    last_spawner = a;
  }
  std::size_t scanned = 0;
  const double scan = store_scan_ms(sys.home(), scanned);
  say("  medians: load " + fmt(median(load_only)) + " ms, spawn call " + fmt(median(spawn_only)) + " ms, first ask " +
      fmt(median(first_ask)) + " ms, a second ask " + fmt(median(warm_ask)) + " ms; verifying the " +
      std::to_string(scanned) +
      " archives of the package directory (what avail and refresh do; a load does not) takes " + fmt(scan) + " ms");
  figure f{"worker_spawn_ready",
           median(spawn_ready),
           "ms",
           median(bare),
           "fork+exec of troupe-bench-ready (libzmq context + socket, 'ready' on a pipe); "
           "troupe's figure is load (which starts the worker) + spawn + first ask",
           "<= 1.5x baseline",
           {}};
  f.met = f.ratio() <= 1.5;
  out.push_back(f);

  say("memory per idle actor (" + std::to_string(z.idle_actors) + " actors in a fresh worker)");
  const pid_t worker = sys.worker_pid(last_id);
  std::this_thread::sleep_for(200ms);
  const auto w0 = rss_bytes(worker);
  const auto s0 = rss_bytes(sys.system_pid());
  sys.ask(last_spawner, json{{"op", "spawn"}, {"n", z.idle_actors}, {"type", "Idle"}});
  json r = sys.poll(
      last_spawner, json{{"op", "result"}}, [](const json& j) { return j.value("state", std::string()) == "done"; },
      120s, 50ms);
  std::this_thread::sleep_for(200ms);
  const auto w1 = rss_bytes(worker);
  const auto s1 = rss_bytes(sys.system_pid());
  if (w0 == 0 || w1 == 0) throw bench_error("cannot read VmRSS of worker " + std::to_string(worker));
  const double per_actor = static_cast<double>(w1 - w0) / static_cast<double>(z.idle_actors);
  say("  spawned in " + fmt(r.value("elapsed_ms", 0.0)) + " ms; supervisor grew by " +
      fmt(static_cast<double>(s1 - s0) / static_cast<double>(z.idle_actors)) + " bytes per actor");
  figure m{"actor_memory",
           per_actor,
           "bytes",
           plain_actor_bytes(z.idle_actors),
           "troupe::actor objects + an unordered_map slot each, plain process",
           "<= 1024 bytes",
           {}};
  m.met = m.value <= 1024;
  out.push_back(m);
}

// ---------------------------------------------------------------- output

void print_table(const std::vector<figure>& figs, const std::vector<unavailable_figure>& unavailable) {
  std::printf("\n%-36s %12s %-6s %12s %9s  %-18s %s\n", "name", "value", "unit", "baseline", "ratio", "target", "");
  for (const auto& f : figs) {
    const bool based = f.baseline != 0;
    std::printf("%-36s %12s %-6s %12s %9s  %-18s %s\n", f.name.c_str(), fmt(f.value).c_str(), f.unit.c_str(),
                based ? fmt(f.baseline).c_str() : "-", based ? fmt(f.ratio()).c_str() : "-", f.target.c_str(),
                !f.met   ? ""
                : *f.met ? "met"
                         : "MISSED");
  }
  for (const auto& u : unavailable) std::printf("%-36s unavailable: %s\n", u.name.c_str(), u.why.c_str());
  std::printf("\nbaselines (measured in this run):\n");
  for (const auto& f : figs) {
    std::printf("  %-36s %s\n", f.name.c_str(), f.baseline_is.c_str());
    if (!f.note.empty()) std::printf("  %-36s (%s)\n", "", f.note.c_str());
  }
  std::fflush(stdout);
}

void write_json(const std::vector<figure>& figs, const std::vector<unavailable_figure>& unavailable,
                const std::string& file) {
  json out = json::array();
  for (const auto& f : figs) {
    json j{{"name", f.name}, {"value", f.value}, {"unit", f.unit}, {"baseline", f.baseline}, {"ratio", f.ratio()}};
    if (!f.samples.empty()) j["samples"] = f.samples;
    if (!f.baseline_samples.empty()) j["baseline_samples"] = f.baseline_samples;
    if (!f.note.empty()) j["note"] = f.note;
    out.push_back(j);
  }
  for (const auto& u : unavailable)
    out.push_back(json{{"name", u.name},
                       {"value", nullptr},
                       {"unit", u.unit},
                       {"baseline", nullptr},
                       {"ratio", nullptr},
                       {"unavailable", u.why}});
  std::ofstream o(file);
  o << out.dump(2) << "\n";
  if (!o) throw bench_error("cannot write " + file);
}

int usage() {
  std::cerr << "usage: troupe-bench [--out FILE] [--quick] [--reps N]\n"
               "                    [--crash-only | --metrics-only | --load-only | --client-only | --python-only |\n"
               "                     --convention-only | --scale-only]\n"
               "  measures troupe against baselines of the same run (docs/PERFORMANCE.md)\n"
               "  --reps N: repetitions of the throughput and round-trip figures (default 7, --quick 2) and of the\n"
               "            scale figures (default 3, --quick 1)\n"
               "  --crash-only: crash_restart_answering alone\n"
               "  --load-only: the package_load_* and verification figures alone\n"
               "  --client-only: client_ask_rtt_p50 alone\n"
               "  --metrics-only: the metrics_on_* rows alone (both placements)\n"
               "  --python-only: the python_* figures alone (bench/python_bench.py)\n"
               "  --convention-only: the built-in convention's figures alone (cross_system_...)\n"
               "  --scale-only: the scale_* figures alone (100,000 actors; --quick: 20,000)\n";
  return 64;
}

int run(int argc, char** argv) {
  std::string out_file;
  bool quick = false;
  bool crash_only = false;
  bool metrics_only = false;
  bool load_only = false;
  bool client_only = false;
  bool python_only = false;
  bool convention_only = false;
  bool scale_only = false;
  int reps = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc)
      out_file = argv[++i];
    else if (a == "--quick")
      quick = true;
    else if (a == "--crash-only")
      crash_only = true;
    else if (a == "--metrics-only")
      metrics_only = true;
    else if (a == "--load-only")
      load_only = true;
    else if (a == "--client-only")
      client_only = true;
    else if (a == "--python-only")
      python_only = true;
    else if (a == "--convention-only")
      convention_only = true;
    else if (a == "--scale-only")
      scale_only = true;
    else if (a == "--reps" && i + 1 < argc && std::atoi(argv[i + 1]) > 0 && std::atoi(argv[i + 1]) <= 1000)
      reps = std::atoi(argv[++i]);
    else if (a == "--help" || a == "-h")
      return usage(), 0;
    else
      return usage();
  }
  sizes z;
  if (quick) {
    z.rtt_samples = 500;
    z.reps = 2;
    z.raw_msgs = 100000;
    z.cross_msgs = 50000;
    z.local_msgs = 100000;
    z.ring_nodes = 2000;
    z.ring_laps = 20;
    z.ring_reps = 1;
    z.idle_actors = 2000;
    z.spawn_samples = 2;
    z.load_samples = 2;
    z.signature_calls = 200;
    z.archive_samples = 3;
    z.restart_kills = 5;
    z.crash_samples = 2;
    z.convention.rtt_samples = 500;
    z.convention.rtt_reps = 2;
    z.convention.chgcap_samples = 3;
    z.convention.kill_samples = 2;
    z.convention.load_samples = 2;
    z.convention.blast_msgs = 50000;
    z.scale.actors = 20000;
    z.scale.reps = 1;
  }
  if (reps > 0) z.reps = reps;
  if (reps > 0) z.scale.reps = reps;
  const std::string bin = self_dir();
  const std::string ready_exe = bin + "/troupe-bench-ready";
  if (!fs::exists(ready_exe)) throw bench_error(ready_exe + " not found (build target troupe-bench-ready)");
  const std::string dlopen_exe = bin + "/troupe-bench-dlopen";
  if (!fs::exists(dlopen_exe)) throw bench_error(dlopen_exe + " not found (build target troupe-bench-dlopen)");

  const auto t_start = now_ns();
  std::vector<figure> figs;
  std::vector<unavailable_figure> unavailable;
  if (metrics_only) {
    measure_metrics_cost(bin + "/troupe", z, figs, unavailable);
    print_table(figs, unavailable);
    if (!out_file.empty()) write_json(figs, unavailable, out_file);
    return 0;
  }
  if (convention_only) {  // the built-in mode's convention figures alone (cross-system path)
    measure_convention(bin + "/troupe", TROUPE_BENCH_PACKAGE, ready_exe, z.convention, figs);
    print_table(figs, unavailable);
    if (!out_file.empty()) write_json(figs, unavailable, out_file);
    return 0;
  }
  const std::string build_dir = fs::path(bin).parent_path().string();
  if (python_only) {
    measure_python(build_dir, quick, figs, unavailable);
    print_table(figs, unavailable);
    if (!out_file.empty()) write_json(figs, unavailable, out_file);
    return 0;
  }
  if (scale_only) {
    measure_scale(bin + "/troupe", build_dir, z.scale, figs);
    print_table(figs, unavailable);
    if (!out_file.empty()) write_json(figs, unavailable, out_file);
    return 0;
  }
  if (crash_only) {
    measure_crash_restart(bin + "/troupe", TROUPE_BENCH_PACKAGE, z.crash_samples, z.crash_actors, figs);
    print_table(figs, unavailable);
    if (!out_file.empty()) write_json(figs, unavailable, out_file);
    return 0;
  }
  if (client_only) {
    live_system sys(bin + "/troupe");
    sys.start();
    const bench_packages packages(sys.home(), TROUPE_BENCH_PACKAGE);
    cross_worker pk{sys.load(packages.bench("1.0.0")), sys.load(packages.bench("2.0.0"))};
    measure_client_ask(sys, pk, z, figs, unavailable);
    sys.stop();
    print_table(figs, unavailable);
    if (!out_file.empty()) write_json(figs, unavailable, out_file);
    return 0;
  }
  if (load_only) {
    live_system sys(bin + "/troupe");
    sys.start();
    const bench_packages packages(sys.home(), TROUPE_BENCH_PACKAGE);
    std::string big_archive;
    measure_package_load(sys, packages, z.load_samples, dlopen_exe, big_archive, figs);
    measure_package_load_sizes(sys, packages, z.load_samples, dlopen_exe, figs);
    measure_verification(sys.home(), big_archive, z.signature_calls, z.archive_samples, figs);
    sys.stop();
    print_table(figs, unavailable);
    if (!out_file.empty()) write_json(figs, unavailable, out_file);
    return 0;
  }
  {
    live_system sys(bin + "/troupe");
    sys.start();
    say("system up (pid " + std::to_string(sys.system_pid()) + ", home " + sys.home() + ")");
    const bench_packages packages(sys.home(), TROUPE_BENCH_PACKAGE);
    cross_worker pk{sys.load(packages.bench("1.0.0")), sys.load(packages.bench("2.0.0"))};
    measure_rtt(sys, pk, z, figs, unavailable);
    measure_client_ask(sys, pk, z, figs, unavailable);
    {
      best_effort_system be = start_best_effort(bin + "/troupe");
      measure_throughput(sys, pk, be, z, figs, unavailable);
    }  // the best-effort system stops here
    measure_ring(sys, pk, z, figs);
    measure_restart(sys, packages, z, ready_exe, figs);
    measure_spawn_and_memory(sys, packages, z, ready_exe, figs);
    std::string big_archive;
    measure_package_load(sys, packages, z.load_samples, dlopen_exe, big_archive, figs);
    measure_package_load_sizes(sys, packages, z.load_samples, dlopen_exe, figs);
    measure_verification(sys.home(), big_archive, z.signature_calls, z.archive_samples, figs);
    sys.stop();
  }
  measure_python(build_dir, quick, figs, unavailable);          // a system of its own
  measure_metrics_cost(bin + "/troupe", z, figs, unavailable);  // two systems of its own
  measure_crash_restart(bin + "/troupe", TROUPE_BENCH_PACKAGE, z.crash_samples, z.crash_actors, figs);
  measure_scale(bin + "/troupe", build_dir, z.scale, figs);  // a fresh system per repetition
  // Three systems of one convention and a lone one, after the first system
  // stopped; all stopped before this returns.
  measure_convention(bin + "/troupe", TROUPE_BENCH_PACKAGE, ready_exe, z.convention, figs);
  measure_convention_on_etcd(bin + "/troupe", TROUPE_BENCH_PACKAGE, ready_exe, z.convention, figs, unavailable);
  print_table(figs, unavailable);
  if (!out_file.empty()) {
    write_json(figs, unavailable, out_file);
    std::printf("\nwrote %s (%.1f s)\n", out_file.c_str(), static_cast<double>(now_ns() - t_start) / 1e9);
  }
  return 0;
}

}  // namespace
}  // namespace troupe::bench

int main(int argc, char** argv) {
  using namespace troupe::bench;
  try {
    if (argc >= 4 && std::strcmp(argv[1], "--zmq-echo") == 0) return zmq_echo_main(argv[2], argv[3]);
    if (argc >= 4 && std::strcmp(argv[1], "--zmq-echo-connect") == 0) return zmq_echo_main(argv[2], argv[3], true);
    if (argc >= 3 && std::strcmp(argv[1], "--plain-actors") == 0) return plain_actors_main(std::stoul(argv[2]));
    if (argc >= 3 && std::strcmp(argv[1], "--plain-table") == 0) return plain_table_main(std::stoul(argv[2]));
    if (argc >= 3 && std::strcmp(argv[1], "--zmq-router-echo") == 0) return zmq_router_echo_main(argv[2]);
    if (argc >= 6 && std::strcmp(argv[1], "--zmq-sink") == 0)
      return zmq_sink_main(argv[2], argv[3], std::stoull(argv[4]), std::stoi(argv[5]));
    if (argc >= 6 && std::strcmp(argv[1], "--zmq-sink-connect") == 0)
      return zmq_sink_main(argv[2], argv[3], std::stoull(argv[4]), std::stoi(argv[5]), true);
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "troupe-bench: " << e.what() << std::endl;
    return 1;
  }
}
