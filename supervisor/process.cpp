#include "supervisor/process.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/io.hpp>

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
  if (impl_ && !impl_->reaped) ::kill(pid_, sig);
}

result<std::unique_ptr<child_watch>> launch(asio::io_context& io, const launch_spec& spec,
                                            std::function<void(int)> on_exit) {
  auto env = boost::this_process::environment();
  bp::environment child_env = env;
  for (const auto& [k, v] : spec.env) child_env[k] = v;
  std::error_code ec;
  bp::child child(bp::exe = spec.exe, bp::args = spec.args, bp::env = child_env,
                  bp::std_in < bp::null, ec);
  if (ec) return make_error(errc::io, "cannot start " + spec.exe + ": " + ec.message());
  const pid_t pid = child.id();
  child.detach();  // we reap it ourselves through the pidfd

  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return make_error(errc::io, std::string("pidfd_open failed: ") + std::strerror(errno));
  }
  auto watch = std::unique_ptr<child_watch>(new child_watch());
  watch->pid_ = pid;
  watch->impl_ = std::make_unique<child_watch::impl>(io);
  watch->impl_->fd.assign(pidfd);
  auto* state = watch->impl_.get();
  state->fd.async_wait(asio::posix::stream_descriptor::wait_read,
                       [state, pid, alive = state->alive, on_exit = std::move(on_exit)](
                           const boost::system::error_code& e) {
                         if (!*alive || e) return;
                         int status = 0;
                         ::waitpid(pid, &status, 0);
                         state->reaped = true;
                         on_exit(status);
                       });
  return watch;
}

}  // namespace troupe::supervisor
