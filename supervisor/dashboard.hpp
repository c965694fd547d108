// supervisor/dashboard.hpp — the web dashboard of `--http HOST:PORT`
// (docs/OPERATIONS.md §10.4, the HTTP API in docs/PROTOCOL.md §6.7, its
// threat model in docs/SECURITY.md §2): a page, its script and style built
// into the binary (dashboard_assets.hpp), and a JSON API under /api/ whose
// every request runs as a client command of the admin role through the
// client port's own handlers (client_port::call): status, systems, list,
// actors, ask, tell, chgcap (another system's forwarded to it over the peer
// link, as remote_calls forwards an ask). /api/events streams the event ring
// as server-sent events, resumable with Last-Event-ID.
//
// Every /api/ request needs the dashboard's token (`Authorization: Bearer`),
// compared in constant time; the token is drawn at each start and kept in
// HOME/systems/PORT/dashboard.token (0600). Every request's Host must be an
// IP address or localhost with the listening port (DNS rebinding), a POST's
// Origin, when sent, must be this Host, and its body JSON of at most
// max_body bytes. Bounded: requests waiting for their answer, event streams.
// Threading: the loop's thread only.
#pragma once

#include "supervisor/client_port.hpp"
#include "supervisor/context.hpp"
#include "supervisor/event_ring.hpp"
#include "supervisor/http_server.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace troupe::supervisor {

class dashboard {
 public:
  static constexpr std::size_t max_body = 64 * 1024;         ///< a POST's JSON body at most
  static constexpr std::size_t max_waiting = 64;             ///< API requests waiting for their answer at most
  static constexpr std::size_t max_streams = 8;              ///< /api/events streams at most
  static constexpr std::size_t max_actors_page = 500;        ///< rows of one /api/actors page at most
  static constexpr std::size_t default_actors_page = 200;    ///< rows without ?limit
  static constexpr std::size_t stream_batch = 200;           ///< events written at once to a stream
  static constexpr std::size_t stream_low_water = 64 << 10;  ///< a stream with less queued gets more
  static constexpr std::chrono::seconds keepalive{15};       ///< a comment line on a quiet stream
  static constexpr std::int64_t max_timeout_ms = 30000;      ///< an ask's or tell's timeout_ms at most

  /// How the dashboard reaches beyond the system: the system id of the
  /// convention's system on a public port (0: none known), and a request
  /// forwarded to another system (remote_calls::forward).
  struct reach {
    std::function<std::uint32_t(std::uint16_t port)> system_on_port;
    std::function<void(const client_ref&, std::uint32_t system, const std::string& command, const json& body,
                       std::chrono::milliseconds timeout)>
        forward;
  };

  dashboard(system_context& ctx, http_server& http, client_port& port, event_ring& ring, reach r);
  ~dashboard();
  dashboard(const dashboard&) = delete;
  dashboard& operator=(const dashboard&) = delete;

  /// Draws the token, writes its file, adds the routes. Errors name the file.
  status setup();
  /// Ends every event stream.
  void stop();

  /// "http://HOST:PORT/" (what the browser opens; the token goes after '#token=').
  [[nodiscard]] std::string url() const { return url_of(ctx_.opts.http); }
  /// The same for an --http value ("HOST:PORT"); empty when malformed.
  [[nodiscard]] static std::string url_of(const std::string& http);
  [[nodiscard]] const std::string& token() const { return token_; }
  [[nodiscard]] std::size_t streams() const { return streams_.size(); }

  /// HOME/systems/PORT/dashboard.token
  [[nodiscard]] static std::filesystem::path token_file(const std::filesystem::path& state_dir) {
    return state_dir / "dashboard.token";
  }
  /// Whether a Host header names this listener: an IP address or localhost,
  /// with port (exposed for the unit test).
  [[nodiscard]] static bool host_allowed(const std::string& host, std::uint16_t port);
  /// Equal strings, in a time that depends on their lengths only.
  [[nodiscard]] static bool same_secret(const std::string& a, const std::string& b);

 private:
  using exchange_ptr = std::shared_ptr<http_server::exchange>;
  struct subscriber {
    std::shared_ptr<http_server::stream> out;
    std::uint64_t sent_up_to = 0;
    std::chrono::steady_clock::time_point last_write;
  };

  void add_routes();
  /// Host, then (for /api/) the token, then for a POST its Origin and body:
  /// false when it answered the refusal.
  bool admitted(const exchange_ptr& ex, bool api);
  /// The JSON body of a POST, or nothing after answering why not.
  std::optional<json> body_of(const exchange_ptr& ex);
  /// Runs a client command and answers its reply as JSON.
  void run(const exchange_ptr& ex, const std::string& command, const json& body);
  void answer(const exchange_ptr& ex, const json& reply);
  void refuse(const exchange_ptr& ex, unsigned status, const std::string& code, const std::string& error,
              std::vector<std::pair<std::string, std::string>> headers = {});
  void api_actors(const exchange_ptr& ex);
  void api_send(const exchange_ptr& ex, bool ask);
  void api_chgcap(const exchange_ptr& ex);
  void api_events(const exchange_ptr& ex);
  void schedule_flush();
  void flush();
  void arm_keepalive();

  system_context& ctx_;
  http_server& http_;
  client_port& port_;
  event_ring& ring_;
  reach reach_;
  std::string token_;
  std::uint16_t http_port_ = 0;
  std::size_t waiting_ = 0;
  std::vector<subscriber> streams_;
  bool flush_scheduled_ = false;
  boost::asio::steady_timer keepalive_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace troupe::supervisor
