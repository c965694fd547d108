// Nothing a package starts outlives its worker: the Escaper of the "contain"
// fixture starts a process that leaves its worker's process group and
// session (fork, setsid(), fork), and each way a worker ends must take that
// process with it, reaped (not left a zombie). And the limits of a
// manifest's `limits:` apply to its workers (fixture "contain_limited").
// Run in a pid namespace of their own: they kill workers and daemons and
// exhaust descriptors and memory.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

using troupe::testing::actor_view;
using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

/// "running", "zombie" or "gone" (no process, or the pid now names another
/// one) for the escapee at pid.
std::string escapee_state(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const auto open = stat.find('(');
  const auto close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) return "gone";
  if (stat.substr(open + 1, close - open - 1) != "troupe-escapee") return "gone";
  return stat[close + 2] == 'Z' ? "zombie" : "running";
}

/// Spawns an Escaper, has it start an escapee, and checks that it runs
/// outside its worker's group and session.
struct escape_fixture {
  test_system& sys;
  std::string package;  // its id
  std::string actor;
  int escapee = 0;
  int worker = 0;

  explicit escape_fixture(test_system& s) : sys(s) {
    package = sys.load(TROUPE_CONTAIN_PKG);
    actor = sys.spawn({"Escaper"});
    escape();
  }

  void escape() {
    worker = sys.actor(actor)->worker_pid();
    REQUIRE(worker > 0);
    const json pid = sys.ask(actor, json{{"escape", true}});
    REQUIRE(pid.is_number_integer());
    escapee = pid.get<int>();
    REQUIRE(escapee > 1);
    REQUIRE(escapee_state(escapee) == "running");
    REQUIRE(::getsid(escapee) != ::getsid(worker));
  }

  /// Whether the escapee is gone (and reaped) within 10 s.
  [[nodiscard]] std::string final_state() const {
    std::string state;
    troupe::testing::eventually(
        [&] {
          state = escapee_state(escapee);
          return state == "gone";
        },
        10s);
    if (state != "gone") {
      // Who holds it: its parent, for the failure's message.
      std::ifstream status("/proc/" + std::to_string(escapee) + "/status");
      for (std::string line; std::getline(status, line);)
        if (line.starts_with("PPid:")) {
          std::ifstream cmd("/proc/" + line.substr(line.find_first_not_of(" \t", 5)) + "/cmdline");
          std::string parent((std::istreambuf_iterator<char>(cmd)), {});
          for (char& c : parent) c = c == '\0' ? ' ' : c;
          state += " (parent " + line.substr(5) + ": " + parent + ")";
        }
    }
    return state;
  }
};

}  // namespace

TEST_CASE("escapee dies with stop", "[integration][contain]") {
  test_system sys;
  escape_fixture f(sys);
  REQUIRE(sys.stop().exit_code == 0);
  CHECK(f.final_state() == "gone");
}

TEST_CASE("escapee dies with unload", "[integration][contain]") {
  test_system sys;
  escape_fixture f(sys);
  REQUIRE(sys.run({"unload", f.package}).exit_code == 0);
  CHECK(f.final_state() == "gone");
  CHECK(sys.run({"status"}).exit_code == 0);
}

TEST_CASE("escapee dies with a crash", "[integration][contain]") {
  test_system sys;
  escape_fixture f(sys);
  (void)sys.run({"ask", f.actor, R"({"crash": true})"});
  auto after = sys.wait_for_actor(f.actor, [&](const actor_view& v) {
    return v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != f.worker;
  });
  REQUIRE(after);
  CHECK_THAT(after->last_reason(), Catch::Contains("SIGSEGV"));
  CHECK(f.final_state() == "gone");
  // The restarted worker contains its package as the first did.
  f.escape();
  REQUIRE(sys.stop().exit_code == 0);
  CHECK(f.final_state() == "gone");
}

TEST_CASE("escapee dies with a killed worker", "[integration][contain]") {
  test_system sys;
  escape_fixture f(sys);
  troupe::testing::kill_process(f.worker);
  auto after = sys.wait_for_actor(f.actor, [&](const actor_view& v) {
    return v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != f.worker;
  });
  REQUIRE(after);
  CHECK(f.final_state() == "gone");
}

TEST_CASE("escapee dies with a killed daemon", "[integration][contain]") {
  test_system sys;
  escape_fixture f(sys);
  sys.kill_daemon();  // its workers stop on their parent-death signal
  CHECK(f.final_state() == "gone");
}

TEST_CASE("limits are applied to the worker", "[integration][contain][limits]") {
  test_system sys;
  sys.load(TROUPE_CONTAIN_LIMITED_PKG);
  const std::string a = sys.spawn({"Escaper"});
  const int worker = sys.actor(a)->worker_pid();
  REQUIRE(worker > 0);
  std::ifstream in("/proc/" + std::to_string(worker) + "/limits");
  const std::string limits((std::istreambuf_iterator<char>(in)), {});
  INFO(limits);
  CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max cpu time +1 +2 +seconds[\s\S]*)"));
  CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max data size +268435456 +268435456 +bytes[\s\S]*)"));
  CHECK_THAT(limits, Catch::Matches(R"([\s\S]*Max open files +100 +100 +files[\s\S]*)"));

  SECTION("descriptors") {
    const json r = sys.ask(a, json{{"open_files", true}});
    INFO(r.dump());
    CHECK(r["error"] == "EMFILE");
    CHECK(r["opened"].get<int>() > 0);
    CHECK(r["opened"].get<int>() < 100);
  }
  SECTION("memory") {
    CHECK(sys.ask(a, json{{"allocate_mb", 16}}) == json{{"allocated", true}});
    CHECK(sys.ask(a, json{{"allocate_mb", 512}}) == json{{"allocated", false}});
  }
  SECTION("cpu time") {
    (void)sys.run({"ask", a, R"({"spin_s": 20})", "--timeout", "30000"});
    auto after = sys.wait_for_actor(a, [&](const actor_view& v) {
      return v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != worker;
    });
    REQUIRE(after);
    CHECK(after->restarts() == 1);
    CHECK(after->last_reason() == "worker killed by SIGXCPU: CPU limit of 1 s (limits.cpu_time)");
  }
}

TEST_CASE("no limits leave the worker as it was", "[integration][contain][limits]") {
  test_system sys;
  sys.load(TROUPE_CONTAIN_PKG);
  const std::string a = sys.spawn({"Escaper"});
  const json r = sys.ask(a, json{{"open_files", true}});
  CHECK(r["opened"].get<int>() > 100);
  CHECK(sys.ask(a, json{{"allocate_mb", 512}}) == json{{"allocated", true}});
}
