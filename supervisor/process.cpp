#include "supervisor/process.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>

#include "base/children.hpp"
#include "ipc/log.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <set>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace bp = boost::process;

std::string describe_wait_status(int st) {
  if (WIFSIGNALED(st)) {
    const char* name = sigabbrev_np(WTERMSIG(st));
    return std::string("killed by SIG") + (name ? name : std::to_string(WTERMSIG(st)).c_str());
  }
  if (WIFEXITED(st)) return "exit code " + std::to_string(WEXITSTATUS(st));
  return "ended with wait status " + std::to_string(st);
}

descriptor_use descriptors_in_use() {
  descriptor_use u;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) u.limit = lim.rlim_cur;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) {
    u.open = u.limit;
    return u;
  }
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++u.open;
  ::closedir(d);
  if (u.open > 0) --u.open;  // the directory's own descriptor, closed again
  return u;
}

std::size_t raise_descriptor_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur;
}

namespace {

// The children launch() started and has not reaped: every other child of
// this process is an orphan adopted from a dead worker's package.
std::set<pid_t>& launched() {
  static std::set<pid_t> pids;
  return pids;
}

// Kills and reaps the adopted orphans; logs what it could not.
void sweep_orphans() {
  const auto r = base::kill_children([](pid_t pid) { return launched().count(pid) > 0; }, std::chrono::seconds(1));
  if (r.killed > 0)
    ipc::log_line(TROUPE_LOG_INFO, {},
                  "killed " + std::to_string(r.killed) + " process(es) a package left behind its worker");
  if (r.left > 0)
    ipc::log_line(TROUPE_LOG_WARN, {},
                  std::to_string(r.left) +
                      " process(es) a package left behind could not be reaped within 1 s; "
                      "retried at the next worker exit");
}

bool write_file(const std::filesystem::path& p, std::string_view text) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

}  // namespace

status apply_rlimits(pid_t pid, const manifests::resource_limits& limits) {
  if (pid <= 0) return make_error(errc::internal, "no process to limit");
  auto set = [pid](__rlimit_resource resource, rlim_t soft, rlim_t hard, const char* what) -> status {
    rlimit old{};
    if (::prlimit(pid, resource, nullptr, &old) != 0)
      return make_error(errc::io, std::string("cannot read the worker's ") + what + " limit: " + std::strerror(errno));
    // Lowering needs no privilege; raising past the hard limit would.
    const rlimit lim{std::min(soft, old.rlim_max), std::min(hard, old.rlim_max)};
    if (::prlimit(pid, resource, &lim, nullptr) != 0)
      return make_error(errc::io, std::string("cannot set the worker's ") + what + " limit: " + std::strerror(errno));
    return ok_v;
  };
  if (limits.memory)
    if (auto s = set(RLIMIT_DATA, *limits.memory, *limits.memory, "memory"); !s) return s;
  if (limits.cpu_time) {
    // SIGXCPU at the limit; SIGKILL one second later if it is caught or ignored.
    const auto secs = static_cast<rlim_t>(limits.cpu_time->count());
    if (auto s = set(RLIMIT_CPU, secs, secs + 1, "CPU time"); !s) return s;
  }
  if (limits.open_files)
    if (auto s = set(RLIMIT_NOFILE, *limits.open_files, *limits.open_files, "descriptor"); !s) return s;
  return ok_v;
}

struct child_watch::impl {
  explicit impl(asio::io_context& io) : fd(io) {}
  asio::posix::stream_descriptor fd;
  bool reaped = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

child_watch::~child_watch() {
  if (impl_) {
    *impl_->alive = false;
    impl_->fd.cancel();
  }
}

void child_watch::signal(int sig) const {
  // pid_ is positive by construction (launch refuses anything else); the
  // check stays because kill() with 0 or -1 reaches a group or every process.
  if (impl_ && !impl_->reaped && pid_ > 0) ::kill(pid_, sig);
}

result<std::unique_ptr<child_watch>> launch(asio::io_context& io, const launch_spec& spec,
                                            std::function<void(const child_exit&)> on_exit) {
  // Once, before any worker can die: its package's orphans are then adopted
  // here, where the exit below kills them, instead of by init.
  static const bool subreaper = base::become_subreaper();
  if (!subreaper) ipc::log_line(TROUPE_LOG_WARN, {}, "cannot become a child subreaper: orphans of packages escape");
  auto env = boost::this_process::environment();
  bp::environment child_env = env;
  // The service manager's notify socket is the daemon's alone (sd_notify(3)):
  // no worker, nor the package code it runs, may speak for the service.
  child_env.erase("NOTIFY_SOCKET");
  for (const auto& [k, v] : spec.env) child_env[k] = v;
  std::error_code ec;
  // A process group of its own: what the package's code starts goes with the
  // worker (killpg when it has exited, below). Its cgroup is joined here,
  // before exec, so that nothing it starts is ever outside it.
  const std::string cgroup_procs = spec.cgroup.empty() ? std::string() : (spec.cgroup / "cgroup.procs").string();
  bp::child child(
      bp::exe = spec.exe, bp::args = spec.args, bp::env = child_env, bp::std_in < bp::null,
      bp::extend::on_exec_setup =
          [&cgroup_procs, out = spec.stdout_fd, err = spec.stderr_fd](auto&) {
            ::setpgid(0, 0);
            // dup2 clears close-on-exec on the copy: only 1 and 2 pass exec.
            if (out >= 0) ::dup2(out, STDOUT_FILENO);
            if (err >= 0) ::dup2(err, STDERR_FILENO);
            if (!cgroup_procs.empty()) {  // async-signal-safe calls only, between fork and exec
              const int fd = ::open(cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
              if (fd >= 0) {
                (void)!::write(fd, "0", 1);
                ::close(fd);
              }
            }
          },
      ec);
  // Boost.Process can fail without setting ec (at the descriptor limit its
  // error pipe cannot be made) and then reports pid -1: a pid that kill()
  // would take for "every process". Only a positive pid is a child of ours.
  const pid_t pid = child.valid() ? child.id() : -1;
  if (ec || pid <= 0) {
    const int e = errno;
    child.detach();
    return make_error(errc::io,
                      "cannot start " + spec.exe + ": " + (ec ? ec.message() : std::string(std::strerror(e))));
  }
  child.detach();  // we reap it ourselves through the pidfd

  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int e = errno;
    ::kill(pid, SIGKILL);  // pid > 0: our own child, not yet reaped
    ::waitpid(pid, nullptr, 0);
    return make_error(errc::io, std::string("cannot watch the new process (pidfd_open): ") + std::strerror(e));
  }
  launched().insert(pid);
  auto watch = std::unique_ptr<child_watch>(new child_watch());
  watch->pid_ = pid;
  watch->impl_ = std::make_unique<child_watch::impl>(io);
  watch->impl_->fd.assign(pidfd);
  auto* state = watch->impl_.get();
  state->fd.async_wait(asio::posix::stream_descriptor::wait_read,
                       [state, pid, cgroup = spec.cgroup, alive = state->alive,
                        on_exit = std::move(on_exit)](const boost::system::error_code& e) {
                         if (!*alive || e) return;
                         // Not reaped yet, so the group id cannot name anyone else's group:
                         // whatever the worker left running in its group is killed.
                         if (pid > 1)
                           ::killpg(pid, SIGKILL);  // positive by construction; killpg(0 or 1) must never happen
                         // Its cgroup holds everything it started, setsid() or not (Linux >= 5.14).
                         if (!cgroup.empty()) (void)write_file(cgroup / "cgroup.kill", "1");
                         child_exit how;
                         rusage usage{};
                         ::wait4(pid, &how.wait_status, 0, &usage);
                         launched().erase(pid);
                         state->reaped = true;
                         how.cpu = std::chrono::milliseconds((usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                                                             (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000);
                         // Its children were adopted here when it died (this process is their
                         // subreaper): kill and reap them, and what they started in turn.
                         sweep_orphans();
                         on_exit(how);
                       });
  return watch;
}

}  // namespace troupe::supervisor
