// supervisor/http_server.hpp — a small HTTP/1.1 server on the system's own
// loop (Boost.Beast, no thread of its own): `--metrics HOST:PORT` serves
// /metrics from it, and the dashboard will add its pages as more routes.
// Bounded: at most max_connections at once (more are closed at accept), a
// request of at most max_request_bytes (header and body), each read and
// write within io_timeout, at most max_requests_per_connection on one
// connection. GET and HEAD only; an unknown path is 404, anything malformed
// 400, then the connection closes. Handlers run on the loop and must be
// quick (a scrape reads tables and /proc).
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
#include <string>

namespace troupe::supervisor {

class http_server {
 public:
  struct limits {
    std::size_t max_connections = 32;
    std::size_t max_request_bytes = 8192;
    std::chrono::milliseconds io_timeout{10000};
    std::size_t max_requests_per_connection = 1000;
  };
  struct response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
  };
  /// Answers a GET of its path (the query string is passed as is).
  using handler = std::function<response(const std::string& query)>;

  http_server(boost::asio::io_context& io, limits l);
  http_server(boost::asio::io_context& io) : http_server(io, limits{}) {}
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Listens on "HOST:PORT" (a bare port: 127.0.0.1). Errors name the address.
  status listen(const std::string& where);
  /// The port listened on (after listen; for a port 0 the one chosen).
  [[nodiscard]] std::uint16_t port() const;
  void route(const std::string& path, handler h) { routes_[path] = std::move(h); }
  /// Stops accepting and closes every connection.
  void stop();

  [[nodiscard]] std::size_t connections() const { return connections_; }
  [[nodiscard]] std::uint64_t refused() const { return refused_; }

  /// Parses "HOST:PORT" or "PORT" (host 127.0.0.1); error when malformed.
  static result<std::pair<std::string, std::uint16_t>> parse_where(const std::string& where);

 private:
  class session;
  void accept();

  boost::asio::io_context& io_;
  limits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // out of descriptors: accept again later
  std::map<std::string, handler> routes_;
  std::size_t connections_ = 0;
  std::uint64_t refused_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::map<session*, std::weak_ptr<session>> sessions_;
};

}  // namespace troupe::supervisor
