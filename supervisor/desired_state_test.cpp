#include "supervisor/desired_state.hpp"

#include "supervisor/directory.hpp"
#include "tests/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace troupe;
using namespace troupe::supervisor;

namespace {

const std::string pkg_id(64, 'a');

saved_state sample() {
  saved_state s;
  s.system_id = 0x3fa9c012;
  s.serials_below = 70000;
  s.actors.push_back({address(0x3fa9c012, 16), "Morse", pkg_id, "encoders", "1.0.0", "morse", "permanent", 0, false});
  s.actors.push_back({address(0x3fa9c012, 17), "Caesar", pkg_id, "encoders", "1.0.0", "", "transient", 3, false});
  s.actors.push_back({address(0x3fa9c012, 1040), "Gpu", pkg_id, "encoders", "1.0.0", "gpu", "temporary", 0, true});
  return s;
}

std::string with(const std::string& key, const std::string& value) {
  auto j = nlohmann::json::parse(encode_state(sample()));
  j["actors"][0][key] = nlohmann::json::parse(value);
  return j.dump();
}

}  // namespace

TEST_CASE("the desired state round-trips through its encoding", "[desired_state]") {
  const auto s = sample();
  auto back = decode_state(encode_state(s));
  REQUIRE(back);
  CHECK(*back == s);
  saved_state empty;
  empty.system_id = 1;
  empty.serials_below = 16;
  auto e = decode_state(encode_state(empty));
  REQUIRE(e);
  CHECK(e->actors.empty());
}

TEST_CASE("the snapshot line, made one actor at a time, is the dump of the whole object", "[desired_state]") {
  const auto s = sample();
  const std::string line = encode_state(s);
  REQUIRE(line.back() == '\n');
  const auto j = nlohmann::json::parse(line);
  CHECK(j.dump() + "\n" == line);  // byte for byte what dumping the object gives
  CHECK(j["format"] == 1);
  CHECK(j["system"] == "3fa9c012");
  CHECK(j["serials_below"] == 70000);
  REQUIRE(j["actors"].size() == 3);
  CHECK(j["actors"][2] == nlohmann::json{{"address", "@3fa9c012.1040"},
                                         {"type", "Gpu"},
                                         {"package_id", pkg_id},
                                         {"group", "encoders"},
                                         {"version", "1.0.0"},
                                         {"restart", "temporary"},
                                         {"restarts", 0},
                                         {"name", "gpu"},
                                         {"pending", true}});
  // In any order: a reader sorts them.
  auto shuffled = s;
  std::swap(shuffled.actors[0], shuffled.actors[2]);
  auto back = decode_state(encode_state(shuffled));
  REQUIRE(back);
  CHECK(*back == s);
}

TEST_CASE("a bad desired state is refused with a reason, never a crash", "[desired_state]") {
  auto refused = [](const std::string& line, const std::string& why) {
    const std::string bytes = line + "\n";
    auto r = decode_state(bytes);
    INFO(bytes.substr(0, 200));
    REQUIRE_FALSE(r);
    CHECK_THAT(r.err().message, Catch::Contains(why));
  };
  const std::string good = encode_state(sample());
  refused("", "");
  refused(good.substr(0, good.size() / 2), "");                // truncated
  CHECK_FALSE(decode_state(good.substr(0, good.size() - 1)));  // no newline: no whole snapshot
  refused("[1,2]", "not a JSON object");
  refused(std::string(100000, '['), "nested deeper");
  refused(R"({"format":2,"system":"3fa9c012","serials_below":16,"actors":[]})", "format");
  refused(R"({"format":1,"system":"3FA9C012","serials_below":16,"actors":[]})", "system");
  refused(R"({"format":1,"system":"00000000","serials_below":16,"actors":[]})", "system");
  refused(R"({"format":1,"system":"3fa9c012","serials_below":-1,"actors":[]})", "serials_below");
  refused(R"({"format":1,"system":"3fa9c012","serials_below":16,"actors":{}})", "actors");
  refused(with("address", R"("@3fa9c012")"), "not an address");
  refused(with("address", R"("@11111111.16")"), "not an address this system handed out");
  refused(with("address", R"("@3fa9c012.80000")"), "not an address this system handed out");
  refused(with("address", R"("@3fa9c012.17")"), "listed twice");
  refused(with("type", "7"), "type");
  refused(with("package_id", R"("abc")"), "package_id");
  refused(with("name", R"("gpu")"), "held twice");
  refused(with("name", R"("@x")"), "not a global name");
  refused(with("restart", R"("sometimes")"), "not a policy");
  refused(with("restarts", "-3"), "restarts");
  refused(with("pending", R"("yes")"), "pending");
}

TEST_CASE("an unreadable state file is a problem, an absent one is none", "[desired_state]") {
  testing::temp_dir dir;
  const auto file = dir.path / "state.json";
  auto none = read_state_file(file);
  CHECK_FALSE(none.state);
  CHECK(none.problem.empty());
  std::ofstream(file) << "{not json";
  auto bad = read_state_file(file);
  CHECK_FALSE(bad.state);
  CHECK_THAT(bad.problem, Catch::Contains(file.string()));
  std::filesystem::remove(file);
  std::filesystem::create_directory(file);  // not a regular file
  auto dir_problem = read_state_file(file);
  CHECK_FALSE(dir_problem.state);
  CHECK_FALSE(dir_problem.problem.empty());
}

TEST_CASE("the journal replays changes after the snapshot; a torn last line never happened", "[desired_state]") {
  auto s = sample();
  std::string file = encode_state(s);
  auto moved = s.actors[1];
  moved.restarts = 4;
  saved_actor added{address(0x3fa9c012, 69999), "Morse", pkg_id, "encoders", "1.0.0", "late", "permanent", 0, false};
  file += encode_put(moved) + encode_erase(s.actors[0].addr) + encode_serials(140000);
  added.addr = address(0x3fa9c012, 139999);  // allowed once serials_below grew
  file += encode_put(added);
  auto back = decode_state(file + encode_put(s.actors[0]).substr(0, 30));  // cut short by a crash
  REQUIRE(back);
  CHECK(back->serials_below == 140000);
  REQUIRE(back->actors.size() == 3);
  CHECK(back->actors[0] == moved);
  CHECK(back->actors[1] == s.actors[2]);
  CHECK(back->actors[2] == added);

  auto refused = [&](const std::string& tail, const std::string& why) {
    auto r = decode_state(encode_state(s) + tail);
    INFO(tail);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.err().message, Catch::Contains(why));
  };
  refused("{\"put\":{}}\n", "line 2: put: address missing");
  refused("not json\n", "line 2");
  refused("{\"erase\":7}\n", "erase: not an address");
  refused("{\"serials_below\":20}\n", "serials_below");  // never shrinks
  refused("{\"what\":1}\n", "not a change");
  refused("{\"put\":{},\"erase\":\"@3fa9c012.16\"}\n", "not a change");
  auto clash = s.actors[1];
  clash.name = "morse";  // held by actors[0]
  refused(encode_put(clash), "global name 'morse' is held twice");
  auto far = s.actors[1];
  far.addr = address(0x3fa9c012, 80000);
  refused(encode_put(far), "not an address this system handed out");
  CHECK_FALSE(decode_state(encode_state(s).substr(0, 40)));  // no whole snapshot line
}

TEST_CASE("changes are appended once per loop turn, synced later, compacted; mode 0600", "[desired_state]") {
  testing::temp_dir dir;
  boost::asio::io_context io;
  desired_state st(io, dir.path / "state.json");
  // The truth a snapshot reads (the leader's table in the daemon).
  std::map<address, saved_actor> truth{{sample().actors[0].addr, sample().actors[0]}};
  st.source = [&](const desired_state::actor_visitor& visit) {
    for (const auto& [_, x] : truth) visit(x);
  };
  auto set = [&](const saved_actor& x) {
    truth[x.addr] = x;
    st.set(x.addr, x);
  };
  REQUIRE(st.begin(0x3fa9c012, 70000, {sample().actors[0]}));
  CHECK(st.writes() == 1);
  struct stat sb {};
  REQUIRE(::stat((dir.path / "state.json").c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0600);

  bool answered = false;
  auto a = sample().actors[1];
  for (int i = 0; i < 10; ++i) {
    a.restarts = static_cast<std::uint32_t>(i);
    set(a);
  }
  set(sample().actors[0]);  // unchanged: nothing to write
  st.when_durable([&] { answered = true; });
  CHECK_FALSE(answered);  // not written yet
  io.poll();
  CHECK(answered);
  CHECK(st.writes() == 2);  // ten changes, one append
  auto back = read_state_file(st.file());
  REQUIRE(back.state);
  REQUIRE(back.state->actors.size() == 2);
  CHECK(back.state->actors[1].restarts == 9);
  io.run();  // the sync, sync_period later
  io.restart();

  bool at_once = false;
  st.when_durable([&] { at_once = true; });  // nothing waits: at once
  CHECK(at_once);

  st.reserve(140000);  // written (and synced) before it returns
  CHECK(read_state_file(st.file()).state->serials_below == 140000);

  // Many changes: the journal is folded into a new snapshot now and then,
  // and the file stays about the size of what it keeps.
  for (std::uint32_t i = 0; i < 3000; ++i) {
    saved_actor x = a;
    x.addr = address(0x3fa9c012, 1000 + i % 50);
    x.restarts = i;
    x.name.clear();
    set(x);
    if (i % 7 == 0) {
      io.restart();  // a loop with nothing left to do stops: the daemon's never does
      io.poll();
    }
  }
  io.restart();
  io.poll();
  auto many = read_state_file(st.file());
  INFO(many.problem);
  REQUIRE(many.state);
  CHECK(many.state->actors.size() == 52);
  CHECK(std::filesystem::file_size(st.file()) < 200000);
  CHECK(st.size() == 52);
  std::vector<saved_actor> kept;
  for (const auto& [_, x] : truth) kept.push_back(x);
  REQUIRE(many.state->actors.size() == kept.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    INFO(encode_put(many.state->actors[i]) << encode_put(kept[i]));
    CHECK(many.state->actors[i] == kept[i]);
  }

  st.forget();
  CHECK_FALSE(std::filesystem::exists(st.file()));
  st.set(a.addr, std::nullopt);  // after a clean stop nothing is written again
  io.restart();
  io.run();
  CHECK_FALSE(std::filesystem::exists(st.file()));
}

TEST_CASE("without a source a snapshot is refused, and the file keeps what was written", "[desired_state]") {
  // The leading convention sets the source; should it be missing, the
  // journal stops growing the file at the point of compaction, and what
  // it holds stays readable.
  testing::temp_dir dir;
  boost::asio::io_context io;
  desired_state st(io, dir.path / "state.json");
  REQUIRE(st.begin(0x3fa9c012, 70000, {sample().actors[0]}));
  auto a = sample().actors[1];
  std::uint32_t written = 0;
  for (std::uint32_t i = 0; i < 2000; ++i) {
    a.restarts = i;
    st.set(a.addr, a);
    io.restart();
    io.poll();
    if (st.writes() == 1 + i + 1) written = i;  // each change its own append, until compaction is due
  }
  CHECK(st.writes() < 2001);  // compaction was due and refused
  auto back = read_state_file(st.file());
  INFO(back.problem);
  REQUIRE(back.state);
  REQUIRE(back.state->actors.size() == 2);
  CHECK(back.state->actors[1].restarts == written);
}

TEST_CASE("serials are reserved ahead and never handed out twice across a restart", "[desired_state][directory]") {
  directory d(7);
  std::vector<std::uint32_t> reserved;
  d.on_reserve = [&](std::uint32_t below) { reserved.push_back(below); };
  const auto first = d.reserve_ahead();
  CHECK(first == 16 + directory::reserve_chunk);
  (void)d.allocate();
  CHECK(reserved.empty());                                        // within the reservation: no write
  const auto block = d.allocate_block(directory::reserve_chunk);  // crosses it
  REQUIRE(reserved.size() == 1);
  CHECK(reserved[0] >= block.first + block.count);

  directory again(7);
  again.skip_serials_below(reserved[0]);
  CHECK(again.allocate().serial() == reserved[0]);
  CHECK(!again.allocated(address(7, 15)));
  CHECK(again.allocated(address(7, 16)));  // an earlier run's: known as handed out
}
