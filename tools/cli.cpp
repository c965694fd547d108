// tools/cli.cpp — the `troupe` command line (docs/OPERATIONS.md §2): CLI11
// subcommands declared by area (system_commands.cpp, package_commands.cpp
// and the actor commands below), the help they print, and the one place
// where wrong arguments become exit code 2.
#include "tools/cli_common.hpp"
#include "tools/event_command.hpp"
#include "tools/log_command.hpp"
#include "tools/top_command.hpp"

#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

namespace troupe::tools {

/// The source tree's commit at build time (cmake/git_commit.cmake).
extern const char* const git_commit;

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

std::string system_of(const globals& g) {
  if (!g.system.empty()) return g.system;
  if (const char* env = std::getenv("TROUPE_SYSTEM"); env && *env) return env;
  return "127.0.0.1:1900";
}

fs::path troupe_home() { return default_home(); }

result<json> call(const globals& g, std::string_view command, const json& body, std::chrono::milliseconds timeout) {
  connect_options o;
  o.fail_fast = true;  // a person waiting: "connection refused" at once, not after the timeout
  auto c = client::connect(system_of(g), o);
  if (!c) return c.err();
  return c->call(command, body, timeout);
}

void print_json(const json& j) { std::cout << j.dump(2) << "\n"; }

struct progress::impl {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  bool shown = false;
  std::thread t;
};

progress::progress(std::string what) {
  if (::isatty(STDERR_FILENO) != 1) return;
  impl_ = std::make_unique<impl>();
  impl_->t = std::thread([p = impl_.get(), what = std::move(what)] {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(p->m);
    if (p->cv.wait_for(lock, std::chrono::milliseconds(300), [p] { return p->done; })) return;
    do {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char line[64];
      std::snprintf(line, sizeof line, "… %.1f s", s);
      std::cerr << "\r" << what << line << std::flush;
      p->shown = true;
    } while (!p->cv.wait_for(lock, std::chrono::milliseconds(200), [p] { return p->done; }));
    std::cerr << "\r\033[K" << std::flush;  // erase the line
  });
}

progress::~progress() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    impl_->done = true;
  }
  impl_->cv.notify_one();
  impl_->t.join();
}

std::string text_of(const json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows,
                 std::vector<std::size_t>& width) {
  auto widen = [&width](const std::vector<std::string>& cells) {
    if (width.size() < cells.size()) width.resize(cells.size());
    for (std::size_t i = 0; i < cells.size(); ++i) width[i] = std::max(width[i], cells[i].size());
  };
  widen(headers);
  for (const auto& r : rows) widen(r);
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::cout << out << "\n";
  };
  if (!headers.empty()) line(headers);
  for (const auto& r : rows) line(r);
}

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  print_table(headers, rows, width);
}

std::uint16_t parse_port(const std::string& text) {
  unsigned v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v == 0 || v > 65535)
    throw usage_error{"'" + text + "' is not a port (1-65535)"};
  return static_cast<std::uint16_t>(v);
}

json read_payload(const std::string& arg) {
  std::string text;
  std::string where = "payload";
  if (arg == "-") {
    // The whole of standard input: no size limit but the system's.
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    where = "payload on standard input";
  } else if (arg.size() > 1 && arg[0] == '@') {
    const std::string file = arg.substr(1);
    std::ifstream in(file, std::ios::binary);
    if (!in) throw cli_error{cli_not_found, "payload file " + file + ": " + std::strerror(errno)};
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw cli_error{cli_failed, "cannot read payload file " + file};
    where = "payload in " + file;
  } else {
    text = arg;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    const std::string shown = text.size() > 80 ? text.substr(0, 77) + "..." : text;
    throw usage_error{"malformed JSON " + where + ": " + shown + " (quote strings: '\"hello\"')"};
  }
  return j;
}

CLI::Option* add_payload(CLI::App* c, std::string& into) {
  return c
      ->add_option("JSON", into,
                   "the message: a JSON value (strings quoted: '\"SOS\"'), @FILE for the\n"
                   "contents of FILE, or - for standard input (any size the system takes;\n"
                   "a JSON string starting with @ is written '\"@x\"')")
      ->required();
}

CLI::Option* add_target(CLI::App* c, std::string& into) {
  return c->add_option("TARGET", into, "an actor's address (@3fa9c012.16) or global name")->required();
}

namespace {

std::string exit_codes_text() {
  std::string out = "Exit status:\n";
  for (const auto& d : cli_exit_docs) {
    char line[160];
    std::snprintf(line, sizeof line, "  %d  %-13s%s\n", d.code, d.name, d.meaning);
    out += line;
  }
  return out;
}

/// CLI11's help, with an option's syntax, default and environment variable
/// written out and the usage line naming the global options.
class troupe_formatter : public CLI::Formatter {
 public:
  troupe_formatter() { column_width(34); }
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (opt->get_expected_max() == 0 || opt->get_positional()) return {};
    return " " + opt->get_type_name();
  }
  std::string make_usage(const CLI::App* app, std::string name) const override {
    if (app->get_parent() == nullptr) return "Usage: troupe [--system HOST:PORT] [--json] COMMAND [ARGS] [OPTIONS]\n";
    return CLI::Formatter::make_usage(app, std::move(name));
  }
  // In the list of commands, the first line of each description.
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    const std::string& d = sub->get_description();
    CLI::detail::format_help(out, sub->get_name(), d.substr(0, d.find('\n')), get_column_width());
    return out.str();
  }
  std::string make_option_desc(const CLI::Option* opt) const override {
    std::string d = opt->get_description();
    std::string extra;
    if (!opt->get_default_str().empty()) extra = "default " + opt->get_default_str();
    if (!opt->get_envname().empty()) extra += (extra.empty() ? "env " : "; env ") + opt->get_envname();
    if (opt->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll && !opt->get_positional())
      extra += extra.empty() ? "repeatable" : "; repeatable";
    if (!extra.empty()) d += (d.empty() ? "(" : "\n(") + extra + ")";
    return d;
  }
};

}  // namespace

CLI::App* command_set::add(const std::string& name, const std::string& summary, const std::string& details,
                           const std::vector<std::string>& examples, std::function<int()> run) {
  CLI::App* c = app_.add_subcommand(name, summary + (details.empty() ? "" : "\n" + details));
  c->group("Commands");
  std::string footer;
  if (!examples.empty()) {
    footer += "Examples:\n";
    for (const auto& e : examples) footer += "  " + e + "\n";
    footer += "\n";
  }
  footer += "Global options: --system HOST:PORT, --json (see troupe --help).\n\n" + exit_codes_text();
  c->footer(footer);
  runs_[name] = std::move(run);
  return c;
}

namespace {

// ---------------------------------------------------------------- actor commands

int cmd_status(const globals& g) {
  auto r = call(g, cmd::client::status, json::object(), std::chrono::seconds(3));
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << "system " << text_of((*r)["system"]) << " on " << system_of(g) << " (pid " << (*r)["pid"]
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

struct spawn_options {
  std::string type, package, name;
  bool wait = false;
};

int cmd_spawn(const globals& g, const spawn_options& o) {
  json body{{"type", o.type}};
  if (!o.package.empty()) body["package"] = o.package;
  if (!o.name.empty()) body["name"] = o.name;
  if (o.wait) body["wait"] = true;
  auto r = call(g, cmd::client::spawn, body, std::chrono::seconds(20));
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  if ((*r).value("state", std::string()) == "pending") std::cerr << "pending: " << text_of((*r)["reason"]) << "\n";
  std::cout << text_of((*r)["address"]) << "\n";
  return cli_ok;
}

/// PORT or HOST:PORT as the address of a system.
std::string system_arg(const std::string& text) {
  return text.find(':') == std::string::npos ? "127.0.0.1:" + std::to_string(parse_port(text)) : text;
}

int cmd_systems(const globals& g) {
  auto r = call(g, cmd::client::systems, json::object(), std::chrono::seconds(3));
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
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

struct chgcap_options {
  std::string port;
  std::vector<std::string> change;  // +NAME | + NAME | -NAME | - NAME | NAME=VALUE
};

int cmd_chgcap(const globals& g, const chgcap_options& o) {
  std::string op;
  std::string name;
  std::string value;
  const auto& a = o.change;
  if (a.size() == 2) {
    if (a[0] != "+" && a[0] != "-") throw usage_error{"expected + NAME or - NAME, not '" + a[0] + "'"};
    op = a[0] == "+" ? "add" : "remove";
    name = a[1];
  } else if (a[0].size() > 1 && (a[0][0] == '+' || a[0][0] == '-')) {
    op = a[0][0] == '+' ? "add" : "remove";
    name = a[0].substr(1);
  } else if (auto eq = a[0].find('='); eq != std::string::npos && eq > 0) {
    op = "set";
    name = a[0].substr(0, eq);
    value = a[0].substr(eq + 1);
  } else {
    throw usage_error{"expected +NAME, -NAME or NAME=VALUE, not '" + a[0] + "'"};
  }
  if (name.empty()) throw usage_error{"no capability name given"};
  globals target = g;
  target.system = system_arg(o.port);
  auto r = call(target, "chgcap", json{{"op", op}, {"name", name}, {"value", value}}, std::chrono::seconds(5));
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << "system " << target.system << " capabilities: " << (*r)["capabilities"].dump() << "\n";
  return cli_ok;
}

struct move_options {
  std::string target, to;
  bool new_worker = false;
};

int cmd_move(const globals& g, const move_options& o) {
  json body{{"target", o.target}, {"new_worker", o.new_worker}};
  if (!o.to.empty()) body["port"] = parse_port(o.to);
  if (o.to.empty() && !o.new_worker) throw usage_error{"give --to PORT, --new-worker, or both"};
  auto r = call(g, cmd::client::move, body, std::chrono::seconds(20));
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << "moved " << text_of((*r)["address"]) << " to " << text_of((*r)["system"]) << "\n";
  return cli_ok;
}

struct message_options {
  std::string target, payload, type = "json", timeout = "5000";
};

int cmd_tell(const globals& g, const message_options& o) {
  json body{{"target", o.target}, {"payload", read_payload(o.payload)}, {"type", o.type}};
  auto r = call(g, cmd::client::tell, body);
  if (!r) return fail(r.err());
  if (g.json_out) print_json(*r);
  return cli_ok;
}

int cmd_ask(const globals& g, const message_options& o) {
  int timeout_ms = 0;
  auto conv = std::from_chars(o.timeout.data(), o.timeout.data() + o.timeout.size(), timeout_ms);
  if (conv.ec != std::errc{} || conv.ptr != o.timeout.data() + o.timeout.size() || timeout_ms <= 0)
    throw usage_error{"--timeout takes milliseconds > 0"};
  json body{{"target", o.target}, {"payload", read_payload(o.payload)}, {"type", o.type}, {"timeout_ms", timeout_ms}};
  auto r = call(g, cmd::client::ask, body, std::chrono::milliseconds(timeout_ms + 3000));
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << (*r)["payload"].dump() << "\n";
  return cli_ok;
}

struct actors_options {
  std::size_t limit = 0;
  std::string after, package, state, on;
};

// Pages of 1000 rows, printed as they come: a system with 100,000 actors
// never answers with one 15 MB message, and the table starts at once.
int cmd_actors(const globals& g, const actors_options& o) {
  constexpr std::size_t page = 1000;
  if (!o.after.empty() && !address::parse(o.after))
    throw usage_error{"--after takes an address (@3fa9c012.16), not '" + o.after + "'"};
  json query = json::object();
  for (auto [key, value] : {std::pair{"package", &o.package}, {"state", &o.state}, {"system", &o.on}})
    if (!value->empty()) query[key] = *value;
  std::string after = o.after;
  std::size_t printed = 0;
  json all = json::array();
  std::vector<std::size_t> width;
  const std::vector<std::string> headers = {"ADDRESS", "NAME",  "TYPE",     "PACKAGE",    "SYSTEM",
                                            "PID",     "STATE", "RESTARTS", "LAST REASON"};
  std::optional<json> last_answer;
  for (;;) {
    const std::size_t want = o.limit == 0 ? page : std::min(page, o.limit - printed);
    json body = query;
    body["limit"] = want;
    if (!after.empty()) body["after"] = after;
    auto r = call(g, cmd::client::actors, body);
    if (!r) return fail(r.err());
    const json& rows = (*r)["actors"];
    if (g.json_out) {
      for (const auto& a : rows) all.push_back(a);
    } else {
      std::vector<std::vector<std::string>> cells;
      for (const auto& a : rows)
        cells.push_back({text_of(a["address"]), text_of(a["name"]), text_of(a["type"]),
                         text_of(a["package"]) + " " + text_of(a["version"]), text_of(a["system"]),
                         text_of(a["worker_pid"]), text_of(a["state"]), text_of(a["restarts"]),
                         text_of(a["last_reason"])});
      print_table(printed == 0 ? headers : std::vector<std::string>{}, cells, width);
    }
    printed += rows.size();
    last_answer = *r;
    if ((*r)["next"].is_null() || (o.limit != 0 && printed >= o.limit)) break;
    after = (*r)["next"].get<std::string>();
  }
  if (g.json_out) {
    // With --limit the page's place in the whole: where to go on from.
    if (o.limit != 0)
      return print_json(json{{"actors", all}, {"total", (*last_answer)["total"]}, {"next", (*last_answer)["next"]}}),
             cli_ok;
    return print_json(all), cli_ok;
  }
  if (o.limit != 0 && !(*last_answer)["next"].is_null())
    std::cout << "(" << printed << " of " << text_of((*last_answer)["total"]) << "; more with --after "
              << text_of((*last_answer)["next"]) << ")\n";
  return cli_ok;
}

int cmd_kill(const globals& g, const std::string& target) {
  auto r = call(g, cmd::client::kill, json{{"target", target}});
  if (!r) return fail(r.err());
  if (g.json_out) return print_json(*r), cli_ok;
  std::cout << "stopped " << text_of((*r)["address"]) << "\n";
  return cli_ok;
}

// ---------------------------------------------------------------- completion

/// `troupe __complete WHAT [COMMAND]` (hidden), for
/// packaging/troupe.bash-completion: the commands, the options of COMMAND,
/// or the names and addresses of the system's actors (asked with a short
/// timeout; nothing printed when no system answers). Always exits 0.
int cmd_complete(const command_set& cs, const std::string& what, const std::string& command) {
  const CLI::App& app = cs.app();
  if (what == "commands") {
    for (const CLI::App* c : app.get_subcommands([](const CLI::App* s) { return !s->get_group().empty(); }))
      std::cout << c->get_name() << "\n";
  } else if (what == "options") {
    std::vector<const CLI::App*> from{&app};
    for (const CLI::App* c : app.get_subcommands([&](const CLI::App* s) { return s->get_name() == command; }))
      from.push_back(c);
    for (const CLI::App* a : from)
      for (const CLI::Option* o : a->get_options([](const CLI::Option* o) { return !o->get_group().empty(); }))
        for (const auto& l : o->get_lnames())  // "--NAME", or "--NAME SYNTAX" when it takes a value
          std::cout << "--" << l << (o->get_expected_max() > 0 ? " " + o->get_type_name() : "") << "\n";
  } else if (what == "actors") {
    auto r = call(cs.g(), cmd::client::actors, json::object(), std::chrono::milliseconds(500));
    if (!r) return cli_ok;
    std::set<std::string> seen;
    for (const auto& a : (*r)["actors"])
      for (const char* field : {"name", "address"})
        if (a.contains(field) && a[field].is_string() && seen.insert(a[field].get<std::string>()).second)
          std::cout << a[field].get<std::string>() << "\n";
  }
  return cli_ok;
}

}  // namespace

void add_actor_commands(command_set& cs) {
  globals& g = cs.g();
  cs.add("status", "show the system's state, capabilities and counts", "", {"troupe status", "troupe --json status"},
         [&g] { return cmd_status(g); });

  auto logs = std::make_shared<logs_request>();
  CLI::App* c = cs.add(
      "logs", "print the system's log, rotated files first (--follow: then what comes, until Ctrl-C)",
      "Reads the log file of the system on this host (the one of --system, or --port);\n"
      "a name given to --actor is resolved through the system when it answers.",
      {"troupe logs --level warn", "troupe logs --actor morse --follow", "troupe logs --json --port 1901"}, [&g, logs] {
        logs_request r = *logs;
        r.system = system_of(g);
        r.home = troupe_home();
        r.json = g.json_out;
        return show_logs(r);
      });
  c->add_flag("--follow", logs->follow, "keep printing what comes, across rotations, until Ctrl-C");
  c->add_option("--actor", logs->actor, "only the lines of this actor")->type_name("ADDR|NAME");
  c->add_option("--level", logs->level, "only lines of this level and above")
      ->type_name("debug|info|warn|error")
      ->capture_default_str();
  c->add_option("--port", logs->port, "the system's port, when not the one of --system")->type_name("PORT");
  c->add_option("--file", logs->file, "read this log file instead of the system's")->type_name("PATH");

  auto ev = std::make_shared<events_request>();
  c = cs.add("events",
             "print the system's recent events (restarts, exits, moves, loads, members), one a line;\n"
             "--follow: and every new one until interrupted",
             "The system keeps its last 4096 events; a follower that falls behind is told how\n"
             "many it missed. Exit 3 when the system is not there or goes away while followed.",
             {"troupe events", "troupe events --follow", "troupe --json events --since 120"}, [&g, ev] {
               events_request r = *ev;
               r.system = system_of(g);
               r.json_out = g.json_out;
               return show_events(r);
             });
  c->add_flag("--follow", ev->follow, "keep printing new events until Ctrl-C");
  c->add_option("--since", ev->since, "only events numbered after SEQ")->type_name("SEQ");

  struct top_options {
    long interval = 1000;
    long actors = 10;
    bool once = false;
    unsigned batch = 0;
  };
  auto top = std::make_shared<top_options>();
  c = cs.add("top",
             "a refreshing view of the system: its convention's systems, its workers (CPU, memory,\n"
             "queues, messages in and out), its busiest actors and its restarts; q or Ctrl-C quits",
             "On a terminal the view refreshes every --interval until q, Ctrl-C, or the system\n"
             "stops answering (a line saying so on stderr, exit 3). Without a terminal, or with\n"
             "--once or --batch, it prints plain snapshots (each after one interval, so that its\n"
             "rates cover one); with --json one JSON object a snapshot. Needs the read role.",
             {"troupe top", "troupe top --interval 2000", "troupe top --once",
              "troupe --system 10.0.0.5:1900 top --batch 5 --interval 500"},
             [&g, top] {
               if (top->interval < 100 || top->interval > 3600000)
                 throw usage_error{"--interval takes milliseconds from 100 to 3600000"};
               if (top->actors < 0 || top->actors > 100) throw usage_error{"--actors takes a number from 0 to 100"};
               if (top->once && top->batch > 0) throw usage_error{"--once and --batch: give one"};
               top_request r;
               r.system = system_of(g);
               r.interval = std::chrono::milliseconds(top->interval);
               r.actors = static_cast<std::size_t>(top->actors);
               r.once = top->once;
               r.batch = top->batch;
               r.json_out = g.json_out;
               return run_top(r);
             });
  c->add_option("--interval", top->interval, "milliseconds between refreshes (100-3600000)")
      ->type_name("MS")
      ->capture_default_str();
  c->add_option("--actors", top->actors, "busiest actors shown (0-100)")->type_name("N")->capture_default_str();
  c->add_flag("--once", top->once, "print one plain snapshot and exit");
  c->add_option("--batch", top->batch, "print N plain snapshots, one every interval, and exit")->type_name("N");

  auto spawn = std::make_shared<spawn_options>();
  c = cs.add("spawn", "create an actor on a system that fits; prints its address on the last line", "",
             {"troupe spawn Morse --name morse", "troupe spawn Relay --package relay --wait"},
             [&g, spawn] { return cmd_spawn(g, *spawn); });
  c->add_option("TYPE", spawn->type, "actor type of a loaded package")->required();
  c->add_option("--package", spawn->package,
                "the package: a group (its active version), a package id or a\n"
                "unique prefix of at least 6 hex digits")
      ->type_name("GROUP|ID");
  c->add_option("--name", spawn->name, "a global name for the actor")->type_name("NAME");
  c->add_flag("--wait", spawn->wait, "with no fitting system, keep it pending instead of failing");

  cs.add("systems", "list the systems of the convention with state, load and capabilities", "",
         {"troupe systems", "troupe --system 127.0.0.1:1901 --json systems"}, [&g] { return cmd_systems(g); });

  auto chg = std::make_shared<chgcap_options>();
  c = cs.add("chgcap", "change a live system's capabilities; actors that no longer fit move elsewhere",
             "CHANGE: +NAME or + NAME sets NAME to true, -NAME or - NAME removes it,\n"
             "NAME=VALUE sets it (VALUE read as in start --caps).",
             {"troupe chgcap 1901 +gpu", "troupe chgcap 1901 - \"Caesar cipher\"", "troupe chgcap 1901 gpu_mem=16"},
             [&g, chg] { return cmd_chgcap(g, *chg); });
  c->add_option("PORT", chg->port, "the system: PORT (on 127.0.0.1) or HOST:PORT")->required();
  c->add_option("CHANGE", chg->change, "+NAME | -NAME | NAME=VALUE")->required()->expected(1, 2);

  auto mv = std::make_shared<move_options>();
  c = cs.add("move", "re-create an actor on another system or in a new worker, same address", "",
             {"troupe move morse --to 1901", "troupe move @3fa9c012.16 --new-worker"},
             [&g, mv] { return cmd_move(g, *mv); });
  add_target(c, mv->target);
  c->add_option("--to", mv->to, "the public port of the destination system")->type_name("PORT");
  c->add_flag("--new-worker", mv->new_worker, "in a new worker of its own (with --to: there)");

  auto tell = std::make_shared<message_options>();
  c = cs.add("tell", "send a one-way message to an address or name", "",
             {"troupe tell logger '{\"line\": \"hello\"}'", "troupe tell logger @event.json",
              "produce-events | troupe tell logger -"},
             [&g, tell] { return cmd_tell(g, *tell); });
  add_target(c, tell->target);
  add_payload(c, tell->payload);
  c->add_option("--type", tell->type, "the message type")->type_name("T")->capture_default_str();

  auto ask = std::make_shared<message_options>();
  c = cs.add("ask", "ask an actor; prints only the reply, as JSON", "",
             {"troupe ask morse '\"SOS\"'", "troupe ask morse @request.json --timeout 20000",
              "troupe ask morse - < request.json"},
             [&g, ask] { return cmd_ask(g, *ask); });
  add_target(c, ask->target);
  add_payload(c, ask->payload);
  c->add_option("--type", ask->type, "the message type")->type_name("T")->capture_default_str();
  c->add_option("--timeout", ask->timeout, "how long to wait for the reply, in milliseconds (> 0)")
      ->type_name("MS")
      ->capture_default_str();

  auto act = std::make_shared<actors_options>();
  c = cs.add("actors", "list actors with state and restarts, ordered by address",
             "Rows come in pages of 1000 from the system; --limit and --after page by hand\n"
             "(with --json and --limit: {\"actors\": [...], \"total\": N, \"next\": ADDR|null}).",
             {"troupe actors", "troupe actors --state failed", "troupe actors --package encoders --on 1901",
              "troupe --json actors --limit 100 --after @3fa9c012.1140"},
             [&g, act] { return cmd_actors(g, *act); });
  c->add_option("--limit", act->limit, "print at most N rows (0: all)")->type_name("N")->check(CLI::Range(0, 100000));
  c->add_option("--after", act->after, "rows after this address (the last of the previous page)")->type_name("ADDR");
  c->add_option("--package", act->package, "only this package: a group name or a package id prefix")
      ->type_name("GROUP|ID");
  c->add_option("--state", act->state, "only actors in this state (running, failed, pending, moving, ...)")
      ->type_name("STATE");
  c->add_option("--on", act->on, "only actors on this system: PORT or HOST:PORT")->type_name("SYSTEM");

  auto kill = std::make_shared<std::string>();
  c = cs.add("kill", "stop an actor (it gets an exit request)", "", {"troupe kill morse"},
             [&g, kill] { return cmd_kill(g, *kill); });
  add_target(c, *kill);

  // Hidden (no group): what the bash completion asks.
  auto what = std::make_shared<std::pair<std::string, std::string>>();
  c = cs.add("__complete", "words for the shell's completion", "", {},
             [&cs, what] { return cmd_complete(cs, what->first, what->second); });
  c->group("");
  c->add_option("WHAT", what->first, "commands, options or actors")->required();
  c->add_option("COMMAND", what->second, "the command whose options to list");
}

namespace {

const char* const description =
    "troupe: process-isolated actor supervisor.\n"
    "Runs systems of actors (each package in worker processes of its own) and\n"
    "talks to them. A client command goes to the system at --system, else\n"
    "$TROUPE_SYSTEM, else 127.0.0.1:1900; state lives in $TROUPE_HOME (default\n"
    "~/.troupe). `troupe COMMAND --help` shows a command's options, defaults and\n"
    "examples.";

std::string main_footer() {
  return "Environment:\n"
         "  TROUPE_SYSTEM   the system of client commands (HOST:PORT or PORT)\n"
         "  TROUPE_HOME     state directory (default ~/.troupe)\n"
         "  TROUPE_WORKER   the troupe-worker program start runs\n"
         "  TROUPE_PORT, TROUPE_CAPS, ...  a start option each (troupe start --help)\n\n" +
         exit_codes_text() + "\nSee docs/OPERATIONS.md (installed in /usr/share/doc/troupe/) for the whole reference.";
}

/// The subcommand called name, or nullptr.
CLI::App* find_command(CLI::App& app, const std::string& name) {
  auto found = app.get_subcommands([&](const CLI::App* s) { return s->get_name() == name; });
  return found.empty() ? nullptr : found.front();
}

/// Does option name (as written, before any '=') take a value?
bool takes_value(const CLI::App& app, const CLI::App& sub, const std::string& name) {
  const CLI::Option* o = sub.get_option_no_throw(name);
  if (o == nullptr) o = app.get_option_no_throw(name);
  return o != nullptr && o->get_expected_max() > 0;
}

/// What a CLI11 parse error means, in one line.
std::string reason_of(const CLI::ParseError& e, const CLI::App& app) {
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    for (const auto& r : app.remaining(true)) {
      if (r.size() > 1 && r[0] == '-') return "unknown option " + r.substr(0, r.find('='));
      return "unexpected argument '" + r + "'";
    }
  }
  std::string what = e.what();
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && what.ends_with(" is required"))
    return "missing " + what.substr(0, what.size() - std::string(" is required").size());
  return what;
}

int usage(const std::string& command, const std::string& reason) {
  const std::string who = command.empty() ? "troupe" : "troupe " + command;
  std::cerr << who << ": " << reason << "\n"
            << "(see `" << who << " --help` for " << (command.empty() ? "the commands" : "its arguments and options")
            << ")\n";
  return cli_usage;
}

}  // namespace

int run_cli(const std::vector<std::string>& args_in, const std::string& self) {
  globals g;
  g.self = self;
  CLI::App app(description, "troupe");
  app.formatter(std::make_shared<troupe_formatter>());
  // Global options are allowed after the command too; an option given twice
  // takes its last value.
  app.fallthrough();
  // One command per line: a positional that is also a command's name
  // (`troupe ask start 1`) stays a positional.
  app.require_subcommand(1);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_help_flag("-h,--help", "print this help and exit (COMMAND --help: the command's)");
  app.set_version_flag("-V,--version",
                       std::string("troupe ") + TROUPE_VERSION + " (commit " + git_commit + ", wire protocol 1)",
                       "print the version, the commit and the wire protocol, and exit");
  app.add_option("--system", g.system,
                 "the system to talk to: HOST:PORT, or PORT on 127.0.0.1\n"
                 "(default $TROUPE_SYSTEM, else 127.0.0.1:1900)")
      ->type_name("HOST:PORT");
  app.add_flag("--json", g.json_out, "machine-readable output (indented JSON)");
  app.footer(main_footer());
  command_set cs(app, g);
  add_system_commands(cs);
  add_package_commands(cs);
  add_actor_commands(cs);

  // The command: the first word that is no global option or its value.
  std::vector<std::string> args = args_in;
  std::size_t at = 0;
  for (; at < args.size(); ++at) {
    if (args[at] == "--system")
      ++at;
    else if (args[at].empty() || args[at][0] != '-')
      break;
  }
  if (at >= args.size()) {
    const bool asked = std::any_of(args.begin(), args.end(), [](const std::string& a) {
      return a == "-h" || a == "--help" || a == "-V" || a == "--version";
    });
    if (!asked) {
      std::cout << app.help("", CLI::AppFormatMode::Normal);
      return cli_usage;
    }
  } else if (args[at] == "help") {  // `troupe help [COMMAND]`
    const CLI::App* c = at + 1 < args.size() ? find_command(app, args[at + 1]) : nullptr;
    std::cout << (c != nullptr ? c->help("troupe") : app.help());
    return cli_ok;
  }
  std::string name;
  if (at < args.size()) {
    name = args[at];
    CLI::App* sub = find_command(app, name);
    if (sub == nullptr) return usage("", "unknown command '" + name + "'");
    // Arguments that do not start with "--" are positional, so '-1', a key
    // or a capability '-NAME' is not taken for an option: such positionals
    // go after a "--", the options (with their values) before it.
    std::vector<std::string> options, positionals;
    bool dashed = false;
    bool marked = false;
    for (std::size_t i = at + 1; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (marked) {
        positionals.push_back(a);
      } else if (a == "--") {
        marked = true;
      } else if (a.rfind("--", 0) == 0 || a == "-h") {
        options.push_back(a);
        if (a.find('=') == std::string::npos && takes_value(app, *sub, a) && i + 1 < args.size())
          options.push_back(args[++i]);
      } else {
        dashed = dashed || (a.size() > 1 && a[0] == '-');
        positionals.push_back(a);
      }
    }
    if (dashed || marked) {
      args.resize(at + 1);
      args.insert(args.end(), options.begin(), options.end());
      args.push_back("--");
      args.insert(args.end(), positionals.begin(), positionals.end());
    }
  }

  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return cli_ok;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help();
    return cli_ok;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return cli_ok;
  } catch (const CLI::ParseError& e) {
    return usage(name, reason_of(e, app));
  }
  try {
    return cs.runner(name)();
  } catch (const usage_error& e) {
    return usage(name, e.message);
  } catch (const cli_error& e) {
    return fail(e.code, e.message);
  }
}

}  // namespace troupe::tools
