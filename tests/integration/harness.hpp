// tests/integration/harness.hpp — a real troupe system for one test.
//
// test_system makes a temporary TROUPE_HOME under /tmp, picks a free TCP port
// and runs the real `troupe start --port P`. Several systems of one convention
// share a TROUPE_HOME: the later ones are made with the constructor that takes
// the first fixture (and, optionally, a fixed port). run() runs other `troupe`
// commands against it; client() talks to it directly through
// include/troupe/client.hpp. The destructor runs `troupe stop P` and then
// SIGKILLs whatever of this system is left (the daemon's process group and
// any troupe / troupe-worker process that names this fixture's TROUPE_HOME or
// port), waits for those processes to be gone and removes the directory, so
// no process outlives a test even when it fails.
//
// Nothing here sleeps to synchronise: callers wait on a command that returns,
// or poll an observable state with a bounded deadline (wait_for_actor).
//
// Threading: one thread per test_system; the process-wide state (the
// emergency kill list, the child-subreaper flag) is set up once.
#pragma once

#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::testing {

using json = nlohmann::json;

/// What a finished process left behind.
struct run_result {
  int exit_code = -1;  ///< exit status, or 128 + signal, or -1 when it had to be killed
  std::string out;
  std::string err;

  /// The last non-empty line of out (a command's result line), without '\n'.
  [[nodiscard]] std::string last_line() const;
  /// Number of non-empty lines of err.
  [[nodiscard]] std::size_t err_lines() const;
};

/// Runs exe with args, extra environment variables (a value of nullopt
/// removes the variable) and stdin text; returns once it has exited and both
/// its output pipes are closed. A process still running after timeout is
/// SIGKILLed (exit_code -1).
run_result run_process(const std::string& exe, const std::vector<std::string>& args,
                       const std::map<std::string, std::optional<std::string>>& env = {}, const std::string& input = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Calls pred until it returns true or deadline passes, 10 ms apart (a poll
/// interval, not a synchronisation: pred reads an observable state). Returns
/// whether pred held.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline = std::chrono::seconds(20));

/// SIGKILLs a process the test found (a worker's pid from `actors`, say):
/// REQUIREs it positive first, since kill() with 0 or -1 reaches a whole
/// process group or every process of the user, and REQUIREs the signal sent.
void kill_process(pid_t pid);

/// SIGSTOPs a process the test found (REQUIREd positive), and SIGCONTs it
/// when destroyed or resumed, whatever happens in between.
class stopped_process {
 public:
  explicit stopped_process(pid_t pid);
  ~stopped_process() { resume(); }
  stopped_process(const stopped_process&) = delete;
  stopped_process& operator=(const stopped_process&) = delete;
  void resume();

 private:
  pid_t pid_;
  bool stopped_ = false;
};

/// The worker pid of the only package loaded on sys (REQUIREd: one package, a live worker).
pid_t only_package_worker(const class test_system& sys);

/// CHECKs that a command failed with exit code `code`, one line on stderr
/// starting "troupe: " and nothing on stdout.
void check_one_line_failure(const run_result& r, int code);

/// Path of a program in the build's bin directory (troupe, troupe-worker, ...).
[[nodiscard]] std::string bin(const std::string& name);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, read, closed).
[[nodiscard]] std::uint16_t free_port();

/// A TCP connection to 127.0.0.1:port (connect() waits at most send_timeout
/// when given, as on a full backlog): its descriptor, or -1 (nothing left open).
[[nodiscard]] int connect_loopback(std::uint16_t port, std::chrono::milliseconds send_timeout = {});

/// The state of one actor as `troupe actors --json` shows it.
struct actor_view {
  json raw;
  [[nodiscard]] std::string state() const { return raw.value("state", std::string()); }
  [[nodiscard]] int worker_pid() const { return raw["worker_pid"].is_number() ? raw["worker_pid"].get<int>() : 0; }
  [[nodiscard]] int restarts() const { return raw.value("restarts", 0); }
  [[nodiscard]] std::string last_reason() const {
    return raw["last_reason"].is_string() ? raw["last_reason"].get<std::string>() : std::string();
  }
};

/// Where a system runs: its address (--bind, and how commands reach it) and
/// what starts it there (`ip netns exec NS`, for a network namespace the test
/// made).
struct host_spec {
  std::string address = "127.0.0.1";
  std::vector<std::string> launcher;
};

class test_system {
 public:
  /// Starts a system (`troupe start --port P START_ARGS...`) whose
  /// TROUPE_HOME trusts the build's development key (keys/dev.pub), so the
  /// build's signed packages load; throws std::runtime_error (failing the
  /// test) when it does not come up.
  explicit test_system(std::vector<std::string> start_args = {});
  /// The same in a new TROUPE_HOME of its own, on a given port (0: a free
  /// one, retried as above; any other port is tried once).
  test_system(std::uint16_t port, std::vector<std::string> start_args);
  /// A system that shares home_of's TROUPE_HOME (so the two trust each
  /// other's convention keys and share packages/): `troupe start --port PORT
  /// START_ARGS...` (0: a free port). It cleans up only its own processes
  /// (its daemon and the workers under systems/PORT/); the fixture that
  /// created the home removes it, and must be destroyed last (declare it
  /// first).
  test_system(const test_system& home_of, std::uint16_t port, std::vector<std::string> start_args = {});
  /// The same, on another host: the daemon starts through host.launcher
  /// and binds host.address, where commands reach it.
  test_system(const test_system& home_of, std::vector<std::string> start_args, host_spec host);
  /// A system of its own TROUPE_HOME on another host (see above).
  test_system(std::vector<std::string> start_args, host_spec host);
  ~test_system();
  test_system(const test_system&) = delete;
  test_system& operator=(const test_system&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  /// "ADDRESS:PORT" (127.0.0.1 unless started on another host)
  [[nodiscard]] std::string where() const;
  [[nodiscard]] const std::filesystem::path& home() const { return home_; }
  /// TROUPE_HOME/systems/PORT
  [[nodiscard]] std::filesystem::path state_dir() const;
  /// How a client of this test reaches the system: through its home (the
  /// local socket, as the system's user).
  [[nodiscard]] troupe::connect_options connect_options() const { return {home_, {}, false}; }
  /// The local client socket's endpoint, for raw ZeroMQ clients.
  [[nodiscard]] std::string client_endpoint() const {
    return "ipc://" + (state_dir() / "run" / "client.sock").string();
  }
  /// The socket of the current run named name ("c.sock", "w1-1.sock"): run/TAG-NAME,
  /// TAG drawn at each start; empty when there is none.
  [[nodiscard]] std::filesystem::path run_socket(const std::string& name) const;
  [[nodiscard]] pid_t daemon_pid() const { return daemon_pid_; }

  /// `troupe --system 127.0.0.1:PORT ARGS...` with this fixture's TROUPE_HOME.
  run_result run(std::initializer_list<std::string> args) const;
  run_result run(const std::vector<std::string>& args) const;
  /// Another program of the build (e.g. encoders-client) with this fixture's
  /// environment (TROUPE_HOME, TROUPE_SYSTEM) and stdin text.
  run_result run_program(const std::string& name, const std::vector<std::string>& args,
                         const std::string& input = {}) const;

  /// A client connected to this system.
  troupe::client& client();

  /// `troupe load PKG` (an archive, a group or `--unsigned DIR` as extra
  /// args); returns the package id (last line). REQUIREs success.
  std::string load(const std::string& pkg, const std::vector<std::string>& extra = {}) const;
  /// `troupe spawn ARGS...`; returns the address (last line). REQUIREs success.
  std::string spawn(const std::vector<std::string>& args) const;
  /// `troupe ask TARGET JSON`; returns the printed reply parsed. REQUIREs success.
  json ask(const std::string& target, const json& payload) const;

  /// `troupe actors --json`, parsed.
  [[nodiscard]] json actors() const;
  /// The actor at address, or nullopt when it is not listed.
  [[nodiscard]] std::optional<actor_view> actor(const std::string& address) const;
  /// Polls `actors --json` until pred holds for the actor at address or
  /// deadline passes; returns the last view seen (nullopt: never listed).
  std::optional<actor_view> wait_for_actor(const std::string& address,
                                           const std::function<bool(const actor_view&)>& pred,
                                           std::chrono::seconds deadline = std::chrono::seconds(20)) const;

  /// Number of live troupe / troupe-worker processes that belong to this
  /// fixture (their environment or command line names its TROUPE_HOME or
  /// port).
  [[nodiscard]] std::size_t live_processes() const;

  /// `troupe stop PORT`, as the destructor does; returns its result. After
  /// this the destructor only cleans up.
  run_result stop();

  /// SIGKILLs the daemon alone (its workers follow through their
  /// parent-death signal) and waits until it has exited, reaping it only: safe
  /// while another thread runs commands. After this the destructor only
  /// cleans up.
  void kill_daemon();

  /// Sends sig to the daemon alone (SIGSTOP, SIGCONT); REQUIREs a daemon.
  void signal_daemon(int sig) const;

  /// The daemon's log (systems/PORT/system.log).
  [[nodiscard]] std::string log() const;

 private:
  void start(std::uint16_t port, const std::vector<std::string>& start_args);
  void kill_everything() noexcept;

  std::filesystem::path home_;
  host_spec host_;
  bool owns_home_ = true;  ///< created home_ (removes it; its cleanup covers every system there)
  std::uint16_t port_ = 0;
  pid_t daemon_pid_ = 0;
  pid_t daemon_pgid_ = 0;
  bool stopped_ = false;
  std::optional<troupe::client> client_;
};

}  // namespace troupe::testing
