// ipc/delivery.hpp — the receiving half of no-loss delivery
// (docs/PROTOCOL.md §3.4).
//
// A sender numbers its records per channel and keeps each one until the
// receiver acknowledges it (data_link, ipc/reactor.hpp). A receiver
// acknowledges a record only once it was handled AND every record its handler
// sent was acknowledged in turn: its "cause" holds a count per output. Acks
// name runs of records, in any order, never "everything up to". So when
// a worker dies, nothing it received is lost: what it had not finished
// passing on is still kept by whoever sent it to the worker, and is sent
// again to the restarted actor.
//
// Threading: one ledger per process, used from the loop's thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe::ipc {

/// The inbound record whose handling sent a message; none when channel is 0
/// (a timer, on_start, a client of the gateway).
struct cause {
  std::uint32_t channel = 0;  ///< 1-based index into the ledger
  std::uint64_t entry = 0;    ///< entry number within the channel

  explicit operator bool() const { return channel != 0; }
};

/// Where a channel's record came from: what a handling marker records.
struct record_origin {
  std::uint64_t channel_id = 0;
  std::uint64_t seq = 0;
};

class inbound_ledger {
 public:
  /// The channel a batch opens with (its channel record): returns its index.
  std::uint32_t open(std::uint64_t channel_id, std::string_view ack_endpoint);

  /// What to do with numbered record seq of channel arriving. A channel's
  /// records are taken once and in order (1, 2, 3, ...): over ipc nothing is
  /// lost or repeated, but over tcp a sender sends again what it has not seen
  /// acknowledged in time (a connection that dropped loses what was in
  /// flight), so a receiver meets copies and, after a loss, gaps.
  enum class arrival {
    take,       ///< the next one: begin() it and deliver it
    duplicate,  ///< taken already: dropped; if done, acknowledged again (its ack may be what was lost)
    gap,        ///< past the next one (an earlier one was lost): dropped, it comes again in order
  };
  arrival arrive(std::uint32_t channel, std::uint64_t seq);

  /// A sequenced record of channel is about to be handled. The cause holds
  /// one count for the handling itself: release it when the handler returns.
  cause begin(std::uint32_t channel, std::uint64_t seq);
  /// An output of c was sent (or queued): one more count to release.
  void hold(cause c);
  /// One count of c released; when none is left the record is done and
  /// will be acknowledged (acks are selective: see data_link::on_ack).
  void release(cause c);

  /// The channel id and sequence number of the record c stands for.
  [[nodiscard]] record_origin origin(cause c) const;
  /// Where the channel of c sends its acks (its sender's inbox); empty when unknown.
  [[nodiscard]] std::string_view ack_endpoint_of(cause c) const;

  /// Calls f(ack_endpoint, channel_id, first, last) for every run of
  /// consecutive records done since the last call.
  template <class F>
  void take_acks(F&& f);

  /// The process at ack_endpoint died: its channels are acknowledged no more.
  void forget_endpoint(std::string_view ack_endpoint);

  /// Records begun and not yet acknowledged, over all channels (for tests).
  [[nodiscard]] std::size_t unacknowledged() const;

 private:
  struct entry {
    std::uint64_t seq;
    std::uint32_t holds;
  };
  struct channel_state {
    std::uint64_t id = 0;
    std::string ack_endpoint;
    std::deque<entry> pending;  // in seq order; front() is entry number first_entry
    std::uint64_t first_entry = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> done;  // runs of seqs to acknowledge
    bool dirty = false;                                         // done is not empty
    bool forgotten = false;
    std::uint64_t next_seq = 1;  // the next record to take
  };
  void mark_done(channel_state& ch, std::uint32_t index, std::uint64_t seq);

  channel_state* find(cause c);

  std::vector<channel_state> channels_;
  std::unordered_map<std::uint64_t, std::uint32_t> by_id_;
  std::vector<std::uint32_t> dirty_;
};

template <class F>
void inbound_ledger::take_acks(F&& f) {
  for (std::uint32_t index : dirty_) {
    auto& ch = channels_[index - 1];
    ch.dirty = false;
    if (!ch.forgotten)
      for (const auto& [first, last] : ch.done) f(std::string_view(ch.ack_endpoint), ch.id, first, last);
    ch.done.clear();
  }
  dirty_.clear();
}

}  // namespace troupe::ipc
