#include "worker/runtime.hpp"

#include "ipc/commands.hpp"
#include "ipc/log.hpp"

#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

// The per-call context handed to package code (opaque in abi.h).
struct troupe_context {
  troupe::worker::runtime* rt;
  troupe::worker::actor_slot* slot;
  troupe_message_kind kind;
  troupe::address from;
  std::uint64_t correlation;
  bool replied;
};

namespace troupe::worker {

namespace asio = boost::asio;
using ipc::json;
using ipc::log_line;
using ipc::send_control;
namespace cmd = ipc::cmd;

namespace {

thread_local std::string last_error_text;

int fail(std::string text) {
  last_error_text = std::move(text);
  return -1;
}

std::string_view sv(const char* p, std::size_t n) { return p == nullptr ? std::string_view{} : std::string_view(p, n); }
std::string_view sv(const std::uint8_t* p, std::size_t n) {
  return p == nullptr ? std::string_view{} : std::string_view(reinterpret_cast<const char*>(p), n);
}

// C trampolines: the only functions package code calls. They never throw.
troupe_address t_self(troupe_context* c) { return c->slot->addr.value(); }
int t_tell(troupe_context* c, troupe_address to, const char* type, std::size_t tl, const std::uint8_t* p,
           std::size_t pl) {
  return c->rt->host_tell(c, address(to), sv(type, tl), sv(p, pl));
}
std::uint64_t t_ask(troupe_context* c, troupe_address to, const char* type, std::size_t tl, const std::uint8_t* p,
                    std::size_t pl, std::uint32_t timeout_ms) {
  return c->rt->host_ask(c, address(to), sv(type, tl), sv(p, pl), timeout_ms);
}
int t_reply(troupe_context* c, const char* type, std::size_t tl, const std::uint8_t* p, std::size_t pl) {
  return c->rt->host_reply(c, sv(type, tl), sv(p, pl));
}
troupe_address t_spawn(troupe_context* c, const char* type, std::size_t tl, const char* pkg, std::size_t pkl,
                       const char* name, std::size_t nl) {
  return c->rt->host_spawn(c, sv(type, tl), sv(pkg, pkl), sv(name, nl));
}
int t_stop(troupe_context* c, troupe_address target) { return c->rt->host_stop(c, address(target)); }
std::uint64_t t_schedule(troupe_context* c, std::uint32_t delay, const char* type, std::size_t tl,
                         const std::uint8_t* p, std::size_t pl) {
  return c->rt->host_schedule(c, delay, sv(type, tl), sv(p, pl));
}
int t_cancel(troupe_context* c, std::uint64_t id) { return c->rt->host_cancel(id); }
void t_log(troupe_context* c, int level, const char* text, std::size_t n) { c->rt->host_log(c, level, sv(text, n)); }
troupe_address t_lookup(troupe_context* c, const char* name, std::size_t n) { return c->rt->host_lookup(sv(name, n)); }
const char* t_last_error() { return last_error_text.c_str(); }
int t_reply_to(troupe_context* c, troupe_address to, std::uint64_t corr, const char* type, std::size_t tl,
               const std::uint8_t* p, std::size_t pl) {
  return c->rt->host_reply_to(c, address(to), corr, sv(type, tl), sv(p, pl));
}

int t_watch(troupe_context* c, troupe_address target) { return c->rt->host_watch(c, address(target), true); }
int t_unwatch(troupe_context* c, troupe_address target) { return c->rt->host_watch(c, address(target), false); }

const troupe_host_v1 host_table = {
    TROUPE_ABI_VERSION, &t_self, &t_tell,   &t_ask,        &t_reply,    &t_spawn, &t_stop,    &t_schedule,
    &t_cancel,          &t_log,  &t_lookup, &t_last_error, &t_reply_to, &t_watch, &t_unwatch,
};

constexpr std::uint32_t default_ask_timeout_ms = 5000;

// Flag on a bounced record: the destination is not hosted where it was sent,
// so the sender must forget its cached route (docs/PROTOCOL.md §3.2).
constexpr std::uint8_t flag_stale_route = 0x01;

}  // namespace

runtime::runtime(options opts) : opts_(std::move(opts)), link_(io_, zmq_), signals_(io_, SIGTERM, SIGINT) {}

runtime::~runtime() {
  if (watchdog_.joinable()) {
    {
      std::lock_guard lock(watchdog_mutex_);
      watchdog_stop_ = true;
    }
    watchdog_wake_.notify_one();
    watchdog_.join();
  }
  // Actor state belongs to the package: let it free what it allocated.
  for (auto& [_, slot] : actors_)
    if (slot.state != nullptr) slot.type->destroy(slot.state);
}

int runtime::run() {
  if (auto s = start(); !s) {
    log_line(TROUPE_LOG_ERROR, {}, s.err().message);
    // Tell the supervisor why, so it fails the package at once instead of
    // respawning a worker that can never start.
    if (control_.handle() != nullptr) {
      send_control(control_, {}, cmd::worker::fatal, json{{"worker", opts_.worker_id}, {"error", s.err().message}});
    }
    return worker_exit_package;
  }
  io_.run();
  return exit_code_;
}

status runtime::start() {
  control_ = zmq::socket_t(zmq_, zmq::socket_type::dealer);
  control_.set(zmq::sockopt::linger, 1000);  // let "fatal"/"bye" leave before exit
  control_.set(zmq::sockopt::routing_id, "w" + std::to_string(opts_.worker_id));
  ipc::configure_control_socket(control_);
  control_.connect(opts_.control_endpoint);

  inbox_ = zmq::socket_t(zmq_, zmq::socket_type::pull);
  ipc::configure_data_socket(inbox_);
  try {
    inbox_.bind(opts_.inbox_endpoint);
  } catch (const zmq::error_t& e) {
    return make_error(errc::io, "cannot bind inbox " + opts_.inbox_endpoint + ": " + e.what());
  }
  if (!opts_.marker_file.empty())
    if (auto s = marker_.open(opts_.marker_file); !s) return s;
  if (!opts_.fence_file.empty())
    if (auto s = fence_.open(opts_.fence_file, false); !s) return s;
  window_start_ms_ = ipc::steady_now_ms();
  control_watch_ = std::make_unique<ipc::socket_watcher>(io_, control_, [this] { on_control(); });
  inbox_watch_ = std::make_unique<ipc::socket_watcher>(io_, inbox_, [this] { on_inbox(); });
  control_watch_->start();
  inbox_watch_->start();
  signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    // The daemon died (the parent-death signal): nothing sent now reaches
    // it, and lingering for a reader that never comes only delays the exit
    // that a restarted daemon waits for.
    if (::getppid() != parent_) {
      control_.set(zmq::sockopt::linger, 0);
      // Nobody reads its stdout and stderr any more: what the package prints
      // on its way out must not kill it with SIGPIPE before its orderly exit
      // (and the sweep of what its package started, main.cpp).
      if (const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC); null >= 0) {
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        ::close(null);
      }
    }
    shutdown(worker_exit_control_lost);
  });

  // Registration in two steps (docs/PROTOCOL.md §4): "hello" is answered
  // once the supervisor gives this worker a package (a standby waits here),
  // then "ready" reports the actor types the library registered.
  request(cmd::worker::hello, json{{"worker", opts_.worker_id}, {"pid", ::getpid()}, {"inbox", opts_.inbox_endpoint}},
          [this](const json& body) {
            if (!body.value("ok", false)) {
              log_line(TROUPE_LOG_ERROR, {},
                       "supervisor refused registration: " + body.value("error", std::string("no reason")));
              shutdown(worker_exit_control_lost);
              return;
            }
            system_id_ = body.value("system", 0u);
            // No-loss delivery is the system's choice (start --delivery).
            no_loss_ = body.value("delivery", std::string("no-loss")) == "no-loss";
            if (no_loss_) link_.enable_acks(opts_.inbox_endpoint);
            // The gateway answers every client ask: connect to it now rather
            // than resolve it on the first reply.
            if (auto gw = body.value("gateway", std::string()); !gw.empty()) {
              gateway_endpoint_ = gw;
              routes_[address(system_id_, ipc::gateway_serial)] = link_.connect(gw);
            }
            // Direct links to workers of other systems (no-loss only: what
            // tcp loses in flight is sent again until acknowledged).
            if (auto d = body.find("direct");
                no_loss_ && d != body.end() && d->is_object() && !gateway_endpoint_.empty())
              if (auto s = start_direct(*d); !s)
                log_line(TROUPE_LOG_WARN, {},
                         "no direct links to other systems (their records go through the system): " + s.err().message);
            lease_next_ = body.value("first", 0u);
            lease_end_ = lease_next_ + body.value("count", 0u);
            opts_.library = body.value("library", std::string());
            opts_.package_id = body.value("package_id", std::string());
            load_package(body);
          });
  return ok_v;
}

void runtime::load_package(const json& assignment) {
  const auto runtime_name = assignment.value("runtime", std::string("native"));
  status s = ok_v;
  if (opts_.loader) {
    troupe_package_v1 pkg{};
    s = opts_.loader(assignment, &host_table, pkg);
    if (s) s = package_.adopt(assignment.value("package_id", std::string()), pkg);
  } else if (runtime_name != "native") {
    s = make_error(errc::refused, "this worker runs native packages only, not runtime " + runtime_name);
  } else {
    s = package_.load(opts_.library, &host_table);
  }
  if (!s) {
    log_line(TROUPE_LOG_ERROR, {}, s.err().message);
    // Tell the supervisor why, so it refuses the package at once instead of
    // respawning a worker that can never start.
    send_event(cmd::worker::fatal, json{{"worker", opts_.worker_id}, {"error", s.err().message}});
    shutdown(worker_exit_package);
    return;
  }
  json types = json::array();
  for (std::size_t i = 0; i < package_.descriptor().type_count; ++i)
    types.push_back(package_.descriptor().types[i].name);
  json ready{{"package", opts_.package_id}, {"types", types}, {"abi", TROUPE_ABI_VERSION}};
  if (!direct_endpoint_.empty()) ready["direct"] = json{{"endpoint", direct_endpoint_}, {"key", direct_key_}};
  request(cmd::worker::ready, ready, [this](const json& body) {
    if (body.value("ok", false)) return;
    log_line(TROUPE_LOG_ERROR, {}, "supervisor refused the package: " + body.value("error", std::string("no reason")));
    shutdown(worker_exit_package);
  });
}

// ---------------------------------------------------------------- direct links

status runtime::start_direct(const json& spec) {
  const auto host = spec.value("host", std::string());
  if (host.empty()) return make_error(errc::invalid_argument, "no host to bind a tcp inbox on");
  // A key pair of this process: the worker runs package code, so it never
  // holds the system's own key.
  auto keys = ipc::generate_curve_keypair();
  if (!keys) return keys.err();
  try {
    // Bound before the CURVE server (ipc/curve.hpp): without a handler,
    // libzmq would admit every client.
    zap_ = std::make_unique<ipc::zap_authenticator>(zmq_);
    zap_->admit(
        std::string(ipc::direct_zap_domain),
        [this](const ipc::zap_authenticator::request_info& r) -> ipc::zap_authenticator::answer {
          if (r.mechanism == "CURVE" && admitted_keys_.count(r.key) != 0) return {"200", "OK", "worker", ""};
          // Logged once per key: a peer refused is not reconnected by libzmq,
          // but a stranger may keep trying.
          const bool first = refused_keys_.size() < 1024 && refused_keys_.insert(r.key).second;
          return {"400", "not admitted", "",
                  first ? (r.mechanism == "CURVE" ? "key " + r.key + " not admitted" : "mechanism " + r.mechanism)
                        : std::string()};
        },
        [](const std::string& peer, const std::string& reason) {
          log_line(TROUPE_LOG_WARN, {}, "refused a direct link from " + peer + ": " + reason);
        });
    zap_watch_ = std::make_unique<ipc::socket_watcher>(io_, zap_->socket(), [this] { zap_->handle_pending(); });
    zap_watch_->start();
    direct_inbox_ = zmq::socket_t(zmq_, zmq::socket_type::pull);
    ipc::configure_data_socket(direct_inbox_);
    ipc::make_curve_server(direct_inbox_, *keys, ipc::direct_zap_domain);
    direct_inbox_.bind("tcp://" + host + ":0");
    direct_endpoint_ = direct_inbox_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    if (zap_watch_) zap_watch_->stop();
    zap_watch_.reset();
    zap_.reset();
    direct_inbox_.close();
    direct_endpoint_.clear();
    return make_error(errc::io, std::string("cannot bind a tcp inbox on ") + host + ": " + e.what());
  }
  direct_key_ = keys->public_key;
  link_.enable_direct(direct_endpoint_, *keys, std::chrono::milliseconds(spec.value("resend_ms", 500u)));
  max_direct_peers_ = spec.value("max_peers", std::size_t{256});
  direct_idle_ = std::chrono::milliseconds(spec.value("idle_ms", std::uint64_t{60000}));
  direct_watch_ = std::make_unique<ipc::socket_watcher>(io_, direct_inbox_, [this] {
    zmq::message_t frame;
    if (direct_inbox_.recv(frame, zmq::recv_flags::dontwait)) on_frame(frame.to_string_view(), true);
  });
  direct_watch_->start();
  idle_timer_ = std::make_unique<asio::steady_timer>(io_);
  sweep_idle_links();
  return ok_v;
}

void runtime::on_admit(const json& b) {
  const auto endpoint = b.value("endpoint", std::string());
  const auto key = b.value("key", std::string());
  if (direct_endpoint_.empty() || !endpoint.starts_with("tcp://") || !ipc::valid_curve_key(key)) {
    log_line(TROUPE_LOG_WARN, {}, "ignored 'admit': no direct links here, or not a tcp endpoint and a key");
    return;
  }
  admitted_keys_.insert(key);
  refused_keys_.erase(key);
  link_.learn_server_key(endpoint, key);  // where this worker sends acks and its own records
  send_event(cmd::worker::admitted, json{{"ref", b.value("ref", json())}});
}

void runtime::sweep_idle_links() {
  const auto every = std::max(std::chrono::milliseconds(50), direct_idle_ / 4);
  for (const auto& endpoint : link_.idle_direct_peers(link_.clock(), direct_idle_)) {
    std::erase_if(routes_, [&](const auto& r) { return r.second->endpoint == endpoint; });
    link_.disconnect(endpoint);
  }
  idle_timer_->expires_after(every);
  idle_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !shutting_down_) sweep_idle_links();
  });
}

// ---------------------------------------------------------------- control plane

void runtime::request(std::string_view command, json body, reply_handler then) {
  const std::uint64_t rid = next_rid_++;
  body["rid"] = rid;
  pending_requests_.emplace(rid, std::move(then));
  send_event(command, body);
}

void runtime::send_event(std::string_view command, const json& body) {
  if (!send_control(control_, {}, command, body))
    log_line(TROUPE_LOG_ERROR, {}, "control message '" + std::string(command) + "' could not be queued");
  control_watch_->kick();
}

void runtime::on_control() {
  auto parts = ipc::recv_multipart(control_);
  if (parts.empty()) return;
  auto m = ipc::decode_control(parts);
  if (!m) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed control message: " + m.err().message);
    return;
  }
  handle_control_guarded(*m);
}

void runtime::handle_control_guarded(const ipc::control_message& m) {
  try {
    handle_control(m);
  } catch (const json::exception& e) {
    log_line(TROUPE_LOG_WARN, {}, "dropped malformed '" + m.command + "': " + e.what());
  }
}

void runtime::drain_deferred_control() {
  while (!deferred_control_.empty()) {
    auto parts = std::move(deferred_control_.front());
    deferred_control_.pop_front();
    if (auto m = ipc::decode_control(parts)) handle_control_guarded(*m);
  }
}

void runtime::handle_control(const ipc::control_message& m) {
  static const std::unordered_map<std::string_view, void (runtime::*)(const json&)> table = {
      {cmd::reply, &runtime::on_reply},
      {cmd::supervisor::create, &runtime::create_actor},
      {cmd::supervisor::stop, &runtime::on_stop},
      {cmd::supervisor::peer_died, &runtime::on_peer_died},
      {cmd::supervisor::admit, &runtime::on_admit},
      {cmd::supervisor::forget_route, &runtime::on_forget_route},
      {cmd::supervisor::forget_name, &runtime::on_forget_name},
      {cmd::supervisor::shutdown, &runtime::on_shutdown},
      {cmd::supervisor::stats, &runtime::on_stats},
  };
  auto it = table.find(m.command);
  if (it == table.end()) {
    log_line(TROUPE_LOG_WARN, {}, "ignored unknown control command '" + m.command + "'");
    return;
  }
  (this->*(it->second))(m.body);
}

void runtime::on_reply(const json& b) {
  auto rid = b.value("rid", std::uint64_t{0});
  auto it = pending_requests_.find(rid);
  if (it == pending_requests_.end()) return;
  auto then = std::move(it->second);
  pending_requests_.erase(it);
  then(b);
}

void runtime::on_stop(const json& b) {
  auto a = address(b.value("address", std::uint64_t{0}));
  if (actors_.count(a))
    enqueue_local(envelope{TROUPE_MSG_EXIT, a, {}, 0, "exit", b.value("reason", std::string("stopped"))});
}

void runtime::on_forget_route(const json& b) { routes_.erase(address(b.value("address", std::uint64_t{0}))); }

void runtime::on_forget_name(const json& b) {
  names_.erase(b.value("name", std::string()));  // it moved to another actor
}

using ipc::steady_now_ms;

void runtime::fence_now() {
  std::vector<address> fenced;
  const auto now = steady_now_ms();
  for (const auto& [a, slot] : actors_)
    if (slot.fenced && !fence_.holds(slot.lease, now)) fenced.push_back(a);
  if (fenced.empty()) return;
  log_line(TROUPE_LOG_WARN, {},
           "fenced: stopping " + std::to_string(fenced.size()) +
               " actors of the convention: their system no longer holds the lease they were placed under");
  for (address a : fenced)
    finish_exit(a, "fenced: its system no longer holds the lease it was placed under", false, /*fenced=*/true);
}

void runtime::on_stats(const json& b) {
  // docs/PROTOCOL.md §4.3: the window rolls only when the asker says how
  // long it should at least be (troupe top), so a mere reader (metrics of
  // named actors) never shortens another's window.
  const auto now = steady_now_ms();
  if (window_start_ms_ == 0) window_start_ms_ = now;
  const auto window = b.find("window_ms");
  if (window != b.end() && window->is_number_unsigned() && window->get<std::uint64_t>() > 0 &&
      now - window_start_ms_ >= static_cast<std::int64_t>(window->get<std::uint64_t>())) {
    for (auto& [a, slot] : actors_) {
      slot.last_window = slot.handled - slot.window_base;
      slot.window_base = slot.handled;
    }
    last_window_ms_ = now - window_start_ms_;
    window_start_ms_ = now;
  }
  // No completed window yet: the one under way (new actors count from their creation).
  const bool partial = last_window_ms_ == 0;
  auto recent = [partial](const actor_slot& s) { return partial ? s.handled - s.window_base : s.last_window; };
  std::size_t top = 0;
  if (auto t = b.find("top"); t != b.end() && t->is_number_unsigned())
    top = static_cast<std::size_t>(std::min<std::uint64_t>(t->get<std::uint64_t>(), 100));
  std::vector<const actor_slot*> busiest;
  if (top > 0) {
    busiest.reserve(actors_.size());
    for (const auto& [a, slot] : actors_) busiest.push_back(&slot);
    const auto n = std::min(top, busiest.size());
    std::partial_sort(busiest.begin(), busiest.begin() + static_cast<std::ptrdiff_t>(n), busiest.end(),
                      [&recent](const actor_slot* x, const actor_slot* y) {
                        const auto rx = recent(*x), ry = recent(*y);
                        if (rx != ry) return rx > ry;
                        if (x->handled != y->handled) return x->handled > y->handled;
                        return x->addr.value() < y->addr.value();
                      });
    busiest.resize(n);
  }
  json rows = json::array();
  for (const auto* s : busiest)
    rows.push_back(json{{"address", s->addr.value()}, {"handled", s->handled}, {"recent", recent(*s)}});
  json tracked = json::array();
  if (auto t = b.find("addresses"); t != b.end() && t->is_array() && !t->empty()) {
    // Their messages waiting in this worker's queue: one pass over it.
    std::unordered_map<address, std::uint64_t> queued;
    std::size_t n = 0;
    for (const auto& v : *t) {
      if (++n > 1000) break;
      if (v.is_number_unsigned() && actors_.count(address(v.get<std::uint64_t>())))
        queued.emplace(address(v.get<std::uint64_t>()), 0);
    }
    if (!queued.empty())
      for (const auto& env : run_queue_)
        if (auto q = queued.find(env.to); q != queued.end()) ++q->second;
    for (const auto& [a, waiting] : queued)
      tracked.push_back(json{{"address", a.value()}, {"handled", actors_.at(a).handled}, {"queued", waiting}});
  }
  send_event(cmd::worker::stats, json{{"rid", b.value("rid", json())},
                                      {"actors", actors_.size()},
                                      {"queued", run_queue_.size()},
                                      {"window_ms", partial ? now - window_start_ms_ : last_window_ms_},
                                      {"busiest", std::move(rows)},
                                      {"tracked", std::move(tracked)}});
}

void runtime::on_shutdown(const json& b) {
  shutdown(worker_exit_ok, b.value("reason", std::string("system shutdown")));
}

// ---------------------------------------------------------------- actors

address runtime::next_address() {
  if (lease_next_ == lease_end_ && lease_extra_first_ != lease_extra_end_) {
    lease_next_ = lease_extra_first_;
    lease_end_ = lease_extra_end_;
    lease_extra_first_ = lease_extra_end_ = 0;
  }
  if (lease_next_ == lease_end_ && system_id_ != 0) {
    // A handler spawned a whole block before the next one could arrive
    // between handlers: fetch one now rather than fail the spawn.
    if (auto r = call_now(cmd::worker::lease, json::object())) {
      lease_next_ = r->value("first", 0u);
      lease_end_ = lease_next_ + r->value("count", 0u);
    }
  }
  if (lease_next_ == lease_end_) return {};
  address a(system_id_, lease_next_++);
  // Ask for the next block at half use, so spawning never waits for it.
  if (!lease_requested_ && lease_extra_first_ == lease_extra_end_ &&
      lease_end_ - lease_next_ < ipc::address_block_size / 2) {
    lease_requested_ = true;
    request(cmd::worker::lease, json::object(), [this](const json& body) {
      lease_requested_ = false;
      if (!body.value("ok", false)) return;
      lease_extra_first_ = body.value("first", 0u);
      lease_extra_end_ = lease_extra_first_ + body.value("count", 0u);
    });
  }
  return a;
}

void runtime::create_actor(const json& b) {
  // A batch (a restart of a whole worker's actors, docs/PROTOCOL.md §4.2):
  // one "created" for those of it that started, in its order.
  if (auto list = b.find("actors"); list != b.end()) {
    if (!list->is_array()) return log_line(TROUPE_LOG_WARN, {}, "dropped 'create': \"actors\" is not a list");
    json started = json::array();
    for (const auto& one : *list)
      if (one.is_object()) {
        if (auto a = create_one(one)) started.push_back(a.value());
      }
    if (!started.empty()) send_event(cmd::worker::created, json{{"addresses", std::move(started)}});
    return;
  }
  if (auto a = create_one(b)) send_event(cmd::worker::created, json{{"address", a.value()}});
}

address runtime::create_one(const json& b) {
  const auto a = address(b.value("address", std::uint64_t{0}));
  const auto type_name = b.value("type", std::string());
  auto refuse = [&](const std::string& why) {
    send_event(cmd::worker::create_failed, json{{"address", a.value()}, {"error", why}});
    return address{};
  };
  if (!a.valid()) return refuse("create without a valid address");
  if (actors_.count(a)) return refuse("address " + a.to_string() + " already hosted here");
  const auto* type = package_.find(type_name);
  if (type == nullptr) return refuse("package has no actor type '" + type_name + "'");

  auto [it, inserted] = actors_.emplace(a, actor_slot{a, type, nullptr, b.value("restarts", 0u), false, {}});
  actor_slot& slot = it->second;
  if (auto r = b.find("restart"); r != b.end() && r->is_object()) {
    auto& spec = slot.rule.spec;
    const auto policy = r->value("policy", std::string());
    spec.policy = policy == "temporary"   ? base::restart_policy::temporary
                  : policy == "transient" ? base::restart_policy::transient
                                          : base::restart_policy::permanent;
    spec.max_restarts = r->value("max_restarts", spec.max_restarts);
    spec.within = std::chrono::milliseconds(r->value("within_ms", spec.within.count()));
    std::vector<std::chrono::milliseconds> ages;
    if (auto recent = r->find("recent_ms"); recent != r->end() && recent->is_array())
      for (const auto& age : *recent)
        if (age.is_number_unsigned()) ages.emplace_back(age.get<std::uint64_t>());
    slot.rule.history = base::restart_history(ages, base::restart_clock::now());
  }
  slot.max_handle_ms = b.value("max_handle_time_ms", 0u);
  slot.fenced = b.value("fenced", false);
  if (slot.fenced) {
    const auto lease = b.find("lease");
    slot.lease = lease != b.end() && lease->is_string()
                     ? std::strtoll(lease->get_ref<const std::string&>().c_str(), nullptr, 10)
                     : 0;
    // Too late already (or no page to tell): it is not created at all.
    if (!fence_.holds(slot.lease, steady_now_ms())) {
      actors_.erase(it);
      return refuse("fenced: its system does not hold the lease it was placed under");
    }
    // Those of an older lease are gone by now (the page moved on).
    if (fenced_actors_.load() > 0 && fenced_lease_.load() != slot.lease) fence_now();
    fenced_lease_.store(slot.lease);
    ++fenced_actors_;
  }
  if (slot.max_handle_ms != 0 || slot.fenced) start_watchdog();
  troupe_context ctx{this, &slot, TROUPE_MSG_TELL, {}, 0, false};
  troupe_error err{};
  slot.state = type->create(&ctx, &err);
  if (slot.state == nullptr) {
    actors_.erase(it);
    return refuse(type_name + " failed to start: " + err.text);
  }
  // Messages routed here before the actor existed were held by the sender's
  // resolve; the supervisor answers those resolves once "created" arrives
  // (sent by the caller, before this first message is handled).
  if (b.contains("message") && b["message"].is_object()) {
    const auto& first = b["message"];
    enqueue_local(envelope{
        TROUPE_MSG_TELL, a, {}, 0, first.value("type", std::string("json")), first.value("payload", json()).dump()});
  }
  return a;
}

void runtime::restart_in_place(actor_slot& slot, std::string_view reason) {
  // The manifest's policy (worker crashes count too, see "create"); a
  // restart in place is immediate: the backoff is for respawned processes.
  const auto d = slot.rule.history.on_exit(slot.rule.spec, base::exit_kind::crash, reason, base::restart_clock::now());
  if (d.act != base::restart_decision::action::restart) {
    log_line(TROUPE_LOG_WARN, slot.addr, "handler failed, not restarted: " + d.reason);
    finish_exit(slot.addr, d.reason, /*failed=*/true);
    return;
  }
  log_line(TROUPE_LOG_WARN, slot.addr, "handler failed, restarting: " + std::string(reason));
  slot.type->destroy(slot.state);
  slot.state = nullptr;
  ++slot.restarts;
  troupe_context ctx{this, &slot, TROUPE_MSG_TELL, {}, 0, false};
  troupe_error err{};
  slot.state = slot.type->create(&ctx, &err);
  if (slot.state == nullptr) {
    std::string why = "restart failed: " + std::string(err.text);
    send_event(cmd::worker::stopped, json{{"address", slot.addr.value()}, {"failed", true}, {"reason", why}});
    actors_.erase(slot.addr);
    return;
  }
  send_event(cmd::worker::restarted,
             json{{"address", slot.addr.value()}, {"reason", std::string(reason)}, {"restarts", slot.restarts}});
}

void runtime::finish_exit(address a, std::string_view reason, bool failed, bool fenced) {
  auto it = actors_.find(a);
  if (it == actors_.end()) return;
  if (it->second.fenced) --fenced_actors_;
  it->second.type->destroy(it->second.state);
  actors_.erase(it);
  for (auto t = timers_.begin(); t != timers_.end();) {
    if (t->second.owner == a) {
      t->second.timer->cancel();
      t = timers_.erase(t);
    } else {
      ++t;
    }
  }
  json body{{"address", a.value()}, {"failed", failed}, {"reason", std::string(reason)}};
  if (fenced) body["fenced"] = true;
  send_event(cmd::worker::stopped, body);
}

void runtime::shutdown(int code, const std::string& reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  exit_code_ = code;
  // Every actor gets its exit request, then the loop ends.
  std::vector<address> all;
  all.reserve(actors_.size());
  for (const auto& [a, _] : actors_) all.push_back(a);
  for (address a : all) {
    auto it = actors_.find(a);
    if (it == actors_.end()) continue;
    invoke(it->second, TROUPE_MSG_EXIT, {}, 0, "exit", reason);
    finish_exit(a, reason);
  }
  link_.flush();
  send_event(cmd::worker::bye, json{{"worker", opts_.worker_id}});
  for (auto& [_, t] : timers_) t.timer->cancel();
  for (auto& [_, t] : asks_) t.timer->cancel();
  signals_.cancel();
  control_watch_->stop();
  inbox_watch_->stop();
  if (direct_watch_) direct_watch_->stop();
  if (zap_watch_) zap_watch_->stop();
  if (idle_timer_) idle_timer_->cancel();
  io_.stop();
}

void runtime::start_watchdog() {
  // Checks at a quarter of the shortest limit, so a hung handler is killed
  // between 1 and 1.25 times its max_handle_time. A handler cannot be
  // interrupted from its own thread; the kill restarts it like any crash,
  // and the page tells the supervisor why and which message to return.
  std::uint32_t shortest = 0;
  for (const auto& [_, slot] : actors_)
    if (slot.max_handle_ms != 0 && (shortest == 0 || slot.max_handle_ms < shortest)) shortest = slot.max_handle_ms;
  // No max_handle_time: the watchdog only watches the fence page.
  const std::uint32_t tick = shortest == 0 ? 1000 : std::max<std::uint32_t>(1, shortest / 4);
  if (watchdog_tick_ms_.load() == 0 || tick < watchdog_tick_ms_.load()) watchdog_tick_ms_.store(tick);
  if (watchdog_.joinable()) {
    // It may sleep a whole tick: woken to see a new limit or fenced actor.
    { std::lock_guard held(watchdog_mutex_); }
    watchdog_wake_.notify_one();
    return;
  }
  if (!marker_.is_open()) return;
  watchdog_ = std::thread([this] {
    auto* page = marker_.page();
    std::uint64_t watched = 0;  // the handler generation seen running
    auto since = std::chrono::steady_clock::now();
    std::int64_t fence_seen_ms = 0;  // when it first saw fenced actors the page no longer holds
    std::unique_lock lock(watchdog_mutex_);
    while (!watchdog_stop_) {
      // Wakes at its tick; with fenced actors, at the page's deadline and at
      // least every 50 ms (a lost lease moves the deadline to "now"), so they
      // are gone within 30 ms of it even when a handler holds the loop.
      auto wait = std::chrono::milliseconds(watchdog_tick_ms_.load());
      if (fenced_actors_.load() > 0) {
        const auto left = std::chrono::milliseconds(fence_.until_ms() - steady_now_ms());
        wait = std::clamp(left, std::chrono::milliseconds(1), std::min(wait, std::chrono::milliseconds(50)));
        if (fence_seen_ms != 0) wait = std::chrono::milliseconds(5);
      }
      watchdog_wake_.wait_for(lock, wait);
      const std::uint64_t gen = page->generation.load(std::memory_order_acquire);
      const auto now = std::chrono::steady_clock::now();
      const auto now_ms = steady_now_ms();
      if (fenced_actors_.load() > 0 && !fence_.holds(fenced_lease_.load(), now_ms)) {
        // The loop stops them if it is free; if it is held (a long handler,
        // a big message) the process goes instead.
        if (fence_seen_ms == 0) {
          fence_seen_ms = now_ms;
          asio::post(io_, [this] { fence_now(); });
        } else if (now_ms - fence_seen_ms >= 30) {
          ::kill(::getpid(), SIGKILL);
        }
      } else {
        fence_seen_ms = 0;
      }
      if (gen % 2 == 0) continue;  // idle
      if (gen != watched) {
        watched = gen;
        since = now;
        continue;
      }
      const std::uint32_t limit = page->limit_ms.load(std::memory_order_relaxed);
      if (limit != 0 && now - since >= std::chrono::milliseconds(limit)) {
        page->hung.store(1, std::memory_order_release);
        ::kill(::getpid(), SIGKILL);
      }
    }
  });
}

// ---------------------------------------------------------------- delivery

void runtime::invoke(actor_slot& slot, troupe_message_kind kind, address from, std::uint64_t corr,
                     std::string_view type, std::string_view payload, std::string_view reason) {
  // Past the fence deadline a fenced actor handles nothing more (the loop
  // may have been stopped past it, its timer not run yet).
  if (slot.fenced && !fence_.holds(slot.lease, steady_now_ms())) {
    if (kind == TROUPE_MSG_ASK) bounce(kind, from, slot.addr, corr, type, slot.addr.to_string() + " is fenced");
    return fence_now();
  }
  troupe_context ctx{this, &slot, kind, from, corr, false};
  troupe_message msg{static_cast<std::uint32_t>(kind),
                     from.value(),
                     corr,
                     type.data(),
                     type.size(),
                     reinterpret_cast<const std::uint8_t*>(payload.data()),
                     payload.size(),
                     reason.data(),
                     reason.size()};
  troupe_error err{};
  ++slot.handled;
  marker_.begin(slot.addr, ledger_.origin(current_cause_), slot.max_handle_ms);
  const int rc = slot.type->handle(slot.state, &ctx, &msg, &err);
  marker_.end();
  if (rc == 0) return;
  std::string why = std::string("exception in handler: ") + err.text;
  if (kind == TROUPE_MSG_ASK && !ctx.replied)
    bounce(TROUPE_MSG_ASK, from, slot.addr, corr, type, slot.addr.to_string() + " failed: " + why,
           /*stale_route=*/false);
  if (kind == TROUPE_MSG_TELL && from.valid()) {
    // The tell goes back to its sender as poison, not into the restarted actor.
    envelope back{TROUPE_MSG_POISON, from, slot.addr, 0, std::string(type), std::string(payload)};
    back.reason = slot.addr.to_string() + " failed on it: " + why;
    emit(std::move(back));
  }
  if (kind == TROUPE_MSG_EXIT) return;  // it is going away anyway
  restart_in_place(slot, why);
}

void runtime::emit(envelope env) {
  env.cause = current_cause_;
  ledger_.hold(env.cause);
  route(std::move(env));
}

void runtime::enqueue_local(envelope env) {
  run_queue_.push_back(std::move(env));
  if (drain_scheduled_) return;
  drain_scheduled_ = true;
  asio::post(io_, [this] { drain_run_queue(); });
}

void runtime::drain_run_queue() {
  drain_scheduled_ = false;
  // Bounded so remote messages and timers interleave with a local flood.
  for (int budget = 4096; budget > 0 && !run_queue_.empty(); --budget) {
    envelope env = std::move(run_queue_.front());
    run_queue_.pop_front();
    // What this message's handler sends counts against the record it stems from.
    current_cause_ = env.cause;
    if (env.kind == TROUPE_MSG_REPLY || env.kind == TROUPE_MSG_ASK_FAILED) {
      complete_ask(env.to, env.kind, env.correlation, env.type, env.payload);
    } else if (auto it = actors_.find(env.to); it == actors_.end()) {
      bounce(env.kind, env.from, env.to, env.correlation, env.type, "no actor at " + env.to.to_string() + " (stopped)");
    } else {
      invoke(it->second, env.kind, env.from, env.correlation, env.type, env.payload, env.reason);
      if (env.kind == TROUPE_MSG_EXIT) finish_exit(env.to, env.payload);
    }
    current_cause_ = {};
    release(env.cause);
  }
  send_acks();
  if (!run_queue_.empty() && !drain_scheduled_) {
    drain_scheduled_ = true;
    asio::post(io_, [this] { drain_run_queue(); });
  }
}

namespace {
ipc::record_view record_of(const envelope& env, std::string& poison_payload) {
  auto kind = static_cast<ipc::record_kind>(env.kind);
  std::string_view payload = env.payload;
  if (env.kind == TROUPE_MSG_POISON) {
    poison_payload = ipc::encode_poison(env.reason, env.payload);
    payload = poison_payload;
  }
  return ipc::record_view{kind, env.flags, env.to, env.from, env.correlation, 0, env.type, payload};
}
}  // namespace

void runtime::route(envelope env) {
  marker_.count_sent();
  if (actors_.count(env.to) || env.kind == TROUPE_MSG_EXIT) {
    enqueue_local(std::move(env));
    return;
  }
  if (auto r = routes_.find(env.to); r != routes_.end()) {
    std::string scratch;
    link_.send(r->second, record_of(env, scratch), env.cause);
    return;
  }
  auto& waiting = unresolved_[env.to];
  const bool first = waiting.empty();
  const address target = env.to;
  waiting.push_back(std::move(env));
  if (first) resolve(target);
}

void runtime::resolve(address target) {
  request(cmd::worker::resolve, json{{"address", target.value()}},
          [this, target](const json& body) { on_resolved(target, body); });
}

void runtime::on_resolved(address target, const json& body) {
  auto it = unresolved_.find(target);
  if (it == unresolved_.end()) return;
  auto waiting = std::move(it->second);
  unresolved_.erase(it);
  if (!body.value("ok", false)) {
    const auto reason = body.value("error", std::string("unknown address ") + target.to_string());
    for (auto& env : waiting) {
      current_cause_ = env.cause;  // the bounce takes the message's place
      bounce(env.kind, env.from, env.to, env.correlation, env.type, reason);
      current_cause_ = {};
      release(env.cause);
    }
    send_acks();
    return;
  }
  const auto endpoint = body.value("endpoint", std::string());
  if (endpoint == opts_.inbox_endpoint) {
    for (auto& env : waiting) enqueue_local(std::move(env));
    return;
  }
  ipc::data_link::peer* peer = nullptr;
  if (const auto key = body.value("server_key", std::string()); !key.empty()) {
    // A worker of another system, over a direct link; past the bound on
    // them, through this system's gateway as before.
    if (link_.direct_enabled() && (link_.connected(endpoint) || link_.direct_peers() < max_direct_peers_))
      peer = link_.connect(endpoint, key);
    else
      peer = link_.connect(gateway_endpoint_);
  } else {
    peer = link_.connect(endpoint);
  }
  routes_[target] = peer;
  std::string scratch;
  for (auto& env : waiting) link_.send(peer, record_of(env, scratch), env.cause);
}

void runtime::on_inbox() {
  zmq::message_t frame;
  if (!inbox_.recv(frame, zmq::recv_flags::dontwait)) return;
  on_frame(frame.to_string_view(), false);
}

void runtime::on_frame(std::string_view frame, bool direct) {
  auto s = ipc::receive_frame(
      frame, no_loss_, link_, ledger_,
      [this, direct](const ipc::record_view& r, ipc::cause c) {
        current_cause_ = c;
        deliver_remote(r, c, direct);
        current_cause_ = {};
      },
      [this](ipc::cause c) { release(c); });
  if (!s) log_line(TROUPE_LOG_WARN, {}, "dropped malformed data frame: " + s.err().message);
  send_acks();
}

void runtime::send_acks() { ipc::send_acks(ledger_, link_); }

void runtime::deliver_remote(const ipc::record_view& r, ipc::cause c, bool direct) {
  // c holds one count for this record: released here, or by whoever takes
  // the record over (a local envelope).
  if (r.kind == ipc::record_kind::moved) {
    // A worker of another system no longer hosts `from`: ask again where it is.
    if (direct) routes_.erase(r.from);
    return release(c);
  }
  const auto kind = static_cast<troupe_message_kind>(r.kind);
  if (kind == TROUPE_MSG_REPLY || kind == TROUPE_MSG_ASK_FAILED || kind == TROUPE_MSG_DEAD_LETTER) {
    if (r.flags & flag_stale_route) routes_.erase(r.from);
  }
  if (kind == TROUPE_MSG_REPLY || kind == TROUPE_MSG_ASK_FAILED) {
    complete_ask(r.to, kind, r.correlation, r.type, r.payload);
    return release(c);
  }
  if (kind == TROUPE_MSG_EXIT) {
    // Sent on the data path, after the messages the system sent before it
    // (an unload's on_deactivate message comes first); no one else may.
    if (r.from == address(system_id_, ipc::gateway_serial) && actors_.count(r.to))
      enqueue_local(envelope{TROUPE_MSG_EXIT, r.to, {}, 0, "exit", std::string(r.payload)});
    return release(c);
  }
  if (kind == TROUPE_MSG_EXITED) {
    deliver_exit_notice(r);
    return release(c);
  }
  auto it = actors_.find(r.to);
  if (it == actors_.end() && direct) {
    // Sent straight here by another system's worker, but the actor has left
    // (moved, stopped, restarting elsewhere): this system's gateway takes
    // it over, as if it had come the supervisors' way (it holds it for a
    // moving actor, relays it on or bounces it, docs/PROTOCOL.md §5.9), and
    // the sender is told to resolve the address again.
    if (auto gw = routes_.find(address(system_id_, ipc::gateway_serial)); gw != routes_.end()) {
      ledger_.hold(c);
      link_.send(gw->second, ipc::record_view{r.kind, r.flags, r.to, r.from, r.correlation, 0, r.type, r.payload}, c);
      if (const auto back = ledger_.ack_endpoint_of(c); !back.empty() && link_.reachable(back))
        link_.send(link_.connect(std::string(back)),
                   ipc::record_view{ipc::record_kind::moved, 0, {}, r.to, 0, 0, {}, {}});
      return release(c);
    }
  }
  if (it == actors_.end()) {
    bounce(kind, r.from, r.to, r.correlation, r.type, "no actor at " + r.to.to_string() + " (stopped)");
    return release(c);
  }
  if (kind == TROUPE_MSG_POISON) {
    auto parts = ipc::decode_poison(r.payload);
    if (!parts) {
      log_line(TROUPE_LOG_WARN, {}, "dropped malformed poison record: " + parts.err().message);
      return release(c);
    }
    invoke(it->second, kind, r.from, r.correlation, r.type, parts->second, parts->first);
    return release(c);
  }
  invoke(it->second, kind, r.from, r.correlation, r.type, r.payload);
  release(c);
}

void runtime::on_peer_died(const json& body) {
  const auto inbox = body.value("inbox", std::string());
  const ipc::record_origin poisoned{body.value("channel", std::uint64_t{0}), body.value("seq", std::uint64_t{0})};
  const auto reason = body.value("reason", std::string("its worker died"));
  if (inbox.empty() || inbox == opts_.inbox_endpoint || inbox == direct_endpoint_) return;
  ledger_.forget_endpoint(inbox);  // nobody left to acknowledge to
  // A worker of another system: its key opens nothing here any more.
  if (auto key = body.value("key", std::string()); !key.empty()) admitted_keys_.erase(key);
  for (auto r = routes_.begin(); r != routes_.end();) {
    if (r->second->endpoint == inbox)
      r = routes_.erase(r);
    else
      ++r;
  }
  // What it had not acknowledged goes to the restarted actors, in the order
  // it was first sent and ahead of anything sent to them since.
  std::vector<address> order;
  std::unordered_map<address, std::vector<envelope>> again;
  for (auto& batch : link_.take_unacked(inbox)) {
    std::uint64_t channel_id = 0;
    auto s = ipc::decode_batch(*batch.frame, [&](const ipc::record_view& r) {
      if (r.kind == ipc::record_kind::channel) channel_id = r.correlation;
      if (r.seq == 0 || !batch.holds(r.seq) || batch.is_acked(r.seq)) return;  // (its cause released then)
      const ipc::cause c = batch.cause_of(r.seq);
      const auto kind = static_cast<troupe_message_kind>(r.kind);
      if (kind != TROUPE_MSG_TELL && kind != TROUPE_MSG_ASK) {
        // An answer or a bounce for an actor of the dead worker: the asker's
        // state died with it, so there is nothing left to answer.
        return release(c);
      }
      envelope env{kind, r.to, r.from, r.correlation, std::string(r.type), std::string(r.payload)};
      env.cause = c;
      if (channel_id == poisoned.channel_id && r.seq == poisoned.seq) return poison(std::move(env), reason);
      auto& list = again[r.to];
      if (list.empty()) order.push_back(r.to);
      list.push_back(std::move(env));
    });
    if (!s) log_line(TROUPE_LOG_ERROR, {}, "kept frame unreadable (a bug): " + s.err().message);
  }
  link_.forget_server_key(inbox);
  for (address target : order) {
    auto& waiting = unresolved_[target];
    const bool idle = waiting.empty();
    auto& first = again[target];
    waiting.insert(waiting.begin(), std::make_move_iterator(first.begin()), std::make_move_iterator(first.end()));
    if (idle) resolve(target);
  }
  send_acks();
}

void runtime::poison(envelope env, const std::string& reason) {
  if (!actors_.count(env.from)) return release(env.cause);  // the sender is gone too
  log_line(TROUPE_LOG_WARN, env.from,
           "message '" + env.type + "' to " + env.to.to_string() + " returned as poison: " + reason);
  if (env.kind == TROUPE_MSG_ASK) {
    envelope failed{
        TROUPE_MSG_ASK_FAILED, env.from, env.to,
        env.correlation,       "poison", "poison: " + env.to.to_string() + " " + reason + " while handling this ask"};
    failed.cause = env.cause;
    return enqueue_local(std::move(failed));
  }
  envelope back{TROUPE_MSG_POISON, env.from, env.to, 0, std::move(env.type), std::move(env.payload)};
  back.reason = env.to.to_string() + " " + reason + " while handling this message";
  back.cause = env.cause;
  enqueue_local(std::move(back));
}

void runtime::deliver_exit_notice(const ipc::record_view& r) {
  // Only the supervisor knows when an actor stops, restarts or fails; the
  // watched address travels in correlation, since `from` names the gateway
  // (docs/PROTOCOL.md §4.4). A watcher no longer hosted here gets nothing:
  // a notice is never bounced.
  if (r.from != address(system_id_, ipc::gateway_serial)) return;
  auto it = actors_.find(r.to);
  if (it == actors_.end()) return;
  invoke(it->second, TROUPE_MSG_EXITED, address(r.correlation), 0, r.type, {}, r.payload);
}

void runtime::complete_ask(address asker, troupe_message_kind kind, std::uint64_t corr, std::string_view type,
                           std::string_view payload) {
  auto it = asks_.find(corr);
  if (it == asks_.end() || it->second.asker != asker) return;  // timed out already
  it->second.timer->cancel();
  asks_.erase(it);
  auto a = actors_.find(asker);
  if (a == actors_.end()) return;
  invoke(a->second, kind, {}, corr, type, payload);
}

void runtime::bounce(troupe_message_kind kind, address to, address from, std::uint64_t corr, std::string_view type,
                     std::string_view reason, bool stale_route) {
  // Only requests and tells are answered; a lost answer is dropped, since
  // answering it could loop between two workers.
  if (!to.valid() || (kind != TROUPE_MSG_ASK && kind != TROUPE_MSG_TELL)) return;
  const auto back = kind == TROUPE_MSG_ASK ? TROUPE_MSG_ASK_FAILED : TROUPE_MSG_DEAD_LETTER;
  emit(envelope{back, to, from, corr, std::string(type), std::string(reason),
                stale_route ? flag_stale_route : std::uint8_t{0}});
}

// ---------------------------------------------------------------- host functions

int runtime::host_tell(troupe_context* ctx, address to, std::string_view type, std::string_view payload) {
  if (!to.valid()) return fail("tell: invalid address");
  if (!ipc::record_fits(type.size(), payload.size())) return fail("tell: message too large");
  emit(envelope{TROUPE_MSG_TELL, to, ctx->slot->addr, 0, std::string(type), std::string(payload)});
  return 0;
}

std::uint64_t runtime::host_ask(troupe_context* ctx, address to, std::string_view type, std::string_view payload,
                                std::uint32_t timeout_ms) {
  if (!to.valid()) return fail("ask: invalid address"), 0;
  if (!ipc::record_fits(type.size(), payload.size())) return fail("ask: message too large"), 0;
  const std::uint64_t id = next_ask_++;
  const address asker = ctx->slot->addr;
  auto timer = std::make_unique<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(timeout_ms ? timeout_ms : default_ask_timeout_ms));
  timer->async_wait([this, id, asker, to](const boost::system::error_code& ec) {
    if (ec) return;
    complete_ask(asker, TROUPE_MSG_ASK_FAILED, id, "timeout", "ask to " + to.to_string() + " timed out");
  });
  asks_.emplace(id, pending_ask{asker, std::move(timer)});
  emit(envelope{TROUPE_MSG_ASK, to, asker, id, std::string(type), std::string(payload)});
  return id;
}

int runtime::host_reply(troupe_context* ctx, std::string_view type, std::string_view payload) {
  if (ctx->kind != TROUPE_MSG_ASK) return fail("reply: the message being handled is not an ask");
  if (ctx->replied) return fail("reply: this ask was already answered");
  const int rc = host_reply_to(ctx, ctx->from, ctx->correlation, type, payload);
  ctx->replied = rc == 0;  // a refused reply leaves the asker to get ask_failed
  return rc;
}

int runtime::host_reply_to(troupe_context* ctx, address to, std::uint64_t correlation, std::string_view type,
                           std::string_view payload) {
  if (correlation == 0) return fail("reply: no ask to answer (invalid reply handle)");
  if (!ipc::record_fits(type.size(), payload.size())) return fail("reply: message too large");
  if (!to.valid()) return 0;  // an ask from no one (a malformed peer): nobody to answer
  emit(envelope{TROUPE_MSG_REPLY, to, ctx->slot->addr, correlation, std::string(type), std::string(payload)});
  return 0;
}

troupe_address runtime::host_spawn(troupe_context* ctx, std::string_view type, std::string_view package,
                                   std::string_view name) {
  if (type.empty()) return fail("spawn: empty actor type"), 0;
  const address a = next_address();
  if (!a.valid()) return fail("spawn: no address available yet (worker not registered)"), 0;
  json body{{"address", a.value()},
            {"type", std::string(type)},
            {"package", package.empty() ? opts_.package_id : std::string(package)},
            {"parent", ctx->slot->addr.value()}};
  if (!name.empty()) body["name"] = std::string(name);
  const address parent = ctx->slot->addr;
  request(cmd::worker::spawn, body, [this, a, parent](const json& reply) {
    if (reply.value("ok", false)) return;
    log_line(TROUPE_LOG_WARN, parent,
             "spawn of " + a.to_string() + " failed: " + reply.value("error", std::string("no reason")));
  });
  return a.value();
}

int runtime::host_stop(troupe_context*, address target) {
  if (!target.valid()) return fail("stop: invalid address");
  if (actors_.count(target)) {
    enqueue_local(envelope{TROUPE_MSG_EXIT, target, {}, 0, "exit", "stopped"});
    return 0;
  }
  request(cmd::worker::kill, json{{"address", target.value()}}, [](const json&) {});
  return 0;
}

std::uint64_t runtime::host_schedule(troupe_context* ctx, std::uint32_t delay_ms, std::string_view type,
                                     std::string_view payload) {
  if (!ipc::record_fits(type.size(), payload.size())) return fail("schedule: message too large"), 0;
  const std::uint64_t id = next_timer_++;
  const address owner = ctx->slot->addr;
  auto timer = std::make_unique<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(delay_ms));
  timer->async_wait(
      [this, id, owner, t = std::string(type), p = std::string(payload)](const boost::system::error_code& ec) mutable {
        if (ec) return;
        timers_.erase(id);
        enqueue_local(envelope{TROUPE_MSG_TIMER, owner, owner, id, std::move(t), std::move(p)});
      });
  timers_.emplace(id, timer_entry{owner, std::move(timer)});
  return id;
}

int runtime::host_cancel(std::uint64_t timer_id) {
  auto it = timers_.find(timer_id);
  if (it == timers_.end()) return fail("cancel: no such timer");
  it->second.timer->cancel();
  timers_.erase(it);
  return 0;
}

void runtime::host_log(troupe_context* ctx, int level, std::string_view text) {
  log_line(level, ctx->slot->addr, text);
}

troupe_address runtime::host_lookup(std::string_view name) {
  if (auto it = names_.find(std::string(name)); it != names_.end()) return it->second.value();
  auto r = call_now(cmd::worker::lookup, json{{"name", std::string(name)}});
  if (!r) return fail("lookup of '" + std::string(name) + "': " + r.err().message), 0;
  address a(r->value("address", std::uint64_t{0}));
  names_[std::string(name)] = a;
  return a.value();
}

int runtime::host_watch(troupe_context* ctx, address target, bool on) {
  if (!target.valid()) return fail(on ? "watch: invalid address" : "unwatch: invalid address");
  // The supervisor sees every stop, restart and failure, so it keeps the
  // watches and sends the notices (docs/PROTOCOL.md, "watch").
  const address watcher = ctx->slot->addr;
  request(on ? cmd::worker::watch : cmd::worker::unwatch,
          json{{"watcher", watcher.value()}, {"target", target.value()}}, [watcher, target, on](const json& reply) {
            if (reply.value("ok", false)) return;
            log_line(TROUPE_LOG_WARN, watcher,
                     std::string(on ? "watch" : "unwatch") + " of " + target.to_string() +
                         " failed: " + reply.value("error", std::string("no reason")));
          });
  return 0;
}

result<json> runtime::call_now(std::string_view command, json body) {
  // Blocks this worker's loop for one control round trip (only on rare
  // paths: a first name look-up, an address block used up inside one
  // handler). Other control traffic arriving meanwhile is kept, in order,
  // for the loop.
  const std::uint64_t rid = next_rid_++;
  body["rid"] = rid;
  send_event(command, body);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto resume = [this] {
    asio::post(io_, [this] { drain_deferred_control(); });
    control_watch_->kick();
  };
  while (std::chrono::steady_clock::now() < deadline) {
    zmq::pollitem_t item{control_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(50));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    auto parts = ipc::recv_multipart(control_);
    auto m = ipc::decode_control(parts);
    if (m && m->command == cmd::reply && m->body.value("rid", std::uint64_t{0}) == rid) {
      resume();
      if (!m->body.value("ok", false)) return make_error(errc::refused, m->body.value("error", std::string("refused")));
      return std::move(m->body);
    }
    deferred_control_.push_back(std::move(parts));
  }
  resume();
  return make_error(errc::timeout, "no answer from the supervisor within 2 s");
}

}  // namespace troupe::worker
