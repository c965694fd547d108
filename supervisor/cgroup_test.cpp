#include "supervisor/cgroup.hpp"

#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace troupe::supervisor;
namespace fs = std::filesystem;

TEST_CASE("the unified cgroup line is found", "[cgroup]") {
  CHECK(unified_cgroup_of("12:pids:/x\n0::/system.slice/troupe.service\n") == "/system.slice/troupe.service");
  CHECK(unified_cgroup_of("0::/\n") == "/");
  CHECK_FALSE(unified_cgroup_of("12:pids:/x\n1:name=systemd:/y\n"));
  CHECK_FALSE(unified_cgroup_of(""));
}

TEST_CASE("no cgroup v2 falls back with a reason", "[cgroup]") {
  troupe::testing::temp_dir root;
  std::string why;
  CHECK_FALSE(cgroup_tree::detect(root.path, "0::/a\n", why));
  CHECK(why == "no cgroup v2 (" + (root.path / "cgroup.controllers").string() + " absent)");

  std::ofstream(root.path / "cgroup.controllers") << "memory pids\n";
  CHECK_FALSE(cgroup_tree::detect(root.path, "1:name=systemd:/a\n", why));
  CHECK(why == "no cgroup v2 line in /proc/self/cgroup");
  CHECK_FALSE(cgroup_tree::detect(root.path, "0::/missing\n", why));
  CHECK(why == "the daemon's cgroup " + (root.path / "missing").string() + " is not delegated to it (not writable)");
}

TEST_CASE("a cgroup the daemon cannot join is left as it was", "[cgroup]") {
  // A plain directory, not a cgroupfs: the daemon's leaf has no cgroup.procs.
  troupe::testing::temp_dir root;
  std::ofstream(root.path / "cgroup.controllers") << "memory pids\n";
  fs::create_directories(root.path / "svc");
  std::ofstream(root.path / "svc" / "cgroup.procs") << "";
  std::string why;
  CHECK_FALSE(cgroup_tree::detect(root.path, "0::/svc\n", why));
  CHECK_THAT(why, Catch::StartsWith("cannot move the daemon into "));
  CHECK(std::distance(fs::directory_iterator(root.path / "svc"), fs::directory_iterator()) == 1);
}
