// supervisor/cgroup.hpp — a cgroup v2 per worker process, where the host
// has cgroup v2 and the daemon may write to its own cgroup (delegated, as
// systemd's Delegate=yes gives a service). Without one, workers are
// contained by the child-subreaper chain alone (process.hpp,
// docs/SECURITY.md §2). Every failure here falls back to that: it is logged,
// never fatal. Threading: the loop's thread only.
#pragma once

#include "manifests/manifest.hpp"

#include <troupe/result.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::supervisor {

/// The cgroup path of this process in a /proc/PID/cgroup text ("0::/a/b" →
/// "/a/b"); nullopt when there is no cgroup v2 line.
[[nodiscard]] std::optional<std::string> unified_cgroup_of(std::string_view proc_cgroup_text);

class cgroup_tree {
 public:
  /// Detects cgroup v2 under root (normally /sys/fs/cgroup) and, if the
  /// daemon's cgroup D is writable, makes D/troupe-PID with the daemon moved
  /// to its leaf D/troupe-PID/daemon (cgroup v2 forbids processes beside
  /// child cgroups that use controllers), enabling memory and pids for the
  /// workers' cgroups where D allows it. Empty groups left by daemons that
  /// are gone, and what their workers left running, are removed first.
  /// why_not says why there is none.
  static std::optional<cgroup_tree> detect(const std::filesystem::path& root, std::string_view proc_cgroup_text,
                                           std::string& why_not);

  /// D/troupe-PID, where the worker cgroups are made.
  [[nodiscard]] const std::filesystem::path& base() const { return base_; }
  [[nodiscard]] bool has_memory() const { return memory_; }
  [[nodiscard]] bool has_pids() const { return pids_; }

  /// Makes the cgroup of one worker process (name: "wN-K"); its path.
  result<std::filesystem::path> make(const std::string& name) const;
  /// memory.max and pids.max from the package's limits, where enabled.
  status apply(const std::filesystem::path& cg, const manifests::resource_limits& limits) const;
  /// Whether the kernel's OOM killer killed a process of cg for memory.max.
  [[nodiscard]] static bool oom_killed(const std::filesystem::path& cg);
  /// Kills what is left in cg and removes it once it is empty (bounded
  /// wait); false when it stays.
  static bool remove(const std::filesystem::path& cg);

 private:
  std::filesystem::path base_;
  bool memory_ = false;
  bool pids_ = false;
};

}  // namespace troupe::supervisor
