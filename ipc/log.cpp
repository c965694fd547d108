#include "ipc/log.hpp"

#include "base/hex.hpp"
#include "ipc/log_file.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/base_sink.h>

#include <nlohmann/json.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <vector>

namespace troupe::ipc {

namespace detail {
std::atomic<int> log_level{TROUPE_LOG_INFO};
}

namespace {

spdlog::level::level_enum to_spdlog(int level) {
  switch (level) {
    case TROUPE_LOG_DEBUG:
      return spdlog::level::debug;
    case TROUPE_LOG_INFO:
      return spdlog::level::info;
    case TROUPE_LOG_WARN:
      return spdlog::level::warn;
    default:
      return spdlog::level::err;
  }
}

int from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return TROUPE_LOG_DEBUG;
    case spdlog::level::info:
      return TROUPE_LOG_INFO;
    case spdlog::level::warn:
      return TROUPE_LOG_WARN;
    default:
      return TROUPE_LOG_ERROR;
  }
}

// The record travels through spdlog with "PROC ACTOR" (or "PROC") as its
// logger name: spdlog's message has no field of its own for the actor, and a
// tag never holds a space.
std::string who_of(std::string_view proc, std::string_view actor) {
  std::string who(proc);
  if (!actor.empty()) {
    who += ' ';
    who += actor;
  }
  return who;
}

log_record record_of(const spdlog::details::log_msg& msg) {
  const std::string_view who(msg.logger_name.data(), msg.logger_name.size());
  const auto space = who.find(' ');
  log_record r;
  r.time = msg.time;
  r.level = from_spdlog(msg.level);
  r.proc = who.substr(0, space);
  r.actor = space == std::string_view::npos ? std::string_view() : who.substr(space + 1);
  r.text = std::string_view(msg.payload.data(), msg.payload.size());
  return r;
}

/// text, JSON or journal lines (format_log_record) as an spdlog formatter.
class record_formatter final : public spdlog::formatter {
 public:
  record_formatter(log_format format, bool journal) : format_(format), journal_(journal) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string line = format_log_record(record_of(msg), format_, journal_);
    dest.append(line.data(), line.data() + line.size());
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<record_formatter>(format_, journal_);
  }

 private:
  log_format format_;
  bool journal_;
};

bool write_all(int fd, std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

/// Lines on a descriptor (stderr), one write each.
class fd_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit fd_sink(int fd) : fd_(fd) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    (void)write_all(fd_, std::string_view(buf.data(), buf.size()));
  }
  void flush_() override {}

 private:
  int fd_;
};

/// The daemon's log file (ipc/log_file.hpp): rotation and reopening under
/// the sink's lock.
class file_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  status open(const log_config& c, bool stdio_follows) {
    std::lock_guard lock(mutex_);
    return file_.open(c.file, c.max_size, c.max_files, stdio_follows);
  }
  status reopen() {
    std::lock_guard lock(mutex_);
    return file_.reopen();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    (void)file_.write(std::string_view(buf.data(), buf.size()));
  }
  void flush_() override {}

 private:
  log_file file_;
};

/// A worker's records for the daemon, on its stderr (a socket the daemon
/// reads, supervisor/worker_pool.cpp). Never blocks for long: a daemon that
/// stopped reading (SIGSTOPped, or dead and its socket not yet closed)
/// costs a record at most 100 ms, then records are dropped and counted
/// until it reads again; a dead one costs nothing (EPIPE, no SIGPIPE).
class relay_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  relay_sink() {
    int type = 0;
    socklen_t len = sizeof type;
    socket_ = ::getsockopt(STDERR_FILENO, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line;
    if (dropped_ > 0) {
      const std::string note = std::to_string(dropped_) + " log line(s) dropped: the daemon did not read them";
      line = encode_relay_line(log_record{msg.time, TROUPE_LOG_WARN, {}, {}, note});
    }
    line += encode_relay_line(record_of(msg));
    if (send(line))
      dropped_ = 0;
    else
      ++dropped_;
  }
  void flush_() override {}

 private:
  bool send(std::string_view bytes) {
    if (!socket_) return write_all(STDERR_FILENO, bytes);
    std::size_t done = 0;
    int waited_ms = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(STDERR_FILENO, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waited_ms < 100) {
        pollfd p{STDERR_FILENO, POLLOUT, 0};
        (void)::poll(&p, 1, 10);
        waited_ms += 10;
        continue;
      }
      return false;
    }
    return true;
  }

  bool socket_ = false;
  std::uint64_t dropped_ = 0;
};

struct log_state {
  std::mutex mutex;  // guards sinks and tag against configure_log / set_log_tag
  std::vector<std::shared_ptr<spdlog::sinks::sink>> sinks;
  std::shared_ptr<file_sink> file;
  std::string tag = "worker";
};

// Never destroyed: threads may log while the process exits.
log_state& state() {
  static auto* s = [] {
    auto* st = new log_state;
    auto sink = std::make_shared<fd_sink>(STDERR_FILENO);
    sink->set_formatter(std::make_unique<record_formatter>(log_format::text, false));
    st->sinks.push_back(std::move(sink));
    return st;
  }();
  return *s;
}

void emit(const log_record& r) {
  auto& s = state();
  const std::string who = who_of(r.proc, r.actor);
  const spdlog::details::log_msg msg(r.time, spdlog::source_loc{}, who, to_spdlog(r.level),
                                     spdlog::string_view_t(r.text.data(), r.text.size()));
  std::vector<std::shared_ptr<spdlog::sinks::sink>> sinks;
  {
    std::lock_guard lock(s.mutex);
    sinks = s.sinks;
  }
  for (const auto& sink : sinks) sink->log(msg);
}

}  // namespace

void set_log_tag(std::string_view t) {
  auto& s = state();
  std::lock_guard lock(s.mutex);
  s.tag = std::string(t);
}

int log_level() { return detail::log_level.load(std::memory_order_relaxed); }

void log_line(int level, address actor, std::string_view text) {
  if (!log_enabled(level)) return;
  std::string tag;
  {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    tag = s.tag;
  }
  const std::string who = actor.valid() ? actor.to_string() : std::string();
  emit(log_record{std::chrono::system_clock::now(), level, tag, who, text});
}

void log_record_of(const log_record& r) {
  if (!log_enabled(r.level)) return;
  emit(r);
}

status configure_log(const log_config& c) {
  auto& s = state();
  std::shared_ptr<spdlog::sinks::sink> sink;
  std::shared_ptr<file_sink> file;
  switch (c.target) {
    case log_target::file: {
      file = std::make_shared<file_sink>();
      // stdout and stderr follow the file when they are the file now (the
      // CLI's detached start points them there): whatever is printed
      // outside the logger stays in the current file across rotations.
      struct stat err {};
      struct stat log {};
      const bool follows = ::fstat(STDERR_FILENO, &err) == 0 && ::stat(c.file.c_str(), &log) == 0 &&
                           err.st_dev == log.st_dev && err.st_ino == log.st_ino;
      if (auto st = file->open(c, follows); !st) return st;
      sink = file;
      break;
    }
    case log_target::stderr_stream:
    case log_target::journal:
      sink = std::make_shared<fd_sink>(STDERR_FILENO);
      break;
    case log_target::relay:
      sink = std::make_shared<relay_sink>();
      break;
  }
  sink->set_formatter(std::make_unique<record_formatter>(c.format, c.target == log_target::journal));
  std::lock_guard lock(s.mutex);
  s.sinks = {sink};
  s.file = file;
  detail::log_level.store(c.level, std::memory_order_relaxed);
  return ok_v;
}

status reopen_log() {
  std::shared_ptr<file_sink> file;
  {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    file = s.file;
  }
  return file ? file->reopen() : ok_v;
}

// ---------------------------------------------------------------- text forms

std::optional<int> parse_log_level(std::string_view w) {
  if (w == "debug") return TROUPE_LOG_DEBUG;
  if (w == "info") return TROUPE_LOG_INFO;
  if (w == "warn" || w == "warning") return TROUPE_LOG_WARN;
  if (w == "error") return TROUPE_LOG_ERROR;
  return std::nullopt;
}

const char* log_level_word(int level) {
  switch (level) {
    case TROUPE_LOG_DEBUG:
      return "debug";
    case TROUPE_LOG_INFO:
      return "info";
    case TROUPE_LOG_WARN:
      return "warn";
    default:
      return "error";
  }
}

std::string format_log_time(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const std::time_t secs = system_clock::to_time_t(t);
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[40];
  const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(ms < 0 ? ms + 1000 : ms));
  return stamp;
}

std::string format_log_record(const log_record& r, log_format format, bool journal) {
  if (format == log_format::json_lines) {
    // Ordered: ts, level, proc, actor, msg, as a reader scans a line.
    nlohmann::ordered_json j{{"ts", format_log_time(r.time)}, {"level", log_level_word(r.level)}, {"proc", r.proc}};
    if (!r.actor.empty()) j["actor"] = r.actor;
    j["msg"] = r.text;
    // Invalid UTF-8 (a package's raw output) is replaced, not thrown on.
    std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    line += '\n';
    if (journal) {
      static constexpr char prio[] = {'7', '6', '4', '3'};
      line.insert(0, std::string("<") + prio[std::min(std::max(r.level, 0), 3)] + ">");
    }
    return line;
  }
  static constexpr const char* words[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
  static constexpr char prio[] = {'7', '6', '4', '3'};
  const int l = std::min(std::max(r.level, 0), 3);
  std::string line;
  line.reserve(r.text.size() + 64);
  if (journal) {
    // sd-daemon(3): the priority prefix; journald stamps the time itself.
    line += '<';
    line += prio[l];
    line += '>';
  } else {
    line += format_log_time(r.time);
    line += ' ';
    line += words[l];
    line += ' ';
  }
  line += '[';
  line += r.proc;
  if (!r.actor.empty()) {
    line += ' ';
    line += r.actor;
  }
  line += "] ";
  line += base::escape_controls(r.text);
  line += '\n';
  return line;
}

bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr || *env == '\0') return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  const std::string v(env);
  const auto colon = v.find(':');
  if (colon == std::string::npos) return false;
  unsigned long long dev = 0, ino = 0;
  const auto r1 = std::from_chars(v.data(), v.data() + colon, dev);
  const auto r2 = std::from_chars(v.data() + colon + 1, v.data() + v.size(), ino);
  if (r1.ec != std::errc{} || r2.ec != std::errc{}) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

// ---------------------------------------------------------------- worker to daemon

std::string encode_relay_line(const log_record& r) {
  using namespace std::chrono;
  std::string line;
  line.reserve(r.text.size() + 48);
  line += relay_mark;
  line += static_cast<char>('0' + std::min(std::max(r.level, 0), 3));
  line += ' ';
  line += std::to_string(duration_cast<microseconds>(r.time.time_since_epoch()).count());
  line += ' ';
  if (r.actor.empty())
    line += '-';
  else
    line += r.actor;
  line += ' ';
  for (const char c : r.text) {
    if (c == '\\')
      line += "\\\\";
    else if (c == '\n')
      line += "\\n";
    else
      line += c;
  }
  line += '\n';
  return line;
}

std::optional<relay_line> decode_relay_line(std::string_view line) {
  if (line.size() < 8 || line[0] != relay_mark || line[1] < '0' || line[1] > '3' || line[2] != ' ') return std::nullopt;
  relay_line out;
  out.level = line[1] - '0';
  std::string_view rest = line.substr(3);
  const auto sp1 = rest.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  long long micros = 0;
  const auto r = std::from_chars(rest.data(), rest.data() + sp1, micros);
  if (r.ec != std::errc{} || r.ptr != rest.data() + sp1) return std::nullopt;
  out.time = std::chrono::system_clock::time_point(std::chrono::microseconds(micros));
  rest = rest.substr(sp1 + 1);
  const auto sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return std::nullopt;
  const std::string_view actor = rest.substr(0, sp2);
  if (actor != "-") {
    // Only an address: a tag of the daemon's own, with no room for spaces.
    if (!address::parse(actor)) return std::nullopt;
    out.actor = std::string(actor);
  }
  rest = rest.substr(sp2 + 1);
  out.text.reserve(rest.size());
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '\\' && i + 1 < rest.size()) {
      out.text += rest[i + 1] == 'n' ? '\n' : rest[i + 1];
      ++i;
    } else {
      out.text += rest[i];
    }
  }
  return out;
}

}  // namespace troupe::ipc
