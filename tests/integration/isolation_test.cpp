// An actor type with `isolation: dedicated` gets a worker of its own per
// instance: a crash there restarts that actor alone, the worker goes with its
// actor, and an unload stops every worker of the package. Loner of the
// supervision fixture is such a type; Watcher of the same package shares the
// package's worker.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

using troupe::testing::actor_view;
using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

/// Polls until the system runs `count` processes (daemon and workers) or the
/// deadline passes; returns the last count.
std::size_t wait_processes(const test_system& sys, std::size_t count) {
  std::size_t n = 0;
  troupe::testing::eventually([&] {
    n = sys.live_processes();
    return n == count;
  });
  return n;
}

}  // namespace

TEST_CASE("each actor of a dedicated type runs in a worker of its own; a crash there restarts it alone",
          "[integration][isolation]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_SUPERVISION_PKG);
  const std::string a = sys.spawn({"Loner"});
  const std::string b = sys.spawn({"Loner"});
  const std::string shared = sys.spawn({"Watcher"});
  const int pid_a = sys.actor(a)->worker_pid();
  const int pid_b = sys.actor(b)->worker_pid();
  const int pid_shared = sys.actor(shared)->worker_pid();
  REQUIRE(pid_a > 0);
  REQUIRE(pid_b > 0);
  CHECK(pid_a != pid_b);
  CHECK(pid_a != pid_shared);
  CHECK(pid_b != pid_shared);
  // The pids `actors` shows are the ones the actors run in.
  CHECK(sys.ask(a, json{{"pid", true}}) == json(pid_a));
  CHECK(sys.ask(b, json{{"pid", true}}) == json(pid_b));
  // `list` shows the package's shared worker.
  auto list = json::parse(sys.run({"list", "--json"}).out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["worker_pid"] == json(pid_shared));
  // The daemon, the shared worker, two dedicated ones and the standby.
  CHECK(wait_processes(sys, 5) == 5);

  troupe::testing::kill_process(pid_a);
  auto after = sys.wait_for_actor(a, [pid_a](const actor_view& v) {
    return v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != pid_a;
  });
  REQUIRE(after);
  INFO(after->raw.dump());
  CHECK(after->restarts() == 1);
  CHECK_THAT(after->last_reason(), Catch::Contains("SIGKILL"));
  CHECK(sys.ask(a, json{{"echo", "back"}}) == "back");
  // Its neighbours were not touched.
  for (const auto& [addr, pid] : {std::pair{b, pid_b}, std::pair{shared, pid_shared}}) {
    auto v = sys.actor(addr);
    REQUIRE(v);
    CHECK(v->worker_pid() == pid);
    CHECK(v->restarts() == 0);
  }
  CHECK(sys.ask(b, json{{"echo", "b"}}) == "b");
  CHECK(wait_processes(sys, 5) == 5);
}

TEST_CASE("a dedicated worker goes with its actor; an unload stops every worker of the package",
          "[integration][isolation]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_SUPERVISION_PKG);
  const std::string a = sys.spawn({"Loner"});
  const std::string b = sys.spawn({"Loner"});
  const std::string c = sys.spawn({"Loner"});
  CHECK(sys.ask(c, json{{"echo", 1}}) == json(1));
  REQUIRE(wait_processes(sys, 6) == 6);  // daemon, shared worker, three dedicated, standby

  // Stopped: its worker exits.
  REQUIRE(sys.run({"kill", a}).exit_code == 0);
  CHECK(wait_processes(sys, 5) == 5);

  // Failed past max_restarts by handler failures (the worker lives on): its
  // worker exits too, and the failed actor stays listed without one.
  for (int i = 0; i < 4; ++i) CHECK(sys.run({"ask", b, json{{"crash", "throw"}}.dump()}).exit_code != 0);
  auto failed = sys.wait_for_actor(b, [](const actor_view& v) { return v.state() == "failed"; });
  REQUIRE(failed);
  CHECK(wait_processes(sys, 4) == 4);
  CHECK(sys.actor(b)->worker_pid() == 0);
  CHECK(sys.ask(c, json{{"echo", 2}}) == json(2));

  // The unload is answered once the shared and the dedicated workers are gone.
  auto r = sys.run({"unload", pkg});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(wait_processes(sys, 2) == 2);  // the daemon and the standby
  CHECK(sys.actors().empty());
  auto status = json::parse(sys.run({"status", "--json"}).out);
  CHECK(status["workers"] == 0);
}

namespace {
/// Whether pid runs (a zombie does not), from /proc: nothing is signalled.
bool process_runs(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}
}  // namespace

TEST_CASE("what package code starts goes with its worker: a process it leaves behind is killed when the worker ends",
          "[integration][isolation]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_SUPERVISION_PKG);
  // Killed actor: its dedicated worker exits, and the sleeper with it.
  const std::string a = sys.spawn({"Loner"});
  const int first = sys.ask(a, json{{"spawn_sleeper", true}}).get<int>();
  REQUIRE(first > 0);
  CHECK(process_runs(first));
  REQUIRE(sys.run({"kill", a}).exit_code == 0);
  CHECK(troupe::testing::eventually([&] { return !process_runs(first); }, 10s));
  // Unloaded package: the same for every worker of it.
  const std::string b = sys.spawn({"Loner"});
  const int second = sys.ask(b, json{{"spawn_sleeper", true}}).get<int>();
  REQUIRE(second > 0);
  CHECK(process_runs(second));
  REQUIRE(sys.run({"unload", pkg}).exit_code == 0);
  CHECK(troupe::testing::eventually([&] { return !process_runs(second); }, 10s));
}

TEST_CASE(
    "a spawn on a worker that stopped answering fails within the creation deadline, and the actor never "
    "appears after",
    "[integration][isolation]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_SUPERVISION_PKG);
  troupe::testing::stopped_process worker(troupe::testing::only_package_worker(sys));
  const auto r = sys.run({"spawn", "Watcher", "--name", "late"});
  INFO(r.out << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("not created within") != std::string::npos);
  worker.resume();
  // The worker creates it once it runs again; the system stops that copy.
  CHECK(sys.ask(sys.spawn({"Watcher"}), json{{"notices", true}}).is_array());
  CHECK(troupe::testing::eventually(
      [&] {
        for (const auto& a : json::parse(sys.run({"actors", "--json"}).out))
          if (a["name"].is_string() && a["name"] == "late") return false;
        return true;
      },
      5s));
  CHECK(sys.run({"ask", "late", "{}"}).exit_code != 0);
}

TEST_CASE("a worker that cannot register (its control socket gone) is killed in time, and its actors fail with why",
          "[integration][isolation]") {
  test_system sys({"--standby", "0"});  // no standby to adopt the restart: a new process must register
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string a = sys.spawn({"Loner"});
  const int pid = sys.actor(a)->worker_pid();
  // As if TROUPE_HOME had been removed: the socket a new worker connects to
  // is gone, while the system's bound socket still serves what is connected.
  REQUIRE(std::filesystem::remove(sys.run_socket("c.sock")));
  troupe::testing::kill_process(pid);  // its dedicated worker: restarted, and cannot register
  // The package cannot start a worker any more: it says why, and its actor
  // is gone rather than "starting" for ever.
  json list;
  CHECK(troupe::testing::eventually(
      [&] {
        list = json::parse(sys.run({"list", "--json"}).out);
        return list.size() == 1 && list[0]["error"].is_string();
      },
      20s));
  INFO(list.dump());
  CHECK_THAT(list[0].value("error", std::string()), Catch::Contains("did not register within"));
  CHECK_FALSE(sys.actor(a).has_value());
  CHECK(sys.run({"status"}).exit_code == 0);
}
