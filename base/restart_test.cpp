// The restart table on its own: a fake clock (time points the test makes),
// no processes, no sleeps.
#include "base/restart.hpp"

#include <catch2/catch.hpp>

using namespace troupe::base;
using namespace std::chrono_literals;
using action = restart_decision::action;

namespace {
const restart_clock::time_point t0{};  // the test's own epoch

restart_spec spec_of(restart_policy p, std::uint32_t max = 3, std::chrono::milliseconds within = 5000ms,
                     std::chrono::milliseconds lo = 10ms, std::chrono::milliseconds hi = 1000ms) {
  return restart_spec{p, max, within, lo, hi};
}
}  // namespace

TEST_CASE("a crash restarts a permanent or transient child and never a temporary one", "[restart]") {
  for (auto p : {restart_policy::permanent, restart_policy::transient}) {
    restart_history h;
    auto d = h.on_exit(spec_of(p), exit_kind::crash, "worker killed by SIGKILL", t0);
    CHECK(d.act == action::restart);
    CHECK(d.delay == 0ms);
    CHECK(d.streak == 1);
    CHECK(h.size() == 1);
  }
  restart_history h;
  auto d = h.on_exit(spec_of(restart_policy::temporary), exit_kind::crash, "worker killed by SIGKILL", t0);
  CHECK(d.act == action::fail);
  CHECK(d.reason == "worker killed by SIGKILL (temporary: not restarted)");
  CHECK(h.size() == 0);
}

TEST_CASE("a normal exit restarts only a permanent child; the others are gone, not failed", "[restart]") {
  restart_history h;
  CHECK(h.on_exit(spec_of(restart_policy::permanent), exit_kind::normal, "stopped", t0).act == action::restart);
  for (auto p : {restart_policy::transient, restart_policy::temporary}) {
    restart_history g;
    auto d = g.on_exit(spec_of(p), exit_kind::normal, "stopped", t0);
    CHECK(d.act == action::gone);
    CHECK(d.reason.empty());
    CHECK(g.size() == 0);
  }
}

TEST_CASE("past max_restarts within the window the child fails, naming the count, window and last cause", "[restart]") {
  const auto s = spec_of(restart_policy::permanent, 3, 5000ms);
  restart_history h;
  for (int i = 0; i < 3; ++i) REQUIRE(h.on_exit(s, exit_kind::crash, "x", t0 + i * 100ms).act == action::restart);
  auto d = h.on_exit(s, exit_kind::crash, "worker exit code 3", t0 + 300ms);
  CHECK(d.act == action::fail);
  CHECK(d.reason == "restarted 3 times within 5000 ms (max_restarts), last: worker exit code 3");
  CHECK(h.size() == 3);  // a failure is not counted as a restart
}

TEST_CASE("restarts older than the window are forgotten; one exactly `within` old still counts", "[restart]") {
  const auto s = spec_of(restart_policy::permanent, 2, 1000ms);
  restart_history h;
  REQUIRE(h.on_exit(s, exit_kind::crash, "x", t0).act == action::restart);
  REQUIRE(h.on_exit(s, exit_kind::crash, "x", t0 + 500ms).act == action::restart);
  // At t0 + 1000 ms the first restart is exactly `within` old: still in the window.
  CHECK(h.on_exit(s, exit_kind::crash, "x", t0 + 1000ms).act == action::fail);
  // One millisecond later it is out; the one at 500 ms is still in.
  auto d = h.on_exit(s, exit_kind::crash, "x", t0 + 1001ms);
  CHECK(d.act == action::restart);
  CHECK(d.streak == 2);
  // Long after, the window is empty again: a fresh streak, immediate.
  auto later = h.on_exit(s, exit_kind::crash, "x", t0 + 10s);
  CHECK(later.streak == 1);
  CHECK(later.delay == 0ms);
}

TEST_CASE("max_restarts 0 fails at the first crash", "[restart]") {
  restart_history h;
  auto d = h.on_exit(spec_of(restart_policy::permanent, 0), exit_kind::crash, "x", t0);
  CHECK(d.act == action::fail);
  CHECK(d.reason == "restarted 0 times within 5000 ms (max_restarts), last: x");
}

TEST_CASE("the backoff is 0 for the first restart, then backoff_min doubling up to backoff_max", "[restart]") {
  const auto s = spec_of(restart_policy::permanent, 100, 60s, 10ms, 100ms);
  CHECK(backoff_delay(s, 0) == 0ms);
  CHECK(backoff_delay(s, 1) == 0ms);
  CHECK(backoff_delay(s, 2) == 10ms);
  CHECK(backoff_delay(s, 3) == 20ms);
  CHECK(backoff_delay(s, 4) == 40ms);
  CHECK(backoff_delay(s, 5) == 80ms);
  CHECK(backoff_delay(s, 6) == 100ms);   // capped
  CHECK(backoff_delay(s, 60) == 100ms);  // and stays there (no overflow)
  restart_history h;
  std::vector<std::chrono::milliseconds> seen;
  for (int i = 0; i < 4; ++i) seen.push_back(h.on_exit(s, exit_kind::crash, "x", t0 + i * 1ms).delay);
  CHECK(seen == std::vector<std::chrono::milliseconds>{0ms, 10ms, 20ms, 40ms});
}

TEST_CASE("a backoff_min above backoff_max waits backoff_max", "[restart]") {
  CHECK(backoff_delay(spec_of(restart_policy::permanent, 5, 5s, 500ms, 100ms), 2) == 100ms);
}

TEST_CASE("a history travels as ages and counts restarts decided elsewhere", "[restart]") {
  const auto s = spec_of(restart_policy::permanent, 3, 5000ms);
  restart_history h;
  h.count(t0);
  h.count(t0 + 1s);
  const auto now = t0 + 2s;
  CHECK(h.ages(now) == std::vector<std::chrono::milliseconds>{2000ms, 1000ms});
  restart_history copy(h.ages(now), now + 0ms);
  REQUIRE(copy.size() == 2);
  CHECK(copy.on_exit(s, exit_kind::crash, "x", now).streak == 3);
  CHECK(copy.on_exit(s, exit_kind::crash, "x", now).act == action::fail);
  // Ages given out of order are ordered.
  restart_history unordered({100ms, 3000ms}, now);
  CHECK(unordered.ages(now) == std::vector<std::chrono::milliseconds>{3000ms, 100ms});
}
