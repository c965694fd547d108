// bench/scale_figures.cpp — the scale figures of issue 17 (docs/PERFORMANCE.md
// §2, "100,000 actors"): N actors of one type (`Morse` of the encoders
// example) in one system, spawned by one client that keeps many requests in
// flight on a raw DEALER; what they cost the daemon and their worker in
// memory; and the restart of that worker after a SIGKILL. Each repetition
// runs on a fresh system, always stopped (live_system), failures included.
#include "bench/bench.hpp"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>
#include <unordered_map>

namespace troupe::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string control_signature("TRC\x01", 4);  // docs/PROTOCOL.md §4.1

// ---------------------------------------------------------------- processes

/// The parent pid of pid from /proc/PID/stat (-1 when gone).
pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto paren = line.rfind(')');  // the command may hold spaces and parentheses
  if (paren == std::string::npos || paren + 4 >= line.size()) return -1;
  // ") S PPID ..."
  return static_cast<pid_t>(std::atoi(line.c_str() + line.find(' ', paren + 2) + 1));
}

bool is_worker(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmdline.find("troupe-worker") != std::string::npos;
}

/// The processes whose parent is pid, with their VmRSS.
std::map<pid_t, std::int64_t> children_rss(pid_t parent) {
  std::map<pid_t, std::int64_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::atoi(name.c_str()));
    if (pid > 0 && parent_of(pid) == parent) out[pid] = rss_bytes(pid);
  }
  return out;
}

// ---------------------------------------------------------------- pipelined requests

struct pipelined_result {
  double seconds = 0;
  std::uint64_t errors = 0;  // answers with ok false: each request is sent again
  std::map<std::string, std::uint64_t> reasons;
};

/// n requests `command` with the body body_tail (a JSON object's members
/// after "rid") on a DEALER connected to a peer speaking the control format
/// (PROTOCOL.md §4.1), at most window in flight; a request answered with
/// ok false is sent again (at most n times in all). Returns once n answered
/// ok; throws bench_error when nothing comes back for 30 s or after 300 s.
pipelined_result run_pipelined(zmq::socket_t& s, std::uint64_t n, std::uint64_t window, const std::string& command,
                               const std::string& body_tail) {
  pipelined_result r;
  std::uint64_t rid = 0, sent = 0, answered = 0, ok = 0;
  auto send_one = [&]() -> bool {
    const std::string body = "{\"rid\":" + std::to_string(++rid) + "," + body_tail + "}";
    std::array<zmq::const_buffer, 3> frames{zmq::buffer(control_signature), zmq::buffer(command), zmq::buffer(body)};
    if (!zmq::send_multipart(s, frames, zmq::send_flags::dontwait)) {
      --rid;
      return false;  // its pipe is full: read answers first
    }
    ++sent;
    return true;
  };
  const auto t0 = now_ns();
  auto last_answer = t0;
  std::vector<zmq::message_t> frames;
  while (ok < n) {
    // A failed request no longer counts as in flight: sent again here.
    while (sent - answered < window && ok + (sent - answered) < n)
      if (!send_one()) break;
    zmq::pollitem_t item{static_cast<void*>(s), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 1000ms);
    for (;;) {
      frames.clear();
      if (!zmq::recv_multipart(s, std::back_inserter(frames), zmq::recv_flags::dontwait)) break;
      last_answer = now_ns();
      ++answered;
      json a;
      if (frames.size() == 3) a = json::parse(frames[2].to_string_view(), nullptr, false);
      if (a.is_object() && a.value("ok", false)) {
        ++ok;
        continue;
      }
      ++r.errors;
      ++r.reasons[a.is_object() ? a.value("error", std::string("?")).substr(0, 100) : "malformed answer"];
      if (r.errors > n) throw bench_error("more than " + std::to_string(n) + " failed requests");
    }
    const auto now = now_ns();
    if (now - last_answer > 30'000'000'000)
      throw bench_error("no answer for 30 s: " + std::to_string(sent) + " sent, " + std::to_string(answered) +
                        " answered");
    if (now - t0 > 300'000'000'000) throw bench_error("not done after 300 s");
  }
  r.seconds = static_cast<double>(now_ns() - t0) / 1e9;
  return r;
}

zmq::socket_t dealer(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);  // as a client (PROTOCOL.md §4.1): default HWM
  s.connect(endpoint);
  return s;
}

// ---------------------------------------------------------------- restarts

/// SIGKILL of worker (checked: a troupe-worker child of sys's daemon) and
/// the time until `status` counts `total` actors running again, measured
/// from the kill, with the daemon seen to have handled the death (fewer
/// running, or another worker for the package in `list`) and the old
/// process gone. Polls every 5 ms, 30 s at most.
double restart_seconds(live_system& sys, const std::string& package_id, pid_t worker, std::uint64_t total) {
  if (worker <= 0) throw bench_error("no worker pid to kill");
  auto running = [&sys] {
    return sys.call("status", json::object())["actor_states"].value("running", std::uint64_t{0});
  };
  if (const auto n = running(); n < total)
    throw bench_error("only " + std::to_string(n) + " of " + std::to_string(total) + " actors run before the kill");
  // Checked after the pidfd is open: the pid cannot be another process's
  // from here on while it is still running (its parent, the daemon, reaps it).
  process_watch watch(worker);
  if (watch.exited() || parent_of(worker) != sys.system_pid() || !is_worker(worker))
    throw bench_error("pid " + std::to_string(worker) + " is not a running worker of the bench's system " +
                      std::to_string(sys.system_pid()));
  const auto t0 = now_ns();
  sys.kill_worker(worker);
  bool handled = false;  // the daemon has seen the death
  for (;;) {
    const auto n = running();
    if (n < total) handled = true;
    if (!handled) {
      // Restarted between two polls: `list` names the new worker.
      const json listed = sys.call("list", json::object());
      for (const auto& p : listed["packages"])
        if (p.value("id", std::string()) == package_id && p["worker_pid"].is_number() &&
            p["worker_pid"].get<pid_t>() != worker)
          handled = true;
    }
    if (handled && n >= total && watch.exited()) return static_cast<double>(now_ns() - t0) / 1e9;
    if (now_ns() - t0 > 30'000'000'000)
      throw bench_error(std::to_string(n) + " of " + std::to_string(total) + " actors running 30 s after the SIGKILL" +
                        (handled ? "" : ", the daemon has not seen it") +
                        (watch.exited() ? "" : ", worker " + std::to_string(worker) + " still there"));
    std::this_thread::sleep_for(5ms);
  }
}

std::string thousands(std::uint64_t n) { return n % 1000 == 0 ? std::to_string(n / 1000) + "k" : std::to_string(n); }

struct repetition {
  double spawn_s = 0, echo_s = 0;
  double daemon_b = 0, worker_b = 0, plain_table_b = 0, plain_actor_b = 0;
  double restart_s = 0, restart_one_s = 0;
  std::uint64_t errors = 0;
};

repetition run_once(const std::string& troupe_exe, const std::string& build_dir, const scale_sizes& z, int rep) {
  repetition r;
  live_system sys(troupe_exe);
  sys.start();
  const std::string archive = trust_build_package(sys.home(), build_dir, "encoders-1.0.0.tpkg");
  const std::string id = sys.load(archive);
  // The first actor starts the package's worker; the restart baseline is
  // that worker's restart with this one actor.
  (void)sys.spawn("Morse", id);
  sys.wait_settled();
  r.restart_one_s = restart_seconds(sys, id, sys.worker_pid(id), 1);
  sys.track_workers();

  // The baseline of the spawns: the same pipelined requests against a raw
  // ROUTER that answers each at once, a child process like the daemon.
  const std::string body_tail = R"("type":"Morse","package":")" + id + "\"";
  {
    const std::string ep = "ipc://" + sys.home() + "/scale-echo.sock";
    child_process echo({self_exe(), "--zmq-router-echo", ep});
    zmq::context_t ctx{1};
    zmq::socket_t s = dealer(ctx, ep);
    r.echo_s = run_pipelined(s, z.actors, z.window, "spawn", body_tail).seconds;
  }
  r.plain_table_b = plain_table_bytes(z.actors);
  r.plain_actor_b = plain_actor_bytes(z.actors);

  sys.wait_settled();
  std::this_thread::sleep_for(200ms);
  const pid_t daemon = sys.system_pid();
  const auto d0 = rss_bytes(daemon);
  const auto c0 = children_rss(daemon);
  {
    // The local client socket (PROTOCOL.md §6.0): this user is admitted.
    zmq::context_t ctx{1};
    zmq::socket_t s =
        dealer(ctx, "ipc://" + sys.home() + "/systems/" + std::to_string(sys.port()) + "/run/client.sock");
    const auto p = run_pipelined(s, z.actors, z.window, "spawn", body_tail);
    r.spawn_s = p.seconds;
    r.errors = p.errors;
    for (const auto& [why, count] : p.reasons) say("  " + std::to_string(count) + " spawns failed: " + why);
  }
  std::this_thread::sleep_for(500ms);  // as measured by hand: answers out, allocator settled
  const auto d1 = rss_bytes(daemon);
  const auto c1 = children_rss(daemon);
  if (d0 == 0 || d1 == 0) throw bench_error("cannot read VmRSS of the daemon " + std::to_string(daemon));
  // The worker hosting them: the child of the daemon that grew.
  pid_t worker = -1;
  std::int64_t grew = 0;
  for (const auto& [pid, after] : c1)
    if (auto it = c0.find(pid); it != c0.end() && it->second > 0 && after - it->second > grew && is_worker(pid)) {
      worker = pid;
      grew = after - it->second;
    }
  if (worker <= 0) throw bench_error("no worker of daemon " + std::to_string(daemon) + " grew");
  if (worker != sys.worker_pid(id))
    throw bench_error("worker " + std::to_string(worker) + " grew, but list names another for encoders");
  r.daemon_b = static_cast<double>(d1 - d0) / static_cast<double>(z.actors);
  r.worker_b = static_cast<double>(grew) / static_cast<double>(z.actors);

  sys.wait_settled();
  r.restart_s = restart_seconds(sys, id, worker, z.actors + 1);
  sys.track_workers();
  const auto s0 = now_ns();
  sys.stop();
  say("  repetition " + std::to_string(rep + 1) + ": spawns " + fmt(r.spawn_s) + " s (echo " + fmt(r.echo_s) +
      " s), daemon " + fmt(r.daemon_b) + " B/actor, worker " + fmt(r.worker_b) + " B/actor, restart " +
      fmt(r.restart_s) + " s (1 actor: " + fmt(r.restart_one_s) + " s), " + std::to_string(r.errors) +
      " errors; stop took " + fmt(static_cast<double>(now_ns() - s0) / 1e9) + " s");
  return r;
}

struct plain_record {  // what a supervisor needs at least per actor
  std::uint64_t address;
  std::uint32_t package;  // an index into a table of packages
  std::uint32_t worker;
  std::uint32_t restarts;
  std::uint8_t state;
};

}  // namespace

int zmq_router_echo_main(const std::string& endpoint) {
  zmq::context_t ctx{1};
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);  // answers wait for a slow reader, as the daemon's do
  s.bind(endpoint);
  std::vector<zmq::message_t> in;
  for (;;) {
    in.clear();
    if (!zmq::recv_multipart(s, std::back_inserter(in))) continue;
    if (in.size() != 4 || in[3].size() < 2) continue;
    // [id, signature, command, {"rid":R,...}] -> [id, signature, "reply", {"rid":R,...,"ok":true}]
    std::string body = in[3].to_string();
    body.pop_back();
    body += ",\"ok\":true}";
    std::array<zmq::const_buffer, 4> out{zmq::buffer(in[0].data(), in[0].size()), zmq::buffer(control_signature),
                                         zmq::str_buffer("reply"), zmq::buffer(body)};
    (void)zmq::send_multipart(s, out);
  }
}

int plain_table_main(std::size_t n) {
  std::unordered_map<std::uint64_t, plain_record> table;
  const auto before = rss_bytes(::getpid());
  for (std::size_t i = 0; i < n; ++i) table.emplace(i + 16, plain_record{i + 16, 1, 1, 0, 1});
  const auto after = rss_bytes(::getpid());
  std::printf("%.3f\n", static_cast<double>(after - before) / static_cast<double>(n));
  return 0;
}

double plain_table_bytes(std::size_t n) { return child_figure({"--plain-table", std::to_string(n)}); }

std::string trust_build_package(const std::string& home, const std::string& build_dir, const std::string& file) {
  const fs::path packages = fs::path(build_dir) / "packages";
  const fs::path archive = packages / file;
  if (!fs::exists(archive)) throw bench_error(archive.string() + " not found (build target encoders_signed)");
  if (!fs::exists(packages / "dev.pub")) throw bench_error((packages / "dev.pub").string() + " not found");
  fs::create_directories(fs::path(home) / "keys");
  fs::copy_file(packages / "dev.pub", fs::path(home) / "keys" / "dev.pub", fs::copy_options::overwrite_existing);
  return archive.string();
}

void measure_scale(const std::string& troupe_exe, const std::string& build_dir, const scale_sizes& z,
                   std::vector<figure>& out) {
  const std::string n_text = std::to_string(z.actors);
  say("scale: " + n_text + " Morse actors in one system, spawned by one client with " + std::to_string(z.window) +
      " requests in flight; memory; restart of their worker. " + std::to_string(z.reps) +
      (z.reps == 1 ? " repetition" : " repetitions, each") + " on a fresh system");
  std::vector<repetition> reps;
  for (int i = 0; i < z.reps; ++i) reps.push_back(run_once(troupe_exe, build_dir, z, i));
  auto col = [&reps](double repetition::*m) {
    std::vector<double> v;
    for (const auto& r : reps) v.push_back(r.*m);
    return v;
  };
  std::uint64_t errors = 0;
  for (const auto& r : reps) errors += r.errors;
  const std::string k = thousands(z.actors);
  const std::string sizes_note = "N = " + n_text + " Morse actors (encoders 1.0.0), " + std::to_string(z.reps) +
                                 (z.reps == 1 ? " repetition" : " repetitions, each") + " on a fresh system, median";

  // One row: the median of the repetitions' values beside their baselines',
  // every repetition kept; met when the value is at most `limit`.
  auto row = [&](std::string name, double repetition::*value, std::string unit, double repetition::*base,
                 std::string baseline_is, std::string target, double limit, std::string note) {
    figure f{std::move(name),
             median(col(value)),
             std::move(unit),
             median(col(base)),
             std::move(baseline_is),
             std::move(target),
             {}};
    f.met = f.value <= limit;
    f.samples = col(value);
    f.baseline_samples = col(base);
    f.note = sizes_note + "; " + note;
    out.push_back(std::move(f));
  };
  row("scale_spawn_" + k + "_s", &repetition::spawn_s, "s", &repetition::echo_s,
      "the same " + n_text + " pipelined requests (" + std::to_string(z.window) +
          " in flight, one DEALER) answered at once by a raw ZeroMQ ROUTER echo in a child process (ipc)",
      "<= 10 s, 0 errors", 10,
      std::to_string(errors) +
          " spawns answered with an error (each sent again, the time includes it) in all repetitions");
  if (errors != 0) out.back().met = false;
  row("scale_daemon_bytes_per_actor", &repetition::daemon_b, "bytes", &repetition::plain_table_b,
      "std::unordered_map<uint64_t, 24-byte record> of N entries in a fresh plain process (RSS growth / N)",
      "<= 512 bytes", 512, "the daemon's VmRSS after the spawns minus before, / N");
  row("scale_worker_bytes_per_actor", &repetition::worker_b, "bytes", &repetition::plain_actor_b,
      "N troupe::actor objects, each in an unordered_map slot like the worker's table, fresh plain process",
      "<= 512 bytes", 512, "VmRSS growth of the daemon's child that grew (the package's worker), / N");
  row("scale_worker_restart_" + k + "_s", &repetition::restart_s, "s", &repetition::restart_one_s,
      "SIGKILL of the same package's worker hosting 1 actor, same system, until status counts it running", "<= 1 s", 1,
      "SIGKILL of their worker until status's actor_states counts all running (polled every 5 ms)");
}

}  // namespace troupe::bench
