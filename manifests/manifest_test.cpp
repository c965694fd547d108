#include "manifests/manifest.hpp"

#include <catch2/catch.hpp>

using namespace troupe::manifests;
using namespace std::chrono_literals;
using op = requirement_op;

namespace {

constexpr const char* full_manifest = R"(
package: encoder
version: 2.0.0
library: lib/libencoder.so
actors:
  Morse:
    requires: { morse: true, gpu_mem: ">=16", cpu_ghz: "<=3.5", region: "eu", tls: exists, legacy: absent, cores: 8, ratio: 0.5 }
    restart: { policy: transient, max_restarts: 5, within: 10s, backoff: 10ms..2s }
    isolation: dedicated
    max_handle_time: 30s
    on_load: { role: MainMorse, global_name: morse, message: {op: warm_up, n: 3, f: 1.5, ok: true, none: ~, list: [1, "two"]} }
    on_deactivate: { message: {op: drain} }
    on_reactivate: { message: {op: resume} }
  Echo:
auto_unload: true
keep: 5
)";

manifest parse(std::string_view text) {
  auto m = parse_manifest(text, "manifest.yaml");
  INFO((m.ok() ? std::string() : m.err().message));
  REQUIRE(m.ok());
  return *m;
}

}  // namespace

TEST_CASE("a full manifest is read into every field", "[manifest]") {
  const manifest m = parse(full_manifest);
  CHECK(m.package == "encoder");
  CHECK(m.version.text == "2.0.0");
  CHECK(m.library == "lib/libencoder.so");
  CHECK(m.auto_unload);
  CHECK(m.keep == 5);
  REQUIRE(m.actors.size() == 2);
  CHECK(m.actors[0].type == "Morse");  // YAML order, not sorted
  CHECK(m.actors[1].type == "Echo");

  const actor_spec& a = *m.find_actor("Morse");
  CHECK(a.requirements == std::vector<requirement>{
                              {"morse", op::equals, true},
                              {"gpu_mem", op::at_least, std::int64_t{16}},
                              {"cpu_ghz", op::at_most, 3.5},
                              {"region", op::equals, std::string("eu")},
                              {"tls", op::exists, {}},
                              {"legacy", op::absent, {}},
                              {"cores", op::equals, std::int64_t{8}},
                              {"ratio", op::equals, 0.5},
                          });
  CHECK(a.restart == restart_spec{restart_policy::transient, 5, 10s, 10ms, 2s});
  CHECK(a.isolation == isolation_mode::dedicated);
  CHECK(a.max_handle_time == 30s);
  REQUIRE(a.on_load);
  CHECK(a.on_load->role == "MainMorse");
  CHECK(a.on_load->global_name == "morse");
  CHECK(a.on_load->message == json::parse(R"({"op":"warm_up","n":3,"f":1.5,"ok":true,"none":null,"list":[1,"two"]})"));
  CHECK(a.on_deactivate->message == json{{"op", "drain"}});
  CHECK(a.on_reactivate->message == json{{"op", "resume"}});
}

TEST_CASE("parsing the same text twice gives equal manifests", "[manifest]") {
  CHECK(parse(full_manifest) == parse(full_manifest));
  CHECK(parse(full_manifest).find_actor("Nope") == nullptr);
}

TEST_CASE("omitted optional fields take their documented defaults", "[manifest]") {
  const manifest m = parse("package: p\nversion: 1\nlibrary: libp.so\nactors: { Echo: {} }\n");
  CHECK_FALSE(m.auto_unload);
  CHECK(m.keep == 3);
  const actor_spec& a = m.actors.at(0);
  CHECK(a.requirements.empty());
  CHECK(a.restart == restart_spec{restart_policy::permanent, 3, 5s, 10ms, 1s});
  CHECK(a.isolation == isolation_mode::shared);
  CHECK(a.max_handle_time == 0ms);
  CHECK_FALSE(a.on_load);
  CHECK_FALSE(a.on_deactivate);
  CHECK_FALSE(a.on_reactivate);
}

TEST_CASE("quoting a requirement value makes it a string", "[manifest]") {
  const manifest m = parse(
      "package: p\nversion: 1\nlibrary: l.so\n"
      "actors: { A: { requires: { a: \"true\", b: \"16\", c: \"exists\", d: no, e: \">= 2\" } } "
      "}\n");
  CHECK(m.actors[0].requirements == std::vector<requirement>{
                                        {"a", op::equals, std::string("true")},
                                        {"b", op::equals, std::string("16")},
                                        {"c", op::equals, std::string("exists")},
                                        {"d", op::equals, std::string("no")},
                                        {"e", op::at_least, std::int64_t{2}},
                                    });
}

TEST_CASE("a single backoff duration is a fixed delay", "[manifest]") {
  const manifest m = parse("package: p\nversion: 1\nlibrary: l.so\nactors: { A: { restart: { backoff: 2s } } }\n");
  CHECK(m.actors[0].restart.backoff_min == 2s);
  CHECK(m.actors[0].restart.backoff_max == 2s);
}

TEST_CASE("durations take ms, s, m and h", "[manifest]") {
  for (auto [text, expected] :
       {std::pair{"250ms", 250ms}, {"10s", 10000ms}, {"2m", 120000ms}, {"1h", 3600000ms}, {"0s", 0ms}}) {
    const manifest m = parse(std::string("package: p\nversion: 1\nlibrary: l.so\n") +
                             "actors: { A: { max_handle_time: " + text + " } }\n");
    CHECK(m.actors[0].max_handle_time == expected);
  }
}

TEST_CASE("message scalars are typed as YAML 1.2 plain scalars, quoted ones are strings", "[manifest]") {
  const manifest m = parse(
      "package: p\nversion: 1\nlibrary: l.so\nactors:\n  A:\n    on_deactivate:\n      message: "
      "[1e3, +5, -7, 0x10, .inf, \"3\", 18446744073709551615, 1.2.3, null, ~, '', yes, 'true', "
      "{1: a}]\n");
  const json expected = json::parse(
      R"([1000.0, 5, -7, "0x10", ".inf", "3", 18446744073709551615, "1.2.3", null, null, "",
          "yes", "true", {"1": "a"}])");
  CHECK(m.actors[0].on_deactivate->message == expected);
  CHECK(m.actors[0].on_deactivate->message->at(6).is_number_unsigned());
}

TEST_CASE("a version written as a YAML float keeps its text", "[manifest]") {
  const manifest m = parse("package: p\nversion: 1.10\nlibrary: l.so\nactors: { A: }\n");
  CHECK(m.version.text == "1.10");
  CHECK(m.version.fields == std::vector<std::uint64_t>{1, 10});
}
