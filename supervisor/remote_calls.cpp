#include "supervisor/remote_calls.hpp"

#include "ipc/commands.hpp"

#include <algorithm>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace cmd = ipc::cmd;

namespace {

constexpr auto default_ask_timeout = std::chrono::milliseconds(5000);

// Requests another system may forward here; anything else is refused.
// chgcap: the dashboard of one system changes another's capabilities.
bool forwardable(const std::string& command) {
  return command == cmd::client::ask || command == cmd::client::tell || command == cmd::client::kill ||
         command == cmd::client::spawn || command == cmd::client::move || command == cmd::client::chgcap;
}

}  // namespace

void remote_calls::attach(convention& conv) {
  convention_ = &conv;
  link_.handle(cmd::peer::call, [this](std::uint32_t from, const json& b, const std::string&) { on_call(from, b); });
  link_.handle(cmd::peer::result, [this](std::uint32_t, const json& b, const std::string&) { on_result(b); });
  port_.reply_elsewhere = [this](const client_ref& c, json body) {
    link_.send(c.via, cmd::peer::result, json{{"call", c.call}, {"reply", std::move(body)}});
  };
}

void remote_calls::stop() {
  for (auto& [_, pc] : calls_) pc.timer->cancel();
}

bool remote_calls::route(const client_ref& c, const std::string& command, const json& b, const std::string& target) {
  address a;
  location* l = convention_->find(target, a);
  if (l == nullptr) return false;
  const auto timeout = std::chrono::milliseconds(b.value("timeout_ms", default_ask_timeout.count()));
  if (l->ph == location::phase::placed) {
    if (l->system == ctx_.id) return false;  // here, or not yet known here: the local answer
    forward(c, l->system, command, b, timeout);
    return true;
  }
  if (command == cmd::client::kill && l->ph == location::phase::pending) {
    // Nothing runs: the leader forgets it (and its held requests fail).
    if (!convention_->leads()) {
      forward(c, convention_->leader(), std::string(cmd::client::kill), b, timeout);
      return true;
    }
    convention_->forget(a);
    port_.answer(c, json{{"address", a.to_string()}});
    return true;
  }
  // Moving or pending: held until it is placed, within a bound.
  if (held_.size(a) >= held_.limit()) {
    port_.answer_error(c,
                       "dead letter: " + a.to_string() + " is " + to_string(l->ph) + " (" + l->reason + ") and " +
                           std::to_string(held_.size(a)) + " requests already wait for it",
                       errc::unavailable);
    return true;
  }
  held_call h{c, command, b, next_call_++, nullptr};
  if (command == cmd::client::tell) {
    // A tell is accepted now and delivered once its actor runs again.
    port_.answer(c, json{{"address", a.to_string()}, {"held", true}});
    h.client = client_ref{};
  } else {
    // An ask (or kill) waits no longer than its own timeout.
    h.timer = std::make_shared<asio::steady_timer>(ctx_.io, timeout);
    h.timer->async_wait([this, a, id = h.id, timeout](const boost::system::error_code& e) {
      if (e) return;
      auto expired = held_.take_first(a, [id](const held_call& x) { return x.id == id; });
      if (!expired) return;
      const auto* now = convention_->at(a);
      port_.answer_error(
          expired->client,
          expired->command + " to " + a.to_string() + " timed out after " + std::to_string(timeout.count()) +
              " ms: it is " +
              (now == nullptr ? std::string("gone") : std::string(to_string(now->ph)) + " (" + now->reason + ")"),
          errc::timeout);
    });
  }
  held_.hold(a, std::move(h));
  return true;
}

void remote_calls::forward(const client_ref& c, std::uint32_t to, const std::string& command, const json& b,
                           std::chrono::milliseconds timeout) {
  const std::uint64_t id = next_call_++;
  call pc{c, to, command, b, std::make_unique<asio::steady_timer>(ctx_.io, timeout + std::chrono::seconds(2))};
  pc.timer->async_wait([this, id](const boost::system::error_code& e) {
    if (e) return;
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    // It may have been carried out: the caller must not take it for a failure.
    port_.answer_error(it->second.client,
                       "system " + convention_->port_of(it->second.system) + " did not answer '" + it->second.command +
                           "': it may or may not have been carried out",
                       errc::unknown);
    calls_.erase(it);
  });
  if (!link_.send(to, cmd::peer::call, json{{"call", id}, {"command", command}, {"body", b}})) {
    pc.timer->cancel();
    // Its system is gone: held until the leader places its actor again (or
    // the request times out).
    address a;
    if (auto* l = convention_->find(b.value("target", std::string()), a)) {
      l->ph = location::phase::moving;
      if (l->reason.empty()) l->reason = "system " + convention_->port_of(to) + " is unreachable";
      if (route(c, command, b, b.value("target", std::string()))) return;
    }
    return port_.answer_error(c,
                              "cannot reach system " + convention_->port_of(to) + ": " +
                                  (convention_->leads() ? "it is not connected" : convention_->leader_unreachable()),
                              errc::unavailable);
  }
  calls_.emplace(id, std::move(pc));
}

void remote_calls::on_call(std::uint32_t from, const json& b) {
  const auto id = b.value("call", std::uint64_t{0});
  const auto command = b.value("command", std::string());
  const client_ref c{"", json(id), from, id};
  if (!forwardable(command) || !b.contains("body") || !b["body"].is_object())
    return port_.answer_error(c, "'" + command + "' cannot be forwarded between systems", errc::invalid_argument);
  port_.dispatch(c, command, b["body"]);
}

void remote_calls::on_result(const json& b) {
  auto it = calls_.find(b.value("call", std::uint64_t{0}));
  if (it == calls_.end()) return;
  if (!b.contains("reply") || !b["reply"].is_object()) return;  // malformed: its timer answers
  auto pc = std::move(it->second);
  calls_.erase(it);
  pc.timer->cancel();
  json reply = b["reply"];
  // Moved away while the request travelled: it follows its actor (only
  // then: a handler's failure also answers not_found, and must not loop).
  address moved;
  auto* l = convention_->find(pc.body.value("target", std::string()), moved);
  const bool failed = !reply.value("ok", false);
  if (failed && reply.value("code", std::string()) == "not_found" && l != nullptr &&
      (l->ph != location::phase::placed || l->system != pc.system) &&
      route(pc.client, pc.command, pc.body, pc.body.value("target", std::string())))
    return;
  // The host says it did not deliver it and its actor is leaving it (fenced,
  // stopped for a move): held for the actor's next place, within the
  // request's own timeout. Never run twice: it was not run there.
  if (failed && reply.value("not_delivered", false) && l != nullptr && l->system == pc.system) {
    l->ph = location::phase::moving;
    if (l->reason.empty()) l->reason = "system " + convention_->port_of(pc.system) + " gave it up";
    if (route(pc.client, pc.command, pc.body, pc.body.value("target", std::string()))) return;
  }
  reply["rid"] = pc.client.rid;
  port_.deliver(pc.client, std::move(reply));
}

void remote_calls::release_held(address a) {
  for (auto& h : held_.take(a)) {
    if (h.timer) h.timer->cancel();
    port_.dispatch(h.client, h.command, h.body);
  }
}

void remote_calls::fail_held(address a, const std::string& reason) {
  for (auto& h : held_.take(a)) {
    if (h.timer) h.timer->cancel();
    port_.answer_error(h.client, reason, errc::not_found);
  }
}

void remote_calls::reroute(address a) {
  const location* l = convention_->at(a);
  if (l == nullptr) return;
  std::vector<std::uint64_t> stale;
  for (const auto& [id, pc] : calls_) {
    // Only requests to the actor's host; a move or spawn went to the leader.
    if (pc.command != cmd::client::ask && pc.command != cmd::client::tell && pc.command != cmd::client::kill) continue;
    address target;
    if (convention_->find(pc.body.value("target", std::string()), target) == nullptr || target != a) continue;
    // Only from a host that is gone: a live one answers what it received
    // (before its exit request), and sending it again would run it twice.
    if (convention_->gone(pc.system) && (l->ph != location::phase::placed || l->system != pc.system))
      stale.push_back(id);
  }
  // The host that took them is gone: they may have run there. Sending them
  // after the actor could run them twice; the caller is told it cannot know.
  for (auto id : stale) {
    auto pc = std::move(calls_.at(id));
    calls_.erase(id);
    pc.timer->cancel();
    port_.answer_error(pc.client,
                       "system " + convention_->port_of(pc.system) + " hosting " + a.to_string() + " is gone: '" +
                           pc.command + "' may or may not have been carried out",
                       errc::unknown);
  }
}

void remote_calls::system_lost(std::uint32_t system, const std::string& why) {
  // What it took and did not answer may have been carried out: sending it
  // again could run it twice, so the caller is told it cannot know.
  for (auto it = calls_.begin(); it != calls_.end();) {
    if (it->second.system != system) {
      ++it;
      continue;
    }
    port_.answer_error(it->second.client,
                       "system " + convention_->port_of(system) + " " + why + " before answering '" +
                           it->second.command + "': it may or may not have been carried out",
                       errc::unknown);
    it = calls_.erase(it);
  }
}

}  // namespace troupe::supervisor
