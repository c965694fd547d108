// A system SIGKILLed under traffic comes back on the same home and port with
// the actors clients created, at their addresses and names (its desired
// state, systems/PORT/state.json); a clean stop forgets them; a corrupt
// state file is set aside and the system starts empty. These tests kill
// daemons: they run in a pid namespace of their own (CMakeLists.txt).
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using troupe::testing::eventually;
using troupe::testing::json;
using troupe::testing::test_system;
namespace fs = std::filesystem;

namespace {

bool answers(const test_system& sys, const std::string& target, const std::string& text) {
  const auto r = sys.run({"ask", target, json{{"echo", text}}.dump(), "--timeout", "1000"});
  return r.exit_code == 0 && json::parse(r.out, nullptr, false) == text;
}

/// Asks every target in turn, from its own thread, until stopped: the
/// client traffic a crash happens under.
struct steady_asks {
  const test_system& sys;
  std::vector<std::string> targets;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread t;
  steady_asks(const test_system& s, std::vector<std::string> ts) : sys(s), targets(std::move(ts)) {
    t = std::thread([this] {
      for (int i = 0; !stop && i < 100000; ++i)
        (answers(sys, targets[static_cast<std::size_t>(i) % targets.size()], "steady") ? ok : failed)++;
    });
  }
  ~steady_asks() { finish(); }
  void finish() {
    stop = true;
    if (t.joinable()) t.join();
  }
};

}  // namespace

TEST_CASE("a SIGKILLed system re-creates its actors at their addresses and names", "[integration][crash]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  std::map<std::string, std::string> named;  // name -> address
  for (int i = 0; i < 4; ++i) {
    const std::string name = "relay-" + std::to_string(i);
    named[name] = sys.spawn({"Relay", "--package", pkg, "--name", name});
  }
  const std::string unnamed = sys.spawn({"Relay", "--package", pkg});
  const std::string killed = sys.spawn({"Relay", "--package", pkg, "--name", "killed"});
  REQUIRE(sys.run({"kill", "killed"}).exit_code == 0);
  // State that is lost with the crash: Relay counts the tells it gets.
  REQUIRE(sys.run({"tell", "relay-0", json{{"count", 1}}.dump()}).exit_code == 0);
  const fs::path state = sys.state_dir() / "state.json";
  REQUIRE(fs::exists(state));
  CHECK((fs::status(state).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));

  std::vector<std::string> targets;
  for (const auto& [name, addr] : named) targets.push_back(name);
  steady_asks client(sys, targets);
  REQUIRE(eventually([&] { return client.ok >= 4; }));
  const int ok_before = client.ok;
  sys.kill_daemon();

  test_system again(sys, sys.port(), {});
  for (const auto& [name, addr] : named) {
    INFO(name << " at " << addr);
    CHECK(eventually([&] { return answers(again, name, "after"); }, 20s));
    CHECK(answers(again, addr, "by address"));
  }
  CHECK(answers(again, unnamed, "unnamed"));
  CHECK(eventually([&] { return client.ok >= ok_before + 8; }, 20s));  // the client's traffic goes on
  client.finish();

  // As they were, but restarted: fresh state, restarts counted.
  for (const auto& [name, addr] : named) {
    auto v = again.actor(addr);
    REQUIRE(v);
    CHECK(v->raw["name"] == name);
    CHECK(v->state() == "running");
    CHECK(v->restarts() == 1);
  }
  CHECK(again.ask("relay-0", json{{"tell_count", true}})["count"] == 0);
  // What was killed before the crash stays gone; new addresses are new.
  const auto gone = again.run({"ask", "killed", json{{"echo", 1}}.dump()});
  CHECK(gone.exit_code == 5);
  CHECK(!again.actor(killed));
  const std::string fresh = again.spawn({"Relay", "--package", pkg, "--name", "fresh"});
  for (const auto& [name, addr] : named) CHECK(fresh != addr);
  CHECK(fresh != killed);
  CHECK(again.actors().size() == named.size() + 2);
  CHECK_THAT(again.log(), Catch::Contains("re-creating its 5 actors at their addresses"));

  // A second crash keeps them again, the new one included.
  again.kill_daemon();
  test_system third(sys, sys.port(), {});
  CHECK(eventually([&] { return answers(third, "fresh", "third"); }, 20s));
  CHECK(eventually([&] { return answers(third, "relay-3", "third"); }, 20s));
}

TEST_CASE("a clean stop forgets the actors: the next start begins empty", "[integration][crash]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  const std::string addr = sys.spawn({"Relay", "--package", pkg, "--name", "kept"});
  REQUIRE(sys.stop().exit_code == 0);
  CHECK(!fs::exists(sys.state_dir() / "state.json"));
  CHECK(!fs::exists(sys.state_dir() / "loaded"));

  test_system again(sys, sys.port(), {});
  CHECK(again.actors().empty());
  CHECK(json::parse(again.run({"list", "--json"}).out).empty());
  const auto by_name = again.run({"ask", "kept", json{{"echo", 1}}.dump()});
  CHECK(by_name.exit_code == 5);
  const auto by_address = again.run({"ask", addr, json{{"echo", 1}}.dump()});
  CHECK(by_address.exit_code == 5);
  // A new run, a new system id: the old address names nothing here.
  const std::string fresh = again.spawn({"Relay", "--package", again.load(TROUPE_RELAY_V1_PKG)});
  CHECK(fresh.substr(0, 9) != addr.substr(0, 9));
}

TEST_CASE("a corrupt state file is set aside and the system starts empty", "[integration][crash]") {
  test_system sys;
  const std::string pkg = sys.load(TROUPE_RELAY_V1_PKG);
  (void)sys.spawn({"Relay", "--package", pkg, "--name", "lost"});
  sys.kill_daemon();
  const fs::path state = sys.state_dir() / "state.json";
  std::string garbage;
  SECTION("not JSON") { garbage = "{\"format\":1,\"system\":"; }
  SECTION("an address of another system") {
    garbage = R"({"format":1,"system":"0000abcd","serials_below":100,"actors":[{"address":"@00001234.17",)"
              R"("type":"Relay","package_id":")" +
              std::string(64, 'a') + R"("}]})";
  }
  SECTION("deeply nested") { garbage = std::string(200000, '['); }
  { std::ofstream(state, std::ios::trunc) << garbage; }

  test_system again(sys, sys.port(), {});
  const std::string log = again.log();
  CHECK_THAT(log, Catch::Contains("WARN  [system:" + std::to_string(sys.port()) + "] ignored the desired state " +
                                  state.string()));
  CHECK_THAT(log, Catch::Contains("no actor restored from it"));
  CHECK(fs::exists(state.string() + ".bad"));
  std::ifstream aside(state.string() + ".bad");
  CHECK(std::string(std::istreambuf_iterator<char>(aside), {}) == garbage);
  CHECK(again.actors().empty());
  CHECK(again.run({"ask", "lost", "1"}).exit_code == 5);
  // It serves, and keeps a good state again.
  const std::string pkg2 = again.load(TROUPE_RELAY_V1_PKG);
  (void)again.spawn({"Relay", "--package", pkg2, "--name", "new"});
  CHECK(again.ask("new", json{{"echo", "x"}}) == "x");
  CHECK(eventually([&] {
    // A snapshot line, then the journal: the new actor is in it.
    std::ifstream in(state);
    std::string first;
    std::getline(in, first);
    const std::string rest(std::istreambuf_iterator<char>(in), {});
    return json::parse(first, nullptr, false).is_object() && rest.find(R"("name":"new")") != std::string::npos;
  }));
}

TEST_CASE("a crashed convention leader re-creates its own actors; members bring theirs", "[integration][crash]") {
  test_system lead;
  test_system member(lead, 0, {"--leader", lead.where()});
  REQUIRE(eventually([&] { return json::parse(member.run({"status", "--json"}).out).value("joined", false); }));
  const std::string pkg = lead.load(TROUPE_RELAY_V1_PKG);
  // Local first: each spawn runs on the system it was asked of.
  const std::string on_lead = lead.spawn({"Relay", "--package", pkg, "--name", "on-lead"});
  const std::string on_member = member.spawn({"Relay", "--package", pkg, "--name", "on-member"});
  REQUIRE(answers(lead, "on-member", "before"));
  lead.kill_daemon();

  test_system again(lead, lead.port(), {});
  CHECK(eventually([&] { return answers(again, "on-lead", "after"); }, 20s));
  CHECK(answers(again, on_lead, "after"));
  CHECK(eventually([&] { return answers(again, "on-member", "after"); }, 20s));
  CHECK(answers(member, "on-lead", "from the member"));
  CHECK(answers(member, on_member, "at home"));
  // The member's actor was not re-created: it never stopped.
  auto v = member.actor(on_member);
  REQUIRE(v);
  CHECK(v->restarts() == 0);
}
