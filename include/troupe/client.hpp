// troupe/client.hpp — talk to a running system from a program (the CLI, the
// example clients, tests). Each call is a request on the system's public
// control socket and blocks until the answer or the timeout.
//
// Threading: a client is used by one thread at a time.
#pragma once

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace troupe {

/// $TROUPE_HOME, else ~/.troupe, else /var/lib/troupe.
std::filesystem::path default_home();

/// How a client reaches a system (docs/SECURITY.md §2). By default, in order:
/// - a system of this home (a loopback HOST, or the HOST:PORT that the
///   system of HOME/systems/PORT is bound to) whose local socket
///   HOME/systems/PORT/run/client.sock this user may open: over that socket,
///   as the system's own user (admin);
/// - else TCP with CurveZMQ when this user has a client key (HOME/client/,
///   made by `troupe keygen --client`) and the system's public key is known
///   (server_key, else $TROUPE_SERVER_KEY, else HOME/systems/PORT/curve/curve.pub
///   for a loopback HOST): the key's role on that system applies;
/// - else plain-text TCP, which only a system started --insecure-tcp accepts.
struct connect_options {
  std::filesystem::path home;  ///< empty: default_home()
  std::string server_key;      ///< the system's public key: Z85 text, or a file holding it
  bool tcp_only = false;       ///< never the local socket
  /// A refused connection (nothing listens at the address) fails the call at
  /// once with errc::unavailable instead of retrying until its timeout: for
  /// commands typed by a person. Off, a call made while a system is starting
  /// waits for it.
  bool fail_fast = false;
};

class client {
 public:
  /// Connects to "HOST:PORT" (or a bare port on 127.0.0.1). Connecting itself
  /// does not wait; the first call fails with errc::unavailable when nothing
  /// answers within its timeout, or errc::refused when the system refuses
  /// this client's credentials (the error says what to do).
  static result<client> connect(std::string_view system, const connect_options& options = {});

  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();

  /// Sends one control command with a JSON object body and returns the
  /// answer's body (docs/PROTOCOL.md §6). Errors: unavailable (no answer in
  /// time), protocol (malformed answer), or the system's own error text.
  result<nlohmann::json> call(std::string_view command, const nlohmann::json& body,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// Creates an actor; returns its address.
  result<address> spawn(std::string_view type, std::string_view package = {}, std::string_view name = {});
  /// Asks target (address text or global name) with a JSON payload; returns
  /// the reply payload parsed as JSON.
  result<nlohmann::json> ask(std::string_view target, const nlohmann::json& payload,
                             std::chrono::milliseconds timeout = std::chrono::seconds(5),
                             std::string_view type = "json");
  status tell(std::string_view target, const nlohmann::json& payload, std::string_view type = "json");

  /// The system's events numbered after `since` (docs/PROTOCOL.md §6.5), as
  /// the answer's body: {"events": [...], "missed", "first_seq", "last_seq",
  /// "system", "following", "more" or "heartbeat_ms"}. With follow the
  /// subscription begins: read what follows with next_events().
  result<nlohmann::json> events(std::uint64_t since = 0, bool follow = false);
  /// The next message of the subscription: {"events": [...], "missed": N},
  /// with "heartbeat": true when it carries none, or "end": WHY when the
  /// system ended it. errc::timeout when nothing came within timeout;
  /// errc::unavailable when the system was not heard for 5 heartbeats (it
  /// went away); errc::invalid_argument when no subscription is open.
  result<nlohmann::json> next_events(std::chrono::milliseconds timeout);
  /// Ends this client's subscriptions (the system answers, then sends each
  /// its "end").
  status unsubscribe_events(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// The endpoint this client talks to ("tcp://HOST:PORT" or "ipc://PATH").
  [[nodiscard]] const std::string& endpoint() const;

 private:
  struct impl;
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Parses "HOST:PORT" or "PORT" into a tcp:// endpoint; error when malformed.
result<std::string> system_endpoint(std::string_view system);

}  // namespace troupe
