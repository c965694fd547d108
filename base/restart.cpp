#include "base/restart.hpp"

#include <algorithm>

namespace troupe::base {

using std::chrono::milliseconds;

const char* to_string(restart_policy p) {
  switch (p) {
    case restart_policy::permanent:
      return "permanent";
    case restart_policy::transient:
      return "transient";
    case restart_policy::temporary:
      return "temporary";
  }
  return "permanent";
}

restart_history::restart_history(const std::vector<milliseconds>& ages, restart_clock::time_point now) {
  for (auto age : ages) times_.push_back(now - age);
  std::sort(times_.begin(), times_.end());
}

void restart_history::forget_older(milliseconds within, restart_clock::time_point now) {
  auto keep = times_.begin();
  while (keep != times_.end() && now - *keep > within) ++keep;
  times_.erase(times_.begin(), keep);
}

restart_decision restart_history::on_exit(const restart_spec& spec, exit_kind kind, std::string_view what,
                                          restart_clock::time_point now) {
  restart_decision d;
  const bool comes_back = spec.policy == restart_policy::permanent ||
                          (spec.policy == restart_policy::transient && kind == exit_kind::crash);
  if (!comes_back) {
    if (kind == exit_kind::normal) {
      d.act = restart_decision::action::gone;
      return d;
    }
    d.act = restart_decision::action::fail;
    d.reason = std::string(what) + " (temporary: not restarted)";
    return d;
  }
  forget_older(spec.within, now);
  if (times_.size() >= spec.max_restarts) {
    d.act = restart_decision::action::fail;
    d.reason = "restarted " + std::to_string(times_.size()) + " times within " + std::to_string(spec.within.count()) +
               " ms (max_restarts), last: " + std::string(what);
    return d;
  }
  times_.push_back(now);
  d.streak = static_cast<std::uint32_t>(times_.size());
  d.delay = backoff_delay(spec, d.streak);
  return d;
}

std::vector<milliseconds> restart_history::ages(restart_clock::time_point now) const {
  std::vector<milliseconds> out;
  out.reserve(times_.size());
  for (auto t : times_) out.push_back(std::chrono::duration_cast<milliseconds>(now - t));
  return out;
}

milliseconds backoff_delay(const restart_spec& spec, std::uint32_t streak) {
  if (streak <= 1) return milliseconds(0);
  milliseconds delay = spec.backoff_min;
  for (std::uint32_t i = 2; i < streak && delay < spec.backoff_max; ++i) delay *= 2;
  return std::min(delay, spec.backoff_max);
}

}  // namespace troupe::base
