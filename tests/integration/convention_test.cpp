// Conventions of systems against real processes: several `troupe start`
// daemons sharing one TROUPE_HOME (so they trust each other's CurveZMQ keys),
// one of them the leader. Placement by the `requires:` of a package loaded on
// the leader only, asks through any system, chgcap, failover after `troupe
// stop` and after SIGKILL, move, two versions fetched by members and an
// unload, spawn --wait, and a system of another TROUPE_HOME kept out.
//
// Nothing sleeps to synchronise: each step polls an observable state
// (`systems --json`, `actors --json`, a log line, an answer) up to a bounded
// deadline. The walkthrough (act 5) uses ports 1900, 10000 and 10101 when all
// three are free, hence the RESOURCE_LOCK in CMakeLists.txt; every other test
// uses free ports.
#include "tests/etcd_cluster.hpp"
#include "tests/integration/harness.hpp"

#include "ipc/control.hpp"
#include "ipc/curve.hpp"
#include "ipc/wire.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using troupe::testing::json;
using troupe::testing::run_result;
using troupe::testing::test_system;
namespace ipc = troupe::ipc;

namespace {

using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------- helpers

/// A failed command: non-zero exit, nothing on stdout, one line "troupe: ..."
/// on stderr (whatever the exit code).
void check_one_line_error(const run_result& r) {
  INFO("exit " << r.exit_code << ", stdout: " << r.out << "stderr: " << r.err);
  CHECK(r.exit_code > 0);
  CHECK(r.out.empty());
  CHECK(r.err_lines() == 1);
  CHECK_THAT(r.err, Catch::StartsWith("troupe: "));
}

using troupe::testing::eventually;

bool port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  const int one = 1;
  // As the daemon's listener does (libzmq): a port left in TIME_WAIT by an
  // earlier run is free.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

std::string host_of(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

/// `systems --json` of s, or an empty object when it does not answer.
json systems_of(const test_system& s) {
  auto r = s.run({"systems", "--json"});
  if (r.exit_code != 0) return json::object();
  json j = json::parse(r.out, nullptr, false);
  return j.is_object() && j.contains("systems") ? j : json::object();
}

/// The entry of the system on port in a `systems --json` answer, preferring
/// one that is up (a system restarted on a port has a new id; the old one
/// stays listed, down).
std::optional<json> member_on(const json& systems, std::uint16_t port) {
  std::optional<json> found;
  for (const auto& m : systems.value("systems", json::array()))
    if (m.value("port", 0) == port && (!found || m.value("state", std::string()) == "up")) found = m;
  return found;
}

bool is_up(const json& systems, std::uint16_t port) {
  auto m = member_on(systems, port);
  return m && m->value("state", std::string()) == "up";
}

/// The leader lists every port up (and the members say they joined).
bool convention_up(const test_system& leader, const std::vector<const test_system*>& members) {
  const json s = systems_of(leader);
  if (!is_up(s, leader.port())) return false;
  for (const auto* m : members) {
    if (!is_up(s, m->port())) return false;
    if (!systems_of(*m).value("joined", false)) return false;
  }
  return true;
}

/// The actor of `actors --json` of s with global name name.
std::optional<json> actor_named(const test_system& s, const std::string& name) {
  for (const auto& a : s.actors())
    if (a["name"].is_string() && a["name"].get<std::string>() == name) return a;
  return std::nullopt;
}

/// A field of the actor named name in s's `actors --json` (null when it is not listed).
json actor_field(const test_system& s, const std::string& name, const std::string& field) {
  auto a = actor_named(s, name);
  return a && a->contains(field) ? (*a)[field] : json();
}

/// Polls s's `actors --json` until the actor named name is in state on
/// system (empty: any); returns the last view.
std::optional<json> wait_actor(const test_system& s, const std::string& name, const std::string& state,
                               const std::string& system = {}, std::chrono::milliseconds deadline = 15s) {
  std::optional<json> last;
  eventually(
      [&] {
        last = actor_named(s, name);
        return last && last->value("state", std::string()) == state && (system.empty() || (*last)["system"] == system);
      },
      deadline);
  return last;
}

/// What each encoder answers.
struct probe {
  std::string question;
  std::string answer;
};
const std::map<std::string, probe> probes = {
    {"Morse", {"SOS", "... --- ..."}},
    {"Base64", {"foo", "Zm9v"}},
    {"Rot13", {"Hello", "Uryyb"}},
};

/// Asks the actor named name (its type's probe) through s and checks the answer.
void check_answers(const test_system& s, const std::string& name, const std::string& type) {
  const auto& p = probes.at(type);
  auto r = s.run({"ask", name, json(p.question).dump(), "--timeout", "5000"});
  INFO("ask " << name << " through " << s.where() << ": exit " << r.exit_code << ", stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.out) == json(p.answer));
}

/// A signed encoders package whose types require capabilities: Morse
/// {morse: true}, Base64 {"64bit encoder": true}, Rot13 {"Caesar cipher": true}.
struct built_package {
  std::string id;
  fs::path file;
};

built_package pack_encoders(const test_system& s, const std::string& version) {
  const fs::path work = s.home() / "work" / version;
  const fs::path dir = work / "encoders";
  const fs::path out = work / "out";
  fs::create_directories(dir);
  fs::create_directories(out);
  fs::copy(TROUPE_ENCODERS_DIR, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  {
    std::ofstream m(dir / "manifest.yaml", std::ios::trunc);
    m << "package: encoders\n"
         "version: "
      << version
      << "\n"
         "library: libencoders.so\n"
         "actors:\n"
         "  Morse: { requires: { morse: true } }\n"
         "  Base64: { requires: { \"64bit encoder\": true } }\n"
         "  Rot13: { requires: { \"Caesar cipher\": true } }\n";
  }
  auto r = s.run({"pack", dir.string(), "--key", TROUPE_DEV_KEY, "--version", version, "--out", out.string()});
  INFO("troupe pack: " << r.err);
  REQUIRE(r.exit_code == 0);
  built_package p{r.last_line(), {}};
  for (const auto& e : fs::directory_iterator(out))
    if (e.path().extension() == ".tpkg") p.file = e.path();
  REQUIRE(!p.file.empty());
  REQUIRE(p.id.size() == 64);
  return p;
}

/// `troupe chgcap PORT ARGS...` through s; REQUIREs success.
void chgcap(const test_system& s, std::uint16_t port, const std::vector<std::string>& change) {
  std::vector<std::string> args{"chgcap", std::to_string(port)};
  args.insert(args.end(), change.begin(), change.end());
  auto r = s.run(args);
  INFO("troupe chgcap " << port << ": exit " << r.exit_code << ", stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("system " + host_of(port) + " capabilities: "));
}

/// Polls the leader's `systems --json` until port shows exactly caps.
void wait_caps(const test_system& leader, std::uint16_t port, const json& caps) {
  json last;
  const bool seen = eventually([&] {
    last = systems_of(leader);
    auto m = member_on(last, port);
    return m && (*m)["capabilities"] == caps;
  });
  INFO("systems: " << last.dump());
  REQUIRE(seen);
}

// ---------------------------------------------------------------- the two modes
//
// Tests tagged [modes] run twice: under the built-in leader, and on etcd
// when TROUPE_TEST_ETCD is set (the integration_convention_etcd entry of
// CMakeLists.txt runs this binary so). On etcd, every test gets a convention
// of its own (a fresh name, so a fresh key prefix) on one etcd per process.

bool on_etcd() {
  static const bool etcd = std::getenv("TROUPE_TEST_ETCD") != nullptr;
  return etcd;
}

troupe::testing::etcd_cluster& shared_etcd() {
  static troupe::testing::etcd_cluster cluster(1);
  return cluster;
}

std::string& convention_name() {
  static std::string name;
  return name;
}

/// Start arguments of the system that leads (built-in: the first one; on
/// etcd: the first to start, so the first elected), with extra ones.
std::vector<std::string> lead_args(std::vector<std::string> extra = {}) {
  if (!on_etcd()) return extra;
  static int count = 0;
  convention_name() = "t" + std::to_string(::getpid()) + "-" + std::to_string(++count);
  std::vector<std::string> a{"--etcd", shared_etcd().endpoints(), "--convention", convention_name()};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

/// Start arguments of a member of the convention led by leader.
std::vector<std::string> member_args(const test_system& leader, const std::string& caps) {
  std::vector<std::string> a =
      on_etcd() ? std::vector<std::string>{"--etcd", shared_etcd().endpoints(), "--convention", convention_name()}
                : std::vector<std::string>{"--leader", leader.where()};
  if (!caps.empty()) a.insert(a.end(), {"--caps", caps});
  return a;
}

/// The line the leader logs when it loses system port.
std::string lost_line(std::uint16_t port) {
  return "system " + std::to_string(port) + (on_etcd() ? " lost its lease" : " stopped answering heartbeats");
}

/// A command run on another thread, for asks expected to wait.
struct background_run {
  run_result result;
  std::thread thread;
  background_run(const test_system& s, std::vector<std::string> args)
      : thread([this, &s, args = std::move(args)] { result = s.run(args); }) {}
  ~background_run() {
    if (thread.joinable()) thread.join();
  }
  const run_result& get() {
    if (thread.joinable()) thread.join();
    return result;
  }
};

/// A leader with no capabilities and two members a and b, the act-5 encoders
/// loaded on the leader and Morse spawned through it: host is the member it
/// landed on, other the other one.
struct morse_placed {
  test_system lead{lead_args()};
  test_system a;
  test_system b;
  std::string morse;
  test_system* host = nullptr;
  test_system* other = nullptr;

  morse_placed(const std::string& caps_a, const std::string& caps_b)
      : a(lead, 0, member_args(lead, caps_a)), b(lead, 0, member_args(lead, caps_b)) {
    REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
    lead.load(pack_encoders(lead, "1.0.0").file.string());
    morse = lead.spawn({"Morse", "--name", "Morse"});
    auto placed = wait_actor(lead, "Morse", "running");
    REQUIRE(placed);
    host = (*placed)["system"] == a.where() ? &a : &b;
    other = host == &a ? &b : &a;
  }
};

}  // namespace

// ---------------------------------------------------------------- act 5

TEST_CASE("act 5: three systems place the encoders by capability and follow chgcap and a stop",
          "[integration][convention][modes]") {
  std::vector<std::uint16_t> ports{1900, 10000, 10101};
  if (!std::all_of(ports.begin(), ports.end(), port_free)) {
    ports.clear();
    while (ports.size() < 3) {
      const auto p = troupe::testing::free_port();
      if (std::find(ports.begin(), ports.end(), p) == ports.end()) ports.push_back(p);
    }
  }
  const std::uint16_t p_lead = ports[0];
  const std::uint16_t p_mc = ports[1];  // morse, Caesar cipher
  const std::uint16_t p_64 = ports[2];  // 64bit encoder
  INFO("ports: leader " << p_lead << ", morse+Caesar " << p_mc << ", 64bit " << p_64);
  WARN("act 5 on ports " << p_lead << ", " << p_mc << ", " << p_64);

  test_system lead(p_lead, lead_args());  // owns the TROUPE_HOME; destroyed last
  std::optional<test_system> mc;
  mc.emplace(lead, p_mc, member_args(lead, "morse,Caesar cipher"));
  test_system s64(lead, p_64, member_args(lead, "64bit encoder"));
  REQUIRE(eventually([&] { return convention_up(lead, {&*mc, &s64}); }));

  // `systems` shows the three, up, with their capabilities.
  {
    const json s = systems_of(lead);
    INFO(s.dump());
    CHECK(s["is_leader"] == true);
    CHECK(s["joined"] == true);
    CHECK(s["leader"] == host_of(p_lead));
    REQUIRE(s["systems"].size() == 3);
    CHECK((*member_on(s, p_lead))["capabilities"] == json::object());
    CHECK((*member_on(s, p_lead))["leader"] == true);
    CHECK((*member_on(s, p_mc))["capabilities"] == json{{"morse", true}, {"Caesar cipher", true}});
    CHECK((*member_on(s, p_mc))["leader"] == false);
    CHECK((*member_on(s, p_64))["capabilities"] == json{{"64bit encoder", true}});
    for (const auto& m : s["systems"]) CHECK(m["state"] == "up");
    const json from_member = systems_of(s64);
    CHECK(from_member["is_leader"] == false);
    CHECK(from_member["leader"] == host_of(p_lead));
  }

  // Loaded on the leader only; spawned by name through the leader.
  const auto pkg = pack_encoders(lead, "1.0.0");
  CHECK(lead.load(pkg.file.string()) == pkg.id);
  std::map<std::string, std::string> addr;
  for (const auto* type : {"Morse", "Base64", "Rot13"}) addr[type] = lead.spawn({type, "--name", type});
  // Through every running system (the morse one is down for a while).
  auto everyone_answers = [&](const std::vector<std::string>& names) {
    for (const auto* s : {&lead, mc ? &*mc : nullptr, &s64})
      if (s != nullptr)
        for (const auto& n : names) check_answers(*s, n, n);
  };
  everyone_answers({"Morse", "Base64", "Rot13"});
  {
    auto morse = wait_actor(lead, "Morse", "running", host_of(p_mc));
    auto rot13 = wait_actor(lead, "Rot13", "running", host_of(p_mc));
    auto base64 = wait_actor(lead, "Base64", "running", host_of(p_64));
    REQUIRE(morse);
    REQUIRE(rot13);
    REQUIRE(base64);
    CHECK((*morse)["system"] == host_of(p_mc));
    CHECK((*morse)["address"] == addr["Morse"]);
    CHECK((*rot13)["system"] == host_of(p_mc));
    CHECK((*base64)["system"] == host_of(p_64));
    CHECK((*base64)["address"] == addr["Base64"]);
    // The hosts list them as their own (with a worker).
    auto local = actor_named(s64, "Base64");
    REQUIRE(local);
    CHECK((*local)["worker_pid"].is_number());
  }
  // A failed command prints one line.
  check_one_line_error(s64.run({"ask", "Nobody", "\"x\""}));
  check_one_line_error(lead.run({"chgcap", std::to_string(p_64), "-", "no such capability"}));

  // chgcap 64 + morse: nothing has to move; everything still answers.
  chgcap(lead, p_64, {"+", "morse"});
  wait_caps(lead, p_64, json{{"64bit encoder", true}, {"morse", true}});
  everyone_answers({"Morse", "Base64", "Rot13"});
  CHECK(actor_field(lead, "Morse", "system") == host_of(p_mc));

  chgcap(lead, p_64, {"-", "morse"});
  wait_caps(lead, p_64, json{{"64bit encoder", true}});

  // chgcap 64 - "64bit encoder": Base64 no longer fits anywhere: pending.
  chgcap(lead, p_64, {"-", "64bit encoder"});
  {
    auto b = wait_actor(lead, "Base64", "pending");
    REQUIRE(b);
    INFO(b->dump());
    CHECK((*b)["state"] == "pending");
    CHECK((*b)["address"] == addr["Base64"]);
    REQUIRE((*b)["last_reason"].is_string());
    CHECK_THAT((*b)["last_reason"].get<std::string>(), Catch::Contains("64bit encoder"));
    CHECK(actor_field(s64, "Base64", "worker_pid").is_null());
  }
  {
    // An ask to the pending actor waits (through a member) and is answered
    // once the leader gains the capability and places it there.
    background_run held(*mc, {"ask", "Base64", "\"foo\"", "--timeout", "15000"});
    chgcap(lead, p_lead, {"+", "64bit encoder"});
    auto b = wait_actor(lead, "Base64", "running", host_of(p_lead));
    REQUIRE(b);
    CHECK((*b)["address"] == addr["Base64"]);
    const auto& r = held.get();
    INFO("held ask: exit " << r.exit_code << ", stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(json::parse(r.out) == "Zm9v");
  }
  everyone_answers({"Base64"});
  CHECK(actor_field(lead, "Base64", "worker_pid").is_number());  // now local to the leader
  {
    // A move asked while its actor is being re-placed (by the chgcap just
    // before it) follows once it lands, instead of failing with the reason of
    // the placement under way (README's convention session does this).
    chgcap(lead, p_lead, {"-", "64bit encoder"});  // pending: 64 lacks it too
    chgcap(lead, p_64, {"+", "64bit encoder"});    // placed on 64
    chgcap(lead, p_lead, {"+", "64bit encoder"});
    const auto r = lead.run({"move", "Base64", "--to", std::to_string(p_lead)});
    INFO("move: " << r.err);
    CHECK(r.exit_code == 0);
    REQUIRE(wait_actor(lead, "Base64", "running", host_of(p_lead)));
    chgcap(lead, p_64, {"-", "64bit encoder"});  // as before: nothing moves
  }

  // stop the morse system: Morse and Rot13 have nowhere to go.
  {
    auto r = mc->stop();
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "stopped system on " + host_of(p_mc) + "\n");
  }
  mc.reset();
  for (const auto* n : {"Morse", "Rot13"}) {
    auto a = wait_actor(lead, n, "pending");
    REQUIRE(a);
    INFO(a->dump());
    CHECK((*a)["state"] == "pending");
    CHECK((*a)["address"] == addr[n]);
  }
  CHECK(eventually([&] { return !is_up(systems_of(lead), p_mc); }));
  everyone_answers({"Base64"});
  {
    background_run held(s64, {"ask", "Rot13", "\"Hello\"", "--timeout", "15000"});
    // The same system again: its actors come back under their addresses.
    mc.emplace(lead, p_mc, member_args(lead, "morse,Caesar cipher"));
    for (const auto* n : {"Morse", "Rot13"}) {
      auto a = wait_actor(lead, n, "running", host_of(p_mc));
      REQUIRE(a);
      CHECK((*a)["address"] == addr[n]);
    }
    const auto& r = held.get();
    INFO("held ask: exit " << r.exit_code << ", stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(json::parse(r.out) == "Uryyb");
  }
  REQUIRE(eventually([&] { return convention_up(lead, {&*mc, &s64}); }));
  everyone_answers({"Morse", "Base64", "Rot13"});
  for (const auto& [n, a] : addr) CHECK(actor_field(lead, n, "address") == a);
}

// ---------------------------------------------------------------- failover

/// A signed encoders_py (runtime python) whose Morse requires {pymorse: true};
/// Relay requires nothing.
built_package pack_encoders_py(const test_system& s) {
  const fs::path work = s.home() / "work" / "py";
  const fs::path dir = work / "encoders_py";
  fs::create_directories(dir);
  fs::create_directories(work / "out");
  const fs::path built = fs::path(TROUPE_ENCODERS_DIR).parent_path().parent_path() / "encoders-py" / "package";
  fs::copy_file(built / "encoders_py.py", dir / "encoders_py.py", fs::copy_options::overwrite_existing);
  {
    std::ofstream m(dir / "manifest.yaml", std::ios::trunc);
    m << "package: encoders_py\nversion: 1.0.0\nruntime: python\nmodule: encoders_py\nactors:\n"
         "  Morse: { requires: { pymorse: true } }\n  Relay: {}\n";
  }
  auto r = s.run({"pack", (dir / "manifest.yaml").string(), "--key", TROUPE_DEV_KEY, "--out", (work / "out").string()});
  INFO("troupe pack: " << r.err);
  REQUIRE(r.exit_code == 0);
  built_package p{r.last_line(), work / "out" / "encoders_py-1.0.0.tpkg"};
  REQUIRE(fs::exists(p.file));
  return p;
}

TEST_CASE("a Python package in a convention: placed by capability, moved by chgcap, asked by C++ across systems",
          "[integration][convention][python]") {
  test_system lead;
  test_system a(lead, 0, member_args(lead, "pymorse"));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  CHECK(lead.load(pack_encoders_py(lead).file.string()).size() == 64);  // on the leader; members fetch it
  lead.load(TROUPE_ENCODERS_PKG);                                       // the C++ encoders, with their Asker
  const std::string morse = lead.spawn({"Morse", "--package", "encoders_py", "--name", "PyMorse"});
  auto placed = wait_actor(lead, "PyMorse", "running", a.where());
  REQUIRE(placed);
  const std::string cpp_asker = lead.spawn({"Asker", "--package", "encoders", "--name", "CppAsker"});
  auto asker = wait_actor(lead, "CppAsker", "running");
  REQUIRE(asker);
  CHECK((*asker)["address"] == cpp_asker);
  auto relayed = [&](const test_system& through) {
    auto r = through.run({"ask", "CppAsker", R"({"via": "PyMorse", "payload": "SOS"})", "--timeout", "5000"});
    INFO("ask CppAsker through " << through.where() << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out);
  };
  const json sos{{"answer", "... --- ..."}, {"from_version", "cpp"}};
  for (const auto* s : {&lead, &a, &b}) CHECK(relayed(*s) == sos);
  // Only b can host it after these: it moves there, same address, and answers.
  chgcap(lead, b.port(), {"+", "pymorse"});
  wait_caps(lead, b.port(), json{{"pymorse", true}});
  chgcap(lead, a.port(), {"-", "pymorse"});
  auto moved = wait_actor(lead, "PyMorse", "running", b.where());
  REQUIRE(moved);
  CHECK((*moved)["address"] == morse);
  CHECK(eventually([&] { return relayed(b) == sos; }));
  CHECK(relayed(lead) == sos);
  // Nowhere to go: pending, and a clear failure for the asker.
  chgcap(lead, b.port(), {"-", "pymorse"});
  REQUIRE(wait_actor(lead, "PyMorse", "pending"));
  chgcap(lead, a.port(), {"+", "pymorse"});
  REQUIRE(wait_actor(lead, "PyMorse", "running", a.where()));
  CHECK(eventually([&] { return relayed(lead) == sos; }));
}

TEST_CASE("overlapping capabilities: a SIGKILLed system's actor answers again from the other",
          "[integration][convention][modes]") {
  morse_placed f("morse,Caesar cipher", "64bit encoder,morse,Caesar cipher");
  test_system& lead = f.lead;
  const std::string& morse = f.morse;
  test_system& host = *f.host;
  test_system& other = *f.other;
  check_answers(lead, "Morse", "Morse");

  const auto killed_at = steady::now();
  host.kill_daemon();
  auto moved = wait_actor(lead, "Morse", "running", other.where(), 10s);
  REQUIRE(moved);
  INFO(moved->dump());
  CHECK((*moved)["system"] == other.where());
  CHECK((*moved)["address"] == morse);
  CHECK((*moved)["restarts"] == 1);
  check_answers(lead, "Morse", "Morse");
  check_answers(other, morse, "Morse");
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - killed_at);
  WARN("Morse answered again " << took.count() << " ms after the SIGKILL of " << host.where());
  CHECK(took < 5s);
  const json s = systems_of(lead);
  INFO(s.dump());
  REQUIRE(member_on(s, host.port()));
  CHECK((*member_on(s, host.port()))["state"] == "down");
  CHECK(is_up(s, other.port()));
  CHECK_THAT(lead.log(), Catch::Contains(lost_line(host.port())));
}

TEST_CASE("a member paused past the timeout stops its stale instance when it rejoins: one instance after",
          "[integration][convention][fencing]") {
  // Before epochs: the leader re-created Morse elsewhere, the paused member
  // came back with its copy, and both answered to one address from then on.
  morse_placed f("morse", "morse");
  test_system& lead = f.lead;
  test_system& host = *f.host;
  test_system& other = *f.other;
  check_answers(lead, "Morse", "Morse");
  host.signal_daemon(SIGSTOP);
  struct resume {
    const test_system& s;
    ~resume() { s.signal_daemon(SIGCONT); }  // whatever happens below
  } resumes{host};
  auto moved = wait_actor(lead, "Morse", "running", other.where(), 10s);
  REQUIRE(moved);
  CHECK((*moved)["address"] == f.morse);
  host.signal_daemon(SIGCONT);
  // It rejoins, is told its instance is stale, and stops it: then it lists
  // Morse as running on the other member, and routes asks there.
  CHECK(eventually([&] {
    auto here = actor_named(host, "Morse");
    return here && (*here)["system"] == other.where();
  }));
  CHECK_THAT(host.log(), Catch::Contains("stopping a stale instance"));
  for (const auto* via : {&lead, &host, &other}) check_answers(*via, "Morse", "Morse");
  auto final_view = wait_actor(lead, "Morse", "running", other.where());
  REQUIRE(final_view);
  CHECK((*final_view)["address"] == f.morse);
}

TEST_CASE("a pending actor runs again on its lost system when that system comes back with it",
          "[integration][convention][fencing][modes]") {
  // Morse fits its host alone. Before the fix the leader took the host's
  // rejoin for the same placement but left Morse pending; its next try was
  // refused there ("an actor already runs"), and once another system fitted
  // a second instance started beside the first.
  morse_placed f("morse", "");
  test_system& lead = f.lead;
  test_system& host = *f.host;
  test_system& other = *f.other;
  check_answers(lead, "Morse", "Morse");
  host.signal_daemon(SIGSTOP);
  struct resume {
    const test_system& s;
    ~resume() { s.signal_daemon(SIGCONT); }  // whatever happens below
  } resumes{host};
  REQUIRE(wait_actor(lead, "Morse", "pending", {}, 20s));
  host.signal_daemon(SIGCONT);
  auto back = wait_actor(lead, "Morse", "running", host.where(), 20s);
  INFO("leader's view: " << (back ? back->dump() : "none") << "\nleader's log:\n"
                         << lead.log() << "\nhost's log:\n"
                         << host.log());
  REQUIRE(back);
  CHECK((*back)["address"] == f.morse);
  for (const auto* via : {&lead, &host, &other}) check_answers(*via, "Morse", "Morse");
  CHECK(lead.log().find("an actor already runs") == std::string::npos);
  // Another system fits now: Morse stays where it runs, once.
  chgcap(other, other.port(), {"+morse"});
  wait_caps(lead, other.port(), json{{"morse", true}});
  check_answers(other, "Morse", "Morse");
  const auto there = actor_named(other, "Morse");
  REQUIRE(there);
  CHECK((*there)["system"] == host.where());
  CHECK((*there)["worker_pid"].is_null());  // not hosted on the other system
  auto last = wait_actor(lead, "Morse", "running", host.where());
  REQUIRE(last);
  CHECK((*last)["address"] == f.morse);
}

// ---------------------------------------------------------------- act 6

TEST_CASE("act 6: two versions fetched by a member, one unloaded on the leader", "[integration][convention][modes]") {
  test_system lead(lead_args());
  test_system m(lead, 0, member_args(lead, "morse"));
  REQUIRE(eventually([&] { return convention_up(lead, {&m}); }));
  const auto v1 = pack_encoders(lead, "1.0.0");
  const auto v2 = pack_encoders(lead, "1.1.0");
  REQUIRE(v1.id != v2.id);
  CHECK(lead.load(v1.file.string()) == v1.id);
  CHECK(lead.load(v2.file.string()) == v2.id);

  // Spawned through the member: placed by the leader on the member, which
  // fetches each version from the leader.
  const std::string old_morse = m.spawn({"Morse", "--package", v1.id, "--name", "morse-1"});
  const std::string new_morse = lead.spawn({"Morse", "--package", v2.id, "--name", "morse-2"});
  for (const auto* n : {"morse-1", "morse-2"}) {
    auto a = wait_actor(lead, n, "running", m.where());
    REQUIRE(a);
    check_answers(lead, n, "Morse");
    check_answers(m, n, "Morse");
  }
  CHECK(actor_field(m, "morse-1", "package_id") == v1.id);
  CHECK(actor_field(m, "morse-2", "package_id") == v2.id);
  const std::string mlog = m.log();
  CHECK_THAT(mlog, Catch::Contains("fetching package " + v1.id.substr(0, 12) + " from the leader"));
  CHECK_THAT(mlog, Catch::Contains("fetching package " + v2.id.substr(0, 12) + " from the leader"));
  CHECK_THAT(lead.log(), Catch::Contains("sending package encoders 1.0.0 to system " + std::to_string(m.port())));
  CHECK_THAT(lead.log(), Catch::Contains("sending package encoders 1.1.0 to system " + std::to_string(m.port())));

  // Unload v1 on the leader.
  {
    auto r = lead.run({"unload", v1.id});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.last_line() == v1.id);
  }
  // Through either system: one line, package not loaded.
  for (const auto* s : {&lead, &m}) {
    auto r = s->run({"spawn", "Morse", "--package", v1.id, "--name", "morse-again"});
    check_one_line_error(r);
    CHECK(r.exit_code == 5);
    CHECK_THAT(r.err, Catch::Contains("not loaded"));
  }
  // Its actor goes with it, on the member too; v2's still answers.
  CHECK(eventually([&] { return !actor_named(lead, "morse-1") && !actor_named(m, "morse-1"); }));
  check_answers(lead, "morse-2", "Morse");
  check_answers(m, new_morse, "Morse");
  check_one_line_error(lead.run({"ask", old_morse, "\"SOS\""}));
}

// ---------------------------------------------------------------- no fitting system

TEST_CASE("a spawn no system can host fails with the unmet requirement; with --wait it is placed later",
          "[integration][convention][modes]") {
  test_system lead(lead_args());
  test_system m(lead, 0, member_args(lead, "Caesar cipher"));
  REQUIRE(eventually([&] { return convention_up(lead, {&m}); }));
  lead.load(pack_encoders(lead, "1.0.0").file.string());

  // Each system's first unmet requirement, by port.
  const std::uint16_t low = std::min(lead.port(), m.port());
  const std::uint16_t high = std::max(lead.port(), m.port());
  const std::string unmet = "no system can host Morse: " + std::to_string(low) +
                            ": morse: requires true, system has none; " + std::to_string(high) +
                            ": morse: requires true, system has none";
  for (const auto* s : {&lead, &m}) {
    auto r = s->run({"spawn", "Morse", "--name", "Morse"});
    check_one_line_error(r);
    CHECK(r.err == "troupe: " + unmet + "\n");
  }
  CHECK_FALSE(actor_named(lead, "Morse"));  // nothing left behind: the name is free

  auto r = m.run({"spawn", "Morse", "--name", "Morse", "--wait"});
  INFO("spawn --wait: " << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string address = r.last_line();
  CHECK_THAT(r.err, Catch::StartsWith("pending: no system can host Morse"));
  {
    auto a = wait_actor(lead, "Morse", "pending", {}, 5s);
    REQUIRE(a);
    INFO(a->dump());
    CHECK((*a)["state"] == "pending");
    CHECK((*a)["address"] == address);
    CHECK_THAT((*a)["last_reason"].get<std::string>(), Catch::Contains("morse: requires true"));
  }
  chgcap(m, m.port(), {"+morse"});
  auto a = wait_actor(lead, "Morse", "running", m.where());
  REQUIRE(a);
  CHECK((*a)["address"] == address);
  check_answers(lead, "Morse", "Morse");
  check_answers(m, address, "Morse");
}

// ---------------------------------------------------------------- security

TEST_CASE("a system of another TROUPE_HOME is kept out of the convention", "[integration][convention]") {
  test_system lead(lead_args({"--caps", "morse"}));
  lead.load(pack_encoders(lead, "1.0.0").file.string());
  const std::string morse = lead.spawn({"Morse", "--name", "Morse"});
  const std::string leader_key_file =
      (lead.home() / "convention" / "trusted" / ("system-" + std::to_string(lead.port()) + ".pub")).string();
  REQUIRE(fs::exists(leader_key_file));

  SECTION("it trusts neither way: it does not even try to join") {
    test_system stranger(0, {"--leader", lead.where(), "--caps", "morse"});
    REQUIRE(eventually([&] {
      return stranger.log().find("not joining the convention: the leader at " + lead.where()) != std::string::npos;
    }));
    const json s = systems_of(lead);
    INFO(s.dump());
    CHECK_FALSE(member_on(s, stranger.port()));
    CHECK(s["systems"].size() == 1);
    CHECK(systems_of(stranger)["joined"] == false);
    CHECK(lead.log().find("joined: " + stranger.where()) == std::string::npos);
    check_one_line_error(stranger.run({"ask", "Morse", "\"SOS\""}));
  }
  SECTION("it trusts the leader, which does not trust it: the leader refuses it") {
    // The leader's key in the stranger's trusted set (read again at each
    // attempt to join): it connects, and the leader's ZAP handler refuses it.
    test_system stranger(0, {"--leader", lead.where(), "--caps", "morse"});
    fs::create_directories(stranger.home() / "convention" / "trusted");
    fs::copy_file(leader_key_file, stranger.home() / "convention" / "trusted" / "leader.pub");
    // Its discovery reaches the leader's public port, which refuses its key.
    REQUIRE(eventually([&] { return lead.log().find("refused a client connecting from") != std::string::npos; }));
    // Refused, never listed.
    const json s = systems_of(lead);
    INFO(s.dump());
    CHECK_FALSE(member_on(s, stranger.port()));
    CHECK(s["systems"].size() == 1);
    CHECK(systems_of(stranger)["joined"] == false);
    CHECK(lead.log().find("joined: " + stranger.where()) == std::string::npos);
    CHECK(stranger.log().find("joined the convention") == std::string::npos);
    check_one_line_error(stranger.run({"ask", "Morse", "\"SOS\""}));
  }
  // The leader serves on.
  CHECK(lead.ask("Morse", "SOS") == "... --- ...");
  CHECK(lead.ask(morse, "SOS") == "... --- ...");
  CHECK(systems_of(lead)["systems"].size() == 1);
}

TEST_CASE("a member without the package's key refuses it, and the actor is placed on one that has it",
          "[integration][convention][errors][modes]") {
  test_system lead(lead_args());
  test_system keyed(lead, 0, member_args(lead, "morse"));
  // Another TROUPE_HOME: trusted for the link both ways, but without the key
  // that signed the package.
  test_system keyless(0, member_args(lead, "morse"));
  fs::remove(keyless.home() / "keys" / "dev.pub");
  const auto trusted = lead.home() / "convention" / "trusted";
  fs::create_directories(keyless.home() / "convention" / "trusted");
  fs::copy_file(trusted / ("system-" + std::to_string(lead.port()) + ".pub"),
                keyless.home() / "convention" / "trusted" / "leader.pub");
  fs::copy_file(trusted / ("system-" + std::to_string(keyed.port()) + ".pub"),
                keyless.home() / "convention" / "trusted" / "keyed.pub");
  fs::copy_file(keyless.state_dir() / "curve" / "curve.pub", lead.home() / "convention" / "trusted" / "keyless.pub");
  REQUIRE(eventually([&] { return convention_up(lead, {&keyed, &keyless}); }));
  lead.load(pack_encoders(lead, "1.0.0").file.string());

  // Asked through the keyless member, which comes first (local first).
  const std::string morse = keyless.spawn({"Morse", "--name", "Morse"});
  auto placed = wait_actor(lead, "Morse", "running");
  REQUIRE(placed);
  CHECK((*placed)["system"] == keyed.where());
  CHECK((*placed)["address"] == morse);
  CHECK_THAT(keyless.log(), Catch::Contains("refused package from the leader"));
  CHECK_THAT(lead.log(), Catch::Contains("refused it"));
  check_answers(keyless, "Morse", "Morse");
  // Nothing of the package was kept where it was refused.
  CHECK(json::parse(keyless.run({"list", "--json"}).out).empty());
}

// ---------------------------------------------------------------- move

TEST_CASE("move: an actor re-created on another system or in a new worker keeps its address",
          "[integration][convention][modes]") {
  morse_placed f("morse", "morse");
  test_system& lead = f.lead;
  const std::string& morse = f.morse;
  const test_system& from = *f.host;
  const test_system& to = *f.other;

  // Through the leader, to the other fitting system.
  auto r = lead.run({"move", "Morse", "--to", std::to_string(to.port())});
  INFO("move: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == "moved " + morse + " to " + std::to_string(to.port()) + "\n");
  auto moved = wait_actor(lead, "Morse", "running", to.where());
  REQUIRE(moved);
  CHECK((*moved)["address"] == morse);
  CHECK((*moved)["restarts"] == 1);
  check_answers(lead, "Morse", "Morse");
  check_answers(from, morse, "Morse");
  check_answers(to, "Morse", "Morse");
  CHECK(eventually([&] { return actor_field(from, "Morse", "system") == to.where(); }));

  // A new worker on the same system, asked through a member.
  const json old_pid_field = actor_field(to, "Morse", "worker_pid");
  REQUIRE(old_pid_field.is_number());
  const int old_pid = old_pid_field.get<int>();
  r = from.run({"move", morse, "--new-worker"});
  INFO("move --new-worker: " << r.err);
  REQUIRE(r.exit_code == 0);
  std::optional<json> fresh;
  CHECK(eventually([&] {
    fresh = actor_named(to, "Morse");
    return fresh && (*fresh)["state"] == "running" && (*fresh)["worker_pid"].is_number() &&
           (*fresh)["worker_pid"].get<int>() != old_pid;
  }));
  REQUIRE(fresh);
  CHECK((*fresh)["address"] == morse);
  check_answers(lead, "Morse", "Morse");

  // Refusals, one line each.
  check_one_line_error(lead.run({"move", "Morse", "--to", std::to_string(lead.port())}));  // does not fit
  check_one_line_error(lead.run({"move", "Morse", "--to", std::to_string(to.port())}));    // already there
  check_one_line_error(lead.run({"move", "Nobody", "--to", std::to_string(from.port())}));
  check_answers(from, "Morse", "Morse");
}

// ---------------------------------------------------------------- failover under load

TEST_CASE("failover under load: asks during a SIGKILL either succeed or fail with one line, none hangs",
          "[integration][convention][modes]") {
  morse_placed f("morse", "morse");
  test_system& lead = f.lead;
  const std::string& morse = f.morse;
  test_system& host = *f.host;
  test_system& other = *f.other;

  struct outcome {
    run_result r;
    std::chrono::milliseconds took;
    std::string via;
    bool after_kill;
  };
  std::mutex mu;
  std::vector<outcome> outcomes;
  std::atomic<bool> stop{false};
  std::atomic<bool> killed{false};
  std::atomic<int> ok_after_kill{0};
  std::atomic<int> ok_total{0};
  constexpr auto ask_timeout = 2000ms;
  // Through the leader and through the surviving member in turn.
  std::thread client([&] {
    for (int i = 0; !stop; ++i) {
      const test_system& via = i % 2 == 0 ? lead : other;
      const bool after = killed;
      const auto t0 = steady::now();
      auto r = troupe::testing::run_process(
          troupe::testing::bin("troupe"),
          {"--system", via.where(), "ask", "Morse", "\"SOS\"", "--timeout", std::to_string(ask_timeout.count())},
          {{"TROUPE_HOME", via.home().string()}, {"TROUPE_SYSTEM", std::nullopt}}, {}, 15s);
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
      if (r.exit_code == 0) {
        ++ok_total;
        if (after) ++ok_after_kill;
      }
      std::lock_guard lock(mu);
      outcomes.push_back({std::move(r), took, via.where(), after});
    }
  });
  struct joiner {
    std::thread& t;
    std::atomic<bool>& stop;
    ~joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_client{client, stop};

  REQUIRE(eventually([&] { return ok_total >= 5; }));
  killed = true;
  host.kill_daemon();
  auto moved = wait_actor(lead, "Morse", "running", other.where(), 10s);
  REQUIRE(moved);
  CHECK((*moved)["address"] == morse);
  CHECK(eventually([&] { return ok_after_kill >= 5; }, 20s));
  stop = true;
  client.join();

  std::lock_guard lock(mu);
  int failures = 0;
  for (const auto& o : outcomes) {
    INFO("ask through " << o.via << (o.after_kill ? " after" : " before") << " the kill: exit " << o.r.exit_code
                        << " in " << o.took.count() << " ms, stdout: " << o.r.out << "stderr: " << o.r.err);
    CHECK(o.r.exit_code != -1);  // not killed by run_process: it returned by itself
    CHECK(o.took < ask_timeout + 4s);
    if (o.r.exit_code == 0) {
      CHECK(json::parse(o.r.out) == "... --- ...");
    } else {
      ++failures;
      check_one_line_error(o.r);
      WARN("failed ask through " << o.via << " in " << o.took.count() << " ms: exit " << o.r.exit_code << ", "
                                 << o.r.err);
    }
  }
  WARN(outcomes.size() << " asks, " << failures << " failed, " << ok_after_kill << " succeeded after the kill");
  CHECK(ok_after_kill >= 1);
}

// ---------------------------------------------------------------- the leader lost

TEST_CASE("members serve on while the leader is gone, and rejoin a leader that comes back with its packages",
          "[integration][convention]") {
  morse_placed f("morse", "morse");
  test_system& lead = f.lead;
  test_system& a = f.a;
  test_system& b = f.b;
  const std::string& morse = f.morse;
  test_system& host = *f.host;
  const test_system& other = *f.other;

  // Two actors without requirements, each on the member it was spawned through.
  lead.load(TROUPE_RELAY_V1_PKG);
  const std::string relay_a = a.spawn({"Relay", "--name", "relay-a"});
  const std::string relay_b = b.spawn({"Relay", "--name", "relay-b"});
  REQUIRE(wait_actor(lead, "relay-a", "running", a.where()));
  REQUIRE(wait_actor(lead, "relay-b", "running", b.where()));

  // The leader dies: its host goes on answering, and knows it is alone.
  lead.kill_daemon();
  check_answers(host, "Morse", "Morse");
  // Members reach each other directly: an actor on a asks one on b.
  CHECK(a.ask(relay_a, json{{"via", relay_b}, {"payload", {{"echo", "no leader"}}}}) ==
        json{{"answer", "no leader"}, {"from_version", "1.0.0"}});
  CHECK(eventually([&] { return !systems_of(host).value("joined", true); }));
  check_answers(host, morse, "Morse");

  // Started again on its port: it loads its packages again (it died without
  // stopping), the members rejoin and tell it where Morse runs.
  test_system again(lead, lead.port(), {});
  CHECK(eventually([&] { return convention_up(again, {&a, &b}); }));
  CHECK(eventually([&] { return actor_field(again, "Morse", "system") == host.where(); }));
  const json list = json::parse(again.run({"list", "--json"}).out);
  REQUIRE(list.size() == 2);  // encoders and relay
  for (const auto& p : list) CHECK(p["phase"] == "loaded");
  check_answers(again, "Morse", "Morse");

  // So a failover works as before the crash.
  host.kill_daemon();
  auto moved = wait_actor(again, "Morse", "running", other.where());
  REQUIRE(moved);
  CHECK((*moved)["address"] == morse);
  check_answers(again, "Morse", "Morse");
}

// ---------------------------------------------------------------- bad input between systems

namespace {

/// Sends [TRC1][command][body] (and a binary frame) on a DEALER, the body as
/// it is (malformed on purpose).
void send_raw(zmq::socket_t& s, const std::string& command, const std::string& body, const std::string& blob = {}) {
  const std::string_view sig(ipc::control_signature.data(), ipc::control_signature.size());
  if (blob.empty())
    ipc::send_parts(s, {sig, command, body});
  else
    ipc::send_parts(s, {sig, command, body, blob});
}

}  // namespace

TEST_CASE("a trusted peer's malformed messages are dropped, and the leader serves on unchanged",
          "[integration][convention][errors]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, "morse"));
  REQUIRE(eventually([&] { return convention_up(lead, {&a}); }));
  lead.load(pack_encoders(lead, "1.0.0").file.string());
  lead.spawn({"Morse", "--name", "Morse"});
  REQUIRE(wait_actor(lead, "Morse", "running", a.where()));

  // A key the convention trusts, as an operator would add one.
  auto keys = ipc::generate_curve_keypair();
  REQUIRE(keys);
  REQUIRE(ipc::trust_key(lead.home() / "convention" / "trusted", "intruder", keys->public_key));
  const json status = json::parse(lead.run({"status", "--json"}).out);
  zmq::context_t ctx(1);
  zmq::socket_t peer(ctx, zmq::socket_type::dealer);
  ipc::make_curve_client(peer, *keys, status["key"].get<std::string>());
  peer.set(zmq::sockopt::routing_id, "s0badbad1");
  peer.set(zmq::sockopt::linger, 0);
  peer.connect(status["peer"].get<std::string>());

  const std::string frame_garbage = "not a frame";
  send_raw(peer, "join", "{not json");
  send_raw(peer, "join", R"({"member": {"system": 12, "port": "x"}})");
  send_raw(peer, "heartbeat", R"({"actors": "many", "capabilities": [1, 2]})");
  send_raw(peer, "create", R"({"address": 7, "type": [], "package_id": null, "fresh_worker": "yes"})");
  send_raw(peer, "evict", R"({"address": "@00000000.0", "reason": 5})");
  send_raw(peer, "created", R"({"address": "@ffffffff.99"})");
  send_raw(peer, "gone", R"({"address": {"x": 1}})");
  send_raw(peer, "fetch", R"({"package_id": 42})");
  send_raw(peer, "call", R"({"call": "x", "command": "shutdown", "body": {}})");
  send_raw(peer, "call", R"({"call": 1, "command": "shutdown", "body": {}})");
  send_raw(peer, "result", R"({"call": 999, "reply": "no"})");
  send_raw(peer, "data", "{}", frame_garbage);
  send_raw(peer, "no-such-command", "{}");
  send_raw(peer, "located", R"({"address": "@12345678.16", "to": "zzzz"})");
  // A join that claims another system's id than its routing id.
  send_raw(peer, "join",
           R"({"member": {"system": "12345678", "host": "127.0.0.1", "port": 1, "peer": "tcp://x", "key": ")" +
               keys->public_key + R"(", "capabilities": {}}})");

  // Unchanged: still two systems, Morse where it was and answering; the
  // leader alive (its own status) and the log saying what it dropped.
  CHECK(eventually([&] { return lead.log().find("refused a join") != std::string::npos; }));
  check_answers(lead, "Morse", "Morse");
  check_answers(a, "Morse", "Morse");
  const json systems = systems_of(lead);
  CHECK(systems["systems"].size() == 2);
  CHECK(actor_field(lead, "Morse", "system") == a.where());
  CHECK((lead.daemon_pid() > 0 && ::kill(lead.daemon_pid(), 0) == 0));
  const std::string log = lead.log();
  CHECK(log.find("dropped") != std::string::npos);
}

TEST_CASE("whatever answers on the leader's address, a member does not crash and joins no one",
          "[integration][convention][errors]") {
  // A fake "leader": answers every request with a reply of the wrong shapes.
  zmq::context_t ctx(1);
  zmq::socket_t fake(ctx, zmq::socket_type::router);
  const auto fake_keys = ipc::generate_curve_keypair();
  REQUIRE(fake_keys);
  fake.set(zmq::sockopt::curve_server, true);  // as a leader's public port; no ZAP handler: all admitted
  fake.set(zmq::sockopt::curve_secretkey, fake_keys->secret_key);
  fake.set(zmq::sockopt::curve_publickey, fake_keys->public_key);
  fake.set(zmq::sockopt::linger, 0);
  fake.bind("tcp://127.0.0.1:0");
  const std::string endpoint = fake.get(zmq::sockopt::last_endpoint);
  const std::string fake_address = endpoint.substr(endpoint.find("//") + 2);
  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::thread server([&] {
    const std::vector<std::string> bodies = {R"({"ok": "yes"})", R"({"ok": true, "peer": 5, "key": []})",
                                             R"({"ok": true, "peer": "tcp://127.0.0.1:1", "key": "short"})", "[]"};
    zmq::pollitem_t item{static_cast<void*>(fake), 0, ZMQ_POLLIN, 0};
    while (!done) {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(50)) <= 0) continue;
      auto parts = ipc::recv_multipart(fake);
      if (parts.empty()) continue;
      const std::string& body = bodies[static_cast<std::size_t>(answered++) % bodies.size()];
      fake.send(zmq::buffer(parts[0].to_string()), zmq::send_flags::sndmore);
      send_raw(fake, "reply", body);
    }
  });
  struct joiner {
    std::thread& t;
    std::atomic<bool>& d;
    ~joiner() {
      d = true;
      t.join();
    }
  } join_server{server, done};

  test_system member({"--leader", fake_address, "--caps", "morse"});
  REQUIRE(ipc::trust_key(member.home() / "convention" / "trusted", "fake", fake_keys->public_key));
  CHECK(eventually([&] { return answered >= 8; }));
  // Alive, alone, answering.
  CHECK((member.daemon_pid() > 0 && ::kill(member.daemon_pid(), 0) == 0));
  const json s = systems_of(member);
  CHECK_FALSE(s.value("joined", true));
  CHECK(member.run({"status"}).exit_code == 0);
}

namespace {

/// A leader played by the test, for a member under test: it answers
/// discovery on a public ROUTER and speaks the peer protocol on a CurveZMQ
/// ROUTER, sending what the test says and waiting for what the member sends.
struct fake_leader {
  zmq::context_t ctx{1};
  zmq::socket_t pub{ctx, zmq::socket_type::router};
  zmq::socket_t peer{ctx, zmq::socket_type::router};
  ipc::curve_keypair keys;
  std::string id = "0fa4e001";
  std::string where;  // HOST:PORT of its public port, the member's --leader
  std::string peer_endpoint;
  std::string member_rid;  // the member's routing id on the peer socket
  std::string member_id;   // its system id, 8 hex digits
  json member_form;        // as it joined
  bool answering = true;   // answers discovery and sends `members` as heartbeats
  std::string last_blob;   // frame 4 of the last message from the member
  steady::time_point last_beat{};

  fake_leader() {
    auto k = ipc::generate_curve_keypair();
    REQUIRE(k);
    keys = *k;
    // A leader's public port is a CurveZMQ server with its key (no ZAP
    // handler here: every client gets through).
    pub.set(zmq::sockopt::curve_server, true);
    pub.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    pub.set(zmq::sockopt::curve_publickey, keys.public_key);
    pub.set(zmq::sockopt::linger, 0);
    pub.bind("tcp://127.0.0.1:0");
    const std::string ep = pub.get(zmq::sockopt::last_endpoint);
    where = ep.substr(ep.find("//") + 2);
    peer.set(zmq::sockopt::curve_server, true);
    peer.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    peer.set(zmq::sockopt::curve_publickey, keys.public_key);
    peer.set(zmq::sockopt::linger, 0);
    peer.set(zmq::sockopt::router_handover, 1);  // the member reconnects under its routing id
    peer.bind("tcp://127.0.0.1:0");
    peer_endpoint = peer.get(zmq::sockopt::last_endpoint);
  }

  /// Welcomes the member that joined: both as members, locations as given, nothing stale.
  void welcome(json locations = json::array()) {
    send("welcome", json{{"members", json::array({leader_form(), member_form})},
                         {"locations", std::move(locations)},
                         {"stale", json::array()}});
  }

  [[nodiscard]] json leader_form() const {
    return json{
        {"system", id},          {"host", "127.0.0.1"},    {"port", std::stoi(where.substr(where.rfind(':') + 1))},
        {"peer", peer_endpoint}, {"key", keys.public_key}, {"capabilities", json::object()},
        {"actors", 0},           {"leader", true},         {"state", "up"}};
  }

  void send(const std::string& command, json body, const std::string& blob = {}) {
    body["from"] = id;
    body["to"] = member_id;
    REQUIRE(ipc::send_control(peer, member_rid, command, body, blob));
  }

  /// Serves discovery (and heartbeats once welcomed) until the member sends
  /// `command` or the deadline passes; returns its body.
  std::optional<json> await(const std::string& command, std::chrono::milliseconds deadline = 10s) {
    const auto end = steady::now() + deadline;
    while (steady::now() < end) {
      zmq::pollitem_t items[] = {{static_cast<void*>(pub), 0, ZMQ_POLLIN, 0},
                                 {static_cast<void*>(peer), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, std::chrono::milliseconds(20));
      if (answering && !member_id.empty() && steady::now() - last_beat > 100ms) {
        last_beat = steady::now();
        send("members", json{{"members", json::array({leader_form(), member_form})}});
      }
      if (items[0].revents & ZMQ_POLLIN) {
        auto parts = ipc::recv_multipart(pub);
        if (answering && !parts.empty())
          ipc::send_control(pub, parts[0].to_string(), "reply",
                            json{{"ok", true},
                                 {"rid", "discover"},
                                 {"peer", peer_endpoint},
                                 {"key", keys.public_key},
                                 {"beacon", nullptr}});
      }
      if (items[1].revents & ZMQ_POLLIN) {
        auto parts = ipc::recv_multipart(peer);
        if (parts.size() < 2) continue;
        auto m = ipc::decode_control(parts, 1, ipc::default_max_json_depth, true);
        if (!m) continue;
        member_rid = parts[0].to_string();
        last_blob = m->blob;
        if (m->command == "join") {
          member_form = m->body["member"];
          member_id = member_form["system"].get<std::string>();
        }
        if (m->command == command) return m->body;
      }
    }
    return std::nullopt;
  }

  /// A location form (§5.4) for the member's table.
  [[nodiscard]] static json location(const std::string& address, const std::string& system, const std::string& state,
                                     const built_package& pkg, std::uint64_t epoch) {
    return json{{"address", address}, {"system", system}, {"port", system}, {"type", "Morse"}, {"package_id", pkg.id},
                {"name", ""},         {"state", state},   {"reason", ""},   {"moves", 0},      {"epoch", epoch}};
  }
};

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("a create waiting for a fetch when the leader is lost is fetched again at the rejoin, if still wanted",
          "[integration][convention]") {
  // Before: the member dropped it when it lost its leader, and a leader that
  // had not declared the member lost waited for `created` forever (moving).
  fake_leader leader;
  test_system member({"--leader", leader.where, "--caps", "morse", "--member-timeout", "500", "--heartbeat", "100"});
  REQUIRE(ipc::trust_key(member.home() / "convention" / "trusted", "fake-leader", leader.keys.public_key));
  REQUIRE(leader.await("join"));
  leader.welcome();
  const built_package pkg = pack_encoders(member, "1.0.0");
  const std::string morse = "@" + leader.id + ".1040";
  const std::string other = "@" + leader.id + ".1041";
  for (const auto& [address, epoch] : {std::pair{morse, 5}, std::pair{other, 6}})
    leader.send("create",
                json{{"address", address}, {"type", "Morse"}, {"package_id", pkg.id}, {"name", ""}, {"epoch", epoch}});
  auto fetch = leader.await("fetch");
  REQUIRE(fetch);
  CHECK((*fetch)["package_id"] == pkg.id);

  // The leader goes silent: the member loses it, the fetch unanswered.
  leader.answering = false;
  REQUIRE(eventually([&] {
    (void)leader.await("none", 50ms);
    return member.log().find("stopped answering") != std::string::npos;
  }));
  // It comes back still waiting for Morse there at epoch 5 (the other actor
  // placed elsewhere meanwhile): the member fetches again for Morse alone.
  leader.answering = true;
  auto join = leader.await("join");
  REQUIRE(join);
  CHECK((*join)["hosted"].empty());
  leader.send("welcome",
              json{{"members", json::array({leader.leader_form(), leader.member_form})},
                   {"locations", json::array({fake_leader::location(morse, leader.member_id, "moving", pkg, 5),
                                              fake_leader::location(other, leader.id, "running", pkg, 7)})},
                   {"stale", json::array()}});
  fetch = leader.await("fetch", 5s);
  INFO("member's log:\n" << member.log());
  REQUIRE(fetch);
  CHECK((*fetch)["package_id"] == pkg.id);
  CHECK_THAT(member.log(), Catch::Contains("fetching package " + pkg.id.substr(0, 12) + " from the leader again"));
  leader.send("package", json{{"package_id", pkg.id}}, read_bytes(pkg.file));
  auto created = leader.await("created");
  REQUIRE(created);
  CHECK((*created)["address"] == morse);
  CHECK((*created)["epoch"] == 5);
  // The other one was not created: nothing runs at its address here.
  CHECK_FALSE(leader.await("created", 500ms));
  int here = 0;
  for (const auto& a : member.actors())
    if (a["worker_pid"].is_number()) ++here;
  CHECK(here == 1);
}

TEST_CASE("an evict of a copy left over leaves the live instance's location as it is", "[integration][convention]") {
  // The leader answers a stale `created` with evict "a copy runs elsewhere".
  // Before: the receiving system marked its own entry for the address
  // `moving`, and held requests for the live instance from then on (on the
  // leader, its own table was left `moving`, nothing under way).
  fake_leader leader;
  test_system member({"--leader", leader.where, "--caps", "morse"});
  REQUIRE(ipc::trust_key(member.home() / "convention" / "trusted", "fake-leader", leader.keys.public_key));
  REQUIRE(leader.await("join"));
  const built_package pkg = pack_encoders(member, "1.0.0");
  const std::string morse = "@" + leader.id + ".1040";
  leader.welcome(json::array({fake_leader::location(morse, leader.id, "running", pkg, 7)}));
  REQUIRE(eventually([&] {
    (void)leader.await("none", 20ms);
    return member.run({"actors", "--json"}).out.find(morse) != std::string::npos;
  }));
  leader.send("evict", json{{"address", morse}, {"reason", "a copy runs elsewhere"}});
  REQUIRE(leader.await("evicted"));
  json state;
  for (const auto& a : member.actors())
    if (a["address"] == morse) state = a["state"];
  CHECK(state == "running");
}

TEST_CASE("records for an actor a member just evicted are held for its next place, not bounced",
          "[integration][convention]") {
  // Before: a record that reached the member after the actor stopped for a
  // move, while the member's entry still named itself, bounced `no actor at
  // @X (stopped)` (an ask failed) where one sent from there would be held.
  fake_leader leader;
  test_system member({"--leader", leader.where, "--caps", "morse"});
  REQUIRE(ipc::trust_key(member.home() / "convention" / "trusted", "fake-leader", leader.keys.public_key));
  REQUIRE(leader.await("join"));
  leader.welcome();
  const built_package pkg = pack_encoders(member, "1.0.0");
  const std::string morse = "@" + leader.id + ".1040";
  leader.send("located", fake_leader::location(morse, leader.member_id, "moving", pkg, 5));
  leader.send("create", json{{"address", morse}, {"type", "Morse"}, {"package_id", pkg.id}, {"epoch", 5}});
  REQUIRE(leader.await("fetch"));
  leader.send("package", json{{"package_id", pkg.id}}, read_bytes(pkg.file));
  REQUIRE(leader.await("created"));
  leader.send("located", fake_leader::location(morse, leader.member_id, "running", pkg, 5));
  leader.send("evict", json{{"address", morse}, {"reason", "moved by the operator"}});
  REQUIRE(leader.await("evicted"));

  // An ask for it from an actor of the leader's system, as `data`.
  const auto to = troupe::address::parse(morse);
  const auto from = troupe::address::parse("@" + leader.id + ".2000");
  REQUIRE((to && from));
  std::string frame;
  ipc::begin_batch(frame);
  ipc::append_record(frame, ipc::record_view{ipc::record_kind::ask, 0, *to, *from, 9, 0, "json", "\"SOS\""});
  leader.send("data", json{{"channel", "77"}, {"seq", 1}, {"first", 1}}, frame);
  const auto kinds = [](const std::string& blob) {
    json out = json::array();
    (void)ipc::decode_batch(blob, [&](const ipc::record_view& r) { out.push_back(static_cast<int>(r.kind)); });
    return out;
  };
  // Held: nothing comes back (an ask_failed would)...
  auto back = leader.await("data", 1s);
  if (back) FAIL("the member sent back records of kinds " << kinds(leader.last_blob).dump());
  // ...and sent on once the actor runs on the leader's system.
  leader.send("located", fake_leader::location(morse, leader.id, "running", pkg, 6));
  back = leader.await("data", 5s);
  REQUIRE(back);
  CHECK(kinds(leader.last_blob) == json::array({static_cast<int>(ipc::record_kind::ask)}));
}

TEST_CASE("records a member held for an actor its rejoined leader does not know come back as bounces",
          "[integration][convention]") {
  // Before: dropped without a word at the welcome, so an ask among them
  // waited for its timeout; the requests held with them failed at once.
  fake_leader leader;
  test_system member({"--leader", leader.where, "--member-timeout", "500", "--heartbeat", "100"});
  REQUIRE(ipc::trust_key(member.home() / "convention" / "trusted", "fake-leader", leader.keys.public_key));
  REQUIRE(leader.await("join"));
  const built_package pkg = pack_encoders(member, "1.0.0");
  const std::string morse = "@" + leader.id + ".1040";
  leader.welcome(json::array({fake_leader::location(morse, leader.id, "moving", pkg, 5)}));
  // An ask for it, held by the member while it moves.
  const auto to = troupe::address::parse(morse);
  const auto from = troupe::address::parse("@" + leader.id + ".2000");
  REQUIRE((to && from));
  std::string frame;
  ipc::begin_batch(frame);
  ipc::append_record(frame, ipc::record_view{ipc::record_kind::ask, 0, *to, *from, 9, 0, "json", "\"SOS\""});
  leader.send("data", json{{"channel", "77"}, {"seq", 1}, {"first", 1}}, frame);
  REQUIRE(leader.await("data_ack"));
  // The leader goes away and comes back without that actor.
  leader.answering = false;
  REQUIRE(eventually([&] {
    (void)leader.await("none", 50ms);
    return member.log().find("stopped answering") != std::string::npos;
  }));
  leader.answering = true;
  REQUIRE(leader.await("join"));
  leader.welcome();
  auto back = leader.await("data", 5s);
  REQUIRE(back);
  std::vector<std::pair<int, std::string>> records;
  (void)ipc::decode_batch(leader.last_blob, [&](const ipc::record_view& r) {
    records.emplace_back(static_cast<int>(r.kind), std::string(r.payload));
  });
  REQUIRE(records.size() == 1);
  CHECK(records[0].first == static_cast<int>(ipc::record_kind::ask_failed));
  CHECK_THAT(records[0].second, Catch::Contains("unknown to the convention's leader"));
}

TEST_CASE("a create that fails for its package is refused with the create's epoch", "[integration][convention]") {
  // Before: without `epoch`, so the leader could not tell a refusal of an
  // older placement from one of the placement its table holds.
  fake_leader leader;
  test_system member({"--leader", leader.where, "--caps", "morse"});
  REQUIRE(ipc::trust_key(member.home() / "convention" / "trusted", "fake-leader", leader.keys.public_key));
  REQUIRE(leader.await("join"));
  leader.welcome();
  const std::string package_id(64, 'a');
  const std::string morse = "@" + leader.id + ".1040";
  leader.send("create", json{{"address", morse}, {"type", "Morse"}, {"package_id", package_id}, {"epoch", 42}});
  REQUIRE(leader.await("fetch"));
  leader.send("fetch_failed", json{{"package_id", package_id}, {"reason", "not here"}});
  auto failed = leader.await("create_failed");
  REQUIRE(failed);
  CHECK((*failed)["address"] == morse);
  CHECK((*failed)["epoch"] == 42);
  CHECK_THAT((*failed)["reason"].get<std::string>(), Catch::Contains("not here"));
}

TEST_CASE("wrong arguments of the convention's commands are usage errors that change nothing",
          "[integration][convention][errors]") {
  test_system lead(lead_args({"--caps", "morse"}));
  auto usage = [&](std::vector<std::string> args) {
    auto r = lead.run(args);
    INFO("troupe " << args[0] << ": " << r.err);
    CHECK(r.exit_code == 2);  // the reason, then the synopsis
    CHECK_THAT(r.err, Catch::StartsWith("troupe " + args[0] + ": "));
    CHECK(r.out.empty());
  };
  usage({"chgcap", std::to_string(lead.port()), "*", "morse"});
  usage({"chgcap", std::to_string(lead.port()), "morse"});
  usage({"chgcap", "not-a-port", "+morse"});
  usage({"chgcap", std::to_string(lead.port())});
  usage({"move", "Morse"});
  usage({"move", "Morse", "--to", "70000"});
  usage({"start", "--port", "1", "--leader", "nowhere"});
  usage({"start", "--port", "1", "--heartbeat", "5"});
  usage({"start", "--port", "1", "--heartbeat", "300", "--member-timeout", "400"});
  // Refused by the system, one line each: a capability it lacks, a bad value.
  check_one_line_error(lead.run({"chgcap", std::to_string(lead.port()), "-", "gpu"}));
  check_one_line_error(lead.run({"chgcap", std::to_string(lead.port()), "gpu=nan"}));
  check_one_line_error(lead.run({"move", "Nobody", "--new-worker"}));
  const json s = systems_of(lead);
  REQUIRE(s["systems"].size() == 1);
  CHECK(s["systems"][0]["capabilities"] == json{{"morse", true}});
}

// ---------------------------------------------------------------- regressions
//
// The two cases below were bugs of the convention code as of cccd241, found
// by these tests and fixed since.

// A member stopped in order rejoined the convention while it shut down.
// `troupe stop` makes it send "leaving" (the leader marks it down), then its
// actors stop and it reports each as "gone"/"evicted"; the leader answers a
// down member with "rejoin", and the stopping member sends "join" again
// (handle_peer "rejoin" -> send_join has no stopping_ check). The leader logs
// "system joined: 127.0.0.1:P" after "system P stopped: placing its actors
// elsewhere", lists the stopped system as up, places its pending actors on it
// (restarts +1, state moving), and only marks it down again a member timeout
// later ("system P stopped answering heartbeats"). The stopping member even
// starts a worker for such an actor ("started worker w4 ... runs encoders"
// after "shutting down"), which holds its stop up for the 5 s grace ("worker
// w4 did not stop in time: SIGKILL"): `troupe stop` then takes 5 s longer.
// Racy: seen in most runs of the whole file when the member hosts a dozen
// actors, and at times in the other cases' clean-up (5 s longer).
TEST_CASE("a member stopped in order stays down: it does not rejoin while it shuts down", "[integration][convention]") {
  const std::vector<std::string> timing{"--heartbeat", "50", "--member-timeout", "400"};
  test_system lead(lead_args(timing));
  auto args = member_args(lead, "morse");
  args.insert(args.end(), timing.begin(), timing.end());
  test_system m(lead, 0, args);
  REQUIRE(eventually([&] { return convention_up(lead, {&m}); }));
  lead.load(pack_encoders(lead, "1.0.0").file.string());
  std::vector<std::string> names;
  for (int i = 1; i <= 12; ++i) names.push_back("morse-" + std::to_string(i));
  std::map<std::string, std::string> addresses;
  for (const auto& n : names) addresses[n] = lead.spawn({"Morse", "--name", n});
  for (const auto& n : names) REQUIRE(wait_actor(lead, n, "running", m.where()));

  const auto r = m.stop();
  REQUIRE(r.exit_code == 0);
  // Long enough after the stop for a rejoined member to have expired again.
  json last;
  REQUIRE(eventually([&] {
    last = systems_of(lead);
    auto e = member_on(last, m.port());
    return e && (*e)["state"] == "down" && (*e)["last_heard_ms"].get<long>() >= 1000;
  }));
  const std::string log = lead.log();
  const std::string port = std::to_string(m.port());
  const auto left = log.find("system " + port + " stopped: placing its actors elsewhere");
  REQUIRE(left != std::string::npos);
  // The leader's lines about the member after it left.
  std::string about;
  {
    std::istringstream in(log.substr(left));
    for (std::string line; std::getline(in, line);)
      if (line.find(port) != std::string::npos && line.find("pending:") == std::string::npos) about += line + "\n";
  }
  INFO("leader log after the stop, lines naming " << port << ":\n" << about);
  CHECK(about.find("joined: " + m.where()) == std::string::npos);
  CHECK(about.find("system " + port + " stopped answering heartbeats") == std::string::npos);
  std::string recreated;  // actors the leader placed again although no system fits
  std::string lost;       // actors the convention no longer lists at all
  for (const auto& n : names) {
    auto a = actor_named(lead, n);
    if (!a) {
      lost += n + " " + addresses[n] + " ";
      continue;
    }
    CHECK((*a)["state"] == "pending");
    if ((*a)["restarts"] != 0) recreated += n + " (restarts " + (*a)["restarts"].dump() + ") ";
  }
  CHECK(recreated.empty());
  // Nor does the stopping member start a worker for an actor placed on it
  // (which then holds its stop up for the 5 s grace and is SIGKILLed).
  {
    const std::string mlog = m.log();
    const auto down = mlog.find("shutting down");
    REQUIRE(down != std::string::npos);
    INFO("member log from its shutdown:\n" << mlog.substr(down));
    CHECK(mlog.find("started worker", down) == std::string::npos);
    CHECK(mlog.find("did not stop in time", down) == std::string::npos);
  }
  if (!lost.empty()) {
    std::string trail;  // what both logs say about the lost actors
    for (const auto* s : {&lead, &m}) {
      std::istringstream in(s->log());
      for (std::string line; std::getline(in, line);)
        for (const auto& [n, a] : addresses)
          if (lost.find(a + " ") != std::string::npos && line.find(a + "]") != std::string::npos) {
            trail += line + "\n";
            break;
          }
    }
    INFO("log lines of the lost actors:\n" << trail);
    CHECK(lost.empty());
  }
}

// `troupe move NAME --to PORT` picked the first member listed on PORT by
// system id (membership::find_port), whether up or down. A system restarted
// on a port has a new random id and its predecessor stays listed, down; when
// the old id sorts first, the move fails with "troupe: system PORT is down"
// although `systems` shows PORT up.
TEST_CASE("move --to the port of a system that was restarted reaches the running one",
          "[integration][convention][modes]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, "morse"));
  std::optional<test_system> b;
  b.emplace(lead, 0, member_args(lead, "morse"));
  const std::uint16_t b_port = b->port();
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &*b}); }));
  lead.load(pack_encoders(lead, "1.0.0").file.string());
  const std::string morse = lead.spawn({"Morse", "--name", "Morse"});
  // Spawned through the leader, which fits nothing: the least loaded, a or b.
  REQUIRE(wait_actor(lead, "Morse", "running"));
  if (actor_field(lead, "Morse", "system") == host_of(b_port)) {
    REQUIRE(lead.run({"move", "Morse", "--to", std::to_string(a.port())}).exit_code == 0);
    REQUIRE(wait_actor(lead, "Morse", "running", a.where()));
  }

  // Restarted twice: each time with a new system id, which replaces the old,
  // down entry of its port instead of lingering beside it.
  for (int restart = 0; restart < 2; ++restart) {
    REQUIRE(b->stop().exit_code == 0);
    b.reset();
    REQUIRE(eventually([&] { return !is_up(systems_of(lead), b_port); }));
    b.emplace(lead, b_port, member_args(lead, "morse"));
    REQUIRE(eventually([&] { return convention_up(lead, {&a, &*b}); }));
  }
  const json s = systems_of(lead);
  INFO("systems: " << s.dump());
  int entries = 0;
  for (const auto& e : s.value("systems", json::array()))
    if (e["port"] == b_port) {
      ++entries;
      CHECK(e["state"] == "up");
    }
  CHECK(entries == 1);
  auto r = lead.run({"move", "Morse", "--to", std::to_string(b_port)});
  INFO("move: exit " << r.exit_code << ", " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  if (r.exit_code == 0) {
    auto moved = wait_actor(lead, "Morse", "running", host_of(b_port));
    REQUIRE(moved);
    CHECK((*moved)["address"] == morse);
  }
}

TEST_CASE("two concurrent 45 MB asks between systems change no membership", "[integration][convention][modes]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, ""));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_RELAY_V1_PKG);
  lead.spawn({"Relay", "--package", pkg, "--name", "big"});
  const auto placed = wait_actor(lead, "big", "running");
  REQUIRE(placed);
  // Asked through the two systems that do not host it: both cross systems.
  std::vector<const test_system*> via;
  for (const auto* s : {&lead, &a, &b})
    if (s->where() != (*placed)["system"]) via.push_back(s);
  REQUIRE(via.size() == 2);
  const std::string bulk(45u << 20, 'x');
  std::atomic<int> ok{0};
  std::vector<std::thread> askers;
  for (const auto* through : via)
    askers.emplace_back([&, through] {
      auto c = troupe::client::connect(through->where(), through->connect_options());
      if (!c) return;
      auto r = c->call("ask", json{{"target", "big"}, {"payload", json{{"echo", bulk}}}, {"timeout_ms", 30000}}, 40s);
      if (r && (*r)["payload"].is_string() && (*r)["payload"].get_ref<const std::string&>().size() == bulk.size())
        ++ok;
      else
        WARN("through " << through->where() << ": " << (r ? r->dump().substr(0, 200) : r.err().message));
    });
  for (auto& t : askers) t.join();
  CHECK(ok == 2);
  for (const auto* s : {&lead, &a, &b}) {
    const auto log = s->log();
    INFO(log);
    for (const char* change :
         {"lost its lease", "stopped answering heartbeats", "fenced", "rejoin", "leader is unreachable"})
      CHECK(log.find(change) == std::string::npos);
  }
  CHECK(convention_up(lead, {&a, &b}));
}

TEST_CASE("tells between actors of two systems arrive once and in order, across a pause of the receiver",
          "[integration][convention][modes]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, ""));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_RELAY_V1_PKG);
  lead.spawn({"Relay", "--package", pkg, "--name", "src"});
  lead.spawn({"Relay", "--package", pkg, "--name", "dst"});
  auto src = wait_actor(lead, "src", "running");
  auto dst = wait_actor(lead, "dst", "running");
  REQUIRE((src && dst));
  // On two members, so every tell crosses systems.
  const auto port_of = [](const json& actor) { return actor["system"].get<std::string>(); };
  if (port_of(*src) != a.where()) REQUIRE(lead.run({"move", "src", "--to", std::to_string(a.port())}).exit_code == 0);
  if (port_of(*dst) != b.where()) REQUIRE(lead.run({"move", "dst", "--to", std::to_string(b.port())}).exit_code == 0);
  REQUIRE(eventually([&] {
    auto s = wait_actor(lead, "src", "running");
    auto d = wait_actor(lead, "dst", "running");
    return s && d && port_of(*s) == a.where() && port_of(*d) == b.where();
  }));

  constexpr int count = 20000;
  std::thread burst([&] {
    lead.run({"ask", "src", json{{"burst", count}, {"to", "dst"}}.dump(), "--timeout", "30000"});
  });
  std::this_thread::sleep_for(100ms);  // mid-burst: the pause, not a wait for an event
  b.signal_daemon(SIGSTOP);
  // Shorter than a third of the member timeout: no failover (on etcd, a
  // lease renewed every third of its TTL outlives it).
  std::this_thread::sleep_for(200ms);
  b.signal_daemon(SIGCONT);
  burst.join();
  json counted;
  CHECK(eventually(
      [&] {
        counted = lead.ask("dst", json{{"tell_count", true}});
        return counted["count"] == count;
      },
      20s));
  INFO(counted.dump());
  CHECK(counted["count"] == count);
  CHECK(counted["out_of_order"] == 0);
  std::this_thread::sleep_for(300ms);  // anything sent twice would have arrived by now
  CHECK(lead.ask("dst", json{{"tell_count", true}})["count"] == count);
}

TEST_CASE("capabilities changed by chgcap outlive a restart with the same --caps, not one with other --caps",
          "[integration][convention]") {
  test_system home;  // holds the TROUPE_HOME; the system under test shares it
  const auto caps_of = [](const test_system& s) {
    return json::parse(s.run({"status", "--json"}).out)["capabilities"];
  };
  std::uint16_t port = 0;
  {
    test_system s(home, 0, {"--caps", "gpu"});
    port = s.port();
    REQUIRE(s.run({"chgcap", std::to_string(port), "+", "morse"}).exit_code == 0);
    REQUIRE(s.run({"chgcap", std::to_string(port), "-", "gpu"}).exit_code == 0);
    CHECK(caps_of(s) == json{{"morse", true}});
  }
  {
    test_system s(home, port, {"--caps", "gpu"});
    CHECK(caps_of(s) == json{{"morse", true}});
    CHECK(s.log().find("capabilities as chgcap left them") != std::string::npos);
  }
  {
    test_system s(home, port, {"--caps", "fpga"});  // the operator changed them: theirs
    CHECK(caps_of(s) == json{{"fpga", true}});
  }
  {
    test_system s(home, port, {"--caps", "gpu"});  // and the old changes are gone for good
    CHECK(caps_of(s) == json{{"gpu", true}});
  }
}

// ---------------------------------------------------------------- direct links (PROTOCOL §5.13)

namespace {

/// The "data" part of s's status: relayed, linked, fallbacks, hosted.
json data_status(const test_system& s) {
  auto r = s.run({"status", "--json"});
  json j = json::parse(r.out, nullptr, false);
  return j.is_object() ? j.value("data", json::object()) : json::object();
}

/// Spawns type of pkg through lead as name and moves it to system to (unless there already).
std::string place_on(test_system& lead, const std::string& type, const std::string& pkg, const std::string& name,
                     const test_system& to) {
  lead.spawn({type, "--package", pkg, "--name", name});
  auto a = wait_actor(lead, name, "running");
  REQUIRE(a);
  if ((*a)["system"] != to.where()) REQUIRE(lead.run({"move", name, "--to", std::to_string(to.port())}).exit_code == 0);
  a = wait_actor(lead, name, "running", to.where());
  REQUIRE(a);
  return (*a)["address"].get<std::string>();
}

/// The numbers a Loner logged, whichever system answers.
json seen_by(const test_system& via, const std::string& loner) { return via.ask(loner, json{{"seen", true}}); }

}  // namespace

TEST_CASE("tells and asks between workers of two systems go worker to worker, not through the supervisors",
          "[integration][convention][modes][direct]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, ""));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_RELAY_V1_PKG);
  place_on(lead, "Relay", pkg, "src", a);
  place_on(lead, "Relay", pkg, "dst", b);

  constexpr int count = 5000;
  REQUIRE(lead.run({"ask", "src", json{{"burst", count}, {"to", "dst"}}.dump(), "--timeout", "30000"}).exit_code == 0);
  json counted;
  CHECK(eventually(
      [&] {
        counted = lead.ask("dst", json{{"tell_count", true}});
        return counted["count"] == count;
      },
      20s));
  INFO(counted.dump());
  CHECK(counted["out_of_order"] == 0);
  const json da = data_status(a), db = data_status(b);
  INFO("a: " << da.dump() << " b: " << db.dump());
  CHECK(da.value("linked", 0) >= 1);  // src's worker got dst's tcp inbox
  CHECK(db.value("hosted", 0) >= 1);
  CHECK(da.value("relayed", -1) == 0);  // nothing went through a's gateway
  CHECK(db.value("relayed", -1) == 0);
}

TEST_CASE("a receiving worker SIGKILLed mid-stream across systems loses nothing; the tell in hand is poison",
          "[integration][convention][modes][direct]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, ""));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_SUPERVISION_PKG);
  const std::string watcher = place_on(lead, "Watcher", pkg, "watcher", a);
  const std::string loner = place_on(lead, "Loner", pkg, "loner", b);
  const int pid = lead.ask(loner, json{{"pid", true}}).get<int>();
  REQUIRE(pid > 0);

  const json block{{"block_ms", 20000}};
  REQUIRE(lead.ask(watcher, json{{"tell", loner}, {"payload", block}}) == "told");
  constexpr int count = 40;
  for (int i = 0; i < count; ++i)
    REQUIRE(lead.ask(watcher, json{{"tell", loner}, {"payload", {{"log", i}}}}) == "told");
  const auto blocking = a.home() / ("blocking-" + loner.substr(1));
  REQUIRE(eventually([&] { return fs::exists(blocking); }));
  CHECK(data_status(a).value("linked", 0) >= 1);
  troupe::testing::kill_process(pid);

  json seen;
  CHECK(eventually(
      [&] {
        auto r = lead.run({"ask", loner, json{{"seen", true}}.dump(), "--timeout", "2000"});
        seen = json::parse(r.out, nullptr, false);
        return seen.is_array() && seen.size() >= count;
      },
      20s));
  INFO(seen.dump());
  std::vector<int> got, want;
  for (const auto& n : seen) got.push_back(n.get<int>());
  for (int i = 0; i < count; ++i) want.push_back(i);
  CHECK(got == want);  // every one, in order, once
  CHECK(lead.ask(loner, json{{"pid", true}}).get<int>() != pid);
  json notices;
  CHECK(eventually([&] {
    notices = lead.ask(watcher, json{{"notices", true}});
    return !notices.empty();
  }));
  INFO(notices.dump());
  REQUIRE(notices.size() == 1);
  CHECK(notices[0]["event"] == "poison");
  CHECK(notices[0]["payload"] == block);
  CHECK_THAT(notices[0].value("reason", std::string()), Catch::Contains("killed by SIGKILL"));
}

TEST_CASE("an actor moved to another system mid-stream gets every tell sent over a direct link",
          "[integration][convention][direct]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, ""));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_SUPERVISION_PKG);
  const std::string watcher = place_on(lead, "Watcher", pkg, "watcher", a);
  const std::string loner = place_on(lead, "Loner", pkg, "loner", b);
  // Busy a moment, so that what follows waits in its worker when it moves.
  REQUIRE(lead.ask(watcher, json{{"tell", loner}, {"payload", {{"block_ms", 500}}}}) == "told");
  constexpr int count = 60;
  for (int i = 0; i < count / 2; ++i)
    REQUIRE(lead.ask(watcher, json{{"tell", loner}, {"payload", {{"log", i}}}}) == "told");
  background_run move(lead, {"move", "loner", "--to", std::to_string(lead.port())});
  for (int i = count / 2; i < count; ++i)
    REQUIRE(lead.ask(watcher, json{{"tell", loner}, {"payload", {{"log", i}}}}) == "told");
  CHECK(move.get().exit_code == 0);
  json seen;
  CHECK(eventually(
      [&] {
        auto r = lead.run({"ask", loner, json{{"seen", true}}.dump(), "--timeout", "2000"});
        seen = json::parse(r.out, nullptr, false);
        return seen.is_array() && seen.size() >= count;
      },
      20s));
  INFO(seen.dump());
  std::set<int> got;
  for (const auto& n : seen) got.insert(n.get<int>());
  CHECK(got.size() == count);  // none lost
  const json notices = lead.ask(watcher, json{{"notices", true}});
  INFO(notices.dump());
  CHECK(notices.empty());  // nothing bounced
}

TEST_CASE("a member system SIGKILLed: the actor placed again gets the tells sent to it since",
          "[integration][convention][direct]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, ""));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_SUPERVISION_PKG);
  const std::string watcher = place_on(lead, "Watcher", pkg, "watcher", a);
  const std::string loner = place_on(lead, "Loner", pkg, "loner", b);
  for (int i = 0; i < 10; ++i) REQUIRE(lead.ask(watcher, json{{"tell", loner}, {"payload", {{"log", i}}}}) == "told");
  REQUIRE(eventually([&] { return seen_by(lead, loner).size() == 10; }));
  CHECK(data_status(a).value("linked", 0) >= 1);
  b.kill_daemon();
  for (int i = 10; i < 20; ++i) REQUIRE(lead.ask(watcher, json{{"tell", loner}, {"payload", {{"log", i}}}}) == "told");
  REQUIRE(wait_actor(lead, "loner", "running", {}, 15s));
  json seen;
  CHECK(eventually(
      [&] {
        auto r = lead.run({"ask", loner, json{{"seen", true}}.dump(), "--timeout", "2000"});
        seen = json::parse(r.out, nullptr, false);
        return seen.is_array() && seen.size() >= 20;
      },
      20s));
  INFO(seen.dump());
  std::set<int> got;
  for (const auto& n : seen) got.insert(n.get<int>());
  CHECK(got.size() == 20);
}

TEST_CASE("with --direct-links off, records between systems go through the supervisors",
          "[integration][convention][direct]") {
  test_system lead(lead_args({"--direct-links", "off"}));
  auto args = member_args(lead, "");
  args.insert(args.end(), {"--direct-links", "off"});
  test_system a(lead, 0, args);
  test_system b(lead, 0, args);
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_RELAY_V1_PKG);
  place_on(lead, "Relay", pkg, "src", a);
  place_on(lead, "Relay", pkg, "dst", b);
  REQUIRE(lead.run({"ask", "src", json{{"burst", 100}, {"to", "dst"}}.dump(), "--timeout", "30000"}).exit_code == 0);
  CHECK(eventually([&] { return lead.ask("dst", json{{"tell_count", true}})["count"] == 100; }));
  CHECK(data_status(a).value("relayed", 0) >= 100);
  CHECK(data_status(a).value("linked", -1) == 0);
}

TEST_CASE("a sending worker SIGKILLed: the other system forgets its links, and its successor links anew",
          "[integration][convention][direct]") {
  test_system lead(lead_args());
  test_system a(lead, 0, member_args(lead, ""));
  test_system b(lead, 0, member_args(lead, ""));
  REQUIRE(eventually([&] { return convention_up(lead, {&a, &b}); }));
  const std::string pkg = lead.load(TROUPE_RELAY_V1_PKG);
  place_on(lead, "Relay", pkg, "src", a);
  place_on(lead, "Relay", pkg, "dst", b);
  // An ask across and back: dst's worker links to src's worker for the answer.
  CHECK(lead.ask("src", json{{"via", "dst"}, {"payload", {{"echo", 1}}}})["answer"] == 1);
  REQUIRE(lead.run({"ask", "src", json{{"burst", 1000}, {"to", "dst"}}.dump()}).exit_code == 0);
  REQUIRE(eventually([&] { return lead.ask("dst", json{{"tell_count", true}})["count"] == 1000; }));
  const auto linked_before = data_status(b).value("hosted", 0);
  CHECK(linked_before >= 1);

  (void)lead.run({"ask", "src", json{{"crash", "segv"}}.dump(), "--timeout", "2000"});  // its worker dies
  REQUIRE(wait_actor(lead, "src", "running", a.where()));
  // The answer comes back to the new process: dst's worker dropped its route
  // to the dead one's tcp inbox when b learnt of the death.
  json answer;
  CHECK(eventually([&] {
    auto r = lead.run({"ask", "src", json{{"via", "dst"}, {"payload", {{"echo", 2}}}}.dump(), "--timeout", "3000"});
    answer = json::parse(r.out, nullptr, false);
    return answer.is_object() && answer.value("answer", json()) == 2;
  }));
  INFO(answer.dump());
  REQUIRE(lead.run({"ask", "src", json{{"burst", 1000}, {"to", "dst"}}.dump()}).exit_code == 0);
  CHECK(eventually([&] { return lead.ask("dst", json{{"tell_count", true}})["count"] == 2000; }));
  CHECK(data_status(b).value("hosted", 0) > linked_before);  // linked again, to the new process
  CHECK(data_status(a).value("relayed", -1) == 0);
}
