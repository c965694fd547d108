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
#include <memory>
#include <string>
#include <string_view>

namespace troupe {

class client {
 public:
  /// Connects to "HOST:PORT" (or a bare port on 127.0.0.1). Connecting itself
  /// does not wait; the first call fails with errc::unavailable when nothing
  /// answers within its timeout.
  static result<client> connect(std::string_view system);

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

  /// The endpoint this client talks to ("tcp://HOST:PORT").
  [[nodiscard]] const std::string& endpoint() const;

 private:
  struct impl;
  explicit client(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Parses "HOST:PORT" or "PORT" into a tcp:// endpoint; error when malformed.
result<std::string> system_endpoint(std::string_view system);

}  // namespace troupe
