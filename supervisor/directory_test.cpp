#include "supervisor/directory.hpp"

#include <catch2/catch.hpp>

using namespace troupe;
using namespace troupe::supervisor;

namespace {
actor_record rec(address a, std::string name = {}) {
  actor_record r;
  r.addr = a;
  r.type = "Echo";
  r.package_id = "p";
  r.name = std::move(name);
  return r;
}
}  // namespace

TEST_CASE("addresses allocated by a system are unique and carry its id", "[directory]") {
  directory d(0xabc);
  auto a = d.allocate();
  auto b = d.allocate();
  CHECK(a != b);
  CHECK(a.system() == 0xabc);
  CHECK(d.allocated(a));
  CHECK_FALSE(d.allocated(address(0xabd, a.serial())));
  auto block = d.allocate_block(10);
  CHECK(block.first > b.serial());
  CHECK(d.allocated(address(0xabc, block.first + 9)));
  CHECK_FALSE(d.allocated(address(0xabc, block.first + 10)));
}

TEST_CASE("a global name maps to one actor and is freed when it goes", "[directory]") {
  directory d(1);
  auto a = d.allocate();
  REQUIRE(d.add(rec(a, "morse")).ok());
  CHECK(d.find_name("morse")->addr == a);
  CHECK(d.find_target("morse")->addr == a);
  CHECK(d.find_target(a.to_string())->addr == a);

  auto b = d.allocate();
  auto dup = d.add(rec(b, "morse"));
  REQUIRE_FALSE(dup.ok());
  CHECK_THAT(dup.err().message, Catch::Contains("already taken"));

  d.remove(a);
  CHECK(d.find_name("morse") == nullptr);
  CHECK(d.add(rec(b, "morse")).ok());
}

TEST_CASE("names starting with @ or holding control characters are refused", "[directory]") {
  directory d(1);
  CHECK_FALSE(d.add(rec(d.allocate(), "@x")).ok());
  CHECK_FALSE(d.add(rec(d.allocate(), std::string("a\nb"))).ok());
  CHECK(d.add(rec(d.allocate(), "Caesar cipher")).ok());
}

TEST_CASE("unknown targets and malformed address text find nothing", "[directory]") {
  directory d(1);
  CHECK(d.find_target("@zz.1") == nullptr);
  CHECK(d.find_target("@00000001.99") == nullptr);
  CHECK(d.find_target("nobody") == nullptr);
  CHECK(d.find_target("") == nullptr);
}

TEST_CASE("actors are listed per worker and in address order", "[directory]") {
  directory d(1);
  auto a = d.allocate(), b = d.allocate(), c = d.allocate();
  auto ra = rec(c);
  ra.worker = 2;
  auto rb = rec(a);
  rb.worker = 2;
  auto rc = rec(b);
  rc.worker = 3;
  REQUIRE(d.add(ra).ok());
  REQUIRE(d.add(rb).ok());
  REQUIRE(d.add(rc).ok());
  auto on2 = d.on_worker(2);
  REQUIRE(on2.size() == 2);
  CHECK(on2[0]->addr == a);
  CHECK(on2[1]->addr == c);
  auto all = d.all();
  REQUIRE(all.size() == 3);
  CHECK(all[0]->addr == a);
  CHECK(all[2]->addr == c);
}

TEST_CASE("a global name moves from one actor to another") {
  directory d(7);
  const auto a = d.allocate();
  const auto b = d.allocate();
  REQUIRE(d.add(rec(a, "morse")));
  REQUIRE(d.add(rec(b)));
  CHECK_FALSE(d.bind_name(b, "morse"));  // still held by a
  d.unbind_name(a);
  CHECK(d.find_name("morse") == nullptr);
  REQUIRE(d.bind_name(b, "morse"));
  CHECK(d.find_name("morse")->addr == b);
  CHECK(d.find(a)->name.empty());
  REQUIRE(d.bind_name(b, "morse2"));  // renaming frees the old name
  CHECK(d.find_name("morse") == nullptr);
  CHECK_FALSE(d.bind_name(d.allocate(), "x"));  // no such actor
}

TEST_CASE("the counts by state follow adds, state changes and removals", "[directory]") {
  directory d(0xabc);
  auto counts = [&] { return d.count_by_state(); };
  const address a = d.allocate(), b = d.allocate();
  REQUIRE(d.add(rec(a)));
  auto r = rec(b);
  r.state = actor_state_field(actor_state::running);  // a record may be added in any state
  REQUIRE(d.add(std::move(r)));
  CHECK(counts() == std::array<std::size_t, 4>{1, 1, 0, 0});
  d.set_state(*d.find(a), actor_state::running);
  CHECK(counts() == std::array<std::size_t, 4>{0, 2, 0, 0});
  d.set_state(*d.find(b), actor_state::failed);
  CHECK(d.find(b)->state == actor_state::failed);
  CHECK(counts() == std::array<std::size_t, 4>{0, 1, 0, 1});
  d.remove(b);
  d.remove(b);  // unknown now: no change
  CHECK(counts() == std::array<std::size_t, 4>{0, 1, 0, 0});
  d.remove(a);
  CHECK(counts() == std::array<std::size_t, 4>{0, 0, 0, 0});
}
