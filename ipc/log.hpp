// ipc/log.hpp — the log of a process of troupe (the daemon or a worker), on
// spdlog (docs/OPERATIONS.md, "Logs").
//
// A line is a record: time, level, the process's tag ("system:1900", "w3"),
// the actor it concerns (if any) and a text. log_line() drops it at once
// below the configured level; callers that build an expensive text (a
// payload, a dump) check log_enabled() first, so that debug lines cost one
// comparison when debug is off.
//
// Where records go is set once per process by configure_log():
//  - file: the daemon's own log file (0600), rotated by size and reopened on
//    SIGHUP; stdout and stderr follow it when they pointed at it at start-up.
//  - stderr: text or JSON lines on standard error.
//  - journal: standard error under systemd, each line prefixed with its
//    syslog priority ("<4>", sd-daemon(3)); journald adds the time.
//  - relay: a worker's records, encoded for the daemon (encode_relay_line)
//    on its standard error, a socket the daemon reads (ipc/log_relay.hpp).
// Unconfigured, records are text lines on stderr at level info.
//
// Thread-safe: records are written whole, one write(2) each, under a mutex.
#pragma once

#include <troupe/abi.h>
#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::ipc {

enum class log_format { text, json_lines };
enum class log_target { file, stderr_stream, journal, relay };

struct log_config {
  int level = TROUPE_LOG_INFO;  ///< TROUPE_LOG_DEBUG .. TROUPE_LOG_ERROR
  log_format format = log_format::text;
  log_target target = log_target::stderr_stream;
  std::filesystem::path file;  ///< target file: the log (created 0600)
  std::uint64_t max_size = 0;  ///< target file: rotate past this many bytes (0: never)
  unsigned max_files = 5;      ///< target file: rotated files kept (file.1 .. file.N)
};

/// One line of a log.
struct log_record {
  std::chrono::system_clock::time_point time;
  int level = TROUPE_LOG_INFO;
  std::string_view proc;   ///< "system:1900", "w3"
  std::string_view actor;  ///< "@3fa9c012.17", or empty
  std::string_view text;
};

namespace detail {
extern std::atomic<int> log_level;
}

/// Whether a record of this level would be written.
[[nodiscard]] inline bool log_enabled(int level) { return level >= detail::log_level.load(std::memory_order_relaxed); }

/// Logs text at level about actor (none: an invalid address) under this
/// process's tag; nothing when the level is off.
void log_line(int level, address actor, std::string_view text);

/// Logs a record of another process (a worker's, relayed by the daemon) with
/// its own tag and time; nothing when its level is off here.
void log_record_of(const log_record& r);

/// Sets the tag printed in every line ("w3", "system:1900").
void set_log_tag(std::string_view tag);

/// Sends this process's records where config says, from now on; errors name
/// the file that could not be opened. Call before other threads log.
status configure_log(const log_config& config);

/// Opens the log file again at its path (after logrotate renamed it: SIGHUP).
/// No-op unless the target is a file.
status reopen_log();

/// The level configured (TROUPE_LOG_*).
[[nodiscard]] int log_level();

// ---------------------------------------------------------------- text forms

/// "debug", "info", "warn" (or "warning"), "error" -> TROUPE_LOG_*.
[[nodiscard]] std::optional<int> parse_log_level(std::string_view word);
/// TROUPE_LOG_* -> "debug", "info", "warn", "error".
[[nodiscard]] const char* log_level_word(int level);

/// 2026-11-23T09:14:02.123Z
[[nodiscard]] std::string format_log_time(std::chrono::system_clock::time_point t);

/// A record as one line, '\n' included:
///  text:    2026-11-23T09:14:02.123Z INFO  [w3 @3fa9c012.17] text
///  json:    {"ts":"2026-11-23T09:14:02.123Z","level":"info","proc":"w3","actor":"@3fa9c012.17","msg":"text"}
///  journal: <6>[w3 @3fa9c012.17] text
/// Control characters of the text are escaped (\xNN) in text and journal
/// form, so that no text forges a line of its own.
[[nodiscard]] std::string format_log_record(const log_record& r, log_format format, bool journal = false);

/// Whether this process's stderr is the journal stream systemd gave it
/// ($JOURNAL_STREAM names stderr's device and inode).
[[nodiscard]] bool stderr_is_journal();

// ---------------------------------------------------------------- worker to daemon

/// What starts an encoded record on a worker's stderr; any other line there
/// is the package's own output.
inline constexpr char relay_mark = '\x1e';

/// A record as a worker writes it for the daemon: mark, level digit, time in
/// microseconds since the epoch, actor or "-", the text with '\\' and '\n'
/// escaped; one line.
[[nodiscard]] std::string encode_relay_line(const log_record& r);

struct relay_line {
  std::chrono::system_clock::time_point time;
  int level = TROUPE_LOG_INFO;
  std::string actor;
  std::string text;
};
/// The record of a line made by encode_relay_line (without its '\n');
/// nullopt for any other line.
[[nodiscard]] std::optional<relay_line> decode_relay_line(std::string_view line);

}  // namespace troupe::ipc
