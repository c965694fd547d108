// A worker that dies is restarted and its actors answer again under the same
// address; a handler that throws restarts its actor alone.
#include "manifests/archive.hpp"
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

using troupe::testing::actor_view;
using troupe::testing::json;
using troupe::testing::test_system;

TEST_CASE("a worker that dies is restarted and its actors answer under the same address", "[integration][restart]") {
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
    troupe::testing::kill_process(old_pid);
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

TEST_CASE("a worker of many actors comes back with all of them, created in batches", "[integration][restart]") {
  // 600 actors: more than two batches of 256 (worker_pool::create_batch),
  // the last one partial. Progress is read from status's counts by state.
  test_system sys;
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  auto& c = sys.client();
  std::vector<std::string> addrs;
  for (int i = 0; i < 600; ++i) {
    auto a = c.spawn("Relay", pkg);
    REQUIRE(a);
    addrs.push_back(a->to_string());
  }
  auto states = [&] {
    auto s = c.call("status", json::object());
    REQUIRE(s);
    return (*s)["actor_states"];
  };
  CHECK(states() == json{{"starting", 0}, {"running", 600}, {"stopping", 0}, {"failed", 0}});
  const int old_pid = sys.actor(addrs.front())->worker_pid();
  REQUIRE(old_pid > 0);
  troupe::testing::kill_process(old_pid);

  auto after = sys.wait_for_actor(addrs.back(), [&](const actor_view& v) {
    return v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != old_pid;
  });
  REQUIRE(after);
  json counts;
  for (int i = 0; i < 200; ++i) {  // bounded: 10 s
    counts = states();
    if (counts["running"] == 600) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(counts == json{{"starting", 0}, {"running", 600}, {"stopping", 0}, {"failed", 0}});
  for (const auto& a : {addrs.front(), addrs[255], addrs[256], addrs[511], addrs[512], addrs.back()}) {
    CHECK(sys.ask(a, json{{"echo", a}}) == a);
    CHECK(sys.actor(a)->restarts() == 1);
  }
}

TEST_CASE("a handler that throws fails the ask and its actor is restarted in place", "[integration][restart]") {
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

TEST_CASE("a worker whose library can no longer be loaded fails its package instead of restarting",
          "[integration][restart][errors]") {
  test_system sys({"--allow-unsigned"});
  // A private copy of a directory package, so that its library can be broken.
  const auto dir = sys.home() / "relay";
  std::filesystem::create_directories(dir);
  for (const char* f : {"manifest.yaml", "libfixture_relay_v1.so"})
    std::filesystem::copy_file(std::filesystem::path(TROUPE_RELAY_V1_DIR) / f, dir / f);
  sys.load(dir.string(), {"--unsigned"});
  const std::string relay = sys.spawn({"Relay"});
  const int pid = sys.actor(relay)->worker_pid();
  std::filesystem::remove(dir / "libfixture_relay_v1.so");
  std::ofstream(dir / "libfixture_relay_v1.so") << "not a library";
  troupe::testing::kill_process(pid);

  // The restarted worker says why it cannot load the library ("fatal"): the
  // package is failed with that reason, its actors removed, not retried.
  CHECK(troupe::testing::eventually([&] { return !sys.actor(relay); }));
  auto list = json::parse(sys.run({"list", "--json"}).out);
  REQUIRE(list.size() == 1);
  REQUIRE(list[0].contains("error"));
  CHECK_THAT(list[0]["error"].get<std::string>(), Catch::Contains("libfixture_relay_v1.so"));
  CHECK_THAT(sys.log(), !Catch::Contains("crashed too often"));
  auto again = sys.run({"spawn", "Relay"});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Catch::Contains("cannot start"));
}

namespace {

/// Kills the worker hosting address and waits until the actor runs in a new
/// one, or is failed; returns its view then.
std::optional<actor_view> kill_worker_of(const test_system& sys, const std::string& address) {
  const int pid = sys.actor(address)->worker_pid();
  REQUIRE(pid > 0);
  troupe::testing::kill_process(pid);
  return sys.wait_for_actor(address, [pid](const actor_view& v) {
    return v.state() == "failed" || (v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != pid);
  });
}

}  // namespace

TEST_CASE("past max_restarts within its window an actor is failed; the system serves the rest",
          "[integration][restart][policy]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);  // Relay: default policy, permanent, 3 restarts within 5 s
  sys.load(TROUPE_ENCODERS_PKG);
  const std::string relay = sys.spawn({"Relay", "--name", "relay"});
  const std::string morse = sys.spawn({"Morse"});
  for (int i = 1; i <= 3; ++i) {
    auto v = kill_worker_of(sys, relay);
    REQUIRE(v);
    INFO(v->raw.dump());
    REQUIRE(v->state() == "running");
    CHECK(v->restarts() == i);
    CHECK(sys.ask(relay, json{{"echo", i}}) == json(i));
  }
  // From the second restart in the window on, the worker waits (10 ms, then 20).
  CHECK_THAT(sys.log(),
             Catch::Contains("restarts in 10 ms (backoff)") && Catch::Contains("restarts in 20 ms (backoff)"));

  auto v = kill_worker_of(sys, relay);
  REQUIRE(v);
  INFO(v->raw.dump());
  CHECK(v->state() == "failed");
  CHECK_THAT(v->last_reason(), Catch::Contains("max_restarts") && Catch::Contains("SIGKILL"));
  // An ask fails at once with the reason, not by timing out.
  auto ask = sys.run({"ask", relay, json{{"echo", 1}}.dump(), "--timeout", "20000"});
  CHECK(ask.exit_code != 0);
  CHECK_THAT(ask.err, Catch::Contains("max_restarts"));
  CHECK(sys.ask(morse, "sos") == json("... --- ..."));
}

TEST_CASE("a temporary actor is not restarted when its worker dies", "[integration][restart][policy]") {
  test_system sys;
  // The relay fixture with restart.policy temporary, signed with the build's key.
  auto key = troupe::manifests::signing_key::read(TROUPE_DEV_KEY);
  REQUIRE(key);
  const std::string manifest =
      "package: relay_temp\nversion: 1.0.0\nlibrary: libfixture_relay_v1.so\n"
      "actors:\n  Relay: { restart: { policy: temporary } }\n";
  std::ifstream lib(std::filesystem::path(TROUPE_RELAY_V1_DIR) / "libfixture_relay_v1.so", std::ios::binary);
  const std::string library((std::istreambuf_iterator<char>(lib)), std::istreambuf_iterator<char>());
  const auto archive = sys.home() / "relay_temp-1.0.0.tpkg";
  std::ofstream(archive, std::ios::binary) << troupe::manifests::sign_payload(
      troupe::manifests::write_tar(
          {{"manifest.yaml", troupe::manifests::entry_kind::file, manifest, {}, false},
           {"libfixture_relay_v1.so", troupe::manifests::entry_kind::file, library, {}, true}}),
      *key);
  sys.load(archive.string());
  const std::string relay = sys.spawn({"Relay"});
  auto v = kill_worker_of(sys, relay);
  REQUIRE(v);
  CHECK(v->state() == "failed");
  CHECK_THAT(v->last_reason(), Catch::Contains("temporary: not restarted"));
  CHECK(v->restarts() == 0);
}

TEST_CASE("handler failures count against max_restarts too; past it the actor is failed",
          "[integration][restart][policy]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);  // 3 restarts within 5 s
  const std::string relay = sys.spawn({"Relay"});
  const std::string other = sys.spawn({"Relay"});
  for (int i = 1; i <= 3; ++i) {
    CHECK(sys.run({"ask", relay, json{{"crash", "throw"}}.dump()}).exit_code != 0);
    CHECK(sys.ask(relay, json{{"echo", i}}) == json(i));  // a fresh instance answers
  }
  CHECK(sys.run({"ask", relay, json{{"crash", "throw"}}.dump()}).exit_code != 0);
  auto v = sys.wait_for_actor(relay, [](const actor_view& a) { return a.state() == "failed"; });
  REQUIRE(v);
  INFO(v->raw.dump());
  CHECK(v->state() == "failed");
  CHECK_THAT(v->last_reason(), Catch::Contains("max_restarts") && Catch::Contains("relay was asked to throw"));
  auto ask = sys.run({"ask", relay, json{{"echo", 1}}.dump()});
  CHECK(ask.exit_code != 0);
  CHECK_THAT(ask.err, Catch::Contains("max_restarts"));
  CHECK(sys.ask(other, json{{"echo", "n"}}) == "n");  // its neighbour serves on
}
