#include "supervisor/data_relay.hpp"

#include "ipc/commands.hpp"
#include "ipc/log.hpp"

namespace troupe::supervisor {

namespace cmd = ipc::cmd;
using ipc::log_line;

void data_relay::attach(convention& conv) {
  convention_ = &conv;
  peers_.handle(cmd::peer::data, [this](std::uint32_t, const json&, const std::string& blob) { on_data(blob); });
}

void data_relay::relay(const ipc::record_view& r) {
  if (actors_.find(r.to) != nullptr) return deliver(r);
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
  std::string frame;
  ipc::begin_batch(frame);
  ipc::append_record(frame, ipc::record_view{r.kind, 0, r.to, r.from, r.correlation, 0, r.type, r.payload});
  if (!peers_.send(to, cmd::peer::data, json::object(), frame))
    bounce(r, "system " + convention_->port_of(to) + " hosting " + r.to.to_string() + " is unreachable");
}

void data_relay::deliver(const ipc::record_view& r) {
  auto* rec = actors_.find(r.to);
  if (rec == nullptr) {
    const std::uint32_t host = convention_->host_of(r.to);
    if (host != 0 && host != ctx_.id) return relay(r);  // moved on
    return bounce(r, "no actor at " + r.to.to_string() + " (stopped)");
  }
  if (rec->state == actor_state::failed) return bounce(r, r.to.to_string() + " has failed: " + rec->last_reason);
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
  for (const auto& h : held_.take(a))
    relay(ipc::record_view{h.kind, 0, h.to, h.from, h.correlation, 0, h.type, h.payload});
}

void data_relay::drop_held(address a, const std::string& reason) {
  for (const auto& h : held_.take(a))
    bounce(ipc::record_view{h.kind, 0, h.to, h.from, h.correlation, 0, h.type, h.payload}, reason);
}

void data_relay::on_data(const std::string& blob) {
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
