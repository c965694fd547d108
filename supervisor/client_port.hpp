// supervisor/client_port.hpp — the system's client sockets (docs/PROTOCOL.md
// §6): the local socket (a ROUTER on ipc://HOME/systems/PORT/run/client.sock,
// peers checked by uid through SO_PEERCRED) and the TCP port (a CurveZMQ
// server admitting the client keys of HOME/clients/{admin,read}/, or plain
// text with --insecure-tcp on loopback). It authorises each request by the
// role its connection was admitted with (docs/SECURITY.md §2), decodes it,
// runs it through a table of handlers that the components register, and
// sends the answer back on the socket it came from. A request may also come
// from another system (a forwarded call, §5.8) or from a queue that held it;
// its answer then goes back the way it came (`reply_elsewhere`).
// Threading: the loop's thread only.
#pragma once

#include "ipc/reactor.hpp"
#include "supervisor/context.hpp"

#include <troupe/result.hpp>

#include <nlohmann/json.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace troupe::supervisor {

using json = nlohmann::json;

/// Who is waiting for the answer to a request: a client (its routing
/// identity), or another system of the convention that forwarded it (`via`,
/// and its number for the call), or nobody (a held tell already answered).
struct client_ref {
  std::string identity;
  json rid;
  std::uint32_t via = 0;
  std::uint64_t call = 0;
  bool local = false;  ///< came on the local socket (else on TCP)
  /// A request of the system itself (the dashboard's, client_port::call):
  /// its answer goes to the callback registered under this number.
  std::uint64_t internal = 0;
  [[nodiscard]] bool nobody() const { return via == 0 && identity.empty() && internal == 0; }
};

/// The uid in a local peer's address ("HOST:UID:GID:PID", SO_PEERCRED as
/// libzmq reports it), or nothing when it has none.
std::optional<unsigned long> peer_uid(std::string_view address);

class client_port {
 public:
  using handler = std::function<void(const client_ref&, const json& body)>;

  explicit client_port(system_context& ctx) : ctx_(ctx) {}

  /// Binds tcp://BIND_HOST:PORT. Errors name the address.
  status bind();
  /// Binds the local socket in the run directory (after it was cleared).
  status bind_local();
  void start();
  void stop();
  /// ipc://RUN_DIR/client.sock: without the run's tag, since clients find it by name.
  [[nodiscard]] std::string local_endpoint() const { return "ipc://" + (ctx_.run_dir / local_socket_file).string(); }
  static constexpr const char* local_socket_file = "client.sock";

  /// The handler of command; a second registration replaces the first.
  void handle(std::string_view command, handler h) { handlers_[std::string(command)] = std::move(h); }
  /// Runs one request: a client's, a forwarded one, or one that was held. A
  /// field of the wrong JSON type is answered as the client's mistake.
  void dispatch(const client_ref& c, const std::string& command, const json& body);

  void answer(const client_ref& c, json fields);
  void answer_error(const client_ref& c, std::string_view text, errc code = errc::refused);
  /// Sends a whole reply body to whoever waits for it.
  void deliver(const client_ref& c, json body);
  /// Sends one more message to a client of this system that waits for
  /// several under one rid (a stream, `events`), never waiting: full when
  /// its connection holds as much as ZeroMQ queues (HWM), gone when it is
  /// no longer connected (or the request came from another system).
  enum class push_result { sent, full, gone };
  push_result push(const client_ref& c, const json& body);
  /// Runs a request on behalf of the system itself (the dashboard, which
  /// authenticated it as admin): through the same handlers as a client's,
  /// with done called with the whole answer (`ok`, fields or `error` and
  /// `code`; no `rid`) once there is one, maybe before call returns.
  void call(const std::string& command, const json& body, std::function<void(json)> done);
  /// A client_ref whose answer goes to done (to hand to what answers a
  /// request: remote_calls::forward).
  client_ref expect(std::function<void(json)> done);
  /// Requests of call() and expect() not answered yet.
  [[nodiscard]] std::size_t calls_waiting() const { return internal_.size(); }
  /// Where the answer to another system's request goes (the peer link's
  /// "result"); set by the component that forwards calls.
  std::function<void(const client_ref&, json body)> reply_elsewhere;

 private:
  void on_readable(ipc::watched_socket& socket, bool local);
  /// The role of the connection a message came on ("admin" or "read"), or
  /// empty when it has none.
  [[nodiscard]] std::string role_of(const zmq::message_t& frame, bool local) const;
  void admit_clients();
  /// Counts one listener's connections (its monitor) and stops and resumes
  /// listening so that clients never take the daemon's last descriptors:
  /// past them libzmq spins in a TCP listener and aborts in an ipc one.
  struct listener_guard {
    std::string name;  // "TCP" or "local"
    std::string endpoint;
    std::size_t max_connections = 0;
    std::string limit_option;  // the start option that sets max_connections
    std::unique_ptr<ipc::watched_socket>* socket = nullptr;
    zmq::socket_t monitor;
    std::unique_ptr<ipc::socket_watcher> watch;
    std::size_t connections = 0;
    bool paused = false;
    std::unique_ptr<boost::asio::steady_timer> retry;  // while paused: try to listen again
  };
  void guard(listener_guard& g, zmq::socket_t& socket);
  // Answers a client's connection could not take yet (its ZeroMQ pipe is
  // full: it pipelines more requests than the pipe holds answers). Kept in
  // order and sent as it reads, never dropped while within the bounds; a
  // client past them is not reading, and loses answers (one WARN).
  struct backlog {
    std::deque<std::string> answers;  // reply bodies, as sent
    std::size_t bytes = 0;
    std::uint64_t dropped = 0;
  };
  enum class sent { yes, full, gone };
  sent send_reply(bool local, const std::string& identity, const std::string& text);
  void keep_answer(bool local, const std::string& identity, std::string text);
  void flush_backlog();
  void arm_backlog();
  void on_listener_event(listener_guard& g);
  void pause(listener_guard& g, const std::string& why);
  void resume(listener_guard& g);

  system_context& ctx_;
  std::unique_ptr<ipc::watched_socket> tcp_;    // every answer re-checks it
  std::unique_ptr<ipc::watched_socket> local_;  // likewise
  listener_guard tcp_guard_;
  listener_guard local_guard_;
  std::unordered_map<std::string, handler> handlers_;
  std::map<std::pair<bool, std::string>, backlog> backlog_;  // by (local, identity)
  std::unique_ptr<boost::asio::steady_timer> backlog_timer_;
  std::size_t backlog_total_ = 0;  // bytes waiting, all clients together
  bool backlog_armed_ = false;
  std::chrono::milliseconds backlog_wait_{1};                              // grows while nobody reads
  std::unordered_map<std::uint64_t, std::function<void(json)>> internal_;  // call()s waiting for their answer
  std::uint64_t next_internal_ = 0;
};

}  // namespace troupe::supervisor
