// bench/bench.hpp — pieces of troupe-bench (docs/PERFORMANCE.md): the
// baselines measured in the same run (baselines.cpp) and a live troupe system
// started, driven and always stopped by the bench (live_system.cpp).
#pragma once

#include <troupe/address.hpp>
#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace troupe::bench {

using json = nlohmann::json;

/// A failure that ends the run (the system is still stopped).
struct bench_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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

/// Entry points of the hidden sub-commands troupe-bench re-executes itself
/// with, so that the raw ZeroMQ peer is a separate process.
int zmq_echo_main(const std::string& pull_ep, const std::string& push_ep);
int zmq_sink_main(const std::string& pull_ep, const std::string& push_ep, std::uint64_t n,
                  int reps);

// ---------------------------------------------------------------- baselines

struct rtt_stats {
  double p50_us = 0;
  double p99_us = 0;
};

/// Raw ZeroMQ ipc:// between this process and an echo child: PUSH/PULL both
/// ways (the same socket pattern as troupe's data plane), blocking calls.
class raw_zmq_rtt {
 public:
  explicit raw_zmq_rtt(const std::string& dir, std::size_t payload_bytes);
  ~raw_zmq_rtt();
  /// n timed round trips of one payload.
  rtt_stats run(std::size_t n);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Raw ZeroMQ ipc:// one-way: this process PUSHes n messages per repetition
/// to a PULL child, which stamps the arrival of the n-th (blocking calls).
class raw_zmq_oneway {
 public:
  raw_zmq_oneway(const std::string& dir, std::uint64_t n, int reps, std::size_t payload_bytes);
  ~raw_zmq_oneway();
  /// One repetition (at most `reps`); msg/s from the first send to the n-th
  /// arrival.
  double run();

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

/// fork+exec of troupe-bench-ready until it writes "ready" to a pipe. ms.
double bare_fork_exec_ms(const std::string& ready_exe);

// ---------------------------------------------------------------- live system

/// A troupe system started for the run on a free port with a temporary
/// TROUPE_HOME. stop() (also run by the destructor and by SIGINT/SIGTERM)
/// stops it with `troupe stop` and kills whatever is left of it.
class live_system {
 public:
  explicit live_system(std::string troupe_exe);
  ~live_system();
  live_system(const live_system&) = delete;
  live_system& operator=(const live_system&) = delete;

  void start();
  void stop();

  [[nodiscard]] const std::string& home() const { return home_; }
  [[nodiscard]] pid_t system_pid() const { return system_pid_; }

  /// Loads a package directory; returns its id.
  std::string load(const std::string& dir);
  address spawn(const std::string& type, const std::string& package_id);
  json ask(address target, const json& payload,
           std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Asks `question` every interval until done(reply) or timeout.
  json poll(address target, const json& question, const std::function<bool(const json&)>& done,
            std::chrono::milliseconds timeout, std::chrono::milliseconds interval);
  /// The worker hosting package_id (also remembered for clean-up).
  pid_t worker_pid(const std::string& package_id);

 private:
  int run_cli(const std::vector<std::string>& args);

  std::string troupe_exe_;
  std::string home_;
  std::uint16_t port_ = 0;
  pid_t system_pid_ = -1;
  std::unique_ptr<client> client_;
  bool running_ = false;
};

}  // namespace troupe::bench
