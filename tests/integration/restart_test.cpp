// A worker that dies is restarted and its actors answer again under the same
// address; a handler that throws restarts its actor alone.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <string>

using troupe::testing::actor_view;
using troupe::testing::json;
using troupe::testing::test_system;

TEST_CASE("a worker that dies is restarted and its actors answer under the same address",
          "[integration][restart]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  const std::string relay = sys.spawn({"Relay", "--package", pkg, "--name", "relay"});
  CHECK(sys.ask(relay, json{{"echo", "before"}}) == "before");
  auto before = sys.actor(relay);
  REQUIRE(before);
  const int old_pid = before->worker_pid();
  REQUIRE(old_pid > 0);

  std::string signal_name;
  SECTION("killed by SIGKILL") {
    signal_name = "SIGKILL";
    REQUIRE(::kill(old_pid, SIGKILL) == 0);
  }
  SECTION("killed by SIGSEGV in a handler") {
    signal_name = "SIGSEGV";
    // A tell returns once queued; the worker then crashes on it.
    REQUIRE(sys.run({"tell", relay, json{{"crash", "segv"}}.dump()}).exit_code == 0);
  }

  auto after = sys.wait_for_actor(relay, [&](const actor_view& v) {
    return v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != old_pid;
  });
  REQUIRE(after);
  INFO(after->raw.dump());
  CHECK(after->state() == "running");
  CHECK(after->worker_pid() != old_pid);
  CHECK(after->restarts() >= 1);
  CHECK_THAT(after->last_reason(), Catch::Contains(signal_name));
  // Same address, same name, fresh state.
  CHECK(sys.ask(relay, json{{"echo", "after"}}) == "after");
  CHECK(sys.ask("relay", json{{"tell_count", true}}) == json{{"count", 0}, {"out_of_order", 0}});
  CHECK(sys.live_processes() == 3);  // the daemon, the new worker and the standby
}

TEST_CASE("a handler that throws fails the ask and its actor is restarted in place",
          "[integration][restart]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);
  const std::string relay = sys.spawn({"Relay"});
  const std::string other = sys.spawn({"Relay"});
  REQUIRE(sys.run({"tell", relay, json{{"n", 1}}.dump()}).exit_code == 0);
  CHECK(sys.ask(relay, json{{"tell_count", true}})["count"] == 1);
  const int pid = sys.actor(relay)->worker_pid();

  auto r = sys.run({"ask", relay, json{{"crash", "throw"}}.dump()});
  INFO(r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err_lines() == 1);
  CHECK_THAT(r.err, Catch::Contains(relay) && Catch::Contains("relay was asked to throw"));

  // The next ask is answered by a fresh instance in the same worker.
  CHECK(sys.ask(relay, json{{"echo", "again"}}) == "again");
  CHECK(sys.ask(relay, json{{"tell_count", true}})["count"] == 0);
  // The worker reports the restart on its control channel, which may reach
  // the system after the answer above: wait for it (bounded).
  auto v = sys.wait_for_actor(relay, [](const actor_view& a) { return a.restarts() >= 1; });
  REQUIRE(v);
  CHECK(v->state() == "running");
  CHECK(v->worker_pid() == pid);
  CHECK(v->restarts() == 1);
  CHECK_THAT(v->last_reason(), Catch::Contains("relay was asked to throw"));
  // Its neighbour in the worker was not touched.
  auto n = sys.actor(other);
  REQUIRE(n);
  CHECK(n->restarts() == 0);
  CHECK(sys.ask(other, json{{"echo", "n"}}) == "n");
}
