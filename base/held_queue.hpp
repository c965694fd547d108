// base/held_queue.hpp — requests held for something that is not there yet
// (an actor starting, moving or pending), bounded per key, released in the
// order they came. What "release" and "fail" mean is the caller's: the queue
// hands back what it held. One type for every such queue, so each has the same
// bound, order and accounting (a metric reads total()).
// Not thread-safe; owned by one loop.
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe::base {

template <class Key, class Item, class Hash = std::hash<Key>>
class held_queue {
 public:
  explicit held_queue(std::size_t limit_per_key = std::numeric_limits<std::size_t>::max()) : limit_(limit_per_key) {}

  /// Holds item for key; false, holding nothing, when key already holds limit items.
  bool hold(const Key& key, Item item) {
    auto& q = held_[key];
    if (q.size() >= limit_) return false;
    q.push_back(std::move(item));
    ++total_;
    return true;
  }
  /// Everything held for key, oldest first; the queue forgets it.
  std::vector<Item> take(const Key& key) {
    auto it = held_.find(key);
    if (it == held_.end()) return {};
    auto items = std::move(it->second);
    held_.erase(it);
    total_ -= items.size();
    return items;
  }
  /// Removes and returns the oldest item of key that pred accepts.
  template <class Pred>
  std::optional<Item> take_first(const Key& key, Pred pred) {
    auto it = held_.find(key);
    if (it == held_.end()) return std::nullopt;
    auto& q = it->second;
    for (auto i = q.begin(); i != q.end(); ++i)
      if (pred(*i)) {
        Item item = std::move(*i);
        q.erase(i);
        --total_;
        if (q.empty()) held_.erase(it);
        return item;
      }
    return std::nullopt;
  }
  [[nodiscard]] std::size_t size(const Key& key) const {
    auto it = held_.find(key);
    return it == held_.end() ? 0 : it->second.size();
  }
  [[nodiscard]] std::size_t total() const { return total_; }
  [[nodiscard]] std::size_t limit() const { return limit_; }
  /// The keys that hold something (in no particular order).
  [[nodiscard]] std::vector<Key> keys() const {
    std::vector<Key> out;
    out.reserve(held_.size());
    for (const auto& [k, _] : held_) out.push_back(k);
    return out;
  }

 private:
  std::size_t limit_;
  std::size_t total_ = 0;
  std::unordered_map<Key, std::vector<Item>, Hash> held_;
};

}  // namespace troupe::base
