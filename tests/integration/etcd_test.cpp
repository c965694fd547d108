// Conventions on etcd under faults, with a real etcd (tests/etcd_cluster.hpp)
// and real systems: a member paused past its lease (fencing), the elected
// leader killed or stopped and started again, etcd members killed, and bulk
// data between systems. Runs in its own pid namespace; skipped (exit 77)
// where etcd is not installed.
#include "tests/etcd_cluster.hpp"
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using troupe::testing::etcd_cluster;
using troupe::testing::eventually;
using troupe::testing::json;
using troupe::testing::test_system;

namespace {

/// A convention on etcd: the first system started leads (it is elected
/// first), the others join; all share one TROUPE_HOME (so they trust each
/// other) and one convention name.
struct convention {
  etcd_cluster& etcd;
  std::string name;
  explicit convention(etcd_cluster& e) : etcd(e) {
    static int count = 0;
    name = "e" + std::to_string(::getpid()) + "-" + std::to_string(++count);
  }
  [[nodiscard]] std::vector<std::string> args(const std::string& caps) const {
    std::vector<std::string> a{"--etcd", etcd.endpoints(), "--convention", name};
    if (!caps.empty()) a.insert(a.end(), {"--caps", caps});
    return a;
  }
};

json systems_of(const test_system& s) {
  auto r = s.run({"systems", "--json"});
  if (r.exit_code != 0) return json::object();
  json j = json::parse(r.out, nullptr, false);
  return j.is_object() ? j : json::object();
}

/// The actor named name as s lists it, if it does.
std::optional<json> actor_named(const test_system& s, const std::string& name) {
  for (const auto& a : s.actors())
    if (a["name"].is_string() && a["name"] == name) return a;
  return std::nullopt;
}

bool running_on(const test_system& via, const std::string& name, const std::string& where) {
  auto a = actor_named(via, name);
  return a && (*a)["state"] == "running" && (*a)["system"] == where;
}

/// Every system up and agreeing on one leader.
bool settled(const std::vector<const test_system*>& systems) {
  std::string leader;
  for (const auto* s : systems) {
    const json j = systems_of(*s);
    if (!j.value("joined", false) || !j["leader"].is_string()) return false;
    if (leader.empty()) leader = j["leader"];
    if (j["leader"] != leader) return false;
    std::size_t up = 0;
    for (const auto& m : j.value("systems", json::array())) up += m["state"] == "up";
    if (up != systems.size()) return false;
  }
  return true;
}

// ---------------------------------------------------------------- instances.log

struct instance_life {
  std::string pid;
  long long start = 0;
  long long stop = -1;  // -1: still alive
};

struct instance_log {
  std::map<std::string, std::vector<instance_life>> lives;  // by address
  std::map<long, int> tells;                                // n -> times handled
  std::map<long, int> asks;
};

instance_log read_instances(const fs::path& home) {
  instance_log out;
  std::ifstream in(home / "instances.log");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string what, addr, pid;
    long long value = 0;
    f >> what >> addr >> pid >> value;
    if (what == "start")
      out.lives[addr].push_back({pid, value, -1});
    else if (what == "stop") {
      for (auto& l : out.lives[addr])
        if (l.pid == pid && l.stop < 0) l.stop = value;
    } else if (what == "tell")
      ++out.tells[static_cast<long>(value)];
    else if (what == "ask")
      ++out.asks[static_cast<long>(value)];
  }
  return out;
}

/// Pairs of lives of one address that overlapped, as text (empty: none).
std::string overlaps(const instance_log& log) {
  std::string out;
  for (const auto& [addr, lives] : log.lives)
    for (std::size_t i = 0; i < lives.size(); ++i)
      for (std::size_t j = i + 1; j < lives.size(); ++j) {
        const auto& a = lives[i];
        const auto& b = lives[j];
        const long long a_end = a.stop < 0 ? std::numeric_limits<long long>::max() : a.stop;
        const long long b_end = b.stop < 0 ? std::numeric_limits<long long>::max() : b.stop;
        if (a.start < b_end && b.start < a_end)
          out += addr + ": pid " + a.pid + " [" + std::to_string(a.start) + ", " + std::to_string(a.stop) +
                 ") and pid " + b.pid + " [" + std::to_string(b.start) + ", " + std::to_string(b.stop) + ")\n";
      }
  return out;
}

#define NEED_ETCD()                         \
  if (!etcd_cluster::available()) {         \
    WARN("etcd is not installed: skipped"); \
    return;                                 \
  }

}  // namespace

TEST_CASE(
    "a member paused past its lease, twenty times under asks and tells: one instance at every instant, "
    "no tell twice, every ok handled once",
    "[integration][etcd][fencing]") {
  NEED_ETCD();
  etcd_cluster etcd;
  convention conv(etcd);
  test_system lead(conv.args(""));  // the client's system; hosts nothing
  test_system a(lead, 0, conv.args("instance"));
  test_system b(lead, 0, conv.args("instance"));
  REQUIRE(eventually([&] { return settled({&lead, &a, &b}); }));
  lead.load(TROUPE_INSTANCES_PKG);
  const std::string inst = lead.spawn({"Instance", "--name", "inst"});

  // A stream of tells and asks through the leader, each numbered, with the
  // outcome the client got.
  std::atomic<bool> done{false};
  std::mutex m;
  std::map<long, std::string> tell_outcome, ask_outcome;  // n -> "ok", or the error code
  std::map<long, std::string> tell_error;                 // n -> the error's text
  std::thread stream([&] {
    auto c = troupe::client::connect(lead.where(), lead.connect_options());
    if (!c) return;
    for (long n = 1; !done; ++n) {
      auto t = c->call("tell", json{{"target", "inst"}, {"payload", json{{"n", n}}}, {"timeout_ms", 2000}}, 6s);
      auto q = c->ask("inst", json{{"n", n}}, 2000ms);
      std::lock_guard lock(m);
      tell_outcome[n] = t ? "ok" : troupe::to_string(t.err().code);
      if (!t) tell_error[n] = t.err().message;
      ask_outcome[n] = q ? "ok" : troupe::to_string(q.err().code);
    }
  });
  struct stopper {
    std::atomic<bool>& d;
    std::thread& t;
    ~stopper() {
      d = true;
      if (t.joinable()) t.join();
    }
  } stops{done, stream};

  const std::map<std::string, test_system*> by_where{{a.where(), &a}, {b.where(), &b}};
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    std::optional<json> now;
    REQUIRE(eventually([&] {
      now = actor_named(lead, "inst");
      return now && (*now)["state"] == "running";
    }));
    test_system& host = *by_where.at((*now)["system"].get<std::string>());
    test_system& other = &host == &a ? b : a;
    const auto paused = std::chrono::steady_clock::now();
    host.signal_daemon(SIGSTOP);
    struct resume {
      const test_system& s;
      ~resume() { s.signal_daemon(SIGCONT); }
    } resumes{host};
    CHECK(eventually([&] { return running_on(lead, "inst", other.where()); }, 10s));
    std::this_thread::sleep_until(paused + 3s);  // 3x the lease's TTL: the length of the pause, not a wait for an event
    host.signal_daemon(SIGCONT);
    REQUIRE(eventually([&] { return settled({&lead, &a, &b}); }, 15s));
  }
  done = true;
  stream.join();

  const auto log = read_instances(lead.home());
  INFO("instances.log lives: " << log.lives.size());
  CHECK(overlaps(log).empty());
  REQUIRE(log.lives.count(inst) == 1);
  CHECK(log.lives.at(inst).size() >= 21);  // the first and one per round
  std::size_t ok_tells = 0, unknown = 0;
  for (const auto& [n, outcome] : tell_outcome) {
    const int handled = log.tells.count(n) ? log.tells.at(n) : 0;
    INFO("tell " << n << ": " << outcome << " (" << tell_error[n] << "), handled " << handled << " times");
    CHECK(handled <= 1);
    if (outcome == "ok") {
      CHECK(handled == 1);
      ++ok_tells;
    } else if (outcome != "unknown") {
      CHECK(handled == 0);  // a definite failure was not handled
    }
    unknown += outcome == "unknown";
  }
  for (const auto& [n, outcome] : ask_outcome)
    if (outcome == "ok") CHECK(log.asks.count(n) == 1);
  WARN(tell_outcome.size() << " tells: " << ok_tells << " ok, " << unknown << " of unknown outcome");
  CHECK(ok_tells > 0);
}

TEST_CASE(
    "the elected leader killed: another leads within two TTLs, its actors answer at their addresses, "
    "packages stay loaded and spawns work",
    "[integration][etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  convention conv(etcd);
  test_system lead(conv.args("instance"));
  test_system a(lead, 0, conv.args("instance"));
  REQUIRE(eventually([&] { return settled({&lead, &a}); }));
  CHECK(systems_of(a)["leader"] == lead.where());
  lead.load(TROUPE_INSTANCES_PKG);
  const std::string on_leader = lead.spawn({"Instance", "--name", "first"});
  REQUIRE(eventually([&] { return running_on(lead, "first", lead.where()); }));

  const auto killed = std::chrono::steady_clock::now();
  lead.kill_daemon();
  REQUIRE(eventually([&] { return systems_of(a)["leader"] == a.where(); }, 10s));
  const auto took = std::chrono::steady_clock::now() - killed;
  WARN("a new leader " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                       << " ms after the SIGKILL");
  CHECK(took < 2s + 500ms);  // two TTLs, and the time to read that it leads
  REQUIRE(eventually([&] { return running_on(a, "first", a.where()); }));
  CHECK(actor_named(a, "first").value()["address"] == on_leader);
  CHECK(a.ask("first", json{{"n", 1}}).is_object());
  // The package is loaded on the new leader (from the store: no refresh).
  auto list = json::parse(a.run({"list", "--json"}).out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["group"] == "instances");
  const std::string second = a.spawn({"Instance", "--name", "second"});
  CHECK(a.ask(second, json{{"n", 2}}).is_object());
}

TEST_CASE("spawns during a change of leader fail only as unavailable, never as an unknown type",
          "[integration][etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  convention conv(etcd);
  // The package lives on the leader and on a (which hosts "first"); b has
  // never loaded it, so when b is elected it fetches it from a first and
  // holds the spawns asked meanwhile.
  test_system lead(conv.args(""));
  test_system a(lead, 0, conv.args("instance"));
  test_system b(lead, 0, conv.args(""));
  REQUIRE(eventually([&] { return settled({&lead, &a, &b}); }));
  lead.load(TROUPE_INSTANCES_PKG);
  (void)lead.spawn({"Instance", "--name", "first"});
  REQUIRE(eventually([&] { return running_on(b, "first", a.where()); }));

  lead.kill_daemon();
  std::vector<std::string> errors;
  bool spawned = false;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  for (int i = 0; !spawned && i < 1000 && std::chrono::steady_clock::now() < deadline; ++i) {
    auto r = b.run({"spawn", "Instance", "--name", "probe"});
    spawned = r.exit_code == 0;
    if (!spawned) errors.push_back(r.err);
  }
  INFO("last error: " << (errors.empty() ? "" : errors.back()) << " after " << errors.size() << " tries");
  REQUIRE(spawned);
  for (const auto& e : errors) {
    INFO(e);
    CHECK(e.find("unknown actor type") == std::string::npos);
    CHECK(e.find("is not loaded") == std::string::npos);
  }
  CHECK(b.ask("probe", json{{"n", 1}}).is_object());
}

TEST_CASE("the leader stopped and started again: actors and packages as before, with no refresh",
          "[integration][etcd]") {
  NEED_ETCD();
  etcd_cluster etcd;
  convention conv(etcd);
  test_system lead(conv.args("instance"));     // owns the TROUPE_HOME: destroyed last
  test_system keeper(lead, 0, conv.args(""));  // hosts nothing; leads while lead is away
  REQUIRE(eventually([&] { return settled({&lead, &keeper}); }));
  lead.load(TROUPE_INSTANCES_PKG);
  const std::string inst = lead.spawn({"Instance", "--name", "inst"});
  REQUIRE(eventually([&] { return running_on(keeper, "inst", lead.where()); }));
  REQUIRE(lead.stop().exit_code == 0);
  // No system fits meanwhile: pending, not forgotten.
  REQUIRE(eventually([&] {
    auto x = actor_named(keeper, "inst");
    return x && (*x)["state"] == "pending";
  }));
  test_system again(lead, lead.port(), conv.args("instance"));
  REQUIRE(eventually([&] { return running_on(keeper, "inst", again.where()); }));
  CHECK(actor_named(keeper, "inst").value()["address"] == inst);
  CHECK(keeper.ask("inst", json{{"n", 1}}).is_object());
  // Its packages without a refresh: the store's set, loaded where needed.
  auto list = json::parse(again.run({"list", "--json"}).out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["group"] == "instances");
}

TEST_CASE(
    "three etcd members: one killed, the convention serves on; all killed, systems serve what they host and "
    "nothing is placed again; etcd back, they go on",
    "[integration][etcd]") {
  NEED_ETCD();
  etcd_cluster etcd(3);
  convention conv(etcd);
  test_system lead(conv.args(""));
  test_system a(lead, 0, conv.args("instance"));
  test_system b(lead, 0, conv.args("instance"));
  REQUIRE(eventually([&] { return settled({&lead, &a, &b}); }));
  lead.load(TROUPE_INSTANCES_PKG);
  lead.spawn({"Instance", "--name", "inst"});
  std::optional<json> placed;
  REQUIRE(eventually([&] {
    placed = actor_named(lead, "inst");
    return placed && (*placed)["state"] == "running";
  }));
  const std::string host = (*placed)["system"];

  etcd.kill(0);
  for (int i = 0; i < 5; ++i) CHECK(lead.ask("inst", json{{"n", i}}).is_object());
  CHECK(settled({&lead, &a, &b}));

  etcd.kill(1);
  etcd.kill(2);
  // Past several TTLs without the store: still served where it was.
  const auto until = std::chrono::steady_clock::now() + 3s;
  int n = 100;
  bool all_answered = true;
  while (std::chrono::steady_clock::now() < until && all_answered)
    all_answered = lead.run({"ask", "inst", json{{"n", n++}}.dump()}).exit_code == 0;
  INFO("logs:\n" << lead.log() << "\n" << a.log() << "\n" << b.log());
  CHECK(all_answered);
  CHECK(running_on(lead, "inst", host));
  // A move asked meanwhile is refused before the actor is stopped: the store
  // could not record it, so nothing would create it again.
  {
    const auto r = lead.run({"move", "inst"});
    INFO(r.out << r.err);
    CHECK(r.exit_code != 0);
    CHECK(lead.ask("inst", json{{"n", 400}}).is_object());
  }
  // Spawns fail meanwhile (nothing can be placed), and promptly: a leader
  // that could not write a placement steps down, and must then neither pass
  // the request to itself nor take itself for the leader.
  for (const test_system* s : {&lead, &a, &lead, &b}) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = s->run({"spawn", "Instance"});
    INFO(r.err);
    CHECK(r.exit_code != 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 20s);
  }
  CHECK(lead.ask("inst", json{{"n", 500}}).is_object());
  for (std::size_t i = 0; i < 3; ++i) etcd.start(i);
  REQUIRE(etcd.wait_ready());
  REQUIRE(eventually([&] { return settled({&lead, &a, &b}); }, 20s));
  CHECK(running_on(lead, "inst", host));
  CHECK(lead.ask("inst", json{{"n", 999}}).is_object());
  CHECK(overlaps(read_instances(lead.home())).empty());
}

// ---------------------------------------------------------------- a network partition

namespace {

/// A network namespace with a veth pair to this one, made for one test and
/// removed with it (deleting the namespace deletes the pair). Names and the
/// /24 are random, so two runs on one machine do not meet.
struct netns_link {
  std::string ns, root_if, ns_if, root_addr, ns_addr;
  bool made = false;

  static bool ip(const std::vector<std::string>& args) {
    return troupe::testing::run_process("/usr/sbin/ip", args, {}, {}, 10s).exit_code == 0;
  }
  netns_link() {
    std::random_device rd;
    const unsigned tag = rd() % 100000, net = 16 + rd() % 200;
    ns = "trp" + std::to_string(tag);
    root_if = "trv" + std::to_string(tag);
    ns_if = "trw" + std::to_string(tag);
    root_addr = "10.213." + std::to_string(net) + ".1";
    ns_addr = "10.213." + std::to_string(net) + ".2";
    if (!ip({"netns", "add", ns})) return;
    made = true;
    made = ip({"link", "add", root_if, "type", "veth", "peer", "name", ns_if}) &&
           ip({"link", "set", ns_if, "netns", ns}) && ip({"addr", "add", root_addr + "/24", "dev", root_if}) &&
           ip({"link", "set", root_if, "up"}) && ip({"-n", ns, "addr", "add", ns_addr + "/24", "dev", ns_if}) &&
           ip({"-n", ns, "link", "set", ns_if, "up"}) && ip({"-n", ns, "link", "set", "lo", "up"});
  }
  ~netns_link() {
    ip({"netns", "del", ns});
    ip({"link", "del", root_if});  // gone with the namespace, unless moving it failed
  }
  netns_link(const netns_link&) = delete;
  netns_link& operator=(const netns_link&) = delete;

  [[nodiscard]] troupe::testing::host_spec inside() const { return {ns_addr, {"/usr/sbin/ip", "netns", "exec", ns}}; }
  [[nodiscard]] troupe::testing::host_spec outside() const { return {root_addr, {}}; }
  bool cut() const { return ip({"link", "set", root_if, "down"}); }
  bool heal() const { return ip({"link", "set", root_if, "up"}); }
};

}  // namespace

TEST_CASE(
    "a partition between systems: the cut-off side fences itself, the actor answers from the other, "
    "one instance after healing",
    "[integration][etcd][partition]") {
  NEED_ETCD();
  if (::geteuid() != 0 || !fs::exists("/usr/sbin/ip")) {
    WARN("needs root and iproute2 for network namespaces: skipped");
    return;
  }
  netns_link net;
  if (!net.made) {
    WARN("cannot make a network namespace here: skipped");
    return;
  }
  etcd_cluster etcd(1, net.root_addr);
  convention conv(etcd);
  // The leader and b on this side, bound on the veth's address so the
  // namespace reaches them; a in the namespace, reaching etcd over the veth.
  test_system lead(conv.args(""), net.outside());
  test_system b(lead, conv.args("instance"), net.outside());
  std::vector<std::string> a_args{"--etcd",  etcd.endpoints(net.root_addr), "--convention", conv.name, "--caps",
                                  "instance"};
  test_system a(lead, a_args, net.inside());
  REQUIRE(eventually([&] { return settled({&lead, &a, &b}); }));
  lead.load(TROUPE_INSTANCES_PKG);
  lead.spawn({"Instance", "--name", "inst"});
  REQUIRE(eventually([&] {
    auto p = actor_named(lead, "inst");
    return p && (*p)["state"] == "running";
  }));
  if (!running_on(lead, "inst", a.where()))
    REQUIRE(lead.run({"move", "inst", "--to", std::to_string(a.port())}).exit_code == 0);
  REQUIRE(eventually([&] { return running_on(lead, "inst", a.where()); }));
  CHECK(lead.ask("inst", json{{"n", 1}}).is_object());

  struct healer {
    const netns_link& n;
    ~healer() { n.heal(); }
  } heals{net};
  REQUIRE(net.cut());
  // The cut-off side cannot renew its lease: it stops the actor itself; the
  // other side places it again once the lease is gone.
  CHECK(eventually([&] { return running_on(lead, "inst", b.where()); }, 10s));
  CHECK(lead.ask("inst", json{{"n", 2}}).is_object());
  const auto fenced = [&] { return a.log().find("fenced: cannot renew its lease") != std::string::npos; };
  CHECK(eventually(fenced, 5s));
  // Asked from its side of the cut, it says so.
  const auto status = troupe::testing::run_process(
      "/usr/sbin/ip", {"netns", "exec", net.ns, troupe::testing::bin("troupe"), "--system", a.where(), "status"},
      {{"TROUPE_HOME", a.home().string()}}, {}, 10s);
  INFO(status.out << status.err);
  CHECK(status.out.find("FENCED: it could not renew its etcd lease") != std::string::npos);
  const auto listing = troupe::testing::run_process(
      "/usr/sbin/ip", {"netns", "exec", net.ns, troupe::testing::bin("troupe"), "--system", a.where(), "systems"},
      {{"TROUPE_HOME", a.home().string()}}, {}, 10s);
  INFO(listing.out << listing.err);
  CHECK(listing.out.find("coordination: etcd at") != std::string::npos);
  CHECK(listing.out.find("; FENCED") != std::string::npos);
  CHECK(listing.out.find("LEASE") != std::string::npos);

  REQUIRE(net.heal());
  REQUIRE(eventually([&] { return settled({&lead, &a, &b}); }, 20s));
  CHECK(running_on(lead, "inst", b.where()));
  CHECK(running_on(a, "inst", b.where()));
  CHECK(lead.ask("inst", json{{"n", 3}}).is_object());
  const auto log = read_instances(lead.home());
  CHECK(overlaps(log).empty());
  std::size_t alive = 0;
  for (const auto& [addr, lives] : log.lives)
    for (const auto& l : lives) alive += l.stop < 0;
  CHECK(alive == 1);
}
