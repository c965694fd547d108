#include "ipc/delivery.hpp"

namespace troupe::ipc {

std::uint32_t inbound_ledger::open(std::uint64_t channel_id, std::string_view ack_endpoint) {
  if (auto it = by_id_.find(channel_id); it != by_id_.end()) return it->second;
  channel_state ch;
  ch.id = channel_id;
  ch.ack_endpoint = std::string(ack_endpoint);
  channels_.push_back(std::move(ch));
  const auto index = static_cast<std::uint32_t>(channels_.size());
  by_id_.emplace(channel_id, index);
  return index;
}

inbound_ledger::channel_state* inbound_ledger::find(cause c) {
  if (c.channel == 0 || c.channel > channels_.size()) return nullptr;
  auto& ch = channels_[c.channel - 1];
  if (ch.forgotten || c.entry < ch.first_entry || c.entry - ch.first_entry >= ch.pending.size()) return nullptr;
  return &ch;
}

inbound_ledger::arrival inbound_ledger::arrive(std::uint32_t channel, std::uint64_t seq) {
  auto& ch = channels_[channel - 1];
  if (ch.forgotten) return arrival::take;  // nothing is acknowledged any more: as it comes
  if (seq == ch.next_seq) {
    ++ch.next_seq;
    return arrival::take;
  }
  if (seq > ch.next_seq) return arrival::gap;
  // A copy. Still being handled: its ack comes when it is done. Done: its
  // ack may have been lost with a connection, so it goes again.
  for (const auto& e : ch.pending)
    if (e.seq == seq) {
      if (e.holds != 0) return arrival::duplicate;
      break;
    }
  mark_done(ch, channel, seq);
  return arrival::duplicate;
}

void inbound_ledger::mark_done(channel_state& ch, std::uint32_t index, std::uint64_t seq) {
  if (!ch.done.empty() && ch.done.back().second + 1 == seq)
    ch.done.back().second = seq;
  else
    ch.done.emplace_back(seq, seq);
  if (!ch.dirty) {
    ch.dirty = true;
    dirty_.push_back(index);
  }
}

cause inbound_ledger::begin(std::uint32_t channel, std::uint64_t seq) {
  auto& ch = channels_[channel - 1];
  if (ch.forgotten) return {};
  ch.pending.push_back(entry{seq, 1});
  return cause{channel, ch.first_entry + ch.pending.size() - 1};
}

void inbound_ledger::hold(cause c) {
  if (auto* ch = find(c)) ++ch->pending[c.entry - ch->first_entry].holds;
}

void inbound_ledger::release(cause c) {
  auto* ch = find(c);
  if (ch == nullptr) return;
  auto& e = ch->pending[c.entry - ch->first_entry];
  if (e.holds == 0 || --e.holds != 0) return;
  mark_done(*ch, c.channel, e.seq);
  // Done entries leave once no earlier one is pending (entry numbers stay put).
  while (!ch->pending.empty() && ch->pending.front().holds == 0) {
    ch->pending.pop_front();
    ++ch->first_entry;
  }
}

record_origin inbound_ledger::origin(cause c) const {
  if (c.channel == 0 || c.channel > channels_.size()) return {};
  const auto& ch = channels_[c.channel - 1];
  if (c.entry < ch.first_entry || c.entry - ch.first_entry >= ch.pending.size()) return {ch.id, 0};
  return {ch.id, ch.pending[c.entry - ch.first_entry].seq};
}

std::string_view inbound_ledger::ack_endpoint_of(cause c) const {
  if (c.channel == 0 || c.channel > channels_.size()) return {};
  return channels_[c.channel - 1].ack_endpoint;
}

void inbound_ledger::forget_endpoint(std::string_view ack_endpoint) {
  for (auto& ch : channels_) {
    if (ch.forgotten || ch.ack_endpoint != ack_endpoint) continue;
    ch.forgotten = true;
    ch.pending.clear();
    ch.ack_endpoint.clear();
    ch.ack_endpoint.shrink_to_fit();
  }
}

std::size_t inbound_ledger::unacknowledged() const {
  std::size_t n = 0;
  for (const auto& ch : channels_)
    for (const auto& e : ch.pending) n += e.holds != 0;
  return n;
}

}  // namespace troupe::ipc
