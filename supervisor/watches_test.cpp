#include "supervisor/watches.hpp"

#include <catch2/catch.hpp>

using namespace troupe;
using namespace troupe::supervisor;

namespace {
const address a(1, 16), b(1, 17), c(1, 18);
}  // namespace

TEST_CASE("watching twice is one watch and unwatch ends it", "[watches]") {
  watch_table t;
  CHECK(t.add(a, c));
  CHECK_FALSE(t.add(a, c));
  CHECK(t.add(b, c));
  CHECK(t.watchers_of(c) == std::vector<address>{a, b});
  CHECK(t.remove(a, c));
  CHECK_FALSE(t.remove(a, c));
  CHECK(t.watchers_of(c) == std::vector<address>{b});
  CHECK(t.remove(b, c));
  CHECK(t.empty());
}

TEST_CASE("a target that is gone ends its watches and returns its watchers once", "[watches]") {
  watch_table t;
  t.add(a, c);
  t.add(b, c);
  t.add(a, b);
  CHECK(t.end_watches_of(c) == std::vector<address>{a, b});
  CHECK(t.end_watches_of(c).empty());
  CHECK(t.watchers_of(b) == std::vector<address>{a});  // other watches stay
  CHECK_FALSE(t.remove(a, c));                         // the reverse index forgot it too
}

TEST_CASE("a watcher that is gone ends the watches it held, not those on it", "[watches]") {
  watch_table t;
  t.add(a, b);
  t.add(a, c);
  t.add(b, c);
  t.add(c, a);
  t.end_watches_by(a);
  CHECK(t.watchers_of(b).empty());
  CHECK(t.watchers_of(c) == std::vector<address>{b});
  CHECK(t.watchers_of(a) == std::vector<address>{c});
  t.end_watches_by(a);  // nothing left: no-op
  t.end_watches_by(b);
  t.end_watches_by(c);
  CHECK(t.empty());
}

TEST_CASE("an actor may watch itself; its stop ends both sides", "[watches]") {
  watch_table t;
  t.add(a, a);
  CHECK(t.watchers_of(a) == std::vector<address>{a});
  CHECK(t.end_watches_of(a) == std::vector<address>{a});
  t.end_watches_by(a);
  CHECK(t.empty());
}

TEST_CASE("exit events are named as the notices' types", "[watches]") {
  CHECK(std::string(to_string(exit_event::stopped)) == "stopped");
  CHECK(std::string(to_string(exit_event::restarted)) == "restarted");
  CHECK(std::string(to_string(exit_event::failed)) == "failed");
}
