// `troupe stop` takes the whole system down in order: every actor gets its
// exit request, every worker exits 0, and no process of the system is left.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

using troupe::testing::json;
using troupe::testing::test_system;

TEST_CASE("troupe stop ends the daemon and its workers in order", "[integration][stop]") {
  test_system sys;
  sys.load(TROUPE_RELAY_V1_PKG);
  const std::string v2 = sys.load(TROUPE_RELAY_V2_PKG);
  sys.load(TROUPE_ENCODERS_PKG);
  const std::string relay = sys.spawn({"Relay", "--package", v2});
  const std::string morse = sys.spawn({"Morse", "--name", "morse"});
  CHECK(sys.ask(relay, json{{"echo", 1}}) == json(1));
  CHECK(sys.ask("morse", "sos") == json("... --- ..."));
  // Daemon, one worker per loaded package version, one standby worker (its
  // replacement starts a moment after the last load).
  REQUIRE(troupe::testing::eventually([&] { return sys.live_processes() == 5; }, std::chrono::seconds(10)));
  // ...and connected: a standby stopped before its hello is only signalled
  // (it exits with code 66), which this test does not look at.
  REQUIRE(troupe::testing::eventually(
      [&] {
        return json::parse(sys.run({"status", "--json"}).out).value("standby_ready", 0) == 1;
      },
      std::chrono::seconds(10)));

  auto r = sys.stop();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("stopped system on " + sys.where()));
  CHECK(sys.live_processes() == 0);

  // The workers were asked to shut down (their actors got exit requests)
  // rather than killed: each exited with code 0.
  const std::string log = sys.log();
  CHECK_THAT(log, Catch::Contains("worker w1 exited (exit code 0)"));
  CHECK_THAT(log, Catch::Contains("worker w2 exited (exit code 0)"));
  CHECK_THAT(log, Catch::Contains("worker w3 exited (exit code 0)"));
  CHECK_THAT(log, Catch::Contains("worker w4 exited (exit code 0)"));  // the standby
  CHECK_THAT(log, Catch::Contains("system stopped"));
  CHECK_FALSE(std::filesystem::exists(sys.state_dir() / "pid"));

  // Nothing answers on the port any more.
  auto status = sys.run({"status"});
  CHECK(status.exit_code == 3);
}
