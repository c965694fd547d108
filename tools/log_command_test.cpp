// Tests of `troupe logs`' pieces: parsing lines of every format, filtering,
// the order of rotated files, and following a file across rotation and
// truncation. Temp dirs; poll() is called by hand, nothing sleeps.
#include "tools/log_command.hpp"

#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace troupe::tools;
using troupe::testing::temp_dir;
namespace fs = std::filesystem;

namespace {
void append(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::app) << text; }
}  // namespace

TEST_CASE("log lines of every format parse", "[logs]") {
  const auto t = parse_log_entry("2026-11-23T09:14:02.123Z WARN  [w3 @3fa9c012.17] disk full");
  CHECK(t.ts == "2026-11-23T09:14:02.123Z");
  CHECK(t.level == TROUPE_LOG_WARN);
  CHECK(t.proc == "w3");
  CHECK(t.actor == "@3fa9c012.17");
  CHECK(t.msg == "disk full");

  const auto s = parse_log_entry("2026-11-23T09:14:02.123Z INFO  [system:1900] started worker w1 [x] (pid 3)");
  CHECK(s.level == TROUPE_LOG_INFO);
  CHECK(s.proc == "system:1900");
  CHECK(s.actor.empty());
  CHECK(s.msg == "started worker w1 [x] (pid 3)");

  const auto j = parse_log_entry(
      R"({"ts":"2026-11-23T09:14:02.123Z","level":"error","proc":"w1","actor":"@00000001.2","msg":"x"})");
  CHECK(j.level == TROUPE_LOG_ERROR);
  CHECK(j.actor == "@00000001.2");
  CHECK(j.msg == "x");

  const auto k = parse_log_entry("<7>[w2] fine detail");
  CHECK(k.level == TROUPE_LOG_DEBUG);
  CHECK(k.proc == "w2");

  CHECK(parse_log_entry("terminate called after throwing").ts.empty());
  CHECK(parse_log_entry("").ts.empty());
  CHECK(parse_log_entry("{not json").ts.empty());
}

TEST_CASE("filters by level, actor address and text", "[logs]") {
  const auto warn = parse_log_entry("2026-11-23T09:14:02.123Z WARN  [w3 @3fa9c012.17] disk full");
  const auto info = parse_log_entry("2026-11-23T09:14:02.123Z INFO  [w3] morse started");
  log_filter f;
  f.min_level = TROUPE_LOG_WARN;
  CHECK(f.keep(warn));
  CHECK(!f.keep(info));
  log_filter a;
  a.actor_address = "@3fa9c012.17";
  CHECK(a.keep(warn));
  CHECK(!a.keep(info));
  log_filter n;
  n.text = "morse";
  CHECK(n.keep(info));
  CHECK(!n.keep(warn));
}

TEST_CASE("rotated files come first, oldest first", "[logs]") {
  temp_dir dir("troupe-logs");
  const fs::path p = dir.path / "system.log";
  CHECK(log_files_in_order(p).empty());
  for (const char* f : {"system.log", "system.log.1", "system.log.2", "system.log.3"}) append(dir.path / f, "x\n");
  const auto files = log_files_in_order(p);
  REQUIRE(files.size() == 4);
  CHECK(files[0].filename() == "system.log.3");
  CHECK(files[2].filename() == "system.log.1");
  CHECK(files[3].filename() == "system.log");
}

TEST_CASE("printing and following a log across rotation", "[logs]") {
  temp_dir dir("troupe-logs");
  const fs::path p = dir.path / "system.log";
  append(fs::path(p.string() + ".1"), "2026-01-01T00:00:00.000Z INFO  [w1] one\n");
  append(p, "2026-01-01T00:00:01.000Z WARN  [w1 @00000001.2] two\nstack line of two\n");
  append(p, "2026-01-01T00:00:02.000Z INFO  [system:9] three\ncontinued three\n");
  std::ostringstream out;
  log_filter f;
  f.min_level = TROUPE_LOG_WARN;
  log_printer printer(p, f, false, out);
  printer.print_all();
  // A line that is no record goes with the record before it.
  CHECK(out.str() == "2026-01-01T00:00:01.000Z WARN  [w1 @00000001.2] two\nstack line of two\n");

  out.str("");
  append(p, "2026-01-01T00:00:03.000Z ERROR [w1] four\n");
  printer.poll();
  CHECK(out.str() == "2026-01-01T00:00:03.000Z ERROR [w1] four\n");

  // Rotation: the rest of the old file, then the new one from its start.
  out.str("");
  append(p, "2026-01-01T00:00:04.000Z ERROR [w1] five");  // its '\n' is not written yet
  fs::rename(p, p.string() + ".1");
  append(fs::path(p.string() + ".1"), "\n");
  append(p, "2026-01-01T00:00:05.000Z WARN  [w1] six\n");
  printer.poll();
  CHECK(out.str() == "2026-01-01T00:00:04.000Z ERROR [w1] five\n2026-01-01T00:00:05.000Z WARN  [w1] six\n");

  // Truncation (copytruncate): from the start again.
  out.str("");
  fs::resize_file(p, 0);
  append(p, "2026-01-01T00:00:06.000Z WARN  [w1] 7\n");  // shorter than what was read: seen as truncated
  printer.poll();
  CHECK(out.str() == "2026-01-01T00:00:06.000Z WARN  [w1] 7\n");
}

TEST_CASE("--json prints text lines as JSON objects", "[logs]") {
  temp_dir dir("troupe-logs");
  const fs::path p = dir.path / "system.log";
  append(p, "2026-01-01T00:00:01.000Z WARN  [w1 @00000001.2] two\n");
  std::ostringstream out;
  log_printer printer(p, log_filter{}, true, out);
  printer.print_all();
  const auto j = nlohmann::json::parse(out.str());
  CHECK(j == nlohmann::json{{"ts", "2026-01-01T00:00:01.000Z"},
                            {"level", "warn"},
                            {"proc", "w1"},
                            {"actor", "@00000001.2"},
                            {"msg", "two"}});
}

TEST_CASE("the log options of start", "[logs]") {
  troupe::supervisor::system_options o;
  CHECK(!set_log_option(o, "--log-level", "debug"));
  CHECK(o.log_level == TROUPE_LOG_DEBUG);
  CHECK(set_log_option(o, "--log-level", "loud"));
  CHECK(!set_log_option(o, "--log-format", "json"));
  CHECK(o.log_format == troupe::ipc::log_format::json_lines);
  CHECK(set_log_option(o, "--log-format", "xml"));
  CHECK(!set_log_option(o, "--log-max-size", "64K"));
  CHECK(o.log_max_size == 65536);
  CHECK(set_log_option(o, "--log-max-size", "10"));
  CHECK(!set_log_option(o, "--log-files", "3"));
  CHECK(o.log_files == 3);
  CHECK(set_log_option(o, "--log-files", "0"));
  CHECK(!set_log_option(o, "--log-target", "journal"));
  CHECK(o.log_target == troupe::ipc::log_target::journal);
  CHECK(!set_log_option(o, "--log-file", "/tmp/x.log"));
  CHECK(o.log_file == "/tmp/x.log");
}
