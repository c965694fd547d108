#include "supervisor/process.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>

#include <dirent.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

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
                                            std::function<void(int)> on_exit) {
  auto env = boost::this_process::environment();
  bp::environment child_env = env;
  for (const auto& [k, v] : spec.env) child_env[k] = v;
  std::error_code ec;
  // A process group of its own: what the package's code starts goes with the
  // worker (killpg when it has exited, below).
  bp::child child(
      bp::exe = spec.exe, bp::args = spec.args, bp::env = child_env, bp::std_in < bp::null,
      bp::extend::on_exec_setup = [](auto&) { ::setpgid(0, 0); }, ec);
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
  auto watch = std::unique_ptr<child_watch>(new child_watch());
  watch->pid_ = pid;
  watch->impl_ = std::make_unique<child_watch::impl>(io);
  watch->impl_->fd.assign(pidfd);
  auto* state = watch->impl_.get();
  state->fd.async_wait(
      asio::posix::stream_descriptor::wait_read,
      [state, pid, alive = state->alive, on_exit = std::move(on_exit)](const boost::system::error_code& e) {
        if (!*alive || e) return;
        // Not reaped yet, so the group id cannot name anyone else's group:
        // whatever the worker left running in its group is killed.
        if (pid > 1) ::killpg(pid, SIGKILL);  // positive by construction; killpg(0 or 1) must never happen
        int status = 0;
        ::waitpid(pid, &status, 0);
        state->reaped = true;
        on_exit(status);
      });
  return watch;
}

}  // namespace troupe::supervisor
