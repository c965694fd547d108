#include "base/held_queue.hpp"

#include <catch2/catch.hpp>

#include <string>

using troupe::base::held_queue;

TEST_CASE("a held queue keeps items per key in order, up to its bound", "[held]") {
  held_queue<int, std::string> q(2);
  CHECK(q.hold(1, "a"));
  CHECK(q.hold(1, "b"));
  CHECK_FALSE(q.hold(1, "c"));  // full: nothing held
  CHECK(q.hold(2, "x"));
  CHECK(q.total() == 3);
  CHECK(q.size(1) == 2);
  CHECK(q.take(1) == std::vector<std::string>{"a", "b"});
  CHECK(q.size(1) == 0);
  CHECK(q.take(1).empty());
  CHECK(q.total() == 1);
  CHECK(q.keys() == std::vector<int>{2});
}

TEST_CASE("take_first removes one item and forgets an emptied key", "[held]") {
  held_queue<int, int> q;
  q.hold(7, 1);
  q.hold(7, 2);
  q.hold(7, 3);
  CHECK(q.take_first(7, [](int v) { return v % 2 == 0; }) == 2);
  CHECK_FALSE(q.take_first(7, [](int v) { return v > 10; }));
  CHECK(q.take_first(8, [](int) { return true; }) == std::nullopt);
  CHECK(q.take(7) == std::vector<int>{1, 3});
  CHECK(q.total() == 0);
}
