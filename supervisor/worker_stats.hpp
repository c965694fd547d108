// supervisor/worker_stats.hpp — what `troupe top` shows (the client command
// `top`, docs/PROTOCOL.md §6.6) and the series of named actors on /metrics
// (`--metrics-actors`, docs/OPERATIONS.md §10.2).
//
// Messages between workers never pass the daemon, so how many messages each
// actor handled is known only in its worker: the daemon asks every ready
// worker (`stats`, §4.3) and answers once all have answered or after
// `answer_wait`, whichever comes first. Per process it reads what the
// metrics read (metrics.hpp: /proc, the handling marker, the data link's
// backlog). Restarts of the last minute come from the event ring.
// Threading: the loop's thread only.
#pragma once

#include "ipc/reactor.hpp"
#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/event_ring.hpp"
#include "supervisor/packages.hpp"
#include "supervisor/worker_pool.hpp"

#include <prometheus/metric_family.h>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace troupe::supervisor {

class gateway;

/// Whether a global name matches one of the --metrics-actors globs.
[[nodiscard]] bool matches_any(const std::vector<std::string>& globs, const std::string& name);

/// A counter of one named actor that must not go down when its worker
/// restarts (its count starts again at 0) or the name moves to another
/// actor: the value is what earlier holders counted plus the current one's.
class named_counter {
 public:
  /// The count read now from the actor at a.
  void update(address a, std::uint64_t raw);
  [[nodiscard]] std::uint64_t value() const { return offset_ + last_; }

 private:
  address addr_;
  std::uint64_t last_ = 0;
  std::uint64_t offset_ = 0;
};

class worker_stats {
 public:
  /// How long the daemon waits for the workers' answers.
  static constexpr std::chrono::milliseconds answer_wait{300};
  /// `top` requests being answered at once, at most (each waits for every worker).
  static constexpr std::size_t max_pending = 64;
  /// How often the counts of named actors are read (--metrics-actors).
  static constexpr std::chrono::milliseconds named_period{1000};

  worker_stats(system_context& ctx, client_port& port, worker_pool& pool, directory& actors,
               const package_set& packages, const ipc::data_link& link, const gateway& gate,
               std::chrono::steady_clock::time_point started);

  void register_handlers();
  /// Starts reading the counts of named actors every named_period (only
  /// with --metrics and --metrics-actors).
  void start_named();
  void stop();

  /// The families of the named actors (troupe_named_actor_*), from the
  /// last reading.
  void add_named_families(std::vector<prometheus::MetricFamily>& out) const;

  /// What each worker answered to `stats`, by worker id (absent: no answer in time).
  using answers = std::map<std::uint32_t, json>;
  /// Asks every ready worker `stats` with body; done gets the answers.
  /// False (done never called) when max_pending gatherings run already.
  bool gather(json body, std::function<void(answers)> done);

 private:
  void cmd_top(const client_ref& c, const json& body);
  void on_stats(worker_proc& w, const json& body);
  void finish(std::uint64_t id);
  json top_answer(const answers& got, std::size_t rows) const;
  void read_named();

  system_context& ctx_;
  client_port& port_;
  worker_pool& pool_;
  directory& actors_;
  const package_set& packages_;
  const ipc::data_link& link_;
  const gateway& gate_;
  std::chrono::steady_clock::time_point started_;

  struct gathering {
    std::map<std::uint32_t, std::uint32_t> waiting;  ///< worker id → its incarnation asked
    answers got;
    std::function<void(answers)> done;
    std::unique_ptr<boost::asio::steady_timer> deadline;
  };
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, gathering> pending_;

  // Restarts and unexpected worker exits of the last minute (event ring).
  // The restarts are a ring of events overwritten in place: a worker of
  // 100,000 actors restarts them all in one loop turn, and each costs a copy
  // into a slot's reused strings, not a JSON object made and freed.
  std::vector<event> restarts_;  // grows to recent_cap, then wraps
  std::size_t restarts_next_ = 0;
  std::deque<std::int64_t> crashes_;
  static constexpr std::size_t recent_cap = 4096;

  // --metrics-actors: by name, the last reading.
  struct named_reading {
    address addr;
    named_counter handled;
    std::uint64_t queued = 0;
    bool seen = false;  ///< its worker answered the last reading
  };
  std::map<std::string, named_reading> named_;
  std::unique_ptr<boost::asio::steady_timer> named_timer_;
  bool reading_ = false;
  bool stopped_ = false;
};

}  // namespace troupe::supervisor
