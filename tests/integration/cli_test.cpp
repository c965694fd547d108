// The operator's path end to end: load the encoders example, spawn its
// actors, ask them through the CLI and the example client, list them, and
// use global names.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

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
  CHECK(std::regex_match(r.out,
                         std::regex(R"(troupe \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown), wire protocol 1\)\n)")));
}

namespace {

/// A file in dir holding text; its path.
std::string write_file(const std::filesystem::path& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return (dir / name).string();
}

}  // namespace

TEST_CASE("help shows every option with its syntax and default, examples and the exit codes",
          "[integration][cli][help]") {
  const auto troupe = troupe::testing::bin("troupe");
  const auto top = troupe::testing::run_process(troupe, {"--help"});
  CHECK(top.exit_code == 0);
  for (const char* word : {"Commands:", "start", "config", "ask", "Exit status:", "unavailable", "TROUPE_SYSTEM"})
    CHECK_THAT(top.out, Catch::Contains(word));
  CHECK_THAT(top.out, !Catch::Contains("__complete"));

  const auto start = troupe::testing::run_process(troupe, {"start", "--help"});
  CHECK(start.exit_code == 0);
  for (const char* word : {"--caps NAME[=VALUE][,NAME[=VALUE]...]", "--max-package-size N[K|M|G]", "--heartbeat MS",
                           "default 1900", "env TROUPE_PORT", "--config FILE", "Examples:", "Exit status:"})
    CHECK_THAT(start.out, Catch::Contains(word));
  CHECK_THAT(start.out, !Catch::Contains("--ready-fd"));
  // `troupe help CMD` is the same.
  CHECK(troupe::testing::run_process(troupe, {"help", "start"}).out == start.out);
}

TEST_CASE("usage errors exit 2 with the command, the reason and a pointer to its help", "[integration][cli][errors]") {
  const auto troupe = troupe::testing::bin("troupe");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"ask", "morse"}, "troupe ask: missing JSON"},
      {{"ask", "morse", "1", "2"}, "troupe ask: unexpected argument '2'"},
      {{"kill", "--frobnicate", "x"}, "troupe kill: unknown option --frobnicate"},
      {{"start", "--port"}, "troupe start: "},
      {{"start", "--port", "70000"}, "troupe start: '70000' is not a port"},
      {{"load", "--unsigned"}, "troupe load: missing WHAT"},
      {{"keygen"}, "troupe keygen: keygen takes one NAME"},
  };
  for (const auto& [args, reason] : cases) {
    const auto r = troupe::testing::run_process(troupe, args, {{"TROUPE_SYSTEM", "127.0.0.1:9"}});
    INFO(args[0] << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::StartsWith(reason));
    CHECK_THAT(r.err, Catch::Contains("see `troupe " + args[0] + " --help`"));
  }
}

TEST_CASE("start takes its options from flags, TROUPE_* variables and a --config file, in that order",
          "[integration][cli][config]") {
  test_system sys;  // its home, and a running system to ask
  const auto dir = sys.home();
  const std::string port = std::to_string(troupe::testing::free_port());
  const std::string file = write_file(dir, "system.toml",
                                      "# one system\nport = " + port +
                                          "\ncaps = \"morse,Caesar cipher\"\nmax_held = 50\nheartbeat = 300\n"
                                          "member-timeout = 2000\nallow-unsigned = true\n");
  const auto troupe = troupe::testing::bin("troupe");
  const std::map<std::string, std::optional<std::string>> env = {{"TROUPE_HOME", dir.string()},
                                                                 {"TROUPE_SYSTEM", std::nullopt},
                                                                 {"TROUPE_HEARTBEAT", "100"},
                                                                 {"TROUPE_MAX_HELD", "60"}};

  SECTION("troupe config shows each value and where it came from") {
    const auto r =
        troupe::testing::run_process(troupe, {"--json", "config", "--config", file, "--max-held", "70"}, env);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const json o = json::parse(r.out)["options"];
    CHECK(o["port"] == json{{"value", port}, {"source", "file " + file}});
    CHECK(o["caps"]["value"] == "morse,Caesar cipher");
    CHECK(o["heartbeat"] == json{{"value", "100"}, {"source", "env TROUPE_HEARTBEAT"}});
    CHECK(o["max-held"] == json{{"value", "70"}, {"source", "flag"}});
    CHECK(o["allow-unsigned"]["value"] == "true");
    CHECK(o["bind"] == json{{"value", "127.0.0.1"}, {"source", "default"}});
    CHECK(o["leader"]["value"] == "127.0.0.1:" + port);  // no leader: itself
  }

  SECTION("the daemon gets the same values and sources, and answers them") {
    const auto started = troupe::testing::run_process(troupe, {"start", "--config", file, "--standby", "0"}, env);
    INFO(started.err);
    REQUIRE(started.exit_code == 0);
    struct stopper {
      std::string troupe, port;
      std::map<std::string, std::optional<std::string>> env;
      ~stopper() { (void)troupe::testing::run_process(troupe, {"stop", port}, env); }
    } stops{troupe, port, env};
    const std::string where = "127.0.0.1:" + port;
    const auto status =
        json::parse(troupe::testing::run_process(troupe, {"--system", where, "--json", "status"}, env).out);
    CHECK(status["capabilities"] == json{{"morse", true}, {"Caesar cipher", true}});
    CHECK(status["limits"]["max_held"] == 60);
    CHECK(status["standby_target"] == 0);

    const auto asked = troupe::testing::run_process(troupe, {"--system", where, "--json", "config"}, env);
    INFO(asked.err);
    REQUIRE(asked.exit_code == 0);
    const json o = json::parse(asked.out)["options"];
    CHECK(o["port"]["source"] == "file " + file);
    CHECK(o["max-held"] == json{{"value", "60"}, {"source", "env TROUPE_MAX_HELD"}});
    CHECK(o["standby"] == json{{"value", "0"}, {"source", "flag"}});
    CHECK(o["member-timeout"]["source"] == "file " + file);
    const auto text = troupe::testing::run_process(troupe, {"--system", where, "config"}, env);
    CHECK_THAT(text.out, Catch::Contains("OPTION") && Catch::Contains("env TROUPE_HEARTBEAT"));
  }

  SECTION("a wrong key or value in the file is one line naming the file and the key; nothing starts") {
    for (const auto& [text, reason] : std::vector<std::pair<std::string, std::string>>{
             {"port = " + port + "\nfrobnicate = 1\n", "unknown key 'frobnicate'"},
             {"port = " + port + "\nmax-workers = 0\n", "key max-workers: --max-workers takes a number from 1"},
             {"port = " + port + "\ninsecure-tcp = maybe\n", "key insecure-tcp takes true or false"}}) {
      const std::string bad = write_file(dir, "bad.toml", text);
      const auto r = troupe::testing::run_process(troupe, {"start", "--config", bad}, env);
      INFO(r.err);
      CHECK(r.exit_code == 2);
      CHECK_THAT(r.err, Catch::StartsWith("troupe start: " + bad) && Catch::Contains(reason));
      CHECK_FALSE(std::filesystem::exists(dir / "systems" / port));
    }
    const auto missing = troupe::testing::run_process(troupe, {"start", "--config", (dir / "none.toml").string()}, env);
    troupe::testing::check_one_line_failure(missing, 5);
  }
}

TEST_CASE("payloads come from a file or standard input, past the size of an argument", "[integration][cli]") {
  test_system sys;
  const std::string relay = sys.spawn({"Relay", "--package", sys.load(TROUPE_RELAY_V1_PKG), "--name", "relay"});
  const std::string big(1 << 20, 'x');  // 1 MiB: more than one argument may carry (128 KiB)
  const json request{{"echo", big}};
  const std::string file = write_file(sys.home(), "request.json", request.dump());

  const auto from_file = sys.run({"ask", "relay", "@" + file});
  INFO(from_file.err);
  REQUIRE(from_file.exit_code == 0);
  CHECK(json::parse(from_file.out) == json(big));

  const auto from_stdin = sys.run_program("troupe", {"ask", relay, "-"}, request.dump());
  INFO(from_stdin.err);
  REQUIRE(from_stdin.exit_code == 0);
  CHECK(json::parse(from_stdin.out) == json(big));

  CHECK(sys.run_program("troupe", {"tell", "relay", "-"}, "{\"seq\": 0}").exit_code == 0);
  // A JSON string starting with '@' is written as JSON.
  CHECK(sys.run({"tell", "relay", "\"@x\""}).exit_code == 0);
  troupe::testing::check_one_line_failure(sys.run({"ask", "relay", "@" + (sys.home() / "none.json").string()}), 5);
  const auto malformed = sys.run_program("troupe", {"ask", "relay", "-"}, "{not json");
  CHECK(malformed.exit_code == 2);
  CHECK_THAT(malformed.err, Catch::StartsWith("troupe ask: malformed JSON payload on standard input"));
}

TEST_CASE("arguments starting with one dash are positional", "[integration][cli]") {
  test_system sys({"--caps", "morse"});
  // -morse is a capability to remove, not options -m -o -r ...
  const auto removed = sys.run({"--json", "chgcap", std::to_string(sys.port()), "-morse"});
  INFO(removed.err);
  REQUIRE(removed.exit_code == 0);
  CHECK(json::parse(removed.out)["capabilities"] == json::object());
  // A command's name as an argument is an argument (no actor is called "status").
  troupe::testing::check_one_line_failure(sys.run({"ask", "status", "-1"}), 5);
}

TEST_CASE("the bash completion offers the running system's actor names and addresses", "[integration][cli]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  const std::string addr = sys.spawn({"Morse", "--name", "morse"});
  const std::string script = std::string("source '") + TROUPE_COMPLETION_FILE +
                             "' && COMP_WORDS=(troupe ask \"$1\") && COMP_CWORD=2 && _troupe && "
                             "printf '%s\\n' \"${COMPREPLY[@]}\"";
  const auto complete = [&](const std::string& word) {
    return troupe::testing::run_process("/bin/bash", {"-c", script, "bash", word},
                                        {{"TROUPE_HOME", sys.home().string()},
                                         {"TROUPE_SYSTEM", sys.where()},
                                         {"PATH", std::string(TROUPE_BIN_DIR) + ":/usr/bin:/bin"}});
  };
  const auto names = complete("m");
  INFO(names.err);
  CHECK(names.out == "morse\n");
  CHECK(complete("@").out == addr + "\n");
}

TEST_CASE("actors pages and filters", "[integration][cli]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  std::vector<std::string> spawned;
  for (const char* t : {"Morse", "Rot13", "Morse", "Base64", "Morse"}) spawned.push_back(sys.spawn({t}));
  std::sort(spawned.begin(), spawned.end(), [](const std::string& a, const std::string& b) {
    return troupe::address::parse(a)->value() < troupe::address::parse(b)->value();
  });
  const auto page1 = sys.run({"--json", "actors", "--limit", "2"});
  REQUIRE(page1.exit_code == 0);
  const json p1 = json::parse(page1.out);
  REQUIRE(p1["actors"].size() == 2);
  CHECK(p1["total"] == 5);
  CHECK(p1["actors"][0]["address"] == spawned[0]);
  REQUIRE(p1["next"] == spawned[1]);
  const json p2 = json::parse(sys.run({"--json", "actors", "--limit", "10", "--after", spawned[1]}).out);
  CHECK(p2["actors"].size() == 3);
  CHECK(p2["next"].is_null());
  // The table says where to go on.
  const auto table = sys.run({"actors", "--limit", "2"});
  CHECK_THAT(table.out, Catch::Contains("(2 of 5; more with --after " + spawned[1] + ")"));
  // Filters.
  CHECK(json::parse(sys.run({"--json", "actors", "--package", "encoders", "--state", "running"}).out).size() == 5);
  CHECK(json::parse(sys.run({"--json", "actors", "--state", "failed"}).out).empty());
  CHECK(json::parse(sys.run({"--json", "actors", "--on", std::to_string(sys.port())}).out).size() == 5);
  CHECK(sys.run({"actors", "--after", "nowhere"}).exit_code == 2);
  CHECK(sys.run({"actors", "--limit", "-3"}).exit_code == 2);
}
