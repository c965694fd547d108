// base/children.hpp — a process's own children: becoming the reaper of its
// descendants' orphans (PR_SET_CHILD_SUBREAPER), listing its children, and
// killing and reaping them. Used by the daemon and by each worker so that
// nothing a package starts outlives its worker (docs/SECURITY.md §2).
// Only ever signals positive pids this process is the parent of.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <vector>

namespace troupe::base {

/// Orphans of this process's descendants become its children (instead of
/// init's), where it can find, kill and reap them. False when refused.
bool become_subreaper();

/// The pids of this process's children, from /proc/self/task/*/children
/// (an orphan adopted by a subreaper may be the child of any of its threads).
[[nodiscard]] std::vector<pid_t> own_children();

struct sweep_result {
  std::size_t killed = 0;  ///< children SIGKILLed and reaped
  std::size_t left = 0;    ///< children still there at the deadline (unreaped or just adopted)
};

/// SIGKILLs and reaps every child for which keep(pid) is false, round after
/// round (a killed child's own children are adopted in turn), until none is
/// left, within deadline. Never waits for a kept child, so it is safe beside
/// code that reaps those by pid.
sweep_result kill_children(const std::function<bool(pid_t)>& keep, std::chrono::milliseconds deadline);

}  // namespace troupe::base
