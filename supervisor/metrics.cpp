#include "supervisor/metrics.hpp"

#include "supervisor/convention.hpp"
#include "supervisor/data_relay.hpp"
#include "supervisor/directory.hpp"
#include "supervisor/event_stream.hpp"
#include "supervisor/gateway.hpp"
#include "supervisor/membership.hpp"
#include "supervisor/packages.hpp"
#include "supervisor/remote_calls.hpp"
#include "supervisor/worker_pool.hpp"

#include <prometheus/text_serializer.h>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace troupe::supervisor {

namespace fs = std::filesystem;
using prometheus::MetricType;
using labels_t = std::vector<std::pair<std::string, std::string>>;
using json = nlohmann::json;

// ---------------------------------------------------------------- labels

std::string refusal_class(const std::string& reason) {
  auto has = [&reason](const char* s) { return reason.find(s) != std::string::npos; };
  if (has("unknown key") || has("not signed") || has("signature does not verify") || has("modified after signing") ||
      has("truncated"))
    return "signature";
  if (has("over the limit")) return "too_large";
  if (has("corrupt archive") || has("escapes the package") || has("entry \"")) return "archive";
  if (has("manifest")) return "manifest";
  if (has("unsigned")) return "unsigned";
  if (has("does not register actor type")) return "missing_type";
  if (has("did not register within")) return "worker_timeout";
  if (has("worker exited before registering") || has("cannot start")) return "worker_failed";
  if (has("no such package") || has("cannot open")) return "not_found";
  if (has("being unloaded")) return "unloading";
  return "other";
}

std::string restart_cause(const std::string& reason) {
  if (reason.rfind("worker killed by its watchdog", 0) == 0) return "watchdog";
  if (reason.rfind("worker killed by SIG", 0) == 0) return "worker_signal";
  if (reason.rfind("worker exit", 0) == 0 || reason.rfind("worker exited", 0) == 0) return "worker_exit";
  if (reason.rfind("worker", 0) == 0) return "worker";
  if (reason.find("exception") != std::string::npos) return "handler_exception";
  if (reason.find("max_handle_time") != std::string::npos) return "watchdog";
  return "other";
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "SIG" + std::to_string(sig);
}

// ---------------------------------------------------------------- /proc

process_usage read_process_usage(int pid) {
  process_usage u;
  if (pid <= 0) return u;
  const std::string dir = "/proc/" + std::to_string(pid);
  {
    std::ifstream in(dir + "/stat");
    std::string line;
    if (std::getline(in, line)) {
      // Fields after the command (which may hold spaces), from the last ')'.
      const auto close = line.rfind(')');
      if (close != std::string::npos) {
        std::istringstream rest(line.substr(close + 2));
        std::string field;
        unsigned long long utime = 0, stime = 0;
        // state is field 3; utime 14, stime 15 (proc(5)).
        for (int i = 3; i <= 15 && rest >> field; ++i) {
          if (i == 14) utime = std::stoull(field);
          if (i == 15) stime = std::stoull(field);
        }
        u.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
      }
    }
  }
  {
    std::ifstream in(dir + "/statm");
    unsigned long long size = 0, resident = 0;
    if (in >> size >> resident)
      u.rss_bytes = static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (fs::directory_iterator it(dir + "/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
  u.open_fds = static_cast<double>(fds);
  return u;
}

// ---------------------------------------------------------------- family_builder

prometheus::ClientMetric& family_builder::series(const labels_t& given) {
  labels_t labels = given;
  std::sort(labels.begin(), labels.end());  // as prometheus-cpp's own families print them
  auto [it, fresh] = index_.emplace(labels, family_.metric.size());
  if (fresh) {
    prometheus::ClientMetric m;
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    family_.metric.push_back(std::move(m));
  }
  return family_.metric[it->second];
}

void family_builder::add(const labels_t& labels, double value) {
  auto& m = series(labels);
  if (family_.type == MetricType::Counter)
    m.counter.value += value;
  else
    m.gauge.value += value;
}

void family_builder::max(const labels_t& labels, double value) {
  auto& m = series(labels);
  m.gauge.value = std::max(m.gauge.value, value);
}

void family_builder::set(const labels_t& labels, double value) {
  auto& m = series(labels);
  if (family_.type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
}

prometheus::MetricFamily family_builder::take() {
  index_.clear();
  return std::move(family_);
}

// ---------------------------------------------------------------- metrics

const std::vector<double>& metrics::ask_buckets() {
  static const std::vector<double> b{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  return b;
}

metrics::metrics(system_context& ctx) : ctx_(ctx), registry_(std::make_shared<prometheus::Registry>()) {
  auto counter = [this](const char* name, const char* help) -> prometheus::Family<prometheus::Counter>& {
    return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
  };
  events_ = &counter("troupe_events_total", "Events recorded in the event ring, by kind.");
  restarts_ =
      &counter("troupe_actor_restarts_total", "Actor restarts under their address, by cause and package version.");
  failures_ = &counter("troupe_actor_failures_total", "Actors given up on (failed for good), by package version.");
  worker_exits_ = &counter("troupe_worker_exits_total",
                           "Worker processes that ended, by package version, signal or exit code, and whether the "
                           "system had told them to stop.");
  loads_ = &counter("troupe_package_loads_total", "Package versions loaded.");
  unloads_ = &counter("troupe_package_unloads_total", "Package versions unloaded.");
  refusals_ = &counter("troupe_package_refusals_total", "Package loads refused, by reason.");
  moves_ = &counter("troupe_actor_moves_total", "Moves of convention actors begun here (chgcap, move, a lost system).")
                .Add({});
  pending_ = &counter("troupe_actor_pending_total", "Times a convention actor found no system to host it.").Add({});
  failovers_ = &counter("troupe_convention_systems_lost_total",
                        "Systems of the convention declared lost (their actors placed elsewhere), as seen here.")
                    .Add({});
  joins_ =
      &counter("troupe_convention_systems_joined_total", "Systems that joined the convention, as seen here.").Add({});
  fenced_ =
      &counter("troupe_convention_fenced_total", "Times this system fenced itself (its etcd lease lost).").Add({});
  leader_changes_ =
      &counter("troupe_convention_leader_changes_total", "Changes of the convention's leader seen here.").Add({});
  ask_latency_ = &prometheus::BuildHistogram()
                      .Name("troupe_gateway_ask_seconds")
                      .Help("Time from a client's ask entering the gateway to its reply or bounce.")
                      .Register(*registry_)
                      .Add({}, ask_buckets());
  for (auto k : all_event_kinds()) events_->Add({{"kind", std::string(to_string(k))}});
  (void)ctx_;
}

void metrics::observe(event_ring& ring) {
  ring.on_record([this](const event& e) { count(e); });
}

void metrics::count(const event& e) {
  events_->Add({{"kind", std::string(to_string(e.kind))}}).Increment();
  switch (e.kind) {
    case event_kind::actor_restarted:
      restarts_->Add({{"cause", restart_cause(e.reason)}, {"package", e.package}, {"version", e.version}}).Increment();
      break;
    case event_kind::actor_failed:
      failures_->Add({{"package", e.package}, {"version", e.version}}).Increment();
      break;
    case event_kind::worker_exited:
      worker_exits_
          ->Add({{"package", e.package},
                 {"version", e.version},
                 {"signal", e.signal != 0 ? signal_name(e.signal) : ""},
                 {"code", e.exit_code >= 0 ? std::to_string(e.exit_code) : ""},
                 {"expected", e.expected ? "true" : "false"}})
          .Increment();
      break;
    case event_kind::package_loaded:
      loads_->Add({{"package", e.package}}).Increment();
      break;
    case event_kind::package_unloaded:
      unloads_->Add({{"package", e.package}}).Increment();
      break;
    case event_kind::package_refused:
      refusals_->Add({{"reason", refusal_class(e.reason)}}).Increment();
      break;
    case event_kind::actor_moved:
      moves_->Increment();
      break;
    case event_kind::actor_pending:
      pending_->Increment();
      break;
    case event_kind::system_lost:
      failovers_->Increment();
      break;
    case event_kind::system_joined:
      joins_->Increment();
      break;
    case event_kind::system_fenced:
      fenced_->Increment();
      break;
    case event_kind::leader_changed:
      leader_changes_->Increment();
      break;
    default:
      break;
  }
}

void metrics::retire_worker(const std::string& package, const std::string& version, std::uint64_t handled,
                            std::uint64_t sent) {
  auto& r = retired_[{package, version}];
  r.first += handled;
  r.second += sent;
}

std::pair<std::uint64_t, std::uint64_t> metrics::retired(const std::string& package, const std::string& version) const {
  auto it = retired_.find({package, version});
  return it == retired_.end() ? std::pair<std::uint64_t, std::uint64_t>{} : it->second;
}

std::string metrics::scrape() {
  auto families = registry_->Collect();
  for (const auto& f : scrapers_) f(families);
  return prometheus::TextSerializer().Serialize(families);
}

// ---------------------------------------------------------------- read at scrape time

void add_system_families(std::vector<prometheus::MetricFamily>& out, const scrape_sources& s, const metrics& m) {
  const auto now = std::chrono::steady_clock::now();
  auto version_of = [&s](const std::string& package_id) -> std::pair<std::string, std::string> {
    if (const auto* p = s.packages.find(package_id)) return {p->m.package, p->m.version.text};
    return {"", ""};
  };

  family_builder actors("troupe_actors", "Actors of this system, by state and package version.", MetricType::Gauge);
  for (const auto* p : s.packages.all())
    for (const char* st : {"starting", "running", "stopping", "failed"})
      actors.set({{"state", st}, {"package", p->m.package}, {"version", p->m.version.text}}, 0);
  for (const auto* a : s.actors.all()) {
    auto [pkg, ver] = version_of(a->package_id);
    actors.add({{"state", to_string(a->state)}, {"package", pkg}, {"version", ver}}, 1);
  }
  out.push_back(actors.take());

  family_builder packages("troupe_packages", "Package versions known to this system, by phase.", MetricType::Gauge);
  for (const char* ph : {"loading", "loaded", "unloading"}) packages.set({{"phase", ph}}, 0);
  for (const auto* p : s.packages.all()) packages.add({{"phase", to_string(p->phase)}}, 1);
  out.push_back(packages.take());

  family_builder workers("troupe_workers", "Worker processes, by state (standby: no package yet).", MetricType::Gauge);
  for (const char* st : {"starting", "standby", "assigned", "ready", "stopping"}) workers.set({{"state", st}}, 0);
  family_builder handled("troupe_worker_messages_handled_total",
                         "Messages the actors of a package version's workers handled (their handling marker).",
                         MetricType::Counter);
  family_builder sent("troupe_worker_messages_sent_total",
                      "Messages the actors of a package version's workers sent (to actors anywhere).",
                      MetricType::Counter);
  family_builder unacked("troupe_worker_mailbox_unacked",
                         "Records the supervisor sent a package version's workers that they have not acknowledged "
                         "(handled) yet: the mailbox depth as the supervisor sees it.",
                         MetricType::Gauge);
  family_builder queued("troupe_worker_mailbox_queued_batches",
                        "Batches for a package version's workers not yet taken by ZeroMQ (their pipe full).",
                        MetricType::Gauge);
  family_builder oldest("troupe_worker_mailbox_oldest_unacked_seconds",
                        "Age of the oldest record the supervisor sent a package version's workers that is not "
                        "acknowledged yet (0: none).",
                        MetricType::Gauge);
  family_builder cpu("troupe_process_cpu_seconds_total",
                     "CPU time (user + system) of the daemon and of the worker processes of each package version.",
                     MetricType::Counter);
  family_builder rss("troupe_process_resident_memory_bytes",
                     "Resident memory of the daemon and of the worker processes of each package version.",
                     MetricType::Gauge);
  family_builder fds("troupe_process_open_fds",
                     "Open file descriptors of the daemon and of the worker processes of each package version.",
                     MetricType::Gauge);
  family_builder procs("troupe_worker_processes", "Live worker processes, by package version.", MetricType::Gauge);
  const auto self = read_process_usage(static_cast<int>(::getpid()));
  const labels_t daemon{{"process", "daemon"}, {"package", ""}, {"version", ""}};
  cpu.set(daemon, self.cpu_seconds);
  rss.set(daemon, self.rss_bytes);
  fds.set(daemon, self.open_fds);
  for (const auto& [pv, counts] : m.all_retired()) {
    handled.add({{"package", pv.first}, {"version", pv.second}}, static_cast<double>(counts.first));
    sent.add({{"package", pv.first}, {"version", pv.second}}, static_cast<double>(counts.second));
  }
  for (const auto& [id, w] : s.pool.all()) {
    workers.add({{"state", to_string(w.st)}}, 1);
    auto [pkg, ver] = version_of(w.package_id);
    const labels_t pv{{"package", pkg}, {"version", ver}};
    const labels_t proc{{"process", w.package_id.empty() ? "standby" : "worker"}, {"package", pkg}, {"version", ver}};
    if (!w.package_id.empty()) {
      const auto b = s.link.backlog_of(w.inbox);
      unacked.add(pv, static_cast<double>(b.unacked_records));
      queued.add(pv, static_cast<double>(b.queued_batches));
      const double age = b.oldest ? std::chrono::duration<double>(now - *b.oldest).count() : 0.0;
      oldest.max(pv, age);  // the oldest over the version's workers
    }
    if (!w.child) continue;
    const int pid = w.child->pid();
    procs.add(pv, 1);
    if (!w.package_id.empty()) {
      const auto counts = ipc::read_handling_file(s.pool.marker_of(w));
      handled.add(pv, static_cast<double>(counts.handled));
      sent.add(pv, static_cast<double>(counts.sent));
    }
    const auto u = read_process_usage(pid);
    cpu.add(proc, u.cpu_seconds);
    rss.add(proc, u.rss_bytes);
    fds.add(proc, u.open_fds);
  }
  for (auto* f : {&workers, &procs, &handled, &sent, &unacked, &queued, &oldest, &cpu, &rss, &fds})
    out.push_back(f->take());

  const auto& g = s.gate.counts();
  family_builder gate_msgs("troupe_gateway_messages_total",
                           "Records through the gateway: out to workers (client messages, lifecycle, exits), in from "
                           "workers (replies, bounces).",
                           MetricType::Counter);
  gate_msgs.set({{"direction", "out"}}, static_cast<double>(g.out));
  gate_msgs.set({{"direction", "in"}}, static_cast<double>(g.in));
  out.push_back(gate_msgs.take());
  family_builder poison("troupe_poison_messages_total",
                        "Client messages returned as poison (their handler's worker died on them).",
                        MetricType::Counter);
  poison.set({}, static_cast<double>(g.poison));
  out.push_back(poison.take());
  family_builder dead("troupe_dead_letters_total", "Client tells that found no actor (dead letters at the gateway).",
                      MetricType::Counter);
  dead.set({}, static_cast<double>(g.dead_letters));
  out.push_back(dead.take());
  family_builder held("troupe_held_requests",
                      "Requests held now for actors not running: client messages (gateway), records from other "
                      "systems (relay), forwarded calls (calls).",
                      MetricType::Gauge);
  held.set({{"queue", "gateway"}}, static_cast<double>(s.gate.held_total()));
  held.set({{"queue", "relay"}}, static_cast<double>(s.relay.held_total()));
  held.set({{"queue", "calls"}}, static_cast<double>(s.calls.held_total()));
  out.push_back(held.take());
  family_builder refused("troupe_held_refused_total", "Client messages refused because --max-held were waiting.",
                         MetricType::Counter);
  refused.set({}, static_cast<double>(g.held_refused));
  out.push_back(refused.take());

  family_builder members("troupe_convention_members", "Systems of the convention known here, by state.",
                         MetricType::Gauge);
  members.set({{"state", "up"}}, 0);
  members.set({{"state", "down"}}, 0);
  family_builder heard("troupe_convention_member_last_heard_seconds",
                       "Seconds since each system of the convention was last heard here (heartbeats, on etcd its "
                       "record), by port.",
                       MetricType::Gauge);
  for (const auto* mi : s.members.all()) {
    members.add({{"state", mi->state == member_state::up ? "up" : "down"}}, 1);
    if (mi->last_heard != convention_clock::time_point{})
      heard.set({{"port", std::to_string(mi->port)}}, std::chrono::duration<double>(now - mi->last_heard).count());
  }
  out.push_back(members.take());
  out.push_back(heard.take());
  json status = json::object();
  s.conv.describe(status);
  if (auto it = status.find("lease"); it != status.end() && it->is_object()) {
    family_builder lease("troupe_convention_lease_valid_seconds",
                         "Seconds this system's etcd lease stays valid without a renewal (etcd mode).",
                         MetricType::Gauge);
    lease.set({}, it->value("valid_for_ms", 0.0) / 1000.0);
    out.push_back(lease.take());
  }
  family_builder leader("troupe_convention_is_leader", "1 when this system leads its convention.", MetricType::Gauge);
  leader.set({}, s.conv.leads() ? 1 : 0);
  out.push_back(leader.take());

  family_builder subs("troupe_event_subscribers", "Clients following the event stream.", MetricType::Gauge);
  subs.set({}, static_cast<double>(s.events.subscribers()));
  out.push_back(subs.take());
  family_builder dropped("troupe_event_stream_dropped_total",
                         "Events not delivered to a follower whose connection was full (it is told how many).",
                         MetricType::Counter);
  dropped.set({}, static_cast<double>(s.events.dropped()));
  out.push_back(dropped.take());
  family_builder uptime("troupe_uptime_seconds", "Seconds since this system started.", MetricType::Gauge);
  uptime.set({}, std::chrono::duration<double>(now - s.started).count());
  out.push_back(uptime.take());
}

}  // namespace troupe::supervisor
