// The operator's path end to end: load the encoders example, spawn its
// actors, ask them through the CLI and the example client, list them, and
// use global names.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <string>

using troupe::testing::json;
using troupe::testing::test_system;

namespace {

const std::string sentence = "This is a multi-system test";
const std::string morse = "- .... .. ... / .. ... / .- / -- ..- .-.. - .. -....- ... -.-- ... - . -- / - . ... -";
const std::string base64 = "VGhpcyBpcyBhIG11bHRpLXN5c3RlbSB0ZXN0";
const std::string rot13 = "Guvf vf n zhygv-flfgrz grfg";

bool is_address(const std::string& s) { return std::regex_match(s, std::regex("@[0-9a-f]{8}\\.[0-9]+")); }

}  // namespace

TEST_CASE("the encoders example answers the sample sentence through the CLI", "[integration][cli]") {
  test_system sys;

  auto load = sys.run({"load", TROUPE_ENCODERS_PKG});
  REQUIRE(load.exit_code == 0);
  CHECK(std::regex_match(load.last_line(), std::regex("[0-9a-f]{64}")));

  const std::map<std::string, std::string> expected{{"Morse", morse}, {"Base64", base64}, {"Rot13", rot13}};
  std::map<std::string, std::string> address_of;
  for (const auto& [type, answer] : expected) {
    auto spawn = sys.run({"spawn", type});
    REQUIRE(spawn.exit_code == 0);
    const std::string addr = spawn.last_line();
    CHECK(is_address(addr));
    address_of[type] = addr;

    auto ask = sys.run({"ask", addr, json(sentence).dump()});
    INFO(type << ": " << ask.err);
    REQUIRE(ask.exit_code == 0);
    CHECK(json::parse(ask.out) == json(answer));
  }

  const json actors = sys.actors();
  REQUIRE(actors.size() == 3);
  std::set<int> pids;
  for (const auto& a : actors) {
    for (const char* field :
         {"address", "name", "type", "package", "version", "system", "worker_pid", "state", "restarts"})
      CHECK(a.contains(field));
    CHECK(address_of.at(a["type"].get<std::string>()) == a["address"]);
    CHECK(a["name"].is_null());
    CHECK(a["package"] == "encoders");
    CHECK(a["version"] == "1.0.0");
    CHECK(a["system"] == sys.where());
    CHECK(a["state"] == "running");
    CHECK(a["restarts"] == 0);
    REQUIRE(a["worker_pid"].is_number_integer());
    pids.insert(a["worker_pid"].get<int>());
  }
  CHECK(pids.size() == 1);  // one package version, one worker
}

TEST_CASE("the encoders client prints the three encodings of each input line", "[integration][cli]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);

  auto r = sys.run_program("encoders-client", {"--system", sys.where()}, sentence + "\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "Morse: " + morse + "\nBase64: " + base64 + "\nRot13: " + rot13 + "\n");
  CHECK(sys.actors().empty());  // the actors it spawned are gone with it
}

TEST_CASE("an actor spawned under a global name is asked by that name", "[integration][names]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);

  const std::string addr = sys.spawn({"Morse", "--name", "morse"});
  CHECK(sys.ask("morse", "sos") == json("... --- ..."));
  auto listed = sys.actor(addr);
  REQUIRE(listed);
  CHECK(listed->raw["name"] == "morse");

  SECTION("a second actor under the same name is refused with a one-line reason") {
    auto dup = sys.run({"spawn", "Rot13", "--name", "morse"});
    CHECK(dup.exit_code != 0);
    CHECK(dup.out.empty());
    CHECK(dup.err_lines() == 1);
    CHECK_THAT(dup.err, Catch::Contains("morse") && Catch::Contains("taken"));
    // The name still belongs to the first actor, and nothing was added.
    CHECK(sys.ask("morse", "e") == json("."));
    CHECK(sys.actors().size() == 1);
  }

  SECTION("the client library reaches the named actor too") {
    auto r = sys.client().ask("morse", json("sos"));
    REQUIRE(r.ok());
    CHECK(*r == json("... --- ..."));
    auto dup = sys.client().spawn("Base64", "encoders", "morse");
    REQUIRE_FALSE(dup.ok());
    CHECK_THAT(dup.err().message, Catch::Contains("already taken"));
  }
}

TEST_CASE("a system started without --leader stands alone on any port", "[integration][cli]") {
  test_system sys;  // only for its TROUPE_HOME, which trusts the build's key
  const std::string port = std::to_string(troupe::testing::free_port());
  const auto started = sys.run({"start", "--port", port, "--caps", "morse"});
  REQUIRE(started.exit_code == 0);
  CHECK_THAT(started.out, Catch::Contains("role: standalone"));
  struct stopper {
    const test_system& s;
    std::string port;
    ~stopper() { (void)s.run({"stop", port}); }
  } stops{sys, port};
  const std::string where = "127.0.0.1:" + port;
  REQUIRE(sys.run({"--system", where, "load", TROUPE_ENCODERS_PKG}).exit_code == 0);
  const auto spawned = sys.run({"--system", where, "spawn", "Morse", "--name", "alone"});
  INFO(spawned.err);
  REQUIRE(spawned.exit_code == 0);
  const auto asked = sys.run({"--system", where, "ask", "alone", "\"SOS\""});
  CHECK(asked.exit_code == 0);
  CHECK(asked.last_line() == "\"... --- ...\"");
  const auto systems = json::parse(sys.run({"--system", where, "--json", "systems"}).out);
  CHECK(systems["is_leader"] == true);
  CHECK(systems["systems"].size() == 1);
}

TEST_CASE("a command to a port where nothing listens says so at once", "[integration][cli]") {
  test_system sys;  // for its TROUPE_HOME
  const std::string where = "127.0.0.1:" + std::to_string(troupe::testing::free_port());
  // Refused at once, not after the command's timeout: the message says
  // "connection refused", which only the connect failure reports.
  for (const std::vector<std::string>& cmd : {std::vector<std::string>{"status"}, {"actors"}, {"list"}}) {
    std::vector<std::string> args = {"--system", where};
    args.insert(args.end(), cmd.begin(), cmd.end());
    const auto r = sys.run(args);
    CHECK(r.exit_code == 3);
    CHECK(r.err_lines() == 1);
    CHECK_THAT(r.err, Catch::Contains("connection refused"));
  }
}

TEST_CASE("troupe --version names the release and the wire protocol", "[integration][cli]") {
  const auto r = troupe::testing::run_process(troupe::testing::bin("troupe"), {"--version"});
  CHECK(r.exit_code == 0);
  CHECK(std::regex_match(r.out, std::regex(R"(troupe \d+\.\d+\.\d+ \(wire protocol 1\)\n)")));
}
