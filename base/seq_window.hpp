// base/seq_window.hpp — numbered custody between two processes over a link
// that may drop messages when it reconnects (docs/PROTOCOL.md §5.9).
//
// The sender numbers what it sends on a channel 1, 2, 3, … and keeps each
// item until the receiver acknowledges it. It hands items to the link in
// order and stops at the first the link does not take (full), so it never
// leaves a hole of its own; when nothing was acknowledged for a timeout it
// goes back to the oldest and sends again from there (go-back-N), doubling
// the timeout up to 8 times while nothing is acknowledged. The receiver takes
// only the next number of each channel, so items arrive once and in order,
// and acknowledges cumulatively. Each item carries the oldest number its
// sender keeps, so a receiver that never saw the channel knows where it starts. Time is passed in: no clock, no I/O
// here. Not thread-safe; owned by one loop.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <utility>
#include <vector>

namespace troupe::base {

using seq_clock = std::chrono::steady_clock;

template <class Item>
class send_window {
 public:
  struct entry {
    std::uint64_t seq;
    Item item;
    std::size_t bytes;
  };

  send_window(std::uint64_t channel, std::chrono::milliseconds timeout) : channel_(channel), base_timeout_(timeout) {}

  [[nodiscard]] std::uint64_t channel() const { return channel_; }
  /// Keeps item until acknowledged; its number. Not sent yet: see pending().
  std::uint64_t push(Item item, std::size_t bytes, seq_clock::time_point now) {
    if (kept_.empty()) sent_at_ = now;
    kept_.push_back(entry{next_, std::move(item), bytes});
    bytes_ += bytes;
    return next_++;
  }
  /// The oldest item not handed to the link since the last go-back (null: none).
  [[nodiscard]] const entry* pending() const {
    if (kept_.empty() || sent_ >= kept_.back().seq) return nullptr;
    const std::uint64_t want = std::max(sent_ + 1, kept_.front().seq);
    return &kept_[static_cast<std::size_t>(want - kept_.front().seq)];
  }
  /// The link took item seq (the one pending() gave).
  void handed(std::uint64_t seq) { sent_ = seq; }
  /// Everything up to `upto` arrived; how many items that released.
  std::size_t ack(std::uint64_t upto, seq_clock::time_point now) {
    std::size_t n = 0;
    while (!kept_.empty() && kept_.front().seq <= upto) {
      bytes_ -= kept_.front().bytes;
      kept_.pop_front();
      ++n;
    }
    if (n > 0) {  // progress: the receiver is there
      sent_at_ = now;
      backoff_ = 0;
    }
    return n;
  }
  /// Whether the window is to be sent again at now.
  [[nodiscard]] bool due(seq_clock::time_point now) const { return !kept_.empty() && now - sent_at_ >= timeout(); }
  /// Back to the oldest kept item, to send everything again from it: the
  /// next time waits longer.
  void go_back(seq_clock::time_point now) {
    sent_ = kept_.empty() ? next_ - 1 : kept_.front().seq - 1;
    sent_at_ = now;
    if (backoff_ < 3) ++backoff_;
  }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return base_timeout_ * (1 << backoff_); }
  [[nodiscard]] const std::deque<entry>& kept() const { return kept_; }
  /// The oldest number kept (the next one when none is).
  [[nodiscard]] std::uint64_t first() const { return kept_.empty() ? next_ : kept_.front().seq; }
  /// Gives up the channel's items (their receiver is gone), oldest first.
  std::vector<Item> take_all() {
    std::vector<Item> out;
    for (auto& e : kept_) out.push_back(std::move(e.item));
    kept_.clear();
    bytes_ = 0;
    return out;
  }
  [[nodiscard]] std::size_t size() const { return kept_.size(); }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  std::uint64_t channel_;
  std::chrono::milliseconds base_timeout_;
  std::uint64_t next_ = 1;
  std::uint64_t sent_ = 0;  // the highest number handed to the link, in order
  std::deque<entry> kept_;
  std::size_t bytes_ = 0;
  seq_clock::time_point sent_at_{};
  int backoff_ = 0;
};

/// The receiving side, for every channel of every sender.
template <class Sender>
class receive_sequence {
 public:
  enum class verdict { take, duplicate, gap };

  /// Whether to take item seq of (from, channel). `first` is the oldest
  /// number its sender still keeps: what is below it was acknowledged, so a
  /// channel seen for the first time (or forgotten) starts there.
  verdict accept(const Sender& from, std::uint64_t channel, std::uint64_t seq, std::uint64_t first,
                 seq_clock::time_point now) {
    auto& s = channels_.try_emplace({from, channel}, state{first, now}).first->second;
    s.used = now;
    if (first > s.next) s.next = first;
    if (seq < s.next) return verdict::duplicate;
    if (seq > s.next) return verdict::gap;
    ++s.next;
    return verdict::take;
  }
  /// The highest number taken on the channel (0: none).
  [[nodiscard]] std::uint64_t upto(const Sender& from, std::uint64_t channel) const {
    auto it = channels_.find({from, channel});
    return it == channels_.end() ? 0 : it->second.next - 1;
  }
  /// Forgets channels unused for `idle`: a sender silent that long has
  /// nothing kept for this receiver any more.
  void prune(seq_clock::time_point now, std::chrono::milliseconds idle) {
    for (auto it = channels_.begin(); it != channels_.end();)
      it = now - it->second.used > idle ? channels_.erase(it) : std::next(it);
  }
  [[nodiscard]] std::size_t channels() const { return channels_.size(); }

 private:
  struct state {
    std::uint64_t next;
    seq_clock::time_point used;
  };
  std::map<std::pair<Sender, std::uint64_t>, state> channels_;
};

}  // namespace troupe::base
