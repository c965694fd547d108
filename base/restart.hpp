// base/restart.hpp — restart decisions, in Erlang/OTP's terms: a child's
// restart type (permanent | transient | temporary), its intensity (at most
// max_restarts within `within`) and a backoff between respawns. One pure
// table, fed with an exit and the time it is given (never the clock), used
// by the supervisor for worker crashes and by the worker for handler
// failures, and unit-tested without processes or sleeps.
//
//   type       | crash (signal, exception, exit != 0) | normal exit (stopped)
//   -----------+--------------------------------------+----------------------
//   permanent  | restart, if within intensity          | restart, if within intensity
//   transient  | restart, if within intensity          | no restart: gone
//   temporary  | no restart: failed                    | no restart: gone
//
// "Within intensity": restarts in the last `within` (older ones forgotten)
// are fewer than max_restarts; the restart is then counted. Otherwise the
// child has failed. The first restart of a streak is immediate; each further
// one waits backoff_min, doubling, at most backoff_max.
//
// Value types; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::base {

using restart_clock = std::chrono::steady_clock;

/// OTP child restart types: permanent always, transient after a failure only,
/// temporary never.
enum class restart_policy { permanent, transient, temporary };

[[nodiscard]] const char* to_string(restart_policy p);

struct restart_spec {
  restart_policy policy = restart_policy::permanent;
  std::uint32_t max_restarts = 3;               ///< OTP intensity ...
  std::chrono::milliseconds within{5000};       ///< ... within this period, else give up
  std::chrono::milliseconds backoff_min{10};    ///< delay before a respawn starts here ...
  std::chrono::milliseconds backoff_max{1000};  ///< ... and grows to at most this

  friend bool operator==(const restart_spec&, const restart_spec&) = default;
};

enum class exit_kind {
  crash,   ///< killed by a signal, an exception in a handler, a non-zero exit
  normal,  ///< stopped on purpose
};

struct restart_decision {
  enum class action {
    restart,  ///< start it again after `delay`
    fail,     ///< give up: it is failed, `reason` says why
    gone,     ///< a normal end that is not restarted: nothing failed
  };
  action act = action::restart;
  std::chrono::milliseconds delay{0};  ///< restart: the backoff before it
  std::uint32_t streak = 0;            ///< restart: restarts in the window, this one included
  std::string reason;                  ///< fail: "restarted 3 times within 5000 ms (max_restarts), last: WHAT"
};

/// The restarts of one child within its window, oldest first.
class restart_history {
 public:
  restart_history() = default;
  /// Restarts made `ages` ago (how a history travels between processes).
  restart_history(const std::vector<std::chrono::milliseconds>& ages, restart_clock::time_point now);

  /// Decides what follows an exit at now, described by `what` ("worker killed
  /// by SIGKILL"), and counts the restart when it decides one.
  restart_decision on_exit(const restart_spec& spec, exit_kind kind, std::string_view what,
                           restart_clock::time_point now);
  /// Counts a restart decided elsewhere (the supervisor hears of the
  /// worker's in-place restarts: one intensity for both kinds).
  void count(restart_clock::time_point now) { times_.push_back(now); }
  /// Ages of the restarts still counted, oldest first.
  [[nodiscard]] std::vector<std::chrono::milliseconds> ages(restart_clock::time_point now) const;
  [[nodiscard]] std::size_t size() const { return times_.size(); }

 private:
  void forget_older(std::chrono::milliseconds within, restart_clock::time_point now);
  // A vector, not a deque: libstdc++'s deque allocates about 600 bytes when
  // constructed, and every actor of a system has a history, nearly always
  // empty (docs/PERFORMANCE.md, 100,000 actors).
  std::vector<restart_clock::time_point> times_;
};

/// The delay before the streak-th restart in a window: 0 for the first,
/// then backoff_min doubling up to backoff_max.
[[nodiscard]] std::chrono::milliseconds backoff_delay(const restart_spec& spec, std::uint32_t streak);

}  // namespace troupe::base
