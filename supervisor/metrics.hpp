// supervisor/metrics.hpp — the system's Prometheus metrics (docs/OPERATIONS.md
// §11.2), served on `--metrics HOST:PORT` by http_server at /metrics.
//
// prometheus-cpp's core library holds the registry, the metric types and the
// text format (not its civetweb exposer: the HTTP server is Beast on the
// system's own loop, http_server.hpp). Two kinds of families:
// - counted as things happen: from the event ring (restarts by cause, worker
//   exits by signal or code, loads, refusals, moves, failovers, …) and the
//   gateway's ask latency histogram;
// - read at scrape time, from the tables and /proc: actors by state and
//   package version, workers' messages (their handling marker), their
//   mailbox as the supervisor sees it, held requests, members, and CPU, RSS
//   and descriptors of the daemon and each worker.
// No family has a per-actor label: workers are labelled by package and
// version, systems by port.
// Threading: the loop's thread only (the prometheus types are thread-safe,
// but nothing here needs it).
#pragma once

#include "ipc/reactor.hpp"
#include "supervisor/context.hpp"
#include "supervisor/event_ring.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace troupe::supervisor {

/// The label of a refusal reason (bounded: a few words, never the text).
[[nodiscard]] std::string refusal_class(const std::string& reason);
/// The cause label of a restart, from its reason.
[[nodiscard]] std::string restart_cause(const std::string& reason);
/// "SIGKILL" for 9, "SIG37" for a number without a name.
[[nodiscard]] std::string signal_name(int sig);

/// What one process uses now, from /proc/PID (zeros when it is gone).
struct process_usage {
  double cpu_seconds = 0;  ///< user + system
  double rss_bytes = 0;
  double open_fds = 0;
};
[[nodiscard]] process_usage read_process_usage(int pid);

/// Builds families of values read at scrape time (gauges and counters).
class family_builder {
 public:
  family_builder(std::string name, std::string help, prometheus::MetricType type)
      : family_{std::move(name), std::move(help), type, {}} {}
  /// Adds value to the series of these labels (summed when it exists).
  void add(const std::vector<std::pair<std::string, std::string>>& labels, double value);
  /// The larger of its value and value (a gauge).
  void max(const std::vector<std::pair<std::string, std::string>>& labels, double value);
  /// A series that is there even at 0.
  void set(const std::vector<std::pair<std::string, std::string>>& labels, double value);
  [[nodiscard]] prometheus::MetricFamily take();

 private:
  prometheus::ClientMetric& series(const std::vector<std::pair<std::string, std::string>>& labels);
  prometheus::MetricFamily family_;
  std::map<std::vector<std::pair<std::string, std::string>>, std::size_t> index_;
};

class metrics {
 public:
  /// Ask latency buckets, in seconds (50 µs to 10 s).
  static const std::vector<double>& ask_buckets();

  explicit metrics(system_context& ctx);

  /// Counts each event of ring as it is recorded.
  void observe(event_ring& ring);
  /// The gateway's ask latency histogram (gateway::ask_latency).
  [[nodiscard]] prometheus::Histogram* ask_latency() { return ask_latency_; }
  /// Adds the families read at scrape time; called at each scrape, in order.
  void on_scrape(std::function<void(std::vector<prometheus::MetricFamily>&)> f) { scrapers_.push_back(std::move(f)); }
  /// The Prometheus text format (version 0.0.4) of every family.
  [[nodiscard]] std::string scrape();
  /// A worker process ended having handled and sent so many messages: kept
  /// for its package version's counters, which must not go down.
  void retire_worker(const std::string& package, const std::string& version, std::uint64_t handled, std::uint64_t sent);
  /// The retired counts of a package version (handled, sent).
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> retired(const std::string& package,
                                                                const std::string& version) const;
  [[nodiscard]] const std::map<std::pair<std::string, std::string>, std::pair<std::uint64_t, std::uint64_t>>&
  all_retired() const {
    return retired_;
  }
  [[nodiscard]] prometheus::Registry& registry() { return *registry_; }

 private:
  void count(const event& e);

  system_context& ctx_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* events_ = nullptr;
  prometheus::Family<prometheus::Counter>* restarts_ = nullptr;
  prometheus::Family<prometheus::Counter>* failures_ = nullptr;
  prometheus::Family<prometheus::Counter>* worker_exits_ = nullptr;
  prometheus::Family<prometheus::Counter>* loads_ = nullptr;
  prometheus::Family<prometheus::Counter>* unloads_ = nullptr;
  prometheus::Family<prometheus::Counter>* refusals_ = nullptr;
  prometheus::Counter* moves_ = nullptr;
  prometheus::Counter* pending_ = nullptr;
  prometheus::Counter* failovers_ = nullptr;
  prometheus::Counter* joins_ = nullptr;
  prometheus::Counter* fenced_ = nullptr;
  prometheus::Counter* leader_changes_ = nullptr;
  prometheus::Histogram* ask_latency_ = nullptr;
  std::vector<std::function<void(std::vector<prometheus::MetricFamily>&)>> scrapers_;
  std::map<std::pair<std::string, std::string>, std::pair<std::uint64_t, std::uint64_t>> retired_;
};

}  // namespace troupe::supervisor

namespace troupe::supervisor {

class directory;
class package_set;
class worker_pool;
class gateway;
class membership;
class event_stream;
class data_relay;
class remote_calls;
class convention;

/// What the scrape reads (system.cpp hands it its tables and components).
struct scrape_sources {
  const directory& actors;
  const package_set& packages;
  const worker_pool& pool;
  const gateway& gate;
  const ipc::data_link& link;  ///< the system's sending half: the gateway's records to workers
  const membership& members;
  const event_stream& events;
  const data_relay& relay;
  const remote_calls& calls;
  const convention& conv;
  std::chrono::steady_clock::time_point started;
};

/// Adds the families read from the tables and /proc (docs/OPERATIONS.md §11.2).
void add_system_families(std::vector<prometheus::MetricFamily>& out, const scrape_sources& s, const metrics& m);

}  // namespace troupe::supervisor
