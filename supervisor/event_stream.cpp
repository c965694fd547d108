#include "supervisor/event_stream.hpp"

#include "base/hex.hpp"
#include "ipc/commands.hpp"
#include "ipc/log.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace cmd = ipc::cmd;
using ipc::log_line;

namespace {

json batch_json(const std::vector<event>& events) {
  json out = json::array();
  for (const auto& e : events) out.push_back(to_json(e));
  return out;
}

}  // namespace

event_stream::event_stream(system_context& ctx, client_port& port, const directory& actors, const package_set& packages)
    : ctx_(ctx), port_(port), actors_(actors), packages_(packages), ring_(ring_size), heartbeat_timer_(ctx.io) {
  ring_.on_record([this](const event&) {
    if (!subs_.empty()) schedule_flush();
  });
}

void event_stream::register_handlers() {
  port_.handle(cmd::client::events, [this](const client_ref& c, const json& b) { cmd_events(c, b); });
}

// ---------------------------------------------------------------- recording

void event_stream::fill_package(event& e, const std::string& package_id) const {
  e.package_id = package_id;
  if (const auto* p = packages_.find(package_id)) {
    e.package = p->m.package;
    e.version = p->m.version.text;
  }
}

void event_stream::actor_event(event_kind kind, address a, const std::string& reason) {
  event e;
  e.kind = kind;
  e.addr = a;
  e.reason = reason;
  if (const auto* rec = actors_.find(a)) {
    e.name = rec->name;
    e.type = rec->type;
    e.worker = rec->worker;
    fill_package(e, rec->package_id);
  }
  ring_.record(std::move(e));
}

void event_stream::actor_gone(const supervisor::actor_gone& g) {
  if (g.failed) return;  // actor_failed told it already
  event e;
  e.kind = event_kind::actor_stopped;
  e.addr = g.addr;
  e.name = g.name;
  e.type = g.type;
  e.reason = g.reason;
  fill_package(e, g.package_id);
  ring_.record(std::move(e));
}

void event_stream::worker_exited(const supervisor::worker_exited& w) {
  event e;
  e.kind = event_kind::worker_exited;
  e.worker = w.worker;
  e.pid = w.pid;
  e.signal = w.signal;
  e.exit_code = w.exit_code;
  e.expected = w.expected;
  e.reason = w.how;
  if (!w.package_id.empty()) fill_package(e, w.package_id);
  ring_.record(std::move(e));
}

// ---------------------------------------------------------------- the command

void event_stream::cmd_events(const client_ref& c, const json& b) {
  if (b.value("unsubscribe", false)) {
    std::size_t n = 0;
    for (auto it = subs_.begin(); it != subs_.end();) {
      if (it->client.identity == c.identity && it->client.local == c.local && it->client.via == 0) {
        end(*it, "unsubscribed");
        it = subs_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return port_.answer(c, json{{"unsubscribed", n}});
  }
  const std::uint64_t since = b.value("since", std::uint64_t{0});
  const bool follow = b.value("follow", false);
  if (follow && c.via != 0)
    return port_.answer_error(c, "events: follow is served only to a client of the system itself",
                              errc::invalid_argument);
  if (follow && subs_.size() >= ctx_.opts.max_event_subscribers)
    return port_.answer_error(c,
                              "events: " + std::to_string(subs_.size()) +
                                  " clients follow the events already, the most this system serves (start "
                                  "--max-event-subscribers)",
                              errc::limit);
  const std::size_t max =
      follow ? batch_events : std::clamp<std::size_t>(b.value("max", answer_events), 1, answer_events);
  auto s = ring_.since(since, max);
  // Where a follower goes on from; a number of another run (above
  // last_seq) follows from now.
  const std::uint64_t up_to = s.events.empty() ? ring_.last_seq() : s.events.back().seq;
  json answer{{"events", batch_json(s.events)}, {"missed", s.missed},
              {"first_seq", ring_.first_seq()}, {"last_seq", ring_.last_seq()},
              {"system", base::hex32(ctx_.id)}, {"following", follow}};
  if (!follow) {
    answer["more"] = up_to < ring_.last_seq();
    return port_.answer(c, std::move(answer));
  }
  answer["heartbeat_ms"] = heartbeat.count();
  port_.answer(c, std::move(answer));
  subs_.push_back(subscriber{c, up_to, 0, std::chrono::steady_clock::now()});
  log_line(TROUPE_LOG_INFO, {}, "a client follows the events (" + std::to_string(subs_.size()) + " now)");
  if (subs_.back().sent_up_to < ring_.last_seq()) schedule_flush();
  arm_heartbeat();
}

// ---------------------------------------------------------------- pushing

void event_stream::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Once per loop turn: everything recorded meanwhile leaves in one batch.
  asio::post(ctx_.io, [this] {
    flush_scheduled_ = false;
    flush();
  });
}

void event_stream::flush() {
  for (auto it = subs_.begin(); it != subs_.end();) {
    if (push_to(*it, false))
      ++it;
    else
      it = subs_.erase(it);
  }
}

bool event_stream::push_to(subscriber& s, bool heartbeat_due) {
  // A few batches a turn: a backlog of the whole ring leaves over several
  // turns rather than holding the loop.
  for (int batches = 0; batches < 4; ++batches) {
    const bool behind = s.sent_up_to < ring_.last_seq();
    if (!behind && !(heartbeat_due && batches == 0)) return true;
    auto slice = ring_.since(s.sent_up_to, batch_events);
    s.missed += slice.missed;  // fell out of the ring before it could leave
    json body = ipc::ok_reply(s.client.rid, json{{"events", batch_json(slice.events)}, {"missed", s.missed}});
    if (slice.events.empty()) body["heartbeat"] = true;
    const std::uint64_t up_to = slice.events.empty() ? s.sent_up_to : slice.events.back().seq;
    switch (port_.push(s.client, body)) {
      case client_port::push_result::sent:
        s.missed = 0;
        s.last_message = std::chrono::steady_clock::now();
        break;
      case client_port::push_result::full:
        // Its socket holds as much as it may (HWM): these are dropped, and
        // its next message says how many.
        s.missed += slice.events.size();
        dropped_ += slice.events.size();
        s.sent_up_to = up_to;
        return true;
      case client_port::push_result::gone:
        log_line(TROUPE_LOG_INFO, {}, "an events client went away (" + std::to_string(subs_.size() - 1) + " follow)");
        return false;
    }
    s.sent_up_to = up_to;
    if (slice.events.empty()) return true;
  }
  schedule_flush();  // more next turn
  return true;
}

void event_stream::end(subscriber& s, const std::string& why) {
  json body = ipc::ok_reply(s.client.rid, json{{"events", json::array()}, {"missed", s.missed}, {"end", why}});
  (void)port_.push(s.client, body);
}

void event_stream::arm_heartbeat() {
  if (heartbeat_armed_ || subs_.empty()) return;
  heartbeat_armed_ = true;
  heartbeat_timer_.expires_after(heartbeat / 2);
  heartbeat_timer_.async_wait([this](const boost::system::error_code& e) {
    heartbeat_armed_ = false;
    if (e) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto it = subs_.begin(); it != subs_.end();) {
      if (now - it->last_message < heartbeat || push_to(*it, true))
        ++it;
      else
        it = subs_.erase(it);
    }
    arm_heartbeat();
  });
}

void event_stream::stop() {
  heartbeat_timer_.cancel();
  flush();  // what was recorded up to now, then the end
  for (auto& s : subs_) end(s, "the system is stopping");
  subs_.clear();
}

}  // namespace troupe::supervisor
