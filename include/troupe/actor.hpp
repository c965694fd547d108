// troupe/actor.hpp — start here. The C++ SDK for package authors.
//
// An actor type is a class deriving from troupe::actor with a receive()
// handler. A package lists its actor types once with TROUPE_PACKAGE:
//
//   struct echo final : troupe::actor {
//     void receive(troupe::context& ctx, const troupe::message& m) override {
//       if (m.is_ask()) ctx.reply(m.type(), m.payload());
//     }
//   };
//   TROUPE_PACKAGE(troupe::actor_type<echo>("Echo"))
//
// Everything here is header-only and compiled into the package, so nothing but
// the C structures of troupe/abi.h crosses into the worker. Exceptions thrown
// by a handler are caught at the boundary and reported as the actor's failure.
//
// Threading: the worker calls every actor of a package on one thread; a
// context is valid only inside the call it was passed to.
#pragma once

#include <troupe/abi.h>
#include <troupe/address.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe {

class context;

/// Whom to answer for an ask, kept to reply after the handler has returned
/// (context::reply_later). Copyable plain data.
struct reply_handle {
  address asker;
  std::uint64_t correlation = 0;
};

/// A message being handled. Borrowed: copy what must outlive the handler.
class message {
 public:
  explicit message(const troupe_message& raw) : raw_(&raw) {}

  [[nodiscard]] troupe_message_kind kind() const { return static_cast<troupe_message_kind>(raw_->kind); }
  [[nodiscard]] bool is_ask() const { return raw_->kind == TROUPE_MSG_ASK; }
  [[nodiscard]] bool is_exit() const { return raw_->kind == TROUPE_MSG_EXIT; }
  [[nodiscard]] address from() const { return address(raw_->from); }
  [[nodiscard]] std::uint64_t correlation() const { return raw_->correlation; }
  [[nodiscard]] std::string_view type() const { return {raw_->type, raw_->type_len}; }
  /// Payload bytes as a string view (payloads are often text or JSON).
  [[nodiscard]] std::string_view payload() const {
    return {reinterpret_cast<const char*>(raw_->payload), raw_->payload_len};
  }
  /// Why: for a POISON or EXITED message (empty otherwise).
  [[nodiscard]] std::string_view reason() const {
    return raw_->reason == nullptr ? std::string_view{} : std::string_view(raw_->reason, raw_->reason_len);
  }
  [[nodiscard]] bool is_poison() const { return raw_->kind == TROUPE_MSG_POISON; }
  [[nodiscard]] bool is_exited() const { return raw_->kind == TROUPE_MSG_EXITED; }
  [[nodiscard]] const troupe_message& raw() const { return *raw_; }
  /// For an ask: what reply_later needs to answer it after this handler.
  [[nodiscard]] reply_handle reply_handle_of() const { return {from(), correlation()}; }

 private:
  const troupe_message* raw_;
};

/// The outcome of an ask: the reply, or the reason it failed.
class ask_result {
 public:
  explicit ask_result(const message& m) : msg_(m) {}
  [[nodiscard]] bool ok() const { return msg_.kind() == TROUPE_MSG_REPLY; }
  /// The reply (valid when ok()).
  [[nodiscard]] const message& reply() const { return msg_; }
  /// Why it failed (valid when !ok()): timeout, unknown address, ...
  [[nodiscard]] std::string_view error() const { return ok() ? std::string_view{} : msg_.payload(); }

 private:
  const message& msg_;
};

/// Thrown by context operations the host refused (unknown package, ...).
class host_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class actor;

/// Options of context::spawn.
struct spawn_options {
  std::string_view package;  ///< group name or package id; empty: this package
  std::string_view name;     ///< global name; empty: none
};

/// What an actor can do. Valid only during the call it was passed to.
class context {
 public:
  using ask_callback = std::function<void(context&, const ask_result&)>;

  context(const troupe_host_v1* host, troupe_context* raw, actor* self) : host_(host), raw_(raw), self_actor_(self) {}

  [[nodiscard]] address self() const { return address(host_->self(raw_)); }

  /// One-way message. An undeliverable one comes back as a DEAD_LETTER.
  void tell(address to, std::string_view type, std::string_view payload = {}) {
    check(host_->tell(raw_, to.value(), type.data(), type.size(), bytes(payload), payload.size()));
  }

  /// Request with a timeout; then() runs on this actor with the reply or the
  /// reason of failure.
  void ask(address to, std::string_view type, std::string_view payload, std::chrono::milliseconds timeout,
           ask_callback then);

  /// Answers the ask being handled (an ask taken back from the stash too).
  void reply(std::string_view type, std::string_view payload) {
    if (replayed_ask_ != nullptr) return reply_later(*replayed_ask_, type, payload);
    check(host_->reply(raw_, type.data(), type.size(), bytes(payload), payload.size()));
  }

  /// Answers an ask whose handler already returned (an actor that first asks
  /// others, say): keep m.reply_handle_of() while handling the ask.
  void reply_later(const reply_handle& h, std::string_view type, std::string_view payload) {
    check(host_->reply_to(raw_, h.asker.value(), h.correlation, type.data(), type.size(), bytes(payload),
                          payload.size()));
  }

  /// Creates an actor; its address is usable at once.
  address spawn(std::string_view type_name, spawn_options opts = {}) {
    troupe_address a = host_->spawn(raw_, type_name.data(), type_name.size(), opts.package.data(), opts.package.size(),
                                    opts.name.data(), opts.name.size());
    if (a == 0) throw host_error(host_->last_error());
    return address(a);
  }

  /// Watches target: EXITED messages (from = target, type = "stopped",
  /// "restarted" or "failed", reason()) come each time it stops, restarts or fails.
  void watch(address target) { check(host_->watch(raw_, target.value())); }
  void unwatch(address target) { check(host_->unwatch(raw_, target.value())); }

  /// Stops target (it gets an exit request), or this actor with no argument.
  void stop(address target) { check(host_->stop(raw_, target.value())); }
  void stop() { stop(self()); }

  /// Sends this actor a TIMER message of the given type after delay.
  std::uint64_t schedule(std::chrono::milliseconds delay, std::string_view type, std::string_view payload = {}) {
    std::uint64_t id = host_->schedule(raw_, static_cast<std::uint32_t>(delay.count()), type.data(), type.size(),
                                       bytes(payload), payload.size());
    if (id == 0) throw host_error(host_->last_error());
    return id;
  }
  void cancel(std::uint64_t timer_id) { host_->cancel(raw_, timer_id); }

  /// The address under a global name, or an invalid address when unknown.
  [[nodiscard]] address lookup(std::string_view name) { return address(host_->lookup(raw_, name.data(), name.size())); }

  /// A line of the system's log under this actor's address; below the
  /// system's --log-level it is dropped. Keep payloads to log_debug: the
  /// operator turns debug on knowingly (docs/SECURITY.md).
  void log(troupe_log_level level, std::string_view text) { host_->log(raw_, level, text.data(), text.size()); }
  void log_debug(std::string_view text) { log(TROUPE_LOG_DEBUG, text); }
  void log_info(std::string_view text) { log(TROUPE_LOG_INFO, text); }
  void log_warn(std::string_view text) { log(TROUPE_LOG_WARN, text); }
  void log_error(std::string_view text) { log(TROUPE_LOG_ERROR, text); }

  [[nodiscard]] troupe_context* raw() const { return raw_; }
  [[nodiscard]] const troupe_host_v1* host() const { return host_; }

 private:
  static const std::uint8_t* bytes(std::string_view s) { return reinterpret_cast<const std::uint8_t*>(s.data()); }
  void check(int rc) const {
    if (rc != 0) throw host_error(host_->last_error());
  }

  friend class actor;
  const troupe_host_v1* host_;
  troupe_context* raw_;
  actor* self_actor_;
  const reply_handle* replayed_ask_ = nullptr;  // handling an ask that was stashed: reply() answers it
};

/// Base class of actor types. One instance per actor; handlers of one actor
/// never run concurrently.
class actor {
 public:
  actor() = default;
  actor(const actor&) = delete;
  actor& operator=(const actor&) = delete;
  virtual ~actor() = default;

  /// Called once after creation, before any message.
  virtual void on_start(context&) {}
  /// Called for every TELL, ASK, TIMER, DEAD_LETTER, POISON and EXITED
  /// message. A dead letter keeps the type tag of the message that could not
  /// be delivered (its payload is the reason); a poison notice keeps the
  /// tell's type and payload (reason() says how the receiver died); an exit
  /// notice comes from the watched actor. Check kind() before type().
  virtual void receive(context& ctx, const message& msg) = 0;
  /// Called on an exit request; the actor is destroyed afterwards.
  virtual void on_exit(context&) {}

  /// A handler in place of receive(), for selective receive.
  using behavior = std::function<void(context&, const message&)>;

 protected:
  // Selective receive (DESIGN.md §4), as Akka's become/stash and Erlang's
  // receive with patterns: an actor in a state where some messages cannot be
  // handled yet stashes them, and takes them back when its state changes.
  //
  //   void receive(context& ctx, const message& m) override {   // closed
  //     if (m.type() == "open") { become(open_handler()); unstash_all(); }
  //     else stash(m);
  //   }
  //
  // The stash belongs to this instance: a restart (an exception in a
  // handler) or an exit drops it, and an ask in it is then answered by its
  // timeout. Replies, acks and exit requests never reach the stash.

  /// The next messages go to b instead of receive(), until become() again or unbecome().
  void become(behavior b) {
    retired_.push_back(std::move(behavior_));  // it may be the one running: freed after it returns
    behavior_ = std::move(b);
  }
  /// Back to receive().
  void unbecome() { become(nullptr); }
  /// Keeps a copy of m to handle it later; an ask in it is answered by
  /// ctx.reply() in the handler that takes it back.
  void stash(const message& m) {
    const troupe_message& r = m.raw();
    stash_.push_back(stashed{r.kind, r.from, r.correlation, std::string(m.type()), std::string(m.payload()),
                             std::string(m.reason())});
  }
  /// The stashed messages come back, oldest first, before any newer message:
  /// once the current handler has returned.
  void unstash_all() {
    replay_.insert(replay_.begin() + static_cast<std::ptrdiff_t>(replay_next_), std::make_move_iterator(stash_.begin()),
                   std::make_move_iterator(stash_.end()));
    stash_.clear();
  }
  /// How many messages wait in the stash.
  [[nodiscard]] std::size_t stash_size() const { return stash_.size(); }

 public:
  /// Entry from the C boundary: routes replies to pending asks, exits to
  /// on_exit, the rest to receive.
  void dispatch(context& ctx, const message& msg) {
    retired_.clear();
    switch (msg.kind()) {
      case TROUPE_MSG_REPLY:
      case TROUPE_MSG_ASK_FAILED: {
        auto it = pending_asks_.find(msg.correlation());
        if (it == pending_asks_.end()) return;  // late reply after a timeout
        auto then = std::move(it->second);
        pending_asks_.erase(it);
        then(ctx, ask_result(msg));
        return;
      }
      case TROUPE_MSG_EXIT:
        on_exit(ctx);
        return;
      default:
        deliver(ctx, msg);
    }
    // What unstash_all() gave back, before the next message.
    while (replay_next_ < replay_.size()) {
      const stashed s = std::move(replay_[replay_next_++]);
      if (replay_next_ == replay_.size()) {
        replay_.clear();
        replay_next_ = 0;
      }
      const troupe_message raw{
          s.kind,           s.from,          s.correlation,
          s.type.data(),    s.type.size(),   reinterpret_cast<const std::uint8_t*>(s.payload.data()),
          s.payload.size(), s.reason.data(), s.reason.size()};
      const message m(raw);
      const reply_handle h = m.reply_handle_of();
      ctx.replayed_ask_ = m.is_ask() ? &h : nullptr;
      try {
        deliver(ctx, m);
      } catch (...) {
        ctx.replayed_ask_ = nullptr;
        throw;
      }
      ctx.replayed_ask_ = nullptr;
    }
  }

 private:
  friend class context;
  struct stashed {
    std::uint32_t kind;
    troupe_address from;
    std::uint64_t correlation;
    std::string type, payload, reason;
  };
  void deliver(context& ctx, const message& m) {
    if (behavior_)
      behavior_(ctx, m);
    else
      receive(ctx, m);
  }
  std::unordered_map<std::uint64_t, context::ask_callback> pending_asks_;
  behavior behavior_;
  std::vector<behavior> retired_;
  // Vectors, not deques: libstdc++'s deque allocates about 600 bytes when
  // constructed, and every actor has these, nearly always empty.
  std::vector<stashed> stash_;
  std::vector<stashed> replay_;  // consumed from replay_next_ on
  std::size_t replay_next_ = 0;
};

inline void context::ask(address to, std::string_view type, std::string_view payload, std::chrono::milliseconds timeout,
                         ask_callback then) {
  std::uint64_t id = host_->ask(raw_, to.value(), type.data(), type.size(), bytes(payload), payload.size(),
                                static_cast<std::uint32_t>(timeout.count()));
  if (id == 0) throw host_error(host_->last_error());
  self_actor_->pending_asks_.emplace(id, std::move(then));
}

namespace detail {

inline const troupe_host_v1*& host_table() {
  static const troupe_host_v1* host = nullptr;
  return host;
}

inline void copy_error(troupe_error* err, const char* text) {
  std::strncpy(err->text, text, TROUPE_ERROR_TEXT - 1);
  err->text[TROUPE_ERROR_TEXT - 1] = '\0';
}

template <class T>
void* create(troupe_context* raw, troupe_error* err) {
  try {
    auto* a = new T();
    context ctx(host_table(), raw, a);
    try {
      a->on_start(ctx);
    } catch (...) {
      delete a;
      throw;
    }
    return a;
  } catch (const std::exception& e) {
    copy_error(err, e.what());
  } catch (...) {
    copy_error(err, "unknown exception in constructor or on_start");
  }
  return nullptr;
}

inline int handle(void* state, troupe_context* raw, const troupe_message* msg, troupe_error* err) {
  auto* a = static_cast<actor*>(state);
  try {
    context ctx(host_table(), raw, a);
    a->dispatch(ctx, message(*msg));
    return 0;
  } catch (const std::exception& e) {
    copy_error(err, e.what());
  } catch (...) {
    copy_error(err, "unknown exception in handler");
  }
  return 1;
}

inline void destroy(void* state) { delete static_cast<actor*>(state); }

}  // namespace detail

/// Describes actor type T under a name, for TROUPE_PACKAGE.
template <class T>
constexpr troupe_actor_type_v1 actor_type(const char* name) {
  static_assert(std::is_base_of_v<actor, T>, "actor types derive from troupe::actor");
  return troupe_actor_type_v1{name, &detail::create<T>, &detail::handle, &detail::destroy};
}

}  // namespace troupe

/// Exports the package entry point listing the given actor types.
#define TROUPE_PACKAGE(...)                                                                               \
  extern "C" __attribute__((visibility("default"))) int troupe_package_entry_v1(                          \
      uint32_t host_abi_version, const troupe_host_v1* host, troupe_package_v1* out, troupe_error* err) { \
    static const troupe_actor_type_v1 types[] = {__VA_ARGS__};                                            \
    if (host_abi_version != TROUPE_ABI_VERSION) {                                                         \
      ::troupe::detail::copy_error(err, "package built for another troupe ABI version");                  \
      return 1;                                                                                           \
    }                                                                                                     \
    ::troupe::detail::host_table() = host;                                                                \
    out->abi_version = TROUPE_ABI_VERSION;                                                                \
    out->types = types;                                                                                   \
    out->type_count = sizeof(types) / sizeof(types[0]);                                                   \
    return 0;                                                                                             \
  }
