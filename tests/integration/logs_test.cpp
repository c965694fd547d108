// The system's log with real daemons and workers (docs/OPERATIONS.md §9):
// levels (payloads only at debug), a file of mode 0600, rotation by size,
// SIGHUP reopening after a rename with the workers' lines following, JSON
// lines, and `troupe logs` filtering by level and actor. Signals go only to
// the daemon this test started (test_system::signal_daemon).
#include "tests/integration/harness.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using troupe::testing::eventually;
using troupe::testing::json;
using troupe::testing::slurp;
using troupe::testing::test_system;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

/// A system with the encoders package and a Morse named "morse"; returns its address.
std::string with_morse(const test_system& sys) {
  sys.load(TROUPE_ENCODERS_PKG);
  return sys.spawn({"Morse", "--name", "morse"});
}

/// Tells morse text and waits until its worker's line about it is in the log
/// file at path (the tell has been handled and logged).
void tell_and_wait(const test_system& sys, const std::string& morse, const std::string& text, const fs::path& file) {
  const std::string before = slurp(file);
  const auto seen = count_of(before, morse + "] ignoring tell");
  REQUIRE(sys.run({"tell", "morse", json(text).dump()}).exit_code == 0);
  REQUIRE(eventually([&] { return count_of(slurp(file), morse + "] ignoring tell") > seen; }, 10s));
}

}  // namespace

TEST_CASE("payloads reach the log at debug level only; the log is 0600", "[integration][logs]") {
  test_system debug({"--log-level", "debug"});
  test_system info;  // the default level: info
  const std::string d = with_morse(debug);
  const std::string i = with_morse(info);
  const fs::path dlog = debug.state_dir() / "system.log";
  const fs::path ilog = info.state_dir() / "system.log";

  CHECK(debug.ask("morse", json("payload-marker-ask")).is_string());
  CHECK(info.ask("morse", json("payload-marker-ask")).is_string());
  tell_and_wait(debug, d, "payload-marker-tell", dlog);
  tell_and_wait(info, i, "payload-marker-tell", ilog);

  const std::string dtext = slurp(dlog);
  const std::string itext = slurp(ilog);
  INFO("debug log:\n" << dtext << "\ninfo log:\n" << itext);
  // The daemon's request line (client ask and tell) and the actor's own debug line.
  CHECK_THAT(dtext, Catch::Contains("DEBUG [system:" + std::to_string(debug.port()) + "] client request 'ask'"));
  CHECK_THAT(dtext, Catch::Contains("payload-marker-ask"));
  CHECK_THAT(dtext, Catch::Contains(d + "] ignored tell's payload: \"payload-marker-tell\""));
  CHECK_THAT(dtext, Catch::Contains("DEBUG [w"));
  CHECK(itext.find("payload-marker") == std::string::npos);
  CHECK(itext.find("DEBUG") == std::string::npos);
  CHECK_THAT(itext, Catch::Contains(i + "] ignoring tell 'json' (21 bytes)"));

  CHECK(mode_of(dlog) == 0600);
  CHECK(mode_of(ilog) == 0600);
  const auto status = info.run({"--json", "status"});
  REQUIRE(status.exit_code == 0);
  const json log = json::parse(status.out)["log"];
  CHECK(log["target"] == "file");
  CHECK(log["file"] == ilog.string());
  CHECK(log["level"] == "info");
}

TEST_CASE("the log rotates by size and keeps --log-files files", "[integration][logs]") {
  test_system sys({"--log-max-size", "1K", "--log-files", "2"});
  const std::string morse = with_morse(sys);
  const fs::path file = sys.state_dir() / "system.log";
  const fs::path one = sys.state_dir() / "system.log.1";
  const fs::path two = sys.state_dir() / "system.log.2";
  // About 90 bytes a line: 1K fills in a dozen, and three files in forty.
  for (int n = 0; n < 40; ++n) REQUIRE(sys.run({"tell", "morse", json("x").dump()}).exit_code == 0);
  // Handled in order: once the last tell is logged, all are.
  REQUIRE(sys.run({"tell", "morse", json("the-last-one").dump()}).exit_code == 0);
  REQUIRE(
      eventually([&] { return (slurp(two) + slurp(one) + slurp(file)).find("(14 bytes)") != std::string::npos; }, 10s));
  CHECK(fs::exists(two));
  CHECK(!fs::exists(sys.state_dir() / "system.log.3"));
  for (const auto& f : {file, one, two}) {
    INFO(f.string());
    CHECK(fs::file_size(f) <= 1024);
    CHECK(mode_of(f) == 0600);
  }
  // `troupe logs` reads the rotated files first, oldest first: the last of
  // its lines is the last of the current file.
  const auto r = sys.run({"logs"});
  REQUIRE(r.exit_code == 0);
  const auto printed = lines_of(r.out);
  const auto current = lines_of(slurp(file));
  REQUIRE(!printed.empty());
  REQUIRE(!current.empty());
  CHECK(printed.back() == current.back());
  CHECK(count_of(r.out, "ignoring tell") == count_of(slurp(two), "ignoring tell") +
                                                count_of(slurp(one), "ignoring tell") +
                                                count_of(slurp(file), "ignoring tell"));
}

TEST_CASE("SIGHUP reopens the log after a rename; workers' lines follow", "[integration][logs]") {
  test_system sys;
  const std::string morse = with_morse(sys);
  const fs::path file = sys.state_dir() / "system.log";
  const fs::path moved = sys.state_dir() / "system.log.old";
  tell_and_wait(sys, morse, "before", file);

  // As logrotate does: rename, then SIGHUP to the daemon (this test's own).
  fs::rename(file, moved);
  sys.signal_daemon(SIGHUP);
  REQUIRE(eventually([&] { return slurp(file).find("log reopened (SIGHUP)") != std::string::npos; }, 10s));
  CHECK(mode_of(file) == 0600);
  tell_and_wait(sys, morse, "after", file);
  const std::string now = slurp(file);
  INFO(now);
  CHECK_THAT(now, Catch::Contains(morse + "] ignoring tell 'json' (7 bytes)"));
  CHECK_THAT(now, Catch::Contains("INFO  [w"));
  const std::string old = slurp(moved);
  CHECK_THAT(old, Catch::Contains("ignoring tell 'json' (8 bytes)"));  // "before"
  CHECK(old.find("(7 bytes)") == std::string::npos);
  CHECK(old.find("log reopened") == std::string::npos);
  // The daemon still serves after the signal.
  CHECK(sys.ask("morse", json("sos")) == json("... --- ..."));
}

TEST_CASE("troupe logs filters by level and by actor", "[integration][logs]") {
  test_system sys;
  const std::string morse = with_morse(sys);
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string loner = sys.spawn({"Loner", "--name", "loner"});
  const fs::path file = sys.state_dir() / "system.log";
  tell_and_wait(sys, morse, "x", file);
  // A handler that throws: its worker logs a WARN about the loner.
  (void)sys.run({"ask", "loner", json{{"crash", "throw"}}.dump()});
  REQUIRE(eventually([&] { return slurp(file).find("handler failed") != std::string::npos; }, 10s));

  const auto warn = sys.run({"logs", "--level", "warn"});
  REQUIRE(warn.exit_code == 0);
  INFO(warn.out);
  CHECK_THAT(warn.out, Catch::Contains(loner + "] handler failed"));
  CHECK(warn.out.find("ignoring tell") == std::string::npos);
  CHECK(warn.out.find(" INFO ") == std::string::npos);

  for (const std::string& who : {std::string("morse"), morse}) {  // a name resolved through the system, an address
    const auto mine = sys.run({"logs", "--actor", who});
    REQUIRE(mine.exit_code == 0);
    INFO(mine.out);
    CHECK_THAT(mine.out, Catch::Contains(morse + "] ignoring tell"));
    for (const auto& line : lines_of(mine.out)) CHECK_THAT(line, Catch::Contains(morse));
  }
  const auto lone = sys.run({"logs", "--actor", loner, "--level", "warn"});
  CHECK_THAT(lone.out, Catch::Contains("handler failed"));
  CHECK(lone.out.find(morse) == std::string::npos);

  const auto as_json = sys.run({"--json", "logs", "--level", "warn"});
  REQUIRE(as_json.exit_code == 0);
  for (const auto& line : lines_of(as_json.out)) {
    const json j = json::parse(line);
    CHECK((j["level"] == "warn" || j["level"] == "error"));
  }
  CHECK(sys.run({"logs", "--level", "loud"}).exit_code == 2);
}

TEST_CASE("--log-format json writes one JSON object a line", "[integration][logs]") {
  test_system sys({"--log-format", "json", "--log-level", "debug"});
  const std::string morse = with_morse(sys);
  const fs::path file = sys.state_dir() / "system.log";
  REQUIRE(sys.run({"tell", "morse", json("in json").dump()}).exit_code == 0);
  REQUIRE(eventually([&] { return slurp(file).find("ignored tell's payload") != std::string::npos; }, 10s));
  bool saw_actor = false;
  bool saw_system = false;
  for (const auto& line : lines_of(slurp(file))) {
    INFO(line);
    const json j = json::parse(line);  // throws (fails) on anything else
    CHECK(j["ts"].is_string());
    CHECK(j["level"].is_string());
    CHECK(j["proc"].is_string());
    CHECK(j["msg"].is_string());
    saw_system = saw_system || j["proc"] == "system:" + std::to_string(sys.port());
    if (j.contains("actor") && j["actor"] == morse && j["proc"].get<std::string>().rfind("w", 0) == 0) {
      saw_actor = true;
      if (j["level"] == "debug") CHECK(j["msg"] == "ignored tell's payload: \"in json\"");
    }
  }
  CHECK(saw_actor);
  CHECK(saw_system);
  // `troupe logs` reads JSON lines too.
  const auto r = sys.run({"logs", "--actor", "morse", "--level", "info"});
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("ignoring tell 'json' (9 bytes)"));
}
