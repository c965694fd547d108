#include "sink_ledger.hpp"

#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <string>

using pipeline::sink_ledger;
using troupe::testing::slurp;
using troupe::testing::temp_dir;
using troupe::testing::write;

TEST_CASE("a ledger counts distinct numbers, duplicates and gaps below the highest", "[pipeline]") {
  temp_dir dir("pipeline-ledger");
  sink_ledger ledger((dir.path / "sink.log").string());
  CHECK(ledger.stats().max == -1);
  CHECK(ledger.stats().missing_below == 0);
  for (std::uint64_t n : {0, 1, 1, 3, 0}) ledger.record(n);
  const auto s = ledger.stats();
  CHECK(s.distinct == 3);
  CHECK(s.duplicates == 2);
  CHECK(s.missing_below == 1);  // 2
  CHECK(s.max == 3);
  CHECK(slurp(dir.path / "sink.log") == "0\n1\n1\n3\n0\n");
}

TEST_CASE("a ledger reopened on its file has the same counts (the Sink after a restart)", "[pipeline]") {
  temp_dir dir("pipeline-ledger");
  const auto file = (dir.path / "deep" / "sink.log").string();  // directory made on open
  {
    sink_ledger first(file);
    for (std::uint64_t n : {5, 4, 5}) first.record(n);
  }
  sink_ledger again(file);
  CHECK(again.stats().distinct == 2);
  CHECK(again.stats().duplicates == 1);
  CHECK(again.stats().missing_below == 4);
  again.record(6);
  CHECK(again.stats().max == 6);
}

TEST_CASE("a line cut by a crash is dropped and the next number starts a line of its own", "[pipeline]") {
  temp_dir dir("pipeline-ledger");
  const auto file = dir.path / "sink.log";
  write(file, "0\n1\n2");
  sink_ledger ledger(file.string());
  CHECK(ledger.stats().distinct == 2);
  ledger.record(2);
  CHECK(slurp(file) == "0\n1\n2\n");
  CHECK(ledger.stats().duplicates == 0);
}

TEST_CASE("a number beyond the limit is refused and leaves the file alone", "[pipeline]") {
  temp_dir dir("pipeline-ledger");
  sink_ledger ledger((dir.path / "sink.log").string());
  CHECK_THROWS_AS(ledger.record(sink_ledger::limit), std::invalid_argument);
  CHECK(slurp(dir.path / "sink.log").empty());
}

TEST_CASE("a ledger that cannot be opened says which file", "[pipeline]") {
  CHECK_THROWS_WITH(sink_ledger("/proc/no/such/dir/sink.log"), Catch::Contains("/proc/no/such/dir/sink.log"));
}
