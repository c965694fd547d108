#include "base/children.hpp"

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>

namespace troupe::base {

bool become_subreaper() { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }

std::vector<pid_t> own_children() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/children");
    for (long pid = 0; in >> pid;)
      if (pid > 1) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

sweep_result kill_children(const std::function<bool(pid_t)>& keep, std::chrono::milliseconds deadline) {
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + deadline;
  sweep_result r;
  std::vector<pid_t> unreaped;
  // Bounded in rounds as well as in time: each round kills every child seen,
  // and a child killed cannot fork again, so a round only finds what the
  // previous one's victims left.
  for (int round = 0; round < 10000; ++round) {
    std::vector<pid_t> victims;
    for (const pid_t pid : own_children())
      if (pid > 1 && !keep(pid)) victims.push_back(pid);
    if (victims.empty()) {
      r.left = 0;
      return r;
    }
    // Listed as our child a moment ago and not reaped since (only we reap
    // it): the pid still names that process.
    for (const pid_t pid : victims) ::kill(pid, SIGKILL);
    unreaped.clear();
    for (const pid_t pid : victims) {
      for (;;) {
        const pid_t got = ::waitpid(pid, nullptr, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR)) {
          r.killed += got == pid;
          break;
        }
        if (clock::now() >= until) {
          unreaped.push_back(pid);
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    if (clock::now() >= until) {
      r.left = unreaped.size();
      for (const pid_t pid : own_children())
        r.left += pid > 1 && !keep(pid) && !std::count(unreaped.begin(), unreaped.end(), pid);
      return r;
    }
  }
  return r;
}

}  // namespace troupe::base
