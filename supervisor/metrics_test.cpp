#include "supervisor/metrics.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <csignal>

using namespace troupe;
using namespace troupe::supervisor;

namespace {

struct fixture {
  boost::asio::io_context io;
  zmq::context_t zmq{1};
  system_context ctx{system_options{}, io, zmq, "/nonexistent", "/nonexistent/run", 1};
  event_ring ring{64, [] { return std::int64_t{0}; }};
  metrics m{ctx};
  fixture() { m.observe(ring); }
};

event restarted(const std::string& reason) {
  auto e = actor_event(event_kind::actor_restarted, address(1, 16), reason);
  e.package = "demo";
  e.version = "1.0.0";
  return e;
}

}  // namespace

TEST_CASE("events are counted by kind and by their own labels") {
  fixture f;
  f.ring.record(restarted("worker killed by SIGKILL"));
  f.ring.record(restarted("worker killed by SIGKILL"));
  f.ring.record(restarted("exception in handler: boom"));
  event exit = package_event(event_kind::worker_exited, "demo", "1.0.0", "abc");
  exit.signal = SIGSEGV;
  f.ring.record(exit);
  exit.signal = 0;
  exit.exit_code = 3;
  exit.expected = true;
  f.ring.record(exit);
  f.ring.record(package_event(event_kind::package_refused, "", "", "", "x.tpkg: signed by an unknown key 00ff"));
  f.ring.record(package_event(event_kind::package_loaded, "demo", "1.0.0", "abc"));
  f.ring.record(actor_event(event_kind::actor_moved, address(1, 17), "chgcap"));
  const std::string text = f.m.scrape();
  INFO(text);
  CHECK_THAT(text, Catch::Contains("# TYPE troupe_actor_restarts_total counter"));
  CHECK_THAT(text, Catch::Contains(
                       "troupe_actor_restarts_total{cause=\"worker_signal\",package=\"demo\",version=\"1.0.0\"} 2"));
  CHECK_THAT(
      text,
      Catch::Contains("troupe_actor_restarts_total{cause=\"handler_exception\",package=\"demo\",version=\"1.0.0\"} 1"));
  CHECK_THAT(text, Catch::Contains("troupe_worker_exits_total{code=\"\",expected=\"false\",package=\"demo\",signal="
                                   "\"SIGSEGV\",version=\"1.0.0\"} 1"));
  CHECK_THAT(text, Catch::Contains("troupe_worker_exits_total{code=\"3\",expected=\"true\",package=\"demo\",signal="
                                   "\"\",version=\"1.0.0\"} 1"));
  CHECK_THAT(text, Catch::Contains("troupe_package_refusals_total{reason=\"signature\"} 1"));
  CHECK_THAT(text, Catch::Contains("troupe_package_loads_total{package=\"demo\"} 1"));
  CHECK_THAT(text, Catch::Contains("troupe_actor_moves_total 1"));
  CHECK_THAT(text, Catch::Contains("troupe_events_total{kind=\"actor_restarted\"} 3"));
  CHECK_THAT(text, Catch::Contains("troupe_events_total{kind=\"leader_changed\"} 0"));
  CHECK_THAT(text, Catch::Contains("# TYPE troupe_gateway_ask_seconds histogram"));
}

TEST_CASE("the ask latency histogram counts into its buckets") {
  fixture f;
  f.m.ask_latency()->Observe(0.0003);
  f.m.ask_latency()->Observe(2);
  const std::string text = f.m.scrape();
  CHECK_THAT(text, Catch::Contains("troupe_gateway_ask_seconds_count 2"));
  CHECK_THAT(text, Catch::Contains("troupe_gateway_ask_seconds_bucket{le=\"0.0005\"} 1"));
  CHECK_THAT(text, Catch::Contains("troupe_gateway_ask_seconds_bucket{le=\"+Inf\"} 2"));
}

TEST_CASE("families read at scrape time are added after the registry's, labels sorted") {
  fixture f;
  f.m.on_scrape([](std::vector<prometheus::MetricFamily>& out) {
    family_builder b("troupe_test_things", "Things.", prometheus::MetricType::Gauge);
    b.add({{"version", "1"}, {"package", "p"}}, 2);
    b.add({{"package", "p"}, {"version", "1"}}, 3);
    b.max({{"package", "q"}, {"version", "1"}}, 4);
    b.max({{"package", "q"}, {"version", "1"}}, 1);
    b.set({{"package", "r"}, {"version", "1"}}, 0);
    out.push_back(b.take());
  });
  const std::string text = f.m.scrape();
  CHECK_THAT(text, Catch::Contains("troupe_test_things{package=\"p\",version=\"1\"} 5"));
  CHECK_THAT(text, Catch::Contains("troupe_test_things{package=\"q\",version=\"1\"} 4"));
  CHECK_THAT(text, Catch::Contains("troupe_test_things{package=\"r\",version=\"1\"} 0"));
}

TEST_CASE("workers that ended keep their counts for their version") {
  fixture f;
  f.m.retire_worker("demo", "1.0.0", 10, 4);
  f.m.retire_worker("demo", "1.0.0", 5, 1);
  CHECK(f.m.retired("demo", "1.0.0") == std::pair<std::uint64_t, std::uint64_t>{15, 5});
  CHECK(f.m.retired("demo", "2.0.0") == std::pair<std::uint64_t, std::uint64_t>{0, 0});
}

TEST_CASE("labels of reasons are a few words, never the text") {
  CHECK(restart_cause("worker killed by SIGKILL") == "worker_signal");
  CHECK(restart_cause("worker exit code 3") == "worker_exit");
  CHECK(restart_cause("worker killed by its watchdog: a handler of @1.16 ran past") == "watchdog");
  CHECK(restart_cause("exception in handler: x") == "handler_exception");
  CHECK(restart_cause("anything else") == "other");
  CHECK(refusal_class("a.tpkg: modified after signing") == "signature");
  CHECK(refusal_class("a.tpkg: is 300 bytes, over the limit of 200") == "too_large");
  CHECK(refusal_class("cannot load g 1 (s): its worker did not register within 10 s") == "worker_timeout");
  CHECK(refusal_class("cannot load g 1 (s): LIB does not register actor type T declared") == "missing_type");
  CHECK(refusal_class("???") == "other");
  CHECK(signal_name(SIGKILL) == "SIGKILL");
  CHECK(signal_name(SIGSEGV) == "SIGSEGV");
}

TEST_CASE("a process's CPU, memory and descriptors are read from /proc") {
  const auto u = read_process_usage(static_cast<int>(::getpid()));
  CHECK(u.rss_bytes > 0);
  CHECK(u.open_fds >= 3);
  CHECK(u.cpu_seconds >= 0);
  const auto none = read_process_usage(0);
  CHECK(none.rss_bytes == 0);
}
