#include "tools/cli_common.hpp"
#include "tools/event_command.hpp"

#include "etcd/client.hpp"
#include "supervisor/capabilities.hpp"
#include "supervisor/http_server.hpp"
#include "supervisor/system.hpp"

#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <grp.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>

namespace troupe::tools {

namespace fs = std::filesystem;
using json = nlohmann::json;

int fail(int code, const std::string& message) {
  std::cerr << "troupe: " << message << "\n";
  return code;
}

int exit_for(const error& e) {
  switch (e.code) {
    case errc::unavailable:
      return cli_unavailable;
    case errc::timeout:
      return cli_timeout;
    case errc::not_found:
      return cli_not_found;
    case errc::unknown:
      return cli_unknown;
    default:
      return cli_failed;
  }
}

int fail(const error& e) { return fail(exit_for(e), e.message); }

std::string system_of(const parsed& p) {
  if (!p.system.empty()) return p.system;
  if (const char* env = std::getenv("TROUPE_SYSTEM"); env && *env) return env;
  return "127.0.0.1:1900";
}

fs::path troupe_home() { return default_home(); }

result<json> call(const parsed& p, std::string_view command, const json& body, std::chrono::milliseconds timeout) {
  connect_options o;
  o.fail_fast = true;  // a person waiting: "connection refused" at once, not after the timeout
  auto c = client::connect(system_of(p), o);
  if (!c) return c.err();
  return c->call(command, body, timeout);
}

void print_json(const json& j) { std::cout << j.dump(2) << "\n"; }

std::string text_of(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) width[i] = headers[i].size();
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  line(headers);
  for (const auto& r : rows) line(r);
}

namespace {

parsed parse(const std::vector<std::string>& args, const command& cmd) {
  parsed p;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a;
      std::optional<std::string> inline_value;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        inline_value = a.substr(eq + 1);
      }
      const bool takes_value = cmd.value_options.count(name) || name == "--system";
      if (cmd.repeat_options.count(name)) {
        if (!inline_value && i + 1 >= args.size()) throw usage_error{name + " needs a value"};
        p.repeated[name].push_back(inline_value ? *inline_value : args[++i]);
      } else if (name == "--json") {
        p.json_out = true;
      } else if (takes_value) {
        if (!inline_value && i + 1 >= args.size()) throw usage_error{name + " needs a value"};
        std::string v = inline_value ? *inline_value : args[++i];
        if (name == "--system")
          p.system = v;
        else
          p.values[name] = v;
      } else if (cmd.flag_options.count(name) && !inline_value) {
        p.flags.insert(name);
      } else {
        throw usage_error{"unknown option " + name};
      }
    } else {
      p.positional.push_back(a);
    }
  }
  if (p.positional.size() < cmd.min_args) throw usage_error{"missing arguments"};
  if (p.positional.size() > cmd.max_args) throw usage_error{"too many arguments"};
  return p;
}

std::uint16_t parse_port(const std::string& text) {
  unsigned v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v == 0 || v > 65535)
    throw usage_error{"'" + text + "' is not a port (1-65535)"};
  return static_cast<std::uint16_t>(v);
}

/// "4096", "64K", "5M", "1G" -> bytes.
std::uint64_t parse_size(const std::string& text) {
  std::uint64_t v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  std::string_view unit(r.ptr, static_cast<std::size_t>(text.data() + text.size() - r.ptr));
  const int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (r.ec != std::errc{} || r.ptr == text.data() || shift < 0 || v == 0 || v > (std::uint64_t{1} << (63 - shift)))
    throw usage_error{"'" + text + "' is not a size (a number of bytes, or with K, M or G)"};
  return v << shift;
}

json parse_payload(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw usage_error{"malformed JSON payload: " + text + " (quote strings: '\"hello\"')"};
  return j;
}

/// Calls command on the chosen system; prints the error and returns its exit
/// code on failure.

// ---------------------------------------------------------------- start / stop

fs::path sibling(const std::string& self, const char* name) { return fs::path(self).parent_path() / name; }

bool is_loopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

/// The options of `troupe start` as the daemon takes them, every value
/// checked (a usage_error otherwise): what `start` runs and `bootstart` writes.
supervisor::system_options start_options(const parsed& p) {
  supervisor::system_options opts;
  opts.port = parse_port(p.value("--port", "1900"));
  opts.bind_host = p.value("--bind", "127.0.0.1");
  opts.home = troupe_home();
  auto caps = supervisor::parse_capabilities(p.value("--caps"));
  if (!caps) throw usage_error{caps.err().message};
  opts.caps = std::move(*caps);
  opts.allow_unsigned = p.has("--allow-unsigned");
  if (p.has("--delivery")) {
    const std::string mode = p.value("--delivery");
    if (mode != "no-loss" && mode != "best-effort")
      throw usage_error{"--delivery takes no-loss or best-effort, not '" + mode + "'"};
    opts.no_loss = mode == "no-loss";
  }
  if (p.has("--standby")) {
    const std::string n = p.value("--standby");
    unsigned v = 0;
    auto r = std::from_chars(n.data(), n.data() + n.size(), v);
    if (r.ec != std::errc{} || r.ptr != n.data() + n.size() || v > 16)
      throw usage_error{"--standby takes a number of workers from 0 to 16"};
    opts.standby_workers = v;
  }
  if (p.has("--max-package-size")) opts.limits.max_archive_bytes = parse_size(p.value("--max-package-size"));
  if (p.has("--max-client-message")) {
    opts.max_client_message = parse_size(p.value("--max-client-message"));
    if (opts.max_client_message < (std::uint64_t{64} << 10) || opts.max_client_message > (std::uint64_t{4} << 30))
      throw usage_error{"--max-client-message takes a size from 64K to 4G"};
  }
  auto count = [&p](const char* option, unsigned long lo, unsigned long hi) {
    const std::string text = p.value(option);
    unsigned long v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v < lo || v > hi)
      throw usage_error{std::string(option) + " takes a number from " + std::to_string(lo) + " to " +
                        std::to_string(hi)};
    return v;
  };
  opts.insecure_tcp = p.has("--insecure-tcp");
  if (opts.insecure_tcp && !is_loopback(opts.bind_host))
    throw usage_error{"--insecure-tcp is only allowed with a loopback --bind (clients elsewhere use keys)"};
  if (p.has("--client-group")) {
    const std::string g = p.value("--client-group");
    const group* gr = ::getgrnam(g.c_str());
    if (gr == nullptr) throw usage_error{"--client-group: no group '" + g + "' on this host"};
    opts.client_gid = static_cast<long>(gr->gr_gid);
  }
  if (p.has("--max-workers")) opts.max_workers = static_cast<std::uint32_t>(count("--max-workers", 1, 100000));
  if (p.has("--max-json-depth")) opts.max_json_depth = count("--max-json-depth", 8, 10000);
  if (p.has("--max-held")) opts.held_limit = count("--max-held", 1, 1000000);
  if (p.has("--max-tcp-clients"))
    opts.max_tcp_clients = static_cast<std::uint32_t>(count("--max-tcp-clients", 1, 1000000));
  if (p.has("--etcd")) {
    if (p.has("--leader")) throw usage_error{"--etcd and --leader are two ways to coordinate a convention: give one"};
    auto endpoints = etcd::parse_endpoints(p.value("--etcd"));
    if (!endpoints) throw usage_error{"--etcd: " + endpoints.err().message};
    opts.etcd = p.value("--etcd");
  }
  if (p.has("--convention")) {
    const std::string name = p.value("--convention");
    const bool valid = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
    });
    if (!valid) throw usage_error{"--convention takes a name of 1 to 64 letters, digits, '_', '-' or '.'"};
    if (!p.has("--etcd")) throw usage_error{"--convention names a convention on etcd: give --etcd too"};
    opts.convention = name;
  }
  if (p.has("--leader")) {
    opts.leader = p.value("--leader");
    if (opts.leader.find(':') == std::string::npos) opts.leader = "127.0.0.1:" + opts.leader;
    if (!system_endpoint(opts.leader)) throw usage_error{"--leader takes HOST:PORT, not '" + p.value("--leader") + "'"};
  } else {
    // Without a convention address a system stands alone (it leads a
    // convention of its own), whatever its port: joining 1900 by default
    // made a system on another port fail its spawns with no warning.
    opts.leader = opts.bind_host + ":" + std::to_string(opts.port);
  }
  auto millis = [&p](const char* option, long lo, long hi) {
    const std::string text = p.value(option);
    long v = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v < lo || v > hi)
      throw usage_error{std::string(option) + " takes milliseconds from " + std::to_string(lo) + " to " +
                        std::to_string(hi)};
    return std::chrono::milliseconds(v);
  };
  if (p.has("--heartbeat")) opts.heartbeat = millis("--heartbeat", 10, 60000);
  if (p.has("--member-timeout")) opts.member_timeout = millis("--member-timeout", 50, 3600000);
  if (opts.member_timeout < 2 * opts.heartbeat)
    throw usage_error{"--member-timeout must be at least twice --heartbeat"};
  if (p.has("--max-event-subscribers"))
    opts.max_event_subscribers = static_cast<std::uint32_t>(count("--max-event-subscribers", 1, 1024));
  if (p.has("--metrics")) {
    auto hp = supervisor::http_server::parse_where(p.value("--metrics"));
    if (!hp || hp->second == 0) throw usage_error{"--metrics takes HOST:PORT or a port (on 127.0.0.1)"};
    opts.metrics = hp->first + ":" + std::to_string(hp->second);
  }
  return opts;
}

int cmd_start(const parsed& p, const std::string& self) {
  supervisor::system_options opts = start_options(p);
  const char* worker_env = std::getenv("TROUPE_WORKER");
  opts.worker_exe = worker_env && *worker_env ? fs::path(worker_env) : sibling(self, "troupe-worker");
  if (!fs::exists(opts.worker_exe))
    return fail(cli_failed, "worker executable " + opts.worker_exe.string() + " not found (set TROUPE_WORKER)");

  const std::string where = opts.bind_host + ":" + std::to_string(opts.port);
  if (p.has("--ready-fd")) opts.ready_fd = std::atoi(p.value("--ready-fd").c_str());
  if (p.has("--foreground")) return supervisor::run_system(opts);

  // Already running? A quick status call tells.
  if (auto c = client::connect(where)) {
    if (c->call(cmd::client::status, json::object(), std::chrono::milliseconds(300)))
      return fail(cli_failed, "a system is already running on " + where);
  }
  std::error_code ec;
  const fs::path dir = supervisor::state_dir(opts.home, opts.port);
  supervisor::make_private(opts.home, opts.port);  // before anything is created
  fs::create_directories(dir, ec);
  if (ec) return fail(cli_failed, "cannot create " + dir.string() + ": " + ec.message());
  const fs::path log = dir / "system.log";

  // The daemon is this program re-executed in the foreground, detached in its
  // own session, reporting readiness through a pipe (no polling).
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail(cli_failed, "pipe failed");
  std::vector<std::string> argv_s = {
      self,           "start",      "--foreground",           "--port", std::to_string(opts.port), "--bind",
      opts.bind_host, "--ready-fd", std::to_string(pipefd[1])};
  for (const char* flag : {"--allow-unsigned", "--insecure-tcp"})
    if (p.has(flag)) argv_s.push_back(flag);
  for (const char* o :
       {"--caps", "--standby", "--delivery", "--max-package-size", "--leader", "--heartbeat", "--member-timeout",
        "--max-workers", "--max-json-depth", "--max-client-message", "--max-held", "--max-tcp-clients", "--etcd",
        "--convention", "--client-group", "--metrics", "--max-event-subscribers"})
    if (p.has(o)) argv_s.insert(argv_s.end(), {o, p.value(o)});
  const pid_t pid = ::fork();
  if (pid < 0) return fail(cli_failed, "fork failed");
  if (pid == 0) {
    // Double fork: the daemon is orphaned at once, so no parent of ours is
    // left to reap it (init does).
    ::setsid();
    if (::fork() != 0) _exit(0);
    ::close(pipefd[0]);
    ::fcntl(pipefd[1], F_SETFD, 0);                                                  // keep the ready fd across exec
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);  // payloads are logged
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(self.c_str(), argv.data());
    _exit(127);
  }
  ::close(pipefd[1]);
  ::waitpid(pid, nullptr, 0);  // the intermediate child, gone at once
  std::string line;
  pollfd pfd{pipefd[0], POLLIN, 0};
  char buf[512];
  for (;;) {
    int r = ::poll(&pfd, 1, 15000);
    if (r <= 0) break;
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
    if (line.find('\n') != std::string::npos) break;
  }
  ::close(pipefd[0]);
  if (line.rfind("ready ", 0) == 0) {
    // "ready PID ROLE"
    const std::string rest = line.substr(6, line.find('\n') - 6);
    const std::string daemon_pid = rest.substr(0, rest.find(' '));
    const std::string role = rest.find(' ') == std::string::npos ? "" : rest.substr(rest.find(' ') + 1);
    if (p.json_out)
      print_json(json{{"system", where}, {"pid", std::stoi(daemon_pid)}, {"log", log.string()}, {"role", role}});
    else
      std::cout << "system running on " << where << " (pid " << daemon_pid << ", log " << log.string() << ")\n"
                << "role: " << role << "\n";
    return cli_ok;
  }
  if (line.rfind("error ", 0) == 0)
    return fail(cli_failed, "system on " + where + " failed to start: " + line.substr(6, line.find('\n') - 6));
  return fail(cli_failed, "system on " + where + " exited during start-up; see " + log.string());
}

// ---------------------------------------------------------------- bootstart

// The options of `troupe start` (also those of `bootstart`, which passes them on).
const std::set<std::string> start_value_options = {"--port",
                                                   "--caps",
                                                   "--bind",
                                                   "--ready-fd",
                                                   "--max-package-size",
                                                   "--standby",
                                                   "--delivery",
                                                   "--leader",
                                                   "--heartbeat",
                                                   "--member-timeout",
                                                   "--max-workers",
                                                   "--max-json-depth",
                                                   "--max-client-message",
                                                   "--max-held",
                                                   "--max-tcp-clients",
                                                   "--etcd",
                                                   "--convention",
                                                   "--client-group",
                                                   "--metrics",
                                                   "--max-event-subscribers"};
const std::set<std::string> start_flag_options = {"--foreground", "--allow-unsigned", "--insecure-tcp"};

/// Runs argv (searched in PATH) and waits for it; its exit status, or -1.
int run_and_wait(std::vector<std::string> argv_s) {
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// `troupe bootstart PORT [start options]`: the system on PORT as a service
// that starts at boot, as Thespian's bootstart. The template troupe@.service
// (the Debian package's) runs `troupe start --foreground --port PORT
// $TROUPE_OPTS`; this writes TROUPE_OPTS to /etc/default/troupe-PORT, checked
// as `start` checks them, then `systemctl enable --now troupe@PORT`.
int cmd_bootstart(const parsed& p, const std::string&) {
  const std::uint16_t port = parse_port(p.positional[0]);
  for (const char* o : {"--port", "--ready-fd"})
    if (p.has(o)) throw usage_error{std::string(o) + " is not for bootstart: the port is PORT"};
  if (p.has("--foreground")) throw usage_error{"--foreground is not for bootstart: the service runs in it"};
  parsed as_start = p;
  as_start.values["--port"] = std::to_string(port);
  (void)start_options(as_start);  // a usage error now, not a service failing at every boot
  std::string opts;
  for (const auto& [name, value] : p.values) {
    if (!start_value_options.count(name)) continue;
    // systemd splits $TROUPE_OPTS at white space and reads quotes, '$' and '\'.
    const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) ||
             std::string_view("._:,=/@+-").find(ch) != std::string_view::npos;
    });
    if (!plain) throw usage_error{name + " '" + value + "': a service option takes letters, digits and ._:,=/@+- only"};
    opts += (opts.empty() ? "" : " ") + name + " " + value;
  }
  for (const auto& flag : p.flags)
    if (start_flag_options.count(flag)) opts += (opts.empty() ? "" : " ") + flag;

  // Nothing is written for a service that cannot be enabled.
  std::error_code ec;
  bool have_template = false;
  for (const char* d : {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"})
    have_template = have_template || fs::exists(fs::path(d) / "troupe@.service", ec);
  if (!p.has("--no-enable") && !have_template)
    return fail(cli_failed,
                "no troupe@.service template in /etc/systemd/system or /usr/lib/systemd/system "
                "(install the troupe Debian package)");
  const fs::path dir = p.value("--defaults-dir", "/etc/default");
  const fs::path file = dir / ("troupe-" + std::to_string(port));
  const fs::path tmp = dir / (".troupe-" + std::to_string(port) + ".new");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "# troupe@" << port << ".service: options of `troupe start` (written by troupe bootstart)\n"
        << "TROUPE_OPTS=\"" << opts << "\"\n";
    if (!out.flush()) return fail(cli_failed, "cannot write " + tmp.string() + " (as root?)");
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::replace, ec);
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return fail(cli_failed, "cannot write " + file.string() + ": " + ec.message());
  }
  std::cout << "wrote " << file.string() << std::endl;  // before systemctl writes
  const std::string unit = "troupe@" + std::to_string(port) + ".service";
  if (p.has("--no-enable")) {
    std::cout << "not enabled: systemctl enable --now " << unit << "\n";
    return cli_ok;
  }
  if (const int rc = run_and_wait({"systemctl", "enable", "--now", unit}); rc != 0)
    return fail(cli_failed, "systemctl enable --now " + unit + " failed (" +
                                (rc < 0 ? std::string("did not run") : "exit " + std::to_string(rc)) + ")");
  std::cout << "enabled and started " << unit << "\n";
  return cli_ok;
}

/// Waits until pid is gone, through a pidfd (no polling loop).
bool wait_gone(int pid, int timeout_ms) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd pfd{fd, POLLIN, 0};
  int r = ::poll(&pfd, 1, timeout_ms);
  ::close(fd);
  return r > 0;
}

int cmd_stop(const parsed& p, const std::string&) {
  std::vector<std::string> targets = p.positional;
  if (targets.empty()) targets.push_back(p.system.empty() ? system_of(p) : p.system);
  int worst = cli_ok;
  for (const auto& t : targets) {
    std::string where = t.find(':') == std::string::npos ? "127.0.0.1:" + std::to_string(parse_port(t)) : t;
    auto c = client::connect(where);
    if (!c) {
      worst = fail(c.err());
      continue;
    }
    auto r = c->call(cmd::client::shutdown, json::object(), std::chrono::seconds(3));
    if (!r) {
      worst =
          r.err().code == errc::unavailable ? fail(cli_unavailable, "no system running on " + where) : fail(r.err());
      continue;
    }
    const int pid = r->value("pid", 0);
    if (!wait_gone(pid, 20000)) {
      worst = fail(cli_timeout, "system on " + where + " (pid " + std::to_string(pid) + ") did not stop within 20 s");
      continue;
    }
    if (p.json_out)
      print_json(json{{"stopped", where}, {"pid", pid}});
    else
      std::cout << "stopped system on " << where << "\n";
  }
  return worst;
}

// ---------------------------------------------------------------- client commands

int cmd_status(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::status, json::object(), std::chrono::seconds(3));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << "system " << text_of((*r)["system"]) << " on " << system_of(p) << " (pid " << (*r)["pid"]
            << "): " << text_of((*r)["state"]) << "\n"
            << "  capabilities: " << (*r)["capabilities"].dump() << "\n"
            << "  packages: " << (*r)["packages"] << ", workers: " << (*r)["workers"] << ", actors: " << (*r)["actors"]
            << "\n";
  const json& conv = *r;  // the convention's fields are the status's own
  if (conv.value("coordination", std::string()) == "etcd") {
    std::cout << "  convention: etcd at " << text_of(conv["etcd"]) << ", leader " << text_of(conv["leader"])
              << (conv.value("is_leader", false) ? " (this system)" : "") << "\n";
    if (conv.value("fenced", false))
      std::cout << "  FENCED: it could not renew its etcd lease; the convention's actors it hosted were stopped "
                   "(the convention's leader places them again). It registers again when etcd answers.\n";
  }
  return cli_ok;
}

int cmd_spawn(const parsed& p, const std::string&) {
  json body{{"type", p.positional[0]}};
  if (p.has("--package")) body["package"] = p.value("--package");
  if (p.has("--name")) body["name"] = p.value("--name");
  if (p.has("--wait")) body["wait"] = true;
  auto r = call(p, cmd::client::spawn, body, std::chrono::seconds(20));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  if ((*r).value("state", std::string()) == "pending") std::cerr << "pending: " << text_of((*r)["reason"]) << "\n";
  std::cout << text_of((*r)["address"]) << "\n";
  return cli_ok;
}

// ---------------------------------------------------------------- convention

/// PORT or HOST:PORT as the address of a system.
std::string system_arg(const std::string& text) {
  return text.find(':') == std::string::npos ? "127.0.0.1:" + std::to_string(parse_port(text)) : text;
}

int cmd_systems(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::systems, json::object(), std::chrono::seconds(3));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  const bool on_etcd = (*r).value("mode", std::string()) == "etcd";
  if (on_etcd)
    std::cout << "coordination: etcd at " << text_of((*r)["etcd"]) << ", convention " << text_of((*r)["convention"])
              << "; elected leader: " << text_of((*r)["leader"]) << ((*r).value("fenced", false) ? "; FENCED" : "")
              << "\n";
  else
    std::cout << "coordination: built-in leader at " << text_of((*r)["leader"]) << "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : (*r)["systems"]) {
    std::string caps;
    for (const auto& [k, v] : m["capabilities"].items())
      caps += (caps.empty() ? "" : ",") +
              (v.is_boolean() && v.get<bool>() ? k : k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    std::vector<std::string> row{text_of(m["host"]) + ":" + text_of(m["port"]), text_of(m["system"]),
                                 m.value("leader", false) ? "leader" : "member", text_of(m["state"]),
                                 text_of(m["actors"])};
    if (on_etcd) {
      // The lease: held (with what is left of this system's own), or lost.
      const json lease = m.value("lease", json::object());
      std::string text = lease.value("state", std::string("-"));
      if (lease.contains("valid_for_ms") && text == "held")
        text += " (" + std::to_string(lease["valid_for_ms"].get<long>()) + " ms)";
      if (lease.value("store_down", false)) text += ", store down";
      row.push_back(text);
    } else {
      row.push_back(text_of(m["last_heard_ms"]) + " ms");
    }
    row.push_back(caps.empty() ? "-" : caps);
    rows.push_back(std::move(row));
  }
  print_table({"SYSTEM", "ID", "ROLE", "STATE", "ACTORS", on_etcd ? "LEASE" : "HEARD", "CAPABILITIES"}, rows);
  if ((*r).contains("limits")) std::cout << "limits: " << text_of((*r)["limits"]) << "\n";
  if (!(*r).value("joined", true) && on_etcd)
    std::cout << "(not joined: this system holds no etcd lease now; this list may be stale)\n";
  else if (!(*r).value("joined", true))
    std::cout << "(not joined: the leader at " << text_of((*r)["leader"])
              << " is unreachable; this list may be stale)\n";
  return cli_ok;
}

int cmd_chgcap(const parsed& p, const std::string&) {
  // chgcap PORT +NAME | + NAME | -NAME | - NAME | NAME=VALUE
  std::string op;
  std::string name;
  std::string value;
  const auto& a = p.positional;
  if (a.size() == 3) {
    if (a[1] != "+" && a[1] != "-") throw usage_error{"expected + NAME or - NAME, not '" + a[1] + "'"};
    op = a[1] == "+" ? "add" : "remove";
    name = a[2];
  } else if (a[1].size() > 1 && (a[1][0] == '+' || a[1][0] == '-')) {
    op = a[1][0] == '+' ? "add" : "remove";
    name = a[1].substr(1);
  } else if (auto eq = a[1].find('='); eq != std::string::npos && eq > 0) {
    op = "set";
    name = a[1].substr(0, eq);
    value = a[1].substr(eq + 1);
  } else {
    throw usage_error{"expected +NAME, -NAME or NAME=VALUE, not '" + a[1] + "'"};
  }
  if (name.empty()) throw usage_error{"no capability name given"};
  parsed target = p;
  target.system = system_arg(a[0]);
  auto r = call(target, "chgcap", json{{"op", op}, {"name", name}, {"value", value}}, std::chrono::seconds(5));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << "system " << target.system << " capabilities: " << (*r)["capabilities"].dump() << "\n";
  return cli_ok;
}

int cmd_move(const parsed& p, const std::string&) {
  json body{{"target", p.positional[0]}, {"new_worker", p.has("--new-worker")}};
  if (p.has("--to")) body["port"] = parse_port(p.value("--to"));
  if (!p.has("--to") && !p.has("--new-worker")) throw usage_error{"give --to PORT, --new-worker, or both"};
  auto r = call(p, cmd::client::move, body, std::chrono::seconds(20));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << "moved " << text_of((*r)["address"]) << " to " << text_of((*r)["system"]) << "\n";
  return cli_ok;
}

int cmd_tell(const parsed& p, const std::string&) {
  json body{
      {"target", p.positional[0]}, {"payload", parse_payload(p.positional[1])}, {"type", p.value("--type", "json")}};
  auto r = call(p, cmd::client::tell, body);
  if (!r) return fail(r.err());
  if (p.json_out) print_json(*r);
  return cli_ok;
}

int cmd_ask(const parsed& p, const std::string&) {
  const std::string timeout_text = p.value("--timeout", "5000");
  int timeout_ms = 0;
  auto conv = std::from_chars(timeout_text.data(), timeout_text.data() + timeout_text.size(), timeout_ms);
  if (conv.ec != std::errc{} || conv.ptr != timeout_text.data() + timeout_text.size() || timeout_ms <= 0)
    throw usage_error{"--timeout takes milliseconds > 0"};
  json body{{"target", p.positional[0]},
            {"payload", parse_payload(p.positional[1])},
            {"type", p.value("--type", "json")},
            {"timeout_ms", timeout_ms}};
  auto r = call(p, cmd::client::ask, body, std::chrono::milliseconds(timeout_ms + 3000));
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << (*r)["payload"].dump() << "\n";
  return cli_ok;
}

int cmd_actors(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::actors, json::object());
  if (!r) return fail(r.err());
  if (p.json_out) return print_json((*r)["actors"]), cli_ok;
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : (*r)["actors"])
    rows.push_back({text_of(a["address"]), text_of(a["name"]), text_of(a["type"]),
                    text_of(a["package"]) + " " + text_of(a["version"]), text_of(a["system"]), text_of(a["worker_pid"]),
                    text_of(a["state"]), text_of(a["restarts"]), text_of(a["last_reason"])});
  print_table({"ADDRESS", "NAME", "TYPE", "PACKAGE", "SYSTEM", "PID", "STATE", "RESTARTS", "LAST REASON"}, rows);
  return cli_ok;
}

int cmd_kill(const parsed& p, const std::string&) {
  auto r = call(p, cmd::client::kill, json{{"target", p.positional[0]}});
  if (!r) return fail(r.err());
  if (p.json_out) return print_json(*r), cli_ok;
  std::cout << "stopped " << text_of((*r)["address"]) << "\n";
  return cli_ok;
}

const std::map<std::string, command>& commands() {
  static const std::map<std::string, command> table = {
      {"start",
       {"start [--port P] [--caps LIST] [--leader HOST:PORT] [--bind HOST] [--allow-unsigned]\n"
        "        [--max-package-size N[K|M|G]] [--standby N] [--delivery no-loss|best-effort]\n"
        "        [--etcd URL[,URL...] [--convention NAME]] [--heartbeat MS] [--member-timeout MS]\n"
        "        [--max-workers N] [--max-json-depth N] [--max-client-message N[K|M|G]] [--max-held N]\n"
        "        [--max-tcp-clients N] [--client-group GROUP] [--insecure-tcp] [--metrics [HOST:]PORT]\n"
        "        [--max-event-subscribers N] [--foreground]",
        "start a system (daemon) and return once it answers", start_value_options, start_flag_options, 0, 0,
        cmd_start}},
      {"bootstart",
       {"bootstart PORT [start options] [--defaults-dir DIR] [--no-enable]",
        "run the system on PORT at boot under systemd: writes the start options to\n"
        "      /etc/default/troupe-PORT (or DIR) for troupe@.service, then systemctl enable --now",
        [] {
          auto o = start_value_options;
          o.insert("--defaults-dir");
          return o;
        }(),
        [] {
          auto o = start_flag_options;
          o.insert("--no-enable");
          return o;
        }(),
        1, 1, cmd_bootstart}},
      {"stop",
       {"stop [PORT|HOST:PORT ...]",
        "stop systems (default 1900) and wait until they are gone",
        {},
        {},
        0,
        64,
        cmd_stop}},
      {"status", {"status", "show the system's state, capabilities and counts", {}, {}, 0, 0, cmd_status}},
      {"events",
       {"events [--follow] [--since SEQ] [--json]",
        "print the system's recent events (restarts, exits, moves, loads, members), one a line;\n"
        "      --follow: and every new one until interrupted",
        {"--since"},
        {"--follow"},
        0,
        0,
        [](const parsed& p, const std::string&) {
          events_request r{system_of(p), 0, p.has("--follow"), p.json_out};
          const std::string since = p.value("--since", "0");
          if (std::from_chars(since.data(), since.data() + since.size(), r.since).ptr != since.data() + since.size())
            throw usage_error{"--since takes an event number"};
          return show_events(r);
        }}},
      {"keygen",
       {"keygen NAME | keygen --client",
        "write an Ed25519 signing key NAME.key and its public key NAME.pub\n"
        "      (--client: this user's CurveZMQ key for TCP clients, in $TROUPE_HOME/client/)",
        {},
        {"--client"},
        0,
        1,
        cmd_keygen}},
      {"trust-client",
       {"trust-client NAME KEY|FILE [--role read|admin]",
        "let the client holding KEY connect over TCP with a role (read: status, list, actors, ask,\n"
        "      tell; admin: everything); writes $TROUPE_HOME/clients/ROLE/NAME.pub",
        {"--role"},
        {},
        2,
        2,
        cmd_trust_client}},
      {"pack",
       {"pack MANIFEST --key KEY [--version X.Y.Z|date] [--deps FILE] [--dep LIB]... [--out FILE|DIR]",
        "build and sign a package archive; prints its id on the last line",
        {"--key", "--version", "--deps", "--out"},
        {},
        1,
        1,
        cmd_pack,
        {"--dep"}}},
      {"inspect",
       {"inspect PKG [--contents | FILE] [--keys DIR]",
        "verify an archive against the trusted keys; list its entries or print one",
        {"--keys"},
        {"--contents"},
        1,
        2,
        cmd_inspect}},
      {"load",
       {"load FILE|GROUP | load --unsigned DIR",
        "verify and load a package (an archive, or a group's newest); prints its id on the last line",
        {},
        {"--unsigned"},
        1,
        1,
        cmd_load}},
      {"unload", {"unload HASH", "stop a package's actors and its worker", {}, {}, 1, 1, cmd_unload}},
      {"list", {"list", "list loaded packages", {}, {}, 0, 0, cmd_list}},
      {"avail",
       {"avail", "list the archives of the package directory by group, newest first", {}, {}, 0, 0, cmd_avail}},
      {"refresh",
       {"refresh", "load the newest archive of every group (no-op where loaded)", {}, {}, 0, 0, cmd_refresh}},
      {"role",
       {"role NAME [--group G]",
        "print the address of the actor holding an on_load role",
        {"--group"},
        {},
        1,
        1,
        cmd_role}},
      {"spawn",
       {"spawn TYPE [--package GROUP|ID] [--name NAME] [--wait]",
        "create an actor on a system that fits; prints its address on the last line\n"
        "      (--wait: with no fitting system, keep it pending instead of failing)",
        {"--package", "--name"},
        {"--wait"},
        1,
        1,
        cmd_spawn}},
      {"systems",
       {"systems", "list the systems of the convention with state, load and capabilities", {}, {}, 0, 0, cmd_systems}},
      {"chgcap",
       {"chgcap PORT +NAME | -NAME | NAME=VALUE",
        "change a live system's capabilities; actors that no longer fit move elsewhere",
        {},
        {},
        2,
        3,
        cmd_chgcap}},
      {"move",
       {"move ADDR|NAME [--to PORT] [--new-worker]",
        "re-create an actor on another system or in a new worker, same address",
        {"--to"},
        {"--new-worker"},
        1,
        1,
        cmd_move}},
      {"tell",
       {"tell TARGET JSON [--type T]", "send a one-way message to an address or name", {"--type"}, {}, 2, 2, cmd_tell}},
      {"ask",
       {"ask TARGET JSON [--type T] [--timeout MS]",
        "ask an actor; prints only the reply, as JSON",
        {"--type", "--timeout"},
        {},
        2,
        2,
        cmd_ask}},
      {"actors", {"actors", "list actors with state and restarts", {}, {}, 0, 0, cmd_actors}},
      {"kill", {"kill TARGET", "stop an actor (it gets an exit request)", {}, {}, 1, 1, cmd_kill}},
  };
  return table;
}

void print_help() {
  std::cout << "usage: troupe [--system HOST:PORT] [--json] COMMAND [ARGS]\n\n"
               "Process-isolated actor supervisor. The system address defaults to $TROUPE_SYSTEM\n"
               "or 127.0.0.1:1900; state lives in $TROUPE_HOME (default ~/.troupe).\n\ncommands:\n";
  for (const auto& [name, c] : commands()) std::printf("  %s\n      %s\n", c.usage.c_str(), c.summary.c_str());
}

}  // namespace

int run_cli(const std::vector<std::string>& args, const std::string& self) {
  // Global options may come before the command.
  std::vector<std::string> rest;
  std::string name;
  std::vector<std::string> leading;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const auto& a = args[i];
    if ((a == "--version" || a == "-V") && name.empty()) {
      std::cout << "troupe " << TROUPE_VERSION << " (wire protocol 1)\n";
      return cli_ok;
    }
    if (a == "--help" || a == "-h" || a == "help") {
      if (name.empty()) {
        print_help();
        return cli_ok;
      }
    }
    if (a == "--json") {
      leading.push_back(a);
      continue;
    }
    if (a == "--system") {
      if (i + 1 >= args.size()) return fail(cli_usage, "--system needs a value");
      leading.push_back(a);
      leading.push_back(args[++i]);
      continue;
    }
    if (a.rfind("--system=", 0) == 0) {
      leading.push_back(a);
      continue;
    }
    name = a;
    ++i;
    break;
  }
  if (name.empty()) {
    print_help();
    return cli_usage;
  }
  auto it = commands().find(name);
  if (it == commands().end()) return fail(cli_usage, "unknown command '" + name + "' (see troupe --help)");
  rest.assign(leading.begin(), leading.end());
  rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  for (const auto& a : rest)
    if (a == "--help" || a == "-h") {
      std::cout << "usage: troupe " << it->second.usage << "\n  " << it->second.summary << "\n";
      return cli_ok;
    }
  try {
    parsed p = parse(rest, it->second);
    return it->second.run(p, self);
  } catch (const usage_error& e) {
    std::cerr << "troupe " << name << ": " << e.message << "\nusage: troupe " << it->second.usage << "\n";
    return cli_usage;
  }
}

}  // namespace troupe::tools
