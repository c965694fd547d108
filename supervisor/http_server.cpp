#include "supervisor/http_server.hpp"

#include "ipc/log.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <charconv>
#include <deque>
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
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    out_.clear();
    out_bytes_ = 0;
  }
  [[nodiscard]] bool closed() const { return closed_ || !*alive_; }
  ~session() {
    if (!*alive_) return;
    --server_.connections_;
    server_.sessions_.erase(this);
  }

  // ---- answers (an exchange's)
  void answer(response r) {
    if (closed()) return;
    reply(r.status, std::move(r.body), r.content_type, keep_, head_, r.headers);
  }

  // ---- a streamed response
  bool begin_stream(const response& head) {
    if (closed()) return false;
    streaming_ = true;
    // No Content-Length: the body ends when the connection does.
    std::string h = "HTTP/1.1 " + std::to_string(head.status) + " " +
                    std::string(http::obsolete_reason(static_cast<http::status>(head.status))) +
                    "\r\nServer: troupe\r\nContent-Type: " + head.content_type + "\r\nConnection: close\r\n";
    for (const auto& [k, v] : head.headers) h += k + ": " + v + "\r\n";
    h += "\r\n";
    stream_.expires_never();
    watch_peer();
    const bool ok = stream_write(std::move(h));
    finish_after_drain_ = head_;  // HEAD: the header alone
    return ok && !head_;
  }
  bool stream_write(std::string bytes) {
    if (closed() || finish_after_drain_) return false;
    const auto now = std::chrono::steady_clock::now();
    if (out_bytes_ + bytes.size() > server_.limits_.max_stream_queue ||
        (writing_ && now - write_started_ > server_.limits_.io_timeout)) {
      log_line(TROUPE_LOG_INFO, {}, "HTTP: cut off a stream whose reader does not keep up");
      close();
      return false;
    }
    out_bytes_ += bytes.size();
    out_.push_back(std::move(bytes));
    if (!writing_) write_next();
    return true;
  }
  [[nodiscard]] std::size_t queued() const { return out_bytes_; }
  void end_stream() {
    finish_after_drain_ = true;
    if (!writing_) close();
  }
  std::function<void()> on_drain;

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits_.max_request_bytes));
    parser_->body_limit(server_.limits_.max_body_bytes);
    stream_.expires_after(server_.limits_.io_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (closed()) return;
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
    const std::string target(req.target());
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    keep_ = req.keep_alive() && requests_ < server_.limits_.max_requests_per_connection;
    head_ = req.method() == http::verb::head;
    auto it = server_.routes_.find(path);
    if (it == server_.routes_.end()) return reply(404, "not found\n", "text/plain", keep_, head_);
    std::string method(req.method_string());
    if (head_ && it->second.methods.count("GET") != 0) method = "GET";  // HEAD: a GET without its body
    if (it->second.methods.count(method) == 0) {
      std::string allow;
      for (const auto& m : it->second.methods) allow += (allow.empty() ? "" : ", ") + m;
      if (it->second.methods.count("GET") != 0) allow += ", HEAD";
      return reply(405, "method not allowed: " + allow + "\n", "text/plain", false, head_, {{"Allow", allow}});
    }
    request r;
    r.method = method;
    r.path = path;
    r.query = q == std::string::npos ? "" : target.substr(q + 1);
    auto field = [&req](http::field f) { return std::string(req[f]); };
    r.host = field(http::field::host);
    r.origin = field(http::field::origin);
    r.authorization = field(http::field::authorization);
    r.content_type = field(http::field::content_type);
    r.last_event_id = std::string(req["Last-Event-ID"]);
    r.body = req.body();
    auto ex = std::make_shared<exchange>(shared_from_this(), std::move(r));
    try {
      it->second.h(ex);
    } catch (const std::exception& e) {
      log_line(TROUPE_LOG_ERROR, {}, "HTTP " + path + ": " + e.what());
      ex->reply({500, "text/plain", "internal error\n", {}});
    }
  }

  void reply(unsigned status, std::string body, const std::string& type, bool keep, bool head,
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    res_ = {};
    res_.result(status);
    res_.version(11);
    res_.set(http::field::server, "troupe");
    res_.set(http::field::content_type, type);
    for (const auto& [k, v] : headers) res_.set(k, v);
    res_.keep_alive(keep);
    const auto size = body.size();
    if (!head) res_.body() = std::move(body);
    res_.content_length(size);
    stream_.expires_after(server_.limits_.io_timeout);
    http::async_write(stream_, res_, [self = shared_from_this(), keep](beast::error_code ec, std::size_t) {
      if (self->closed()) return;
      if (ec || !keep) return self->close();
      self->read();
    });
  }

  // A stream's reader sends nothing more: anything it does (data, its
  // close, an error) ends the stream at once, freeing its place.
  void watch_peer() {
    stream_.socket().async_read_some(asio::buffer(peek_),
                                     [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
  }

  void write_next() {
    if (closed() || out_.empty()) return;
    writing_ = true;
    write_started_ = std::chrono::steady_clock::now();
    asio::async_write(stream_.socket(), asio::buffer(out_.front()),
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (self->closed()) return;
                        self->writing_ = false;
                        if (ec) return self->close();
                        self->out_bytes_ -= self->out_.front().size();
                        self->out_.pop_front();
                        if (!self->out_.empty()) return self->write_next();
                        if (self->finish_after_drain_) return self->close();
                        if (self->on_drain) self->on_drain();
                      });
  }

  http_server& server_;
  std::shared_ptr<bool> alive_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::size_t requests_ = 0;
  bool keep_ = false;
  bool head_ = false;
  bool closed_ = false;
  // A streamed response.
  bool streaming_ = false;
  bool writing_ = false;
  bool finish_after_drain_ = false;
  std::chrono::steady_clock::time_point write_started_;
  std::deque<std::string> out_;
  std::size_t out_bytes_ = 0;
  std::array<char, 64> peek_{};
};

// ---------------------------------------------------------------- exchange, stream

http_server::exchange::~exchange() {
  if (!done_) reply({500, "text/plain; charset=utf-8", "no answer\n", {}});
}

void http_server::exchange::reply(response r) {
  if (done_) return;
  done_ = true;
  auto s = std::move(session_);
  s->answer(std::move(r));
}

std::shared_ptr<http_server::stream> http_server::exchange::open_stream(const response& head) {
  if (done_) return nullptr;
  done_ = true;
  auto s = std::move(session_);
  if (!s->begin_stream(head)) return nullptr;
  return std::make_shared<stream>(s);
}

bool http_server::stream::write(std::string bytes) {
  auto s = session_.lock();
  return s && s->stream_write(std::move(bytes));
}

void http_server::stream::close() {
  if (auto s = session_.lock()) s->close();
}

void http_server::stream::end() {
  if (auto s = session_.lock()) s->end_stream();
}

bool http_server::stream::open() const {
  auto s = session_.lock();
  return s && !s->closed();
}

void http_server::stream::on_drain(std::function<void()> f) {
  if (auto s = session_.lock()) s->on_drain = std::move(f);
}

std::size_t http_server::stream::queued() const {
  auto s = session_.lock();
  return s ? s->queued() : 0;
}

// ---------------------------------------------------------------- server

void http_server::route(const std::string& path, handler h) {
  route(path, {"GET"}, [h = std::move(h)](const std::shared_ptr<exchange>& ex) { ex->reply(h(ex->req().query)); });
}

void http_server::route(const std::string& path, std::set<std::string> methods, async_handler h) {
  routes_[path] = {std::move(methods), std::move(h)};
}

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
