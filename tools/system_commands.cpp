// tools/system_commands.cpp — the commands that start, stop and describe
// systems: start, bootstart, stop, config (docs/OPERATIONS.md §3, §3.4, §4.4).
//
// Every option of `start` is one row of start_table: its flag --NAME, its
// environment variable TROUPE_NAME and its configuration file key NAME come
// from that row. An option's value is taken from, first to last: the command
// line, the environment, the file of --config, the default; resolve() says
// which for each, and the daemon keeps it (system_options::configuration) for
// `troupe config --running`. CLI11 parses the command line and the file (its
// TOML reader); the layering is here because CLI11 2.1 applies a
// configuration file before the environment and does not record where a
// value came from.
#include "tools/cli_common.hpp"
#include "tools/log_command.hpp"

#include "etcd/client.hpp"
#include "supervisor/capabilities.hpp"
#include "supervisor/dashboard.hpp"
#include "supervisor/http_server.hpp"
#include "supervisor/system.hpp"

#include <troupe/client.hpp>

#include <grp.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

namespace troupe::tools {

namespace {

// ---------------------------------------------------------------- the options of start

struct start_option {
  const char* name;      ///< --NAME, the file's key NAME, TROUPE_NAME (upper case, '-' as '_')
  const char* syntax;    ///< the value's syntax; nullptr: a flag (true or false)
  const char* fallback;  ///< the default as shown ("" for none)
  const char* help;
  bool list = false;  ///< a file may give it as an array, joined with ','
};

// To add a start option: a row here, and its reading in start_options().
const std::vector<start_option> start_table = {
    {"port", "PORT", "1900", "the public TCP port (1-65535)"},
    {"bind", "HOST", "127.0.0.1", "the address the public port listens on"},
    {"caps", "NAME[=VALUE][,NAME[=VALUE]...]", "",
     "capabilities: NAME alone is true; VALUE is true, false, an integer,\n"
     "a float, else a string (e.g. \"morse,Caesar cipher,gpu_mem=16\")",
     true},
    {"leader", "HOST:PORT", "",
     "the convention's leader (a bare PORT: 127.0.0.1:PORT); without it\n"
     "(and without --etcd) the system stands alone"},
    {"etcd", "URL[,URL...]", "", "coordinate the convention through etcd: http://HOST:PORT, ...", true},
    {"convention", "NAME", "default", "the convention's name on etcd: 1-64 of A-Z a-z 0-9 _ - ."},
    {"heartbeat", "MS", "200", "milliseconds between the convention's heartbeats (10-60000)"},
    {"member-timeout", "MS", "1000",
     "milliseconds of silence before a member or the leader is lost\n"
     "(50-3600000, at least twice --heartbeat; on etcd the lease's TTL)"},
    {"delivery", "no-loss|best-effort", "no-loss",
     "no-loss: messages acknowledged and sent again after a worker's\n"
     "crash; best-effort: no acks, lost with a dead worker"},
    {"direct-links", "on|off", "on",
     "on: workers of two systems send each other records over direct\n"
     "CurveZMQ links; off: through their supervisors (no-loss only)"},
    {"standby", "N", "1", "workers started ahead of the next load (0-16)"},
    {"max-workers", "N", "512", "worker processes at most, standbys included (1-100000)"},
    {"max-package-size", "N[K|M|G]", "256M", "the largest package archive accepted (bytes, or K, M, G)"},
    {"max-json-depth", "N", "256", "the deepest JSON accepted from clients, workers, peers (8-10000)"},
    {"max-client-message", "N[K|M|G]", "64M", "the largest frame a TCP client may send (64K-4G)"},
    {"max-held", "N", "1000", "messages held per actor not running yet (1-1000000)"},
    {"max-tcp-clients", "N", "1024", "TCP client connections at most (1-1000000)"},
    {"client-group", "GROUP", "", "members of GROUP may use the local socket too"},
    {"allow-unsigned", nullptr, "false", "accept `load --unsigned DIR` (development only)"},
    {"insecure-tcp", nullptr, "false", "plain-text TCP clients with every right (loopback --bind only)"},
    {"log-level", "debug|info|warn|error", "info", "the least severe lines logged (payloads only at debug)"},
    {"log-format", "text|json", "text", "one text line or one JSON object per record"},
    {"log-target", "file|stderr|journal", "",
     "where the log goes (default: the journal when stderr is systemd's\njournal stream, else the file)"},
    {"log-file", "PATH", "", "the log file (default HOME/systems/PORT/system.log; 0600)"},
    {"log-max-size", "N[K|M|G]", "", "rotate the file past this size (default: never; SIGHUP reopens)"},
    {"log-files", "N", "5", "rotated files kept: system.log.1 .. .N"},
    {"metrics", "[HOST:]PORT", "", "serve Prometheus metrics at http://HOST:PORT/metrics (a bare port: 127.0.0.1)"},
    {"max-event-subscribers", "N", "16", "clients following the event stream at most (1-1024)"},
    {"metrics-actors", "GLOB[,GLOB...]", "",
     "actors whose global name matches get series of their own on\n"
     "/metrics (label actor; e.g. \"counter,job-*\"; needs --metrics)",
     true},
    {"metrics-actors-max", "N", "20", "actors with series of their own at most (1-1000)"},
    {"http", "[HOST:]PORT", "",
     "serve the web dashboard at http://HOST:PORT/ (a bare port: 127.0.0.1;\n"
     "the same address as --metrics: one listener for both)"},
};

std::string env_name(const start_option& o) {
  std::string e = "TROUPE_";
  for (const char* p = o.name; *p != '\0'; ++p) e += *p == '-' ? '_' : static_cast<char>(std::toupper(*p));
  return e;
}

const start_option* find_start_option(const std::string& name) {
  for (const auto& o : start_table)
    if (name == o.name) return &o;
  return nullptr;
}

/// One option's value and where it came from: "default", "flag",
/// "env TROUPE_X" or "file PATH".
struct setting {
  std::string value;
  std::string source;
};
using start_settings = std::map<std::string, setting>;

/// What the command line gave for the start options (bound by add_start_options).
struct start_args {
  std::map<std::string, std::string> values;  ///< value options, by name
  std::map<std::string, bool> flags;          ///< flag options, by name
  std::map<std::string, CLI::Option*> options;
  std::string config;  ///< --config FILE
  [[nodiscard]] bool given(const std::string& name) const { return options.at(name)->count() > 0; }
};

void add_start_options(CLI::App* c, start_args& a) {
  const std::string group = "System options (each also TROUPE_NAME in the environment, NAME = in --config)";
  c->add_option("--config", a.config,
                "a configuration file: one `NAME = VALUE` line per option, NAME an\n"
                "option below without -- (port = 10101, caps = \"morse,base64\")")
      ->type_name("FILE");
  for (const auto& o : start_table) {
    std::string desc = o.help;
    desc += std::string("\n(") + (*o.fallback != '\0' ? "default " + std::string(o.fallback) + "; " : "") + "env " +
            env_name(o) + ")";
    CLI::Option* opt = o.syntax == nullptr
                           ? c->add_flag(std::string("--") + o.name, a.flags[o.name], desc)
                           : c->add_option(std::string("--") + o.name, a.values[o.name], desc)->type_name(o.syntax);
    opt->group(group);
    a.options[o.name] = opt;
  }
}

/// "true"/"false" for a flag's value written in a file or the environment.
std::string flag_text(const std::string& v, const std::string& where) {
  std::string l;
  for (char ch : v) l += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (l == "true" || l == "yes" || l == "on" || l == "1") return "true";
  if (l == "false" || l == "no" || l == "off" || l == "0") return "false";
  throw usage_error{where + " takes true or false, not '" + v + "'"};
}

/// The keys of a configuration file into s (source "file PATH"). A key that
/// is no option of start, a section or a list where one value is expected
/// is a usage error naming the file and the key.
void read_config_file(const std::string& file, start_settings& s) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw cli_error{cli_not_found, "configuration file " + file + ": " +
                                       (fs::exists(file, ec) ? "not a regular file" : "no such file")};
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(file);
  } catch (const CLI::Error& e) {
    throw usage_error{file + ": " + e.what()};
  }
  for (const auto& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // CLI11's section marks
    if (!item.parents.empty())
      throw usage_error{file + ": key '" + item.fullname() + "': sections are not used, write NAME = VALUE lines only"};
    std::string key = item.name;
    std::replace(key.begin(), key.end(), '_', '-');
    const start_option* o = find_start_option(key);
    if (o == nullptr)
      throw usage_error{file + ": unknown key '" + item.name + "' (the keys are the options of start without --)"};
    const std::string where = file + ", key " + key;
    if (item.inputs.size() != 1 && !o->list) throw usage_error{where + " takes one value"};
    std::string value;
    for (const auto& v : item.inputs) value += (value.empty() ? "" : ",") + v;
    if (o->syntax == nullptr) value = flag_text(value, where);
    s[o->name] = {value, "file " + file};
  }
}

/// The value of every start option and where it came from: the command line,
/// else the environment (with use_env), else the file of --config, else the
/// default.
start_settings resolve(const start_args& a, bool use_env) {
  start_settings s;
  for (const auto& o : start_table) s[o.name] = {o.fallback, "default"};
  if (!a.config.empty()) read_config_file(fs::absolute(a.config).lexically_normal().string(), s);
  for (const auto& o : start_table) {
    const std::string env = env_name(o);
    if (const char* v = std::getenv(env.c_str()); use_env && v != nullptr && *v != '\0')
      s[o.name] = {o.syntax == nullptr ? flag_text(v, env) : std::string(v), "env " + env};
    if (a.given(o.name))
      s[o.name] = {o.syntax == nullptr ? (a.flags.at(o.name) ? "true" : "false") : a.values.at(o.name), "flag"};
  }
  return s;
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

bool is_loopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

/// The options of `troupe start` as the daemon takes them, every value
/// checked (a usage_error naming where a wrong value came from otherwise):
/// what `start` runs, `bootstart` writes and `config` shows.
supervisor::system_options start_options(const start_settings& s) {
  supervisor::system_options opts;
  auto has = [&s](const char* name) { return s.at(name).source != "default"; };
  auto text = [&s](const char* name) { return s.at(name).value; };
  auto on = [&s](const char* name) { return s.at(name).value == "true"; };
  // Reads one option; an error names the file and key, or the variable,
  // the value came from.
  auto read = [&s](const char* name, const auto& fn) {
    try {
      fn();
    } catch (const usage_error& e) {
      const std::string& src = s.at(name).source;
      if (src.rfind("file ", 0) == 0) throw usage_error{src.substr(5) + ", key " + name + ": " + e.message};
      if (src.rfind("env ", 0) == 0) throw usage_error{src.substr(4) + ": " + e.message};
      throw;
    }
  };
  read("port", [&] { opts.port = parse_port(text("port")); });
  opts.bind_host = text("bind");
  opts.home = troupe_home();
  read("caps", [&] {
    auto caps = supervisor::parse_capabilities(text("caps"));
    if (!caps) throw usage_error{caps.err().message};
    opts.caps = std::move(*caps);
  });
  opts.allow_unsigned = on("allow-unsigned");
  read("delivery", [&] {
    const std::string mode = text("delivery");
    if (mode != "no-loss" && mode != "best-effort")
      throw usage_error{"--delivery takes no-loss or best-effort, not '" + mode + "'"};
    opts.no_loss = mode == "no-loss";
  });
  read("direct-links", [&] {
    const std::string mode = text("direct-links");
    if (mode != "on" && mode != "off") throw usage_error{"--direct-links takes on or off, not '" + mode + "'"};
    opts.direct_links = mode == "on";
  });
  read("standby", [&] {
    const std::string n = text("standby");
    unsigned v = 0;
    auto r = std::from_chars(n.data(), n.data() + n.size(), v);
    if (r.ec != std::errc{} || r.ptr != n.data() + n.size() || v > 16)
      throw usage_error{"--standby takes a number of workers from 0 to 16"};
    opts.standby_workers = v;
  });
  if (has("max-package-size"))
    read("max-package-size", [&] { opts.limits.max_archive_bytes = parse_size(text("max-package-size")); });
  if (has("max-client-message"))
    read("max-client-message", [&] {
      opts.max_client_message = parse_size(text("max-client-message"));
      if (opts.max_client_message < (std::uint64_t{64} << 10) || opts.max_client_message > (std::uint64_t{4} << 30))
        throw usage_error{"--max-client-message takes a size from 64K to 4G"};
    });
  auto count = [&](const char* option, unsigned long lo, unsigned long hi) {
    unsigned long v = 0;
    read(option, [&] {
      const std::string t = text(option);
      auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      if (r.ec != std::errc{} || r.ptr != t.data() + t.size() || v < lo || v > hi)
        throw usage_error{"--" + std::string(option) + " takes a number from " + std::to_string(lo) + " to " +
                          std::to_string(hi)};
    });
    return v;
  };
  opts.insecure_tcp = on("insecure-tcp");
  if (opts.insecure_tcp && !is_loopback(opts.bind_host))
    throw usage_error{"--insecure-tcp is only allowed with a loopback --bind (clients elsewhere use keys)"};
  if (has("client-group"))
    read("client-group", [&] {
      const std::string g = text("client-group");
      const group* gr = ::getgrnam(g.c_str());
      if (gr == nullptr) throw usage_error{"--client-group: no group '" + g + "' on this host"};
      opts.client_gid = static_cast<long>(gr->gr_gid);
    });
  if (has("max-workers")) opts.max_workers = static_cast<std::uint32_t>(count("max-workers", 1, 100000));
  if (has("max-json-depth")) opts.max_json_depth = count("max-json-depth", 8, 10000);
  if (has("max-held")) opts.held_limit = count("max-held", 1, 1000000);
  if (has("max-tcp-clients")) opts.max_tcp_clients = static_cast<std::uint32_t>(count("max-tcp-clients", 1, 1000000));
  if (has("etcd")) {
    if (has("leader")) throw usage_error{"--etcd and --leader are two ways to coordinate a convention: give one"};
    read("etcd", [&] {
      auto endpoints = etcd::parse_endpoints(text("etcd"));
      if (!endpoints) throw usage_error{"--etcd: " + endpoints.err().message};
    });
    opts.etcd = text("etcd");
  }
  if (has("convention"))
    read("convention", [&] {
      const std::string name = text("convention");
      const bool valid = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
      });
      if (!valid) throw usage_error{"--convention takes a name of 1 to 64 letters, digits, '_', '-' or '.'"};
      if (!has("etcd")) throw usage_error{"--convention names a convention on etcd: give --etcd too"};
      opts.convention = name;
    });
  if (has("leader")) {
    read("leader", [&] {
      opts.leader = text("leader");
      if (opts.leader.find(':') == std::string::npos) opts.leader = "127.0.0.1:" + opts.leader;
      if (!system_endpoint(opts.leader)) throw usage_error{"--leader takes HOST:PORT, not '" + text("leader") + "'"};
    });
  } else {
    // Without a convention address a system stands alone (it leads a
    // convention of its own), whatever its port: joining 1900 by default
    // made a system on another port fail its spawns with no warning.
    opts.leader = opts.bind_host + ":" + std::to_string(opts.port);
  }
  auto millis = [&](const char* option, long lo, long hi) {
    long v = 0;
    read(option, [&] {
      const std::string t = text(option);
      auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      if (r.ec != std::errc{} || r.ptr != t.data() + t.size() || v < lo || v > hi)
        throw usage_error{"--" + std::string(option) + " takes milliseconds from " + std::to_string(lo) + " to " +
                          std::to_string(hi)};
    });
    return std::chrono::milliseconds(v);
  };
  if (has("heartbeat")) opts.heartbeat = millis("heartbeat", 10, 60000);
  if (has("member-timeout")) opts.member_timeout = millis("member-timeout", 50, 3600000);
  if (opts.member_timeout < 2 * opts.heartbeat)
    throw usage_error{"--member-timeout must be at least twice --heartbeat"};
  if (has("max-event-subscribers"))
    read("max-event-subscribers",
         [&] { opts.max_event_subscribers = static_cast<std::uint32_t>(count("max-event-subscribers", 1, 1024)); });
  if (has("metrics"))
    read("metrics", [&] {
      auto hp = supervisor::http_server::parse_where(text("metrics"));
      if (!hp || hp->second == 0) throw usage_error{"--metrics takes HOST:PORT or a port (on 127.0.0.1)"};
      opts.metrics = hp->first + ":" + std::to_string(hp->second);
    });
  if (has("metrics-actors"))
    read("metrics-actors", [&] {
      if (!has("metrics")) throw usage_error{"--metrics-actors names actors for /metrics: give --metrics too"};
      const std::string all = text("metrics-actors");
      std::size_t from = 0;
      for (;;) {
        const auto comma = all.find(',', from);
        const std::string glob = all.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
        const bool bad = glob.empty() || glob.size() > 128 || std::any_of(glob.begin(), glob.end(), [](char ch) {
                           return std::iscntrl(static_cast<unsigned char>(ch)) != 0;
                         });
        if (bad) throw usage_error{"--metrics-actors takes globs of 1 to 128 printable characters, comma-separated"};
        opts.metrics_actors.push_back(glob);
        if (comma == std::string::npos) break;
        from = comma + 1;
      }
    });
  if (has("metrics-actors-max")) opts.metrics_actors_max = count("metrics-actors-max", 1, 1000);
  if (has("http"))
    read("http", [&] {
      auto hp = supervisor::http_server::parse_where(text("http"));
      if (!hp || hp->second == 0) throw usage_error{"--http takes HOST:PORT or a port (on 127.0.0.1)"};
      opts.http = hp->first + ":" + std::to_string(hp->second);
    });
  for (const auto& o : log_start_options) {
    const std::string name = o.substr(2);
    if (has(name.c_str()))
      read(name.c_str(), [&] {
        if (auto e = set_log_option(opts, o, text(name.c_str()))) throw usage_error{*e};
      });
  }
  for (const auto& [name, v] : s) opts.configuration[name] = {v.value, v.source};
  // No leader given: its own address (it stands alone).
  if (!has("leader") && !has("etcd")) opts.configuration["leader"].value = opts.leader;
  return opts;
}

json configuration_json(const std::map<std::string, supervisor::configured_option>& c) {
  json out = json::object();
  for (const auto& [name, v] : c) out[name] = json{{"value", v.value}, {"source", v.source}};
  return out;
}

void print_configuration(const json& options) {
  std::vector<std::vector<std::string>> rows;
  // In the table's order, then anything else the system reported.
  for (const auto& o : start_table)
    if (options.contains(o.name)) {
      const json& v = options[o.name];
      const std::string value = v.value("value", std::string());
      rows.push_back({o.name, value.empty() ? "-" : value, v.value("source", std::string())});
    }
  for (const auto& [name, v] : options.items())
    if (find_start_option(name) == nullptr)
      rows.push_back({name, v.value("value", std::string()), v.value("source", std::string())});
  print_table({"OPTION", "VALUE", "SOURCE"}, rows);
}

// ---------------------------------------------------------------- start

fs::path sibling(const std::string& self, const char* name) { return fs::path(self).parent_path() / name; }

struct start_cmd {
  start_args a;
  bool foreground = false;
  int ready_fd = -1;
};

/// The command line that re-runs these options in the daemon: the file and
/// the options given as flags, so that the daemon (with the same environment)
/// finds the same values from the same sources.
std::vector<std::string> daemon_args(const start_args& a) {
  std::vector<std::string> out;
  if (!a.config.empty()) out.insert(out.end(), {"--config", fs::absolute(a.config).lexically_normal().string()});
  for (const auto& o : start_table) {
    if (!a.given(o.name)) continue;
    const std::string flag = std::string("--") + o.name;
    if (o.syntax == nullptr)
      out.push_back(a.flags.at(o.name) ? flag : flag + "=false");
    else
      out.insert(out.end(), {flag, a.values.at(o.name)});
  }
  return out;
}

int cmd_start(const globals& g, const start_cmd& c) {
  supervisor::system_options opts = start_options(resolve(c.a, true));
  const char* worker_env = std::getenv("TROUPE_WORKER");
  opts.worker_exe = worker_env && *worker_env ? fs::path(worker_env) : sibling(g.self, "troupe-worker");
  if (!fs::exists(opts.worker_exe))
    return fail(cli_failed, "worker executable " + opts.worker_exe.string() + " not found (set TROUPE_WORKER)");

  const std::string where = opts.bind_host + ":" + std::to_string(opts.port);
  opts.ready_fd = c.ready_fd;
  if (c.foreground) return supervisor::run_system(opts);

  // Already running? A quick status call tells.
  if (auto cl = client::connect(where)) {
    if (cl->call(cmd::client::status, json::object(), std::chrono::milliseconds(300)))
      return fail(cli_failed, "a system is already running on " + where);
  }
  std::error_code ec;
  const fs::path dir = supervisor::state_dir(opts.home, opts.port);
  supervisor::make_private(opts.home, opts.port);  // before anything is created
  fs::create_directories(dir, ec);
  if (ec) return fail(cli_failed, "cannot create " + dir.string() + ": " + ec.message());
  const fs::path log = supervisor::log_file_of(opts);

  // The daemon is this program re-executed in the foreground, detached in its
  // own session, reporting readiness through a pipe (no polling).
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail(cli_failed, "pipe failed");
  std::vector<std::string> argv_s = {g.self, "start", "--foreground", "--ready-fd", std::to_string(pipefd[1])};
  for (auto& a : daemon_args(c.a)) argv_s.push_back(std::move(a));
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
    ::execv(g.self.c_str(), argv.data());
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
    // The dashboard's URL with its token after '#', which a browser keeps
    // to itself (never sent, never in a log); the daemon wrote the token
    // for its user, who started it.
    std::string dashboard;
    if (!opts.http.empty()) {
      std::ifstream in(supervisor::dashboard::token_file(dir));
      std::string token;
      std::getline(in, token);
      dashboard = supervisor::dashboard::url_of(opts.http) + (token.empty() ? "" : "#token=" + token);
    }
    if (g.json_out) {
      json out{{"system", where}, {"pid", std::stoi(daemon_pid)}, {"log", log.string()}, {"role", role}};
      if (!dashboard.empty()) out["dashboard"] = dashboard;
      print_json(out);
    } else {
      std::cout << "system running on " << where << " (pid " << daemon_pid << ", log " << log.string() << ")\n"
                << "role: " << role << "\n";
      if (!dashboard.empty()) std::cout << "dashboard: " << dashboard << "\n";
    }
    return cli_ok;
  }
  if (line.rfind("error ", 0) == 0)
    return fail(cli_failed, "system on " + where + " failed to start: " + line.substr(6, line.find('\n') - 6));
  return fail(cli_failed, "system on " + where + " exited during start-up; see " + log.string());
}

// ---------------------------------------------------------------- bootstart

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

struct bootstart_cmd {
  std::string port;
  start_args a;
  std::string defaults_dir = "/etc/default";
  bool no_enable = false;
};

// `troupe bootstart PORT [start options]`: the system on PORT as a service
// that starts at boot, as Thespian's bootstart. The template troupe@.service
// (the Debian package's) runs `troupe start --foreground --port PORT
// $TROUPE_OPTS`; this writes TROUPE_OPTS to /etc/default/troupe-PORT, checked
// as `start` checks them (with the file of --config, without this shell's
// environment, which the service does not have), then `systemctl enable --now
// troupe@PORT`.
int cmd_bootstart(const bootstart_cmd& c) {
  const std::uint16_t port = parse_port(c.port);
  if (c.a.given("port")) throw usage_error{"--port is not for bootstart: the port is PORT"};
  start_settings s = resolve(c.a, false);
  s["port"] = {std::to_string(port), "flag"};
  (void)start_options(s);  // a usage error now, not a service failing at every boot
  // systemd splits $TROUPE_OPTS at white space and reads quotes, '$' and '\'.
  auto plain = [](const std::string& name, const std::string& value) {
    const bool ok = !value.empty() && std::all_of(value.begin(), value.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) ||
             std::string_view("._:,=/@+-").find(ch) != std::string_view::npos;
    });
    if (!ok) throw usage_error{name + " '" + value + "': a service option takes letters, digits and ._:,=/@+- only"};
    return value;
  };
  std::string opts;
  auto add = [&opts](const std::string& word) { opts += (opts.empty() ? "" : " ") + word; };
  if (!c.a.config.empty()) add("--config " + plain("--config", fs::absolute(c.a.config).lexically_normal().string()));
  std::vector<const start_option*> by_name;
  for (const auto& o : start_table) by_name.push_back(&o);
  std::sort(by_name.begin(), by_name.end(), [](auto* x, auto* y) { return std::strcmp(x->name, y->name) < 0; });
  for (const auto* o : by_name)  // values, then flags
    if (o->syntax != nullptr && c.a.given(o->name))
      add(std::string("--") + o->name + " " + plain(std::string("--") + o->name, c.a.values.at(o->name)));
  for (const auto* o : by_name)
    if (o->syntax == nullptr && c.a.given(o->name))
      add(std::string("--") + o->name + (c.a.flags.at(o->name) ? "" : "=false"));

  // Nothing is written for a service that cannot be enabled.
  std::error_code ec;
  bool have_template = false;
  for (const char* d : {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"})
    have_template = have_template || fs::exists(fs::path(d) / "troupe@.service", ec);
  if (!c.no_enable && !have_template)
    return fail(cli_failed,
                "no troupe@.service template in /etc/systemd/system or /usr/lib/systemd/system "
                "(install the troupe Debian package)");
  const fs::path dir = c.defaults_dir;
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
  if (c.no_enable) {
    std::cout << "not enabled: systemctl enable --now " << unit << "\n";
    return cli_ok;
  }
  if (const int rc = run_and_wait({"systemctl", "enable", "--now", unit}); rc != 0)
    return fail(cli_failed, "systemctl enable --now " + unit + " failed (" +
                                (rc < 0 ? std::string("did not run") : "exit " + std::to_string(rc)) + ")");
  std::cout << "enabled and started " << unit << "\n";
  return cli_ok;
}

// ---------------------------------------------------------------- stop

/// Waits until pid is gone, through a pidfd (no polling loop).
bool wait_gone(int pid, int timeout_ms) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd pfd{fd, POLLIN, 0};
  int r = ::poll(&pfd, 1, timeout_ms);
  ::close(fd);
  return r > 0;
}

int cmd_stop(const globals& g, const std::vector<std::string>& systems) {
  std::vector<std::string> targets = systems;
  if (targets.empty()) targets.push_back(system_of(g));
  int worst = cli_ok;
  for (const auto& t : targets) {
    std::string where = t.find(':') == std::string::npos ? "127.0.0.1:" + std::to_string(parse_port(t)) : t;
    connect_options fast;
    fast.fail_fast = true;  // nothing there: said at once
    auto c = client::connect(where, fast);
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
    const bool gone = [&] {
      progress shown("stopping the system on " + where + " (its actors get their exit requests)");
      return wait_gone(pid, 20000);
    }();
    if (!gone) {
      worst = fail(cli_timeout, "system on " + where + " (pid " + std::to_string(pid) + ") did not stop within 20 s");
      continue;
    }
    if (g.json_out)
      print_json(json{{"stopped", where}, {"pid", pid}});
    else
      std::cout << "stopped system on " << where << "\n";
  }
  return worst;
}

// ---------------------------------------------------------------- config

struct config_cmd {
  start_args a;
  bool running = false;
};

// `troupe config [--config FILE] [start options]`: what `start` with these
// would run, and where each value comes from; with --running (or --system)
// the options a running system was started with.
int cmd_config(const globals& g, const config_cmd& c) {
  if (c.running || !g.system.empty()) {
    bool local = !c.a.config.empty();
    for (const auto& [name, opt] : c.a.options) local = local || opt->count() > 0;
    if (local) throw usage_error{"start options describe a system to start; --running asks a running one: give one"};
    auto r = call(g, cmd::client::config, json::object(), std::chrono::seconds(3));
    if (!r) return fail(r.err());
    if (g.json_out) return print_json(*r), cli_ok;
    std::cout << "system on " << system_of(g) << ", started with:\n";
    print_configuration((*r).value("options", json::object()));
    return cli_ok;
  }
  const supervisor::system_options opts = start_options(resolve(c.a, true));
  const json options = configuration_json(opts.configuration);
  if (g.json_out) return print_json(json{{"options", options}}), cli_ok;
  print_configuration(options);
  return cli_ok;
}

// ---------------------------------------------------------------- dashboard

// `troupe dashboard`: the URL of the system's dashboard with its token, for
// an operator of the admin role (the token changes at every start).
int cmd_dashboard(const globals& g) {
  auto r = call(g, cmd::client::dashboard, json::object(), std::chrono::seconds(3));
  if (!r) return fail(r.err());
  const std::string url = (*r).value("url", std::string()) + "#token=" + (*r).value("token", std::string());
  if (g.json_out) return print_json(json{{"url", url}}), cli_ok;
  std::cout << url << "\n";
  return cli_ok;
}

}  // namespace

void add_system_commands(command_set& cs) {
  globals& g = cs.g();
  auto start = std::make_shared<start_cmd>();
  CLI::App* c = cs.add("start", "start a system (daemon) and return once it answers",
                       "Each option's value comes from, first to last: the command line, the\n"
                       "environment (TROUPE_NAME), the --config file (NAME = VALUE), the default;\n"
                       "`troupe config` shows the result.",
                       {"troupe start --port 1901 --caps morse,base64", "troupe start --config /etc/troupe/1901.toml",
                        "TROUPE_CAPS=gpu troupe start --port 1902 --leader 127.0.0.1:1901"},
                       [&g, start] { return cmd_start(g, *start); });
  add_start_options(c, start->a);
  c->add_flag("--foreground", start->foreground, "run the daemon in this process, logging on stderr");
  c->add_option("--ready-fd", start->ready_fd, "internal: where the daemon says it serves")->group("");

  auto boot = std::make_shared<bootstart_cmd>();
  c = cs.add("bootstart", "run the system on PORT at boot under systemd",
             "Writes the start options to /etc/default/troupe-PORT (or DIR) for\n"
             "troupe@.service, then runs systemctl enable --now troupe@PORT.\n"
             "They are checked as start checks them, without this environment.",
             {"sudo troupe bootstart 1900 --caps morse --client-group troupe-ops",
              "sudo troupe bootstart 1901 --config /etc/troupe/1901.toml"},
             [boot] { return cmd_bootstart(*boot); });
  c->add_option("PORT", boot->port, "the system's port (the unit's instance)")->required();
  add_start_options(c, boot->a);
  c->add_option("--defaults-dir", boot->defaults_dir, "where troupe-PORT is written")
      ->type_name("DIR")
      ->capture_default_str();
  c->add_flag("--no-enable", boot->no_enable, "write the file only");

  auto stop = std::make_shared<std::vector<std::string>>();
  c = cs.add("stop", "stop systems (default: the --system one) and wait until they are gone", "",
             {"troupe stop", "troupe stop 1901 1902"}, [&g, stop] { return cmd_stop(g, *stop); });
  c->add_option("SYSTEM", *stop, "PORT (on 127.0.0.1) or HOST:PORT; several are stopped in turn")->expected(0, 64);

  cs.add("dashboard", "print the URL of the system's web dashboard, with its token",
         "Needs the admin role. The token follows '#' in the URL: the browser keeps it\n"
         "(never sent in a request line, never logged) and sends it as\n"
         "Authorization: Bearer. It changes at every start of the system.",
         {"troupe dashboard", "troupe --system 127.0.0.1:1901 dashboard"}, [&g] { return cmd_dashboard(g); });

  auto config = std::make_shared<config_cmd>();
  c = cs.add("config", "print a system's effective configuration and where each value came from",
             "Without --running: the options `troupe start` would run with these\n"
             "arguments, this environment and the --config file, checked as start\n"
             "checks them. With --running (or --system): the options the running\n"
             "system was started with. SOURCE is default, flag, env TROUPE_X or file PATH.",
             {"troupe config --config /etc/troupe/1901.toml", "troupe --system 127.0.0.1:1901 config --running",
              "troupe --json config --port 1902"},
             [&g, config] { return cmd_config(g, *config); });
  add_start_options(c, config->a);
  c->add_flag("--running", config->running, "ask the running system (--system, $TROUPE_SYSTEM or 127.0.0.1:1900)");
}

}  // namespace troupe::tools
