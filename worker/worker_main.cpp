#include "worker/worker_main.hpp"
#include "base/children.hpp"
#include "ipc/log.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::worker {

int worker_main(int argc, char** argv, std::string_view program, package_loader loader) {
  using troupe::ipc::set_log_tag;
  // Never outlive the supervisor: the kernel sends SIGTERM when it dies, and
  // the runtime turns that into an orderly exit of every actor.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return troupe::worker_exit_control_lost;

  options opts;
  std::optional<int> log_level;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--control")
      opts.control_endpoint = value;
    else if (flag == "--inbox")
      opts.inbox_endpoint = value;
    else if (flag == "--marker")
      opts.marker_file = value;
    else if (flag == "--fence")
      opts.fence_file = value;
    else if (flag == "--log-level")
      log_level = troupe::ipc::parse_log_level(value);
    else if (flag == "--worker-id")
      opts.worker_id = static_cast<std::uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    else {
      std::fprintf(stderr, "%.*s: unknown option %s\n", static_cast<int>(program.size()), program.data(), argv[i]);
      return troupe::worker_exit_usage;
    }
  }
  if (argc % 2 == 0 || opts.control_endpoint.empty() || opts.inbox_endpoint.empty() || opts.worker_id == 0) {
    std::fprintf(stderr,
                 "usage: %.*s --control EP --inbox EP --worker-id N [--marker FILE] [--fence FILE]\n"
                 "       [--log-level debug|info|warn|error]\n"
                 "(started by the supervisor, not by hand; it names the package in its answer to hello)\n",
                 static_cast<int>(program.size()), program.data());
    return troupe::worker_exit_usage;
  }
  set_log_tag("w" + std::to_string(opts.worker_id));
  // Started by a daemon: its stderr is a socket the daemon reads
  // (ipc/log_relay.hpp), which takes records with their level, time and
  // actor. Without --log-level, text lines on stderr.
  if (log_level) {
    troupe::ipc::log_config log;
    log.level = *log_level;
    log.target = troupe::ipc::log_target::relay;
    (void)troupe::ipc::configure_log(log);
  }
  // Orphans of what the package starts (a double fork, setsid()) become this
  // worker's children instead of init's, and are killed below when it
  // exits in order. If it dies instead, its children go to the daemon's
  // subreaper, which kills them (supervisor/process.hpp).
  if (!troupe::base::become_subreaper())
    troupe::ipc::log_line(TROUPE_LOG_WARN, {}, "cannot become a child subreaper: orphans of the package escape");
  opts.loader = std::move(loader);
  runtime rt(std::move(opts));
  const int code = rt.run();
  // Its actors are gone: nothing the package started may outlive them. Done
  // before the runtime is destroyed, while its handler still takes the
  // SIGTERMs a dying daemon sends (one per thread of the daemon's that
  // exits): once it is gone they would kill this process mid-sweep.
  const auto left = troupe::base::kill_children([](pid_t) { return false; }, std::chrono::seconds(2));
  if (left.killed > 0)
    troupe::ipc::log_line(TROUPE_LOG_INFO, {},
                          "killed " + std::to_string(left.killed) + " process(es) its package left running");
  return code;
}

}  // namespace troupe::worker
