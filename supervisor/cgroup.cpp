#include "supervisor/cgroup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace troupe::supervisor {

namespace fs = std::filesystem;

namespace {

bool write_file(const fs::path& p, std::string_view text) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The value of key in a flat-keyed cgroup file ("populated 1\nfrozen 0").
long keyed(const fs::path& p, std::string_view key) {
  std::istringstream in(read_file(p));
  std::string k;
  long v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return -1;
}

bool has_word(const std::string& text, std::string_view word) {
  std::istringstream in(text);
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

// Worker cgroups removed and their processes killed; the daemon's leaf
// removed when its daemon is gone (its cgroup.procs empty).
void remove_stale(const fs::path& group) {
  std::error_code ec;
  if (keyed(group / "daemon" / "cgroup.events", "populated") == 1) return;  // a live daemon's
  for (const auto& e : fs::directory_iterator(group, ec))
    if (e.is_directory(ec)) cgroup_tree::remove(e.path());
  ::rmdir(group.c_str());
}

}  // namespace

std::optional<std::string> unified_cgroup_of(std::string_view text) {
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("0::/")) return line.substr(3);
  return std::nullopt;
}

std::optional<cgroup_tree> cgroup_tree::detect(const fs::path& root, std::string_view proc_cgroup_text,
                                               std::string& why_not) {
  std::error_code ec;
  if (!fs::exists(root / "cgroup.controllers", ec)) {
    why_not = "no cgroup v2 (" + (root / "cgroup.controllers").string() + " absent)";
    return std::nullopt;
  }
  const auto own = unified_cgroup_of(proc_cgroup_text);
  if (!own) {
    why_not = "no cgroup v2 line in /proc/self/cgroup";
    return std::nullopt;
  }
  const fs::path d = root / fs::path(*own).relative_path();
  if (::access((d / "cgroup.procs").c_str(), W_OK) != 0 || ::access(d.c_str(), W_OK) != 0) {
    why_not = "the daemon's cgroup " + d.string() + " is not delegated to it (not writable)";
    return std::nullopt;
  }
  // Leftovers of daemons that are gone (killed, so they removed nothing).
  for (const auto& e : fs::directory_iterator(d, ec))
    if (e.is_directory(ec) && e.path().filename().string().starts_with("troupe-")) remove_stale(e.path());

  cgroup_tree t;
  t.base_ = d / ("troupe-" + std::to_string(::getpid()));
  const fs::path leaf = t.base_ / "daemon";
  if (::mkdir(t.base_.c_str(), 0700) != 0 && errno != EEXIST) {
    why_not = "cannot make " + t.base_.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (::mkdir(leaf.c_str(), 0700) != 0 && errno != EEXIST) {
    why_not = "cannot make " + leaf.string() + ": " + std::strerror(errno);
    ::rmdir(t.base_.c_str());
    return std::nullopt;
  }
  if (!write_file(leaf / "cgroup.procs", "0")) {
    why_not = "cannot move the daemon into " + leaf.string() + ": " + std::strerror(errno);
    ::rmdir(leaf.c_str());
    ::rmdir(t.base_.c_str());
    return std::nullopt;
  }
  // Controllers for the worker cgroups: D must pass them to troupe-PID (it
  // cannot while other processes share D: then there is no memory.max or
  // pids.max, and cgroup.kill still works), and troupe-PID to its children.
  for (const char* c : {"memory", "pids"}) {
    const std::string on = std::string("+") + c;
    if (!has_word(read_file(d / "cgroup.subtree_control"), c)) (void)write_file(d / "cgroup.subtree_control", on);
    const bool enabled =
        has_word(read_file(t.base_ / "cgroup.controllers"), c) && write_file(t.base_ / "cgroup.subtree_control", on);
    (std::string_view(c) == "memory" ? t.memory_ : t.pids_) = enabled;
  }
  return t;
}

result<fs::path> cgroup_tree::make(const std::string& name) const {
  const fs::path cg = base_ / name;
  if (::mkdir(cg.c_str(), 0700) != 0 && errno != EEXIST)
    return make_error(errc::io, "cannot make cgroup " + cg.string() + ": " + std::strerror(errno));
  return cg;
}

status cgroup_tree::apply(const fs::path& cg, const manifests::resource_limits& limits) const {
  if (limits.memory && memory_ && !write_file(cg / "memory.max", std::to_string(*limits.memory)))
    return make_error(errc::io, "cannot set " + (cg / "memory.max").string() + ": " + std::strerror(errno));
  if (limits.processes && pids_ && !write_file(cg / "pids.max", std::to_string(*limits.processes)))
    return make_error(errc::io, "cannot set " + (cg / "pids.max").string() + ": " + std::strerror(errno));
  return ok_v;
}

bool cgroup_tree::oom_killed(const fs::path& cg) { return keyed(cg / "memory.events", "oom_kill") > 0; }

bool cgroup_tree::remove(const fs::path& cg) {
  (void)write_file(cg / "cgroup.kill", "1");
  // Bounded: 200 tries 1 ms apart; killed processes leave in microseconds.
  for (int i = 0; i < 200; ++i) {
    if (::rmdir(cg.c_str()) == 0 || errno == ENOENT) return true;
    if (errno != EBUSY) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

}  // namespace troupe::supervisor
