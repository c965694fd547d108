// bench/convention_figures.cpp — the figures of conventions (docs/PERFORMANCE.md,
// group "convention"): three systems of one convention sharing a TROUPE_HOME
// (leader L without capabilities, members M1 and M2 with bench_cap, M1 also
// side_a and M2 side_b), and a lone system for a baseline. Each figure is
// measured beside a baseline of the same run:
//
//   cross_system_ask_rtt     Pinger on M1 asks Ponger on M2 (placed there by
//                            side_a / side_b) vs a raw ZeroMQ tcp round trip
//   chgcap_to_answer         chgcap - bench_cap on the member hosting a Where,
//                            until it answers from the other one, vs a bare
//                            fork+exec
//   member_kill_to_answer    SIGKILL of the hosting member's supervisor, until
//                            the actor answers from the other one, vs the
//                            member timeout (1000 ms, troupe's default)
//   package_to_member_answer load on L + spawn (placed on a member, which
//                            fetches and verifies the archive) + first answer,
//                            vs the same archive loaded on a lone system
//
// Then the same convention on etcd (a real one-node etcd started here, tuned
// as the tests' is; every system with --etcd): figures named etcd_...
//
//   etcd_cross_system_ask_rtt as above, vs the built-in mode's figure of this
//                            run: coordination is not on the message path
//   etcd_chgcap_to_answer    as above (the capabilities go through etcd)
//   etcd_member_kill_to_answer  as above: the lease runs out, vs its TTL
//   etcd_leader_kill_to_serving SIGKILL of the elected leader, until both an
//                            actor it hosted answers from another system and
//                            a spawn works again, vs twice the TTL
//
// Every system started here is stopped (and what is left of it killed) when
// this function leaves, by failure too: they are owned by live_system objects
// whose destructors stop them, members before their leader.
#include "bench/bench.hpp"

#include <unistd.h>

#include "tests/etcd_cluster.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace troupe::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t payload_bytes = 64;
/// `troupe start`'s default member timeout (heartbeat 200 ms); the bench
/// passes neither option, so these are what the systems run with.
constexpr double default_member_timeout_ms = 1000;
constexpr double default_heartbeat_ms = 200;
constexpr const char* cap = "bench_cap";

double ms_between(std::int64_t a, std::int64_t b) { return static_cast<double>(b - a) / 1e6; }

/// CPU time (user + system) a process has used, ms; 0 when unreadable.
double cpu_ms(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 1));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i)  // utime and stime are fields 14 and 15
    if (i >= 14) ticks += std::stod(f);
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// A member's start arguments, kept for its restart after a kill.
struct member {
  std::unique_ptr<live_system> sys;
  std::vector<std::string> args;
  std::string name;  // "M1", "M2"
};

/// The three systems. Members are declared after the leader, so that they
/// are destroyed (stopped) first. On etcd, "leader" is the system started
/// first (so elected first); leadership moves when the bench kills it.
struct convention {
  std::unique_ptr<live_system> leader;
  member m1, m2;
  bool etcd = false;
  std::string prefix;                     // of the figures' names: "" or "etcd_"
  std::vector<std::string> coordination;  // every system's start arguments for it
  std::vector<std::string> leader_args;
  ~convention() {
    if (m2.sys) m2.sys->stop();
    if (m1.sys) m1.sys->stop();
    if (leader) leader->stop();
  }
};

std::string system_id_of(live_system& s) { return s.call("status", json::object(), 5s).value("system", std::string()); }

/// Waits until every member says it joined and the leader lists it up.
void wait_joined(live_system& leader, const std::vector<live_system*>& members) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  json last;
  for (;;) {
    bool all = true;
    std::set<std::string> ids;
    for (auto* m : members) {
      json st = m->call("status", json::object(), 5s);
      if (!st.value("joined", false)) all = false;
      ids.insert(st.value("system", std::string()));
    }
    if (all) {
      last = leader.call("systems", json::object(), 5s);
      std::size_t up = 0;
      for (const auto& s : last.value("systems", json::array()))
        if (ids.count(s.value("system", std::string())) && s.value("state", std::string()) == "up") ++up;
      if (up == members.size()) return;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw bench_error("convention members not joined after 15 s; the leader lists " + last.dump());
    std::this_thread::sleep_for(10ms);
  }
}

/// Waits until the leader knows whether the member with id has cap.
void wait_leader_sees_cap(live_system& leader, const std::string& id, bool has) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    json sys = leader.call("systems", json::object(), 5s);
    for (const auto& s : sys.value("systems", json::array()))
      if (s.value("system", std::string()) == id && s.value("capabilities", json::object()).contains(cap) == has)
        return;
    if (std::chrono::steady_clock::now() > deadline)
      throw bench_error("the leader does not see " + std::string(has ? "+" : "-") + cap + " on system " + id +
                        " after 5 s: " + sys.dump());
    std::this_thread::sleep_for(5ms);
  }
}

/// The pid of the worker of package_id on s (0 when it has none); tracks it
/// for clean-up.
pid_t worker_of(live_system& s, const std::string& package_id) {
  s.track_workers();
  json l = s.call("list", json::object(), 5s);
  for (const auto& p : l.value("packages", json::array()))
    if (p.value("id", std::string()) == package_id && p["worker_pid"].is_number()) return p["worker_pid"].get<pid_t>();
  return 0;
}

struct spawned {
  address addr;
  std::uint16_t port = 0;  // of the system it was placed on
};

/// `spawn TYPE` of package_id asked of via; the leader places it.
spawned spawn_via(live_system& via, const std::string& type, const std::string& package_id) {
  json r = via.call("spawn", json{{"type", type}, {"package", package_id}}, 20s);
  auto a = address::parse(r.value("address", std::string()));
  if (!a) throw bench_error("spawn " + type + ": no address in " + r.dump());
  spawned s{*a, 0};
  try {
    s.port = static_cast<std::uint16_t>(std::stoul(r.value("system", std::string("0"))));
  } catch (const std::exception&) {
    throw bench_error("spawn " + type + ": no system port in " + r.dump());
  }
  return s;
}

/// The pid a Where answered from, asking via s (one ask of timeout t).
result<pid_t> where_pid(live_system& s, address a, std::chrono::milliseconds t) {
  auto r = s.try_ask(a, json{{"op", "where"}}, t);
  if (!r) return r.err();
  if (!r->is_object() || !(*r)["pid"].is_number()) return make_error(errc::protocol, "Where answered " + r->dump());
  return (*r)["pid"].get<pid_t>();
}

/// Asks the Where at a via s until it answers from a pid other than old:
/// returns that pid. Asks answered from old (the actor not moved yet) and
/// failed asks are counted. Throws after 15 s.
pid_t ask_until_moved(live_system& s, address a, pid_t old, int& stale, int& failed, std::int64_t t0) {
  for (;;) {
    auto r = where_pid(s, a, 5s);
    if (r && *r != old) return *r;
    if (r)
      ++stale;
    else
      ++failed;
    if (now_ns() - t0 > 15'000'000'000)
      throw bench_error("actor " + a.to_string() + " does not answer from another system 15 s later: " +
                        (r ? "still from pid " + std::to_string(*r) : r.err().message));
  }
}

// ---------------------------------------------------------------- figures

/// n tells from blaster to sink (through L): msg/s from the first send to the n-th arrival.
double blast_rate(live_system& L, address blaster, address sink, std::uint64_t n) {
  constexpr std::uint64_t chunk = 1000;
  L.ask(sink, json{{"op", "reset"}, {"expect", n}});
  L.ask(blaster,
        json{{"op", "blast"}, {"target", sink.value()}, {"n", n}, {"chunk", chunk}, {"payload_bytes", payload_bytes}});
  json s = L.poll(
      sink, json{{"op", "stats"}}, [n](const json& j) { return j.value("count", std::uint64_t{0}) >= n; }, 120s, 20ms);
  json b = L.ask(blaster, json{{"op", "result"}});
  const auto first = b.value("first_ns", std::int64_t{0});
  const auto last = s.value("last_ns", std::int64_t{0});
  if (last <= first) throw bench_error("cross-system blast: bad timestamps " + b.dump() + " " + s.dump());
  return static_cast<double>(n) * 1e9 / static_cast<double>(last - first);
}

/// Blaster on M1 tells a Ponger on M2, vs raw ZeroMQ tcp one-way, interleaved.
void measure_cross_system_throughput(convention& c, const std::string& package_id, const convention_sizes& z,
                                     std::vector<figure>& out) {
  say("cross-system tell throughput (Blaster on M1, Ponger on M2) vs raw ZeroMQ tcp one-way");
  live_system& L = *c.leader;
  const spawned blaster = spawn_via(L, "Blaster", package_id);
  const spawned sink = spawn_via(L, "Ponger", package_id);
  // Unpinned, all on one CPU, the two sides on two CPUs (as the round trip),
  // repetitions interleaved across the three.
  const std::vector<int> cpus = allowed_cpus();
  std::vector<std::optional<placement>> placements{std::nullopt};
  if (!cpus.empty()) placements.push_back(placement::same_cpu);
  if (cpus.size() >= 2) placements.push_back(placement::split_cpu);
  const int reps = z.rtt_reps * static_cast<int>(placements.size());
  raw_zmq_oneway raw(L.home(), z.blast_msgs, reps, payload_bytes, raw_transport::tcp);
  (void)blast_rate(L, blaster.addr, sink.addr, 20000);  // warm-up: routes, links
  const pid_t sender_pid = worker_of(*c.m1.sys, package_id);
  const pid_t sink_pid = worker_of(*c.m2.sys, package_id);
  auto place = [&](std::optional<placement> p) {
    const int first = p ? cpus[0] : -1;
    const int second = !p ? -1 : *p == placement::same_cpu ? cpus[0] : cpus[1];
    for (pid_t pid : {::getpid(), L.system_pid(), c.m1.sys->system_pid(), sender_pid}) pin_process(pid, first, cpus);
    for (pid_t pid : {c.m2.sys->system_pid(), sink_pid, raw.child_pid()}) pin_process(pid, second, cpus);
  };
  std::vector<std::vector<double>> t(placements.size()), b(placements.size());
  for (int i = 0; i < z.rtt_reps; ++i)
    for (std::size_t k = 0; k < placements.size(); ++k) {
      place(placements[k]);
      b[k].push_back(raw.run());
      t[k].push_back(blast_rate(L, blaster.addr, sink.addr, z.blast_msgs));
    }
  place(std::nullopt);
  for (std::size_t k = 0; k < placements.size(); ++k) {
    std::string reps_text;
    for (std::size_t i = 0; i < t[k].size(); ++i) reps_text += " " + fmt(t[k][i] / b[k][i]);
    const std::string sfx = placements[k] ? suffix(*placements[k]) : "";
    say("  ratio by repetition" + sfx + ":" + reps_text);
    figure f{"cross_system_throughput" + sfx,
             median(t[k]),
             "msg/s",
             median(b[k]),
             "raw ZeroMQ tcp://127.0.0.1 PUSH/PULL one-way, 2 processes, 64 B" +
                 std::string(!placements[k]                          ? ""
                             : *placements[k] == placement::same_cpu ? ", all on one CPU"
                                                                     : ", the two sides on two CPUs"),
             ">= 0.5x baseline",
             {}};
    f.met = f.ratio() >= 0.5;
    f.samples = t[k];
    f.baseline_samples = b[k];
    out.push_back(f);
  }
  (void)L.call("kill", json{{"target", blaster.addr.to_string()}}, 10s);
  (void)L.call("kill", json{{"target", sink.addr.to_string()}}, 10s);
}

void measure_cross_system_rtt(convention& c, const std::string& package_id, const convention_sizes& z,
                              std::vector<figure>& out) {
  say(std::string(c.etcd ? "etcd: " : "") + "cross-system ask round trip (Pinger on M1, Ponger on M2) vs " +
      (c.etcd ? "the built-in mode's of this run" : "raw ZeroMQ tcp round trip"));
  live_system& L = *c.leader;
  raw_zmq_rtt raw(L.home(), payload_bytes, raw_transport::tcp);
  const spawned pinger = spawn_via(L, "Pinger", package_id);
  const spawned ponger = spawn_via(L, "Ponger", package_id);
  if (pinger.port != c.m1.sys->port() || ponger.port != c.m2.sys->port())
    throw bench_error("Pinger placed on " + std::to_string(pinger.port) + " and Ponger on " +
                      std::to_string(ponger.port) + ", expected M1 " + std::to_string(c.m1.sys->port()) + " and M2 " +
                      std::to_string(c.m2.sys->port()));
  const pid_t pinger_pid = worker_of(*c.m1.sys, package_id);
  const pid_t ponger_pid = worker_of(*c.m2.sys, package_id);
  // As measure_rtt: the driver sleeps through most of a run, its polls being
  // asks into the pinger's worker.
  double us_per_ask = 300;
  auto run = [&](std::size_t n) {
    const auto t0 = now_ns();
    L.ask(pinger.addr,
          json{{"op", "run"}, {"target", ponger.addr.value()}, {"n", n}, {"payload_bytes", payload_bytes}});
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<std::int64_t>(0.9 * us_per_ask * n)));
    json r = L.poll(
        pinger.addr, json{{"op", "result"}}, [](const json& j) { return j.value("done", false); }, 120s, 10ms);
    us_per_ask = static_cast<double>(now_ns() - t0) / 1000.0 / static_cast<double>(n);
    if (r.value("failures", 0) != 0) throw bench_error("cross-system asks failed: " + r.dump());
    return rtt_stats{r.value("p50_us", 0.0), r.value("p99_us", 0.0)};
  };
  (void)run(500);  // warm-up: routes, connections
  std::vector<double> t50, t99, b50, b99;
  // What each supervisor spends on the round trips (side figure): every
  // record between the members passes through the leader.
  const std::vector<live_system*> systems{&L, c.m1.sys.get(), c.m2.sys.get()};
  std::vector<double> cpu(systems.size(), 0.0);
  for (int i = 0; i < z.rtt_reps; ++i) {
    auto b = raw.run(z.rtt_samples);
    for (std::size_t k = 0; k < systems.size(); ++k) cpu[k] -= cpu_ms(systems[k]->system_pid());
    auto t = run(z.rtt_samples);
    for (std::size_t k = 0; k < systems.size(); ++k) cpu[k] += cpu_ms(systems[k]->system_pid());
    b50.push_back(b.p50_us);
    b99.push_back(b.p99_us);
    t50.push_back(t.p50_us);
    t99.push_back(t.p99_us);
  }
  std::string reps;
  for (std::size_t i = 0; i < t50.size(); ++i) reps += " " + fmt(t50[i] / b50[i]);
  say("  ratio by repetition:" + reps);
  const double per_k = 1000.0 / (static_cast<double>(z.rtt_reps) * static_cast<double>(z.rtt_samples));
  say("  supervisor CPU per 1000 round trips (polls included): leader " + fmt(cpu[0] * per_k) + " ms, M1 " +
      fmt(cpu[1] * per_k) + " ms, M2 " + fmt(cpu[2] * per_k) + " ms");
  const std::string base = "raw ZeroMQ tcp://127.0.0.1 PUSH/PULL round trip, 2 processes, 64 B";
  if (!c.etcd) {
    // Both placements, as cross_worker_ask_rtt (bench/main.cpp): the asking
    // side (driver, leader, M1 and its worker; the raw initiator) on the
    // first CPU, the answering side (M2 and its worker; the raw echo) on the
    // first too (same_cpu) or on the second (split_cpu); repetitions interleaved.
    const std::vector<int> cpus = allowed_cpus();
    auto place = [&](std::optional<placement> p) {
      const int first = p ? cpus[0] : -1;
      const int second = !p ? -1 : *p == placement::same_cpu ? cpus[0] : cpus[1];
      for (pid_t pid : {::getpid(), L.system_pid(), c.m1.sys->system_pid(), pinger_pid}) pin_process(pid, first, cpus);
      for (pid_t pid : {c.m2.sys->system_pid(), ponger_pid, raw.child_pid()}) pin_process(pid, second, cpus);
    };
    std::vector<placement> placements;
    if (!cpus.empty()) placements.push_back(placement::same_cpu);
    if (cpus.size() >= 2) placements.push_back(placement::split_cpu);
    std::vector<std::vector<double>> pt(placements.size()), pb(placements.size());
    for (int i = 0; i < z.rtt_reps; ++i)
      for (std::size_t k = 0; k < placements.size(); ++k) {
        place(placements[k]);
        pb[k].push_back(raw.run(z.rtt_samples).p50_us);
        pt[k].push_back(run(z.rtt_samples).p50_us);
      }
    place(std::nullopt);
    for (std::size_t k = 0; k < placements.size(); ++k) {
      figure f{std::string("cross_system_ask_rtt_p50") + suffix(placements[k]),
               median(pt[k]),
               "us",
               median(pb[k]),
               base + (placements[k] == placement::same_cpu ? ", all on one CPU" : ", the two sides on two CPUs"),
               "<= 1.5x baseline",
               {}};
      f.met = f.ratio() <= 1.5;
      f.samples = pt[k];
      f.baseline_samples = pb[k];
      say("  " + f.name + ": " + fmt(f.value) + " vs " + fmt(f.baseline) + " us (" + fmt(f.ratio()) + ")");
      out.push_back(f);
    }
  }
  if (c.etcd) {
    // Beside the built-in mode's figure: etcd is never on the message path.
    const figure* builtin = nullptr;
    for (const auto& f : out)
      if (f.name == "cross_system_ask_rtt_p50") builtin = &f;
    say("  raw ZeroMQ round trip p50 " + fmt(median(b50)) + " us; etcd mode " + fmt(median(t50)) + " us");
    figure p50{"etcd_cross_system_ask_rtt_p50",
               median(t50),
               "us",
               builtin != nullptr ? builtin->value : 0,
               "the built-in mode's cross_system_ask_rtt_p50 of this run",
               "<= 1.1x the built-in mode",
               {}};
    if (builtin != nullptr) p50.met = p50.ratio() <= 1.1;
    out.push_back(p50);
  } else {
    figure p50{"cross_system_ask_rtt_p50", median(t50), "us", median(b50), base, "<= 1.5x baseline", {}};
    p50.met = p50.ratio() <= 1.5;
    out.push_back(p50);
    out.push_back({"cross_system_ask_rtt_p99", median(t99), "us", median(b99), base + " (p99)", "-", {}});
  }
  if (!c.etcd) measure_cross_system_throughput(c, package_id, z, out);
  // The pair goes: the next figures count actors per member.
  (void)L.call("kill", json{{"target", pinger.addr.to_string()}}, 10s);
  (void)L.call("kill", json{{"target", ponger.addr.to_string()}}, 10s);
}

/// Returns the address of the Where, and in host the member hosting it.
void measure_chgcap(convention& c, const std::string& package_id, const convention_sizes& z,
                    const std::string& ready_exe, address& where, member*& host, std::vector<figure>& out) {
  say(std::string(c.etcd ? "etcd: " : "") + "chgcap -" + std::string(cap) +
      " on the member hosting an actor, until it answers from the other member, "
      "vs a bare fork+exec");
  live_system& L = *c.leader;
  // Placed on M1: asked of M1, which fits (local first).
  const spawned w = spawn_via(*c.m1.sys, "Where", package_id);
  if (w.port != c.m1.sys->port())
    throw bench_error("Where asked of M1 placed on " + std::to_string(w.port) + ", not M1 " +
                      std::to_string(c.m1.sys->port()));
  where = w.addr;
  member* hosting = &c.m1;
  member* other = &c.m2;
  auto first = where_pid(L, where, 5s);
  if (!first) throw bench_error("Where on M1 does not answer: " + first.err().message);
  pid_t pid = *first;
  if (pid != worker_of(*hosting->sys, package_id))
    throw bench_error("Where answered from pid " + std::to_string(pid) + ", not M1's worker");
  (void)bare_fork_exec_ms(ready_exe);  // warm-up
  std::vector<double> move_ms, bare_ms;
  int stale = 0, failed = 0;
  for (int i = 0; i <= z.chgcap_samples; ++i) {  // sample 0 is a warm-up
    const double bare = bare_fork_exec_ms(ready_exe);
    const std::string host_id = system_id_of(*hosting->sys);
    const auto t0 = now_ns();
    (void)hosting->sys->call("chgcap", json{{"op", "remove"}, {"name", cap}}, 5s);
    const pid_t now_pid = ask_until_moved(L, where, pid, stale, failed, t0);
    const auto t1 = now_ns();
    // Untimed: it answered from the other member's worker, and the cap goes back.
    if (now_pid != worker_of(*other->sys, package_id))
      throw bench_error("after chgcap the actor answered from pid " + std::to_string(now_pid) + ", not " + other->name +
                        "'s worker");
    (void)hosting->sys->call("chgcap", json{{"op", "add"}, {"name", cap}}, 5s);
    wait_leader_sees_cap(L, host_id, true);
    if (i > 0) {
      move_ms.push_back(ms_between(t0, t1));
      bare_ms.push_back(bare);
    }
    pid = now_pid;
    std::swap(hosting, other);
  }
  host = hosting;
  say("  " + std::to_string(z.chgcap_samples) + " moves; " + std::to_string(stale) +
      " asks answered from the old host before it moved, " + std::to_string(failed) + " failed (both sent again)");
  const std::string base =
      "fork+exec of troupe-bench-ready (libzmq context + socket, 'ready' on a pipe), one before each sample";
  const double target_ms = c.etcd ? 10 : 20;
  figure p50{c.prefix + "chgcap_to_answer_p50",
             percentile(move_ms, 0.5),
             "ms",
             percentile(bare_ms, 0.5),
             base,
             "p50 <= " + fmt(target_ms) + " ms",
             {}};
  p50.met = p50.value <= target_ms;
  out.push_back(p50);
  out.push_back({c.prefix + "chgcap_to_answer_p99",
                 percentile(move_ms, 0.99),
                 "ms",
                 percentile(bare_ms, 0.99),
                 base + " (p99)",
                 "-",
                 {}});
}

/// Restarts a killed member (untimed) and has it fetch package_id, so that
/// the next failover onto it does not include the fetch.
void restart_member(convention& c, member& m, const std::string& package_id) {
  m.sys->start(m.args);
  wait_joined(*c.leader, {c.m1.sys.get(), c.m2.sys.get()});
  const spawned warm = spawn_via(*m.sys, "Where", package_id);
  if (warm.port != m.sys->port())
    throw bench_error("Where asked of restarted " + m.name + " placed on " + std::to_string(warm.port));
  if (auto r = where_pid(*c.leader, warm.addr, 5s); !r)
    throw bench_error("Where on restarted " + m.name + " does not answer: " + r.err().message);
  (void)worker_of(*m.sys, package_id);
  (void)c.leader->call("kill", json{{"target", warm.addr.to_string()}}, 10s);
  for (auto* s : {c.leader.get(), c.m1.sys.get(), c.m2.sys.get()}) s->wait_settled();
}

void measure_member_kill(convention& c, const std::string& package_id, const convention_sizes& z, address where,
                         member* hosting, std::vector<figure>& out) {
  say(std::string(c.etcd ? "etcd: " : "") +
      "SIGKILL of the member hosting an actor, until it answers from the other member, vs the " +
      (c.etcd ? "lease's TTL" : "member timeout"));
  live_system& L = *c.leader;
  member* other = hosting == &c.m1 ? &c.m2 : &c.m1;
  auto first = where_pid(L, where, 5s);
  if (!first) throw bench_error("Where does not answer before the kills: " + first.err().message);
  pid_t pid = *first;
  std::vector<double> kill_ms;
  int stale = 0, failed = 0;
  for (int i = 0; i < z.kill_samples; ++i) {
    for (auto* s : {c.leader.get(), c.m1.sys.get(), c.m2.sys.get()}) s->wait_settled();
    hosting->sys->track_workers();
    const auto t0 = hosting->sys->kill();  // stamped at the SIGKILL; returns once the supervisor is gone
    const pid_t now_pid = ask_until_moved(L, where, pid, stale, failed, t0);
    const auto t1 = now_ns();
    if (now_pid != worker_of(*other->sys, package_id))
      throw bench_error("after the kill the actor answered from pid " + std::to_string(now_pid) + ", not " +
                        other->name + "'s worker");
    kill_ms.push_back(ms_between(t0, t1));
    restart_member(c, *hosting, package_id);
    pid = now_pid;
    std::swap(hosting, other);
  }
  std::string samples;
  for (double v : kill_ms) samples += " " + fmt(v);
  say("  samples (ms):" + samples + "; " + std::to_string(failed) + " asks failed, " + std::to_string(stale) +
      " answered from the killed host (both sent again)");
  if (c.etcd) {
    // etcd revokes the lease TTL after its last renewal (at most TTL/3 before
    // the kill); the leader watches the key go and places the actor at once.
    figure f{"etcd_member_kill_to_answer_p50",
             median(kill_ms),
             "ms",
             default_member_timeout_ms,
             "the lease's TTL (the member timeout, troupe's default 1000 ms), a number",
             "p50 <= TTL + 100 ms",
             {}};
    f.met = f.value <= default_member_timeout_ms + 100;
    out.push_back(f);
    return;
  }
  figure f{"member_kill_to_answer_p50",
           median(kill_ms),
           "ms",
           default_member_timeout_ms,
           "the member timeout the systems run with (troupe's default, 1000 ms; heartbeat 200 ms), a number: "
           "the ratio shows what detection and re-placement add to it",
           "detection <= 1 s by default",
           {}};
  // The leader checks for silent members at each of its heartbeats: a member
  // is found gone between timeout - heartbeat and timeout + heartbeat after
  // its death. Met when the answer comes within that bound.
  f.met = f.value <= default_member_timeout_ms + default_heartbeat_ms;
  out.push_back(f);
}

void measure_package_to_member(convention& c, live_system& lone, const bench_packages& pk, const convention_sizes& z,
                               std::vector<figure>& out) {
  say("load on the leader + spawn placed on a member (which fetches and verifies the archive) + first answer, "
      "vs load + spawn + first answer of the same archive on a lone system");
  live_system& L = *c.leader;
  std::vector<double> conv_ms, lone_ms, load_ms, spawn_ms, ask_ms, lone_load_ms;
  std::string last_conv, last_lone;
  for (int i = 0; i <= z.load_samples; ++i) {                            // sample 0 is a warm-up
    const std::string file = pk.convention("1.1." + std::to_string(i));  // untimed
    // Baseline: the lone system (--caps bench_cap, trusting the bench's key).
    lone.wait_settled();
    auto t0 = now_ns();
    const std::string lone_id = lone.load(file);
    const auto tl = now_ns();
    const spawned lw = spawn_via(lone, "Where", lone_id);
    auto lr = where_pid(lone, lw.addr, 5s);
    auto t1 = now_ns();
    if (!lr) throw bench_error("Where on the lone system does not answer: " + lr.err().message);
    (void)worker_of(lone, lone_id);
    const double lone_sample = ms_between(t0, t1);
    const double lone_load = ms_between(t0, tl);
    // The convention: loaded on the leader, placed on a member.
    for (auto* s : {c.leader.get(), c.m1.sys.get(), c.m2.sys.get()}) s->wait_settled();
    t0 = now_ns();
    const std::string id = L.load(file);
    const auto ta = now_ns();
    const spawned w = spawn_via(L, "Where", id);
    const auto tb = now_ns();
    auto r = where_pid(L, w.addr, 5s);
    t1 = now_ns();
    if (!r) throw bench_error("Where placed on " + std::to_string(w.port) + " does not answer: " + r.err().message);
    member* host = w.port == c.m1.sys->port() ? &c.m1 : w.port == c.m2.sys->port() ? &c.m2 : nullptr;
    if (host == nullptr) throw bench_error("Where placed on " + std::to_string(w.port) + ", not a member");
    if (*r != worker_of(*host->sys, id))
      throw bench_error("Where answered from pid " + std::to_string(*r) + ", not " + host->name + "'s worker");
    if (i > 0) {
      conv_ms.push_back(ms_between(t0, t1));
      lone_ms.push_back(lone_sample);
      lone_load_ms.push_back(lone_load);
      load_ms.push_back(ms_between(t0, ta));
      spawn_ms.push_back(ms_between(ta, tb));
      ask_ms.push_back(ms_between(tb, t1));
    }
    // Untimed: versions roll, as an operator's would (the leader's unload
    // reaches the members).
    lone.unload(lone_id);
    L.unload(id);
  }
  say("  medians: load on the leader " + fmt(median(load_ms)) +
      " ms, spawn call (placement, fetch, verify, "
      "load on the member) " +
      fmt(median(spawn_ms)) + " ms, first ask via the leader " + fmt(median(ask_ms)) + " ms; lone system: load " +
      fmt(median(lone_load_ms)) + " ms, spawn + first ask " + fmt(median(lone_ms) - median(lone_load_ms)) + " ms");
  figure f{"package_to_member_answer_p50",
           median(conv_ms),
           "ms",
           median(lone_ms),
           "the same archive on a lone system (--caps bench_cap): load + spawn + first ask, interleaved",
           "p50 <= 30 ms",
           {}};
  f.met = f.value <= 30;
  out.push_back(f);
}

/// Waits until every system of c is joined, one of them leads, and each
/// lists all of them up; returns the one that leads (etcd: by election).
live_system& wait_convention(convention& c) {
  const std::vector<live_system*> all{c.leader.get(), c.m1.sys.get(), c.m2.sys.get()};
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  std::string last;
  for (;;) {
    live_system* leads = nullptr;
    bool ok = true;
    for (auto* s : all) {
      json st = s->call("status", json::object(), 5s);
      if (!st.value("joined", false)) ok = false;
      if (st.value("is_leader", false)) leads = s;
    }
    if (ok && leads != nullptr) {
      json sys = leads->call("systems", json::object(), 5s);
      last = sys.dump();
      std::size_t up = 0;
      for (const auto& s : sys.value("systems", json::array()))
        if (s.value("state", std::string()) == "up") ++up;
      if (up == all.size()) return *leads;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw bench_error("convention not up with a leader after 15 s; last listing " + last);
    std::this_thread::sleep_for(10ms);
  }
}

/// etcd only: SIGKILL of the elected leader (hosting an Idle spawned on it),
/// until that Idle answers at its address from another system and a spawn
/// asked of a survivor works again. Each killed system is started again
/// (untimed) and joins as a member.
void measure_leader_kill(convention& c, const std::string& package_id, const convention_sizes& z,
                         std::vector<figure>& out) {
  say("etcd: SIGKILL of the elected leader, until its actor answers elsewhere and spawns work, vs twice the TTL");
  std::vector<double> serve_ms, answer_ms, spawn_ms;
  for (int i = 0; i < z.kill_samples; ++i) {
    live_system& leads = wait_convention(c);
    for (auto* s : {c.leader.get(), c.m1.sys.get(), c.m2.sys.get()}) s->wait_settled();
    const std::vector<std::string>& args = &leads == c.leader.get()   ? c.leader_args
                                           : &leads == c.m1.sys.get() ? c.m1.args
                                                                      : c.m2.args;
    live_system& survivor = &leads == c.m1.sys.get() ? *c.m2.sys : *c.m1.sys;
    const spawned idle = spawn_via(leads, "Idle", package_id);  // local first: on the leader
    if (idle.port != leads.port())
      throw bench_error("Idle asked of the leader " + std::to_string(leads.port()) + " placed on " +
                        std::to_string(idle.port));
    if (auto r = survivor.try_ask(idle.addr, "ping", 5s); !r)
      throw bench_error("Idle on the leader does not answer before the kill: " + r.err().message);
    leads.track_workers();
    const auto t0 = leads.kill();
    std::int64_t answered = 0, spawned_at = 0;
    std::vector<address> probes;
    while (answered == 0 || spawned_at == 0) {
      if (now_ns() - t0 > 20'000'000'000)
        throw bench_error(
            "20 s after the leader's SIGKILL: " + std::string(answered ? "" : "its actor does not answer ") +
            (spawned_at ? "" : "spawns do not work"));
      if (answered == 0)
        if (auto r = survivor.try_ask(idle.addr, "ping", 1s); r) answered = now_ns();
      if (spawned_at == 0) {
        try {
          probes.push_back(spawn_via(survivor, "Idle", package_id).addr);
          spawned_at = now_ns();
        } catch (const bench_error&) {  // no leader yet, or not yet loaded there: again
          std::this_thread::sleep_for(2ms);
        }
      }
    }
    answer_ms.push_back(ms_between(t0, answered));
    spawn_ms.push_back(ms_between(t0, spawned_at));
    serve_ms.push_back(ms_between(t0, std::max(answered, spawned_at)));
    // Untimed: the actors go, the killed system comes back as a member.
    for (const auto& a : probes) (void)survivor.call("kill", json{{"target", a.to_string()}}, 10s);
    (void)survivor.call("kill", json{{"target", idle.addr.to_string()}}, 10s);
    leads.start(args);
  }
  (void)wait_convention(c);
  say("  medians: the actor answers after " + fmt(median(answer_ms)) + " ms, a spawn works after " +
      fmt(median(spawn_ms)) + " ms");
  figure f{"etcd_leader_kill_to_serving_p50",
           median(serve_ms),
           "ms",
           2 * default_member_timeout_ms,
           "twice the lease's TTL (the member timeout, troupe's default 1000 ms), a number",
           "<= 2x TTL",
           {}};
  f.met = f.value <= 2 * default_member_timeout_ms;
  out.push_back(f);
}

/// Starts c's three systems: on etcd_endpoints when not empty, else with the
/// built-in leader.
void start_convention(convention& c, const std::string& troupe_exe, const std::string& etcd_endpoints) {
  c.etcd = !etcd_endpoints.empty();
  if (c.etcd) {
    c.prefix = "etcd_";
    c.coordination = {"--etcd", etcd_endpoints, "--convention", "bench-" + std::to_string(::getpid())};
  }
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), c.coordination.begin(), c.coordination.end());
    return args;
  };
  c.leader_args = with({});
  c.leader = std::make_unique<live_system>(troupe_exe);
  c.leader->start(c.leader_args);  // no capabilities; built-in: --leader its own port; etcd: elected, first up
  // On etcd the first system up is elected first: the members join it.
  for (int i = 0; c.etcd && !c.leader->call("status", json::object(), 5s).value("is_leader", false); ++i) {
    if (i == 1000) throw bench_error("the first system on etcd is not elected after 10 s");
    std::this_thread::sleep_for(10ms);
  }
  c.m1 = member{std::make_unique<live_system>(troupe_exe, *c.leader), with({"--caps", std::string(cap) + ",side_a"}),
                "M1"};
  c.m2 = member{std::make_unique<live_system>(troupe_exe, *c.leader), with({"--caps", std::string(cap) + ",side_b"}),
                "M2"};
  c.m1.sys->start(c.m1.args);
  c.m2.sys->start(c.m2.args);
  wait_joined(*c.leader, {c.m1.sys.get(), c.m2.sys.get()});
  say(std::string(c.etcd ? "convention on etcd " + etcd_endpoints : "convention") + " up: leader " +
      std::to_string(c.leader->port()) + ", M1 " + std::to_string(c.m1.sys->port()) + " (" + cap + ",side_a), M2 " +
      std::to_string(c.m2.sys->port()) + " (" + cap + ",side_b), home " + c.leader->home());
}

/// The figures both modes measure, on benchconv 1.0.0 loaded here: its id,
/// and the address of the Where they moved.
std::pair<std::string, address> measure_both_modes(convention& c, const bench_packages& pk,
                                                   const std::string& ready_exe, const convention_sizes& z,
                                                   std::vector<figure>& out) {
  const std::string package_id = c.leader->load(pk.convention("1.0.0"));
  measure_cross_system_rtt(c, package_id, z, out);
  address where;
  member* host = nullptr;
  measure_chgcap(c, package_id, z, ready_exe, where, host, out);
  measure_member_kill(c, package_id, z, where, host, out);
  return {package_id, where};
}

}  // namespace

void measure_convention(const std::string& troupe_exe, const std::string& package_dir, const std::string& ready_exe,
                        const convention_sizes& z, std::vector<figure>& out) {
  convention c;
  start_convention(c, troupe_exe, {});
  const bench_packages pk(c.leader->home(), package_dir);
  const auto [package_id, where] = measure_both_modes(c, pk, ready_exe, z, out);
  c.leader->unload(package_id);

  live_system lone(troupe_exe);
  lone.start({"--caps", cap});
  // Trusts the key the convention's archives are signed with (re-read at
  // every verification).
  fs::create_directories(fs::path(lone.home()) / "keys");
  fs::copy_file(fs::path(c.leader->home()) / "keys" / "bench.pub", fs::path(lone.home()) / "keys" / "bench.pub",
                fs::copy_options::overwrite_existing);
  measure_package_to_member(c, lone, pk, z, out);
  lone.stop();
}

void measure_convention_on_etcd(const std::string& troupe_exe, const std::string& package_dir,
                                const std::string& ready_exe, const convention_sizes& z, std::vector<figure>& out,
                                std::vector<unavailable_figure>& unavailable) {
  if (!troupe::testing::etcd_cluster::available()) {
    for (const char* n : {"etcd_cross_system_ask_rtt_p50", "etcd_chgcap_to_answer_p50",
                          "etcd_member_kill_to_answer_p50", "etcd_leader_kill_to_serving_p50"})
      unavailable.push_back({n, "", "etcd is not installed (/usr/bin/etcd; scripts/setup.sh installs etcd-server)"});
    return;
  }
  troupe::testing::etcd_cluster etcd(1);  // stopped and removed when this returns, by failure too
  convention c;
  start_convention(c, troupe_exe, etcd.endpoints());
  const bench_packages pk(c.leader->home(), package_dir);
  const auto [package_id, where] = measure_both_modes(c, pk, ready_exe, z, out);
  (void)c.leader->call("kill", json{{"target", where.to_string()}}, 10s);
  measure_leader_kill(c, package_id, z, out);
}

}  // namespace troupe::bench
