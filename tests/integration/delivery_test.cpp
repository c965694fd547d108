// No-loss delivery with real workers: messages queued behind a handler whose
// worker is SIGKILLed reach the restarted actor, in order per sender; the one
// being handled goes back to its sender as poison; a handler past its
// max_handle_time gets its worker killed and its ask fails as poison at once;
// a tell to an unknown address comes back as a dead letter. Fixture:
// supervision (Watcher sends and keeps notices, Loner logs what it handled to
// a file that survives its restarts).
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

/// Polls an ask until pred holds on its answer (bounded); returns the last answer.
json poll_ask(const test_system& sys, const std::string& target, const json& payload,
              const std::function<bool(const json&)>& pred) {
  json got;
  troupe::testing::eventually([&] {
    got = sys.ask(target, payload);
    return pred(got);
  });
  return got;
}

/// The numbers of `seen` that fall in [first, first + count), in order.
std::vector<int> subsequence(const json& seen, int first, int count) {
  std::vector<int> out;
  for (const auto& n : seen)
    if (n.is_number_integer() && n.get<int>() >= first && n.get<int>() < first + count) out.push_back(n.get<int>());
  return out;
}

std::vector<int> range(int first, int count) {
  std::vector<int> out;
  for (int i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

}  // namespace

TEST_CASE(
    "messages queued for an actor whose worker is killed reach it after the restart, in order "
    "per sender; the one in hand comes back as poison",
    "[integration][delivery]") {
  test_system sys;
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string loner = sys.spawn({"Loner"});
  const std::string watcher = sys.spawn({"Watcher"});
  const int pid = sys.ask(loner, json{{"pid", true}}).get<int>();
  REQUIRE(pid > 0);

  // The watcher (another worker) blocks the loner, then queues numbers
  // behind it; so does a client through the system's gateway.
  const json block{{"block_ms", 20000}};
  REQUIRE(sys.ask(watcher, json{{"tell", loner}, {"payload", block}}) == "told");
  constexpr int per_sender = 40;
  for (int i = 0; i < per_sender; ++i)
    REQUIRE(sys.ask(watcher, json{{"tell", loner}, {"payload", {{"log", i}}}}) == "told");
  for (int i = 0; i < per_sender; ++i) REQUIRE(sys.run({"tell", loner, json{{"log", 1000 + i}}.dump()}).exit_code == 0);

  // Killed while it is in the blocking handler.
  const auto blocking = sys.home() / ("blocking-" + loner.substr(1));
  REQUIRE(troupe::testing::eventually([&] { return std::filesystem::exists(blocking); }));
  troupe::testing::kill_process(pid);

  // Same address, every queued number, each sender's in its order, none twice.
  const json seen =
      poll_ask(sys, loner, json{{"seen", true}}, [](const json& s) { return s.size() >= 2 * per_sender; });
  CHECK(subsequence(seen, 0, per_sender) == range(0, per_sender));
  CHECK(subsequence(seen, 1000, per_sender) == range(1000, per_sender));
  CHECK(seen.size() == 2 * per_sender);
  CHECK(sys.ask(loner, json{{"pid", true}}).get<int>() != pid);

  // The blocking tell was not delivered again: its sender got it back.
  const json notices = poll_ask(sys, watcher, json{{"notices", true}}, [](const json& n) { return !n.empty(); });
  REQUIRE(notices.size() == 1);
  CHECK(notices[0]["event"] == "poison");
  CHECK(notices[0]["from"] == loner);
  CHECK(notices[0]["payload"] == block);
  CHECK_THAT(notices[0].value("reason", std::string()), Catch::Contains("killed by SIGKILL"));
}

TEST_CASE(
    "a handler past its max_handle_time gets its worker killed; its ask fails as poison at "
    "once and the actor answers again",
    "[integration][delivery]") {
  test_system sys;
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string sluggish = sys.spawn({"Sluggish"});
  const int pid = sys.ask(sluggish, json{{"pid", true}}).get<int>();

  const auto started = std::chrono::steady_clock::now();
  auto r = sys.run({"ask", sluggish, R"({"hang":true})", "--timeout", "20000"});
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("poison") && Catch::Contains("max_handle_time (300 ms)"));
  CHECK(took < 15s);  // not the ask's timeout: the reason came back

  CHECK(sys.ask(sluggish, json{{"echo", 7}}) == 7);
  CHECK(sys.ask(sluggish, json{{"pid", true}}).get<int>() != pid);
  auto view = sys.actor(sluggish);
  REQUIRE(view);
  CHECK(view->restarts() == 1);
  CHECK_THAT(view->last_reason(), Catch::Contains("max_handle_time"));
}

TEST_CASE("a tell to an unknown address comes back to its sender as a dead letter with the reason",
          "[integration][delivery]") {
  test_system sys;
  sys.load(TROUPE_SUPERVISION_PKG);
  const std::string watcher = sys.spawn({"Watcher"});
  const std::string nobody = "@" + watcher.substr(1, 8) + ".999999";
  REQUIRE(sys.ask(watcher, json{{"tell", nobody}, {"payload", {{"log", 1}}}}) == "told");
  const json notices = poll_ask(sys, watcher, json{{"notices", true}}, [](const json& n) { return !n.empty(); });
  REQUIRE(notices.size() == 1);
  CHECK(notices[0]["event"] == "dead_letter");
  CHECK_THAT(notices[0].value("reason", std::string()), Catch::Contains("no actor at"));
}

TEST_CASE("best-effort delivery can be chosen at start; a wrong mode is a usage error", "[integration][delivery]") {
  {
    test_system sys({"--delivery", "best-effort"});
    sys.load(TROUPE_SUPERVISION_PKG);
    const std::string loner = sys.spawn({"Loner"});
    CHECK(sys.ask(loner, json{{"echo", "fast"}}) == "fast");
  }
  test_system sys;
  const auto r = sys.run({"start", "--port", "1", "--delivery", "sometimes"});
  CHECK(r.exit_code == 2);  // usage: the reason, then the command's synopsis
  CHECK_THAT(r.err, Catch::StartsWith("troupe start: --delivery takes no-loss or best-effort, not 'sometimes'"));
}
