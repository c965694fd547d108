#include "supervisor/worker_stats.hpp"

#include "ipc/commands.hpp"
#include "ipc/handling_marker.hpp"
#include "ipc/log.hpp"
#include "supervisor/gateway.hpp"
#include "supervisor/metrics.hpp"

#include "base/hex.hpp"

#include <boost/asio/post.hpp>

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>

namespace troupe::supervisor {

namespace cmd = ipc::cmd;
using labels_t = std::vector<std::pair<std::string, std::string>>;

bool matches_any(const std::vector<std::string>& globs, const std::string& name) {
  return std::any_of(globs.begin(), globs.end(),
                     [&name](const std::string& g) { return ::fnmatch(g.c_str(), name.c_str(), 0) == 0; });
}

void named_counter::update(address a, std::uint64_t raw) {
  // Another actor under the name, or its worker started again: what was
  // counted so far stays in the offset.
  if (a != addr_ || raw < last_) {
    offset_ += last_;
    addr_ = a;
  }
  last_ = raw;
}

namespace {

/// An unsigned field of a worker's answer, 0 when absent or of another type
/// (a worker is trusted to be ours, not to be right).
std::uint64_t unsigned_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

json or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

}  // namespace

worker_stats::worker_stats(system_context& ctx, client_port& port, worker_pool& pool, directory& actors,
                           const package_set& packages, const ipc::data_link& link, const gateway& gate,
                           std::chrono::steady_clock::time_point started)
    : ctx_(ctx),
      port_(port),
      pool_(pool),
      actors_(actors),
      packages_(packages),
      link_(link),
      gate_(gate),
      started_(started) {}

void worker_stats::register_handlers() {
  port_.handle(cmd::client::top, [this](const client_ref& c, const json& b) { cmd_top(c, b); });
  pool_.handle(cmd::worker::stats, [this](worker_proc& w, const json&, const json& b) { on_stats(w, b); });
  if (ctx_.events != nullptr)
    ctx_.events->on_record([this](const event& e) {
      if (e.kind == event_kind::actor_restarted) {
        if (restarts_.size() < recent_cap)
          restarts_.push_back(e);
        else
          restarts_[restarts_next_] = e;
        restarts_next_ = (restarts_next_ + 1) % recent_cap;
      } else if (e.kind == event_kind::worker_exited && !e.expected) {
        crashes_.push_back(e.time_ms);
        if (crashes_.size() > recent_cap) crashes_.pop_front();
      }
    });
}

void worker_stats::stop() {
  stopped_ = true;
  if (named_timer_) named_timer_->cancel();
  // Whoever waits gets what came so far.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, _] : pending_) ids.push_back(id);
  for (auto id : ids) finish(id);
}

bool worker_stats::gather(json body, std::function<void(answers)> done) {
  if (pending_.size() >= max_pending) return false;
  const std::uint64_t id = next_id_++;
  gathering& g = pending_[id];
  g.done = std::move(done);
  body["rid"] = id;
  for (auto& [wid, w] : pool_.all())
    if (w.st == worker_proc::state::ready && w.child) {
      g.waiting.emplace(wid, w.incarnation);
      pool_.send(w, cmd::supervisor::stats, body);
    }
  if (g.waiting.empty()) {
    // Answered on the next turn, as every other way.
    boost::asio::post(ctx_.io, [this, id] { finish(id); });
    return true;
  }
  g.deadline = std::make_unique<boost::asio::steady_timer>(ctx_.io, answer_wait);
  g.deadline->async_wait([this, id](const boost::system::error_code& ec) {
    if (!ec) finish(id);
  });
  return true;
}

void worker_stats::on_stats(worker_proc& w, const json& b) {
  const auto rid = b.find("rid");
  if (rid == b.end() || !rid->is_number_unsigned()) return;
  auto it = pending_.find(rid->get<std::uint64_t>());
  if (it == pending_.end()) return;  // too late: answered without it
  auto& g = it->second;
  auto asked = g.waiting.find(w.id);
  if (asked == g.waiting.end() || asked->second != w.incarnation) return;
  g.waiting.erase(asked);
  g.got[w.id] = b;
  if (g.waiting.empty()) finish(it->first);
}

void worker_stats::finish(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  gathering g = std::move(it->second);
  pending_.erase(it);
  if (g.deadline) g.deadline->cancel();
  g.done(std::move(g.got));
}

// ---------------------------------------------------------------- top

void worker_stats::cmd_top(const client_ref& c, const json& b) {
  std::uint64_t rows = 10, window = 1000;
  if (auto a = b.find("actors"); a != b.end()) {
    if (!a->is_number_unsigned() || a->get<std::uint64_t>() > 100)
      return port_.answer_error(c, "top: actors must be an integer from 0 to 100", errc::invalid_argument);
    rows = a->get<std::uint64_t>();
  }
  if (auto w = b.find("window_ms"); w != b.end()) {
    if (!w->is_number_unsigned() || w->get<std::uint64_t>() < 100 || w->get<std::uint64_t>() > 3600000)
      return port_.answer_error(c, "top: window_ms must be an integer from 100 to 3600000", errc::invalid_argument);
    window = w->get<std::uint64_t>();
  }
  const bool asked = gather(json{{"top", rows}, {"window_ms", window}}, [this, c, rows](answers got) {
    port_.answer(c, top_answer(got, static_cast<std::size_t>(rows)));
  });
  if (!asked)
    port_.answer_error(c, "top: " + std::to_string(max_pending) + " requests are being answered already; try again",
                       errc::limit);
}

json worker_stats::top_answer(const answers& got, std::size_t rows) const {
  const auto now = std::chrono::steady_clock::now();
  const std::int64_t now_ms = event_ring::system_now_ms();
  auto usage_json = [](int pid) {
    const auto u = read_process_usage(pid);
    return json{{"cpu_seconds", u.cpu_seconds},
                {"rss_bytes", static_cast<std::uint64_t>(u.rss_bytes)},
                {"open_fds", static_cast<std::uint64_t>(u.open_fds)}};
  };
  json out{{"system", base::hex32(ctx_.id)},
           {"port", ctx_.opts.port},
           {"time_ms", now_ms},
           {"uptime_ms", std::chrono::duration_cast<std::chrono::milliseconds>(now - started_).count()}};
  json daemon = usage_json(static_cast<int>(::getpid()));
  daemon["pid"] = ::getpid();
  out["daemon"] = daemon;

  // Actors by worker, in one pass.
  std::map<std::uint32_t, std::size_t> hosted;
  for (const auto* a : actors_.all()) ++hosted[a->worker];

  json workers = json::array();
  struct busy {
    address addr;
    std::uint32_t worker;
    std::uint64_t handled, recent, window_ms;
    double rate;
  };
  std::vector<busy> busiest;
  for (const auto& [id, w] : pool_.all()) {
    json row{{"worker", id}, {"state", to_string(w.st)}, {"dedicated", w.dedicated}, {"python", w.python}};
    const auto* p = w.package_id.empty() ? nullptr : packages_.find(w.package_id);
    row["package"] = p ? json(p->m.package) : json(nullptr);
    row["version"] = p ? json(p->m.version.text) : json(nullptr);
    row["package_id"] = or_null(w.package_id);
    auto h = hosted.find(id);
    row["actors"] = h == hosted.end() ? 0 : h->second;
    const int pid = w.child ? w.child->pid() : 0;
    row["pid"] = pid > 0 ? json(pid) : json(nullptr);
    row.update(usage_json(pid));
    std::uint64_t handled = 0, sent = 0;
    if (pid > 0 && !w.package_id.empty()) {
      const auto counts = ipc::read_handling_file(pool_.marker_of(w));
      handled = counts.handled;
      sent = counts.sent;
    }
    row["handled"] = handled;
    row["sent"] = sent;
    std::uint64_t unacked = 0, queued_batches = 0;
    json oldest = nullptr;
    if (!w.package_id.empty()) {
      const auto bl = link_.backlog_of(w.inbox);
      unacked = bl.unacked_records;
      queued_batches = bl.queued_batches;
      if (bl.oldest) oldest = std::chrono::duration_cast<std::chrono::milliseconds>(now - *bl.oldest).count();
    }
    row["unacked"] = unacked;
    row["queued_batches"] = queued_batches;
    row["oldest_unacked_ms"] = oldest;
    auto a = got.find(id);
    row["answered"] = a != got.end();
    if (a != got.end()) {
      const json& s = a->second;
      const std::uint64_t window = unsigned_of(s, "window_ms");
      row["window_ms"] = window;
      row["queued"] = unsigned_of(s, "queued");
      if (auto list = s.find("busiest"); list != s.end() && list->is_array()) {
        std::size_t n = 0;
        for (const auto& r : *list) {
          if (++n > 100 || !r.is_object()) break;
          const address addr(unsigned_of(r, "address"));
          if (!addr.valid()) continue;
          const auto recent = unsigned_of(r, "recent");
          busiest.push_back({addr, id, unsigned_of(r, "handled"), recent, window,
                             window > 0 ? static_cast<double>(recent) * 1000.0 / static_cast<double>(window) : 0.0});
        }
      }
    } else {
      row["window_ms"] = nullptr;
      row["queued"] = nullptr;
    }
    workers.push_back(std::move(row));
  }
  out["workers"] = std::move(workers);

  std::stable_sort(busiest.begin(), busiest.end(), [](const busy& x, const busy& y) {
    if (x.rate != y.rate) return x.rate > y.rate;
    return x.handled > y.handled;
  });
  json actors = json::array();
  for (const auto& b : busiest) {
    if (actors.size() >= rows) break;
    const auto* rec = actors_.find(b.addr);
    if (rec == nullptr) continue;  // gone since its worker answered
    const auto* p = packages_.find(rec->package_id);
    actors.push_back(json{{"address", b.addr.to_string()},
                          {"name", or_null(rec->name)},
                          {"type", rec->type},
                          {"package", p ? json(p->m.package) : json(nullptr)},
                          {"version", p ? json(p->m.version.text) : json(nullptr)},
                          {"worker", b.worker},
                          {"state", to_string(rec->state)},
                          {"handled", b.handled},
                          {"recent", b.recent},
                          {"window_ms", b.window_ms},
                          {"restarts", rec->restarts}});
  }
  out["busiest"] = std::move(actors);

  const std::int64_t minute_ago = now_ms - 60000;
  json recent = json::array();
  std::uint64_t restarts = 0;
  for (std::size_t i = 0; i < restarts_.size(); ++i) {  // newest first
    const event& e = restarts_[(restarts_next_ + recent_cap - 1 - i) % recent_cap];
    if (e.time_ms < minute_ago) break;
    ++restarts;
    if (recent.size() < 10) recent.push_back(to_json(e));
  }
  std::uint64_t crashes = 0;
  for (auto it = crashes_.rbegin(); it != crashes_.rend() && *it >= minute_ago; ++it) ++crashes;
  out["restarts_last_minute"] = restarts;
  out["worker_crashes_last_minute"] = crashes;
  out["recent_restarts"] = std::move(recent);
  const auto& g = gate_.counts();
  out["gateway"] = json{{"in", g.in}, {"out", g.out}};
  out["actors_total"] = actors_.size();
  return out;
}

// ---------------------------------------------------------------- named actors (metrics)

void worker_stats::start_named() {
  if (ctx_.opts.metrics.empty() || ctx_.opts.metrics_actors.empty()) return;
  named_timer_ = std::make_unique<boost::asio::steady_timer>(ctx_.io);
  read_named();
}

void worker_stats::read_named() {
  if (stopped_ || ctx_.stopping) return;
  // The names this reading covers: the first metrics_actors_max matching,
  // in name order (a bound on the series, whatever names actors take).
  std::map<std::string, address> names;
  for (const auto* a : actors_.all())
    if (!a->name.empty() && matches_any(ctx_.opts.metrics_actors, a->name)) names.emplace(a->name, a->addr);
  while (names.size() > ctx_.opts.metrics_actors_max) names.erase(std::prev(names.end()));
  for (auto it = named_.begin(); it != named_.end();) it = names.count(it->first) ? std::next(it) : named_.erase(it);
  json addresses = json::array();
  for (const auto& [name, a] : names) {
    named_[name].addr = a;
    addresses.push_back(a.value());
  }
  auto again = [this] {
    if (stopped_ || ctx_.stopping) return;
    named_timer_->expires_after(named_period);
    named_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) read_named();
    });
  };
  if (addresses.empty() || reading_) return again();
  reading_ = true;
  const bool asked = gather(json{{"addresses", std::move(addresses)}}, [this, again](answers got) {
    reading_ = false;
    std::map<address, std::pair<std::uint64_t, std::uint64_t>> counts;  // handled, queued
    for (const auto& [_, s] : got)
      if (auto t = s.find("tracked"); t != s.end() && t->is_array())
        for (const auto& r : *t)
          if (r.is_object())
            counts[address(unsigned_of(r, "address"))] = {unsigned_of(r, "handled"), unsigned_of(r, "queued")};
    for (auto& [name, n] : named_) {
      auto c = counts.find(n.addr);
      n.seen = c != counts.end();
      if (!n.seen) continue;
      n.handled.update(n.addr, c->second.first);
      n.queued = c->second.second;
    }
    again();
  });
  if (!asked) {
    reading_ = false;
    again();
  }
}

void worker_stats::add_named_families(std::vector<prometheus::MetricFamily>& out) const {
  if (ctx_.opts.metrics_actors.empty()) return;
  family_builder handled("troupe_named_actor_messages_handled_total",
                         "Messages a named actor (--metrics-actors) handled, read from its worker every second; "
                         "kept across its worker's restarts.",
                         prometheus::MetricType::Counter);
  family_builder queued("troupe_named_actor_mailbox",
                        "Messages waiting for a named actor in its worker's queue at the last reading.",
                        prometheus::MetricType::Gauge);
  family_builder restarts("troupe_named_actor_restarts_total",
                          "Restarts of the actor that holds the name now (troupe actors' RESTARTS).",
                          prometheus::MetricType::Counter);
  family_builder running("troupe_named_actor_running", "1 while the named actor runs, else 0.",
                         prometheus::MetricType::Gauge);
  for (const auto& [name, n] : named_) {
    const labels_t l{{"actor", name}};
    handled.set(l, static_cast<double>(n.handled.value()));
    queued.set(l, static_cast<double>(n.queued));
    const auto* rec = actors_.find(n.addr);
    restarts.set(l, rec ? rec->restarts : 0);
    running.set(l, rec && rec->state == actor_state::running ? 1 : 0);
  }
  for (auto* f : {&handled, &queued, &restarts, &running}) out.push_back(f->take());
}

}  // namespace troupe::supervisor
