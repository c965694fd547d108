// tools/top_command.cpp — `troupe top` (tools/top_command.hpp). The terminal
// is driven with plain ANSI escapes and termios: the alternate screen, no
// echo, keys read one by one; signals keep working (Ctrl-C quits). Whatever
// way the view ends, the terminal is given back as it was found before
// anything else is printed.
#include "tools/top_command.hpp"

#include "base/exit_codes.hpp"
#include "ipc/commands.hpp"

#include <troupe/client.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>

namespace troupe::tools {

using json = nlohmann::json;

namespace {

/// j[key], or null when j has no such field (operator[] of a const json must not miss).
json field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? json() : *it;
}

}  // namespace

// ---------------------------------------------------------------- rates

void top_rates::update(const json& top, clock::time_point at) {
  elapsed_ = at_ ? std::chrono::duration<double>(at - *at_).count() : 0.0;
  at_ = at;
  const bool timed = elapsed_ > 0;
  std::map<std::uint32_t, sample> now;
  rates_.clear();
  for (const auto& w : top.value("workers", json::array())) {
    const auto id = w.value("worker", std::uint32_t{0});
    sample s;
    const json pid = field(w, "pid");
    s.pid = pid.is_number_integer() ? pid.get<std::int64_t>() : 0;
    s.cpu = w.value("cpu_seconds", 0.0);
    s.handled = w.value("handled", std::uint64_t{0});
    s.sent = w.value("sent", std::uint64_t{0});
    auto prev = last_.find(id);
    // A new process (a restart) or counts that went down: no rate this time.
    if (timed && s.pid != 0 && prev != last_.end() && prev->second.pid == s.pid && s.cpu >= prev->second.cpu &&
        s.handled >= prev->second.handled && s.sent >= prev->second.sent)
      rates_[id] = worker_rates{100.0 * (s.cpu - prev->second.cpu) / elapsed_,
                                static_cast<double>(s.handled - prev->second.handled) / elapsed_,
                                static_cast<double>(s.sent - prev->second.sent) / elapsed_};
    now[id] = s;
  }
  last_ = std::move(now);
  const json daemon = top.value("daemon", json::object());
  const double cpu = daemon.value("cpu_seconds", 0.0);
  daemon_cpu_.reset();
  if (timed && daemon_cpu_seconds_ >= 0 && cpu >= daemon_cpu_seconds_)
    daemon_cpu_ = 100.0 * (cpu - daemon_cpu_seconds_) / elapsed_;
  daemon_cpu_seconds_ = cpu;
  const json g = top.value("gateway", json::object());
  const std::pair<std::uint64_t, std::uint64_t> counts{g.value("in", std::uint64_t{0}),
                                                       g.value("out", std::uint64_t{0})};
  gateway_.reset();
  if (timed && gateway_counts_ && counts.first >= gateway_counts_->first && counts.second >= gateway_counts_->second)
    gateway_ = std::pair<double, double>{static_cast<double>(counts.first - gateway_counts_->first) / elapsed_,
                                         static_cast<double>(counts.second - gateway_counts_->second) / elapsed_};
  gateway_counts_ = counts;
}

std::optional<worker_rates> top_rates::worker(std::uint32_t id) const {
  auto it = rates_.find(id);
  if (it == rates_.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------- formatting

namespace {

std::string printf_string(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string text_of(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

/// Columns two spaces apart, each as wide as its widest cell.
std::vector<std::string> table(const std::vector<std::string>& headers,
                               const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) width[i] = headers[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&width](const std::vector<std::string>& cells) {
    std::string s = " ";
    for (std::size_t i = 0; i < cells.size(); ++i) {
      s += " " + cells[i];
      if (i + 1 < cells.size()) s += std::string(width[i] - cells[i].size() + 1, ' ');
    }
    return s;
  };
  std::vector<std::string> out{line(headers)};
  for (const auto& r : rows) out.push_back(line(r));
  return out;
}

}  // namespace

std::string format_bytes(double bytes) {
  if (bytes < 1024) return printf_string("%.0fB", bytes);
  const char* units = "KMGT";
  double v = bytes / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return printf_string("%.1f", v) + units[u];
}

std::string format_rate(double r) {
  if (r < 0) r = 0;
  if (r == 0) return "0";
  if (r < 10) return printf_string("%.1f", r);
  if (r < 1000) return printf_string("%.0f", r);
  if (r < 1e6) return printf_string("%.1fk", r / 1e3);
  return printf_string("%.2fM", r / 1e6);
}

std::string format_age_ms(const json& ms) {
  if (!ms.is_number()) return "-";
  const double v = ms.get<double>();
  if (v < 1000) return printf_string("%.0f ms", v);
  if (v < 60000) return printf_string("%.1f s", v / 1000);
  return format_uptime(static_cast<std::int64_t>(v));
}

std::string format_uptime(std::int64_t ms) {
  const std::int64_t s = std::max<std::int64_t>(ms, 0) / 1000;
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else if (s < 86400)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  else
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  return buf;
}

std::string format_caps(const json& caps) {
  std::string out;
  if (!caps.is_object()) return "-";
  for (const auto& [k, v] : caps.items())
    out += (out.empty() ? "" : ",") +
           (v.is_boolean() && v.get<bool>() ? k : k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  return out.empty() ? "-" : out;
}

std::vector<std::string> top_lines(const json& top, const json& systems, const top_rates& rates,
                                   std::chrono::milliseconds interval) {
  std::vector<std::string> out;
  const json workers = top.value("workers", json::array());
  std::size_t serving = 0, standby = 0;
  for (const auto& w : workers) (field(w, "package_id").is_null() ? standby : serving) += 1;
  out.push_back("troupe top - system " + top.value("system", std::string("?")) + " on port " +
                std::to_string(top.value("port", 0)) + ", up " + format_uptime(top.value("uptime_ms", 0LL)) +
                ", every " + printf_string("%.1f", static_cast<double>(interval.count()) / 1000) + " s   (q: quit)");
  const auto restarts = top.value("restarts_last_minute", 0ULL);
  const auto crashes = top.value("worker_crashes_last_minute", 0ULL);
  std::string gate = "-";
  if (auto g = rates.gateway()) gate = format_rate(g->second) + "/s out, " + format_rate(g->first) + "/s in";
  out.push_back("actors " + std::to_string(top.value("actors_total", 0ULL)) + ", workers " +
                std::to_string(workers.size()) + " (" + std::to_string(serving) + " serving, " +
                std::to_string(standby) + " standby), restarts in the last minute " + std::to_string(restarts) +
                " (worker crashes " + std::to_string(crashes) + "), gateway " + gate);
  const json daemon = top.value("daemon", json::object());
  const auto dcpu = rates.daemon_cpu_percent();
  out.push_back("daemon pid " + text_of(daemon.value("pid", json())) + ", CPU " +
                (dcpu ? printf_string("%.1f%%", *dcpu) : std::string("-")) + ", RSS " +
                format_bytes(daemon.value("rss_bytes", 0.0)) + ", fds " + text_of(daemon.value("open_fds", json())));
  out.emplace_back();

  // The convention's systems, as the system asked knows them.
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : systems.value("systems", json::array()))
    rows.push_back({text_of(m.value("host", json())) + ":" + text_of(m.value("port", json())),
                    text_of(m.value("system", json())), m.value("leader", false) ? "leader" : "member",
                    text_of(m.value("state", json())), text_of(m.value("actors", json())),
                    format_age_ms(m.value("last_heard_ms", json())), format_caps(m.value("capabilities", json()))});
  out.push_back("SYSTEMS (" + std::string(systems.value("mode", std::string()) == "etcd" ? "etcd" : "built-in leader") +
                ")");
  for (auto& l : table({"SYSTEM", "ID", "ROLE", "STATE", "ACTORS", "HEARD", "CAPABILITIES"}, rows))
    out.push_back(std::move(l));
  out.emplace_back();

  rows.clear();
  for (const auto& w : workers) {
    const auto id = w.value("worker", std::uint32_t{0});
    const auto r = rates.worker(id);
    std::string pkg = "(standby)";
    if (!field(w, "package").is_null()) pkg = text_of(field(w, "package")) + " " + text_of(field(w, "version"));
    const bool answered = w.value("answered", false);
    rows.push_back({"w" + std::to_string(id), text_of(w.value("pid", json())), text_of(w.value("state", json())), pkg,
                    text_of(w.value("actors", json())), r ? printf_string("%.1f", r->cpu_percent) : "-",
                    format_bytes(w.value("rss_bytes", 0.0)), r ? format_rate(r->in_per_s) : "-",
                    r ? format_rate(r->out_per_s) : "-", text_of(w.value("unacked", json())),
                    format_age_ms(w.value("oldest_unacked_ms", json())),
                    answered                           ? text_of(w.value("queued", json()))
                    : field(w, "package_id").is_null() ? "-"
                                                       : "busy"});
  }
  out.push_back("WORKERS");
  for (auto& l :
       table({"W", "PID", "STATE", "PACKAGE", "ACTORS", "CPU%", "RSS", "IN/s", "OUT/s", "UNACKED", "OLDEST", "QUEUED"},
             rows))
    out.push_back(std::move(l));
  out.emplace_back();

  rows.clear();
  for (const auto& a : top.value("busiest", json::array())) {
    const double window = a.value("window_ms", 0.0);
    const double rate = window > 0 ? a.value("recent", 0.0) * 1000.0 / window : 0.0;
    std::string pkg = "-";
    if (!field(a, "package").is_null()) pkg = text_of(field(a, "package")) + " " + text_of(field(a, "version"));
    rows.push_back({text_of(a.value("address", json())), text_of(a.value("name", json())),
                    text_of(a.value("type", json())), pkg, "w" + text_of(a.value("worker", json())), format_rate(rate),
                    text_of(a.value("handled", json())), text_of(a.value("restarts", json())),
                    text_of(a.value("state", json()))});
  }
  out.push_back("BUSIEST ACTORS (messages handled per second)");
  for (auto& l : table({"ADDRESS", "NAME", "TYPE", "PACKAGE", "W", "MSG/s", "HANDLED", "RESTARTS", "STATE"}, rows))
    out.push_back(std::move(l));
  out.emplace_back();

  out.push_back("RESTARTS IN THE LAST MINUTE: " + std::to_string(restarts));
  const auto now_ms = top.value("time_ms", std::int64_t{0});
  for (const auto& e : top.value("recent_restarts", json::array())) {
    std::string line =
        "  " + format_uptime(now_ms - e.value("time_ms", now_ms)) + " ago  " + e.value("address", std::string("?"));
    if (e.contains("name")) line += " '" + text_of(field(e, "name")) + "'";
    if (e.contains("type")) line += " " + text_of(field(e, "type"));
    if (e.contains("reason")) line += ": " + text_of(field(e, "reason"));
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<std::string> fit(std::vector<std::string> lines, std::size_t width, std::size_t height) {
  if (height > 0 && lines.size() > height) {
    const std::size_t cut = lines.size() - (height - 1);
    lines.resize(height - 1);
    lines.push_back("... " + std::to_string(cut) + " more lines (a taller terminal shows them)");
  }
  if (width > 0)
    for (auto& l : lines)
      if (l.size() > width) l.resize(width);
  return lines;
}

// ---------------------------------------------------------------- the terminal

namespace {

std::atomic<int> last_signal{0};
int wake_fds[2] = {-1, -1};
constexpr int caught_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT};
constexpr std::size_t caught_count = sizeof caught_signals / sizeof caught_signals[0];

extern "C" void on_top_signal(int sig) {
  last_signal.store(sig);
  if (wake_fds[1] >= 0) {
    const char c = 0;
    (void)!::write(wake_fds[1], &c, 1);
  }
}

/// The signals the view catches, and what they were before.
class signal_guard {
 public:
  signal_guard() {
    if (::pipe2(wake_fds, O_CLOEXEC | O_NONBLOCK) != 0) wake_fds[0] = wake_fds[1] = -1;
    last_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_top_signal;
    ::sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < caught_count; ++i) ::sigaction(caught_signals[i], &sa, &saved_[i]);
  }
  ~signal_guard() {
    for (std::size_t i = 0; i < caught_count; ++i) ::sigaction(caught_signals[i], &saved_[i], nullptr);
    for (int& fd : wake_fds)
      if (fd >= 0) {
        ::close(fd);
        fd = -1;
      }
  }
  signal_guard(const signal_guard&) = delete;
  signal_guard& operator=(const signal_guard&) = delete;
  /// The signal that came since the last call (0: none).
  static int take() {
    char buf[64];
    while (wake_fds[0] >= 0 && ::read(wake_fds[0], buf, sizeof buf) > 0) {
    }
    return last_signal.exchange(0);
  }

 private:
  struct sigaction saved_[caught_count] {};
};

/// Raw keys and the alternate screen while it lives (and again after a
/// suspension); the saved modes back whatever way it ends.
class screen {
 public:
  screen() {
    if (::tcgetattr(STDIN_FILENO, &saved_) == 0) enter();
  }
  ~screen() { leave(); }
  screen(const screen&) = delete;
  screen& operator=(const screen&) = delete;
  [[nodiscard]] bool active() const { return active_; }

  void enter() {
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);  // keys one by one, unseen; ISIG stays: Ctrl-C works
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0) return;
    active_ = true;
    write_all("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");  // alternate screen, no cursor
  }
  void leave() {
    if (!active_) return;
    active_ = false;
    write_all("\x1b[?25h\x1b[?1049l");
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  void draw(const std::vector<std::string>& lines) {
    std::string frame = "\x1b[H";
    for (std::size_t i = 0; i < lines.size(); ++i) {
      frame += lines[i] + "\x1b[K";
      if (i + 1 < lines.size()) frame += "\n";
    }
    frame += "\x1b[J";
    write_all(frame);
  }
  static void write_all(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const auto n = ::write(STDOUT_FILENO, s.data() + done, s.size() - done);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return;
      }
      done += static_cast<std::size_t>(n);
    }
  }
  static std::pair<std::size_t, std::size_t> size() {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) return {ws.ws_col, ws.ws_row};
    return {80, 24};
  }

 private:
  termios saved_{};
  bool active_ = false;
};

struct snapshot {
  json top;
  json systems;
};

result<snapshot> fetch(client& c, const top_request& r) {
  auto top = c.call(ipc::cmd::client::top,
                    json{{"actors", r.actors}, {"window_ms", std::max<std::int64_t>(r.interval.count(), 100)}},
                    r.call_timeout);
  if (!top) return top.err();
  auto systems = c.call(ipc::cmd::client::systems, json::object(), r.call_timeout);
  if (!systems) return systems.err();
  return snapshot{std::move(*top), std::move(*systems)};
}

/// The system stopped answering, or refused: the line and the exit code.
int lost(const top_request& r, const error& e) {
  if (e.code == errc::unavailable || e.code == errc::timeout) {
    std::cerr << "troupe top: lost the system at " << r.system << ": " << e.message << "\n";
    return cli_unavailable;
  }
  std::cerr << "troupe top: " << e.message << "\n";
  return e.code == errc::not_found ? cli_not_found : cli_failed;
}

/// Waits up to `for_ms` for a key or a signal; returns the signal (0: none)
/// and sets key to the last key read (0: none).
int wait_input(std::chrono::milliseconds for_ms, bool keys, char& key) {
  key = 0;
  pollfd fds[2] = {{wake_fds[0], POLLIN, 0}, {keys ? STDIN_FILENO : -1, POLLIN, 0}};
  const int timeout = static_cast<int>(std::max<std::int64_t>(for_ms.count(), 0));
  if (::poll(fds, 2, timeout) > 0 && (fds[1].revents & (POLLHUP | POLLERR)) != 0 && (fds[1].revents & POLLIN) == 0)
    key = 'q';  // the terminal is gone
  else if ((fds[1].revents & POLLIN) != 0) {
    char buf[64];
    const auto n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) key = 'q';  // the terminal is gone
    for (ssize_t i = 0; i < n; ++i)
      if (buf[i] == 'q' || buf[i] == 'Q') key = 'q';
  }
  return signal_guard::take();
}

json rates_json(const json& top, const top_rates& rates) {
  json workers = json::object();
  for (const auto& w : top.value("workers", json::array())) {
    const auto id = w.value("worker", std::uint32_t{0});
    if (auto r = rates.worker(id))
      workers[std::to_string(id)] = {
          {"cpu_percent", r->cpu_percent}, {"in_per_s", r->in_per_s}, {"out_per_s", r->out_per_s}};
  }
  json out{{"elapsed_s", rates.elapsed()}, {"workers", workers}};
  if (auto d = rates.daemon_cpu_percent()) out["daemon_cpu_percent"] = *d;
  return out;
}

int run_batch(client& c, const top_request& r, unsigned count) {
  signal_guard signals;
  top_rates rates;
  // A first reading, so that every snapshot printed has its rates.
  auto first = fetch(c, r);
  if (!first) return lost(r, first.err());
  rates.update(first->top, top_rates::clock::now());
  for (unsigned i = 0; i < count; ++i) {
    const auto until = top_rates::clock::now() + r.interval;
    for (char key = 0;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - top_rates::clock::now());
      if (left.count() <= 0) break;
      const int sig = wait_input(left, false, key);
      if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) return cli_ok;
    }
    auto s = fetch(c, r);
    if (!s) return lost(r, s.err());
    rates.update(s->top, top_rates::clock::now());
    if (r.json_out) {
      std::cout << json{{"top", s->top}, {"systems", s->systems}, {"rates", rates_json(s->top, rates)}}.dump()
                << std::endl;
    } else {
      if (i > 0) std::cout << "\n";
      for (const auto& l : top_lines(s->top, s->systems, rates, r.interval)) std::cout << l << "\n";
      std::cout.flush();
    }
  }
  return cli_ok;
}

int run_view(client& c, const top_request& r) {
  // Before the screen changes: a system that is not there is one plain line.
  auto s = fetch(c, r);
  if (!s) return lost(r, s.err());
  top_rates rates;
  rates.update(s->top, top_rates::clock::now());
  signal_guard signals;
  screen scr;
  if (!scr.active()) return run_batch(c, r, 1);
  auto draw = [&] {
    const auto [w, h] = screen::size();
    scr.draw(fit(top_lines(s->top, s->systems, rates, r.interval), w, h));
  };
  draw();
  auto next = top_rates::clock::now() + r.interval;
  for (;;) {
    char key = 0;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - top_rates::clock::now());
    const int sig = wait_input(left, true, key);
    if (key == 'q' || sig == SIGINT || sig == SIGTERM || sig == SIGHUP) return cli_ok;  // screen restored by its guard
    if (sig == SIGTSTP) {
      // Ctrl-Z: the shell gets its terminal back as it was, until fg.
      scr.leave();
      struct sigaction dfl {
      }, ours{};
      dfl.sa_handler = SIG_DFL;
      ::sigaction(SIGTSTP, &dfl, &ours);
      ::raise(SIGTSTP);
      ::sigaction(SIGTSTP, &ours, nullptr);
      scr.enter();
      draw();
      continue;
    }
    if (sig == SIGWINCH || sig == SIGCONT) draw();
    if (top_rates::clock::now() < next) continue;
    auto again = fetch(c, r);
    if (!again) {
      scr.leave();  // the message goes to the shell's screen, not the view's
      return lost(r, again.err());
    }
    s = std::move(again);
    rates.update(s->top, top_rates::clock::now());
    draw();
    next = top_rates::clock::now() + r.interval;
  }
}

}  // namespace

int run_top(const top_request& r) {
  connect_options o;
  o.fail_fast = true;
  auto c = client::connect(r.system, o);
  if (!c) {
    std::cerr << "troupe top: " << c.err().message << "\n";
    return cli_unavailable;
  }
  const bool terminal = ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1;
  if (r.once || r.batch > 0 || !terminal || r.json_out) return run_batch(*c, r, r.once ? 1 : std::max(r.batch, 1u));
  return run_view(*c, r);
}

}  // namespace troupe::tools
