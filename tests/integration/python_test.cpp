// Packages of runtime python (docs/MANIFEST.md §3.2): the encoders in Python
// answer like the C++ ones, Python and C++ actors ask each other by address
// and by name, and a Python worker fails and restarts like a native one
// (SIGKILL, an exception in a handler, max_handle_time). Selective receive
// (become/stash) and timers of the Python SDK; the isolated sys.path.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

using troupe::testing::eventually;
using troupe::testing::json;
using troupe::testing::test_system;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> inputs = {"SOS",
                                         "This is a multi-system test",
                                         "Hello, World!",
                                         "  tabs\tand\nnewlines  ",
                                         "",
                                         "caf\xc3\xa9 \xe2\x82\xac 100$",
                                         "(a+b)=c; \"q\" @x _y -z 'w' / ? & !"};

/// `troupe ask` that is expected to fail: its stderr line.
std::string ask_failure(const test_system& sys, const std::string& target, const json& payload) {
  auto r = sys.run({"ask", target, payload.dump()});
  INFO("troupe ask " << target << " " << payload.dump() << ": " << r.out);
  CHECK(r.exit_code != 0);
  return r.err;
}

}  // namespace

TEST_CASE("the Python encoders answer exactly like the C++ ones", "[integration][python]") {
  test_system sys;
  const std::string cpp = sys.load(TROUPE_ENCODERS_PKG);
  const std::string py = sys.load(TROUPE_ENCODERS_PY_PKG);
  for (const std::string type : {"Morse", "Base64", "Rot13"}) {
    const std::string a = sys.spawn({type, "--package", "encoders"});
    const std::string b = sys.spawn({type, "--package", "encoders_py"});
    for (const auto& text : inputs) {
      INFO(type << " of \"" << text << "\"");
      CHECK(sys.ask(a, text) == sys.ask(b, text));
    }
    CHECK(sys.ask(b, 42) == json{{"error", "expected a JSON string"}});
    CHECK(sys.ask(a, json{{"x", 1}}) == sys.ask(b, json{{"x", 1}}));
  }
  // Known answers, so that both cannot be wrong alike.
  CHECK(sys.ask(sys.spawn({"Morse", "--package", "encoders_py"}), "SOS") == "... --- ...");
  CHECK(sys.ask(sys.spawn({"Base64", "--package", "encoders_py"}), "foo") == "Zm9v");
  CHECK(sys.ask(sys.spawn({"Rot13", "--package", "encoders_py"}), "Hello") == "Uryyb");
  auto listed = sys.run({"list", "--json"});
  REQUIRE(listed.exit_code == 0);
  CHECK_THAT(listed.out, Catch::Contains("encoders_py"));
}

TEST_CASE("Python and C++ actors ask each other by address and by name", "[integration][python]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PKG);
  sys.load(TROUPE_ENCODERS_PY_PKG);
  sys.load(TROUPE_RELAY_V1_PKG);
  const std::string cpp_morse = sys.spawn({"Morse", "--package", "encoders", "--name", "cpp-morse"});
  const std::string py_morse = sys.spawn({"Morse", "--package", "encoders_py", "--name", "py-morse"});
  const std::string py_relay = sys.spawn({"Relay", "--package", "encoders_py", "--name", "py-relay"});
  const std::string cpp_relay = sys.spawn({"Relay", "--package", "relay", "--name", "cpp-relay"});
  const auto pid_of = [&](const std::string& a) {
    auto v = sys.wait_for_actor(a, [](const auto& view) { return view.state() == "running"; });
    REQUIRE(v);
    return v->worker_pid();
  };
  CHECK(pid_of(py_relay) != pid_of(cpp_morse));
  CHECK(pid_of(py_relay) == pid_of(py_morse));

  // Python asks C++, by address and by name.
  CHECK(sys.ask(py_relay, json{{"via", cpp_morse}, {"payload", "SOS"}}) ==
        json{{"answer", "... --- ..."}, {"from_version", "py"}});
  CHECK(sys.ask(py_relay, json{{"via", "cpp-morse"}, {"payload", "SOS"}}) ==
        json{{"answer", "... --- ..."}, {"from_version", "py"}});
  // C++ asks Python, by address and by name.
  CHECK(sys.ask(cpp_relay, json{{"via", py_morse}, {"payload", "SOS"}}) ==
        json{{"answer", "... --- ..."}, {"from_version", "1.0.0"}});
  CHECK(sys.ask(cpp_relay, json{{"via", "py-morse"}, {"payload", "SOS"}}) ==
        json{{"answer", "... --- ..."}, {"from_version", "1.0.0"}});
  // Through both: C++ relay asks the Python relay, which asks C++ Morse.
  CHECK(sys.ask(cpp_relay, json{{"via", "py-relay"}, {"payload", {{"via", "cpp-morse"}, {"payload", "E"}}}}) ==
        json{{"answer", {{"answer", "."}, {"from_version", "py"}}}, {"from_version", "1.0.0"}});
  // The C++ encoders' Asker (the demo's) and the Python Relay, each asking the other's Morse.
  const std::string cpp_encoders_relay = sys.spawn({"Asker", "--package", "encoders"});
  CHECK(sys.ask(cpp_encoders_relay, json{{"via", "py-morse"}, {"payload", "SOS"}}) ==
        json{{"answer", "... --- ..."}, {"from_version", "cpp"}});
  CHECK(sys.ask(cpp_encoders_relay, json{{"via", "py-relay"}, {"payload", {{"via", "cpp-morse"}, {"payload", "E"}}}}) ==
        json{{"answer", {{"answer", "."}, {"from_version", "py"}}}, {"from_version", "cpp"}});
  CHECK(sys.ask(cpp_encoders_relay, json{{"via", "nobody"}}) ==
        json{{"error", "no actor is named nobody"}, {"from_version", "cpp"}});
  // A failed ask from Python comes back with its reason.
  const json failed = sys.ask(py_relay, json{{"via", "@00000001.99"}, {"payload", 1}});
  REQUIRE(failed.contains("error"));
  CHECK_THAT(failed["error"].get<std::string>(), Catch::Contains("@00000001.99"));
}

TEST_CASE("two versions bundling two releases of one Python library answer side by side", "[integration][python]") {
  test_system sys;
  const std::string v1 = sys.load(TROUPE_CONFLICT_PY_V1_PKG);
  const std::string v2 = sys.load(TROUPE_CONFLICT_PY_V2_PKG);
  const std::string a = sys.spawn({"Codec", "--package", v1});
  const std::string b = sys.spawn({"Codec", "--package", v2});
  CHECK(sys.ask(a, json{{"text", "abc"}}) == json{{"codec", "1.2"}, {"encoded", "cba"}});
  CHECK(sys.ask(b, json{{"text", "abc"}}) == json{{"codec", "1.5"}, {"encoded", "[1.5] ABC"}});
  // Asked again, in the other order: each keeps its own.
  CHECK(sys.ask(b, json{{"text", "x"}})["codec"] == "1.5");
  CHECK(sys.ask(a, json{{"text", "x"}})["codec"] == "1.2");
  CHECK(sys.actor(a)->worker_pid() != sys.actor(b)->worker_pid());
  // pycodec came in as a wheel (troupe pack --wheel): its dist-info is in
  // each version's site-packages/, so importlib.metadata finds its own.
  CHECK(sys.ask(a, json{{"metadata", true}}) == json{{"codec", "1.2"}, {"dist", "1.2"}});
  CHECK(sys.ask(b, json{{"metadata", true}}) == json{{"codec", "1.5"}, {"dist", "1.5"}});
}

TEST_CASE("a SIGKILLed Python worker is restarted and its actor answers at the same address", "[integration][python]") {
  test_system sys;
  sys.load(TROUPE_ENCODERS_PY_PKG);
  const std::string a = sys.spawn({"Rot13", "--package", "encoders_py"});
  CHECK(sys.ask(a, "abc") == "nop");
  const auto before = sys.actor(a);
  REQUIRE(before);
  troupe::testing::kill_process(before->worker_pid());
  auto after = sys.wait_for_actor(a, [&](const auto& v) {
    return v.state() == "running" && v.worker_pid() > 0 && v.worker_pid() != before->worker_pid();
  });
  REQUIRE(after);
  CHECK(after->state() == "running");
  CHECK(after->restarts() >= 1);
  CHECK(sys.ask(a, "abc") == "nop");
}

TEST_CASE("a Python handler's exception fails the ask with its reason and restarts the actor",
          "[integration][python]") {
  test_system sys;
  sys.load(TROUPE_PYFIXTURE_PKG);
  const std::string a = sys.spawn({"Probe"});
  CHECK(sys.ask(a, json{{"starts", true}}) == 1);
  const std::string err = ask_failure(sys, a, json{{"raise", "bad input 17"}});
  CHECK_THAT(err, Catch::Contains("ValueError: bad input 17"));
  auto v = sys.wait_for_actor(a, [](const auto& view) { return view.restarts() >= 1; });
  REQUIRE(v);
  CHECK(v->restarts() == 1);
  CHECK_THAT(v->last_reason(), Catch::Contains("ValueError: bad input 17"));
  // Restarted in place, in the same worker: a new instance, started again.
  CHECK(sys.ask(a, json{{"starts", true}}) == 2);
  CHECK(sys.ask(a, json{{"echo", "still here"}}) == "still here");
  // The full traceback is in the system's log, line by line.
  CHECK(eventually([&] {
    const auto log = sys.log();
    return log.find("Traceback (most recent call last):") != std::string::npos &&
           log.find("raise ValueError(req[\"raise\"])") != std::string::npos;
  }));
}

TEST_CASE("max_handle_time kills a Python handler in an endless loop", "[integration][python]") {
  test_system sys;
  sys.load(TROUPE_PYFIXTURE_PKG);
  const std::string loop = sys.spawn({"Loop"});
  auto first = sys.wait_for_actor(loop, [](const auto& v) { return v.state() == "running"; });
  REQUIRE(first);
  const std::string err = ask_failure(sys, loop, json{{"spin", true}});
  CHECK_FALSE(err.empty());
  auto v = sys.wait_for_actor(loop, [&](const auto& view) {
    return view.restarts() >= 1 && view.state() == "running" && view.worker_pid() != first->worker_pid();
  });
  REQUIRE(v);
  CHECK_THAT(v->last_reason(), Catch::Contains("max_handle_time"));
}

TEST_CASE("the Python SDK: become/stash, timers, stale contexts, an isolated sys.path", "[integration][python]") {
  test_system sys;
  sys.load(TROUPE_PYFIXTURE_PKG);

  SECTION("a closed gate stashes tells and asks and takes them back in order once opened") {
    const std::string gate = sys.spawn({"Gate"});
    for (const std::string n : {"1", "2", "3"}) REQUIRE(sys.run({"tell", gate, n}).exit_code == 0);
    // An ask waits in the stash too, answered once the gate opens.
    troupe::testing::run_result stashed_ask;
    std::thread asker([&] { stashed_ask = sys.run({"ask", gate, "4", "--timeout", "20000"}); });
    const bool four = eventually([&] {
      auto r = sys.run({"ask", gate, "{}", "--type", "peek"});
      return r.exit_code == 0 && json::parse(r.out) == json{{"stashed", 4}};
    });
    if (!four) {
      REQUIRE(sys.run({"tell", gate, "{}", "--type", "open"}).exit_code == 0);  // let the asker go
      asker.join();
      FAIL("the gate never held 4 stashed messages");
    }
    REQUIRE(sys.run({"tell", gate, "{}", "--type", "open"}).exit_code == 0);
    asker.join();
    REQUIRE(stashed_ask.exit_code == 0);
    CHECK(json::parse(stashed_ask.out) == json{{"got", 4}, {"seen", {1, 2, 3}}});
    CHECK(sys.ask(gate, 5) == json{{"got", 5}, {"seen", {1, 2, 3}}});
  }

  SECTION("a timer answers an ask later") {
    const std::string t = sys.spawn({"Timer"});
    CHECK(sys.ask(t, json{{"after", 0.05}}) == "fired");
  }

  SECTION("a context kept past its call is refused") {
    const std::string p = sys.spawn({"Probe"});
    CHECK_THAT(sys.ask(p, json{{"stale_ctx", true}}).get<std::string>(),
               Catch::Contains("context used outside the call"));
  }

  SECTION("a payload is copied at the tell: what the sender changes later is not seen") {
    const std::string p = sys.spawn({"Probe"});
    REQUIRE(sys.ask(p, json{{"copy", true}}) == "sent");
    CHECK(eventually([&] { return sys.ask(p, json{{"kept", true}}) == json{"before", {{"v", 1}}}; }));
  }

  SECTION("ctx.tell and Message used wrongly raise a clear error in the handler, which goes on") {
    const std::string p = sys.spawn({"Probe"});
    CHECK(sys.ask(p, json{{"misuse", true}}) == json{"TypeError", "TypeError", "TypeError", "TypeError", "TypeError",
                                                     "ValueError", "OverflowError", "HostError", "TypeError",
                                                     "AttributeError"});
    CHECK(sys.ask(p, json{{"echo", 1}}) == 1);
  }

  SECTION("sys.path: the package, its site-packages, the standard library; nothing of the host") {
    const std::string p = sys.spawn({"Probe"});
    const json path = sys.ask(p, json{{"path", true}});
    REQUIRE(path.is_array());
    REQUIRE(path.size() >= 3);
    CHECK_THAT(path[1].get<std::string>(), Catch::EndsWith("/site-packages"));
    for (const auto& entry : path) {
      CHECK_THAT(entry.get<std::string>(), !Catch::Contains("dist-packages"));
      CHECK_THAT(entry.get<std::string>(), !Catch::Contains(".local"));
    }
    CHECK(sys.ask(p, json{{"import", "json"}})["ok"] == true);
    // python3-zmq is installed on the host, but not for a package.
    CHECK(sys.ask(p, json{{"import", "zmq"}})["ok"] == false);
  }
}
