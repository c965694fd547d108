// supervisor/http_server.hpp — a small HTTP/1.1 server on the system's own
// loop (Boost.Beast, no thread of its own): `--metrics HOST:PORT` serves
// /metrics from it, `--http HOST:PORT` the dashboard (supervisor/dashboard.hpp);
// one listener serves both when they name the same address.
// Bounded: at most max_connections at once (more are closed at accept), a
// header of at most max_request_bytes and a body of at most max_body_bytes,
// each read and write within io_timeout, at most max_requests_per_connection
// on one connection, and a streamed response (server-sent events) queues at
// most max_stream_queue bytes: a reader slower than that is cut off, never
// buffered for. A route names the methods it takes (405 otherwise); an
// unknown path is 404, anything malformed 400, a request too large 413, then
// the connection closes. Handlers run on the loop and must be quick; an
// asynchronous one answers later through its exchange (the connection waits,
// reading nothing more, until it does).
// Threading: the loop's thread only.
#pragma once

#include <troupe/result.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace troupe::supervisor {

class http_server {
 public:
  struct limits {
    std::size_t max_connections = 32;
    std::size_t max_request_bytes = 8192;  ///< the request line and header fields
    std::size_t max_body_bytes = 8192;     ///< a request's body
    std::chrono::milliseconds io_timeout{10000};
    std::size_t max_requests_per_connection = 1000;
    std::size_t max_stream_queue = 1 << 20;  ///< bytes a streamed response may have waiting to leave
  };
  struct response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  ///< more header fields
  };
  /// What a handler sees of a request (the header fields it may need).
  struct request {
    std::string method;  ///< "GET", "HEAD", "POST", ...
    std::string path;
    std::string query;  ///< after '?', as sent
    std::string host, origin, authorization, content_type, last_event_id;
    std::string body;
  };

  class session;

  /// A response whose body is written as it comes (text/event-stream). It
  /// never waits: write() queues, and cuts the connection off when its queue
  /// would pass max_stream_queue or its oldest write has waited io_timeout.
  class stream {
   public:
    explicit stream(std::weak_ptr<session> s) : session_(std::move(s)) {}
    /// False when the connection is gone (or was cut off now).
    bool write(std::string bytes);
    void close();
    /// Closes once what is queued has left (or now, when nothing is).
    void end();
    [[nodiscard]] bool open() const;
    /// Bytes waiting to leave.
    [[nodiscard]] std::size_t queued() const;
    /// f is called (on the loop) each time everything queued has left.
    void on_drain(std::function<void()> f);

   private:
    std::weak_ptr<session> session_;
  };

  /// One request waiting for its answer. Answered once: by reply(), by
  /// open_stream(), or with 500 when dropped unanswered.
  class exchange {
   public:
    exchange(std::shared_ptr<session> s, request r) : session_(std::move(s)), req_(std::move(r)) {}
    ~exchange();
    exchange(const exchange&) = delete;
    exchange& operator=(const exchange&) = delete;
    [[nodiscard]] const request& req() const { return req_; }
    void reply(response r);
    /// Sends head's status and header fields (its body is ignored) and keeps
    /// the connection for a stream; nullptr when the connection is gone.
    std::shared_ptr<stream> open_stream(const response& head);

   private:
    // Keeps its connection while the answer is awaited (no read or write
    // is pending on it meanwhile); released once answered.
    std::shared_ptr<session> session_;
    request req_;
    bool done_ = false;
  };

  /// Answers a GET or HEAD of its path at once (the query string is passed as is).
  using handler = std::function<response(const std::string& query)>;
  /// Answers, now or later, through the exchange.
  using async_handler = std::function<void(const std::shared_ptr<exchange>&)>;

  http_server(boost::asio::io_context& io, limits l);
  http_server(boost::asio::io_context& io) : http_server(io, limits{}) {}
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Listens on "HOST:PORT" (a bare port: 127.0.0.1). Errors name the address.
  status listen(const std::string& where);
  /// The port listened on (after listen; for a port 0 the one chosen).
  [[nodiscard]] std::uint16_t port() const;
  /// GET and HEAD of path.
  void route(const std::string& path, handler h);
  /// The methods of path (HEAD is allowed with GET, and answered without its body).
  void route(const std::string& path, std::set<std::string> methods, async_handler h);
  /// Stops accepting and closes every connection.
  void stop();

  [[nodiscard]] std::size_t connections() const { return connections_; }
  [[nodiscard]] std::uint64_t refused() const { return refused_; }
  [[nodiscard]] const limits& bounds() const { return limits_; }

  /// Parses "HOST:PORT" or "PORT" (host 127.0.0.1); error when malformed.
  static result<std::pair<std::string, std::uint16_t>> parse_where(const std::string& where);

 private:
  struct route_entry {
    std::set<std::string> methods;
    async_handler h;
  };
  void accept();

  boost::asio::io_context& io_;
  limits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // out of descriptors: accept again later
  std::map<std::string, route_entry> routes_;
  std::size_t connections_ = 0;
  std::uint64_t refused_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::map<session*, std::weak_ptr<session>> sessions_;
};

}  // namespace troupe::supervisor
