// troupe-attack — replays every class of hostile input of issue 13 against a
// live system (a real `troupe start` in a temporary TROUPE_HOME, through the
// integration harness) and measures what it does to the daemon:
//
//   1 malformed client messages     5 pipelined requests
//   2 nested JSON bombs             6 load of hostile paths and archives
//   3 oversized frames              7 the worker plane from another uid
//   4 unauthenticated TCP clients   8 descriptor and worker exhaustion
//   9 the HTTP listener of --metrics: hostile, mutated, pipelined and
//     half-sent requests, more connections than it takes (runs before 8)
//  10 the dashboard's API on the same listener (--http): no, wrong or cut
//     tokens, other Hosts and Origins, mutated and oversized JSON bodies, more
//     event streams than it serves, streams that never read; the system's
//     capabilities and actors must not change (runs before 8)
//
// After each class the daemon must be the same live process, answer `status`
// within 2 s (else a hang), get back to its descriptor count and within
// 16 MiB of its resident memory after a settle period (else a leak), and the
// canary actor must answer from the same worker, never restarted, with no
// worker killed by a fatal signal (else a crash). Output: one line per class,
// then `N inputs, C crashes, H hangs, L leaks`. Exit 0 only when all three are
// 0 and every refusal the class expects happened; 77 when it cannot run here.
//
// Default: a bounded run (a few tens of seconds, for `make test`). --full: the
// figures of docs/SECURITY.md §5. Class 8 runs only as the init of a pid
// namespace (tests/integration/in_pid_namespace.sh), where a mistake cannot
// reach other processes; class 7 only as root with setpriv.
#include "ipc/control.hpp"
#include "ipc/protocol.hpp"
#include "ipc/wire.hpp"
#include "manifests/archive.hpp"
#include "manifests/signing.hpp"
#include "tests/integration/harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace ipc = troupe::ipc;
namespace manifests = troupe::manifests;
using troupe::testing::json;
using troupe::testing::run_process;
using troupe::testing::test_system;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using frames = std::vector<std::string>;

const std::string sig(ipc::control_signature.data(), ipc::control_signature.size());

// ---------------------------------------------------------------- settings

struct settings {
  bool full = false;
  std::set<int> only;  ///< empty: every class
  std::uint32_t seed = 13;
};
settings cfg;

// Bounds of what is measured after each class (docs/SECURITY.md §5 says why).
constexpr auto status_bound = 2s;                     ///< status slower than this: a hang
constexpr auto answer_bound = 5s;                     ///< an input that must be answered and is not by then: a hang
constexpr std::size_t fd_tolerance = 0;               ///< descriptors back to the baseline exactly
constexpr long rss_tolerance_kib = 16 * 1024;         ///< resident memory within 16 MiB of the baseline
constexpr std::size_t max_client_message = 4u << 20;  ///< the system's --max-client-message (4M)
constexpr int max_json_depth = 256;                   ///< the system's --max-json-depth (the default)

// ---------------------------------------------------------------- /proc probes

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t fd_count(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

/// What each descriptor of a process refers to ("socket:[123]", a path).
std::multiset<std::string> fd_targets(pid_t pid) {
  std::multiset<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code lec;
    std::string target = fs::read_symlink(it->path(), lec).string();
    if (target.rfind("socket:", 0) == 0) target = "socket";  // inode numbers differ run to run
    out.insert(target);
  }
  return out;
}

long status_kib(pid_t pid, const std::string& field) {
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  return 0;
}

/// Alive and not a zombie.
bool alive(pid_t pid) {
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

/// User plus system CPU time of a process, in seconds.
double cpu_seconds(pid_t pid) {
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> f; ++i)
    if (i == 14 || i == 15) ticks += std::stod(f);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// Resets the peak resident size (VmHWM) of a process to its current one.
void reset_peak(pid_t pid) { std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5"; }

struct sample {
  std::size_t fds = 0;
  long rss_kib = 0;
};
sample probe(pid_t pid) { return {fd_count(pid), status_kib(pid, "VmRSS")}; }

// ---------------------------------------------------------------- raw clients

/// A DEALER of its own, for raw frames; every wait is bounded.
class dealer {
 public:
  dealer(zmq::context_t& ctx, const std::string& endpoint, const std::function<void(zmq::socket_t&)>& setup = {},
         int linger_ms = 0)
      : s_(ctx, zmq::socket_type::dealer) {
    s_.set(zmq::sockopt::linger, linger_ms);
    if (setup) setup(s_);
    s_.connect(endpoint);
  }
  bool send(const frames& f) { return ipc::send_parts(s_, std::vector<std::string_view>(f.begin(), f.end())); }
  bool send(const std::string& command, const json& body) { return ipc::send_control(s_, "", command, body); }
  /// The next whole message within timeout; nullopt when none came.
  std::optional<std::vector<zmq::message_t>> next_raw(std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{s_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return std::nullopt;
    auto parts = ipc::recv_multipart(s_);
    if (parts.empty()) return std::nullopt;
    return parts;
  }
  /// The body of the next reply (a body {"undecodable": REASON} for one that
  /// does not decode); nullopt when none came within timeout.
  std::optional<json> next(std::chrono::milliseconds timeout) {
    auto parts = next_raw(timeout);
    if (!parts) return std::nullopt;
    auto m = ipc::decode_control(*parts, 0, 100000);
    if (!m) return json{{"undecodable", m.err().message}};
    if (m->command != "reply") return json{{"undecodable", "command " + m->command}};
    return m->body;
  }
  std::optional<json> call(const std::string& command, json body, std::chrono::milliseconds timeout = answer_bound) {
    body["rid"] = ++rid_;
    if (!send(command, body)) return std::nullopt;
    const auto until = steady::now() + timeout;
    while (steady::now() < until) {
      auto b = next(std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()));
      if (!b) return std::nullopt;
      if (b->value("rid", json()) == json(rid_)) return b;  // an older answer is skipped
    }
    return std::nullopt;
  }
  zmq::socket_t& socket() { return s_; }

 private:
  zmq::socket_t s_;
  std::uint64_t rid_ = 1000000000;
};

// ---------------------------------------------------------------- results

struct tally {
  int number = 0;
  std::string name;
  bool skipped = false;
  std::string skip_reason;
  std::size_t inputs = 0;
  std::size_t crashes = 0;
  std::size_t hangs = 0;
  std::size_t leaks = 0;
  std::size_t failures = 0;  ///< a refusal or answer the class expects did not happen
  double seconds = 0;
  sample before;
  sample after;
  std::multiset<std::string> fds_before;
  std::vector<std::string> notes;
  void note(const std::string& n) {
    if (notes.size() < 12) notes.push_back(n);
  }
  void fail(const std::string& why) {
    ++failures;
    note("FAIL " + why);
  }
};

std::string mib(long kib) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(kib) / 1024.0);
  return buf;
}

/// One line: "an error of one line".
bool one_line(const json& body) {
  const auto e = body.value("error", std::string());
  return !e.empty() && e.find('\n') == std::string::npos && e.find('\r') == std::string::npos;
}

// ---------------------------------------------------------------- the system under attack

struct target {
  test_system& sys;
  zmq::context_t ctx;
  pid_t pid = 0;
  std::string system_id;      ///< 8 hex digits
  std::string canary;         ///< a Relay actor that must never restart
  int canary_worker = 0;      ///< its worker's pid
  std::size_t log_seen = 0;   ///< bytes of the log already scanned
  pid_t canary_process = -1;  ///< a child of ours that a stray kill(-1) would reach
  bool dead = false;
  std::uint16_t metrics_port = 0;  ///< --metrics (class 9)

  explicit target(test_system& s) : sys(s) {}
  [[nodiscard]] std::string local() const { return sys.client_endpoint(); }
  [[nodiscard]] std::string unknown_address() const { return "@" + system_id + ".999999"; }

  std::optional<json> call(const std::string& command, const json& body, std::chrono::milliseconds t = answer_bound) {
    dealer d(ctx, local());
    return d.call(command, body, t);
  }
  std::optional<json> canary_view() {
    auto r = call("actors", json::object());
    if (!r || !r->value("ok", false)) return std::nullopt;
    for (const auto& a : (*r)["actors"])
      if (a.value("address", std::string()) == canary) return a;
    return std::nullopt;
  }
  /// New log lines since the last call.
  std::string new_log() {
    const std::string log = sys.log();
    if (log.size() < log_seen) log_seen = 0;
    std::string out = log.substr(log_seen);
    log_seen = log.size();
    return out;
  }
  [[nodiscard]] std::set<std::string> package_files() const {
    std::set<std::string> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(sys.home() / "packages", ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
      out.insert(it->path().filename().string());
    return out;
  }
};

/// What is checked after every class: same live daemon, status in time,
/// canary untouched, no worker killed by a fatal signal, descriptors and
/// memory back to the baseline after a settle period.
void check_after(target& t, tally& r) {
  if (!alive(t.pid)) {
    ++r.crashes;
    r.note("CRASH: the daemon (pid " + std::to_string(t.pid) + ") is gone");
    t.dead = true;
    return;
  }
  const auto started = steady::now();
  auto status = t.call("status", json::object(), status_bound);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started);
  if (!status) {
    ++r.hangs;
    r.note("HANG: status not answered within 2 s");
  } else if (status->value("pid", 0) != t.pid) {
    ++r.crashes;
    r.note("CRASH: status answered by pid " + std::to_string(status->value("pid", 0)));
  } else if (took > 500ms) {
    r.note("status took " + std::to_string(took.count()) + " ms");
  }
  auto echo = t.call("ask", json{{"target", t.canary}, {"payload", {{"echo", "canary"}}}});
  if (!echo || echo->value("payload", json()) != json("canary")) {
    ++r.hangs;
    r.note("HANG: the canary actor did not answer: " + (echo ? echo->dump() : std::string("no answer")));
  }
  if (auto v = t.canary_view()) {
    const int wp = (*v)["worker_pid"].is_number() ? (*v)["worker_pid"].get<int>() : 0;
    if (wp != t.canary_worker || v->value("restarts", 0) != 0) {
      ++r.crashes;
      r.note("CRASH: the canary's worker changed (pid " + std::to_string(wp) + ", restarts " +
             std::to_string(v->value("restarts", 0)) + ")");
      t.canary_worker = wp;
    }
  }
  std::istringstream log(t.new_log());
  for (std::string line; std::getline(log, line);) {
    const auto at = line.find(" died (killed by SIG");
    if (at != std::string::npos && line.find("SIGKILL", at) == std::string::npos) {
      ++r.crashes;
      r.note("CRASH: " + line.substr(at > 60 ? at - 60 : 0));
    }
  }
  if (t.canary_process > 0) {
    int st = 0;
    if (::waitpid(t.canary_process, &st, WNOHANG) != 0) {
      ++r.crashes;
      r.note("CRASH: the test's canary process was signalled (a kill of pid -1?)");
      t.canary_process = -1;
    }
  }
  // Settle: descriptors close and memory returns as connections and workers go.
  const auto settle = cfg.full ? 15s : 5s;
  const auto until = steady::now() + settle;
  do {
    r.after = probe(t.pid);
    if (r.after.fds <= r.before.fds + fd_tolerance && r.after.rss_kib <= r.before.rss_kib + rss_tolerance_kib) return;
    std::this_thread::sleep_for(100ms);
  } while (steady::now() < until);
  if (r.after.fds > r.before.fds + fd_tolerance) {
    ++r.leaks;
    std::string what;
    auto now = fd_targets(t.pid);
    for (const auto& f : r.fds_before)
      if (auto it = now.find(f); it != now.end()) now.erase(it);
    for (const auto& f : now) what += " " + f;
    r.note("LEAK: " + std::to_string(r.after.fds - r.before.fds) + " descriptors more after " +
           std::to_string(settle.count()) + " s:" + what);
  }
  if (r.after.rss_kib > r.before.rss_kib + rss_tolerance_kib) {
    ++r.leaks;
    r.note("LEAK: resident memory " + mib(r.after.rss_kib - r.before.rss_kib) + " MiB above the baseline");
  }
}

// ---------------------------------------------------------------- helpers for classes

/// Sends inputs that must each be answered; counts and checks the answers.
struct answered_run {
  target& t;
  tally& r;
  dealer d;
  std::size_t unanswered_in_a_row = 0;
  std::map<std::string, std::size_t> codes;

  answered_run(target& tt, tally& rr) : t(tt), r(rr), d(tt.ctx, tt.local()) {}

  /// Returns the answer's body; a missing answer is a hang.
  std::optional<json> one(const frames& f, const json& rid = json()) {
    ++r.inputs;
    if (unanswered_in_a_row >= 3) return std::nullopt;  // the daemon is wedged; the check will say so
    if (!d.send(f)) {
      r.fail("could not queue an input");
      return std::nullopt;
    }
    auto b = d.next(answer_bound);
    if (!b) {
      ++r.hangs;
      ++unanswered_in_a_row;
      r.note("HANG: no answer to " + describe(f));
      d = dealer(t.ctx, t.local());  // a fresh connection: a stale answer must not pair with the next input
      return std::nullopt;
    }
    unanswered_in_a_row = 0;
    if (b->contains("undecodable")) {
      r.fail("undecodable answer to " + describe(f));
    } else if (!b->value("ok", false)) {
      if (!one_line(*b) || b->value("code", std::string()).empty())
        r.fail("error not one coded line: " + b->dump().substr(0, 200));
      ++codes[b->value("code", std::string())];
    } else {
      ++codes["ok"];
    }
    if (!rid.is_null() && b->value("rid", json()) != rid)
      r.fail("answer with rid " + b->value("rid", json()).dump().substr(0, 40) + " to rid " + rid.dump());
    return b;
  }
  static std::string describe(const frames& f) {
    std::string s = std::to_string(f.size()) + " frames:";
    for (const auto& x : f) {
      std::string shown = x.substr(0, 40);
      for (auto& c : shown)
        if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) c = '?';
      s += " [" + shown + (x.size() > 40 ? "…(" + std::to_string(x.size()) + ")" : "") + "]";
    }
    return s;
  }
  [[nodiscard]] std::string code_summary() const {
    std::string s;
    for (const auto& [c, n] : codes) s += (s.empty() ? "" : ", ") + c + " " + std::to_string(n);
    return s;
  }
};

/// A client command, its fields with harmless values (JSON text; an
/// unknown address, a missing package...) and each field's type.
struct command_spec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> fields;  ///< field → JSON text
  std::map<std::string, char> types;                        ///< 's' string, 'i' int, 'b' bool, 'a' any
};

std::vector<command_spec> commands(const target& t) {
  const std::string unknown = "\"" + t.unknown_address() + "\"";
  // shutdown (and refresh, which loads) are never sent with a body that decodes.
  return {
      {"status", {}, {}},
      {"ping", {}, {}},
      {"list", {}, {}},
      {"avail", {}, {}},
      {"systems", {}, {}},
      {"load",
       {{"path", "\"/nonexistent/attack.tpkg\""}, {"unsigned", "false"}, {"group", "\"nosuchgroup\""}},
       {{"path", 's'}, {"unsigned", 'b'}, {"group", 's'}}},
      {"unload", {{"package", "\"0123456789ab\""}}, {{"package", 's'}}},
      {"role", {{"role", "\"norole\""}, {"group", "\"nogroup\""}}, {{"role", 's'}, {"group", 's'}}},
      {"spawn",
       {{"type", "\"NoSuchType\""}, {"package", "\"nosuchpkg\""}, {"name", "\"attack-n\""}, {"wait", "false"}},
       {{"type", 's'}, {"package", 's'}, {"name", 's'}, {"wait", 'b'}, {"origin", 's'}}},
      {"tell",
       {{"target", unknown}, {"payload", R"({"x":1})"}, {"type", "\"json\""}, {"timeout_ms", "200"}},
       {{"target", 's'}, {"payload", 'a'}, {"type", 's'}, {"timeout_ms", 'i'}}},
      {"ask",
       {{"target", unknown}, {"payload", R"({"x":1})"}, {"type", "\"json\""}, {"timeout_ms", "200"}},
       {{"target", 's'}, {"payload", 'a'}, {"type", 's'}, {"timeout_ms", 'i'}}},
      {"kill", {{"target", unknown}, {"timeout_ms", "200"}}, {{"target", 's'}, {"timeout_ms", 'i'}}},
      {"chgcap",
       {{"op", "\"remove\""}, {"name", "\"nosuchcap\""}, {"value", "\"v\""}},
       {{"op", 's'}, {"name", 's'}, {"value", 's'}}},
      {"move",
       {{"target", unknown}, {"port", "1"}, {"new_worker", "false"}},
       {{"target", 's'}, {"port", 'i'}, {"new_worker", 'b'}}},
  };
}

/// The JSON text of an object: rid first, then the fields.
std::string object_text(const std::string& rid, const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string s = "{";
  if (!rid.empty()) s += "\"rid\":" + rid;
  for (const auto& [k, v] : fields) s += (s.size() > 1 ? "," : "") + ("\"" + k + "\":" + v);
  return s + "}";
}

std::vector<std::string> wrong_typed(char type) {
  std::vector<std::string> v{"42",   "-1",   "1.5", "1e308", "-9223372036854775809", "18446744073709551616",
                             "true", "null", "[]",  "{}",    R"(["a",1])",           R"({"a":{"b":[]}})"};
  if (type != 's') v.insert(v.end(), {"\"\"", "\"42\"", "\"true\""});
  if (type == 'i') v.insert(v.end(), {"0", "-9223372036854775808", "18446744073709551615", "4294967296", "2.0"});
  if (type == 'b') v.insert(v.end(), {"0", "1"});
  return v;
}

std::vector<std::string> hostile_strings() {
  const std::size_t big = cfg.full ? (1u << 20) : (64u << 10);
  std::vector<std::string> v{
      "\"\"",
      "\"" + std::string(big, 'A') + "\"",
      R"("\u0000")",
      R"("a\nb\r\tc")",
      R"("\u001b[31mred\u001b[0m")",
      "\"\xff\xfe\"",  // invalid UTF-8: not JSON
      R"("\ud800")",   // a lone surrogate
      "\"\xc3\x28\"",  // an invalid two-byte sequence
      R"("@")",
      R"("@zzzz.1")",
      R"("@ffffffff.18446744073709551616")",
      R"("@00000000.0")",
      R"("../../../../../etc/passwd")",
      R"("%s%n%x%p")",
      "\"\xe0\xb2\xa0_\xe0\xb2\xa0\"",
      "\"" +
          [] {
            std::string s;
            for (int i = 0; i < 200; ++i) s += "\\u0001";
            return s;
          }() +
          "\"",
      R"("a,b=c")",
      R"(" spaced ")",
  };
  return v;
}

/// A deep JSON value of a given shape.
std::string bomb(int shape, std::size_t depth) {
  switch (shape) {
    case 0:
      return std::string(depth, '[') + std::string(depth, ']');
    case 1: {
      std::string s;
      s.reserve(depth * 6 + 2);
      for (std::size_t i = 0; i < depth; ++i) s += "{\"a\":";
      s += "0";
      s.append(depth, '}');
      return s;
    }
    case 2:
      return std::string(depth, '[');  // never closed
    default: {
      std::string s;
      for (std::size_t i = 0; i < depth / 2; ++i) s += "[{\"a\":";
      s += "1";
      for (std::size_t i = 0; i < depth / 2; ++i) s += "}]";
      return s;
    }
  }
}

// ---------------------------------------------------------------- class 1

void class_malformed(target& t, tally& r) {
  answered_run run(t, r);
  std::mt19937 rng(cfg.seed);
  std::uint64_t rid = 1;
  const auto cmds = commands(t);
  // Frame level: counts, signatures, command names, bodies that are not JSON.
  std::vector<frames> raw{
      {""},
      {"x"},
      {sig},
      {sig, "status"},
      {sig, "status", "{}", "x"},
      {sig, "status", "{}", "", ""},
      {sig, "status", "{}", "a", "b", "c"},
      frames(16, sig),
      {"", "", ""},
      {sig, "", "{}"},
      {sig, "status", ""},
      {"TRC", "status", "{}"},
      {"TRC\x01x", "status", "{}"},
      {std::string("TRC\0", 4), "status", "{}"},
      {"TRC\xff", "status", "{}"},
      {std::string(4, '\0'), "status", "{}"},
      {sig, std::string(64, 'a'), "{}"},
      {sig, std::string(65, 'a'), "{}"},
      {sig, std::string(1000, 'a'), "{}"},
      {sig, std::string("sta\0tus", 7), "{}"},
      {sig, "status\n", "{}"},
      {sig, "\xff\xfe", "{}"},
      {sig, "STATUS", "{}"},
  };
  for (const char* worker_cmd : {"reply", "hello", "ready", "created", "fatal", "bye", "resolve", "lease", "watch"})
    raw.push_back({sig, worker_cmd, R"({"rid":1,"worker":1,"address":16})"});
  // shutdown: never with a body that decodes.
  for (const frames& f : std::vector<frames>{{"XYZ\x01", "shutdown", "{}"},
                                             {sig, "shutdown"},
                                             {sig, "shutdown", "{}", "x"},
                                             {sig, "shutdown", "{"},
                                             {sig, "shutdown", "[]"},
                                             {sig, "shutdown", "null"},
                                             {sig, "shutdown", R"({"rid":1)"},
                                             {"TRC\x02", "shutdown", "{}"}})
    raw.push_back(f);
  for (const std::string& body : {std::string("{"),
                                  std::string("}"),
                                  std::string(R"({"rid":1)"),
                                  std::string("nul"),
                                  std::string("{'rid':1}"),
                                  std::string(R"({"rid":1,})"),
                                  std::string(R"({"rid":1}garbage)"),
                                  std::string("\xef\xbb\xbf{}"),
                                  std::string("{} {}"),
                                  std::string(R"({"rid":NaN})"),
                                  std::string(R"({"rid":Infinity})"),
                                  std::string(R"({"rid":1e99999})"),
                                  std::string(R"({"a":"\uZZZZ"})"),
                                  std::string("{\"a\":\"\xc3\x28\"}"),
                                  std::string(100000, ' ') + "{}",
                                  std::string("/*c*/{}"),
                                  std::string("1"),
                                  std::string("\"s\""),
                                  std::string("null"),
                                  std::string("[]"),
                                  std::string(R"({"rid":1,"rid":2})"),
                                  std::string("{\"\0\":1}", 7),
                                  std::string(R"({"rid":-0})"),
                                  std::string(R"({"rid":1.0e-400})")})
    raw.push_back({sig, "status", body});
  for (const auto& f : raw) run.one(f);

  // Every field of every command: missing, wrong-typed, hostile strings, and
  // hostile rids; each with a rid the answer must carry back.
  for (const auto& c : cmds) {
    ++rid;
    run.one({sig, c.name, object_text(std::to_string(rid), c.fields)}, rid);
    for (const auto& [field, type] : c.types) {
      std::vector<std::string> values = wrong_typed(type);
      if (type == 's') {
        auto h = hostile_strings();
        values.insert(values.end(), h.begin(), h.end());
      }
      if (type == 'a') values = {"null", "\"\"", "[]", "{}", R"({"":{"":[]}})", "\"" + std::string(4096, 'p') + "\""};
      // The field removed.
      auto without = c.fields;
      without.erase(std::remove_if(without.begin(), without.end(), [&](auto& kv) { return kv.first == field; }),
                    without.end());
      ++rid;
      run.one({sig, c.name, object_text(std::to_string(rid), without)}, rid);
      for (const auto& v : values) {
        auto fields = without;
        fields.emplace_back(field, v);
        // Invalid UTF-8 and lone surrogates are not JSON: the rid is still read back.
        ++rid;
        run.one({sig, c.name, object_text(std::to_string(rid), fields)}, rid);
      }
    }
    std::vector<std::string> rids = wrong_typed('a');
    auto h = hostile_strings();
    rids.insert(rids.end(), h.begin(), h.end());
    for (const auto& bad_rid : rids) run.one({sig, c.name, object_text(bad_rid, c.fields)});
    // An unknown field of every type, and the same field twice.
    for (const auto& v : {std::string("1"), std::string(R"({"a":[1,{"b":null}]})"), hostile_strings()[1]}) {
      ++rid;
      run.one({sig, c.name, object_text(std::to_string(rid), {{"zz_unknown", v}})}, rid);
    }
    if (!c.fields.empty()) {
      auto twice = c.fields;
      twice.emplace_back(c.fields.front().first, "{}");
      ++rid;
      run.one({sig, c.name, object_text(std::to_string(rid), twice)});
    }
  }
  // refresh loads, so only a few of its inputs decode.
  ++rid;
  run.one({sig, "refresh", object_text(std::to_string(rid), {})}, rid);
  run.one({sig, "refresh", R"({"rid":{"a":1}})"});

  // Truncations of real requests at every byte, and random corruptions.
  for (const auto& c : cmds) {
    if (!cfg.full && c.name != "spawn" && c.name != "ask" && c.name != "load" && c.name != "chgcap") continue;
    const std::string body = object_text("77", c.fields);
    for (std::size_t n = 0; n < body.size(); ++n) run.one({sig, c.name, body.substr(0, n)});
  }
  const std::size_t mutations = cfg.full ? 20000 : 600;
  for (std::size_t i = 0; i < mutations; ++i) {
    const auto& c = cmds[rng() % cmds.size()];
    std::string body = object_text(std::to_string(++rid), c.fields);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % body.size();
      switch (rng() % 4) {
        case 0:
          body[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          body.erase(at, 1 + rng() % 3);
          break;
        case 2:
          body.insert(at, 1, "{}[],:\"\\0aZ\x01\xff"[rng() % 14]);
          break;
        default:
          body.insert(at, body.substr(rng() % body.size(), rng() % 12));
      }
      if (body.empty()) body = "{";
    }
    run.one({sig, c.name, body});
  }
  const std::size_t randoms = cfg.full ? 5000 : 200;
  for (std::size_t i = 0; i < randoms; ++i) {
    frames f(1 + rng() % 4);
    for (auto& x : f) {
      x.resize(rng() % 300);
      for (auto& ch : x) ch = static_cast<char>(rng() % 256);
    }
    if (rng() % 2 == 0) f[0] = sig;  // past the signature check now and then
    run.one(f);
  }
  r.note("answers: " + run.code_summary());
}

// ---------------------------------------------------------------- class 2

void class_bombs(target& t, tally& r) {
  answered_run run(t, r);
  std::vector<std::size_t> depths{max_json_depth + 1, 1000, 80000};
  if (cfg.full) depths = {max_json_depth + 1, max_json_depth + 2, 2 * max_json_depth, 10000, 80000, 1000000};
  const auto cmds = commands(t);
  std::uint64_t rid = 5000000;
  for (std::size_t depth : depths) {
    for (int shape = 0; shape < 4; ++shape) {
      const std::string deep = bomb(shape, depth);
      if (deep.size() + 4096 > max_client_message) continue;  // class 3's, not a bomb the decoder sees
      // The rid itself, and the rid under a bad signature.
      run.one({sig, "status", object_text(deep, {})});
      run.one({"XYZ\x01", "status", object_text(deep, {})});
      run.one({sig, "shutdown", object_text(deep, {})});  // refused before it could shut anything down
      run.one({sig, "status", deep});                     // the body itself
      // Every field of every command, a deep payload to the canary itself,
      // and an unknown field; the rid must come back.
      for (const auto& c : cmds) {
        for (const auto& [field, type] : c.types) {
          auto fields = c.fields;
          fields.erase(std::remove_if(fields.begin(), fields.end(), [&](auto& kv) { return kv.first == field; }),
                       fields.end());
          fields.emplace_back(field, deep);
          ++rid;
          run.one({sig, c.name, object_text(std::to_string(rid), fields)}, shape == 2 ? json() : json(rid));
        }
        ++rid;
        run.one({sig, c.name, object_text(std::to_string(rid), {{"zz", deep}})}, shape == 2 ? json() : json(rid));
      }
      for (const char* cmd : {"ask", "tell"}) {
        ++rid;
        run.one({sig, cmd, object_text(std::to_string(rid), {{"target", "\"" + t.canary + "\""}, {"payload", deep}})},
                shape == 2 ? json() : json(rid));
      }
      run.one({"XYZ\x01", "ask", object_text("\"r\"", {{"payload", deep}})}, "r");
    }
  }
  // At the limit: the canary echoes what fits, a reply too deep fails that ask.
  for (int d = max_json_depth - 6; d <= max_json_depth + 1; ++d) {
    const std::string nested = bomb(0, static_cast<std::size_t>(d));
    ++rid;
    run.one({sig, "ask",
             object_text(std::to_string(rid),
                         {{"target", "\"" + t.canary + "\""}, {"payload", "{\"echo\":" + nested + "}"}})},
            rid);
  }
  r.note("answers: " + run.code_summary());
}

// ---------------------------------------------------------------- class 3

void class_oversized(target& t, tally& r) {
  const std::size_t L = max_client_message;
  struct big {
    std::size_t size;
    int where;  ///< which frame carries it: 0 signature, 1 command, 2 body
  };
  std::vector<big> inputs{{L + 1, 2}, {2 * L, 2}, {16u << 20, 2}, {16u << 20, 0}, {L + 1, 1}};
  if (cfg.full)
    inputs.insert(inputs.end(),
                  {{L + 4096, 2}, {64u << 20, 2}, {100u << 20, 2}, {100u << 20, 2}, {100u << 20, 2}, {256u << 20, 2}});
  long worst_peak = 0;
  for (const auto& in : inputs) {
    ++r.inputs;
    reset_peak(t.pid);
    const long base = status_kib(t.pid, "VmRSS");
    {
      zmq::context_t ctx;  // closing it waits for the frame to leave, or for linger
      dealer d(ctx, t.local(), {}, 3000);
      frames f{sig, "ask", R"({"rid":1,"target":")" + t.canary + R"(","payload":1})"};
      if (in.where == 2)
        f[2] = R"({"rid":1,"target":")" + t.canary + R"(","payload":")" + std::string(in.size, 'x') + "\"}";
      else
        f[static_cast<std::size_t>(in.where)] = std::string(in.size, 'x');
      (void)d.send(f);
      // Refused from its header: nothing comes back, and the connection is closed.
      if (auto b = d.next(1000ms)) r.fail("a frame of " + std::to_string(in.size) + " bytes was answered");
    }
    const long peak = status_kib(t.pid, "VmHWM") - base;
    worst_peak = std::max(worst_peak, peak);
    auto s = t.call("status", json::object(), status_bound);
    if (!s) {
      ++r.hangs;
      r.note("HANG: status after a frame of " + std::to_string(in.size) + " bytes");
      break;
    }
  }
  r.note("peak RSS over the baseline while refusing single frames: " + mib(worst_peak) + " MiB");
  if (worst_peak > 32 * 1024) r.fail("a refused frame was buffered: peak " + mib(worst_peak) + " MiB");

  // Many parts, each within the limit: ZeroMQ delivers a multipart message
  // whole, so the daemon holds all of it before it can count its frames.
  const std::size_t parts = cfg.full ? 16 : 4;
  {
    ++r.inputs;
    reset_peak(t.pid);
    const long base = status_kib(t.pid, "VmRSS");
    zmq::context_t ctx;
    dealer d(ctx, t.local(), {}, 5000);
    frames f{sig, "status", "{\"rid\":7}"};
    for (std::size_t i = 0; i < parts; ++i) f.push_back(std::string(L - 1024, 'y'));
    (void)d.send(f);
    auto b = d.next(10000ms);
    if (!b) {
      ++r.hangs;
      r.note("HANG: a message of " + std::to_string(parts + 3) + " parts was not answered");
    }
    r.note(std::to_string(parts) + " parts of " + mib(static_cast<long>(L >> 10)) + " MiB each (" +
           mib(static_cast<long>((parts * L) >> 10)) + " MiB): answered " +
           (b ? b->value("code", std::string("ok")) : std::string("not")) + ", peak RSS +" +
           mib(status_kib(t.pid, "VmHWM") - base) + " MiB");
  }
  // Within the limit, a large ask passes and comes back.
  {
    ++r.inputs;
    const std::string fits(L / 2, 'f');
    auto b = t.call("ask", json{{"target", t.canary}, {"payload", {{"echo", fits}}}}, 10s);
    if (!b || b->value("payload", json()) != json(fits)) r.fail("an ask of " + std::to_string(L / 2) + " bytes failed");
  }
}

// ---------------------------------------------------------------- class 4

/// A raw TCP connection: sends bytes, reads what comes back until the peer
/// closes or timeout passes. Returns whether the peer closed.
bool raw_tcp(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds timeout, bool hold = false) {
  const int fd = troupe::testing::connect_loopback(port);
  if (fd < 0) return false;
  bool closed = false;
  if (!bytes.empty()) (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (!hold) ::shutdown(fd, SHUT_WR);
  const auto until = steady::now() + timeout;
  char buf[4096];
  while (steady::now() < until) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      closed = true;
      break;
    }
  }
  ::close(fd);
  return closed;
}

/// A ZMTP 3 greeting (64 bytes) with the given mechanism and version.
std::string greeting(const std::string& mechanism, unsigned char major = 3, unsigned char minor = 0) {
  std::string g(64, '\0');
  g[0] = '\xff';
  g[9] = '\x7f';
  g[10] = static_cast<char>(major);
  g[11] = static_cast<char>(minor);
  g.replace(12, std::min<std::size_t>(mechanism.size(), 20), mechanism.substr(0, 20));
  return g;
}

struct keypair {
  std::string pub;
  std::string sec;
};
keypair new_keypair() {
  char pub[41];
  char sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) throw std::runtime_error("zmq_curve_keypair failed");
  return {pub, sec};
}

void class_unauthenticated(target& t, tally& r) {
  const std::string tcp = "tcp://" + t.sys.where();
  std::string server_key = slurp(t.sys.state_dir() / "curve" / "curve.pub");
  while (!server_key.empty() && (server_key.back() == '\n' || server_key.back() == ' ')) server_key.pop_back();
  (void)t.new_log();
  std::mt19937 rng(cfg.seed + 4);

  // What each refused client sends: admin commands, read commands, garbage.
  const std::vector<frames> requests{
      {sig, "shutdown", R"({"rid":1})"},
      {sig, "spawn", R"({"rid":2,"type":"Relay"})"},
      {sig, "kill", "{\"rid\":3,\"target\":\"" + t.canary + "\"}"},
      {sig, "load", R"({"rid":4,"path":"/etc/shadow"})"},
      {sig, "status", R"({"rid":5})"},
      {sig, "ask", "{\"rid\":6,\"target\":\"" + t.canary + "\",\"payload\":{\"echo\":1}}"},
      {sig, "status", "{not json"},
      {"XYZ\x01", "status", "{}"},
      {sig, "status", bomb(0, 80000)},
      {sig, "chgcap", R"({"rid":7,"op":"add","name":"pwned"})"},
  };
  const int connections = cfg.full ? 40 : 4;
  auto refused_client = [&](const std::string& what, const std::function<void(zmq::socket_t&)>& setup) {
    for (int i = 0; i < connections; ++i) {
      dealer d(t.ctx, tcp, setup);
      for (const auto& f : requests) {
        ++r.inputs;
        (void)d.send(f);
      }
      if (auto b = d.next(300ms)) r.fail(what + " got an answer: " + b->dump().substr(0, 120));
    }
  };
  // Plain text (NULL mechanism) on a CurveZMQ port.
  refused_client("a plain-text client", {});
  // CurveZMQ with a key nobody trusts (the system's right key).
  refused_client("an unknown client key", [&](zmq::socket_t& s) {
    const auto k = new_keypair();
    s.set(zmq::sockopt::curve_serverkey, server_key);
    s.set(zmq::sockopt::curve_publickey, k.pub);
    s.set(zmq::sockopt::curve_secretkey, k.sec);
  });
  // CurveZMQ expecting another server key.
  refused_client("a client with a wrong server key", [&](zmq::socket_t& s) {
    const auto k = new_keypair();
    s.set(zmq::sockopt::curve_serverkey, new_keypair().pub);
    s.set(zmq::sockopt::curve_publickey, k.pub);
    s.set(zmq::sockopt::curve_secretkey, k.sec);
  });
  // Bytes that are not ZMTP, or ZMTP with another mechanism or version.
  std::vector<std::string> garbage{
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11) + std::string(160, 'T'),
      std::string("\xff\0\0\0\0\0\0\0\x01\x7f", 10),
      std::string(70000, '\xAB'),
      "SSH-2.0-OpenSSH_9.0\r\n",
      greeting("NULL") + std::string("\x04\x19\x05READY\x0bSocket-Type\0\0\0\x06"
                                     "DEALER",
                                     34),
      greeting("PLAIN") + std::string("\x04\x10\x05HELLO\x04user\x04pass", 18),
      greeting("CURVE") + std::string("\x04\xc8\x05HELLO", 8) + std::string(194, '\0'),
      greeting("CURVE") + std::string("\x04\x05\x05HELLO", 8),
      greeting("GSSAPI"),
      greeting("XXXX"),
      greeting("NULL", 1, 0),
      greeting("NULL", 2, 0),
      greeting("CURVE", 3, 1),
      greeting("CURVE", 255, 255),
      greeting("CURVE").substr(0, 10),
      greeting("CURVE").substr(0, 11),
      std::string(1, '\xff'),
  };
  const std::size_t randoms = cfg.full ? 400 : 30;
  for (std::size_t i = 0; i < randoms; ++i) {
    std::string g = greeting(i % 2 ? "CURVE" : "NULL");
    std::string tail(rng() % 600, '\0');
    for (auto& c : tail) c = static_cast<char>(rng() % 256);
    const std::size_t cut = rng() % g.size();
    if (i % 3 == 0) g[cut] = static_cast<char>(rng() % 256);
    garbage.push_back(g + tail);
  }
  for (const auto& g : garbage) {
    ++r.inputs;
    (void)raw_tcp(t.sys.port(), g, 300ms);
  }
  // Idle connections that never finish a handshake, held at once.
  {
    const int idle = cfg.full ? 200 : 30;
    std::vector<int> fds;
    for (int i = 0; i < idle; ++i) {
      const int fd = troupe::testing::connect_loopback(t.sys.port());
      if (fd < 0) continue;  // counted only when connected, as before
      ++r.inputs;
      fds.push_back(fd);
    }
    if (!t.call("status", json::object(), status_bound)) {
      ++r.hangs;
      r.note("HANG: status while " + std::to_string(idle) + " idle TCP connections were open");
    }
    for (int fd : fds) ::close(fd);
  }
  // None of it reached a decoder.
  const std::string log = t.new_log();
  for (const char* decoded : {"malformed client message", "of an unauthenticated client"})
    if (log.find(decoded) != std::string::npos) r.fail(std::string("an unadmitted client was decoded: ") + decoded);
  if (log.find("refused a client connecting from") == std::string::npos) r.fail("no refusal logged");

  // A key with role read: each admin command is refused, the read ones work.
  const auto reader = new_keypair();
  auto trusted = t.sys.run({"trust-client", "attacker", reader.pub, "--role", "read"});
  if (trusted.exit_code != 0) {
    r.fail("trust-client: " + trusted.err);
    return;
  }
  dealer d(t.ctx, tcp, [&](zmq::socket_t& s) {
    s.set(zmq::sockopt::curve_serverkey, server_key);
    s.set(zmq::sockopt::curve_publickey, reader.pub);
    s.set(zmq::sockopt::curve_secretkey, reader.sec);
  });
  const json unknown = t.unknown_address();
  const std::vector<std::pair<std::string, json>> admin_only{
      {"shutdown", json::object()},     {"spawn", {{"type", "Relay"}}},
      {"kill", {{"target", t.canary}}}, {"load", {{"path", "/etc/shadow"}}},
      {"load", {{"group", "relay"}}},   {"unload", {{"package", "0123456789ab"}}},
      {"refresh", json::object()},      {"chgcap", {{"op", "add"}, {"name", "pwned"}}},
      {"move", {{"target", t.canary}}}, {"frobnicate", json::object()},
  };
  const int rounds = cfg.full ? 50 : 3;
  for (int i = 0; i < rounds; ++i) {
    for (const auto& [cmd, body] : admin_only) {
      ++r.inputs;
      auto b = d.call(cmd, body);
      if (!b) {
        ++r.hangs;
        r.note("HANG: a read client's '" + cmd + "' was not answered");
        continue;
      }
      const auto err = b->value("error", std::string());
      if (b->value("ok", true) || err.find("permission denied") == std::string::npos)
        r.fail("a read key's '" + cmd + "' was not refused: " + b->dump().substr(0, 160));
    }
    for (const auto& [cmd, body] : std::vector<std::pair<std::string, json>>{
             {"status", json::object()}, {"ask", {{"target", t.canary}, {"payload", {{"echo", 1}}}}}}) {
      ++r.inputs;
      auto b = d.call(cmd, body);
      if (!b || !b->value("ok", false)) r.fail("a read key's '" + cmd + "' failed");
    }
  }
  std::error_code ec;
  fs::remove(t.sys.home() / "clients" / "read" / "attacker.pub", ec);
}

// ---------------------------------------------------------------- class 5

void class_pipelined(target& t, tally& r) {
  const int total = 500;
  const int window = 10;
  const int rounds = cfg.full ? 40 : 4;
  const int clients = cfg.full ? 4 : 2;
  long slowest_ms = 0;
  for (int round = 0; round < rounds; ++round) {
    // Several clients at once, each 500 asks with 10 in flight.
    std::vector<std::thread> threads;
    std::vector<std::size_t> stalls(static_cast<std::size_t>(clients), 0);
    std::vector<long> slowest(static_cast<std::size_t>(clients), 0);
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        dealer d(t.ctx, t.local());
        int sent = 0;
        int got = 0;
        std::map<std::uint64_t, steady::time_point> in_flight;
        while (got < total) {
          while (sent < total && sent - got < window) {
            const std::uint64_t rid = static_cast<std::uint64_t>(sent) + 1;
            const bool ask = sent % 5 != 4;
            json body =
                ask ? json{{"rid", rid}, {"target", t.canary}, {"payload", {{"echo", sent}}}} : json{{"rid", rid}};
            if (!d.send(ask ? "ask" : "status", body)) break;
            in_flight[rid] = steady::now();
            ++sent;
          }
          auto b = d.next(answer_bound);
          if (!b) {
            ++stalls[static_cast<std::size_t>(c)];  // 5 s without any answer with 10 in flight: a stall
            return;
          }
          const auto rid = b->value("rid", json()).is_number() ? b->value("rid", json()).get<std::uint64_t>() : 0;
          if (auto it = in_flight.find(rid); it != in_flight.end()) {
            slowest[static_cast<std::size_t>(c)] = std::max(
                slowest[static_cast<std::size_t>(c)],
                static_cast<long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - it->second).count()));
            in_flight.erase(it);
            ++got;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int c = 0; c < clients; ++c) {
      r.inputs += total;
      if (stalls[static_cast<std::size_t>(c)] > 0) {
        ++r.hangs;
        r.note("HANG: a pipelined client stalled (round " + std::to_string(round) + ")");
      }
      slowest_ms = std::max(slowest_ms, slowest[static_cast<std::size_t>(c)]);
    }
  }
  r.note(std::to_string(rounds) + " rounds × " + std::to_string(clients) +
         " clients × 500 requests, 10 in flight; slowest answer " + std::to_string(slowest_ms) + " ms");
}

// ---------------------------------------------------------------- class 6

struct scratch_dir {
  fs::path dir;
  scratch_dir() {
    char tmpl[] = "/tmp/tra.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<manifests::pack_entry> relay_entries(std::string manifest = {}) {
  const fs::path dir = TROUPE_RELAY_V1_DIR;
  if (manifest.empty()) manifest = slurp(dir / "manifest.yaml");
  return {{"manifest.yaml", manifests::entry_kind::file, manifest, {}, false},
          {"libfixture_relay_v1.so", manifests::entry_kind::file, slurp(dir / "libfixture_relay_v1.so"), {}, true}};
}

void class_load(target& t, tally& r) {
  scratch_dir s;
  const fs::path d = s.dir;
  auto key = manifests::signing_key::read(TROUPE_DEV_KEY);
  if (!key) {
    r.fail("cannot read the development key");
    return;
  }
  auto dev_signed = [&](const std::vector<manifests::pack_entry>& e) {
    return manifests::sign_payload(manifests::write_tar(e), *key);
  };
  std::vector<std::pair<json, std::string>> loads;  // body, what it is
  auto path = [&](const fs::path& p, const std::string& what) { loads.push_back({{{"path", p.string()}}, what}); };

  // Special files and paths.
  const fs::path fifo = d / "fifo.tpkg";
  ::mkfifo(fifo.c_str(), 0600);
  path(fifo, "a FIFO");
  for (const char* p : {"/dev/zero", "/dev/null", "/dev/urandom", "/proc/self/environ", "/proc/self/mem", "/proc/kcore",
                        "/etc/shadow", "/etc/passwd", "/", "/tmp", "/nonexistent/x.tpkg", ""})
    path(p, p);
  path(d, "a directory");
  loads.push_back({{{"path", d.string()}, {"unsigned", true}}, "a directory, unsigned"});
  loads.push_back({{{"path", "/etc/shadow"}, {"unsigned", true}}, "/etc/shadow unsigned"});
  path(t.sys.state_dir() / "curve" / "curve.key", "the system's secret key");
  path(t.sys.home() / "keys", "the trusted keys' directory");
  path(t.sys.home() / "packages" / "..", "packages/..");
  path(std::string(5000, 'a'), "a 5000-byte name");
  path(fs::path("../../../../../../etc/shadow"), "a relative path up to /etc/shadow");
  loads.push_back({{{"path", std::string("/etc/shadow\0.tpkg", 17)}}, "a path with a NUL"});
  for (const auto& [name, to] : std::vector<std::pair<std::string, fs::path>>{{"shadow.tpkg", "/etc/shadow"},
                                                                              {"fifo-link.tpkg", fifo},
                                                                              {"zero.tpkg", "/dev/zero"},
                                                                              {"dangling.tpkg", d / "nothing"},
                                                                              {"dir-link.tpkg", "/etc"},
                                                                              {"loop-a.tpkg", d / "loop-b.tpkg"},
                                                                              {"loop-b.tpkg", d / "loop-a.tpkg"}}) {
    fs::create_symlink(to, d / name);
    path(d / name, "a symlink to " + to.string());
  }
  {
    const fs::path unreadable = d / "unreadable.tpkg";
    write_all(unreadable, "root:$6$not-a-package$:19000:0:99999:7:::\n");
    fs::permissions(unreadable, fs::perms::none);
    path(unreadable, "a file of mode 000");
  }
  {
    const int us = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::string sp = (d / "sock.tpkg").string();
    std::strncpy(sa.sun_path, sp.c_str(), sizeof sa.sun_path - 1);
    if (us >= 0 && ::bind(us, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) path(sp, "a socket");
    if (us >= 0) ::close(us);
  }
  {
    const fs::path sparse = d / "sparse.tpkg";  // over --max-package-size, without writing it
    { std::ofstream(sparse).flush(); }
    fs::resize_file(sparse, 300u << 20);
    path(sparse, "a 300 MB sparse file");
  }
  for (const char* g : {"../../etc", "", "relay/../relay", "*", ".incoming", "nosuch", "\n"})
    loads.push_back({{{"group", g}}, std::string("group ") + g});

  // Hostile archives: the fuzz corpus (odd first byte: a tar signed here
  // with the trusted key), crafted ones, truncations and bit flips.
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(TROUPE_FUZZ_CORPUS_DIR) / "archive")) {
    const std::string bytes = slurp(e.path());
    if (bytes.empty()) continue;
    const std::string rest = bytes.substr(1);
    const fs::path p = d / ("corpus-" + std::to_string(++n) + ".tpkg");
    write_all(p, (bytes[0] & 1) != 0 ? manifests::sign_payload(rest, *key) : rest);
    path(p, "corpus " + e.path().filename().string());
  }
  auto crafted = [&](const std::string& name, const std::string& bytes) {
    write_all(d / name, bytes);
    path(d / name, name);
  };
  {
    auto e = relay_entries();
    e.push_back({"../escaped", manifests::entry_kind::file, "x", {}, false});
    crafted("dotdot.tpkg", dev_signed(e));
  }
  {
    auto e = relay_entries();
    e.push_back({"/tmp/troupe-attack-absolute", manifests::entry_kind::file, "x", {}, false});
    crafted("absolute.tpkg", dev_signed(e));
  }
  {
    auto e = relay_entries();
    e.push_back({"lib/shadow", manifests::entry_kind::symlink, {}, "/etc/shadow", false});
    crafted("symlink-out.tpkg", dev_signed(e));
  }
  {
    auto e = relay_entries();
    e.push_back({"lib/shadow", manifests::entry_kind::hardlink, {}, "/etc/shadow", false});
    crafted("hardlink-out.tpkg", dev_signed(e));
  }
  {
    auto e = relay_entries();
    for (int i = 0; i < 10001; ++i) e.push_back({"f/" + std::to_string(i), manifests::entry_kind::file, "", {}, false});
    crafted("many-entries.tpkg", dev_signed(e));
  }
  crafted("bad-version.tpkg", dev_signed(relay_entries("package: relay\nversion: 1.x\nlibrary: libfixture_relay_v1.so\n"
                                                       "actors:\n  Relay: {}\n")));
  crafted("missing-lib.tpkg", dev_signed(relay_entries("package: relay\nversion: 9.0.0\nlibrary: lib/missing.so\n"
                                                       "actors:\n  Relay: {}\n")));
  crafted("lib-is-shadow.tpkg",
          dev_signed(relay_entries("package: relay\nversion: 9.0.1\nlibrary: ../../../../etc/shadow\n"
                                   "actors:\n  Relay: {}\n")));
  crafted("yaml-bomb.tpkg", dev_signed(relay_entries("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                                                     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                                                     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                                                     "package: relay\nversion: 9.0.2\n")));
  crafted("deep-yaml.tpkg", dev_signed(relay_entries(std::string(20000, '[') + std::string(20000, ']'))));
  crafted("unsigned.tpkg", manifests::write_tar(relay_entries()));
  crafted("empty.tpkg", "");
  crafted("zeros.tpkg", std::string(1u << 20, '\0'));
  {
    const auto stranger = d / "stranger";
    if (manifests::generate_key_pair(stranger)) {
      if (auto k = manifests::signing_key::read(d / "stranger.key"))
        crafted("stranger.tpkg", manifests::sign_payload(manifests::write_tar(relay_entries()), *k));
    }
  }
  // A package whose library does not register its manifest's type: a worker
  // starts, is refused and killed (SIGKILL, expected), nothing stays.
  crafted("phantom.tpkg", dev_signed(relay_entries("package: relay\nversion: 9.0.3\nlibrary: libfixture_relay_v1.so\n"
                                                   "actors:\n  Relay: {}\n  Phantom: {}\n")));
  const std::string good = slurp(TROUPE_ENCODERS_PKG);
  const int cuts = cfg.full ? 128 : 12;
  const int flips = cfg.full ? 256 : 12;
  std::mt19937 rng(cfg.seed + 6);
  for (int i = 0; i < cuts; ++i) {
    const std::size_t at = (good.size() * static_cast<std::size_t>(i)) / static_cast<std::size_t>(cuts);
    crafted("cut-" + std::to_string(i) + ".tpkg", good.substr(0, at));
  }
  for (int i = 0; i < flips; ++i) {
    std::string bytes = good;
    const std::size_t at = i < 8 ? bytes.size() - 1 - static_cast<std::size_t>(i) * 9 : rng() % bytes.size();
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
    crafted("flip-" + std::to_string(i) + ".tpkg", bytes);
  }

  const auto kept_before = t.package_files();
  const auto cache_before = [&] {
    std::size_t k = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(t.sys.home() / "cache", ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
      ++k;
    return k;
  };
  const std::size_t cache0 = cache_before();
  std::map<std::string, std::size_t> codes;
  long slowest = 0;
  dealer dl(t.ctx, t.local());
  for (const auto& [body, what] : loads) {
    ++r.inputs;
    const auto started = steady::now();
    auto b = dl.call("load", body, 20s);
    const long ms =
        static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started).count());
    slowest = std::max(slowest, ms);
    if (!b) {
      ++r.hangs;
      r.note("HANG: load of " + what + " not answered within 20 s");
      dl = dealer(t.ctx, t.local());
      continue;
    }
    ++codes[b->value("code", std::string("ok"))];
    if (b->value("ok", false) && !b->value("already_loaded", false))
      r.fail("loaded " + what + ": " + b->dump().substr(0, 160));
    if (!b->value("ok", false) && !one_line(*b)) r.fail("load of " + what + ": not one line");
    const std::string err = b->value("error", std::string());
    if (err.find("root:") != std::string::npos || err.find("$6$") != std::string::npos)
      r.fail("load of " + what + " shows file contents: " + err.substr(0, 120));
    if (t.package_files() != kept_before) {
      r.fail("load of " + what + " left files in packages/");
      for (const auto& f : t.package_files())
        if (kept_before.count(f) == 0) r.note("left: " + f);
    }
  }
  // cache/ID is kept once extracted, like an unloaded package's (PROTOCOL.md §6.1 step 4): counted, not failed.
  if (cache_before() != cache0)
    r.note("cache/ holds " + std::to_string(cache_before() - cache0) +
           " more extraction(s) (a package refused after extraction)");
  std::string c;
  for (const auto& [code, k] : codes) c += (c.empty() ? "" : ", ") + code + " " + std::to_string(k);
  r.note("answers: " + c + "; slowest " + std::to_string(slowest) + " ms");
  // The expected SIGKILL of the phantom package's worker is not a crash.
  (void)t.new_log();
}

// ---------------------------------------------------------------- class 7

/// As another user (run by setpriv): tries to connect to each socket and, if
/// it can, forges worker messages on it. Prints "PATH refused ERRNO" or
/// "PATH CONNECTED".
int probe_sockets(int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    const std::string p = argv[i];
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, p.c_str(), sizeof sa.sun_path - 1);
    const bool connected = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (!connected) {
      std::cout << p << " refused " << std::strerror(err) << "\n";
      continue;
    }
    std::cout << p << " CONNECTED\n";
    // It got in: forge what a worker would send, to show the damage.
    zmq::context_t ctx;
    zmq::socket_t dl(ctx, zmq::socket_type::dealer);
    dl.set(zmq::sockopt::linger, 500);
    dl.set(zmq::sockopt::routing_id, "w1");
    dl.connect("ipc://" + p);
    for (const char* cmd : {"hello", "fatal", "stopped", "created", "bye"})
      (void)ipc::send_control(dl, "", cmd, json{{"rid", 1}, {"worker", 1}, {"address", 16}, {"failed", true}});
  }
  return 0;
}

void class_other_uid(target& t, tally& r) {
  std::vector<std::string> sockets;
  std::error_code ec;
  for (auto it = fs::directory_iterator(t.sys.state_dir() / "run", ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    if (it->is_socket()) sockets.push_back(it->path().string());
  if (sockets.size() < 3) r.fail("fewer ipc sockets than expected: " + std::to_string(sockets.size()));
  std::error_code sec;
  const std::string self = fs::read_symlink("/proc/self/exe", sec).string();
  const int rounds = cfg.full ? 20 : 2;
  std::size_t refused = 0;
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::string> args{"--reuid=nobody", "--regid=nogroup", "--clear-groups", self, "--probe-sockets"};
    args.insert(args.end(), sockets.begin(), sockets.end());
    auto out = run_process("/usr/bin/setpriv", args, {{"HOME", "/nonexistent"}}, {}, 20s);
    if (out.exit_code != 0) {
      r.fail("the probe as nobody failed (" + std::to_string(out.exit_code) + "): " + out.err.substr(0, 200));
      return;
    }
    std::istringstream in(out.out);
    for (std::string line; std::getline(in, line);) {
      r.inputs += 5;  // a connection and the five forged messages it would carry
      if (line.find(" refused ") != std::string::npos)
        ++refused;
      else
        r.fail("nobody connected: " + line);
    }
  }
  r.note(std::to_string(sockets.size()) + " ipc sockets (run/ " + std::to_string(sockets.size()) +
         "), all refused to nobody: " + std::to_string(refused) + " connects");
  const std::string log = t.new_log();
  if (log.find("unknown peer") != std::string::npos) r.fail("a forged message reached the daemon");
}

// ---------------------------------------------------------------- class 9: the metrics port

/// One raw exchange with the HTTP listener of --metrics: connect, send bytes,
/// read what comes within wait (the listener may answer, close, or wait for
/// more), close. The answer's first bytes, empty when none.
std::string http_exchange(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds wait) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    const auto until = steady::now() + wait;
    char buf[4096];
    while (steady::now() < until && got.size() < 64) {
      pollfd p{fd, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) break;
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

void class_metrics_http(target& t, tally& r) {
  std::mt19937 rng(cfg.seed + 9);
  const std::uint16_t port = t.metrics_port;
  const std::vector<std::string> seeds{
      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /metrics HTTP/1.0\r\n\r\n",
      "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
      "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n",
      "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "GET http://127.0.0.1/metrics?" + std::string(3000, 'q') + " HTTP/1.1\r\n\r\n",
      "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'x') + "\r\n\r\n",
      "GET /metrics\r\n\r\n",
      std::string("GET /metr\0ics HTTP/1.1\r\n\r\n", 27),
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  // a TLS hello
      "SSH-2.0-OpenSSH_9.2\r\n",
  };
  auto check_answer = [&r](const std::string& what, const std::string& got) {
    if (!got.empty() && got.rfind("HTTP/1.1 ", 0) != 0) r.fail(what + ": not an HTTP answer: " + got.substr(0, 40));
  };
  for (const auto& s : seeds) {
    ++r.inputs;
    check_answer("seed", http_exchange(port, s, 300ms));
  }
  // Mutations of the seeds: flipped, cut and duplicated bytes.
  const int mutations = cfg.full ? 3000 : 300;
  for (int i = 0; i < mutations; ++i) {
    std::string m = seeds[rng() % 4];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      const std::size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          m.erase(at, 1 + rng() % 8);
          break;
        default:
          m.insert(at, std::string(1 + rng() % 64, static_cast<char>(rng() % 256)));
      }
    }
    ++r.inputs;
    check_answer("mutation", http_exchange(port, m, 100ms));
  }
  // Pipelined requests on one connection, and more connections than it takes.
  {
    std::string many;
    for (int i = 0; i < 200; ++i) many += "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    ++r.inputs;
    check_answer("pipelined", http_exchange(port, many, 500ms));
  }
  {
    std::vector<int> held;
    for (int i = 0; i < (cfg.full ? 200 : 64); ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      sa.sin_port = htons(port);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
        (void)::send(fd, "GET /met", 8, MSG_NOSIGNAL);
      held.push_back(fd);
      ++r.inputs;
    }
    for (int fd : held) ::close(fd);
  }
  // Still serving: a plain scrape is answered 200 (once the held connections are gone).
  const auto until = steady::now() + 5s;
  std::string ok;
  while (steady::now() < until && ok.rfind("HTTP/1.1 200", 0) != 0) {
    ok = http_exchange(port, "GET /metrics HTTP/1.0\r\n\r\n", 1s);
    if (ok.rfind("HTTP/1.1 200", 0) != 0) std::this_thread::sleep_for(50ms);
  }
  if (ok.rfind("HTTP/1.1 200", 0) != 0) r.fail("/metrics not answered 200 after the attack: " + ok.substr(0, 40));
}

// ---------------------------------------------------------------- class 10: the dashboard

void class_dashboard_http(target& t, tally& r) {
  std::mt19937 rng(cfg.seed + 10);
  const std::uint16_t port = t.metrics_port;  // --http on the same address
  std::string token;
  std::ifstream(t.sys.state_dir() / "dashboard.token") >> token;
  if (token.size() != 64) return r.fail("no dashboard token in " + (t.sys.state_dir() / "dashboard.token").string());
  const auto caps_before = t.call("status", json::object());
  const auto actors_before = t.call("actors", json::object());
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  const std::string auth = "Authorization: Bearer " + token + "\r\n";
  auto post = [&](const std::string& path, const std::string& headers, const std::string& body) {
    return "POST " + path + " HTTP/1.1\r\n" + headers +
           "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  };
  const std::string change = R"({"op": "add", "name": "owned"})";
  // Each must be refused with its status, and change nothing.
  const std::vector<std::pair<std::string, std::string>> refused{
      {post("/api/chgcap", host, change), "HTTP/1.1 401"},
      {post("/api/chgcap", host + "Authorization: Bearer " + std::string(64, 'f') + "\r\n", change), "HTTP/1.1 401"},
      {post("/api/chgcap", host + "Authorization: Bearer " + token.substr(0, 63) + "\r\n", change), "HTTP/1.1 401"},
      {post("/api/chgcap", host + "Authorization: Bearer " + token + "0\r\n", change), "HTTP/1.1 401"},
      {post("/api/chgcap", "Host: evil.example:" + std::to_string(port) + "\r\n" + auth, change), "HTTP/1.1 421"},
      {post("/api/chgcap", auth, change), "HTTP/1.1 421"},  // no Host at all
      {post("/api/chgcap", host + auth + "Origin: http://evil.example\r\n", change), "HTTP/1.1 403"},
      {post("/api/chgcap", host + auth, "{\"op\": "), "HTTP/1.1 400"},
      {post("/api/chgcap", host + auth, std::string(20000, '[')), "HTTP/1.1 400"},
      {post("/api/ask", host + auth, R"({"target": "nobody", "payload": 1, "timeout_ms": -5})"), "HTTP/1.1 400"},
      {post("/api/chgcap", host + auth, std::string(100000, '{')).substr(0, 2000), "HTTP/1.1 413"},  // announced
      {"GET /api/actors?limit=99999999999999999999 HTTP/1.1\r\n" + host + auth + "\r\n", "HTTP/1.1 400"},
      {"GET /api/actors?after=%zz HTTP/1.1\r\n" + host + auth + "\r\n", "HTTP/1.1 400"},
      {"GET /api/events?since=-1 HTTP/1.1\r\n" + host + auth + "\r\n", "HTTP/1.1 400"},
      {"OPTIONS /api/chgcap HTTP/1.1\r\n" + host + "Origin: http://evil.example\r\n\r\n", "HTTP/1.1 405"},
  };
  for (const auto& [req, want] : refused) {
    ++r.inputs;
    const auto got = http_exchange(port, req, 2s);
    if (got.rfind(want, 0) != 0)
      r.fail("dashboard: '" + req.substr(0, 60) + "…' got '" + got.substr(0, 20) + "', not " + want);
  }
  // Mutated requests, with the right token and without: anything but a crash.
  // No chgcap among them: a mutation that still parsed would be a real change.
  const std::vector<std::string> seeds{post("/api/tell", host + auth, R"({"target": "@0.2", "payload": "x"})"),
                                       post("/api/ask", host + auth, R"({"target": "@0.1", "payload": [1, {"a": 2}]})"),
                                       "GET /api/actors?limit=5&state=running HTTP/1.1\r\n" + host + auth + "\r\n"};
  const int mutations = cfg.full ? 2000 : 200;
  for (int i = 0; i < mutations; ++i) {
    std::string m = seeds[rng() % seeds.size()];
    // The token's bytes stay whole (a valid change would be a real chgcap):
    // mutate the request line, the other fields and the body.
    const std::size_t keep_from = m.find("Authorization"), keep_to = keep_from + 22 + 64;
    for (int e = 0, edits = 1 + static_cast<int>(rng() % 4); e < edits; ++e) {
      std::size_t at = rng() % m.size();
      if (at >= keep_from && at < keep_to) at = keep_to;
      if (at >= m.size()) continue;
      if (rng() % 2 == 0)
        m[at] = static_cast<char>(rng() % 256);
      else
        m.insert(at, std::string(1 + rng() % 32, static_cast<char>(rng() % 256)));
    }
    ++r.inputs;
    const auto got = http_exchange(port, m, 200ms);
    if (!got.empty() && got.rfind("HTTP/1.1 ", 0) != 0)
      r.fail("dashboard mutation: not an HTTP answer: " + got.substr(0, 40));
  }
  // More event streams than it serves, none of them reading.
  std::vector<int> streams;
  int limited = 0;
  for (int i = 0; i < 12; ++i) {
    const int fd = troupe::testing::connect_loopback(port, 2s);
    if (fd < 0) break;
    const std::string req = "GET /api/events HTTP/1.1\r\n" + host + auth + "\r\n";
    (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[64] = {};
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) > 0 && ::recv(fd, buf, sizeof buf - 1, 0) > 0 &&
        std::string(buf).rfind("HTTP/1.1 503", 0) == 0)
      ++limited;
    streams.push_back(fd);
    ++r.inputs;
  }
  if (limited != 4) r.fail("dashboard: " + std::to_string(limited) + " of 12 event streams refused, not 4 (8 at most)");
  for (int fd : streams) ::close(fd);
  // Nothing changed: capabilities and actors as before.
  const auto caps_after = t.call("status", json::object());
  if (!caps_before || !caps_after || (*caps_before)["capabilities"] != (*caps_after)["capabilities"])
    r.fail("dashboard: the capabilities changed");
  const auto actors_after = t.call("actors", json::object());
  if (!actors_before || !actors_after || (*actors_before)["total"] != (*actors_after)["total"])
    r.fail("dashboard: the actors changed");
  // Still serving: the token is accepted.
  const auto ok = http_exchange(port, "GET /api/status HTTP/1.1\r\n" + host + auth + "Connection: close\r\n\r\n", 2s);
  if (ok.rfind("HTTP/1.1 200", 0) != 0)
    r.fail("dashboard: /api/status not answered 200 after the attack: " + ok.substr(0, 40));
}

// ---------------------------------------------------------------- class 8

/// Local clients connected at once, each sending status; returns how many
/// were answered, and notes the daemon's CPU time meanwhile.
std::size_t client_burst(target& t, tally& r, int clients, const std::string& what) {
  const double cpu0 = cpu_seconds(t.pid);
  const auto t0 = steady::now();
  std::vector<std::unique_ptr<dealer>> ds;
  for (int i = 0; i < clients; ++i) {
    ds.push_back(std::make_unique<dealer>(t.ctx, t.local()));
    ++r.inputs;
    (void)ds.back()->send("status", json{{"rid", i}});
  }
  std::size_t answered = 0;
  const auto until = steady::now() + answer_bound;
  for (auto& d : ds) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    answered += d->next(std::max(left, std::chrono::milliseconds(1))).has_value();
  }
  const double cpu = cpu_seconds(t.pid) - cpu0;
  const double wall = std::chrono::duration<double>(steady::now() - t0).count();
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: %d local clients at once, %zu answered; daemon CPU %.1f s in %.1f s",
                what.c_str(), clients, answered, cpu, wall);
  r.note(buf);
  return answered;
}

/// n TCP connections to the public port held for a second; status asked
/// meanwhile over the local socket, then after they are closed.
void tcp_hold(target& t, tally& r, int n, const std::string& what) {
  const double cpu0 = cpu_seconds(t.pid);
  const auto t0 = steady::now();
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    // connect() waits at most 300 ms on a full backlog.
    const int fd = troupe::testing::connect_loopback(t.sys.port(), 300ms);
    if (fd < 0) continue;  // a full backlog: the next one may get in
    ++r.inputs;
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(1s);
  const auto during = t.call("status", json::object(), status_bound);
  const double cpu = cpu_seconds(t.pid) - cpu0;
  const double wall = std::chrono::duration<double>(steady::now() - t0).count();
  for (int fd : fds) ::close(fd);
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: %d TCP connections held; status %s meanwhile; daemon CPU %.1f s in %.1f s",
                what.c_str(), n, during ? "answered" : "NOT answered", cpu, wall);
  r.note(buf);
  if (!alive(t.pid)) return;
  if (!t.call("status", json::object(), status_bound)) {
    ++r.hangs;
    r.note("HANG: status after the TCP connections left (" + what + ")");
  }
}

void class_exhaustion(target& t, tally& r) {
  // Runs only as the init of a pid namespace (checked by the caller).
  std::vector<std::string> loners;
  auto spawn_until_refused = [&](std::size_t at_most, const std::string& expected) {
    for (std::size_t i = 0; i < at_most; ++i) {
      ++r.inputs;
      auto b = t.call("spawn", json{{"type", "Loner"}}, 20s);
      if (!b) {
        ++r.hangs;
        r.note("HANG: a spawn was not answered within 20 s");
        return;
      }
      if (b->value("ok", false)) {
        loners.push_back(b->value("address", std::string()));
        continue;
      }
      // OPERATIONS.md §3.2 says code `limit`; placement answers `refused`
      // with the same reason inside: either is a refusal at the limit.
      const auto err = b->value("error", std::string());
      const auto code = b->value("code", std::string());
      if ((code != "limit" && code != "refused") || err.find(expected) == std::string::npos || !one_line(*b))
        r.fail("refused otherwise than at the limit: " + b->dump().substr(0, 200));
      r.note(std::to_string(loners.size()) + " workers spawned, then " + code + ": " + err.substr(0, 150));
      return;
    }
    r.fail("no limit after " + std::to_string(at_most) + " spawns");
  };
  auto kill_all = [&] {
    for (const auto& a : loners) {
      ++r.inputs;
      auto b = t.call("kill", json{{"target", a}}, 20s);
      if (!b || !b->value("ok", false)) r.fail("kill " + a + ": " + (b ? b->dump() : std::string("no answer")));
    }
    loners.clear();
  };
  auto gone = [&] {
    if (alive(t.pid)) return false;
    r.note("the daemon is gone; its log ends: " + [&] {
      const std::string log = t.sys.log();
      return log.substr(log.size() > 200 ? log.size() - 200 : 0);
    }());
    return true;
  };
  // The worker cap (--max-workers).
  spawn_until_refused(200, "the most this system allows");
  kill_all();

  // The descriptor limit, lowered under the daemon.
  rlimit old{};
  if (::prlimit(t.pid, RLIMIT_NOFILE, nullptr, &old) != 0) {
    r.fail(std::string("prlimit: ") + std::strerror(errno));
    return;
  }
  const rlim_t tight_n = fd_count(t.pid) + 60;
  // The soft limit only: raising a hard limit back needs CAP_SYS_RESOURCE,
  // which a container may not grant.
  const rlimit tight{tight_n, old.rlim_max};
  if (::prlimit(t.pid, RLIMIT_NOFILE, &tight, nullptr) != 0) {
    r.fail(std::string("prlimit: ") + std::strerror(errno));
    return;
  }
  spawn_until_refused(40, "descriptors in use");
  // What the refusal keeps free serves clients: fewer than 32 at once.
  const int within = 20;
  if (client_burst(t, r, within, "within the reserve") != static_cast<std::size_t>(within))
    r.fail("clients within the descriptor reserve were not all answered");
  if (gone()) return;
  // TCP connections (no handshake needed to take a descriptor), within the reserve.
  tcp_hold(t, r, within, "within the reserve");
  if (gone()) return;
  kill_all();
  if (::prlimit(t.pid, RLIMIT_NOFILE, &old, nullptr) != 0) r.fail(std::string("prlimit back: ") + std::strerror(errno));
  spawn_until_refused(200, "the most this system allows");  // room is back
  kill_all();
  if (!cfg.full) return;
  // Last, as it ends the daemon today (docs/SECURITY.md §3): more clients
  // than free descriptors. Unauthenticated TCP connections take them (the
  // handshake comes after the accept), then the next local connection makes
  // libzmq's ipc listener abort on EMFILE.
  std::this_thread::sleep_for(1s);  // the Loners' descriptors go
  if (::prlimit(t.pid, RLIMIT_NOFILE, &tight, nullptr) != 0) return;
  spawn_until_refused(40, "descriptors in use");
  tcp_hold(t, r, 200, "past the reserve");
  if (gone()) return;
  (void)client_burst(t, r, 200, "past the reserve");
  if (gone()) return;
  kill_all();
  (void)::prlimit(t.pid, RLIMIT_NOFILE, &old, nullptr);
}

// ---------------------------------------------------------------- main

int usage() {
  std::cerr << "usage: troupe-attack [--full] [--only N[,N...]] [--seed N]\n"
               "  Replays hostile input of 8 classes against a live troupe system it starts;\n"
               "  prints one line per class and \"N inputs, C crashes, H hangs, L leaks\".\n"
               "  Class 8 needs a pid namespace: sh tests/integration/in_pid_namespace.sh troupe-attack\n";
  return 2;
}

std::string line_of(const tally& r) {
  char buf[512];
  if (r.skipped) {
    std::snprintf(buf, sizeof buf, "class %d %-22s skipped: %s", r.number, r.name.c_str(), r.skip_reason.c_str());
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "class %d %-22s %7zu inputs %6.1f s  fds %zu->%zu  rss %s->%s MiB  crashes %zu hangs %zu leaks %zu%s",
                r.number, r.name.c_str(), r.inputs, r.seconds, r.before.fds, r.after.fds, mib(r.before.rss_kib).c_str(),
                mib(r.after.rss_kib).c_str(), r.crashes, r.hangs, r.leaks,
                r.failures ? ("  FAILURES " + std::to_string(r.failures)).c_str() : "");
  return buf;
}

int run_attack() {
  const bool in_pid_namespace = ::getpid() == 1;
  const bool root = ::geteuid() == 0;
  // The worst of issue 13's findings: a system's files open to everyone.
  const mode_t old_umask = ::umask(0);
  std::optional<test_system> sys_holder;
  const std::uint16_t metrics_port = troupe::testing::free_port();
  try {
    sys_holder.emplace(std::vector<std::string>{"--max-client-message", "4M", "--max-workers", cfg.full ? "48" : "12",
                                                "--metrics", std::to_string(metrics_port), "--http",
                                                std::to_string(metrics_port), "--caps", "attack=1"});
  } catch (const std::exception& e) {
    ::umask(old_umask);
    std::cerr << "troupe-attack: " << e.what() << "\n";
    return 1;
  }
  ::umask(old_umask);
  test_system& sys = *sys_holder;
  target t(sys);
  t.pid = sys.daemon_pid();
  t.metrics_port = metrics_port;
  for (const char* pkg : {TROUPE_RELAY_V1_PKG, TROUPE_SUPERVISION_PKG, TROUPE_ENCODERS_PKG}) {
    auto l = sys.run({"load", pkg});
    if (l.exit_code != 0) {
      std::cerr << "troupe-attack: load " << pkg << ": " << l.err;
      return 1;
    }
  }
  auto st = t.call("status", json::object());
  auto sp = t.call("spawn", json{{"type", "Relay"}});
  if (!st || !sp || !sp->value("ok", false)) {
    std::cerr << "troupe-attack: the system does not serve\n";
    return 1;
  }
  t.system_id = st->value("system", std::string());
  t.canary = sp->value("address", std::string());
  auto view = t.canary_view();
  t.canary_worker = view && (*view)["worker_pid"].is_number() ? (*view)["worker_pid"].get<int>() : 0;
  // Quiescent before the first baseline: the standby replaced after the
  // loads, and the descriptor count steady for a second (bounded).
  {
    const auto until = steady::now() + 15s;
    std::size_t last = 0;
    int steady_for = 0;
    while (steady::now() < until && steady_for < 10) {
      auto s = t.call("status", json::object());
      const bool standby = s && s->value("standby_ready", -1) == s->value("standby_target", -2);
      const std::size_t now = fd_count(t.pid);
      steady_for = standby && now == last ? steady_for + 1 : 0;
      last = now;
      std::this_thread::sleep_for(100ms);
    }
  }
  (void)t.new_log();
  t.canary_process = ::fork();
  if (t.canary_process < 0) {
    std::cerr << "troupe-attack: fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (t.canary_process == 0) {
    for (;;) ::pause();
  }
  std::cout << "troupe-attack: " << (cfg.full ? "full" : "bounded") << " run against " << sys.where() << " (pid "
            << t.pid << "), canary " << t.canary << "; seed " << cfg.seed << "\n"
            << std::flush;

  struct klass {
    int number;
    const char* name;
    void (*run)(target&, tally&);
    std::string skip;
  };
  std::vector<klass> classes{
      {1, "malformed messages", class_malformed, ""},
      {2, "JSON bombs", class_bombs, ""},
      {3, "oversized frames", class_oversized, ""},
      {4, "unauthenticated TCP", class_unauthenticated, ""},
      {5, "pipelined requests", class_pipelined, ""},
      {6, "hostile load paths", class_load, ""},
      {7, "worker plane, other uid", class_other_uid,
       root && fs::exists("/usr/bin/setpriv") ? "" : "needs root and setpriv to act as another user"},
      {9, "metrics HTTP port", class_metrics_http, ""},  // before exhaustion, which may leave no descriptor
      {10, "dashboard HTTP API", class_dashboard_http, ""},
      {8, "exhaustion", class_exhaustion, in_pid_namespace ? "" : "not the init of a pid namespace"},
  };
  std::vector<tally> results;
  const sample start = probe(t.pid);
  for (const auto& k : classes) {
    if (!cfg.only.empty() && cfg.only.count(k.number) == 0) continue;
    tally r;
    r.number = k.number;
    r.name = k.name;
    if (!k.skip.empty() || t.dead) {
      r.skipped = true;
      r.skip_reason = t.dead ? "the daemon is gone" : k.skip;
    } else {
      r.before = probe(t.pid);
      r.fds_before = fd_targets(t.pid);
      const auto t0 = steady::now();
      try {
        k.run(t, r);
      } catch (const std::exception& e) {
        r.fail(std::string("the attack itself failed: ") + e.what());
      }
      check_after(t, r);
      r.seconds = std::chrono::duration<double>(steady::now() - t0).count();
    }
    std::cout << line_of(r) << "\n";
    for (const auto& n : r.notes) std::cout << "    " << n << "\n";
    std::cout << std::flush;
    results.push_back(r);
  }
  std::size_t inputs = 0, crashes = 0, hangs = 0, leaks = 0, failures = 0;
  for (const auto& r : results) {
    inputs += r.inputs;
    crashes += r.crashes;
    hangs += r.hangs;
    leaks += r.leaks;
    failures += r.failures;
  }
  const sample end = t.dead ? sample{} : probe(t.pid);
  std::cout << "daemon overall: fds " << start.fds << "->" << end.fds << ", rss " << mib(start.rss_kib) << "->"
            << mib(end.rss_kib) << " MiB\n";
  if (failures) std::cout << failures << " expected refusals or answers missing (see FAIL above)\n";
  std::cout << inputs << " inputs, " << crashes << " crashes, " << hangs << " hangs, " << leaks << " leaks\n"
            << std::flush;
  if (t.canary_process > 0) {
    ::kill(t.canary_process, SIGKILL);  // our own child: positive, created above
    ::waitpid(t.canary_process, nullptr, 0);
  }
  return crashes + hangs + leaks + failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--probe-sockets") return probe_sockets(argc, argv);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--full") {
      cfg.full = true;
    } else if (a == "--only" && i + 1 < argc) {
      std::stringstream in(argv[++i]);
      for (std::string n; std::getline(in, n, ',');) cfg.only.insert(std::atoi(n.c_str()));
    } else if (a == "--seed" && i + 1 < argc) {
      cfg.seed = static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      return usage();
    }
  }
  try {
    return run_attack();
  } catch (const std::exception& e) {
    std::cerr << "troupe-attack: " << e.what() << "\n";
    return 1;
  }
}
