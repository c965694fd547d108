// Failures the operator sees: each command exits non-zero with one line on
// stderr that says what went wrong, and the system keeps serving.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

using troupe::testing::check_one_line_failure;
using troupe::testing::json;
using troupe::testing::run_result;
using troupe::testing::test_system;

namespace {

/// The command failed with exit code `code` and one line "troupe: ..." on stderr.

}  // namespace

TEST_CASE("client commands that name something unknown fail with a one-line reason", "[integration][errors]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  const std::string morse = sys.spawn({"Morse"});

  SECTION("asking an unknown address") {
    auto r = sys.run({"ask", "@00000001.99", "\"x\""});
    check_one_line_failure(r, 5);
    CHECK_THAT(r.err, Catch::Contains("@00000001.99"));
  }
  SECTION("asking an unknown name") {
    auto r = sys.run({"ask", "no-such-name", "\"x\""});
    check_one_line_failure(r, 5);
    CHECK_THAT(r.err, Catch::Contains("no-such-name"));
  }
  SECTION("spawning an unknown type") {
    auto r = sys.run({"spawn", "Telegraph"});
    check_one_line_failure(r, 5);
    CHECK_THAT(r.err, Catch::Contains("Telegraph"));
  }
  SECTION("loading a directory that does not exist") {
    auto r = sys.run({"load", "/nonexistent/troupe-package"});
    check_one_line_failure(r, 5);
    CHECK_THAT(r.err, Catch::Contains("/nonexistent/troupe-package"));
  }
  SECTION("a payload that is not JSON is a usage error") {
    auto r = sys.run({"ask", morse, "not json{"});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains("malformed JSON payload"));
  }
  // Whatever failed, the system and its actor still answer.
  CHECK(sys.ask(morse, "sos") == json("... --- ..."));
  CHECK(sys.run({"status"}).exit_code == 0);
}

TEST_CASE("a signed package whose library cannot start is refused at load, system untouched",
          "[integration][errors][packages]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  const std::string morse = sys.spawn({"Morse"});

  std::string pkg;
  std::string reason;
  SECTION("a library without the entry point") {
    pkg = TROUPE_NOENTRY_PKG;
    reason = "troupe_package_entry_v1";
  }
  SECTION("a library built for another ABI version") {
    pkg = TROUPE_BADABI_PKG;
    reason = "ABI version 999";
  }
  // The signature verifies; the load starts the package's worker, which
  // cannot load the library: the load itself fails with the reason.
  auto load = sys.run({"load", pkg});
  check_one_line_failure(load, 1);
  CHECK_THAT(load.err, Catch::Contains(reason) && Catch::Contains("cannot load"));

  // Nothing of it stays: not listed, no worker, its archive not kept.
  auto list = sys.run({"list", "--json"});
  REQUIRE(list.exit_code == 0);
  CHECK(json::parse(list.out).size() == 1);
  auto status = sys.run({"status", "--json"});
  REQUIRE(status.exit_code == 0);
  CHECK(json::parse(status.out)["workers"] == 1);
  CHECK_FALSE(std::filesystem::exists(sys.home() / "packages" / std::filesystem::path(pkg).filename()));
  CHECK(sys.actors().size() == 1);
  CHECK(sys.ask(morse, "sos") == json("... --- ..."));
}

TEST_CASE("the CLI reports a missing system, unknown commands and unknown options", "[integration][errors][cli]") {
  SECTION("commands against a port with no system exit 3 with a reason") {
    // A port nobody listens on: picked free, never bound.
    const std::string where = "127.0.0.1:" + std::to_string(troupe::testing::free_port());
    auto r = troupe::testing::run_process(troupe::testing::bin("troupe"), {"--system", where, "status"});
    check_one_line_failure(r, 3);
    CHECK_THAT(r.err, Catch::Contains(where) && Catch::Contains("connection refused"));
  }
  SECTION("an unknown command exits 2") {
    auto r = troupe::testing::run_process(troupe::testing::bin("troupe"), {"frobnicate"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown command 'frobnicate'"));
  }
  SECTION("an unknown option exits 2") {
    auto r = troupe::testing::run_process(troupe::testing::bin("troupe"), {"status", "--frobnicate"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("unknown option --frobnicate"));
  }
}

TEST_CASE("a second system on a busy port is refused and leaves the first one serving",
          "[integration][errors][start]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  const std::string morse = sys.spawn({"Morse", "--name", "morse"});
  const std::string port = std::to_string(sys.port());

  // Through the daemon path: the quick status check sees the running system.
  auto again = sys.run({"start", "--port", port});
  check_one_line_failure(again, 1);
  CHECK_THAT(again.err, Catch::Contains("already running"));

  // In the foreground there is no such check: the TCP bind refuses it, and it
  // must not touch the running system's sockets on its way out.
  auto fg = sys.run({"start", "--port", port, "--foreground"});
  CHECK(fg.exit_code == 70);
  CHECK_THAT(fg.err, Catch::Contains("cannot listen"));

  CHECK(sys.ask("morse", json("sos")) == json("... --- ..."));
  CHECK(sys.ask(morse, json("sos")) == json("... --- ..."));
  // A new worker must still reach the control socket: had the refused start
  // removed the socket files, only old connections would still work.
  const std::string relay = sys.spawn({"Relay", "--package", sys.load(TROUPE_RELAY_V1_PKG)});
  CHECK(sys.ask(relay, json{{"echo", 5}}) == json(5));
}
