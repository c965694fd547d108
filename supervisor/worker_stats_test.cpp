#include "supervisor/worker_stats.hpp"

#include <catch2/catch.hpp>

using namespace troupe;
using namespace troupe::supervisor;

TEST_CASE("--metrics-actors globs match global names") {
  const std::vector<std::string> globs{"counter", "job-*"};
  CHECK(matches_any(globs, "counter"));
  CHECK(matches_any(globs, "job-17"));
  CHECK_FALSE(matches_any(globs, "counters"));
  CHECK_FALSE(matches_any(globs, "my-job-1"));
  CHECK_FALSE(matches_any({}, "counter"));
}

TEST_CASE("a named actor's counter never goes down") {
  named_counter c;
  const address a(1, 16), b(1, 17);
  c.update(a, 10);
  c.update(a, 25);
  CHECK(c.value() == 25);
  // Its worker restarted: the count starts again at 0 there.
  c.update(a, 3);
  CHECK(c.value() == 28);
  // The name moved to another actor, which had counted 100 already.
  c.update(b, 100);
  CHECK(c.value() == 128);
  c.update(b, 101);
  CHECK(c.value() == 129);
}
