// tools/top_command.hpp — `troupe top`: a refreshing view of a system (its
// convention's systems, its workers with CPU, memory, queues and message
// rates, its busiest actors, its recent restarts) from the client commands
// `top` and `systems` (docs/PROTOCOL.md §6.6), behind a plain struct so that
// any argument parser can call it. The rates and the text are pure functions
// of the snapshots and of the times they were taken (unit-tested with
// invented times); only run_top touches the terminal.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe::tools {

struct top_request {
  std::string system = "127.0.0.1:1900";         ///< HOST:PORT or a bare port
  std::chrono::milliseconds interval{1000};      ///< between two refreshes
  std::size_t actors = 10;                       ///< busiest actors shown
  bool once = false;                             ///< one plain snapshot, then exit
  unsigned batch = 0;                            ///< this many plain snapshots (0: a terminal view)
  bool json_out = false;                         ///< batch: one JSON object a snapshot
  std::chrono::milliseconds call_timeout{3000};  ///< no answer within it: the system is lost
};

/// Runs the view until `q`, Ctrl-C (SIGINT), SIGTERM or SIGHUP (exit 0), or
/// until the system stops answering (one line on stderr, exit 3). Without a
/// terminal on stdin and stdout, or with once/batch, prints plain snapshots.
int run_top(const top_request& r);

/// Per-second figures of a worker between two snapshots.
struct worker_rates {
  double cpu_percent = 0;  ///< of one CPU
  double in_per_s = 0;     ///< messages its actors handled
  double out_per_s = 0;    ///< messages its actors sent
};

/// Turns the cumulative counts of successive `top` answers into rates.
class top_rates {
 public:
  using clock = std::chrono::steady_clock;
  /// Takes one answer, read at time `at`.
  void update(const nlohmann::json& top, clock::time_point at);
  /// The worker's rates since the previous answer; nothing for its first
  /// answer, or when its process changed (a restart) or a count went down.
  [[nodiscard]] std::optional<worker_rates> worker(std::uint32_t id) const;
  /// The daemon's CPU % and the gateway's records per second (in, out).
  [[nodiscard]] std::optional<double> daemon_cpu_percent() const { return daemon_cpu_; }
  [[nodiscard]] std::optional<std::pair<double, double>> gateway() const { return gateway_; }
  /// Seconds between the last two answers (0 before the second).
  [[nodiscard]] double elapsed() const { return elapsed_; }

 private:
  struct sample {
    std::int64_t pid = 0;
    double cpu = 0;
    std::uint64_t handled = 0, sent = 0;
  };
  std::map<std::uint32_t, sample> last_;
  std::map<std::uint32_t, worker_rates> rates_;
  std::optional<clock::time_point> at_;
  double elapsed_ = 0;
  double daemon_cpu_seconds_ = -1;
  std::optional<double> daemon_cpu_;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> gateway_counts_;
  std::optional<std::pair<double, double>> gateway_;
};

// Formatting, one place each.
/// 512B, 4.0K, 12.3M, 1.5G.
std::string format_bytes(double bytes);
/// 0, 7.5, 950, 12.3k, 4.56M.
std::string format_rate(double per_second);
/// "-" for null, "850 ms", "2.3 s", "4m05s".
std::string format_age_ms(const nlohmann::json& ms);
/// 12s, 3m05s, 1h02m, 2d03h.
std::string format_uptime(std::int64_t ms);
/// Capabilities as `start --caps` writes them: gpu,zone=eu.
std::string format_caps(const nlohmann::json& caps);

/// What the screen shows, one string a line (no escapes): the header, the
/// systems, the workers, the busiest actors and the restarts of the last
/// minute. interval: the refresh interval, for the header.
std::vector<std::string> top_lines(const nlohmann::json& top, const nlohmann::json& systems, const top_rates& rates,
                                   std::chrono::milliseconds interval);

/// Cuts each line to width columns and the whole to height lines (the last
/// one saying how many were left out); 0: no bound.
std::vector<std::string> fit(std::vector<std::string> lines, std::size_t width, std::size_t height);

}  // namespace troupe::tools
