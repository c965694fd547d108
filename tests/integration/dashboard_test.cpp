// The web dashboard of `--http` (docs/OPERATIONS.md §10.4, PROTOCOL.md §6.7,
// SECURITY.md §2): its HTTP API against a live system, hostile requests that
// must each get a clear refusal and change nothing, chgcap of another system
// of the convention, and the page itself in a real headless Chromium
// (tests/browser/dashboard.mjs, puppeteer-core on Debian's /usr/bin/chromium)
// that asks an actor, moves one by toggling capabilities and sees the
// restart of a worker it kills. Runs in its own pid namespace (it kills a
// worker the daemon reports).
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using troupe::testing::eventually;
using troupe::testing::json;
using troupe::testing::run_result;
using troupe::testing::test_system;

namespace {

using steady = std::chrono::steady_clock;

std::string read_token(const test_system& s) {
  std::ifstream in(s.state_dir() / "dashboard.token");
  std::string t;
  std::getline(in, t);
  return t;
}

/// A connection to 127.0.0.1:port, closed when destroyed.
struct connection {
  int fd = -1;
  explicit connection(std::uint16_t port) {
    fd = troupe::testing::connect_loopback(port, 2s);
    REQUIRE(fd >= 0);
  }
  ~connection() {
    if (fd >= 0) ::close(fd);
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  void send(const std::string& bytes) const { REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) >= 0); }
  /// Reads until pred holds on what came, the peer closes, or wait passes.
  std::string read_until(const std::function<bool(const std::string&)>& pred, std::chrono::milliseconds wait) {
    const auto until = steady::now() + wait;
    char buf[8192];
    while (steady::now() < until && !(pred && pred(got))) {
      pollfd p{fd, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
      if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) break;
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  std::string got;
};

struct http_answer {
  int status = 0;
  std::string head;  // status line and header fields
  std::string body;
  [[nodiscard]] std::string header(const std::string& name) const {
    std::string lower_head = head;
    std::string lower_name = name + ":";
    for (auto& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : lower_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = lower_head.find("\r\n" + lower_name);
    if (at == std::string::npos) return {};
    const auto start = at + 2 + lower_name.size();
    const auto end = head.find("\r\n", start);
    std::string v = head.substr(start, end - start);
    return v.substr(v.find_first_not_of(' '));
  }
  [[nodiscard]] json body_json() const {
    INFO(head << body);
    return json::parse(body);
  }
};

http_answer parse_answer(const std::string& raw) {
  http_answer a;
  const auto end = raw.find("\r\n\r\n");
  a.head = raw.substr(0, end);
  if (end != std::string::npos) a.body = raw.substr(end + 4);
  if (raw.rfind("HTTP/1.1 ", 0) == 0) a.status = std::atoi(raw.c_str() + 9);
  return a;
}

/// One request on a connection of its own (Connection: close); headers:
/// whole lines "Name: value".
http_answer request(std::uint16_t port, const std::string& method, const std::string& target,
                    const std::vector<std::string>& headers, const std::string& body = {},
                    const std::string& host = {}) {
  connection c(port);
  std::string r = method + " " + target +
                  " HTTP/1.1\r\nHost: " + (host.empty() ? "127.0.0.1:" + std::to_string(port) : host) +
                  "\r\nConnection: close\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "\r\n" + body;
  c.send(r);
  return parse_answer(c.read_until(nullptr, 10s));
}

std::string bearer(const std::string& token) { return "Authorization: Bearer " + token; }

json caps_of(const test_system& s) {
  auto r = s.run({"--json", "status"});
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out)["capabilities"];
}

/// The encoders of the example whose types need capabilities
/// (examples/encoders/manifest-convention.yaml), packed and signed with the
/// build's development key.
fs::path pack_convention_encoders(const test_system& s) {
  const fs::path dir = s.home() / "work" / "encoders";
  fs::create_directories(dir);
  fs::copy(TROUPE_ENCODERS_DIR, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::copy_file(fs::path(TROUPE_SOURCE_DIR) / "examples/encoders/manifest-convention.yaml", dir / "manifest.yaml",
                fs::copy_options::overwrite_existing);
  const fs::path out = s.home() / "work" / "encoders-1.1.0.tpkg";
  auto r = s.run({"pack", (dir / "manifest.yaml").string(), "--key", TROUPE_DEV_KEY, "--out", out.string()});
  INFO("troupe pack: " << r.err);
  REQUIRE(r.exit_code == 0);
  return out;
}

}  // namespace

TEST_CASE("the dashboard's API answers with the token and refuses everything else, changing nothing") {
  // --http and --metrics on one address: one listener serves both.
  const std::uint16_t web = troupe::testing::free_port();
  test_system sys({"--caps", "morse", "--http", std::to_string(web), "--metrics", "127.0.0.1:" + std::to_string(web)});
  sys.load(TROUPE_ENCODERS_PKG);
  const std::string morse = sys.spawn({"Morse", "--name", "morse"});
  const std::string token = read_token(sys);
  REQUIRE(token.size() == 64);
  CHECK((fs::status(sys.state_dir() / "dashboard.token").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK_THAT(sys.log(), Catch::Contains("dashboard on http://127.0.0.1:" + std::to_string(web) + "/"));
  CHECK_THAT(sys.log(), !Catch::Contains(token));  // the URL only, never its token

  SECTION("troupe dashboard prints the URL with the token after '#'") {
    auto r = sys.run({"dashboard"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "http://127.0.0.1:" + std::to_string(web) + "/#token=" + token + "\n");
    auto st = sys.run({"--json", "status"});
    CHECK(json::parse(st.out)["dashboard"] == "http://127.0.0.1:" + std::to_string(web) + "/");
  }

  SECTION("the page, its assets and /metrics on the same listener") {
    auto page = request(web, "GET", "/", {});
    CHECK(page.status == 200);
    CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
    CHECK_THAT(page.header("Content-Security-Policy"), Catch::Contains("default-src 'none'") &&
                                                           Catch::Contains("script-src 'self'") &&
                                                           Catch::Contains("frame-ancestors 'none'"));
    CHECK(page.header("Cache-Control") == "no-cache");
    CHECK(page.header("X-Content-Type-Options") == "nosniff");
    CHECK_THAT(page.body, Catch::Contains("<script src=\"/app.js\""));
    CHECK(request(web, "GET", "/app.js", {}).header("Content-Type") == "text/javascript; charset=utf-8");
    CHECK(request(web, "GET", "/app.css", {}).header("Content-Type") == "text/css; charset=utf-8");
    CHECK(request(web, "GET", "/favicon.svg", {}).header("Content-Type") == "image/svg+xml");
    auto head = request(web, "HEAD", "/", {});
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    auto metrics = request(web, "GET", "/metrics", {});
    CHECK(metrics.status == 200);
    CHECK_THAT(metrics.body, Catch::Contains("troupe_"));
    CHECK(request(web, "GET", "/nothing", {}).status == 404);
  }

  SECTION("reads with the token") {
    auto st = request(web, "GET", "/api/status", {bearer(token)});
    REQUIRE(st.status == 200);
    CHECK(st.header("Content-Type") == "application/json");
    CHECK(st.header("Cache-Control") == "no-store");
    CHECK(st.body_json()["port"] == sys.port());
    CHECK(st.body_json().contains("rid") == false);
    auto actors = request(web, "GET", "/api/actors?limit=10", {bearer(token)});
    REQUIRE(actors.status == 200);
    CHECK(actors.body_json()["actors"][0]["address"] == morse);
    CHECK(request(web, "GET", "/api/systems", {bearer(token)}).body_json()["systems"].size() == 1);
    CHECK(request(web, "GET", "/api/packages", {bearer(token)}).body_json()["packages"][0]["group"] == "encoders");
  }

  SECTION("ask and tell an actor, chgcap this system") {
    auto ask = request(web, "POST", "/api/ask", {bearer(token), "Content-Type: application/json"},
                       R"({"target": "morse", "payload": "SOS"})");
    REQUIRE(ask.status == 200);
    CHECK(ask.body_json()["payload"] == "... --- ...");
    auto tell = request(web, "POST", "/api/tell", {bearer(token), "Content-Type: application/json"},
                        R"({"target": ")" + morse + R"(", "payload": "E"})");
    CHECK(tell.status == 200);
    CHECK(tell.body_json()["address"] == morse);
    auto unknown = request(web, "POST", "/api/ask", {bearer(token), "Content-Type: application/json"},
                           R"({"target": "nobody", "payload": 1})");
    CHECK(unknown.status == 404);
    CHECK(unknown.body_json()["code"] == "not_found");
    auto add = request(web, "POST", "/api/chgcap", {bearer(token), "Content-Type: application/json"},
                       R"({"op": "add", "name": "gpu"})");
    REQUIRE(add.status == 200);
    CHECK(add.body_json()["capabilities"] == json{{"gpu", true}, {"morse", true}});
    CHECK(caps_of(sys) == json{{"gpu", true}, {"morse", true}});
    auto bad = request(web, "POST", "/api/chgcap", {bearer(token), "Content-Type: application/json"},
                       R"({"op": "add", "name": "a,b"})");
    CHECK(bad.status == 400);
    CHECK(bad.body_json()["error"] == "chgcap: 'a,b' is not a capability name");
    auto nowhere = request(web, "POST", "/api/chgcap", {bearer(token), "Content-Type: application/json"},
                           R"({"system": 1, "op": "add", "name": "x"})");
    CHECK(nowhere.status == 404);
    CHECK(nowhere.body_json()["error"] == "no system on port 1 in the convention");
  }

  SECTION("hostile requests: a clear refusal each, and nothing changes") {
    const json caps = caps_of(sys);
    const std::string chg = R"({"op": "add", "name": "owned"})";
    const std::string type = "Content-Type: application/json";
    struct attempt {
      const char* what;
      http_answer got;
      int status;
      const char* error;
    };
    std::vector<attempt> attempts{
        {"no token", request(web, "POST", "/api/chgcap", {type}, chg), 401, "needs its token"},
        {"wrong token", request(web, "POST", "/api/chgcap", {bearer(std::string(64, '0')), type}, chg), 401,
         "wrong dashboard token"},
        {"a token one character short", request(web, "POST", "/api/chgcap", {bearer(token.substr(1)), type}, chg), 401,
         "wrong dashboard token"},
        {"Basic, not Bearer", request(web, "POST", "/api/chgcap", {"Authorization: Basic " + token, type}, chg), 401,
         "needs its token"},
        {"a read without the token", request(web, "GET", "/api/actors", {}), 401, "needs its token"},
        {"events without the token", request(web, "GET", "/api/events", {}), 401, "needs its token"},
        {"DNS rebinding: another Host",
         request(web, "POST", "/api/chgcap", {bearer(token), type}, chg, "evil.example:" + std::to_string(web)), 421,
         "is not this dashboard's address"},
        {"the page under another Host", request(web, "GET", "/", {}, {}, "evil.example:" + std::to_string(web)), 421,
         "is not this dashboard's address"},
        {"another origin",
         request(web, "POST", "/api/chgcap", {bearer(token), type, "Origin: http://evil.example"}, chg), 403,
         "is not this dashboard's"},
        {"not JSON", request(web, "POST", "/api/chgcap", {bearer(token), type}, "{\"op\": \"add\", "), 400,
         "the body is not JSON"},
        {"a JSON array", request(web, "POST", "/api/chgcap", {bearer(token), type}, "[1, 2]"), 400,
         "must be a JSON object"},
        {"too deep",
         request(web, "POST", "/api/ask", {bearer(token), type}, std::string(5000, '[') + std::string(5000, ']')), 400,
         "the body is not JSON"},
        {"a form, not JSON",
         request(web, "POST", "/api/chgcap", {bearer(token), "Content-Type: application/x-www-form-urlencoded"},
                 "op=add&name=owned"),
         415, "must be JSON"},
        {"a bad timeout",
         request(web, "POST", "/api/ask", {bearer(token), type},
                 R"({"target": "morse", "payload": 1, "timeout_ms": 99999999})"),
         400, "timeout_ms must be an integer from 1 to 30000"},
        {"a page too large", request(web, "GET", "/api/actors?limit=100000", {bearer(token)}), 400,
         "limit must be an integer from 1 to 500"},
        {"an unknown parameter", request(web, "GET", "/api/actors?evil=1", {bearer(token)}), 400, "unknown parameter"},
        {"a bad system",
         request(web, "POST", "/api/chgcap", {bearer(token), type}, R"({"system": "x", "op": "add", "name": "owned"})"),
         400, "system must be a port"},
    };
    for (const auto& a : attempts) {
      INFO(a.what << ": " << a.got.head << "\n" << a.got.body);
      CHECK(a.got.status == a.status);
      CHECK_THAT(a.got.body, Catch::Contains(a.error));
      CHECK(a.got.header("Content-Type") == "application/json");
    }
    // A body past the bound (64 KiB): 413 as soon as its length is announced, before it is read.
    {
      connection c(web);
      c.send("POST /api/chgcap HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(web) + "\r\n" + bearer(token) + "\r\n" +
             type + "\r\nContent-Length: 204800\r\n\r\n" + std::string(1000, ' '));
      CHECK(parse_answer(c.read_until(nullptr, 5s)).status == 413);
    }
    // Methods a path does not take.
    auto del = request(web, "DELETE", "/api/status", {bearer(token)});
    CHECK(del.status == 405);
    CHECK(del.header("Allow") == "GET, HEAD");
    CHECK(request(web, "GET", "/api/chgcap", {bearer(token)}).status == 405);
    CHECK(request(web, "OPTIONS", "/api/chgcap", {"Origin: http://evil.example"}).status == 405);

    CHECK(caps_of(sys) == caps);
    CHECK(sys.ask("morse", "SOS") == "... --- ...");
    CHECK_THAT(sys.log(), Catch::Contains("dashboard: refused POST /api/chgcap: wrong token"));
  }

  SECTION("event streams: bounded, resumable from Last-Event-ID") {
    auto open_stream = [&](const std::string& extra) {
      auto c = std::make_unique<connection>(web);
      c->send("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(web) + "\r\n" + bearer(token) + "\r\n" +
              extra + "\r\n");
      c->read_until([](const std::string& s) { return s.find("event: hello") != std::string::npos; }, 5s);
      return c;
    };
    std::vector<std::unique_ptr<connection>> streams;
    for (int i = 0; i < 8; ++i) {
      streams.push_back(open_stream(""));
      INFO(streams.back()->got);
      CHECK_THAT(streams.back()->got, Catch::StartsWith("HTTP/1.1 200 OK"));
      CHECK_THAT(streams.back()->got, Catch::Contains("Content-Type: text/event-stream"));
    }
    auto ninth = request(web, "GET", "/api/events", {bearer(token)});
    CHECK(ninth.status == 503);
    CHECK_THAT(ninth.body, Catch::Contains("8 event streams are open already"));
    // One closes: its place is free again at once.
    streams.pop_back();
    std::unique_ptr<connection> again;
    CHECK(eventually(
        [&] {
          again = open_stream("");
          return again->got.rfind("HTTP/1.1 200", 0) == 0;
        },
        5s));
    streams.clear();
    again.reset();

    // Every event comes once, numbered; a resumed stream starts after the number it gives.
    auto all = open_stream("");
    all->read_until([](const std::string& s) { return s.find("\"kind\":\"actor_started\"") != std::string::npos; }, 5s);
    CHECK_THAT(all->got, Catch::Contains("id: 1\n"));
    const auto at = all->got.find("\"kind\":\"actor_started\"");
    REQUIRE(at != std::string::npos);
    const auto id_at = all->got.rfind("id: ", at);
    const std::uint64_t started = std::stoull(all->got.substr(id_at + 4));
    auto resumed = open_stream("Last-Event-ID: " + std::to_string(started - 1) + "\r\n");
    resumed->read_until([](const std::string& s) { return s.find("\"kind\":\"actor_started\"") != std::string::npos; },
                        5s);
    CHECK_THAT(resumed->got, Catch::Contains("id: " + std::to_string(started) + "\n"));
    CHECK_THAT(resumed->got, !Catch::Contains("id: " + std::to_string(started - 1) + "\n"));
    // A new event reaches a follower.
    sys.spawn({"Morse"});
    all->read_until(
        [&](const std::string& s) { return s.find("id: " + std::to_string(started + 1) + "\n") != std::string::npos; },
        5s);
    CHECK_THAT(all->got, Catch::Contains("id: " + std::to_string(started + 1) + "\n"));
    CHECK(request(web, "GET", "/api/events", {bearer(token), "Last-Event-ID: x"}).status == 400);
  }
}

TEST_CASE("the dashboard of the leader changes another system's capabilities") {
  const std::uint16_t web = troupe::testing::free_port();
  test_system lead({"--http", std::to_string(web)});
  test_system member(lead, 0, {"--leader", lead.where(), "--caps", "morse"});
  const std::string token = read_token(lead);
  auto add = request(web, "POST", "/api/chgcap", {bearer(token), "Content-Type: application/json"},
                     json{{"system", member.port()}, {"op", "set"}, {"name", "gpu_mem"}, {"value", "16"}}.dump());
  INFO(add.body);
  REQUIRE(add.status == 200);
  CHECK(add.body_json()["capabilities"] == json{{"gpu_mem", 16}, {"morse", true}});
  CHECK(caps_of(member) == json{{"gpu_mem", 16}, {"morse", true}});
  auto missing = request(web, "POST", "/api/chgcap", {bearer(token), "Content-Type: application/json"},
                         json{{"system", member.port()}, {"op", "remove"}, {"name", "nothing"}}.dump());
  CHECK(missing.status == 404);
  CHECK(missing.body_json()["error"] == "this system has no capability 'nothing'");
  CHECK(caps_of(member) == json{{"gpu_mem", 16}, {"morse", true}});
}

TEST_CASE("the dashboard in a real headless Chromium", "[browser]") {
  const fs::path browser_dir = TROUPE_BROWSER_DIR;
  INFO("scripts/setup.sh installs Debian's chromium and runs npm ci in tests/browser");
  REQUIRE(fs::exists("/usr/bin/chromium"));
  REQUIRE(fs::exists(browser_dir / "node_modules" / "puppeteer-core"));
  const fs::path out = TROUPE_BROWSER_OUT;
  fs::create_directories(out);

  const std::uint16_t web = troupe::testing::free_port();
  const std::uint16_t metrics = troupe::testing::free_port();
  test_system lead(
      {"--caps", "morse,64bit encoder", "--http", std::to_string(web), "--metrics", std::to_string(metrics)});
  test_system member(lead, 0, {"--leader", lead.where(), "--caps", "Caesar cipher"});
  lead.load(pack_convention_encoders(lead).string());
  lead.spawn({"Morse", "--name", "morse"});
  lead.spawn({"Base64", "--name", "base64"});
  lead.spawn({"Rot13", "--name", "rot13"});
  const std::string url = "http://127.0.0.1:" + std::to_string(web) + "/#token=" + read_token(lead);

  auto r = troupe::testing::run_process("/usr/bin/node", {(browser_dir / "dashboard.mjs").string()},
                                        {{"TROUPE_DASHBOARD_URL", url},
                                         {"TROUPE_LEADER_PORT", std::to_string(lead.port())},
                                         {"TROUPE_MEMBER_PORT", std::to_string(member.port())},
                                         {"TROUPE_BROWSER_OUT", out.string()},
                                         {"NODE_PATH", (browser_dir / "node_modules").string()}},
                                        {}, 150s);
  INFO("node dashboard.mjs: exit " << r.exit_code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(out / "dashboard.png"));

  // What the page showed is what the CLI sees.
  const json actors = lead.actors();
  INFO(actors.dump());
  bool moved = false;
  bool restarted = false;
  for (const auto& a : actors) {
    if (a.value("name", json()) == "morse") moved = a["system"] == member.where();
    if (a.value("name", json()) == "base64") restarted = a.value("restarts", 0) == 1;
  }
  CHECK(moved);
  CHECK(restarted);
}
