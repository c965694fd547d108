#include "supervisor/http_server.hpp"

#include "ipc/log.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <optional>

namespace troupe::supervisor {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ipc::log_line;

class http_server::session : public std::enable_shared_from_this<session> {
 public:
  session(http_server& server, tcp::socket socket)
      : server_(server), alive_(server.alive_), stream_(std::move(socket)), buffer_(server.limits_.max_request_bytes) {}

  void start() { read(); }
  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }
  ~session() {
    if (!*alive_) return;
    --server_.connections_;
    server_.sessions_.erase(this);
  }

 private:
  void read() {
    parser_.emplace();
    // One bound for the whole request: header and body.
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits_.max_request_bytes));
    parser_->body_limit(server_.limits_.max_request_bytes);
    stream_.expires_after(server_.limits_.io_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (!*alive_) return;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      return close();
    if (ec) {
      // Too large or malformed: say so once, then close.
      const bool too_large =
          ec == http::error::header_limit || ec == http::error::body_limit || ec == http::error::buffer_overflow;
      return reply(too_large ? 413 : 400, too_large ? "request too large\n" : "bad request\n", "text/plain", false,
                   false);
    }
    ++requests_;
    const auto& req = parser_->get();
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return reply(405, "only GET and HEAD\n", "text/plain", false, false);
    const std::string target(req.target());
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    const bool keep = req.keep_alive() && requests_ < server_.limits_.max_requests_per_connection;
    const bool head = req.method() == http::verb::head;
    auto it = server_.routes_.find(path);
    if (it == server_.routes_.end()) return reply(404, "not found\n", "text/plain", keep, head);
    response r;
    try {
      r = it->second(query);
    } catch (const std::exception& e) {
      log_line(TROUPE_LOG_ERROR, {}, "HTTP " + path + ": " + e.what());
      return reply(500, "internal error\n", "text/plain", false, head);
    }
    reply(r.status, std::move(r.body), r.content_type, keep, head);
  }

  void reply(unsigned status, std::string body, const std::string& type, bool keep, bool head) {
    res_ = {};
    res_.result(status);
    res_.version(11);
    res_.set(http::field::server, "troupe");
    res_.set(http::field::content_type, type);
    res_.keep_alive(keep);
    const auto size = body.size();
    if (!head) res_.body() = std::move(body);
    res_.content_length(size);
    stream_.expires_after(server_.limits_.io_timeout);
    http::async_write(stream_, res_, [self = shared_from_this(), keep](beast::error_code ec, std::size_t) {
      if (!*self->alive_) return;
      if (ec || !keep) return self->close();
      self->read();
    });
  }

  http_server& server_;
  std::shared_ptr<bool> alive_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::size_t requests_ = 0;
};

http_server::http_server(asio::io_context& io, limits l) : io_(io), limits_(l), acceptor_(io), retry_(io) {}

http_server::~http_server() {
  stop();
  *alive_ = false;
}

result<std::pair<std::string, std::uint16_t>> http_server::parse_where(const std::string& where) {
  std::string host = "127.0.0.1";
  std::string port_text = where;
  if (auto colon = where.rfind(':'); colon != std::string::npos) {
    host = where.substr(0, colon);
    port_text = where.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto r = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || r.ec != std::errc{} || r.ptr != port_text.data() + port_text.size() || port > 65535)
    return make_error(errc::invalid_argument, "'" + where + "' is not HOST:PORT or PORT");
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  if (ec) return make_error(errc::invalid_argument, "'" + host + "' is not an IP address (in '" + where + "')");
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

status http_server::listen(const std::string& where) {
  auto hp = parse_where(where);
  if (!hp) return hp.err();
  try {
    const tcp::endpoint ep(asio::ip::make_address(hp->first), hp->second);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(static_cast<int>(limits_.max_connections));
  } catch (const boost::system::system_error& e) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    return make_error(errc::io, "cannot listen for HTTP on " + where + ": " + e.code().message());
  }
  accept();
  return ok_v;
}

std::uint16_t http_server::port() const {
  beast::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void http_server::accept() {
  acceptor_.async_accept([this, alive = alive_](beast::error_code ec, tcp::socket socket) {
    if (!*alive || !acceptor_.is_open()) return;
    if (!ec) {
      if (connections_ >= limits_.max_connections) {
        ++refused_;  // closed at once: the client sees the connection end
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        ++connections_;
        auto s = std::make_shared<session>(*this, std::move(socket));
        sessions_[s.get()] = s;
        s->start();
      }
    } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
      log_line(TROUPE_LOG_WARN, {}, "HTTP: out of descriptors; not accepting for a moment");
      retry_.expires_after(std::chrono::milliseconds(200));
      retry_.async_wait([this, alive](const beast::error_code& e) {
        if (!e && *alive) accept();
      });
      return;
    }
    accept();
  });
}

void http_server::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
  retry_.cancel();
  auto sessions = sessions_;
  for (auto& [_, w] : sessions)
    if (auto s = w.lock()) s->close();
}

}  // namespace troupe::supervisor
