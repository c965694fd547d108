// bench/bench.hpp — pieces of troupe-bench (docs/PERFORMANCE.md): the
// baselines measured in the same run (baselines.cpp), a live troupe system
// started, driven and always stopped by the bench (live_system.cpp), the
// signed packages it loads (signed_packages.cpp), the figures of package
// loading and verification (package_figures.cpp) and of conventions of
// systems (convention_figures.cpp). Single-threaded: the
// driver's one thread calls everything here.
#pragma once

#include "manifests/signing.hpp"

#include <troupe/address.hpp>
#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe::bench {

using json = nlohmann::json;

/// A failure that ends the run (the system is still stopped).
struct bench_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One figure of the table: troupe's value beside a baseline of the same run.
struct figure {
  std::string name;
  double value = 0;
  std::string unit;
  double baseline = 0;      // 0: no baseline
  std::string baseline_is;  // what the baseline is (printed, not in the JSON)
  std::string target;       // the target of the issue, as text
  std::optional<bool> met;  // against the target, when there is one
  [[nodiscard]] double ratio() const { return baseline != 0 ? value / baseline : 0; }
  std::vector<double> samples = {};           // every repetition's value (in the JSON)
  std::vector<double> baseline_samples = {};  // and the baseline's, interleaved with them
  std::string note = {};                      // sizes and side counts (printed with the baseline, in the JSON when set)
};

// ---------------------------------------------------------------- placement

/// Where the two endpoints of a latency figure run: on one CPU (everything
/// pinned to the first allowed CPU), or on two (each endpoint pinned to its
/// own CPU). The same placement for troupe and its baseline, so that a ratio
/// measures troupe, not the scheduler's choice (docs/PERFORMANCE.md §2).
enum class placement { same_cpu, split_cpu };
const char* suffix(placement p);
/// The CPUs this process may use, in order (sched_getaffinity).
std::vector<int> allowed_cpus();
/// Pins every thread of process pid (an own process or a descendant) to cpu,
/// or lets them use cpus when cpu < 0. False when the process is gone.
bool pin_process(pid_t pid, int cpu, const std::vector<int>& cpus);

/// A figure this run could not measure (an option of a troupe without it,
/// say): listed under the table, and in the JSON with null values.
struct unavailable_figure {
  std::string name;
  std::string unit;
  std::string why;
};

/// A TCP port on 127.0.0.1 free at the time of the call.
std::uint16_t free_port();

/// Progress on stderr ("troupe-bench: text").
void say(const std::string& text);
/// A number with 3–4 significant digits.
[[nodiscard]] std::string fmt(double v);

[[nodiscard]] std::int64_t now_ns();
[[nodiscard]] double median(std::vector<double> v);
/// Nearest-rank percentile (q in [0,1]) of v.
[[nodiscard]] double percentile(std::vector<double> v, double q);
/// VmRSS of a process in bytes (from /proc/PID/status); 0 when unreadable.
[[nodiscard]] std::int64_t rss_bytes(pid_t pid);
/// Directory of the running executable (for its sibling programs).
[[nodiscard]] std::string self_dir();
[[nodiscard]] std::string self_exe();

// ---------------------------------------------------------------- children

/// A child process started by fork+exec, killed (SIGKILL) and reaped when
/// destroyed unless it was waited for. The child dies with the bench too
/// (PR_SET_PDEATHSIG).
class child_process {
 public:
  child_process() = default;
  explicit child_process(const std::vector<std::string>& argv);
  child_process(child_process&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  child_process& operator=(child_process&&) = delete;
  ~child_process();
  /// Waits up to timeout for the exit; kills it after. Returns the exit code.
  int wait(std::chrono::milliseconds timeout);
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

/// A pidfd of a process, opened while it runs (its parent may reap it as
/// soon as it exits): wait_exit() blocks until it has exited.
class process_watch {
 public:
  explicit process_watch(pid_t pid);
  ~process_watch();
  process_watch(const process_watch&) = delete;
  process_watch& operator=(const process_watch&) = delete;
  void wait_exit();
  /// True once the process has exited (does not block).
  [[nodiscard]] bool exited() const;

 private:
  int fd_ = -1;
};

/// Entry points of the hidden sub-commands troupe-bench re-executes itself
/// with, so that the raw ZeroMQ peer is a separate process. The echo binds
/// its PULL at pull_ep, or connects it there when connect_pull (tcp: the
/// parent bound both ends on ephemeral ports).
int zmq_echo_main(const std::string& pull_ep, const std::string& push_ep, bool connect_pull = false);
int zmq_sink_main(const std::string& pull_ep, const std::string& push_ep, std::uint64_t n, int reps,
                  bool connect_pull = false);
/// A ROUTER bound at endpoint answering each control request (PROTOCOL.md
/// §4.1) at once with a `reply` of its own body plus "ok": true.
int zmq_router_echo_main(const std::string& endpoint);

// ---------------------------------------------------------------- baselines

struct rtt_stats {
  double p50_us = 0;
  double p99_us = 0;
};

enum class raw_transport {
  ipc,  ///< ipc:// sockets in a directory
  tcp,  ///< tcp://127.0.0.1 on ephemeral ports
};

/// Raw ZeroMQ between this process and an echo child: PUSH/PULL both ways
/// (the same socket pattern as troupe's data plane), blocking calls; ipc://
/// in dir, or tcp:// on 127.0.0.1 (both ends bound by this process on
/// ephemeral ports, the child connecting).
class raw_zmq_rtt {
 public:
  explicit raw_zmq_rtt(const std::string& dir, std::size_t payload_bytes, raw_transport transport = raw_transport::ipc);
  ~raw_zmq_rtt();
  /// n timed round trips of one payload.
  rtt_stats run(std::size_t n);
  /// The echoing child (for pinning).
  [[nodiscard]] pid_t child_pid() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Raw ZeroMQ ipc:// one-way: this process PUSHes n messages per repetition
/// to a PULL child, which stamps the arrival of the n-th (blocking calls).
class raw_zmq_oneway {
 public:
  raw_zmq_oneway(const std::string& dir, std::uint64_t n, int reps, std::size_t payload_bytes,
                 raw_transport transport = raw_transport::ipc);
  ~raw_zmq_oneway();
  /// One repetition (at most `reps`); msg/s from the first send to the n-th
  /// arrival.
  double run();
  /// The sink child (for pinning).
  [[nodiscard]] pid_t child_pid() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A plain in-process pass: a producer object pushes chunks of messages (64
/// inline payload bytes) into a std::deque, a consumer object's virtual
/// handler pops and counts them. msg/s.
double deque_pass_rate(std::uint64_t n, std::size_t chunk);

/// A ring of plain C++ objects passing a token through a std::deque queue
/// (each hop: push, pop, virtual call). ns per hop.
double plain_ring_ns_per_hop(std::size_t nodes, std::size_t laps);

/// RSS growth per object of n objects derived from troupe::actor held in an
/// unordered_map like the worker's actor table (no troupe runtime), measured
/// in a fresh child process. bytes.
double plain_actor_bytes(std::size_t n);
/// The child's side: prints the figure on stdout.
int plain_actors_main(std::size_t n);
/// RSS growth per entry of a std::unordered_map<uint64_t, 24-byte record> of
/// n entries, in a fresh child process. bytes.
double plain_table_bytes(std::size_t n);
int plain_table_main(std::size_t n);
/// The number a re-executed troupe-bench (self_exe() args...) prints on stdout.
double child_figure(const std::vector<std::string>& args);

/// fork+exec of exe (troupe-bench-ready, troupe-bench-dlopen) with the
/// write end of a pipe as its first argument, then args, until it writes
/// "ready" to the pipe. ms.
double bare_fork_exec_ms(const std::string& exe, const std::vector<std::string>& args = {});

/// The baseline of restart_after_sigkill, `samples` times: a child started by
/// fork+exec of `exe FD --stay` (troupe-bench-ready) is SIGKILLed; this
/// process notices through a pidfd and poll, reaps it and fork+execs a new
/// one, until that one writes "ready" to its pipe. ms from the kill, one per
/// sample; each new child is the next one killed.
std::vector<double> bare_notice_respawn_ms(const std::string& exe, int samples);

// ---------------------------------------------------------------- live system

/// A troupe system started for the run on a free port with a temporary
/// TROUPE_HOME. stop() (also run by the destructor and by SIGINT/SIGTERM)
/// stops it with `troupe stop` and kills whatever is left of it. At most
/// eight run at once (the no-loss figure compares two delivery modes; the
/// convention figures run three systems of one convention and a lone one).
class live_system {
 public:
  explicit live_system(std::string troupe_exe);
  /// A member of leader's convention: the same TROUPE_HOME (systems sharing
  /// one trust each other), started with `--leader 127.0.0.1:LEADER_PORT`.
  /// The home stays the leader's: stop() leaves it for the leader's stop().
  live_system(std::string troupe_exe, const live_system& leader);
  ~live_system();
  live_system(const live_system&) = delete;
  live_system& operator=(const live_system&) = delete;

  /// `troupe start --port P START_ARGS...`; throws bench_error with the
  /// CLI's reason when it does not start. After kill() it starts the system
  /// again on the same port and home.
  void start(const std::vector<std::string>& start_args = {});
  void stop();
  /// SIGKILLs the supervisor (as a crash would) and waits until it is gone;
  /// its workers die by PR_SET_PDEATHSIG (start() and stop() wait up to 2 s
  /// for those the bench knows of, and kill what is left). start() may follow.
  /// Returns the time (now_ns) of the SIGKILL.
  std::int64_t kill();

  [[nodiscard]] const std::string& home() const { return home_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] pid_t system_pid() const { return system_pid_; }
  /// Any request (`systems`, `chgcap`, `spawn`, ...) on this system's public
  /// socket; throws bench_error with the system's reason when refused.
  json call(const std::string& command, const json& body, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Remembers the pids of every package worker of this system (from `list`)
  /// for clean-up.
  void track_workers();

  /// Loads a signed package archive (`load FILE`); returns its id. The
  /// system answers once the package's worker registered.
  std::string load(const std::string& archive);
  /// Unloads a package by id; returns once its worker is gone.
  void unload(const std::string& package_id);
  address spawn(const std::string& type, const std::string& package_id, const std::string& name = {});
  json ask(address target, const json& payload, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// An ask whose failure is an answer too (timeouts, ask_failed).
  result<json> try_ask(address target, const json& payload, std::chrono::milliseconds timeout);
  /// The same to an address text or a global name.
  result<json> try_ask(const std::string& target, const json& payload, std::chrono::milliseconds timeout);
  /// Asks `question` every interval until done(reply) or timeout.
  json poll(address target, const json& question, const std::function<bool(const json&)>& done,
            std::chrono::milliseconds timeout, std::chrono::milliseconds interval);
  /// Waits (at most 5 s) until the system's standby workers are up, as on a
  /// system between operator commands: a timed load then measures a load,
  /// not the start of the previous load's replacement standby.
  void wait_settled();
  /// The worker hosting package_id (also remembered for clean-up).
  pid_t worker_pid(const std::string& package_id);
  /// SIGKILLs a worker of this system and forgets its pid: once dead, the
  /// pid may be reused by another process, which clean-up must not kill.
  void kill_worker(pid_t pid);
  /// Makes this home's client key (HOME/client) and has the system trust it
  /// (read role): a client over TCP then connects as a remote one would.
  void trust_own_client_key();

 private:
  struct cli_result {
    int exit_code = 0;
    std::string err;  // its stderr
  };
  /// The troupe CLI with this system's TROUPE_HOME; stdout discarded.
  cli_result run_cli(const std::vector<std::string>& args);
  /// Waits (2 s at most) for the tracked workers to be gone, SIGKILLs the
  /// rest, and forgets them.
  void reap_workers();

  std::string troupe_exe_;
  int slot_ = -1;  // in the table the signal handler cleans up from
  std::string home_;
  bool owns_home_ = true;          // false for a member: the leader's home
  std::uint16_t leader_port_ = 0;  // a member's leader
  std::uint16_t port_ = 0;
  pid_t system_pid_ = -1;
  std::unique_ptr<client> client_;
  bool running_ = false;
};

// ---------------------------------------------------------------- packages

/// The bench's packages for one run, all signed with a key pair made for the
/// run (HOME/signing/bench.key) that the run's system trusts (its .pub is
/// copied into HOME/keys/). The packing inputs are directories made in HOME
/// that hold a manifest and a symlink to the library the build made in
/// package_dir; the archives are written to HOME/outbox/, outside the
/// system's package directory, as an operator's files would be.
class bench_packages {
 public:
  /// home is the run's TROUPE_HOME; package_dir the build's bench package.
  bench_packages(const std::string& home, const std::string& package_dir);

  /// The bench package (group "bench", every actor type) as version.
  /// Returns the archive's path.
  [[nodiscard]] std::string bench(const std::string& version) const;
  /// Version 1.0.i of group "benchfresh" (Spawner, Idle): an id, and so a
  /// worker, of its own.
  [[nodiscard]] std::string fresh(int i) const;
  /// Version 1.0.i of group "benchbig" (Spawner): the library plus
  /// lib/ballast.bin, random bytes sized so that the archive is about
  /// big_archive_bytes.
  [[nodiscard]] std::string big(int i) const;
  /// Version MAJOR.0.i of group "benchbig" with a ballast of its own: about
  /// archive_bytes, random bytes drawn for this version (nothing of it is in
  /// an earlier version's tree), or (same_bytes) the same for every i.
  [[nodiscard]] std::string big(int major, int i, std::uint64_t archive_bytes, bool same_bytes) const;

  /// Group "benchphoenix" 1.0.0 (Idle), whose restart policy never gives up
  /// within a run and never waits: restarted at once, max_restarts 1000
  /// within 60 s, backoff 0ms (restart_after_sigkill).
  [[nodiscard]] std::string phoenix() const;

  /// Group "benchconv" as version: the bench package's library under a
  /// manifest of its own whose types require capabilities (the convention
  /// figures): Where requires bench_cap, Pinger side_a, Ponger side_b. The
  /// group "bench" manifest stays as it is (no requirements, no Where).
  [[nodiscard]] std::string convention(const std::string& version) const;

  /// The library of the bench package (what a worker dlopens).
  [[nodiscard]] const std::string& library() const { return library_; }

  static constexpr std::uint64_t big_archive_bytes = 5ull << 20;

 private:
  [[nodiscard]] std::string pack(const std::string& dir, const std::string& version,
                                 const std::vector<std::string>& private_files) const;

  std::string home_;
  std::string package_dir_;
  std::string library_;
  manifests::signing_key key_;
  std::string ballast_;  // HOME/big-ballast/ballast.bin
};

// ---------------------------------------------------------------- package figures

/// What the system's scan of its package directory costs (avail, load GROUP;
/// before keep pruned by file name, every load did it), in this process:
/// every archive of HOME/packages read and verified against HOME/keys
/// (re-read for each, as the system does). Median ms of 3 passes; archives
/// receives the number of archives.
double store_scan_ms(const std::string& home, std::size_t& archives);

/// package_load_5mib: `load` of a fresh ~5 MiB archive + spawn + first ask,
/// beside fork+exec+dlopen of the library (dlopen_exe). Leaves the path of
/// the last archive loaded in last_archive (for the verification figures).
/// package_load_5mib_new_bytes and package_load_50mib: the same steps, each
/// version with a ballast of new bytes (what a load writes), beside the same
/// baseline; the 50 MiB one states its ratio to the 5 MiB new-bytes figure.
void measure_package_load_sizes(live_system& sys, const bench_packages& pk, int samples, const std::string& dlopen_exe,
                                std::vector<figure>& out);
void measure_package_load(live_system& sys, const bench_packages& pk, int samples, const std::string& dlopen_exe,
                          std::string& last_archive, std::vector<figure>& out);

/// signature_verify (manifests::verify_signature of an archive's signed
/// statement) and archive_verify_5mib (manifests::open_archive of the file),
/// in this process, beside raw OpenSSL Ed25519 and SHA-256 of the same bytes.
void measure_verification(const std::string& home, const std::string& archive, int signature_calls, int archive_samples,
                          std::vector<figure>& out);

// ---------------------------------------------------------------- convention figures

struct convention_sizes {
  std::size_t rtt_samples = 3000;  // per repetition
  int rtt_reps = 7;
  std::uint64_t blast_msgs = 200000;  // per repetition of cross_system_throughput
  int chgcap_samples = 15;            // after 1 warm-up
  int kill_samples = 5;
  int load_samples = 10;  // after 1 warm-up
};

/// The convention figures (bench/convention_figures.cpp): three systems of
/// one convention and a lone one, started and always stopped here.
/// package_dir is the build's bench package; ready_exe troupe-bench-ready.
void measure_convention(const std::string& troupe_exe, const std::string& package_dir, const std::string& ready_exe,
                        const convention_sizes& z, std::vector<figure>& out);
/// The same convention on a one-node etcd started here (figures etcd_...);
/// unavailable when etcd is not installed.
void measure_convention_on_etcd(const std::string& troupe_exe, const std::string& package_dir,
                                const std::string& ready_exe, const convention_sizes& z, std::vector<figure>& out,
                                std::vector<unavailable_figure>& unavailable);

/// crash_restart_answering (bench/crash_figures.cpp): SIGKILL of a lone
/// system under steady asks until every named actor answers again, beside a
/// bare restart of an empty system; samples after one warm-up.
void measure_crash_restart(const std::string& troupe_exe, const std::string& package_dir, int samples, int named_actors,
                           std::vector<figure>& out);

// ---------------------------------------------------------------- scale figures

struct scale_sizes {
  std::uint64_t actors = 100000;  // N
  std::uint64_t window = 2000;    // spawn requests in flight
  int reps = 3;                   // each on a fresh system
};

/// Trusts the build's development key (BUILD/packages/dev.pub, copied into
/// HOME/keys/) and returns the path of the build's signed archive
/// BUILD/packages/FILE (encoders-1.0.0.tpkg: examples/encoders).
std::string trust_build_package(const std::string& home, const std::string& build_dir, const std::string& file);

/// The scale figures (bench/scale_figures.cpp): scale_spawn_100k_s,
/// scale_daemon_bytes_per_actor, scale_worker_bytes_per_actor and
/// scale_worker_restart_100k_s (N in the names when it is not 100,000).
void measure_scale(const std::string& troupe_exe, const std::string& build_dir, const scale_sizes& z,
                   std::vector<figure>& out);

// ---------------------------------------------------------------- python figures

/// The Python runtime's figures (python_ask_rtt_p50_*, python_in_worker_tell,
/// python_version_serving, python_actor_memory): bench/python_bench.py run as
/// a child against build_dir (its own system), its rows merged into out;
/// unavailable when the script fails or the Python worker is not built.
void measure_python(const std::string& build_dir, bool quick, std::vector<figure>& out,
                    std::vector<unavailable_figure>& unavailable);

}  // namespace troupe::bench
