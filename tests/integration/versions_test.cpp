// Versions of a package group on a real system: two versions bundling
// conflicting builds of one library answer side by side, each with its own;
// and the lifecycle of docs/OPERATIONS.md §5 (on_load roles, names and
// messages, on_deactivate, on_reactivate, unload, auto_unload, keep, avail,
// refresh), observed through the "lifecycle" fixture, which writes every
// message its actors get to $TROUPE_HOME/lifecycle.log.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using troupe::testing::json;
using troupe::testing::test_system;

namespace {

const std::string fixtures = TROUPE_FIXTURE_PACKAGES_DIR;

std::vector<std::string> log_lines(const test_system& sys) {
  std::ifstream in(sys.home() / "lifecycle.log");
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

/// Waits (bounded) until the lifecycle log holds line; returns its index.
long wait_for_line(const test_system& sys, const std::string& line) {
  std::vector<std::string> lines;
  long at = -1;
  troupe::testing::eventually([&] {
    lines = log_lines(sys);
    auto it = std::find(lines.begin(), lines.end(), line);
    at = it == lines.end() ? -1 : static_cast<long>(it - lines.begin());
    return at >= 0;
  });
  if (at < 0) {
    std::ostringstream all;
    for (const auto& l : lines) all << l << "\n";
    FAIL("no line '" << line << "' in lifecycle.log:\n" << all.str());
  }
  return at;
}

json package_of(const test_system& sys, const std::string& id) {
  for (const auto& p : json::parse(sys.run({"list", "--json"}).out))
    if (p["id"] == id) return p;
  return nullptr;
}

std::string role(const test_system& sys, const std::string& name) {
  auto r = sys.run({"role", name});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return r.last_line();
}

}  // namespace

TEST_CASE("two versions bundling conflicting builds of libcodec.so.1 answer side by side",
          "[integration][versions][conflict]") {
  test_system sys;
  const std::string v1 = sys.load(TROUPE_CONFLICT_V1_PKG);
  const std::string old_codec = sys.spawn({"Codec"});
  const std::string v2 = sys.load(TROUPE_CONFLICT_V2_PKG);
  const std::string new_codec = sys.spawn({"Codec"});  // the active version: 2.0.0
  const std::string pinned = sys.spawn({"Codec", "--package", v1});

  // Both at the same time, from two clients (Catch2 assertions stay on this thread).
  auto ask = [&](const std::string& target) -> troupe::result<json> {
    auto c = troupe::client::connect(sys.where(), sys.connect_options());
    if (!c) return c.err();
    return c->ask(target, json{{"text", "abc"}}, std::chrono::seconds(5));
  };
  auto a = std::async(std::launch::async, ask, old_codec);
  auto b = std::async(std::launch::async, ask, new_codec);
  const auto old_reply = a.get();
  const auto new_reply = b.get();
  REQUIRE(old_reply);
  REQUIRE(new_reply);
  const json& old_answer = *old_reply;
  const json& new_answer = *new_reply;
  CHECK(old_answer["codec"] == "1.2");
  CHECK(old_answer["encoded"] == "cba");
  CHECK(new_answer["codec"] == "1.5");
  CHECK(new_answer["encoded"] == "[1.5] ABC");
  CHECK(sys.ask(pinned, json::object())["codec"] == "1.2");
  CHECK(package_of(sys, v1)["worker_pid"] != package_of(sys, v2)["worker_pid"]);

  // Loading the same archive again changes nothing.
  auto again = sys.run({"load", TROUPE_CONFLICT_V2_PKG});
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("already loaded"));
  CHECK(json::parse(sys.run({"list", "--json"}).out).size() == 2);
}

TEST_CASE("the version lifecycle: on_load, deactivate, unload, reactivate", "[integration][versions]") {
  test_system sys;
  const std::string v1 = sys.load(fixtures + "/lifecycle-1.0.0.tpkg");
  const std::string a1 = role(sys, "MainRecorder");
  wait_for_line(sys, a1 + " tell {\"op\":\"warm_up\"}");
  CHECK(sys.ask("recorder", json::object())["self"] == a1);  // on_load's global name

  // A newer version: active, on_load runs for it, the old one is told to
  // drain and keeps serving the actors it has.
  const std::string v2 = sys.load(fixtures + "/lifecycle-2.0.0.tpkg");
  const std::string a2 = role(sys, "MainRecorder");
  CHECK(a2 != a1);
  wait_for_line(sys, a2 + " tell {\"op\":\"warm_up\"}");
  wait_for_line(sys, a1 + " tell {\"op\":\"drain\"}");
  CHECK(package_of(sys, v2)["active"] == true);
  CHECK(package_of(sys, v1)["active"] == false);
  CHECK(sys.ask(a1, json::object())["self"] == a1);
  CHECK(sys.ask("recorder", json::object())["self"] == a2);  // the name follows the active version
  const std::string fresh = sys.spawn({"Recorder"});
  CHECK(sys.actor(fresh)->raw["package_id"] == v2);  // new spawns go to the active version
  CHECK(sys.actor(sys.spawn({"Recorder", "--package", v1}))->raw["package_id"] == v1);

  // Unloading the active one: on_deactivate, then exit requests, in that
  // order; the older one is re-activated with on_reactivate.
  auto unload = sys.run({"unload", v2});
  INFO(unload.err);
  REQUIRE(unload.exit_code == 0);
  const long drain = wait_for_line(sys, a2 + " tell {\"op\":\"drain\"}");
  const long exit = wait_for_line(sys, a2 + " exit");
  CHECK(drain < exit);
  wait_for_line(sys, fresh + " exit");
  wait_for_line(sys, a1 + " tell {\"op\":\"resume\"}");
  CHECK(package_of(sys, v2).is_null());
  CHECK(package_of(sys, v1)["active"] == true);
  CHECK_FALSE(sys.actor(a2));
  CHECK_FALSE(sys.actor(fresh));
  CHECK(role(sys, "MainRecorder") == a1);
  CHECK(sys.ask("recorder", json::object())["self"] == a1);

  // The unloaded hash is named in the errors that mention it.
  auto spawn = sys.run({"spawn", "Recorder", "--package", v2});
  CHECK(spawn.exit_code == 5);
  CHECK_THAT(spawn.err, Catch::Contains(v2) && Catch::Contains("not loaded"));
  auto unload_again = sys.run({"unload", v2});
  CHECK(unload_again.exit_code == 5);
  CHECK_THAT(unload_again.err, Catch::Contains(v2));
  // A group is not a hash.
  CHECK(sys.run({"unload", "lifecycle"}).exit_code == 1);
}

TEST_CASE("auto_unload unloads the older version once a newer one is active", "[integration][versions]") {
  test_system sys;
  const std::string v1 = sys.load(fixtures + "/lifecycle_auto-1.0.0.tpkg");
  const std::string a1 = role(sys, "AutoRecorder");
  wait_for_line(sys, a1 + " tell {\"op\":\"warm_up\"}");
  const std::string v2 = sys.load(fixtures + "/lifecycle_auto-2.0.0.tpkg");
  const long drain = wait_for_line(sys, a1 + " tell {\"op\":\"drain\"}");
  const long exit = wait_for_line(sys, a1 + " exit");
  CHECK(drain < exit);
  // Gone from the list once its worker exited (bounded wait).
  CHECK(troupe::testing::eventually([&] { return package_of(sys, v1).is_null(); }));
  CHECK(package_of(sys, v2)["active"] == true);
  CHECK(role(sys, "AutoRecorder") != a1);
}

TEST_CASE("avail, load by group, keep and refresh work on the package directory", "[integration][versions]") {
  test_system sys;
  const fs::path dir = sys.home() / "packages";
  for (const char* v : {"1.0.0", "2.0.0", "3.0.0"}) {
    const std::string name = std::string("lifecycle-") + v + ".tpkg";
    fs::copy_file(fixtures + "/" + name, dir / name);
  }
  fs::copy_file(TROUPE_ENCODERS_PKG, dir / "encoders-1.0.0.tpkg");
  std::ofstream(dir / "broken-1.0.0.tpkg") << "not an archive";

  auto avail = sys.run({"avail", "--json"});
  REQUIRE(avail.exit_code == 0);
  const json groups = json::parse(avail.out)["groups"];
  REQUIRE(groups.size() == 3);
  CHECK(groups[0]["group"] == "broken");
  CHECK(groups[0]["archives"][0].contains("error"));
  CHECK(groups[2]["group"] == "lifecycle");
  REQUIRE(groups[2]["archives"].size() == 3);
  CHECK(groups[2]["archives"][0]["version"] == "3.0.0");  // newest first
  CHECK(groups[2]["archives"][2]["version"] == "1.0.0");

  const std::string v1 = sys.load(dir.string() + "/lifecycle-1.0.0.tpkg");
  // By group: the newest archive. keep: 1 then deletes the older archives
  // that are not loaded (2.0.0), sparing the loaded 1.0.0.
  const std::string v3 = sys.load("lifecycle");
  CHECK(package_of(sys, v3)["version"] == "3.0.0");
  CHECK(fs::exists(dir / "lifecycle-3.0.0.tpkg"));
  CHECK(fs::exists(dir / "lifecycle-1.0.0.tpkg"));
  CHECK_FALSE(fs::exists(dir / "lifecycle-2.0.0.tpkg"));

  // refresh: the newest of every group; a no-op where it is loaded; the
  // broken archive reported, the others loaded anyway.
  auto refresh = sys.run({"refresh", "--json"});
  INFO("refresh: " << refresh.out << refresh.err);
  CHECK(refresh.exit_code == 1);
  CHECK_THAT(refresh.err, Catch::Contains("broken"));
  bool encoders_loaded = false;
  const json refreshed = json::parse(refresh.out);
  for (const auto& g : refreshed["groups"]) {
    if (g["group"] == "lifecycle") CHECK(g["already_loaded"] == true);
    if (g["group"] == "encoders") encoders_loaded = !g.contains("error") && g["already_loaded"] == false;
  }
  CHECK(encoders_loaded);
  CHECK(json::parse(sys.run({"list", "--json"}).out).size() == 3);
}
