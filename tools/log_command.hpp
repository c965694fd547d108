// tools/log_command.hpp — the CLI's side of the log: the `troupe start`
// options that set it up, and `troupe logs`, which reads a system's log
// file (its rotated files first), filters it by level and actor, and
// follows it across rotation. Independent of the argument parser: cli.cpp
// fills plain structs. Single-threaded.
#pragma once

#include "supervisor/system.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::tools {

/// The log options of `troupe start` (each takes a value), passed on to the
/// daemon as they were given.
inline const std::vector<std::string> log_start_options = {"--log-level", "--log-format",   "--log-target",
                                                           "--log-file",  "--log-max-size", "--log-files"};

/// Sets one of log_start_options on opts; the usage error's text when the
/// value is wrong.
[[nodiscard]] std::optional<std::string> set_log_option(supervisor::system_options& opts, const std::string& option,
                                                        const std::string& value);

/// `troupe logs`.
struct logs_request {
  std::string system;           ///< HOST:PORT (--system, TROUPE_SYSTEM): asked for its log file and actor names
  std::filesystem::path home;   ///< TROUPE_HOME
  std::string port;             ///< --port: the system's port, when not the one of system
  std::filesystem::path file;   ///< --file: this log file instead of the system's
  bool follow = false;          ///< keep reading until SIGINT or SIGTERM
  std::string actor;            ///< an address or a name: only its lines
  std::string level = "debug";  ///< lines of this level and above
  bool json = false;            ///< one JSON object per line
};

/// Prints the log; returns an exit code (base/exit_codes.hpp).
int show_logs(const logs_request& request);

// ---------------------------------------------------------------- pieces (tested)

/// A line of a log file, text or JSON (or journal-prefixed text).
struct log_entry {
  std::string ts;  ///< empty for a line that is no record (a continuation)
  int level = -1;
  std::string proc;
  std::string actor;
  std::string msg;
};
[[nodiscard]] log_entry parse_log_entry(std::string_view line);

/// Which lines to print. A line that is no record goes with the record
/// before it.
struct log_filter {
  int min_level = 0;
  std::string actor_address;  ///< "@…": records of this actor
  std::string text;           ///< else: lines holding this text
  [[nodiscard]] bool keep(const log_entry& e) const;
};

/// The files of a log, oldest first: file.N … file.1, file.
[[nodiscard]] std::vector<std::filesystem::path> log_files_in_order(const std::filesystem::path& file);

/// Prints a log's lines that pass the filter, and with poll() what was
/// written since, following the file across rotation (a new file at its
/// path) and truncation.
class log_printer {
 public:
  log_printer(std::filesystem::path file, log_filter filter, bool as_json, std::ostream& out);
  ~log_printer();
  log_printer(const log_printer&) = delete;
  log_printer& operator=(const log_printer&) = delete;

  /// Prints the rotated files and the file; the file stays open.
  void print_all();
  /// Prints what was appended since; after a rotation, the rest of the old
  /// file, then the new file from its start.
  void poll();

 private:
  void print_text(std::string_view bytes, bool final);
  void drain_current();
  bool open_current();

  std::filesystem::path file_;
  log_filter filter_;
  bool json_;
  std::ostream& out_;
  int fd_ = -1;
  std::uint64_t offset_ = 0;
  std::string partial_;
  bool keeping_ = true;  // the decision for the last record (continuation lines follow it)
};

}  // namespace troupe::tools
