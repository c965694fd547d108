// Limits of a system under pressure: at its descriptor limit and at its
// worker cap a spawn is refused with a coded one-line error, nothing outside
// the system is ever signalled, and the system serves on. These tests run as
// the init of their own pid namespace (in_pid_namespace.sh): a kill(-1) from a
// buggy daemon would reach only the namespace, where the canary below sees it.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

/// A process of the test's own that must outlive everything the system does.
class canary {
 public:
  canary() {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      for (;;) ::pause();
    }
  }
  ~canary() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);  // our own child: positive, created above
      ::waitpid(pid_, nullptr, 0);
    }
  }
  /// True while the canary lives (it was not signalled by anyone).
  [[nodiscard]] bool alive() const {
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

std::size_t open_descriptors(pid_t pid) {
  std::size_t n = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

/// Spawns Loner (a worker per actor) until a spawn fails; returns the
/// addresses spawned and the failing run's result.
std::pair<std::vector<std::string>, troupe::testing::run_result> spawn_until_refused(const test_system& sys) {
  std::vector<std::string> spawned;
  for (int i = 0; i < 64; ++i) {
    auto r = sys.run({"spawn", "Loner"});
    if (r.exit_code != 0) return {spawned, r};
    spawned.push_back(r.last_line());
  }
  FAIL("64 workers started: no limit applied");
  return {};
}

}  // namespace

TEST_CASE("at its descriptor limit a system refuses new workers with a limit error and signals nothing else",
          "[integration][limits]") {
  // Before: Boost.Process reported pid -1 without an error when it could not
  // start a worker, and the clean-up sent SIGKILL to pid -1 (every process
  // of the user); or ZeroMQ aborted on EMFILE accepting the worker's link.
  canary bird;
  test_system sys;
  sys.load(TROUPE_SUPERVISION_PKG);
  const pid_t daemon = sys.daemon_pid();
  REQUIRE(daemon > 0);
  // Room for a few workers beyond what is open now.
  const rlimit tight{open_descriptors(daemon) + 80, open_descriptors(daemon) + 80};
  REQUIRE(::prlimit(daemon, RLIMIT_NOFILE, &tight, nullptr) == 0);

  auto [spawned, refused] = spawn_until_refused(sys);
  CHECK(spawned.size() >= 2);
  troupe::testing::check_one_line_failure(refused, 1);
  CHECK_THAT(refused.err, Catch::Contains("cannot start another worker") && Catch::Contains("descriptors in use"));
  CHECK(bird.alive());
  CHECK(sys.run({"status"}).exit_code == 0);
  for (const auto& a : spawned) CHECK(sys.ask(a, json{{"pid", true}}).is_number());
  // Room comes back with the workers that go.
  REQUIRE(sys.run({"kill", spawned.back()}).exit_code == 0);
  REQUIRE(sys.run({"kill", spawned.front()}).exit_code == 0);
  CHECK(sys.run({"spawn", "Loner"}).exit_code == 0);
  CHECK(bird.alive());
}

TEST_CASE("--max-workers caps the worker processes of a system with a coded refusal", "[integration][limits]") {
  canary bird;
  test_system sys({"--max-workers", "4"});
  sys.load(TROUPE_SUPERVISION_PKG);
  auto [spawned, refused] = spawn_until_refused(sys);
  troupe::testing::check_one_line_failure(refused, 1);
  CHECK_THAT(refused.err, Catch::Contains("4 run, the most this system allows (start --max-workers)"));
  // The daemon, and four workers at most (the package's, a standby, Loners).
  CHECK(sys.live_processes() <= 5);
  CHECK(bird.alive());
  for (const auto& a : spawned) CHECK(sys.ask(a, json{{"pid", true}}).is_number());
  auto usage = sys.run({"start", "--port", "1", "--max-workers", "0"});
  CHECK(usage.exit_code == 2);
  CHECK_THAT(usage.err, Catch::StartsWith("troupe start: --max-workers takes a number from 1 to 100000"));
}

TEST_CASE("--max-held caps the messages held for an actor that is not running yet", "[integration][limits]") {
  test_system sys({"--max-held", "3"});
  sys.load(TROUPE_SUPERVISION_PKG);
  // Stopped, the worker cannot create the actor: it stays starting, and
  // what clients send it is held.
  const pid_t worker_pid = troupe::testing::only_package_worker(sys);
  troupe::testing::stopped_process worker(worker_pid);
  troupe::testing::run_result spawned;
  std::thread spawner([&] { spawned = sys.run({"spawn", "Watcher", "--name", "slow"}); });
  struct joiner {
    std::thread& t;
    ~joiner() { t.join(); }
  } joins{spawner};
  // Held by the gateway only once the system has its record ("starting"):
  // until then the convention is placing it (a create on the peer link to
  // itself), and what it holds meanwhile is not counted here.
  REQUIRE(troupe::testing::eventually(
      [&] {
        for (const auto& a : sys.actors())
          if (a.value("name", json()) == "slow" && a.value("state", std::string()) == "starting") return true;
        return false;
      },
      5s));
  CHECK(sys.run({"tell", "slow", "1"}).exit_code == 0);
  CHECK(sys.run({"tell", "slow", "2"}).exit_code == 0);
  CHECK(sys.run({"tell", "slow", "3"}).exit_code == 0);
  const auto refused = sys.run({"tell", "slow", "4"});
  // Should it ever be accepted, what the system says then.
  INFO("stopped worker " << worker_pid << "; list: " << sys.run({"list", "--json"}).out
                         << "; actors: " << sys.run({"actors", "--json"}).out);
  troupe::testing::check_one_line_failure(refused, 1);
  CHECK_THAT(refused.err, Catch::Contains("3 messages already wait for @"));
  CHECK_THAT(refused.err, Catch::Contains("(start --max-held)"));
  CHECK(json::parse(sys.run({"status", "--json"}).out)["limits"]["max_held"] == 3);
  worker.resume();
}
