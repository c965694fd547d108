// An actor that watches another gets an exit notice when it is restarted
// (its worker killed, or a handler failed), fails past its restart limit, or
// stops; at once for an address that is unknown or failed already; none
// after unwatch. The Watcher of the supervision fixture keeps the notices it
// gets and lists them when asked.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

using troupe::testing::actor_view;
using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

/// The notices watcher got from `from`, oldest first.
json notices_from(const test_system& sys, const std::string& watcher, const std::string& from) {
  json out = json::array();
  for (const auto& n : sys.ask(watcher, json{{"notices", true}}))
    if (n.value("from", std::string()) == from) out.push_back(n);
  return out;
}

/// Polls until watcher holds at least count notices from `from` (bounded);
/// returns those notices.
json wait_notices(const test_system& sys, const std::string& watcher, const std::string& from, std::size_t count) {
  json got;
  troupe::testing::eventually([&] {
    got = notices_from(sys, watcher, from);
    return got.size() >= count;
  });
  return got;
}

/// Watches target from watcher and returns once the system holds the watch.
/// The watch request travels on the worker's control channel, the answer to
/// the ask on the data path: the answer alone does not prove the watch is
/// registered. A second watch, of an address nobody has, is answered with an
/// immediate notice after the first watch was handled (one control channel,
/// in order), so that notice is the proof.
void watch(const test_system& sys, const std::string& watcher, const std::string& target) {
  static int barrier_serial = 1000;
  const std::string barrier = "@00000000." + std::to_string(++barrier_serial);
  REQUIRE(sys.ask(watcher, json{{"watch", target}}) == "watching");
  REQUIRE(sys.ask(watcher, json{{"watch", barrier}}) == "watching");
  REQUIRE(wait_notices(sys, watcher, barrier, 1).size() == 1);
}

/// Same proof for an unwatch: afterwards no notice of target can come.
void unwatch(const test_system& sys, const std::string& watcher, const std::string& target) {
  static int barrier_serial = 2000;
  const std::string barrier = "@00000000." + std::to_string(++barrier_serial);
  REQUIRE(sys.ask(watcher, json{{"unwatch", target}}) == "unwatched");
  REQUIRE(sys.ask(watcher, json{{"watch", barrier}}) == "watching");
  REQUIRE(wait_notices(sys, watcher, barrier, 1).size() == 1);
}

std::string text(const json& notice, const char* field) { return notice.value(field, std::string()); }

}  // namespace

TEST_CASE("a watcher is told when the worker of its target is killed and the target restarted",
          "[integration][watch]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string relay = sys.spawn({"Relay"});
  const std::string watcher = sys.spawn({"Watcher"});
  const int relay_pid = sys.actor(relay)->worker_pid();
  REQUIRE(relay_pid > 0);
  REQUIRE(relay_pid != sys.actor(watcher)->worker_pid());  // another package, another worker
  watch(sys, watcher, relay);

  troupe::testing::kill_process(relay_pid);
  json got = wait_notices(sys, watcher, relay, 1);
  INFO(got.dump());
  REQUIRE(got.size() == 1);
  CHECK(text(got[0], "event") == "restarted");
  CHECK_THAT(text(got[0], "reason"), Catch::Contains("worker killed by SIGKILL"));
  // A restart does not end the watch: the next one is told too.
  CHECK(sys.ask(relay, json{{"echo", 1}}) == json(1));
  troupe::testing::kill_process(sys.actor(relay)->worker_pid());
  got = wait_notices(sys, watcher, relay, 2);
  REQUIRE(got.size() == 2);
  CHECK(text(got[1], "event") == "restarted");
}

TEST_CASE("a watcher is told of each restart after a handler failure, then of the failure", "[integration][watch]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);  // Relay: 3 restarts within 5 s
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string relay = sys.spawn({"Relay"});
  const std::string watcher = sys.spawn({"Watcher"});
  watch(sys, watcher, relay);

  for (std::size_t i = 1; i <= 3; ++i) {
    CHECK(sys.run({"ask", relay, json{{"crash", "throw"}}.dump()}).exit_code != 0);
    json got = wait_notices(sys, watcher, relay, i);
    INFO(got.dump());
    REQUIRE(got.size() == i);
    CHECK(text(got.back(), "event") == "restarted");
    CHECK_THAT(text(got.back(), "reason"), Catch::Contains("relay was asked to throw"));
  }
  CHECK(sys.run({"ask", relay, json{{"crash", "throw"}}.dump()}).exit_code != 0);
  json got = wait_notices(sys, watcher, relay, 4);
  INFO(got.dump());
  REQUIRE(got.size() == 4);
  CHECK(text(got[3], "event") == "failed");
  CHECK_THAT(text(got[3], "reason"), Catch::Contains("max_restarts"));

  // Watching it now is answered at once, with its last reason.
  const std::string late = sys.spawn({"Watcher"});
  REQUIRE(sys.ask(late, json{{"watch", relay}}) == "watching");
  got = wait_notices(sys, late, relay, 1);
  REQUIRE(got.size() == 1);
  CHECK(text(got[0], "event") == "failed");
  CHECK_THAT(text(got[0], "reason"), Catch::Contains("max_restarts"));
}

TEST_CASE("a watcher is told when its target is killed, and at once about an unknown address", "[integration][watch]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string relay = sys.spawn({"Relay"});
  const std::string watcher = sys.spawn({"Watcher"});
  watch(sys, watcher, relay);

  REQUIRE(sys.run({"kill", relay}).exit_code == 0);
  json got = wait_notices(sys, watcher, relay, 1);
  INFO(got.dump());
  REQUIRE(got.size() == 1);
  CHECK(text(got[0], "event") == "stopped");
  CHECK(text(got[0], "reason") == "killed");

  // The address is gone: a new watch of it is answered at once.
  REQUIRE(sys.ask(watcher, json{{"watch", relay}}) == "watching");
  got = wait_notices(sys, watcher, relay, 2);
  REQUIRE(got.size() == 2);
  CHECK(text(got[1], "event") == "stopped");
  CHECK(text(got[1], "reason") == "no actor at " + relay);
}

TEST_CASE("after unwatch no notice comes; a watcher that stops leaves no watch behind", "[integration][watch]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string a = sys.spawn({"Relay"});
  const std::string b = sys.spawn({"Relay"});
  const std::string watcher = sys.spawn({"Watcher"});
  const std::string other = sys.spawn({"Watcher"});
  watch(sys, watcher, a);
  watch(sys, watcher, b);
  watch(sys, other, a);
  unwatch(sys, watcher, a);

  CHECK(sys.run({"ask", a, json{{"crash", "throw"}}.dump()}).exit_code != 0);
  // The system has taken a's restart (and would have sent its notice)...
  REQUIRE(sys.wait_for_actor(a, [](const actor_view& v) { return v.restarts() == 1; }));
  REQUIRE(wait_notices(sys, other, a, 1).size() == 1);
  // ...before b's, whose notice goes the same way to the same worker after it.
  CHECK(sys.run({"ask", b, json{{"crash", "throw"}}.dump()}).exit_code != 0);
  REQUIRE(wait_notices(sys, watcher, b, 1).size() == 1);
  CHECK(notices_from(sys, watcher, a).empty());

  // A watcher that is killed takes its watches with it; the others carry on.
  REQUIRE(sys.run({"kill", watcher}).exit_code == 0);
  CHECK(sys.run({"ask", a, json{{"crash", "throw"}}.dump()}).exit_code != 0);
  REQUIRE(wait_notices(sys, other, a, 2).size() == 2);
  CHECK(sys.ask(a, json{{"echo", "still"}}) == "still");
}

TEST_CASE("a watch outlives the watcher's own restart: the new instance is told", "[integration][watch]") {
  test_system sys;
  sys.load(TROUPE_SUPERVISION_PKG);
  // Both in the package's shared worker, which is then killed.
  const std::string watcher = sys.spawn({"Watcher"});
  const std::string target = sys.spawn({"Watcher"});
  const int pid = sys.actor(watcher)->worker_pid();
  REQUIRE(pid == sys.actor(target)->worker_pid());
  watch(sys, watcher, target);

  troupe::testing::kill_process(pid);
  // The notice waits for the restarted watcher, whose fresh state holds it.
  json got = wait_notices(sys, watcher, target, 1);
  INFO(got.dump());
  REQUIRE(got.size() == 1);
  CHECK(text(got[0], "event") == "restarted");
  CHECK_THAT(text(got[0], "reason"), Catch::Contains("SIGKILL"));
}

TEST_CASE("a Gate stashes an ask while closed and answers it once it opens", "[integration][stash]") {
  test_system sys;
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string gate = sys.spawn({"Gate", "--name", "gate"});
  auto tell = [&](const std::string& what) { REQUIRE(sys.run({"tell", gate, "\"" + what + "\""}).exit_code == 0); };
  tell("one");  // stashed
  auto asked = std::async(std::launch::async, [&] { return sys.run({"ask", gate, "\"two\"", "--timeout", "20000"}); });
  // Both wait in the stash: the ask has reached the actor, unanswered.
  REQUIRE(troupe::testing::eventually([&] { return sys.ask(gate, "count") == 2; }));
  tell("open");
  const auto r = asked.get();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.out) == json{{"done", "two"}});
  CHECK(sys.ask(gate, "three") == json{{"done", "three"}});  // open: answered at once
  tell("close");
  CHECK(sys.ask(gate, "count") == 0);  // closed again; the stash was emptied by the opening
}
