// supervisor/system.hpp — one system: the supervisor daemon of a host.
//
// It owns three sockets (docs/PROTOCOL.md): the public ROUTER on TCP for
// clients, the control ROUTER on ipc:// for its workers, and the gateway
// inbox (PULL) through which client asks and tells enter the data plane.
// It is a directory, not a broker: workers ask it where an address lives and
// then talk to each other directly.
//
// Threading: run() drives everything on the calling thread.
#pragma once

#include "base/exit_codes.hpp"
#include "ipc/json_limits.hpp"
#include "ipc/log.hpp"
#include "manifests/archive.hpp"
#include "manifests/requirement.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::supervisor {

/// One option of `troupe start` as the system was started with it: its value
/// as text and where it came from ("default", "flag", "env TROUPE_X",
/// "file PATH"); answered by the client command `config`.
struct configured_option {
  std::string value;
  std::string source;
};

struct system_options {
  std::uint16_t port = 1900;
  std::string bind_host = "127.0.0.1";
  std::filesystem::path home;  ///< TROUPE_HOME
  manifests::capabilities caps;
  std::filesystem::path worker_exe;  ///< troupe-worker
  /// troupe-worker-python, for packages of runtime python; empty: $TROUPE_WORKER_PYTHON, else
  /// troupe-worker-python beside worker_exe
  std::filesystem::path worker_python_exe;
  bool allow_unsigned = false;        ///< accept `load --unsigned DIR` (development only)
  std::uint32_t standby_workers = 1;  ///< workers started ahead of the next package load
  bool no_loss = true;                ///< acknowledged delivery (start --delivery no-loss)
  /// Workers of two systems exchange records over direct CurveZMQ links
  /// (start --direct-links on; docs/PROTOCOL.md §5.13), else through their supervisors.
  bool direct_links = true;
  manifests::archive_limits limits;  ///< what a package archive may weigh
  int ready_fd = -1;                 ///< written "ready PID\n" once serving, then closed
  std::string leader =
      "127.0.0.1:1900";  ///< the convention address; this system leads when it is its own (the CLI's default)
  std::string etcd;      ///< etcd endpoints: the convention is coordinated there (not by --leader)
  std::string convention = "default";                        ///< the convention's name on etcd (its keys' prefix)
  std::chrono::milliseconds heartbeat{200};                  ///< members and leader say they live this often
  std::chrono::milliseconds member_timeout{1000};            ///< silent this long: down, its actors go elsewhere
  std::size_t held_limit = 1000;                             ///< requests held per moving or pending actor
  std::size_t max_json_depth = ipc::default_max_json_depth;  ///< deepest JSON accepted from clients, workers and peers
  std::uint32_t max_workers = 512;                           ///< worker processes at most (standbys included)
  /// The largest frame a client may send on the public port: ZeroMQ drops a
  /// connection announcing more before buffering it (ZMQ_MAXMSGSIZE).
  std::uint64_t max_client_message = std::uint64_t{64} << 20;
  /// TCP connections at most (each costs a descriptor before it is
  /// authenticated): past it, or with few descriptors left, the port stops
  /// accepting until connections close.
  std::uint32_t max_tcp_clients = 1024;
  /// Clients following the event stream at most (`events` with follow).
  std::uint32_t max_event_subscribers = 16;
  /// Serve Prometheus metrics over HTTP here ("HOST:PORT"); empty: off.
  std::string metrics;
  /// Actors with series of their own on /metrics: globs on global names
  /// (--metrics-actors); at most metrics_actors_max of them, by name order.
  std::vector<std::string> metrics_actors;
  std::size_t metrics_actors_max = 20;
  /// Serve the web dashboard over HTTP here ("HOST:PORT"; the same as
  /// metrics: one listener for both); empty: off.
  std::string http;
  /// Plain-text TCP clients with every right (no keys): loopback only.
  bool insecure_tcp = false;
  /// Members of this group may use the local socket too (-1: only the
  /// system's own user and root).
  long client_gid = -1;
  /// Every option of `troupe start` by name (port, caps, ...), as resolved
  /// by the CLI from its flags, environment, configuration file and
  /// defaults; empty when the system was not started by the CLI.
  std::map<std::string, configured_option> configuration;
  // The log (docs/OPERATIONS.md, "Logs"); workers get the level too.
  int log_level = TROUPE_LOG_INFO;
  ipc::log_format log_format = ipc::log_format::text;
  /// file, stderr_stream or journal; unset: the journal when stderr is
  /// systemd's journal stream, else the file.
  std::optional<ipc::log_target> log_target;
  std::filesystem::path log_file;  ///< empty: HOME/systems/PORT/system.log
  std::uint64_t log_max_size = 0;  ///< rotate the file past this size (0: never; SIGHUP reopens)
  unsigned log_files = 5;          ///< rotated files kept: system.log.1 .. .N
};

/// Directory holding a system's state: HOME/systems/PORT.
[[nodiscard]] std::filesystem::path state_dir(const std::filesystem::path& home, std::uint16_t port);
/// Sets the process's umask to 077 and closes (0700 / 0600) the directories
/// of TROUPE_HOME a system uses and its log, as they may predate it.
void make_private(const std::filesystem::path& home, std::uint16_t port);

/// The log file of a system started with opts (its --log-file, or
/// HOME/systems/PORT/system.log).
[[nodiscard]] std::filesystem::path log_file_of(const system_options& opts);

/// Runs the system until it is told to stop; returns a process exit code.
int run_system(const system_options& opts);

}  // namespace troupe::supervisor
