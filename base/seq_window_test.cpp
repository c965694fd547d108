#include "base/seq_window.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;
using troupe::base::receive_sequence;
using troupe::base::send_window;
using clock_t_ = troupe::base::seq_clock;

TEST_CASE("a send window keeps what is not acknowledged and sends it again after a growing timeout", "[seq]") {
  const auto t0 = clock_t_::time_point{} + 1h;
  send_window<std::string> w(42, 100ms);
  CHECK(w.channel() == 42);
  CHECK(w.pending() == nullptr);
  CHECK(w.push("a", 1, t0) == 1);
  CHECK(w.push("bb", 2, t0) == 2);
  CHECK(w.push("ccc", 3, t0 + 10ms) == 3);
  CHECK(w.size() == 3);
  CHECK(w.bytes() == 6);
  // Handed to the link in order; it takes two, then is full.
  REQUIRE(w.pending());
  CHECK(w.pending()->seq == 1);
  w.handed(1);
  CHECK(w.pending()->item == "bb");
  w.handed(2);
  CHECK(w.pending()->seq == 3);  // waits: nothing after it goes first
  CHECK_FALSE(w.due(t0 + 99ms));
  CHECK(w.due(t0 + 100ms));

  w.go_back(t0 + 100ms);  // nothing acknowledged: from the oldest again
  CHECK(w.pending()->seq == 1);
  CHECK(w.timeout() == 200ms);
  CHECK_FALSE(w.due(t0 + 299ms));
  CHECK(w.due(t0 + 300ms));
  for (int i = 0; i < 10; ++i) w.go_back(t0);
  CHECK(w.timeout() == 800ms);  // at most 8 times the first

  w.handed(1);
  w.handed(2);
  w.handed(3);
  CHECK(w.pending() == nullptr);
  CHECK(w.ack(2, t0 + 1s) == 2);  // progress: back to the first timeout
  CHECK(w.timeout() == 100ms);
  CHECK(w.size() == 1);
  CHECK(w.bytes() == 3);
  CHECK(w.kept().front().seq == 3);
  CHECK(w.ack(2, t0 + 2s) == 0);  // an old ack again changes nothing
  CHECK(w.take_all() == std::vector<std::string>{"ccc"});
  CHECK(w.size() == 0);
  CHECK_FALSE(w.due(t0 + 10h));
  CHECK(w.push("d", 1, t0) == 4);  // numbers go on
  CHECK(w.pending()->seq == 4);
}

TEST_CASE("what was handed before an acknowledgement is not handed again unless the window goes back", "[seq]") {
  const auto t0 = clock_t_::time_point{} + 1h;
  send_window<int> w(1, 100ms);
  for (int i = 1; i <= 5; ++i) w.push(i, 1, t0);
  w.handed(1);
  w.handed(2);
  w.handed(3);
  w.ack(2, t0);
  CHECK(w.pending()->seq == 4);
  w.ack(5, t0);  // acknowledged past what was handed (a copy sent earlier arrived)
  CHECK(w.pending() == nullptr);
  w.push(6, 1, t0);
  CHECK(w.pending()->seq == 6);
}

TEST_CASE("a receive sequence takes each number once and in order, per sender and channel", "[seq]") {
  const auto t0 = clock_t_::time_point{} + 1h;
  receive_sequence<std::uint32_t> r;
  using v = receive_sequence<std::uint32_t>::verdict;
  CHECK(r.upto(1, 7) == 0);
  CHECK(r.accept(1, 7, 2, 1, t0) == v::gap);  // 1 was lost before the channel was known: 2 waits
  CHECK(r.accept(1, 7, 1, 1, t0) == v::take);
  CHECK(r.accept(1, 7, 2, 1, t0) == v::take);
  CHECK(r.accept(1, 7, 2, 1, t0) == v::duplicate);  // resent: its ack was lost
  CHECK(r.accept(1, 7, 4, 1, t0) == v::gap);        // 3 was lost: 4 comes again after it
  CHECK(r.upto(1, 7) == 2);
  CHECK(r.accept(1, 7, 3, 1, t0) == v::take);
  CHECK(r.accept(1, 7, 4, 1, t0) == v::take);
  // Another channel, another sender: numbered on their own.
  CHECK(r.accept(1, 8, 1, 1, t0) == v::take);
  CHECK(r.accept(2, 7, 1, 1, t0) == v::take);
  // A channel first seen in the middle (this side forgot it) starts at the
  // oldest its sender keeps.
  CHECK(r.accept(3, 9, 58, 57, t0) == v::gap);
  CHECK(r.accept(3, 9, 57, 57, t0) == v::take);
  CHECK(r.accept(3, 9, 57, 57, t0) == v::duplicate);
  CHECK(r.upto(3, 9) == 57);
  CHECK(r.channels() == 4);
  r.prune(t0 + 10min, 5min);
  CHECK(r.channels() == 0);
}

TEST_CASE("a send window tells where it starts", "[seq]") {
  const auto t0 = clock_t_::time_point{} + 1h;
  send_window<int> w(1, 100ms);
  CHECK(w.first() == 1);
  w.push(10, 1, t0);
  w.push(11, 1, t0);
  CHECK(w.first() == 1);
  w.ack(1, t0);
  CHECK(w.first() == 2);
  w.ack(2, t0);
  CHECK(w.first() == 3);
}
