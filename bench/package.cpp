// bench/package.cpp — the actor types troupe-bench drives (docs/PERFORMANCE.md).
//
// Hot-path messages use short type tags and binary payloads, so what is
// measured is troupe's delivery, not JSON. Control messages from the driver
// are asks of type "json" with an object {"op": ...}.
//
// The SDK can only reply inside the handler of the ask, so long runs are
// started by one ask ("run", "blast", "build", ...) that is answered at once,
// and the driver polls {"op":"result"} until the run is done.
//
// Times are std::chrono::steady_clock nanoseconds: CLOCK_MONOTONIC on Linux,
// one clock for every process of the host, so a time taken in one worker can
// be compared with one taken in another.
//
//   Ponger   ask "p"  → reply "p" with the same payload
//            tell "b" → counted; the arrival of the expected n-th is timed
//            {"op":"reset","expect":N} / {"op":"stats"}
//   Pinger   {"op":"run","target":A,"n":N,"payload_bytes":B}: N sequential
//            asks "p" to A, each round trip timed; {"op":"result"} → p50/p99
//   Blaster  {"op":"blast","target":A,"n":N,"chunk":C,"payload_bytes":B}:
//            N tells "b" to A, C per handler call, continued by a self-tell
//   Ring     {"op":"build","n":N} spawns N RingNode and links them in a ring;
//            {"op":"run","laps":L} passes a token L times around it
//   RingNode tell "l" (next, coordinator) links; tell "t" (hops left) passes
//   Spawner  {"op":"spawn","n":N,"type":T}: spawns N actors of type T here
//   Idle     answers ask "ping"; nothing else (the idle actor measured)
//   Where    answers any ask with {"pid": P}, P its worker's pid: which
//            system answered (convention figures; only group "benchconv"
//            lists it)
#include <troupe/actor.hpp>
#include <troupe/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

using troupe::address;
using troupe::context;
using troupe::json;
using troupe::message;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string u64s(std::uint64_t a, std::uint64_t b = 0, bool two = false) {
  std::string s(two ? 16 : 8, '\0');
  std::memcpy(s.data(), &a, 8);
  if (two) std::memcpy(s.data() + 8, &b, 8);
  return s;
}

std::uint64_t read_u64(std::string_view p, std::size_t at = 0) {
  std::uint64_t v = 0;
  if (p.size() >= at + 8) std::memcpy(&v, p.data() + at, 8);
  return v;
}

/// The control-message object of a "json" ask, or nullopt for anything else.
std::optional<json> control_of(const message& m) {
  if (!m.is_ask() || m.type() != troupe::json_type) return std::nullopt;
  auto j = troupe::parse_json(m.payload());
  if (!j || !j->is_object()) return std::nullopt;
  return j;
}

double percentile_us(std::vector<std::int64_t> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]) / 1000.0;
}

// ------------------------------------------------------------------ Ponger

class ponger final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    const auto t = m.type();
    if (t == "b" && m.kind() == TROUPE_MSG_TELL) {
      if (++count_ == expect_) last_ns_ = now_ns();
      return;
    }
    if (t == "p" && m.is_ask()) {
      ctx.reply("p", m.payload());
      return;
    }
    if (t == "ping" && m.is_ask()) return ctx.reply("pong", {});
    auto c = control_of(m);
    if (!c) return;
    const auto op = c->value("op", std::string());
    if (op == "reset") {
      count_ = 0;
      last_ns_ = 0;
      expect_ = c->value("expect", std::uint64_t{0});
      troupe::reply_json(ctx, json{{"ok", true}});
    } else if (op == "stats") {
      troupe::reply_json(ctx, json{{"count", count_}, {"last_ns", last_ns_}});
    } else {
      troupe::reply_json(ctx, json{{"error", "unknown op"}});
    }
  }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t expect_ = 0;
  std::int64_t last_ns_ = 0;
};

// ------------------------------------------------------------------ Pinger

class pinger final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    if (m.type() == "ping" && m.is_ask()) return ctx.reply("pong", {});
    auto c = control_of(m);
    if (!c) return;
    const auto op = c->value("op", std::string());
    if (op == "run") {
      if (running_) return troupe::reply_json(ctx, json{{"error", "already running"}});
      target_ = address(c->value("target", std::uint64_t{0}));
      left_ = c->value("n", std::uint64_t{1000});
      payload_.assign(c->value("payload_bytes", std::size_t{64}), 'x');
      samples_.clear();
      samples_.reserve(left_);
      failures_ = 0;
      running_ = true;
      troupe::reply_json(ctx, json{{"started", true}});
      next(ctx);
    } else if (op == "result") {
      json r{{"done", !running_}, {"n", samples_.size()}, {"failures", failures_}};
      if (!running_) {
        r["p50_us"] = percentile_us(samples_, 0.50);
        r["p99_us"] = percentile_us(samples_, 0.99);
      }
      troupe::reply_json(ctx, r);
    } else {
      troupe::reply_json(ctx, json{{"error", "unknown op '" + op + "'"}});
    }
  }

 private:
  void next(context& ctx) {
    if (left_ == 0) {
      running_ = false;
      return;
    }
    --left_;
    const std::int64_t t0 = now_ns();
    ctx.ask(target_, "p", payload_, std::chrono::seconds(5), [this, t0](context& c, const troupe::ask_result& r) {
      if (r.ok())
        samples_.push_back(now_ns() - t0);
      else
        ++failures_;
      next(c);
    });
  }

  address target_;
  std::uint64_t left_ = 0;
  std::string payload_;
  std::vector<std::int64_t> samples_;
  std::uint64_t failures_ = 0;
  bool running_ = false;
};

// ------------------------------------------------------------------ Blaster

class blaster final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    if (m.type() == "more" && m.kind() == TROUPE_MSG_TELL) return more(ctx);
    if (m.type() == "ping" && m.is_ask()) return ctx.reply("pong", {});
    auto c = control_of(m);
    if (!c) return;
    const auto op = c->value("op", std::string());
    if (op == "blast") {
      target_ = address(c->value("target", std::uint64_t{0}));
      left_ = c->value("n", std::uint64_t{100000});
      chunk_ = std::max<std::uint64_t>(1, c->value("chunk", std::uint64_t{1000}));
      payload_.assign(c->value("payload_bytes", std::size_t{64}), 'x');
      sent_ = 0;
      troupe::reply_json(ctx, json{{"started", true}});
      first_ns_ = now_ns();
      more(ctx);
    } else if (op == "result") {
      troupe::reply_json(ctx, json{{"first_ns", first_ns_}, {"sent", sent_}, {"done", left_ == 0}});
    } else {
      troupe::reply_json(ctx, json{{"error", "unknown op '" + op + "'"}});
    }
  }

 private:
  void more(context& ctx) {
    const std::uint64_t n = std::min(chunk_, left_);
    for (std::uint64_t i = 0; i < n; ++i) ctx.tell(target_, "b", payload_);
    left_ -= n;
    sent_ += n;
    // A self-tell queues behind the chunk just sent (local delivery is FIFO),
    // and data-plane batches leave when full, so the loop never floods itself.
    if (left_ > 0) ctx.tell(ctx.self(), "more");
  }

  address target_;
  std::uint64_t left_ = 0;
  std::uint64_t chunk_ = 1000;
  std::uint64_t sent_ = 0;
  std::string payload_;
  std::int64_t first_ns_ = 0;
};

// ------------------------------------------------------------------ spawning in bulk

/// Spawns n actors of one type from inside handlers, in chunks.
///
/// Two limits of the runtime shape this (docs/PERFORMANCE.md, "Findings"):
///  - A worker hands out addresses from blocks the supervisor leases it; when
///    a block runs dry in the middle of a handler, spawn throws until the next
///    block arrives, so spawning resumes from a timer, which lets the loop read
///    the lease answer.
///  - Every spawn is one control message to the supervisor and two back, and
///    the control sockets drop what exceeds ZeroMQ's default high-water mark
///    (1000) without a word. So at most `chunk_` spawns are outstanding: the
///    next chunk starts once the last actor of this one answers (the
///    supervisor resolves an address only once its actor runs, and creations
///    reach the worker in spawn order).
class bulk_spawner {
 public:
  static constexpr int default_chunk = 200;

  void begin(std::string type, std::uint64_t n, int chunk = default_chunk) {
    type_ = std::move(type);
    chunk_ = std::max(1, chunk);
    want_ = n;
    spawned_.clear();
    spawned_.reserve(n);
    retries_ = 0;
    error_.clear();
    done_ = false;
  }
  /// Goes on spawning. Returns true once all are spawned and the last one
  /// answered; otherwise a message of type `resume` comes back to this actor
  /// later, on which step() is to be called again.
  bool step(context& ctx, std::string_view resume) {
    if (done_) return true;
    if (!error_.empty()) return false;
    for (int budget = chunk_; spawned_.size() < want_ && budget > 0; --budget) {
      try {
        spawned_.push_back(ctx.spawn(type_));
      } catch (const troupe::host_error&) {
        ++retries_;
        ctx.schedule(std::chrono::milliseconds(1), resume);
        return false;
      }
    }
    if (spawned_.empty()) return done_ = true;
    ctx.ask(spawned_.back(), "ping", {}, std::chrono::seconds(60),
            [this, r = std::string(resume)](context& c, const troupe::ask_result& res) {
              if (!res.ok()) {
                error_ =
                    "spawned actor " + spawned_.back().to_string() + " does not answer: " + std::string(res.error());
                return;
              }
              done_ = spawned_.size() == want_;
              c.tell(c.self(), r);
            });
    return false;
  }
  [[nodiscard]] const std::vector<address>& spawned() const { return spawned_; }
  [[nodiscard]] std::uint64_t retries() const { return retries_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  std::string type_;
  int chunk_ = default_chunk;
  std::uint64_t want_ = 0;
  std::vector<address> spawned_;
  std::uint64_t retries_ = 0;
  std::string error_;
  bool done_ = false;
};

/// Whether m is the resume message of a bulk_spawner (a self-tell or a timer).
bool is_resume(const message& m) {
  return m.type() == "spawn_more" && (m.kind() == TROUPE_MSG_TELL || m.kind() == TROUPE_MSG_TIMER);
}

// ------------------------------------------------------------------ Ring

class ring_node final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    if (m.kind() == TROUPE_MSG_DEAD_LETTER) {
      // The payload is the reason, not a token: report, never pass it on.
      ctx.log_warn("dead letter: " + std::string(m.payload()));
      return;
    }
    const auto t = m.type();
    if (t == "t") {
      const std::uint64_t left = read_u64(m.payload());
      if (left == 0)
        ctx.tell(coordinator_, "done");
      else
        ctx.tell(next_, "t", u64s(left - 1));
    } else if (t == "l") {
      next_ = address(read_u64(m.payload(), 0));
      coordinator_ = address(read_u64(m.payload(), 8));
    } else if (t == "ping" && m.is_ask()) {
      ctx.reply("pong", {});
    }
  }

 private:
  address next_;
  address coordinator_;
};

class ring final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    if (m.kind() == TROUPE_MSG_DEAD_LETTER) {
      error_ = "dead letter: " + std::string(m.payload());
      return;
    }
    const auto t = m.type();
    if (is_resume(m)) {
      if (spawner_.step(ctx, "spawn_more")) link(ctx);
      return;
    }
    if (t == "done" && m.kind() == TROUPE_MSG_TELL) {
      end_ns_ = now_ns();
      state_ = "ready";
      return;
    }
    if (t == "linked" && m.kind() == TROUPE_MSG_TELL) {
      state_ = "ready";
      build_ms_ = static_cast<double>(now_ns() - build_start_ns_) / 1e6;
      return;
    }
    if (t == "ping" && m.is_ask()) return ctx.reply("pong", {});
    auto c = control_of(m);
    if (!c) return;
    const auto op = c->value("op", std::string());
    if (op == "build") {
      if (state_ != "empty") return troupe::reply_json(ctx, json{{"error", "built already"}});
      state_ = "building";
      build_start_ns_ = now_ns();
      spawner_.begin("RingNode", std::max<std::uint64_t>(1, c->value("n", std::uint64_t{10000})));
      troupe::reply_json(ctx, json{{"started", true}});
      if (spawner_.step(ctx, "spawn_more")) link(ctx);
    } else if (op == "run") {
      if (state_ != "ready") return troupe::reply_json(ctx, json{{"error", "not ready: " + state_}});
      hops_ = c->value("laps", std::uint64_t{100}) * spawner_.spawned().size();
      state_ = "running";
      troupe::reply_json(ctx, json{{"started", true}});
      end_ns_ = 0;
      start_ns_ = now_ns();
      ctx.tell(spawner_.spawned().front(), "t", u64s(hops_));
    } else if (op == "result") {
      json r{{"state", state_},
             {"nodes", spawner_.spawned().size()},
             {"spawn_retries", spawner_.retries()},
             {"build_ms", build_ms_}};
      if (state_ == "ready" && end_ns_ > 0) {
        r["hops"] = hops_;
        r["elapsed_ns"] = end_ns_ - start_ns_;
        r["per_hop_ns"] = static_cast<double>(end_ns_ - start_ns_) / static_cast<double>(hops_);
      }
      const std::string& why = error_.empty() ? spawner_.error() : error_;
      if (!why.empty()) r["error"] = why;
      troupe::reply_json(ctx, r);
    } else {
      troupe::reply_json(ctx, json{{"error", "unknown op '" + op + "'"}});
    }
  }

 private:
  void link(context& ctx) {
    const auto& nodes = spawner_.spawned();
    const std::uint64_t self = ctx.self().value();
    for (std::size_t i = 0; i < nodes.size(); ++i)
      ctx.tell(nodes[i], "l", u64s(nodes[(i + 1) % nodes.size()].value(), self, true));
    ctx.tell(ctx.self(), "linked");  // local delivery is FIFO: after every link
  }

  bulk_spawner spawner_;
  std::string state_ = "empty";
  std::string error_;
  std::uint64_t hops_ = 0;
  std::int64_t start_ns_ = 0;
  std::int64_t end_ns_ = 0;
  std::int64_t build_start_ns_ = 0;
  double build_ms_ = 0;
};

// ------------------------------------------------------------------ Spawner, Idle

class spawner final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    if (m.kind() == TROUPE_MSG_DEAD_LETTER) {
      error_ = "dead letter: " + std::string(m.payload());
      return;
    }
    if (is_resume(m)) {
      if (spawner_.step(ctx, "spawn_more")) finish();
      return;
    }
    if (m.type() == "ping" && m.is_ask()) return ctx.reply("pong", {});
    auto c = control_of(m);
    if (!c) return;
    const auto op = c->value("op", std::string());
    if (op == "spawn") {
      state_ = "spawning";
      start_ns_ = now_ns();
      spawner_.begin(c->value("type", std::string("Idle")), c->value("n", std::uint64_t{10000}),
                     c->value("chunk", bulk_spawner::default_chunk));
      troupe::reply_json(ctx, json{{"started", true}});
      if (spawner_.step(ctx, "spawn_more")) finish();
    } else if (op == "ping") {
      troupe::reply_json(ctx, json{{"pong", true}});
    } else if (op == "result") {
      json r{{"state", state_},
             {"spawned", spawner_.spawned().size()},
             {"spawn_retries", spawner_.retries()},
             {"elapsed_ms", elapsed_ms_}};
      const std::string& why = error_.empty() ? spawner_.error() : error_;
      if (!why.empty()) r["error"] = why;
      troupe::reply_json(ctx, r);
    } else {
      troupe::reply_json(ctx, json{{"error", "unknown op '" + op + "'"}});
    }
  }

 private:
  void finish() {
    state_ = "done";
    elapsed_ms_ = static_cast<double>(now_ns() - start_ns_) / 1e6;
  }

  bulk_spawner spawner_;
  std::string state_ = "idle";
  std::string error_;
  std::int64_t start_ns_ = 0;
  double elapsed_ms_ = 0;
};

class idle final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    if (m.is_ask()) ctx.reply("pong", {});
  }
};

class where final : public troupe::actor {
 public:
  void receive(context& ctx, const message& m) override {
    if (m.is_ask()) troupe::reply_json(ctx, json{{"pid", static_cast<long>(::getpid())}});
  }
};

}  // namespace

TROUPE_PACKAGE(troupe::actor_type<ponger>("Ponger"), troupe::actor_type<pinger>("Pinger"),
               troupe::actor_type<blaster>("Blaster"), troupe::actor_type<ring>("Ring"),
               troupe::actor_type<ring_node>("RingNode"), troupe::actor_type<spawner>("Spawner"),
               troupe::actor_type<idle>("Idle"), troupe::actor_type<where>("Where"))
