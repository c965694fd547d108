// Tests of `troupe top`'s pieces: rates from successive answers at invented
// times (no clock read, nothing sleeps), the formats, the screen's text and
// fitting it to a terminal.
#include "tools/top_command.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace troupe::tools;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

json worker(std::uint32_t id, json pid, double cpu, std::uint64_t handled, std::uint64_t sent) {
  return json{{"worker", id},          {"pid", pid},
              {"state", "ready"},      {"package", "relay"},
              {"version", "1.0.0"},    {"package_id", "ab12"},
              {"actors", 2},           {"cpu_seconds", cpu},
              {"rss_bytes", 5u << 20}, {"handled", handled},
              {"sent", sent},          {"unacked", 3},
              {"queued_batches", 0},   {"oldest_unacked_ms", 12},
              {"answered", true},      {"queued", 4},
              {"window_ms", 1000}};
}

json answer(std::vector<json> workers, double daemon_cpu, std::uint64_t gw_in, std::uint64_t gw_out) {
  return json{{"system", "3fa9c012"},
              {"port", 1900},
              {"time_ms", 1764921600000},
              {"uptime_ms", 3723000},
              {"daemon", {{"pid", 100}, {"cpu_seconds", daemon_cpu}, {"rss_bytes", 12u << 20}, {"open_fds", 40}}},
              {"workers", workers},
              {"busiest", json::array()},
              {"restarts_last_minute", 0},
              {"worker_crashes_last_minute", 0},
              {"recent_restarts", json::array()},
              {"gateway", {{"in", gw_in}, {"out", gw_out}}},
              {"actors_total", 2}};
}

bool has_line_with(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "") {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("rates are the differences of two answers over the time between them") {
  top_rates r;
  const top_rates::clock::time_point t0{};
  r.update(answer({worker(1, 4242, 1.0, 1000, 500)}, 2.0, 10, 20), t0);
  CHECK_FALSE(r.worker(1));  // one answer: nothing to compare with
  CHECK_FALSE(r.daemon_cpu_percent());
  CHECK_FALSE(r.gateway());
  r.update(answer({worker(1, 4242, 1.5, 3000, 1500)}, 2.1, 30, 60), t0 + 2s);
  REQUIRE(r.worker(1));
  CHECK(r.elapsed() == Approx(2.0));
  CHECK(r.worker(1)->cpu_percent == Approx(25.0));
  CHECK(r.worker(1)->in_per_s == Approx(1000.0));
  CHECK(r.worker(1)->out_per_s == Approx(500.0));
  REQUIRE(r.daemon_cpu_percent());
  CHECK(*r.daemon_cpu_percent() == Approx(5.0));
  REQUIRE(r.gateway());
  CHECK(r.gateway()->first == Approx(10.0));
  CHECK(r.gateway()->second == Approx(20.0));
}

TEST_CASE("a worker whose process changed, or whose counts went down, has no rate that time") {
  top_rates r;
  const top_rates::clock::time_point t0{};
  r.update(answer({worker(1, 4242, 3.0, 5000, 10), worker(2, 4243, 1.0, 10, 10)}, 1, 0, 0), t0);
  // w1 was restarted (a new pid, counts from 0); w2 is new since.
  r.update(answer({worker(1, 5000, 0.1, 20, 0), worker(2, 4243, 1.0, 10, 10), worker(3, 4300, 0, 0, 0)}, 1, 0, 0),
           t0 + 1s);
  CHECK_FALSE(r.worker(1));
  REQUIRE(r.worker(2));
  CHECK(r.worker(2)->in_per_s == 0);
  CHECK_FALSE(r.worker(3));
  // The next time w1 has a rate from its new process's counts.
  r.update(answer({worker(1, 5000, 0.2, 520, 0)}, 1, 0, 0), t0 + 1500ms);
  REQUIRE(r.worker(1));
  CHECK(r.worker(1)->in_per_s == Approx(1000.0));
  CHECK(r.worker(1)->cpu_percent == Approx(20.0));
  // A standby has no pid of its own to compare: none.
  r.update(answer({worker(1, nullptr, 0, 0, 0)}, 1, 0, 0), t0 + 2s);
  CHECK_FALSE(r.worker(1));
}

TEST_CASE("numbers are formatted for a narrow column") {
  CHECK(format_bytes(512) == "512B");
  CHECK(format_bytes(4096) == "4.0K");
  CHECK(format_bytes(5.5 * 1024 * 1024) == "5.5M");
  CHECK(format_bytes(3.0 * 1024 * 1024 * 1024) == "3.0G");
  CHECK(format_rate(0) == "0");
  CHECK(format_rate(-1) == "0");
  CHECK(format_rate(7.46) == "7.5");
  CHECK(format_rate(950.2) == "950");
  CHECK(format_rate(12345) == "12.3k");
  CHECK(format_rate(4.5678e6) == "4.57M");
  CHECK(format_age_ms(json(nullptr)) == "-");
  CHECK(format_age_ms(json(850)) == "850 ms");
  CHECK(format_age_ms(json(2300)) == "2.3 s");
  CHECK(format_age_ms(json(245000)) == "4m05s");
  CHECK(format_uptime(12000) == "12s");
  CHECK(format_uptime(3723000) == "1h02m");
  CHECK(format_uptime(2 * 86400000 + 3 * 3600000) == "2d03h");
  CHECK(format_caps(json{{"gpu", true}, {"zone", "eu"}, {"mem", 16}}) == "gpu,mem=16,zone=eu");
  CHECK(format_caps(json::object()) == "-");
}

TEST_CASE("the screen shows systems, workers, busiest actors and restarts") {
  top_rates r;
  const top_rates::clock::time_point t0{};
  json standby = worker(2, 4300, 0, 0, 0);
  standby["package"] = nullptr;
  standby["version"] = nullptr;
  standby["package_id"] = nullptr;
  standby["answered"] = false;
  r.update(answer({worker(1, 4242, 1.0, 1000, 500), standby}, 2.0, 10, 20), t0);
  json a = answer({worker(1, 4242, 1.25, 2000, 900), standby}, 2.0, 10, 20);
  a["busiest"] = json::array({json{{"address", "@3fa9c012.17"},
                                   {"name", "relay"},
                                   {"type", "Relay"},
                                   {"package", "relay"},
                                   {"version", "1.0.0"},
                                   {"worker", 1},
                                   {"state", "running"},
                                   {"handled", 2000},
                                   {"recent", 1500},
                                   {"window_ms", 500},
                                   {"restarts", 1}}});
  a["restarts_last_minute"] = 1;
  a["recent_restarts"] = json::array({json{{"seq", 9},
                                           {"time_ms", 1764921600000 - 12000},
                                           {"kind", "actor_restarted"},
                                           {"address", "@3fa9c012.17"},
                                           {"type", "Relay"},
                                           {"reason", "worker killed by SIGKILL"}}});
  r.update(a, t0 + 1s);
  const json systems{{"mode", "leader"},
                     {"systems", json::array({json{{"system", "3fa9c012"},
                                                   {"host", "127.0.0.1"},
                                                   {"port", 1900},
                                                   {"leader", true},
                                                   {"state", "up"},
                                                   {"actors", 2},
                                                   {"last_heard_ms", 0},
                                                   {"capabilities", {{"gpu", true}}}}})}};
  const auto lines = top_lines(a, systems, r, 1000ms);
  CHECK(has_line_with(lines, "system 3fa9c012", "up 1h02m"));
  CHECK(has_line_with(lines, "127.0.0.1:1900", "leader"));
  CHECK(has_line_with(lines, "127.0.0.1:1900", "gpu"));
  // w1: 25% CPU, 1.0k in/s, 400 out/s, 5.0M, queue 4; the standby has no rates.
  CHECK(has_line_with(lines, "w1  ", "25.0"));
  CHECK(has_line_with(lines, "w1  ", "1.0k"));
  CHECK(has_line_with(lines, "w1  ", "400"));
  CHECK(has_line_with(lines, "w1  ", "5.0M"));
  CHECK(has_line_with(lines, "w2  ", "(standby)"));
  // 1500 messages in a 500 ms window: 3000 a second.
  CHECK(has_line_with(lines, "@3fa9c012.17", "3.0k"));
  CHECK(has_line_with(lines, "RESTARTS IN THE LAST MINUTE: 1"));
  CHECK(has_line_with(lines, "12s ago", "worker killed by SIGKILL"));
}

TEST_CASE("the text is fitted to the terminal") {
  std::vector<std::string> lines{"0123456789", "ab", "c", "d", "e"};
  auto f = fit(lines, 4, 3);
  REQUIRE(f.size() == 3);
  CHECK(f[0] == "0123");
  CHECK(f[1] == "ab");
  CHECK(f[2] == "... ");  // "... 3 more lines", cut to 4 columns
  CHECK(fit(lines, 0, 0) == lines);
  CHECK(fit(lines, 80, 5) == lines);
}
