#include "supervisor/data_relay.hpp"

#include "ipc/commands.hpp"
#include "ipc/log.hpp"

#include <random>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace cmd = ipc::cmd;
using ipc::log_line;
using std::chrono::milliseconds;

namespace {
// What one system keeps for another that has not acknowledged it yet; past
// either bound a record bounces instead (an ask fails, a tell is a dead letter).
constexpr std::size_t window_records = 100000;
constexpr std::size_t window_bytes = std::size_t{512} << 20;
// What a kept record counts for besides its payload and type.
constexpr std::size_t record_overhead = 64;
constexpr auto resend_tick_every = milliseconds(100);
// How long an acknowledgement waits for data going back to ride on (the reply
// of an ask, typically) before it goes on its own.
constexpr auto ack_delay = milliseconds(5);
// A sender silent this long keeps nothing for this system any more.
constexpr auto channel_idle = std::chrono::minutes(10);

std::uint64_t new_channel_id() {
  static std::mt19937_64 gen{std::random_device{}()};
  std::uint64_t id = 0;
  while (id == 0) id = gen();
  return id;
}

std::uint64_t number_in(const json& body, const char* field) {
  const auto it = body.find(field);
  if (it == body.end()) return 0;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_string()) return std::strtoull(it->get_ref<const std::string&>().c_str(), nullptr, 10);
  return 0;
}
}  // namespace

void data_relay::attach(convention& conv) {
  convention_ = &conv;
  resend_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  ack_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  peers_.handle(cmd::peer::data,
                [this](std::uint32_t from, const json& b, const std::string& blob) { on_data(from, b, blob); });
  peers_.handle(cmd::peer::data_ack, [this](std::uint32_t from, const json& b, const std::string&) {
    on_ack(from, number_in(b, "channel"), number_in(b, "upto"));
  });
}

void data_relay::stop() {
  if (resend_timer_) resend_timer_->cancel();
  if (ack_timer_) ack_timer_->cancel();
}

std::size_t data_relay::unacknowledged() const {
  std::size_t n = 0;
  for (const auto& [_, w] : out_) n += w.size();
  return n;
}

void data_relay::relay(const ipc::record_view& r) {
  // Here, unless the instance here is a copy left over (the convention placed it elsewhere).
  if (actors_.find(r.to) != nullptr && !convention_->placed_elsewhere(r.to)) return deliver(r);
  const auto* l = convention_->at(r.to);
  if (l != nullptr && l->ph != location::phase::placed) {
    // Moving or pending: kept (bounded) until it runs again.
    if (!held_.hold(r.to, keep(r)))
      return bounce(r, "dead letter: " + r.to.to_string() + " is " + to_string(l->ph) + " and " +
                           std::to_string(held_.size(r.to)) + " messages already wait for it");
    return;
  }
  const std::uint32_t to = convention_->host_of(r.to);
  if (to == 0 || to == ctx_.id) return bounce(r, "no actor at " + r.to.to_string());
  // Not the convention's, on a system that is no member: nothing will bring it back.
  if (l == nullptr && convention_->gone(to))
    return bounce(r, "system " + convention_->port_of(to) + " hosting " + r.to.to_string() + " is unreachable");
  send_to(to, keep(r));
}

// ---------------------------------------------------------------- custody

void data_relay::send_to(std::uint32_t system, held_record rec) {
  auto it = out_.find(system);
  if (it == out_.end())
    it = out_.emplace(system, base::send_window<held_record>(new_channel_id(),
                                                             std::max(milliseconds(500), ctx_.opts.member_timeout)))
             .first;
  auto& w = it->second;
  // Counted as the window counts what it keeps: payload, type and a record's overhead.
  const std::size_t bytes = rec.payload.size() + rec.type.size() + record_overhead;
  if (w.size() >= window_records || w.bytes() + bytes > window_bytes)
    return bounce(view(rec), "dead letter: " + std::to_string(w.size()) + " messages for system " +
                                 convention_->port_of(system) + " await its acknowledgement");
  w.push(std::move(rec), bytes, base::seq_clock::now());
  pump(system, w);
  arm_resend();
}

void data_relay::pump(std::uint32_t system, base::send_window<held_record>& w) {
  // In order, up to what the link takes now; the rest on an acknowledgement
  // or the next tick, so this side never leaves a hole.
  while (const auto* e = w.pending()) {
    if (!transmit(system, w.channel(), e->seq, w.first(), e->item)) break;
    w.handed(e->seq);
  }
}

bool data_relay::transmit(std::uint32_t system, std::uint64_t channel, std::uint64_t seq, std::uint64_t first,
                          const held_record& rec) {
  std::string frame;
  ipc::begin_batch(frame);
  ipc::append_record(frame, view(rec));
  json body{{"channel", std::to_string(channel)}, {"seq", seq}, {"first", first}};
  // What this side owes the receiver rides along.
  const auto owed = acks_due_.lower_bound({system, 0});
  const auto owed_end = acks_due_.lower_bound({system + 1, 0});
  if (owed != owed_end) {
    json acks = json::array();
    for (auto it = owed; it != owed_end; ++it)
      acks.push_back(json::array({std::to_string(it->second), in_.upto(system, it->second)}));
    body["acks"] = std::move(acks);
  }
  if (!peers_.send_in_order(system, cmd::peer::data, std::move(body), frame)) return false;
  acks_due_.erase(owed, owed_end);
  return true;
}

void data_relay::arm_resend() {
  if (resend_armed_ || ctx_.stopping) return;
  resend_armed_ = true;
  resend_timer_->expires_after(resend_tick_every);
  resend_timer_->async_wait([this](const boost::system::error_code& e) {
    resend_armed_ = false;
    if (!e) resend_tick();
  });
}

bool data_relay::goes_elsewhere(std::uint32_t lost, const held_record& rec) const {
  const auto* l = convention_->at(rec.to);
  if (l == nullptr) return true;  // not the convention's: it bounces
  return l->system != lost || l->ph != location::phase::placed;
}

void data_relay::resend_tick() {
  const auto now = base::seq_clock::now();
  std::vector<std::uint32_t> rerouted;
  for (auto& [system, w] : out_) {
    if (w.size() == 0) continue;
    // Lost: what its actors were sent goes where they are now, on a new
    // channel should it come back (the old one would wait for what left).
    if (convention_->gone(system)) {
      const bool moved = std::any_of(w.kept().begin(), w.kept().end(),
                                     [&, system = system](const auto& e) { return goes_elsewhere(system, e.item); });
      if (moved) {
        rerouted.push_back(system);
        continue;
      }
    }
    if (w.due(now)) w.go_back(now);  // nothing acknowledged for a while: the link may have lost some
    pump(system, w);
  }
  for (auto system : rerouted) {
    auto records = out_.at(system).take_all();
    out_.erase(system);
    log_line(TROUPE_LOG_INFO, {},
             "system " + convention_->port_of(system) + " is lost: " + std::to_string(records.size()) +
                 " messages it had not acknowledged go where their actors are now");
    for (auto& rec : records) relay(view(rec));
  }
  if (now - last_prune_ > std::chrono::minutes(1)) {
    in_.prune(now, channel_idle);
    for (auto it = out_.begin(); it != out_.end();)
      it = it->second.size() == 0 && convention_->gone(it->first) ? out_.erase(it) : std::next(it);
    last_prune_ = now;
  }
  if (unacknowledged() > 0) arm_resend();
}

void data_relay::on_ack(std::uint32_t from, std::uint64_t channel, std::uint64_t upto) {
  auto it = out_.find(from);
  if (it == out_.end() || channel != it->second.channel()) return;  // an old channel's
  if (it->second.ack(upto, base::seq_clock::now()) > 0) pump(from, it->second);
}

void data_relay::flush_acks() {
  acks_armed_ = false;
  for (const auto& [system, channel] : std::exchange(acks_due_, {}))
    peers_.send(system, cmd::peer::data_ack,
                json{{"channel", std::to_string(channel)}, {"upto", in_.upto(system, channel)}});
}

void data_relay::deliver(const ipc::record_view& r) {
  auto* rec = actors_.find(r.to);
  const auto* l = convention_->at(r.to);
  // Where the convention has it if not here: on another system, or moving
  // or pending (held until it runs again), even while this system's entry
  // still names this system (just evicted, before the leader's next word).
  const bool placed_here = l == nullptr || (l->ph == location::phase::placed && l->system == ctx_.id);
  if (rec == nullptr || convention_->placed_elsewhere(r.to)) {
    if (!placed_here) return relay(r);
    const std::uint32_t host = convention_->host_of(r.to);
    if (host != 0 && host != ctx_.id) return relay(r);  // moved on
    return bounce(r, "no actor at " + r.to.to_string() + " (stopped)");
  }
  if (rec->state == actor_state::failed) {
    if (placed_here) return bounce(r, r.to.to_string() + " has failed: " + rec->last_reason);
    // Failed on its way out (a move, a copy left over): the next instance takes it.
    if (l->ph == location::phase::placed) return send_to(l->system, keep(r));
    if (!held_.hold(r.to, keep(r)))
      bounce(r, "dead letter: " + r.to.to_string() + " is " + to_string(l->ph) + " and " +
                    std::to_string(held_.size(r.to)) + " messages already wait for it");
    return;
  }
  const auto* w = pool_.find(rec->worker);
  if (rec->state != actor_state::running || w == nullptr || w->st != worker_proc::state::ready) {
    if (!held_.hold(r.to, keep(r)))
      bounce(r, "dead letter: " + r.to.to_string() + " is not running and " + std::to_string(held_.limit()) +
                    " messages already wait for it");
    return;
  }
  link_.send(link_.connect(w->inbox), ipc::record_view{r.kind, 0, r.to, r.from, r.correlation, 0, r.type, r.payload});
}

void data_relay::bounce(const ipc::record_view& r, const std::string& reason) {
  // As a worker does: an ask fails, a tell comes back as a dead letter; a
  // lost answer is dropped (answering it could loop).
  if (r.kind != ipc::record_kind::ask && r.kind != ipc::record_kind::tell) {
    log_line(TROUPE_LOG_WARN, r.to, "dropped a relayed message: " + reason);
    return;
  }
  const auto back = r.kind == ipc::record_kind::ask ? ipc::record_kind::ask_failed : ipc::record_kind::dead_letter;
  const ipc::record_view b{back, 0, r.from, r.to, r.correlation, 0, r.type, reason};
  if (r.from == gateway()) return;  // a client's: its ask is answered by the gateway's own timer
  if (actors_.find(r.from) != nullptr) return deliver(b);
  relay(b);
}

void data_relay::release_held(address a) {
  for (const auto& h : held_.take(a)) relay(view(h));
}

void data_relay::drop_held(address a, const std::string& reason) {
  // Held for an instance here that stopped or failed while the convention has
  // the actor elsewhere or moving (a copy left over, one on its way out):
  // on to the live instance, or held for it; else they bounce.
  const auto* l = convention_->at(a);
  const bool elsewhere = l != nullptr && (l->ph != location::phase::placed || l->system != ctx_.id);
  for (const auto& h : held_.take(a)) {
    if (elsewhere)
      relay(view(h));
    else
      bounce(view(h), reason);
  }
}

void data_relay::on_data(std::uint32_t from, const json& b, const std::string& blob) {
  const std::uint64_t channel = number_in(b, "channel");
  const std::uint64_t seq = number_in(b, "seq");
  // Unnumbered (a sender of an earlier version 1): taken as it comes.
  if (channel == 0 || seq == 0) return deliver_batch(blob);
  if (auto acks = b.find("acks"); acks != b.end() && acks->is_array())
    for (const auto& a : *acks)
      if (a.is_array() && a.size() == 2 && a[0].is_string() && a[1].is_number_unsigned())
        on_ack(from, std::strtoull(a[0].get_ref<const std::string&>().c_str(), nullptr, 10), a[1].get<std::uint64_t>());
  const auto first = std::max<std::uint64_t>(1, number_in(b, "first"));
  using verdict = base::receive_sequence<std::uint32_t>::verdict;
  if (in_.accept(from, channel, seq, first, base::seq_clock::now()) == verdict::take) deliver_batch(blob);
  // Taken, or a copy of what was (its ack was lost), or past a gap (what
  // is missing comes again first): the sender learns where this side is.
  acks_due_.emplace(from, channel);
  if (!acks_armed_) {  // one ack per channel for a burst, unless data going back takes it first
    acks_armed_ = true;
    ack_timer_->expires_after(ack_delay);
    ack_timer_->async_wait([this](const boost::system::error_code& e) {
      if (!e) flush_acks();
    });
  }
}

void data_relay::deliver_batch(const std::string& blob) {
  auto s = ipc::decode_batch(blob, [this](const ipc::record_view& r) {
    switch (r.kind) {
      case ipc::record_kind::tell:
      case ipc::record_kind::ask:
      case ipc::record_kind::reply:
      case ipc::record_kind::ask_failed:
      case ipc::record_kind::dead_letter:
      case ipc::record_kind::poison:
        return deliver(r);
      default:
        // Exit requests and notices are the local system's alone.
        log_line(TROUPE_LOG_WARN, {}, "dropped a relayed record of kind " + std::to_string(int(r.kind)));
    }
  });
  if (!s) log_line(TROUPE_LOG_WARN, {}, "dropped a malformed data frame from another system: " + s.err().message);
}

}  // namespace troupe::supervisor
