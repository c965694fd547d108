// tools/event_command.cpp — `troupe events [--follow] [--json] [--since SEQ]`:
// the system's event ring (docs/PROTOCOL.md §6.5), one line per event, and
// with --follow every new one until SIGINT/SIGTERM (exit 0) or until the
// system goes away (one line saying so, exit 3). Independent of how the CLI
// parses its arguments: it takes a plain struct (tools/event_command.hpp).
#include "tools/event_command.hpp"

#include "base/exit_codes.hpp"

#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <ctime>
#include <iostream>

namespace troupe::tools {

using json = nlohmann::json;

namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_events_stop_signal(int) { interrupted.store(true); }

std::string text(const json& e, const char* key) {
  auto it = e.find(key);
  if (it == e.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace

std::string event_line(const json& e) {
  // "2024-05-01T12:00:00.123Z #42 actor_restarted @3fa9c012.17 counter (demo 1.0.0): worker killed by SIGKILL"
  const std::int64_t ms = e.value("time_ms", std::int64_t{0});
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  std::string line = std::string(stamp) + " #" + text(e, "seq") + " " + text(e, "kind");
  for (const char* k : {"address", "name", "type"})
    if (auto v = text(e, k); !v.empty()) line += " " + (std::string(k) == "name" ? "'" + v + "'" : v);
  if (auto w = text(e, "worker"); !w.empty()) line += " w" + w;
  if (auto pid = text(e, "pid"); !pid.empty()) line += " pid " + pid;
  if (auto pkg = text(e, "package"); !pkg.empty()) {
    const auto v = text(e, "version");
    line += " (" + pkg + (v.empty() ? "" : " " + v) + ")";
  }
  if (auto port = text(e, "port"); !port.empty())
    line += (text(e, "kind") == "actor_moved" ? " to system " : " system ") + port;
  if (auto why = text(e, "reason"); !why.empty()) line += ": " + why;
  return line;
}

int show_events(const events_request& r) {
  connect_options o;
  o.fail_fast = true;
  auto c = client::connect(r.system, o);
  if (!c) {
    std::cerr << "troupe: " << c.err().message << "\n";
    return cli_failed;
  }
  std::uint64_t last = r.since;
  auto print = [&](const json& body) {
    if (const auto missed = body.value("missed", std::uint64_t{0}); missed > 0) {
      if (!r.json_out) std::cout << "(missed " << missed << " events: not kept, or this client fell behind)\n";
    }
    for (const auto& e : body.value("events", json::array())) {
      last = std::max(last, e.value("seq", std::uint64_t{0}));
      if (r.json_out)
        std::cout << e.dump() << "\n";
      else
        std::cout << event_line(e) << "\n";
    }
    std::cout.flush();
  };
  auto first = c->events(r.since, r.follow);
  if (!first) {
    std::cerr << "troupe: " << first.err().message << "\n";
    return first.err().code == errc::unavailable ? cli_unavailable : cli_failed;
  }
  print(*first);
  if (!r.follow) {
    // The ring may hold more than one answer carries.
    while (first->value("more", false)) {
      first = c->events(last, false);
      if (!first) {
        std::cerr << "troupe: " << first.err().message << "\n";
        return cli_unavailable;
      }
      print(*first);
    }
    return cli_ok;
  }
  interrupted.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_events_stop_signal;
  ::sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  int code = cli_ok;
  while (!interrupted.load()) {
    // Short waits: a signal is noticed within one.
    auto next = c->next_events(std::chrono::milliseconds(200));
    if (!next) {
      if (next.err().code == errc::timeout) continue;
      std::cout.flush();
      std::cerr << "troupe: " << next.err().message << "\n";
      code = cli_unavailable;
      break;
    }
    print(*next);
    if (next->contains("end")) {
      std::cerr << "troupe: the system ended the stream: " << next->value("end", std::string()) << "\n";
      code = cli_unavailable;
      break;
    }
  }
  if (interrupted.load()) (void)c->unsubscribe_events(std::chrono::seconds(2));
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return code;
}

}  // namespace troupe::tools
