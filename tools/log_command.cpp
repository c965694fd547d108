#include "tools/log_command.hpp"

#include "base/exit_codes.hpp"
#include "ipc/commands.hpp"
#include "ipc/log.hpp"

#include <troupe/address.hpp>
#include <troupe/client.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <ctime>
#include <iostream>

namespace troupe::tools {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---------------------------------------------------------------- start options

namespace {

std::optional<std::uint64_t> parse_bytes(const std::string& text) {
  std::uint64_t v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  const std::string_view unit(r.ptr, static_cast<std::size_t>(text.data() + text.size() - r.ptr));
  const int shift = unit.empty() ? 0 : unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (r.ec != std::errc{} || r.ptr == text.data() || shift < 0 || v == 0 || v > (std::uint64_t{1} << (63 - shift)))
    return std::nullopt;
  return v << shift;
}

}  // namespace

std::optional<std::string> set_log_option(supervisor::system_options& opts, const std::string& option,
                                          const std::string& value) {
  if (option == "--log-level") {
    const auto l = ipc::parse_log_level(value);
    if (!l) return "--log-level takes debug, info, warn or error, not '" + value + "'";
    opts.log_level = *l;
  } else if (option == "--log-format") {
    if (value != "text" && value != "json") return "--log-format takes text or json, not '" + value + "'";
    opts.log_format = value == "json" ? ipc::log_format::json_lines : ipc::log_format::text;
  } else if (option == "--log-target") {
    if (value == "file")
      opts.log_target = ipc::log_target::file;
    else if (value == "stderr")
      opts.log_target = ipc::log_target::stderr_stream;
    else if (value == "journal")
      opts.log_target = ipc::log_target::journal;
    else
      return "--log-target takes file, stderr or journal, not '" + value + "'";
  } else if (option == "--log-file") {
    if (value.empty()) return "--log-file takes a path";
    std::error_code ec;
    opts.log_file = fs::absolute(value, ec);
    if (ec) return "--log-file: " + ec.message();
  } else if (option == "--log-max-size") {
    const auto n = parse_bytes(value);
    if (!n || *n < 1024) return "--log-max-size takes a size of 1K or more (bytes, or with K, M or G)";
    opts.log_max_size = *n;
  } else if (option == "--log-files") {
    unsigned v = 0;
    auto r = std::from_chars(value.data(), value.data() + value.size(), v);
    if (r.ec != std::errc{} || r.ptr != value.data() + value.size() || v < 1 || v > 1000)
      return "--log-files takes a number of rotated files from 1 to 1000";
    opts.log_files = v;
  } else {
    return "unknown log option " + option;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- reading

log_entry parse_log_entry(std::string_view line) {
  log_entry e;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!line.empty() && line.front() == '{') {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("ts") && j["ts"].is_string()) {
      e.ts = j["ts"].get<std::string>();
      e.level = ipc::parse_log_level(j.value("level", std::string())).value_or(TROUPE_LOG_INFO);
      e.proc = j.value("proc", std::string());
      e.actor = j.value("actor", std::string());
      e.msg = j.value("msg", std::string());
    }
    return e;
  }
  std::string_view rest = line;
  if (rest.size() > 3 && rest[0] == '<' && rest[2] == '>' && rest[1] >= '0' && rest[1] <= '7') {
    // A journal line that ended up in a file: its priority is its level.
    const int prio = rest[1] - '0';
    e.level = prio <= 3   ? TROUPE_LOG_ERROR
              : prio == 4 ? TROUPE_LOG_WARN
              : prio <= 6 ? TROUPE_LOG_INFO
                          : TROUPE_LOG_DEBUG;
    e.ts = "-";
    rest.remove_prefix(3);
  } else {
    // 2026-11-23T09:14:02.123Z INFO  [w3 @3fa9c012.17] text
    const auto sp = rest.find(' ');
    if (sp == std::string_view::npos || sp < 20 || rest[4] != '-' || rest[10] != 'T' || rest[sp - 1] != 'Z') return {};
    const std::string_view ts = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
    const auto sp2 = rest.find(' ');
    if (sp2 == std::string_view::npos) return {};
    std::string word(rest.substr(0, sp2));
    for (auto& ch : word) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto l = ipc::parse_log_level(word);
    if (!l) return {};
    e.level = *l;
    e.ts = std::string(ts);
    rest.remove_prefix(sp2);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
  if (rest.empty() || rest.front() != '[') return {};
  const auto close = rest.find("] ");
  const auto end = close == std::string_view::npos ? rest.find(']') : close;
  if (end == std::string_view::npos) return {};
  const std::string_view who = rest.substr(1, end - 1);
  const auto space = who.find(' ');
  e.proc = std::string(who.substr(0, space));
  if (space != std::string_view::npos) e.actor = std::string(who.substr(space + 1));
  e.msg = std::string(rest.substr(std::min(rest.size(), end + 2)));
  return e;
}

bool log_filter::keep(const log_entry& e) const {
  if (e.level < min_level) return false;
  if (!actor_address.empty()) return e.actor == actor_address;
  if (!text.empty()) return e.msg.find(text) != std::string::npos || e.actor == text || e.proc == text;
  return true;
}

std::vector<fs::path> log_files_in_order(const fs::path& file) {
  std::vector<fs::path> out;
  std::error_code ec;
  unsigned n = 1;
  while (n <= 1000 && fs::exists(fs::path(file.string() + "." + std::to_string(n)), ec)) ++n;
  for (unsigned i = n - 1; i >= 1; --i) out.emplace_back(file.string() + "." + std::to_string(i));
  if (fs::exists(file, ec)) out.push_back(file);
  return out;
}

log_printer::log_printer(fs::path file, log_filter filter, bool as_json, std::ostream& out)
    : file_(std::move(file)), filter_(std::move(filter)), json_(as_json), out_(out) {}

log_printer::~log_printer() {
  if (fd_ >= 0) ::close(fd_);
}

void log_printer::print_text(std::string_view bytes, bool final) {
  auto line_out = [this](std::string_view line) {
    const log_entry e = parse_log_entry(line);
    if (!e.ts.empty()) keeping_ = filter_.keep(e);
    if (!keeping_ || line.empty()) return;
    if (!json_) {
      out_ << line << '\n';
      return;
    }
    json j = e.ts.empty() ? json{{"msg", std::string(line)}}
                          : json{{"ts", e.ts}, {"level", ipc::log_level_word(e.level)}, {"proc", e.proc}};
    if (!e.actor.empty()) j["actor"] = e.actor;
    if (!e.ts.empty()) j["msg"] = e.msg;
    out_ << j.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  };
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      break;
    }
    if (partial_.empty()) {
      line_out(bytes.substr(0, nl));
    } else {
      partial_.append(bytes.substr(0, nl));
      line_out(partial_);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
  if (final && !partial_.empty()) {
    line_out(partial_);
    partial_.clear();
  }
  out_.flush();
}

bool log_printer::open_current() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  offset_ = 0;
  return fd_ >= 0;
}

void log_printer::drain_current() {
  if (fd_ < 0) return;
  char buf[64 * 1024];
  for (int rounds = 0; rounds < 1 << 20; ++rounds) {  // bounded: a file that grows faster is read at the next poll
    const ssize_t n = ::pread(fd_, buf, sizeof buf, static_cast<off_t>(offset_));
    if (n <= 0) break;
    offset_ += static_cast<std::uint64_t>(n);
    print_text(std::string_view(buf, static_cast<std::size_t>(n)), false);
  }
}

void log_printer::print_all() {
  const auto files = log_files_in_order(file_);
  for (const auto& f : files) {
    if (f == file_) break;  // the file itself is read through fd_ (followed)
    const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    char buf[64 * 1024];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) print_text(std::string_view(buf, std::size_t(n)), false);
    ::close(fd);
    print_text({}, true);
  }
  if (open_current()) drain_current();
}

void log_printer::poll() {
  struct stat now {};
  struct stat open_st {};
  const bool exists = ::stat(file_.c_str(), &now) == 0;
  if (fd_ < 0) {
    if (exists && open_current()) drain_current();
    return;
  }
  (void)::fstat(fd_, &open_st);
  if (exists && (now.st_ino != open_st.st_ino || now.st_dev != open_st.st_dev)) {
    // Rotated or renamed (logrotate): the rest of the old file, then the new one.
    drain_current();
    print_text({}, true);
    if (open_current()) drain_current();
    return;
  }
  if (static_cast<std::uint64_t>(open_st.st_size) < offset_) {  // truncated (copytruncate)
    print_text({}, true);
    offset_ = 0;
  }
  drain_current();
}

// ---------------------------------------------------------------- troupe logs

namespace {

volatile std::sig_atomic_t stop_following = 0;

extern "C" void on_logs_stop_signal(int) { stop_following = 1; }

}  // namespace

int show_logs(const logs_request& req) {
  const auto min_level = ipc::parse_log_level(req.level);
  if (!min_level) {
    std::cerr << "troupe logs: --level takes debug, info, warn or error, not '" << req.level << "'\n";
    return cli_usage;
  }
  std::string where = req.system;
  if (!req.port.empty()) {
    unsigned v = 0;
    auto r = std::from_chars(req.port.data(), req.port.data() + req.port.size(), v);
    if (r.ec != std::errc{} || r.ptr != req.port.data() + req.port.size() || v == 0 || v > 65535) {
      std::cerr << "troupe logs: '" << req.port << "' is not a port (1-65535)\n";
      return cli_usage;
    }
    where = "127.0.0.1:" + std::to_string(v);
  }
  const auto colon = where.rfind(':');
  const std::string port = colon == std::string::npos ? where : where.substr(colon + 1);

  // The system, when it answers, says where it logs and knows its actors' names.
  std::optional<troupe::client> sys;
  json status;
  if (auto c = client::connect(where, connect_options{req.home, {}, false}); c) {
    if (auto s = c->call(ipc::cmd::client::status, json::object(), std::chrono::milliseconds(500)); s) {
      status = *s;
      sys.emplace(std::move(*c));
    }
  }
  fs::path file = req.file;
  if (file.empty() && status.contains("log") && status["log"].is_object()) {
    const json& log = status["log"];
    if (log.value("target", std::string()) == "journal") {
      std::cerr << "troupe: the system on " << where << " logs to the journal: journalctl -u troupe@" << port
                << " (or _PID=" << status.value("pid", 0) << ")\n";
      return cli_failed;
    }
    if (log.value("target", std::string()) == "file") file = log.value("file", std::string());
  }
  if (file.empty()) file = req.home / "systems" / port / "system.log";

  log_filter filter;
  filter.min_level = *min_level;
  if (!req.actor.empty()) {
    if (address::parse(req.actor)) {
      filter.actor_address = req.actor;
    } else if (sys) {
      if (auto r = sys->call(ipc::cmd::client::actors, json::object(), std::chrono::seconds(3)); r)
        for (const auto& a : (*r)["actors"])
          if (a.value("name", std::string()) == req.actor && a.contains("address") && a["address"].is_string())
            filter.actor_address = a["address"].get<std::string>();
    }
    // A name the system does not know (or no system): lines that mention it.
    if (filter.actor_address.empty()) filter.text = req.actor;
  }

  std::error_code ec;
  if (!fs::exists(file, ec) && log_files_in_order(file).empty() && !req.follow) {
    std::cerr << "troupe: no log at " << file.string() << "\n";
    return cli_not_found;
  }
  log_printer printer(file, filter, req.json, std::cout);
  printer.print_all();
  if (!req.follow) return cli_ok;

  // Until Ctrl-C or SIGTERM: a poll every 200 ms, each reading what is new.
  struct sigaction sa {};
  sa.sa_handler = on_logs_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  while (!stop_following) {
    timespec pause{0, 200 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
    printer.poll();
    if (!std::cout) break;  // the reader went away (a closed pipe)
  }
  return cli_ok;
}

}  // namespace troupe::tools
