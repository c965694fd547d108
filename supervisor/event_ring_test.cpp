#include "supervisor/event_ring.hpp"

#include <catch2/catch.hpp>

using namespace troupe;
using namespace troupe::supervisor;
using json = nlohmann::json;

namespace {

event actor(event_kind k, std::uint32_t serial, std::string reason = {}) {
  event e;
  e.kind = k;
  e.addr = address(0x3fa9c012u, serial);
  e.reason = std::move(reason);
  return e;
}

}  // namespace

TEST_CASE("the ring numbers events in order and stamps them with its clock") {
  std::int64_t now = 1000;
  event_ring ring(4, [&] { return now; });
  CHECK(ring.last_seq() == 0);
  CHECK(ring.first_seq() == 1);
  ring.record(actor(event_kind::actor_started, 16));
  now = 1500;
  const auto& e = ring.record(actor(event_kind::actor_restarted, 16, "worker killed by SIGKILL"));
  CHECK(e.seq == 2);
  CHECK(e.time_ms == 1500);
  auto s = ring.since(0, 100);
  REQUIRE(s.events.size() == 2);
  CHECK(s.missed == 0);
  CHECK(s.events[0].seq == 1);
  CHECK(s.events[0].time_ms == 1000);
  CHECK(s.events[1].kind == event_kind::actor_restarted);
  CHECK(ring.since(1, 100).events.size() == 1);
  CHECK(ring.since(2, 100).events.empty());
  CHECK(ring.since(99, 100).events.empty());  // a number of another run
}

TEST_CASE("a full ring drops the oldest and says how many a late reader missed") {
  event_ring ring(3, [] { return std::int64_t{0}; });
  for (std::uint32_t i = 0; i < 10; ++i) ring.record(actor(event_kind::actor_started, 16 + i));
  CHECK(ring.size() == 3);
  CHECK(ring.capacity() == 3);
  CHECK(ring.first_seq() == 8);
  CHECK(ring.last_seq() == 10);
  auto s = ring.since(0, 100);
  CHECK(s.missed == 7);
  REQUIRE(s.events.size() == 3);
  CHECK(s.events[0].seq == 8);
  CHECK(s.events[2].seq == 10);
  CHECK(s.events[2].addr == address(0x3fa9c012u, 25));
  s = ring.since(6, 100);
  CHECK(s.missed == 1);  // 7 is gone
  CHECK(s.events.front().seq == 8);
  s = ring.since(7, 100);
  CHECK(s.missed == 0);
}

TEST_CASE("since gives at most max events, the oldest first") {
  event_ring ring(100, [] { return std::int64_t{0}; });
  for (std::uint32_t i = 0; i < 50; ++i) ring.record(actor(event_kind::actor_started, 16 + i));
  auto s = ring.since(10, 5);
  REQUIRE(s.events.size() == 5);
  CHECK(s.events.front().seq == 11);
  CHECK(s.events.back().seq == 15);
}

TEST_CASE("observers hear each event once it is kept, in the order they subscribed") {
  event_ring ring(2, [] { return std::int64_t{7}; });
  std::vector<std::string> heard;
  ring.on_record([&](const event& e) { heard.push_back("a" + std::to_string(e.seq)); });
  ring.on_record([&](const event& e) {
    CHECK(ring.last_seq() == e.seq);
    heard.push_back("b" + std::to_string(e.seq));
  });
  ring.record(actor(event_kind::actor_failed, 16));
  ring.record(actor(event_kind::actor_stopped, 16));
  CHECK(heard == std::vector<std::string>{"a1", "b1", "a2", "b2"});
}

TEST_CASE("an event's JSON form has the fields of its kind and reads back") {
  event e;
  e.kind = event_kind::worker_exited;
  e.worker = 3;
  e.pid = 4242;
  e.signal = 9;
  e.package = "demo";
  e.version = "1.2.0";
  e.reason = "killed by SIGKILL";
  event_ring ring(8, [] { return std::int64_t{1700000000000}; });
  const auto& kept = ring.record(e);
  const auto j = to_json(kept);
  CHECK(j.at("kind") == "worker_exited");
  CHECK(j.at("seq") == 1);
  CHECK(j.at("time_ms") == 1700000000000);
  CHECK(j.at("pid") == 4242);
  CHECK(j.at("signal") == 9);
  CHECK_FALSE(j.contains("exit_code"));
  CHECK_FALSE(j.contains("address"));
  CHECK(j.at("expected") == false);
  auto back = event_from_json(j);
  REQUIRE(back);
  CHECK(back->kind == event_kind::worker_exited);
  CHECK(back->pid == 4242);
  CHECK(back->exit_code == -1);
  CHECK(describe(*back) == "worker_exited w3 pid 4242 (demo 1.2.0): killed by SIGKILL");

  const auto a = to_json(actor(event_kind::actor_moved, 17, "chgcap"));
  CHECK(a.at("address") == "@3fa9c012.17");
  CHECK_FALSE(a.contains("pid"));
  CHECK_FALSE(event_from_json(json{{"seq", 1}, {"kind", "no_such_kind"}}));
  CHECK_FALSE(event_from_json(json::array()));
  CHECK_FALSE(event_from_json(json{{"seq", "x"}, {"kind", "actor_started"}}));
}

TEST_CASE("every kind has a wire name that reads back") {
  for (auto k : all_event_kinds()) {
    CHECK(to_string(k) != "unknown");
    CHECK(event_kind_from_string(to_string(k)) == k);
  }
  CHECK(all_event_kinds().size() == 14);
}
