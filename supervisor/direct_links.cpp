#include "supervisor/direct_links.hpp"

#include "ipc/commands.hpp"
#include "ipc/curve.hpp"
#include "ipc/log.hpp"

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace cmd = ipc::cmd;
using ipc::log_line;

namespace {
// Link requests kept waiting for one starting actor; past it, refused (the
// records go the supervisors' way, which holds them).
constexpr std::size_t waiting_limit = 1000;
// A worker bounds its direct links; past it, its records go the supervisors' way.
constexpr std::size_t max_peers_per_worker = 256;
// A direct link that carried nothing this long is closed (opened again on use).
constexpr auto idle_after = std::chrono::seconds(60);
constexpr auto sweep_every = std::chrono::milliseconds(100);

/// The host part of tcp://HOST:PORT.
std::string host_of_endpoint(const std::string& endpoint) {
  constexpr std::string_view scheme = "tcp://";
  if (!endpoint.starts_with(scheme)) return {};
  const auto colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon < scheme.size()) return {};
  return endpoint.substr(scheme.size(), colon - scheme.size());
}

std::uint64_t req_number(const json& b) {
  const auto it = b.find("req");
  if (it == b.end() || !it->is_string()) return 0;
  return std::strtoull(it->get_ref<const std::string&>().c_str(), nullptr, 10);
}
}  // namespace

void direct_links::attach(convention& conv) {
  convention_ = &conv;
  sweep_timer_ = std::make_unique<asio::steady_timer>(ctx_.io);
  pool_.direct_spec = [this]() -> json {
    const auto host = host_of_endpoint(peers_.endpoint());
    if (!enabled() || host.empty()) return nullptr;
    // A frame not acknowledged within the time a system may be silent
    // before it is declared lost is sent again (then backing off).
    const auto resend = std::max(std::chrono::milliseconds(500), ctx_.opts.member_timeout);
    return json{{"host", host},
                {"resend_ms", resend.count()},
                {"max_peers", max_peers_per_worker},
                {"idle_ms", std::chrono::duration_cast<std::chrono::milliseconds>(idle_after).count()}};
  };
  peers_.handle(cmd::peer::link, [this](std::uint32_t from, const json& b, const std::string&) { on_link(from, b); });
  peers_.handle(cmd::peer::linked,
                [this](std::uint32_t from, const json& b, const std::string&) { on_linked(from, b); });
  peers_.handle(cmd::peer::link_refused, [this](std::uint32_t from, const json& b, const std::string&) {
    const auto req = req_number(b);
    if (auto it = asking_.find(req); it != asking_.end() && it->second.system == from) fall_back(req);
  });
  peers_.handle(cmd::peer::worker_died,
                [this](std::uint32_t from, const json& b, const std::string&) { on_worker_died(from, b); });
  pool_.handle(cmd::worker::admitted, [this](worker_proc& w, const json&, const json& b) { on_admitted(w, b); });
}

void direct_links::stop() {
  if (sweep_timer_) sweep_timer_->cancel();
  for (auto& [_, a] : asking_)
    if (a.timer) a.timer->cancel();
}

std::size_t direct_links::remote_inboxes() const {
  std::size_t n = 0;
  for (const auto& [_, inboxes] : remote_) n += inboxes.size();
  return n;
}

// ---------------------------------------------------------------- the asking side

void direct_links::resolve(worker_proc& w, const json& rid, address a, std::uint32_t host) {
  const auto* l = convention_->at(a);
  // Moving or pending: the gateway holds its records until it runs again.
  if (!enabled() || w.direct_inbox.empty() || convention_->gone(host) ||
      (l != nullptr && l->ph != location::phase::placed)) {
    ++counts_.fallbacks;
    return pool_.reply(w, rid, json{{"endpoint", gateway_endpoint()}});
  }
  const std::uint64_t req = next_req_++;
  json body{{"req", std::to_string(req)}, {"address", a.value()}, {"endpoint", w.direct_inbox}, {"key", w.direct_key}};
  if (!peers_.send(host, cmd::peer::link, std::move(body))) {
    ++counts_.fallbacks;
    return pool_.reply(w, rid, json{{"endpoint", gateway_endpoint()}});
  }
  auto& pending = asking_[req];
  pending = asking{w.id, w.inbox, rid, host, std::make_unique<asio::steady_timer>(ctx_.io)};
  // A system of an earlier build ignores `link`; one that is lost never
  // answers: the records then go the supervisors' way.
  pending.timer->expires_after(std::max(std::chrono::milliseconds(500), ctx_.opts.member_timeout));
  pending.timer->async_wait([this, req](const boost::system::error_code& ec) {
    if (!ec) fall_back(req);
  });
}

void direct_links::fall_back(std::uint64_t req) {
  auto it = asking_.find(req);
  if (it == asking_.end()) return;
  auto pending = std::move(it->second);
  asking_.erase(it);
  if (pending.timer) pending.timer->cancel();
  ++counts_.fallbacks;
  auto* w = pool_.find(pending.worker);
  if (w == nullptr || w->inbox != pending.inbox) return;  // that process is gone: nobody to answer
  pool_.reply(*w, pending.rid, json{{"endpoint", gateway_endpoint()}});
}

void direct_links::on_linked(std::uint32_t from, const json& b) {
  const auto req = req_number(b);
  auto it = asking_.find(req);
  if (it == asking_.end() || it->second.system != from) return;  // answered already (a timeout)
  const auto endpoint = b.value("endpoint", std::string());
  const auto key = b.value("key", std::string());
  if (!endpoint.starts_with("tcp://") || !ipc::valid_curve_key(key)) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed 'linked' from system " + convention_->port_of(from));
    return fall_back(req);
  }
  auto pending = std::move(it->second);
  asking_.erase(it);
  pending.timer->cancel();
  auto* w = pool_.find(pending.worker);
  if (w == nullptr || w->inbox != pending.inbox || w->st != worker_proc::state::ready) return;
  // Admitted before the answer (one control pipe, in order): the worker
  // takes the other's connections (its acks, its records) from then on.
  pool_.send(*w, cmd::supervisor::admit, json{{"endpoint", endpoint}, {"key", key}});
  pool_.reply(*w, pending.rid, json{{"endpoint", endpoint}, {"server_key", key}});
  remote_[from][endpoint] = key;
  worker_systems_[w->id].insert(from);
  ++counts_.linked;
  arm_sweep();
}

// ---------------------------------------------------------------- the hosting side

void direct_links::on_link(std::uint32_t from, const json& b) {
  const auto req_it = b.find("req");
  if (req_it == b.end() || !req_it->is_string()) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed 'link' from system " + convention_->port_of(from));
    return;
  }
  request r{from, req_it->get<std::string>(), b.value("endpoint", std::string()), b.value("key", std::string())};
  const address a(b.value("address", std::uint64_t{0}));
  if (!r.endpoint.starts_with("tcp://") || !ipc::valid_curve_key(r.key) || !a.valid())
    return refuse(r, "malformed link request");
  if (!enabled()) return refuse(r, "direct links are off on this system");
  try_link(std::move(r), a);
}

void direct_links::try_link(request r, address a) {
  auto* rec = actors_.find(a);
  if (rec == nullptr || rec->state == actor_state::failed || rec->state == actor_state::stopping ||
      convention_->placed_elsewhere(a))
    return refuse(r, "no actor at " + a.to_string() + " here");
  auto* w = pool_.find(rec->worker);
  if (rec->state == actor_state::starting || w == nullptr || w->st != worker_proc::state::ready) {
    auto& list = waiting_run_[a];
    if (list.size() >= waiting_limit) return refuse(r, a.to_string() + " is not running");
    list.push_back(std::move(r));
    return;
  }
  if (w->direct_inbox.empty()) return refuse(r, "the worker of " + a.to_string() + " has no tcp inbox");
  const std::uint64_t ref = next_ref_++;
  pool_.send(*w, cmd::supervisor::admit, json{{"endpoint", r.endpoint}, {"key", r.key}, {"ref", ref}});
  admitting_.emplace(ref, admitting{std::move(r), w->id, w->inbox});
}

void direct_links::refuse(const request& r, const std::string& why) {
  peers_.send(r.system, cmd::peer::link_refused, json{{"req", r.req}, {"reason", why}});
}

void direct_links::on_admitted(worker_proc& w, const json& b) {
  const auto ref = b.find("ref");
  if (ref == b.end() || !ref->is_number_unsigned()) return;  // an asker's admit: nothing waits
  auto it = admitting_.find(ref->get<std::uint64_t>());
  if (it == admitting_.end()) return;
  auto entry = std::move(it->second);
  admitting_.erase(it);
  if (entry.worker != w.id || entry.inbox != w.inbox || w.direct_inbox.empty()) return;
  peers_.send(entry.r.system, cmd::peer::linked,
              json{{"req", entry.r.req}, {"endpoint", w.direct_inbox}, {"key", w.direct_key}});
  remote_[entry.r.system][entry.r.endpoint] = entry.r.key;
  worker_systems_[w.id].insert(entry.r.system);
  ++counts_.hosted;
  arm_sweep();
}

void direct_links::running(address a) {
  auto it = waiting_run_.find(a);
  if (it == waiting_run_.end()) return;
  auto list = std::move(it->second);
  waiting_run_.erase(it);
  for (auto& r : list) try_link(std::move(r), a);
}

void direct_links::not_here(address a) {
  auto it = waiting_run_.find(a);
  if (it == waiting_run_.end()) return;
  auto list = std::move(it->second);
  waiting_run_.erase(it);
  for (const auto& r : list) refuse(r, "no actor at " + a.to_string() + " here");
}

// ---------------------------------------------------------------- deaths

void direct_links::worker_exited(worker_proc& w, const ipc::handling_snapshot& last, const std::string& how) {
  auto systems = worker_systems_.find(w.id);
  if (systems != worker_systems_.end() && !w.direct_inbox.empty()) {
    json body{{"inbox", w.direct_inbox}, {"key", w.direct_key}, {"reason", "died (" + how + ")"}};
    if (last.handling && last.origin.channel_id != 0) {
      body["channel"] = last.origin.channel_id;
      body["seq"] = last.origin.seq;
    }
    for (auto system : systems->second) peers_.send(system, cmd::peer::worker_died, body);
  }
  if (systems != worker_systems_.end()) worker_systems_.erase(systems);
  // Never handed out again: the next process binds another.
  w.direct_inbox.clear();
  w.direct_key.clear();
}

void direct_links::on_worker_died(std::uint32_t from, const json& b) {
  const auto inbox = b.value("inbox", std::string());
  auto known = remote_.find(from);
  if (known == remote_.end() || known->second.count(inbox) == 0) return;  // none of its workers knew it
  json body{
      {"inbox", inbox}, {"key", known->second[inbox]}, {"reason", b.value("reason", std::string("its worker died"))}};
  const auto channel = b.find("channel");
  const auto seq = b.find("seq");
  if (channel != b.end() && channel->is_number_unsigned() && seq != b.end() && seq->is_number_unsigned()) {
    body["channel"] = *channel;
    body["seq"] = *seq;
  }
  known->second.erase(inbox);
  if (known->second.empty()) remote_.erase(known);
  announce(body);
}

void direct_links::announce(const json& peer_died) {
  for (auto& [_, w] : pool_.all())
    if (w.st == worker_proc::state::assigned || w.st == worker_proc::state::ready)
      pool_.send(w, cmd::supervisor::peer_died, peer_died);
}

void direct_links::arm_sweep() {
  if (sweep_armed_ || ctx_.stopping) return;
  sweep_armed_ = true;
  sweep_timer_->expires_after(sweep_every);
  sweep_timer_->async_wait([this](const boost::system::error_code& ec) {
    sweep_armed_ = false;
    if (!ec) sweep();
  });
}

void direct_links::sweep() {
  std::vector<std::uint32_t> lost;
  for (const auto& [system, _] : remote_)
    if (convention_->gone(system)) lost.push_back(system);
  for (auto system : lost) {
    // What its workers had not acknowledged goes again, resolved anew: by
    // the supervisors' way now (§5.9), which knows where its actors go.
    auto inboxes = std::move(remote_.at(system));
    remote_.erase(system);
    log_line(TROUPE_LOG_INFO, {},
             "system " + convention_->port_of(system) + " is lost: " + std::to_string(inboxes.size()) +
                 " direct links to its workers are closed");
    for (const auto& [inbox, key] : inboxes)
      announce(json{{"inbox", inbox}, {"key", key}, {"reason", "its system is lost"}});
    for (auto& [_, systems] : worker_systems_) systems.erase(system);
  }
  if (!remote_.empty()) arm_sweep();
}

}  // namespace troupe::supervisor
