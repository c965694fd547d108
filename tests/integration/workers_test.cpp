// Two versions of one package run in two workers, and their actors talk to
// each other directly (worker to worker over ZeroMQ ipc://, no supervisor hop).
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>

using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

/// Asks relay `from` to ask `via` with payload; the relay answers with the
/// forwarded reply once it has it (a deferred reply).
json relay_through(const test_system& sys, const std::string& from, const std::string& via, const json& payload) {
  return sys.ask(from, json{{"via", via}, {"payload", payload}});
}

/// Polls B's tell counter until it reaches want (bounded); returns the last answer.
json wait_tell_count(const test_system& sys, const std::string& target, std::uint64_t want) {
  json r;
  troupe::testing::eventually([&] {
    r = sys.ask(target, json{{"tell_count", true}});
    return r["count"].get<std::uint64_t>() >= want;
  });
  return r;
}

}  // namespace

TEST_CASE("two versions of a package run in two workers whose actors ask each other", "[integration][workers]") {
  test_system sys;
  const std::string v1 = sys.load(TROUPE_RELAY_V1_PKG);
  const std::string v2 = sys.load(TROUPE_RELAY_V2_PKG);
  REQUIRE(v1 != v2);

  const std::string a = sys.spawn({"Relay", "--package", v1, "--name", "relay-a"});
  const std::string b = sys.spawn({"Relay", "--package", v2, "--name", "relay-b"});
  CHECK(sys.ask(a, json{{"version", true}}) == "1.0.0");
  CHECK(sys.ask(b, json{{"version", true}}) == "2.0.0");

  auto va = sys.actor(a);
  auto vb = sys.actor(b);
  REQUIRE(va);
  REQUIRE(vb);
  CHECK(va->raw["version"] == "1.0.0");
  CHECK(vb->raw["version"] == "2.0.0");
  REQUIRE(va->worker_pid() > 0);
  REQUIRE(vb->worker_pid() > 0);
  CHECK(va->worker_pid() != vb->worker_pid());

  SECTION("A asks B and B asks A, by address and by name") {
    json ab = relay_through(sys, a, b, json{{"echo", "ping"}});
    CHECK(ab == json{{"answer", "ping"}, {"from_version", "1.0.0"}});
    json ba = relay_through(sys, b, a, json{{"echo", json{{"n", 42}}}});
    CHECK(ba == json{{"answer", {{"n", 42}}}, {"from_version", "2.0.0"}});
    json by_name = relay_through(sys, a, "relay-b", json{{"version", true}});
    CHECK(by_name == json{{"answer", "2.0.0"}, {"from_version", "1.0.0"}});
    // A two-hop chain: B asks A to ask B to echo; each answer is deferred.
    json chain = relay_through(sys, b, a, json{{"via", b}, {"payload", {{"echo", 7}}}});
    CHECK(chain == json{{"answer", {{"answer", 7}, {"from_version", "1.0.0"}}}, {"from_version", "2.0.0"}});
  }

  SECTION("an ask from A to an unknown address fails with a reason") {
    json r = relay_through(sys, a, "@00000001.99", json{{"echo", 1}});
    REQUIRE(r.contains("error"));
    CHECK_THAT(r["error"].get<std::string>(), Catch::Contains("@00000001.99"));
  }

  SECTION("a burst of 1000 tells from A to B arrives complete and in order") {
    CHECK(sys.ask(a, json{{"burst", 1000}, {"to", b}}) == json{{"sent", 1000}});
    json count = wait_tell_count(sys, b, 1000);
    CHECK(count == json{{"count", 1000}, {"out_of_order", 0}});
    // And the other way round, addressing A by name.
    CHECK(sys.ask(b, json{{"burst", 1000}, {"to", "relay-a"}}) == json{{"sent", 1000}});
    CHECK(wait_tell_count(sys, a, 1000) == json{{"count", 1000}, {"out_of_order", 0}});
  }

  SECTION("a child spawned by an actor lands in its parent's package version") {
    const json child = sys.ask(b, json{{"spawn", "Relay"}});
    REQUIRE(child.is_string());
    auto vc = sys.wait_for_actor(child.get<std::string>(), [](const auto& v) { return v.state() == "running"; });
    REQUIRE(vc);
    CHECK(vc->state() == "running");
    CHECK(vc->raw["version"] == "2.0.0");
    CHECK(vc->worker_pid() == vb->worker_pid());
    CHECK(sys.ask(child.get<std::string>(), json{{"version", true}}) == "2.0.0");
    // Same worker: A's ask to the child crosses workers, B's stays inside.
    CHECK(relay_through(sys, a, child.get<std::string>(), json{{"echo", "c"}})["answer"] == "c");
    CHECK(relay_through(sys, b, child.get<std::string>(), json{{"echo", "d"}})["answer"] == "d");
  }

  SECTION("one handler spawning thousands of actors loses none of them") {
    // More than an address block (1024) and more than ZeroMQ's default
    // high-water mark (1000) of control messages, from a single handler.
    CHECK(sys.ask(a, json{{"spawn_many", 3000}}) == json{{"spawned", 3000}});
    std::size_t running = 0;
    troupe::testing::eventually(
        [&] {
          running = 0;
          for (const auto& actor : sys.actors()) running += actor["state"] == "running";
          return running >= 3002;
        },
        30s);
    CHECK(running == 3002);  // the 3000 children and the two relays
  }
}
