// supervisor/watches.hpp — who watches whom (docs/PROTOCOL.md §4.4): for each
// watched address the actors that get its exit notices, and the reverse, so
// that the watches of an actor that goes away end with it. Pure bookkeeping,
// no I/O, so it is unit-tested on its own.
// Not thread-safe; owned by the supervisor's loop thread.
#pragma once

#include <troupe/address.hpp>

#include <map>
#include <set>
#include <vector>

namespace troupe::supervisor {

/// What an exit notice reports; its text is the notice's type on the wire.
enum class exit_event {
  stopped,    ///< gone normally (exit request, kill, unload); ends the watch
  restarted,  ///< re-created under the same address; the watch goes on
  failed,     ///< given up on (restart policy, failed creation); ends the watch
};

[[nodiscard]] const char* to_string(exit_event e);

class watch_table {
 public:
  /// Adds the watch of target by watcher; returns false when it exists
  /// already (watching twice is one watch).
  bool add(address watcher, address target);
  /// Ends one watch; returns false when there was none.
  bool remove(address watcher, address target);

  /// The actors watching target, in address order.
  [[nodiscard]] std::vector<address> watchers_of(address target) const;
  /// Ends every watch of target (it is gone for good) and returns its
  /// watchers, in address order.
  std::vector<address> end_watches_of(address target);
  /// Ends every watch held by watcher (it is gone for good).
  void end_watches_by(address watcher);

  [[nodiscard]] bool empty() const { return by_target_.empty(); }

 private:
  std::map<address, std::set<address>> by_target_;   // target -> watchers
  std::map<address, std::set<address>> by_watcher_;  // watcher -> targets
};

}  // namespace troupe::supervisor
