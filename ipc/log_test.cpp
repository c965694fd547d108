// Tests of the log: line formats, levels, the worker-to-daemon encoding, the
// rotating file and the splitter of a worker's output. Files in temp dirs;
// nothing sleeps.
#include "ipc/log.hpp"
#include "ipc/log_file.hpp"
#include "ipc/log_relay.hpp"

#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <vector>

using namespace troupe::ipc;
using troupe::testing::temp_dir;
namespace fs = std::filesystem;

namespace {

std::chrono::system_clock::time_point at_ms(long long ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

// The process's log into a file of dir at level, restored to stderr after.
struct log_into {
  fs::path file;
  log_into(const temp_dir& dir, int level, log_format format = log_format::text) : file(dir.path / "t.log") {
    log_config c;
    c.level = level;
    c.format = format;
    c.target = log_target::file;
    c.file = file;
    REQUIRE(configure_log(c));
  }
  ~log_into() { (void)configure_log(log_config{}); }
};

}  // namespace

TEST_CASE("records as text, JSON and journal lines", "[log]") {
  const log_record r{at_ms(1795425242123), TROUPE_LOG_WARN, "w3", "@3fa9c012.17", "disk full"};
  CHECK(format_log_record(r, log_format::text) == "2026-11-23T09:14:02.123Z WARN  [w3 @3fa9c012.17] disk full\n");
  CHECK(format_log_record(r, log_format::text, true) == "<4>[w3 @3fa9c012.17] disk full\n");
  const auto j = nlohmann::json::parse(format_log_record(r, log_format::json_lines));
  CHECK(j == nlohmann::json{{"ts", "2026-11-23T09:14:02.123Z"},
                            {"level", "warn"},
                            {"proc", "w3"},
                            {"actor", "@3fa9c012.17"},
                            {"msg", "disk full"}});

  const log_record sys{at_ms(0), TROUPE_LOG_DEBUG, "system:1900", {}, "a\nb"};
  CHECK(format_log_record(sys, log_format::text) == "1970-01-01T00:00:00.000Z DEBUG [system:1900] a\\x0ab\n");
  CHECK(format_log_record(sys, log_format::text, true) == "<7>[system:1900] a\\x0ab\n");
  const auto js = nlohmann::json::parse(format_log_record(sys, log_format::json_lines));
  CHECK(!js.contains("actor"));
  CHECK(js["msg"] == "a\nb");
  CHECK(js["level"] == "debug");
  // Bytes that are not UTF-8 (a package's raw output) still make a line.
  CHECK_NOTHROW(nlohmann::json::parse(
      format_log_record(log_record{at_ms(0), TROUPE_LOG_ERROR, "w1", {}, "\xff\xfe"}, log_format::json_lines)));
  CHECK(format_log_record(log_record{at_ms(0), TROUPE_LOG_ERROR, "w1", {}, "x"}, log_format::text, true)[1] == '3');
  CHECK(format_log_record(log_record{at_ms(0), TROUPE_LOG_INFO, "w1", {}, "x"}, log_format::text, true)[1] == '6');
}

TEST_CASE("level words", "[log]") {
  CHECK(parse_log_level("debug") == TROUPE_LOG_DEBUG);
  CHECK(parse_log_level("info") == TROUPE_LOG_INFO);
  CHECK(parse_log_level("warn") == TROUPE_LOG_WARN);
  CHECK(parse_log_level("warning") == TROUPE_LOG_WARN);
  CHECK(parse_log_level("error") == TROUPE_LOG_ERROR);
  CHECK(!parse_log_level("verbose"));
  CHECK(!parse_log_level(""));
  for (int l = TROUPE_LOG_DEBUG; l <= TROUPE_LOG_ERROR; ++l) CHECK(parse_log_level(log_level_word(l)) == l);
}

TEST_CASE("a worker's records survive the trip to the daemon", "[log]") {
  const log_record r{at_ms(1795425242123), TROUPE_LOG_ERROR, "w3", "@3fa9c012.17", "two\nlines \\n and \x1e"};
  const std::string line = encode_relay_line(r);
  REQUIRE(line.back() == '\n');
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  const auto back = decode_relay_line(std::string_view(line).substr(0, line.size() - 1));
  REQUIRE(back);
  CHECK(back->level == TROUPE_LOG_ERROR);
  CHECK(back->time == r.time);
  CHECK(back->actor == "@3fa9c012.17");
  CHECK(back->text == r.text);

  const auto none = encode_relay_line(log_record{at_ms(5), TROUPE_LOG_DEBUG, "w3", {}, ""});
  const auto b2 = decode_relay_line(std::string_view(none).substr(0, none.size() - 1));
  REQUIRE(b2);
  CHECK(b2->actor.empty());
  CHECK(b2->text.empty());

  // A package's own output is no record.
  CHECK(!decode_relay_line("hello from printf"));
  CHECK(
      !decode_relay_line("\x1e"
                         "9 1 - x"));
  CHECK(
      !decode_relay_line("\x1e"
                         "1 x - y"));
  CHECK(
      !decode_relay_line("\x1e"
                         "1 5 not-an-address y"));
}

TEST_CASE("lines below the level are dropped before they are formatted", "[log]") {
  temp_dir dir("troupe-log");
  {
    log_into log(dir, TROUPE_LOG_WARN);
    CHECK(!log_enabled(TROUPE_LOG_INFO));
    CHECK(log_enabled(TROUPE_LOG_WARN));
    set_log_tag("system:7");
    log_line(TROUPE_LOG_DEBUG, {}, "debug line");
    log_line(TROUPE_LOG_INFO, {}, "info line");
    log_line(TROUPE_LOG_WARN, troupe::address(0x3fa9c012u, 17u), "warn line");
    log_line(TROUPE_LOG_ERROR, {}, "error line");
  }
  const auto lines = lines_of(slurp(dir.path / "t.log"));
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[0], Catch::EndsWith(" WARN  [system:7 @3fa9c012.17] warn line"));
  CHECK_THAT(lines[1], Catch::EndsWith(" ERROR [system:7] error line"));
  CHECK(mode_of(dir.path / "t.log") == 0600);
}

TEST_CASE("JSON lines parse one by one", "[log]") {
  temp_dir dir("troupe-log");
  {
    log_into log(dir, TROUPE_LOG_DEBUG, log_format::json_lines);
    set_log_tag("w2");
    log_line(TROUPE_LOG_DEBUG, {}, "quoted \"text\"\nand a newline");
    log_line(TROUPE_LOG_INFO, troupe::address(1u, 2u), "second");
  }
  const auto lines = lines_of(slurp(dir.path / "t.log"));
  REQUIRE(lines.size() == 2);
  const auto a = nlohmann::json::parse(lines[0]);
  CHECK(a["msg"] == "quoted \"text\"\nand a newline");
  CHECK(a["proc"] == "w2");
  const auto b = nlohmann::json::parse(lines[1]);
  CHECK(b["actor"] == "@00000001.2");
  CHECK(b["level"] == "info");
}

TEST_CASE("the log file rotates by size and keeps N files", "[log]") {
  temp_dir dir("troupe-log");
  const fs::path p = dir.path / "system.log";
  log_file f;
  REQUIRE(f.open(p, 100, 2, false));
  const std::string line(40, 'a');
  for (char c : std::string("abcdefg")) REQUIRE(f.write(std::string(39, c) + "\n"));
  // 2 lines (80 bytes) a file: 7 lines -> g alone; e f in .1; c d in .2; a b dropped.
  CHECK(slurp(p) == std::string(39, 'g') + "\n");
  CHECK(slurp(log_file::rotated(p, 1)) == std::string(39, 'e') + "\n" + std::string(39, 'f') + "\n");
  CHECK(slurp(log_file::rotated(p, 2)) == std::string(39, 'c') + "\n" + std::string(39, 'd') + "\n");
  CHECK(!fs::exists(log_file::rotated(p, 3)));
  for (unsigned n : {1u, 2u}) CHECK(mode_of(log_file::rotated(p, n)) == 0600);
  CHECK(mode_of(p) == 0600);

  // A record larger than the limit still goes whole into a file of its own.
  REQUIRE(f.write(std::string(300, 'x')));
  CHECK(slurp(p).size() == 300);
}

TEST_CASE("reopen follows a rename (logrotate), and an old file's mode is closed", "[log]") {
  temp_dir dir("troupe-log");
  const fs::path p = dir.path / "system.log";
  { std::ofstream(p) << "old\n"; }
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  log_file f;
  REQUIRE(f.open(p, 0, 5, false));
  CHECK(mode_of(p) == 0600);
  REQUIRE(f.write("one\n"));
  fs::rename(p, dir.path / "system.log.0");
  REQUIRE(f.write("two\n"));  // still the renamed file
  REQUIRE(f.reopen());
  REQUIRE(f.write("three\n"));
  CHECK(slurp(dir.path / "system.log.0") == "old\none\ntwo\n");
  CHECK(slurp(p) == "three\n");
  CHECK(mode_of(p) == 0600);
}

TEST_CASE("a worker's output becomes records of its tag", "[log]") {
  temp_dir dir("troupe-log");
  {
    log_into log(dir, TROUPE_LOG_INFO);
    log_line_splitter s("w5", TROUPE_LOG_WARN);
    const auto rec = encode_relay_line(log_record{at_ms(1000), TROUPE_LOG_INFO, "ignored", "@00000001.2", "from sdk"});
    const auto dbg = encode_relay_line(log_record{at_ms(1000), TROUPE_LOG_DEBUG, "w5", {}, "too fine"});
    // Split anywhere: bytes arrive as the socket gives them.
    const std::string all = "printf " + std::string("line\n") + rec + dbg + "tail without end";
    for (std::size_t i = 0; i < all.size(); i += 7) s.feed(std::string_view(all).substr(i, 7));
    s.finish();
  }
  const auto lines = lines_of(slurp(dir.path / "t.log"));
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[0], Catch::EndsWith(" WARN  [w5] printf line"));
  // The record keeps its own time and actor; the tag is the daemon's for that socket.
  CHECK(lines[1] == "1970-01-01T00:00:01.000Z INFO  [w5 @00000001.2] from sdk");
  CHECK_THAT(lines[2], Catch::EndsWith(" WARN  [w5] tail without end"));
}

TEST_CASE("the relay reads sockets on its thread until their end", "[log]") {
  temp_dir dir("troupe-log");
  {
    log_into log(dir, TROUPE_LOG_INFO);
    log_relay relay;
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    relay.add(sv[0], "w9", TROUPE_LOG_INFO);
    const std::string text = "hello\n" + encode_relay_line(log_record{at_ms(0), TROUPE_LOG_ERROR, "w9", {}, "bad"});
    REQUIRE(::write(sv[1], text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(sv[1]);
    relay.stop();  // reads what is there, then ends
  }
  const std::string log = slurp(dir.path / "t.log");
  CHECK_THAT(log, Catch::Contains(" INFO  [w9] hello\n"));
  CHECK_THAT(log, Catch::Contains(" ERROR [w9] bad\n"));
}

TEST_CASE("a worker's logger waits at most 100 ms for a daemon that does not read, none for a dead one", "[log]") {
  // stderr becomes a socket whose reader never reads, as a SIGSTOPped daemon.
  const int saved = ::dup(STDERR_FILENO);
  REQUIRE(saved >= 0);
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  REQUIRE(::dup2(sv[1], STDERR_FILENO) == STDERR_FILENO);
  log_config c;
  c.target = log_target::relay;
  REQUIRE(configure_log(c));
  // Fill the socket to the brim.
  const std::string chunk(4096, 'x');
  for (int i = 0; i < 100000; ++i)
    if (::send(sv[1], chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL) <= 0) break;
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  log_line(TROUPE_LOG_INFO, {}, "cannot be written");
  const auto full = clock::now() - t0;
  // The daemon is gone: no SIGPIPE (it would end this test binary), no wait.
  ::close(sv[0]);
  t0 = clock::now();
  log_line(TROUPE_LOG_INFO, {}, "nobody reads this");
  const auto gone = clock::now() - t0;
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(sv[1]);
  (void)configure_log(log_config{});
  CHECK(full >= std::chrono::milliseconds(90));
  CHECK(full < std::chrono::seconds(2));
  CHECK(gone < std::chrono::milliseconds(50));
}
