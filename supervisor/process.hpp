// supervisor/process.hpp — starting child processes and learning of their
// exit from the Asio loop. Exit is observed through a pidfd (Linux >= 5.3):
// the loop sleeps until the kernel says the child is gone, within
// microseconds, with no polling and no SIGCHLD handler to share.
// Threading: the loop's thread only.
#pragma once

#include "manifests/manifest.hpp"

#include <troupe/result.hpp>

#include <boost/asio/io_context.hpp>

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace troupe::supervisor {

/// Descriptors this process has open, and the most it may (RLIMIT_NOFILE).
struct descriptor_use {
  std::size_t open = 0;
  std::size_t limit = 0;
  [[nodiscard]] std::size_t room() const { return open < limit ? limit - open : 0; }
};
/// Counts /proc/self/fd; a failure to count (itself a sign of exhaustion)
/// reports no room.
[[nodiscard]] descriptor_use descriptors_in_use();

/// Raises the soft descriptor limit to the hard one (a daemon's many
/// sockets); returns the limit now in force.
std::size_t raise_descriptor_limit();

/// How a child ended, as text for operators: "killed by SIGKILL", "exit code 3".
[[nodiscard]] std::string describe_wait_status(int wait_status);

class child_watch;

struct launch_spec {
  std::string exe;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  ///< added to (or replacing in) the parent's
  /// A cgroup v2 directory the child joins before exec (empty: none). At its
  /// exit the whole cgroup is killed (cgroup.kill).
  std::filesystem::path cgroup;
  /// Descriptors that become the child's stdout and stderr (-1: this
  /// process's own); the caller closes its copies.
  int stdout_fd = -1;
  int stderr_fd = -1;
};

/// How a child ended: its wait status and the CPU time it used.
struct child_exit {
  int wait_status = 0;
  std::chrono::milliseconds cpu{0};
};

/// Starts exe; on_exit runs on the loop once the child is reaped and what it
/// left behind is killed (below). The returned watch must outlive the child
/// or be cancelled.
///
/// Containment: the child leads a process group of its own, this process
/// becomes a child subreaper at the first launch, and when a child exits its
/// group (and its cgroup, if any) is killed before it is reaped; then every
/// child of this process that launch() did not start (orphans of a dead
/// worker's package, adopted here) is killed and reaped.
result<std::unique_ptr<child_watch>> launch(boost::asio::io_context& io, const launch_spec& spec,
                                            std::function<void(const child_exit&)> on_exit);

/// Applies a package's rlimits to child pid (one that launch() started and
/// that has not run the package's code yet): memory → RLIMIT_DATA, cpu_time →
/// RLIMIT_CPU (SIGXCPU at the limit, SIGKILL a second later), open_files →
/// RLIMIT_NOFILE. A limit is never raised above the child's hard one.
status apply_rlimits(pid_t pid, const manifests::resource_limits& limits);

class child_watch {
 public:
  ~child_watch();
  [[nodiscard]] pid_t pid() const { return pid_; }
  /// Sends a signal to the child (no-op once it is reaped).
  void signal(int sig) const;

 private:
  friend result<std::unique_ptr<child_watch>> launch(boost::asio::io_context&, const launch_spec&,
                                                     std::function<void(const child_exit&)>);
  struct impl;
  std::unique_ptr<impl> impl_;
  pid_t pid_ = -1;
};

}  // namespace troupe::supervisor
