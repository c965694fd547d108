#include "supervisor/membership.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <limits>

using namespace troupe;
using namespace troupe::supervisor;
using namespace std::chrono_literals;
using troupe::manifests::capability_value;
using troupe::manifests::requirement;
using json = nlohmann::json;

namespace {

const std::string key40(40, 'k');

member_info member(std::uint32_t id, std::uint16_t port, std::uint32_t actors = 0, manifests::capabilities caps = {}) {
  member_info m;
  m.system_id = id;
  m.host = "10.0.0.1";
  m.port = port;
  m.peer_endpoint = "tcp://10.0.0.1:" + std::to_string(port + 1);
  m.public_key = key40;
  m.caps = std::move(caps);
  m.actors = actors;
  return m;
}

json wire() {
  return json{{"system", "3fa9c012"}, {"host", "10.0.0.1"},
              {"port", 10000},        {"peer", "tcp://10.0.0.1:10001"},
              {"key", key40},         {"capabilities", json::object()},
              {"actors", 3},          {"leader", false},
              {"state", "up"}};
}

requirement req(std::string cap, enum requirement::op op, capability_value v = true) {
  return requirement{std::move(cap), op, std::move(v)};
}

const auto t0 = convention_clock::time_point{} + 1h;

}  // namespace

TEST_CASE("a member survives the wire form unchanged", "[convention]") {
  auto m = member(0x3fa9c012, 10000, 7,
                  {{"morse", true},
                   {"Caesar cipher", true},
                   {"gpu_mem", std::int64_t{16}},
                   {"ratio", 0.5},
                   {"region", std::string("eu")},
                   {"label", std::string("16")}});
  m.leader = true;
  m.state = member_state::down;
  const json j = to_json(m);
  CHECK(j["system"] == "3fa9c012");
  CHECK(j["state"] == "down");
  CHECK(j["capabilities"]["gpu_mem"] == 16);
  CHECK(j["capabilities"]["label"] == "16");  // a string stays a string

  auto back = member_from_json(json::parse(j.dump()));
  REQUIRE(back.ok());
  CHECK(back->system_id == m.system_id);
  CHECK(back->host == m.host);
  CHECK(back->port == m.port);
  CHECK(back->peer_endpoint == m.peer_endpoint);
  CHECK(back->public_key == m.public_key);
  CHECK(back->caps == m.caps);
  CHECK(back->actors == 7);
  CHECK(back->leader);
  CHECK(back->state == member_state::down);

  CHECK(to_json(member(1, 80))["system"] == "00000001");
}

TEST_CASE("a member's state is optional and the id may be short or upper case", "[convention]") {
  auto j = wire();
  j.erase("state");
  j["system"] = "AB";
  auto m = member_from_json(j);
  REQUIRE(m.ok());
  CHECK(m->state == member_state::up);
  CHECK(m->system_id == 0xab);
  CHECK(m->last_heard == convention_clock::time_point{});
}

TEST_CASE("every malformed member field gives a one-line error naming it", "[convention]") {
  struct bad_case {
    const char* field;
    json value;  // null with erase = true removes the field
    bool erase;
    const char* message;
  };
  const json huge = json::parse("123456789012345678901234567890");
  const std::vector<bad_case> cases = {
      {"system", {}, true, "member: \"system\" is missing"},
      {"system", "00000000", false, "member: \"system\" must be 1 to 8 hex digits, not all zero"},
      {"system", "123456789", false, "member: \"system\" must be 1 to 8 hex digits, not all zero"},
      {"system", "3fa9c01g", false, "member: \"system\" must be 1 to 8 hex digits, not all zero"},
      {"system", "", false, "member: \"system\" must be 1 to 8 hex digits, not all zero"},
      {"system", 0x3fa9c012, false, "member: \"system\" must be 1 to 8 hex digits, not all zero"},
      {"host", {}, true, "member: \"host\" is missing"},
      {"host", nullptr, false, "member: \"host\" must be a non-empty string"},
      {"host", "", false, "member: \"host\" must be a non-empty string"},
      {"port", {}, true, "member: \"port\" is missing"},
      {"port", 0, false, "member: \"port\" must be an integer from 1 to 65535"},
      {"port", 65536, false, "member: \"port\" must be an integer from 1 to 65535"},
      {"port", -1, false, "member: \"port\" must be an integer from 1 to 65535"},
      {"port", 80.0, false, "member: \"port\" must be an integer from 1 to 65535"},
      {"port", "80", false, "member: \"port\" must be an integer from 1 to 65535"},
      {"port", huge, false, "member: \"port\" must be an integer from 1 to 65535"},
      {"port", std::numeric_limits<std::uint64_t>::max(), false, "member: \"port\" must be an integer from 1 to 65535"},
      {"port", std::numeric_limits<std::int64_t>::min(), false, "member: \"port\" must be an integer from 1 to 65535"},
      {"peer", {}, true, "member: \"peer\" is missing"},
      {"peer", "10.0.0.1:10001", false, "member: \"peer\" must be a string starting with tcp://"},
      {"peer", json::array({"tcp://x:1"}), false, "member: \"peer\" must be a string starting with tcp://"},
      {"key", {}, true, "member: \"key\" is missing"},
      {"key", std::string(39, 'k'), false, "member: \"key\" must be a Z85 string of 40 characters"},
      {"key", 40, false, "member: \"key\" must be a Z85 string of 40 characters"},
      {"capabilities", {}, true, "member: \"capabilities\" is missing"},
      {"capabilities", json::array(), false, "member: \"capabilities\" must be an object"},
      {"capabilities", nullptr, false, "member: \"capabilities\" must be an object"},
      {"capabilities",
       {{"gpu mem", nullptr}},
       false,
       "member: capability \"gpu mem\" must be a bool, a finite number or a string"},
      {"capabilities",
       {{"a\nb", json::array()}},
       false,
       "member: capability \"a\\nb\" must be a bool, a finite number or a string"},
      {"capabilities",
       {{"x", json::object()}},
       false,
       "member: capability \"x\" must be a bool, a finite number or a string"},
      {"capabilities",
       {{"x", std::numeric_limits<double>::infinity()}},
       false,
       "member: capability \"x\" must be a bool, a finite number or a string"},
      {"capabilities", {{"", true}}, false, "member: \"capabilities\" has an empty name"},
      {"actors", {}, true, "member: \"actors\" is missing"},
      {"actors", -1, false, "member: \"actors\" must be an integer from 0 to 4294967295"},
      {"actors", 4294967296, false, "member: \"actors\" must be an integer from 0 to 4294967295"},
      {"actors", 1.5, false, "member: \"actors\" must be an integer from 0 to 4294967295"},
      {"leader", {}, true, "member: \"leader\" is missing"},
      {"leader", 1, false, "member: \"leader\" must be true or false"},
      {"leader", "true", false, "member: \"leader\" must be true or false"},
      {"state", "Up", false, "member: \"state\" must be \"up\" or \"down\""},
      {"state", nullptr, false, "member: \"state\" must be \"up\" or \"down\""},
  };
  for (const auto& c : cases) {
    auto j = wire();
    if (c.erase)
      j.erase(c.field);
    else
      j[c.field] = c.value;
    INFO(j.dump());
    result<member_info> m = make_error(errc::internal, "");
    REQUIRE_NOTHROW(m = member_from_json(j));
    REQUIRE_FALSE(m.ok());
    CHECK(m.err().code == errc::invalid_argument);
    CHECK(m.err().message == c.message);
    CHECK(m.err().message.find('\n') == std::string::npos);
  }
  // Null, array, object and a number too big for any integer in every field
  // (but an object, which "capabilities" should be).
  const json good = wire();  // items() would dangle on a temporary
  for (const auto& [name, _] : good.items()) {
    for (const json& v : {json(), json::array(), json::object({{"a", 1}}), huge}) {
      if (name == "capabilities" && v.is_object()) continue;
      auto j = wire();
      j[name] = v;
      INFO(j.dump());
      result<member_info> m = make_error(errc::internal, "");
      REQUIRE_NOTHROW(m = member_from_json(j));
      REQUIRE_FALSE(m.ok());
      CHECK_THAT(m.err().message, Catch::StartsWith("member: \"" + name + "\" "));
    }
  }
  for (const json& j : {json(), json::array({wire()}), json("member"), json(42), huge, json::object()}) {
    result<member_info> m = make_error(errc::internal, "");
    REQUIRE_NOTHROW(m = member_from_json(j));
    CHECK_FALSE(m.ok());
  }
  CHECK(member_from_json(json()).err().message == "member: must be a JSON object");
}

TEST_CASE("capability values from JSON keep their types; huge integers become doubles", "[convention]") {
  auto j = wire();
  j["capabilities"] = {
      {"b", false}, {"i", -3}, {"d", 2.5}, {"s", "eu"}, {"u", std::numeric_limits<std::uint64_t>::max()}};
  auto m = member_from_json(j);
  REQUIRE(m.ok());
  CHECK(m->caps.at("b") == capability_value(false));
  CHECK(m->caps.at("i") == capability_value(std::int64_t{-3}));
  CHECK(m->caps.at("d") == capability_value(2.5));
  CHECK(m->caps.at("s") == capability_value(std::string("eu")));
  CHECK(std::holds_alternative<double>(m->caps.at("u")));
}

TEST_CASE("upsert reports news but not heartbeats", "[convention]") {
  membership ms;
  auto m = member(1, 10000, 2);
  CHECK(ms.upsert(m, t0));
  CHECK(ms.find(1)->last_heard == t0);
  CHECK_FALSE(ms.upsert(m, t0 + 1s));  // only last_heard moved
  CHECK(ms.find(1)->last_heard == t0 + 1s);
  m.actors = 9;
  CHECK_FALSE(ms.upsert(m, t0 + 2s));  // only the load moved
  CHECK(ms.find(1)->actors == 9);

  auto changed = [&](auto edit) {
    auto copy = *ms.find(1);
    edit(copy);
    return ms.upsert(copy, t0 + 3s);
  };
  CHECK(changed([](member_info& x) { x.host = "10.0.0.2"; }));
  CHECK(changed([](member_info& x) { x.port = 10100; }));
  CHECK(changed([](member_info& x) { x.peer_endpoint = "tcp://10.0.0.2:1"; }));
  CHECK(changed([](member_info& x) { x.public_key = std::string(40, 'z'); }));
  CHECK(changed([](member_info& x) { x.caps["morse"] = true; }));
  CHECK(changed([](member_info& x) { x.caps["morse"] = false; }));
  CHECK(changed([](member_info& x) { x.leader = true; }));

  // A rejoin brings a down member back up, which is news.
  REQUIRE(ms.mark_down(1));
  CHECK(changed([](member_info&) {}));
  CHECK(ms.find(1)->state == member_state::up);
  CHECK(ms.size() == 1);
}

TEST_CASE("heartbeats, expiry and stops move members between up and down", "[convention]") {
  membership ms;
  ms.upsert(member(3, 3000), t0);
  ms.upsert(member(1, 1000), t0);
  ms.upsert(member(2, 2000), t0);
  ms.upsert(member(9, 1900), t0);  // the local system: never expires itself

  CHECK(ms.heard(2, t0 + 4s, 5));
  CHECK(ms.find(2)->actors == 5);
  CHECK_FALSE(ms.heard(42, t0, 1));

  CHECK(ms.expire(t0 + 3s, 3s, 9).empty());                              // heard exactly timeout ago: still within it
  CHECK(ms.expire(t0 + 5s, 3s, 9) == std::vector<std::uint32_t>{1, 3});  // port order
  CHECK(ms.find(1)->state == member_state::down);
  CHECK(ms.find(2)->state == member_state::up);
  CHECK(ms.find(9)->state == member_state::up);
  CHECK(ms.expire(t0 + 6s, 3s, 9).empty());  // already down: not reported again

  CHECK(ms.heard(1, t0 + 7s, 0));  // a heartbeat brings it back
  CHECK(ms.find(1)->state == member_state::up);

  CHECK(ms.mark_down(2));
  CHECK(ms.find(2)->state == member_state::down);
  CHECK_FALSE(ms.mark_down(42));

  ms.remove(3);
  CHECK(ms.find(3) == nullptr);
  ms.remove(3);  // forgetting twice is harmless
  CHECK(ms.size() == 3);
}

TEST_CASE("load never goes below zero and capabilities can be replaced", "[convention]") {
  membership ms;
  ms.upsert(member(1, 1000, 2), t0);
  CHECK(ms.add_load(1, 3));
  CHECK(ms.find(1)->actors == 5);
  CHECK(ms.add_load(1, -7));
  CHECK(ms.find(1)->actors == 0);
  CHECK(ms.add_load(1, -1));
  CHECK(ms.find(1)->actors == 0);
  CHECK_FALSE(ms.add_load(42, 1));

  CHECK(ms.set_caps(1, {{"morse", true}}));
  CHECK(ms.find(1)->caps.at("morse") == capability_value(true));
  CHECK_FALSE(ms.set_caps(42, {}));
}

TEST_CASE("members are listed by port then id and found by port", "[convention]") {
  membership ms;
  ms.upsert(member(5, 2000), t0);
  ms.upsert(member(4, 2000), t0);  // another host with the same port
  ms.upsert(member(7, 1000), t0);
  auto all = ms.all();
  REQUIRE(all.size() == 3);
  CHECK(all[0]->system_id == 7);
  CHECK(all[1]->system_id == 4);
  CHECK(all[2]->system_id == 5);
  CHECK(ms.find_port(2000)->system_id == 4);
  CHECK(ms.find_port(1000)->system_id == 7);
  CHECK(ms.find_port(3000) == nullptr);
  CHECK(ms.find(6) == nullptr);
}

TEST_CASE("placement prefers the local system, then the least loaded", "[convention]") {
  membership ms;
  ms.upsert(member(1, 1900, 50), t0);  // local, busy
  ms.upsert(member(2, 10000, 4), t0);
  ms.upsert(member(3, 10100, 2), t0);
  const std::vector<requirement> none;

  CHECK(*choose_system(ms, 1, none, {}, "Echo") == 1);   // local wins whatever its load
  CHECK(*choose_system(ms, 1, none, {1}, "Echo") == 3);  // local refused it: least loaded
  ms.mark_down(1);
  CHECK(*choose_system(ms, 1, none, {}, "Echo") == 3);   // local down
  CHECK(*choose_system(ms, 99, none, {}, "Echo") == 3);  // local not a member
  ms.mark_down(3);
  CHECK(*choose_system(ms, 1, none, {}, "Echo") == 2);  // down members are skipped
}

TEST_CASE("placement breaks ties by the lowest port, then the lowest id", "[convention]") {
  membership ms;
  ms.upsert(member(8, 10100, 1), t0);
  ms.upsert(member(9, 10000, 1), t0);
  ms.upsert(member(7, 10000, 1), t0);
  ms.upsert(member(1, 900, 2), t0);
  CHECK(*choose_system(ms, 0, {}, {}, "Echo") == 7);
  CHECK(*choose_system(ms, 0, {}, {7}, "Echo") == 9);
  CHECK(*choose_system(ms, 0, {}, {7, 9}, "Echo") == 8);
  CHECK(*choose_system(ms, 0, {}, {7, 8, 9}, "Echo") == 1);
}

TEST_CASE("placement honours every kind of requirement", "[convention]") {
  membership ms;
  ms.upsert(member(1, 1000, 0, {{"gpu_mem", std::int64_t{8}}, {"region", std::string("us")}}), t0);
  ms.upsert(member(2, 2000, 0, {{"gpu_mem", 16.0}, {"region", std::string("eu")}, {"legacy", true}}), t0);
  ms.upsert(member(3, 3000, 0, {{"Caesar cipher", true}, {"gpu_mem", std::int64_t{32}}}), t0);
  using op = enum requirement::op;
  auto pick = [&](std::vector<requirement> reqs) {
    auto r = choose_system(ms, 0, reqs, {}, "T");
    return r.ok() ? *r : 0u;
  };
  CHECK(pick({req("gpu_mem", op::at_least, std::int64_t{16})}) == 2);  // 16.0 >= 16
  CHECK(pick({req("gpu_mem", op::at_least, 20.5)}) == 3);
  CHECK(pick({req("gpu_mem", op::at_most, std::int64_t{8})}) == 1);
  CHECK(pick({req("gpu_mem", op::at_most, std::int64_t{7})}) == 0);
  CHECK(pick({req("region", op::equals, std::string("eu"))}) == 2);
  CHECK(pick({req("legacy", op::exists)}) == 2);
  CHECK(pick({req("region", op::absent)}) == 3);
  CHECK(pick({req("Caesar cipher", op::equals, true)}) == 3);
  CHECK(pick({req("gpu_mem", op::at_least, std::int64_t{8}), req("legacy", op::absent), req("region", op::absent)}) ==
        3);
  CHECK(pick({req("gpu_mem", op::at_least, std::int64_t{8}), req("region", op::equals, std::string("us"))}) == 1);
}

TEST_CASE("with no system fitting, one line names each up member's first unmet need", "[convention]") {
  membership ms;
  ms.upsert(member(2, 10101, 0, {{"morse", false}}), t0);
  ms.upsert(member(1, 1900), t0);
  ms.upsert(member(3, 10000, 0, {{"morse", true}}), t0);
  ms.upsert(member(4, 2000), t0);
  ms.mark_down(4);  // down members are not named
  const std::vector<requirement> reqs{req("morse", requirement::op::equals, true)};

  CHECK(*choose_system(ms, 1, reqs, {}, "Morse") == 3);
  auto r = choose_system(ms, 1, reqs, {3}, "Morse");
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code == errc::unavailable);
  CHECK(r.err().message ==
        "no system can host Morse: 1900: morse: requires true, system has none; "
        "10000: refused it; 10101: morse: requires true, system has false");

  ms.mark_down(3);
  CHECK(choose_system(ms, 1, reqs, {}, "Morse").err().message ==
        "no system can host Morse: 1900: morse: requires true, system has none; "
        "10101: morse: requires true, system has false");
}

TEST_CASE("with no system up, placement says so", "[convention]") {
  membership ms;
  auto r = choose_system(ms, 1, {}, {}, "Morse");
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().code == errc::unavailable);
  CHECK(r.err().message == "no system can host Morse: no system is up");
  ms.upsert(member(1, 1900), t0);
  ms.mark_down(1);
  CHECK(choose_system(ms, 1, {}, {}, "Morse").err().message == "no system can host Morse: no system is up");
}

TEST_CASE("the placement error stays on one line whatever members report", "[convention]") {
  membership ms;
  ms.upsert(member(1, 1900, 0, {{"region", std::string("eu\nwest")}}), t0);
  auto r = choose_system(ms, 1, {req("region", requirement::op::equals, std::string("us"))}, {}, "T");
  REQUIRE_FALSE(r.ok());
  CHECK(r.err().message == "no system can host T: 1900: region: requires \"us\", system has \"eu west\"");
}
