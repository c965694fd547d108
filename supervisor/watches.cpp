#include "supervisor/watches.hpp"

namespace troupe::supervisor {

namespace {

// Removes value from the set at key, and the key once its set is empty.
void erase_pair(std::map<address, std::set<address>>& m, address key, address value) {
  auto it = m.find(key);
  if (it == m.end()) return;
  it->second.erase(value);
  if (it->second.empty()) m.erase(it);
}

}  // namespace

const char* to_string(exit_event e) {
  switch (e) {
    case exit_event::stopped:
      return "stopped";
    case exit_event::restarted:
      return "restarted";
    case exit_event::failed:
      return "failed";
  }
  return "stopped";
}

bool watch_table::add(address watcher, address target) {
  by_watcher_[watcher].insert(target);
  return by_target_[target].insert(watcher).second;
}

bool watch_table::remove(address watcher, address target) {
  auto it = by_target_.find(target);
  if (it == by_target_.end() || !it->second.contains(watcher)) return false;
  erase_pair(by_target_, target, watcher);
  erase_pair(by_watcher_, watcher, target);
  return true;
}

std::vector<address> watch_table::watchers_of(address target) const {
  auto it = by_target_.find(target);
  if (it == by_target_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<address> watch_table::end_watches_of(address target) {
  std::vector<address> watchers = watchers_of(target);
  for (address w : watchers) erase_pair(by_watcher_, w, target);
  by_target_.erase(target);
  return watchers;
}

void watch_table::end_watches_by(address watcher) {
  auto it = by_watcher_.find(watcher);
  if (it == by_watcher_.end()) return;
  for (address target : it->second) erase_pair(by_target_, target, watcher);
  by_watcher_.erase(it);
}

}  // namespace troupe::supervisor
