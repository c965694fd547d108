#include "supervisor/gateway.hpp"

#include "ipc/curve.hpp"
#include "ipc/json_limits.hpp"
#include "ipc/log.hpp"

#include <prometheus/histogram.h>

namespace troupe::supervisor {

namespace asio = boost::asio;
using ipc::log_line;

namespace {

constexpr auto default_ask_timeout = std::chrono::milliseconds(5000);

/// A reply's payload as the client gets it: its JSON, or the bytes as a
/// string when they are not JSON. Too deeply nested is an error: the reply
/// is dumped again on its way out.
result<json> payload_as_json(std::string_view payload, std::size_t max_depth) {
  auto j = ipc::parse_json(payload, max_depth);
  if (j) return j;
  if (j.err().code == errc::limit) return j.err();
  return json(std::string(payload));
}

}  // namespace

status gateway::bind() {
  try {
    inbox_ = zmq::socket_t(ctx_.zmq, zmq::socket_type::pull);
    ipc::configure_data_socket(inbox_);
    ipc::require_zap(inbox_, ipc::worker_zap_domain);  // the system's user only (system.cpp)
    inbox_.bind(ctx_.endpoint_of("g.sock"));
  } catch (const zmq::error_t& e) {
    return make_error(
        errc::io, std::string("cannot bind the system's ipc sockets in ") + ctx_.run_dir.string() + ": " + e.what());
  }
  if (ctx_.opts.no_loss) link_.enable_acks(ctx_.endpoint_of("g.sock"));
  link_.before_flush = [this] { ipc::send_acks(ledger_, link_); };
  watch_ = std::make_unique<ipc::socket_watcher>(ctx_.io, inbox_, [this] { on_readable(); });
  return ok_v;
}

void gateway::stop() {
  if (watch_) watch_->stop();
  link_.before_flush = nullptr;
  if (ack_timer_) ack_timer_->cancel();
  ipc::send_acks(ledger_, link_);  // what waited goes now
  for (auto& [_, a] : asks_) a.timer->cancel();
}

// ---------------------------------------------------------------- client messages in

void gateway::cmd_send(const client_ref& c, const json& b, bool is_ask) {
  const auto target = b.value("target", std::string());
  auto* rec = actors_.find_target(target);
  if (rec != nullptr && elsewhere && elsewhere(rec->addr, rec->state == actor_state::stopping))
    rec = nullptr;  // leaving this system, or a stale instance: it goes where its actor runs
  if (rec == nullptr && route_elsewhere && route_elsewhere(c, is_ask ? "ask" : "tell", b, target)) return;
  if (rec == nullptr) {
    std::string what = target.empty()                                     ? "no target given"
                       : target.front() == '@' && !address::parse(target) ? "'" + target + "' is not a valid address"
                                                                          : "unknown address or name '" + target + "'";
    return port_.answer_error(c, what, errc::not_found);
  }
  if (rec->state == actor_state::failed)
    return port_.answer_error(c, rec->addr.to_string() + " has failed: " + rec->last_reason, errc::not_found);
  if (!b.contains("payload")) return port_.answer_error(c, "no payload given", errc::invalid_argument);
  const auto type = b.value("type", std::string("json"));
  const auto payload = b["payload"].dump();
  if (!ipc::record_fits(type.size(), payload.size()))
    return port_.answer_error(c, "message too large (type at most 65535 bytes, record at most 64 MiB)",
                              errc::invalid_argument);
  // An actor that is not running (starting, restarting, its worker wedged)
  // holds client messages in memory: only so many, or a client could fill it.
  if (held_.size(rec->addr) >= ctx_.opts.held_limit) {
    ++counts_.held_refused;
    return port_.answer_error(c,
                              std::to_string(held_.size(rec->addr)) + " messages already wait for " +
                                  rec->addr.to_string() + ", which is " + to_string(rec->state) +
                                  ": the most a system holds for one actor (start --max-held)",
                              errc::limit);
  }
  // A client's own tell is answered when queued (its delivery is this
  // system's no-loss promise). One another system forwarded is answered once
  // handled: its sender knows then it ran, or that it did not, and never
  // sends it twice.
  const bool forwarded_tell = !is_ask && c.via != 0 && ctx_.opts.no_loss;
  if (!is_ask && !forwarded_tell) {
    send(*rec, ipc::record_kind::tell, 0, type, payload);
    return port_.answer(c, json{{"address", rec->addr.to_string()}});
  }
  const std::uint64_t corr = next_correlation_++;
  auto timeout = std::chrono::milliseconds(b.value("timeout_ms", default_ask_timeout.count()));
  auto timer = std::make_unique<asio::steady_timer>(ctx_.io, timeout);
  timer->async_wait([this, corr, a = rec->addr, timeout, forwarded_tell](const boost::system::error_code& e) {
    if (e) return;
    if (forwarded_tell)
      return answer_ask(corr,
                        "tell to " + a.to_string() + " not handled within " + std::to_string(timeout.count()) +
                            " ms: it may or may not be",
                        errc::unknown);
    answer_ask(corr, "ask to " + a.to_string() + " timed out after " + std::to_string(timeout.count()) + " ms",
               errc::timeout);
  });
  asks_.emplace(corr, pending_ask{c, std::move(timer), forwarded_tell, rec->addr,
                                  ask_latency != nullptr ? std::chrono::steady_clock::now()
                                                         : std::chrono::steady_clock::time_point{}});
  if (forwarded_tell)
    send(*rec, ipc::record_kind::tell, corr, type, payload, ipc::cause{forwarded_tells, corr});
  else
    send(*rec, ipc::record_kind::ask, corr, type, payload);
}

void gateway::answer_ask(std::uint64_t corr, const std::string& text, errc code) {
  auto it = asks_.find(corr);
  if (it == asks_.end()) return;
  port_.answer_error(it->second.client, text, code);
  it->second.timer->cancel();
  asks_.erase(it);
}

void gateway::send(actor_record& rec, ipc::record_kind kind, std::uint64_t corr, const std::string& type,
                   const std::string& payload, ipc::cause c) {
  const auto* w = pool_.find(rec.worker);
  if (rec.state != actor_state::running || w == nullptr || w->st != worker_proc::state::ready) {
    held_.hold(rec.addr, held_record{kind, corr, type, payload, c});
    return;
  }
  ++counts_.out;
  link_.send(link_.connect(w->inbox), ipc::record_view{kind, 0, rec.addr, self(), corr, 0, type, payload}, c);
}

void gateway::hold(address a, ipc::record_kind kind, std::uint64_t corr, std::string type, std::string payload) {
  held_.hold(a, held_record{kind, corr, std::move(type), std::move(payload), {}});
}

void gateway::release_held(address a) {
  auto msgs = held_.take(a);
  if (msgs.empty()) return;
  auto* rec = actors_.find(a);
  if (rec == nullptr) return;
  for (auto& m : msgs) send(*rec, m.kind, m.correlation, m.type, m.payload, m.cause);
}

void gateway::fail_held(address a, const std::string& reason) {
  for (auto& m : held_.take(a)) {
    if (m.cause.channel == forwarded_tells) {
      tell_not_delivered(m.correlation, reason);
      continue;
    }
    if (m.kind != ipc::record_kind::ask) continue;
    if (auto g = asks_.find(m.correlation); g != asks_.end()) {
      port_.answer_error(g->second.client, reason, errc::not_found);
      asks_.erase(g);
    }
  }
}

void gateway::tell_handled(std::uint64_t corr) {
  auto it = asks_.find(corr);
  if (it == asks_.end() || !it->second.tell) return;
  const auto target = it->second.client;
  const address to = it->second.to;
  it->second.timer->cancel();
  asks_.erase(it);
  port_.answer(target, json{{"address", to.to_string()}});
}

void gateway::tell_not_delivered(std::uint64_t corr, const std::string& why) {
  auto it = asks_.find(corr);
  if (it == asks_.end() || !it->second.tell) return;
  auto body = ipc::error_reply(it->second.client.rid, why);
  body["code"] = to_string(errc::not_found);
  body["not_delivered"] = true;
  it->second.timer->cancel();
  const auto target = it->second.client;
  asks_.erase(it);
  port_.deliver(target, std::move(body));
}

// ---------------------------------------------------------------- records out of the data plane

void gateway::on_readable() {
  zmq::message_t frame;
  if (!inbox_.recv(frame, zmq::recv_flags::dontwait)) return;
  auto s = ipc::receive_frame(
      frame.to_string_view(), ctx_.opts.no_loss, link_, ledger_,
      [this](const ipc::record_view& r, ipc::cause c) {
        // Everything here is handled on the spot: acknowledged once the frame is read.
        ledger_.release(c);
        deliver(r);
      },
      // What the gateway sends causes nothing it must acknowledge in turn;
      // an acknowledged forwarded tell was handled.
      [this](ipc::cause c) {
        if (c.channel == forwarded_tells) tell_handled(c.entry);
      });
  if (!s) log_line(TROUPE_LOG_WARN, {}, "dropped malformed data frame on the gateway: " + s.err().message);
  acks_due();
}

void gateway::acks_due() {
  if (ack_armed_) return;
  ack_armed_ = true;
  if (!ack_timer_) ack_timer_ = std::make_unique<boost::asio::steady_timer>(ctx_.io);
  ack_timer_->expires_after(ack_delay);
  ack_timer_->async_wait([this](const boost::system::error_code& e) {
    ack_armed_ = false;
    if (!e) ipc::send_acks(ledger_, link_);  // nothing went meanwhile: on their own
  });
}

void gateway::deliver(const ipc::record_view& r) {
  // For an actor of another system (resolve sent the worker here).
  if (r.to != self()) {
    ++counts_.relayed;
    if (relay) relay(r);
    return;
  }
  ++counts_.in;
  if (r.kind == ipc::record_kind::dead_letter) {
    ++counts_.dead_letters;
    if (auto it = asks_.find(r.correlation); it != asks_.end() && it->second.tell)
      return tell_not_delivered(r.correlation, std::string(r.payload));
    log_line(TROUPE_LOG_WARN, {},
             "dead letter for a client message to " + r.from.to_string() + ": " + std::string(r.payload));
    return;
  }
  if (r.kind == ipc::record_kind::poison) {
    ++counts_.poison;
    auto parts = ipc::decode_poison(r.payload);
    log_line(TROUPE_LOG_WARN, {},
             "client message to " + r.from.to_string() +
                 " returned as poison: " + (parts ? std::string(parts->first) : parts.err().message));
    return;
  }
  if (r.kind != ipc::record_kind::reply && r.kind != ipc::record_kind::ask_failed) return;
  auto it = asks_.find(r.correlation);
  if (it == asks_.end()) return;  // answered after its timeout
  if (ask_latency != nullptr && it->second.started != std::chrono::steady_clock::time_point{})
    ask_latency->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.started).count());
  if (r.kind == ipc::record_kind::reply) {
    if (auto payload = payload_as_json(r.payload, ctx_.opts.max_json_depth))
      port_.answer(it->second.client,
                   json{{"payload", std::move(*payload)}, {"type", std::string(r.type)}, {"from", r.from.to_string()}});
    else
      port_.answer_error(it->second.client,
                         "the reply of " + r.from.to_string() + " is refused: " + payload.err().message, errc::limit);
  } else {
    port_.answer_error(it->second.client, std::string(r.payload), errc::not_found);
  }
  it->second.timer->cancel();
  asks_.erase(it);
}

// ---------------------------------------------------------------- a worker's death

std::vector<ipc::data_link::kept_batch> gateway::take_unacked(const std::string& inbox) {
  auto kept = link_.take_unacked(inbox);
  ledger_.forget_endpoint(inbox);
  return kept;
}

void gateway::resend(std::vector<ipc::data_link::kept_batch> kept, const ipc::handling_snapshot& last,
                     const std::string& how) {
  for (auto& batch : kept) {
    std::uint64_t channel_id = 0;
    auto s = ipc::decode_batch(*batch.frame, [&](const ipc::record_view& r) {
      if (r.kind == ipc::record_kind::channel) channel_id = r.correlation;
      if (r.seq == 0 || !batch.holds(r.seq) || batch.is_acked(r.seq)) return;
      if (r.kind != ipc::record_kind::tell && r.kind != ipc::record_kind::ask) return;
      const bool poisoned = last.handling && channel_id == last.origin.channel_id && r.seq == last.origin.seq;
      auto* rec = actors_.find(r.to);
      std::string failure;
      if (poisoned) {
        failure = "poison: " + r.to.to_string() + " died (" + how + ") while handling this message";
        ++counts_.poison;
      } else if (rec == nullptr)
        failure = "no actor at " + r.to.to_string() + " (stopped)";
      else if (rec->state == actor_state::failed)
        failure = r.to.to_string() + " has failed: " + rec->last_reason;
      const ipc::cause c = batch.cause_of(r.seq);
      if (failure.empty()) {
        send(*rec, r.kind, r.correlation, std::string(r.type), std::string(r.payload), c);
        return;
      }
      if (c.channel == forwarded_tells) {
        // Handled when it died: it may have run; else definitely not.
        if (poisoned)
          answer_ask(r.correlation, failure, errc::refused);
        else
          tell_not_delivered(r.correlation, failure);
        return;
      }
      if (r.kind == ipc::record_kind::tell) {
        log_line(TROUPE_LOG_WARN, {}, "client message to " + r.to.to_string() + " lost: " + failure);
        return;
      }
      answer_ask(r.correlation, failure, poisoned ? errc::refused : errc::not_found);
    });
    if (!s) log_line(TROUPE_LOG_ERROR, {}, "kept frame unreadable (a bug): " + s.err().message);
  }
}

}  // namespace troupe::supervisor
