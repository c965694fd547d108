// supervisor/system_watches.cpp — watches: an actor asks to be told when
// another stops, is restarted or fails (Erlang's monitors, Thespian's
// ChildActorExited). The supervisor sees every one of those events, so it
// keeps the watches and sends the exit notices, from its gateway on the data
// path (docs/PROTOCOL.md §4.4).
#include "supervisor/system_impl.hpp"

namespace troupe::supervisor {

void system::on_watch_request(const worker_proc& w, const json& rid, const json& b, bool on) {
  const std::string what = on ? "watch" : "unwatch";
  const address watcher(b.value("watcher", std::uint64_t{0}));
  const address target(b.value("target", std::uint64_t{0}));
  const auto* rec = directory_.find(watcher);
  if (rec == nullptr || rec->worker != w.id)
    return reply_worker_error(w.identity, rid, what + ": " + watcher.to_string() + " is not an actor of this worker");
  if (!target.valid()) return reply_worker_error(w.identity, rid, what + ": no target address");
  if (!on) {
    watches_.remove(watcher, target);  // no watch: nothing to end
    return reply_worker(w.identity, rid, json::object());
  }
  reply_worker(w.identity, rid, json::object());
  // A target that cannot stop, restart or fail any more is answered at once,
  // so that a watcher never waits for a notice that cannot come.
  const auto* t = directory_.find(target);
  if (t == nullptr) return send_exit_notice(watcher, target, exit_event::stopped, "no actor at " + target.to_string());
  if (t->state == actor_state::failed) return send_exit_notice(watcher, target, exit_event::failed, t->last_reason);
  watches_.add(watcher, target);
}

void system::notify_watchers(address target, exit_event event, const std::string& reason) {
  if (event == exit_event::restarted) {
    for (address w : watches_.watchers_of(target)) send_exit_notice(w, target, event, reason);
    return;
  }
  watches_.end_watches_by(target);
  for (address w : watches_.end_watches_of(target))
    if (w != target) send_exit_notice(w, target, event, reason);  // itself: gone, nobody to tell
}

void system::send_exit_notice(address watcher, address target, exit_event event, const std::string& reason) {
  if (stopping_) return;  // every watcher is being stopped too
  auto* rec = directory_.find(watcher);
  if (rec == nullptr || rec->state == actor_state::failed) return;
  // The watched address travels in the correlation field: `from` is the
  // gateway, the only sender a worker accepts exit notices from.
  const held_message notice{ipc::record_kind::exited, target.value(), to_string(event), reason};
  auto w = workers_.find(rec->worker);
  if (w != workers_.end() && !w->second.child) {
    // Its worker died and is not running again yet: the notice waits, like
    // a client message, until the watcher runs again.
    held_[watcher].push_back(notice);
    return;
  }
  send_from_gateway(*rec, notice.kind, notice.correlation, notice.type, notice.payload);
}

}  // namespace troupe::supervisor
