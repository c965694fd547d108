#include "etcd/client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <openssl/evp.h>

#include <charconv>
#include <deque>
#include <optional>

namespace troupe::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

namespace {

constexpr std::size_t max_response_bytes = 64u << 20;

std::string b64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string unb64(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return {};
  std::string out(3 * s.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return {};
  std::size_t pad = (s.back() == '=') + (s.size() > 1 && s[s.size() - 2] == '=');
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

// The gateway writes int64 fields as strings, and leaves out what is zero.
std::int64_t i64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (!it->is_string()) return 0;
  const auto& s = it->get_ref<const std::string&>();
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

key_value kv_of(const json& j) {
  key_value kv;
  kv.key = unb64(j.value("key", std::string()));
  kv.value = unb64(j.value("value", std::string()));
  kv.create_revision = i64(j, "create_revision");
  kv.mod_revision = i64(j, "mod_revision");
  kv.version = i64(j, "version");
  kv.lease = i64(j, "lease");
  return kv;
}

range_result range_of(const json& j) {
  range_result r;
  if (auto h = j.find("header"); h != j.end()) r.revision = i64(*h, "revision");
  if (auto kvs = j.find("kvs"); kvs != j.end() && kvs->is_array())
    for (const auto& kv : *kvs) r.kvs.push_back(kv_of(kv));
  return r;
}

std::int64_t revision_of(const json& j) {
  auto h = j.find("header");
  return h == j.end() ? 0 : i64(*h, "revision");
}

error gateway_error(unsigned status, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  std::string message = j.is_object() ? j.value("message", j.value("error", std::string())) : std::string();
  if (message.empty()) message = "HTTP " + std::to_string(status);
  return make_error(errc::refused, "etcd: " + message);
}

}  // namespace

// ---------------------------------------------------------------- public helpers

result<std::vector<endpoint>> parse_endpoints(std::string_view list) {
  std::vector<endpoint> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    const std::string shown(item);
    if (item.starts_with("https://"))
      return make_error(errc::invalid_argument, "etcd endpoint '" + shown + "': https is not supported");
    if (item.starts_with("http://")) item.remove_prefix(7);
    while (!item.empty() && item.back() == '/') item.remove_suffix(1);
    const auto colon = item.rfind(':');
    if (item.empty() || colon == std::string_view::npos || colon == 0)
      return make_error(errc::invalid_argument, "etcd endpoint '" + shown + "' is not HOST:PORT");
    const auto port = item.substr(colon + 1);
    unsigned v = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), v);
    if (r.ec != std::errc{} || r.ptr != port.data() + port.size() || v == 0 || v > 65535)
      return make_error(errc::invalid_argument, "etcd endpoint '" + shown + "': port must be 1 to 65535");
    out.push_back(endpoint{std::string(item.substr(0, colon)), std::string(port)});
  }
  if (out.empty()) return make_error(errc::invalid_argument, "no etcd endpoint given");
  return out;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

compare compare::absent(std::string_view key) {
  return {json{{"key", b64(key)}, {"result", "EQUAL"}, {"target", "CREATE"}, {"create_revision", "0"}}};
}
compare compare::value_is(std::string_view key, std::string_view value) {
  return {json{{"key", b64(key)}, {"result", "EQUAL"}, {"target", "VALUE"}, {"value", b64(value)}}};
}
compare compare::create_revision_is(std::string_view key, std::int64_t revision) {
  return {json{
      {"key", b64(key)}, {"result", "EQUAL"}, {"target", "CREATE"}, {"create_revision", std::to_string(revision)}}};
}
compare compare::mod_revision_is(std::string_view key, std::int64_t revision) {
  return {json{{"key", b64(key)}, {"result", "EQUAL"}, {"target", "MOD"}, {"mod_revision", std::to_string(revision)}}};
}

operation operation::put(std::string_view key, std::string_view value, std::int64_t lease) {
  json p{{"key", b64(key)}, {"value", b64(value)}};
  if (lease != 0) p["lease"] = std::to_string(lease);
  return {json{{"request_put", p}}};
}
operation operation::erase(std::string_view key, std::string_view range_end) {
  json d{{"key", b64(key)}};
  if (!range_end.empty()) d["range_end"] = b64(range_end);
  return {json{{"request_delete_range", d}}};
}
operation operation::get(std::string_view key, std::string_view range_end) {
  json g{{"key", b64(key)}};
  if (!range_end.empty()) g["range_end"] = b64(range_end);
  return {json{{"request_range", g}}};
}

// ---------------------------------------------------------------- endpoints

namespace {

/// Where a client connects, and how each endpoint last answered.
struct endpoints_state {
  std::vector<endpoint> list;
  std::size_t current = 0;
  std::vector<std::string> last_failure;  // by index; empty after a success
  // By index: the endpoint serves no store. Its last connection was refused
  // (and nothing answered since), or it answered that it has no leader; both
  // mean that nobody can change the store through it, nor expire a lease.
  std::vector<bool> refused;

  void failed(std::size_t i, const boost::system::error_code& ec) {
    refused[i] = ec == asio::error::connection_refused;
    last_failure[i] = list[i].text() + ": " + (ec == beast::error::timeout ? std::string("timed out") : ec.message());
  }
  /// A connection: whether a store answers through it is told by the answer.
  void connected(std::size_t i) { last_failure[i].clear(); }
  /// An answer (no_leader: etcd says it has none, a cluster coming back).
  void answered(std::size_t i, bool no_leader) {
    refused[i] = no_leader;
    if (no_leader) last_failure[i] = list[i].text() + ": no leader";
  }
  [[nodiscard]] std::string failures() const {
    std::string out;
    for (const auto& f : last_failure)
      if (!f.empty()) out += (out.empty() ? "" : "; ") + f;
    return out;
  }
};

/// Connects stream to the endpoints in turn, from the current one, each
/// once; then done(ok) or done(unavailable naming every failure).
void connect_any(asio::io_context& io, std::shared_ptr<endpoints_state> eps, beast::tcp_stream& stream,
                 std::chrono::milliseconds timeout, std::size_t tried, std::shared_ptr<bool> alive,
                 std::function<void(status)> done) {
  if (tried >= eps->list.size())
    return done(make_error(errc::unavailable, "etcd unreachable (" + eps->failures() + ")"));
  const std::size_t i = eps->current;
  auto resolver = std::make_shared<tcp::resolver>(io);
  resolver->async_resolve(
      eps->list[i].host, eps->list[i].port,
      [&io, eps, &stream, timeout, tried, alive, done, resolver, i](const boost::system::error_code& ec,
                                                                    tcp::resolver::results_type results) {
        if (!*alive) return;
        auto next = [&io, eps, &stream, timeout, tried, alive, done, i](const boost::system::error_code& e) {
          eps->failed(i, e);
          eps->current = (i + 1) % eps->list.size();
          connect_any(io, eps, stream, timeout, tried + 1, alive, done);
        };
        if (ec) return next(ec);
        stream.expires_after(timeout);
        stream.async_connect(results,
                             [eps, alive, done, i, next](const boost::system::error_code& e, const tcp::endpoint&) {
                               if (!*alive) return;
                               if (e) return next(e);
                               eps->connected(i);
                               done(ok_v);
                             });
      });
}

}  // namespace

// ---------------------------------------------------------------- lanes (unary requests)

namespace {

struct request {
  std::string path;
  std::string body;
  std::function<void(result<json>)> done;
};

/// One connection and the requests that go over it, one at a time.
class lane : public std::enable_shared_from_this<lane> {
 public:
  lane(asio::io_context& io, std::shared_ptr<endpoints_state> eps, std::chrono::milliseconds timeout,
       std::shared_ptr<bool> alive)
      : io_(io), eps_(std::move(eps)), timeout_(timeout), alive_(std::move(alive)), stream_(io) {}

  void submit(request r) {
    queue_.push_back(std::move(r));
    if (!busy_) next();
  }
  void close() {
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  void next() {
    if (queue_.empty()) {
      busy_ = false;
      return;
    }
    busy_ = true;
    resent_ = false;
    if (connected_) return send();
    connect();
  }

  void connect() {
    auto self = shared_from_this();
    close();
    connect_any(io_, eps_, stream_, timeout_, 0, alive_, [self](status s) {
      if (!s) return self->finish(s.err());
      self->connected_ = true;
      self->send();
    });
  }

  void send() {
    const auto& r = queue_.front();
    req_ = {};
    req_.method(http::verb::post);
    req_.target(r.path);
    req_.version(11);
    req_.set(http::field::host, eps_->list[eps_->current].text());
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(true);
    req_.body() = r.body;
    req_.prepare_payload();
    auto self = shared_from_this();
    stream_.expires_after(timeout_);
    http::async_write(stream_, req_, [self](const boost::system::error_code& ec, std::size_t) {
      if (!*self->alive_) return;
      if (ec) return self->lost(ec, /*maybe_sent=*/false);
      self->parser_.emplace();
      self->parser_->body_limit(max_response_bytes);
      self->stream_.expires_after(self->timeout_);
      http::async_read(
          self->stream_, self->buffer_, *self->parser_, [self](const boost::system::error_code& e, std::size_t) {
            if (!*self->alive_) return;
            if (e) return self->lost(e, /*maybe_sent=*/true);
            auto res = self->parser_->release();
            if (!res.keep_alive()) self->connected_ = false;
            self->eps_->answered(
                self->eps_->current,
                res.result() != http::status::ok && res.body().find("etcdserver: no leader") != std::string::npos);
            if (res.result() != http::status::ok) return self->finish(gateway_error(res.result_int(), res.body()));
            json j = json::parse(res.body(), nullptr, false);
            if (j.is_discarded()) return self->finish(make_error(errc::protocol, "etcd answered what is not JSON"));
            self->finish(std::move(j));
          });
    });
  }

  void lost(const boost::system::error_code& ec, bool maybe_sent) {
    connected_ = false;
    close();
    // A kept-alive connection the server closed meanwhile fails the write:
    // nothing was sent, so it goes once more on a fresh connection.
    if (!maybe_sent && !resent_) {
      resent_ = true;
      return connect();
    }
    eps_->failed(eps_->current, ec);  // not refused: the next connection attempt tells
    eps_->current = (eps_->current + 1) % eps_->list.size();
    finish(make_error(errc::io, "etcd did not answer (" + ec.message() + "): the outcome is unknown"));
  }

  void finish(result<json> r) {
    auto done = std::move(queue_.front().done);
    queue_.pop_front();
    auto alive = alive_;
    done(std::move(r));
    if (*alive) next();
  }

  asio::io_context& io_;
  std::shared_ptr<endpoints_state> eps_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<bool> alive_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::deque<request> queue_;
  bool busy_ = false;
  bool connected_ = false;
  bool resent_ = false;
};

}  // namespace

struct client::impl {
  asio::io_context& io;
  std::shared_ptr<endpoints_state> eps;
  std::chrono::milliseconds timeout;
  std::shared_ptr<bool> alive;
  std::shared_ptr<lane> kv;
  std::shared_ptr<lane> leases;
};

client::client(asio::io_context& io, std::vector<endpoint> endpoints, std::chrono::milliseconds timeout)
    : impl_(std::make_shared<impl>(impl{io, std::make_shared<endpoints_state>(), timeout, {}, {}, {}})) {
  impl_->alive = std::make_shared<bool>(true);
  impl_->eps->list = std::move(endpoints);
  impl_->eps->last_failure.resize(impl_->eps->list.size());
  impl_->eps->refused.resize(impl_->eps->list.size(), false);
  impl_->kv = std::make_shared<lane>(io, impl_->eps, timeout, impl_->alive);
  impl_->leases = std::make_shared<lane>(io, impl_->eps, timeout, impl_->alive);
}

client::~client() {
  *impl_->alive = false;
  impl_->kv->close();
  impl_->leases->close();
}

std::string client::last_failures() const { return impl_->eps->failures(); }

bool client::all_refused() const {
  for (bool r : impl_->eps->refused)
    if (!r) return false;
  return !impl_->eps->refused.empty();
}

namespace {
template <class T, class F>
std::function<void(result<json>)> then(std::function<void(result<T>)> cb, F f) {
  return [cb = std::move(cb), f = std::move(f)](result<json> r) {
    if (!r) return cb(r.err());
    cb(f(*r));
  };
}
}  // namespace

void client::range(std::string key, std::string range_end, done<range_result> cb) {
  json body{{"key", b64(key)}};
  if (!range_end.empty()) body["range_end"] = b64(range_end);
  impl_->kv->submit({"/v3/kv/range", body.dump(), then<range_result>(std::move(cb), [](const json& j) {
                       return result<range_result>(range_of(j));
                     })});
}

void client::put(std::string key, std::string value, std::int64_t lease, done<std::int64_t> cb) {
  json body{{"key", b64(key)}, {"value", b64(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  impl_->kv->submit({"/v3/kv/put", body.dump(), then<std::int64_t>(std::move(cb), [](const json& j) {
                       return result<std::int64_t>(revision_of(j));
                     })});
}

void client::erase(std::string key, std::string range_end, done<std::int64_t> cb) {
  json body{{"key", b64(key)}};
  if (!range_end.empty()) body["range_end"] = b64(range_end);
  impl_->kv->submit({"/v3/kv/deleterange", body.dump(), then<std::int64_t>(std::move(cb), [](const json& j) {
                       return result<std::int64_t>(revision_of(j));
                     })});
}

void client::txn(std::vector<compare> if_all, std::vector<operation> then_ops, std::vector<operation> otherwise,
                 done<txn_result> cb) {
  json c = json::array(), s = json::array(), f = json::array();
  for (auto& x : if_all) c.push_back(std::move(x.j));
  for (auto& x : then_ops) s.push_back(std::move(x.j));
  for (auto& x : otherwise) f.push_back(std::move(x.j));
  const json body{{"compare", c}, {"success", s}, {"failure", f}};
  impl_->kv->submit({"/v3/kv/txn", body.dump(), then<txn_result>(std::move(cb), [](const json& j) {
                       txn_result t;
                       t.succeeded = j.value("succeeded", false);
                       t.revision = revision_of(j);
                       if (auto rs = j.find("responses"); rs != j.end() && rs->is_array())
                         for (const auto& r : *rs)
                           if (auto rr = r.find("response_range"); rr != r.end()) t.ranges.push_back(range_of(*rr));
                       return result<txn_result>(std::move(t));
                     })});
}

void client::grant(std::int64_t ttl_seconds, done<lease> cb) {
  const json body{{"TTL", std::to_string(ttl_seconds)}};
  impl_->leases->submit({"/v3/lease/grant", body.dump(), then<lease>(std::move(cb), [](const json& j) -> result<lease> {
                           if (j.contains("error") && !j["error"].get<std::string>().empty())
                             return make_error(errc::refused, "etcd: " + j["error"].get<std::string>());
                           return lease{i64(j, "ID"), i64(j, "TTL")};
                         })});
}

void client::keep_alive(std::int64_t id, done<std::int64_t> cb) {
  const json body{{"ID", std::to_string(id)}};
  impl_->leases->submit({"/v3/lease/keepalive", body.dump(), then<std::int64_t>(std::move(cb), [](const json& j) {
                           // A stream's one answer: {"result": {...,"TTL"}}; TTL absent (0): gone.
                           const json& r = j.contains("result") ? j["result"] : j;
                           return result<std::int64_t>(i64(r, "TTL"));
                         })});
}

void client::revoke(std::int64_t id, done<ok_t> cb) {
  const json body{{"ID", std::to_string(id)}};
  impl_->leases->submit(
      {"/v3/lease/revoke", body.dump(), then<ok_t>(std::move(cb), [](const json&) { return result<ok_t>(ok_v); })});
}

// ---------------------------------------------------------------- watches

struct client::watch::state : std::enable_shared_from_this<state> {
  state(asio::io_context& io, std::shared_ptr<endpoints_state> e, std::chrono::milliseconds t)
      : io_(io), eps(std::move(e)), timeout(t), stream(io) {}

  void start(std::string create) {
    create_body = std::move(create);
    auto self = shared_from_this();
    connect_any(io_, eps, stream, timeout, 0, alive, [self](status s) {
      if (!s) return self->end(s.err());
      self->request.method(http::verb::post);
      self->request.target("/v3/watch");
      self->request.version(11);
      self->request.set(http::field::host, self->eps->list[self->eps->current].text());
      self->request.set(http::field::content_type, "application/json");
      self->request.body() = self->create_body;
      self->request.prepare_payload();
      self->stream.expires_after(self->timeout);
      http::async_write(self->stream, self->request, [self](const boost::system::error_code& ec, std::size_t) {
        if (!*self->alive) return;
        if (ec) return self->end(make_error(errc::io, "etcd watch: " + ec.message()));
        self->parser.body_limit(boost::none);
        self->on_chunk = [self_raw = self.get()](std::uint64_t, beast::string_view body, boost::system::error_code&) {
          self_raw->take(std::string_view(body.data(), body.size()));
          return body.size();
        };
        self->parser.on_chunk_body(self->on_chunk);
        self->stream.expires_after(self->timeout);
        http::async_read_header(
            self->stream, self->buffer, self->parser, [self](const boost::system::error_code& e, std::size_t) {
              if (!*self->alive) return;
              if (e) return self->end(make_error(errc::io, "etcd watch: " + e.message()));
              if (self->parser.get().result() != http::status::ok)
                return self->end(
                    make_error(errc::refused, "etcd watch: HTTP " + std::to_string(self->parser.get().result_int())));
              self->stream.expires_never();  // a watch is idle for as long as nothing changes
              self->read();
            });
      });
    });
  }

  void read() {
    auto self = shared_from_this();
    http::async_read_some(stream, buffer, parser, [self](const boost::system::error_code& e, std::size_t) {
      if (!*self->alive) return;
      if (e || self->parser.is_done())
        return self->end(make_error(errc::io, "etcd watch ended: " + (e ? e.message() : "closed")));
      self->read();
    });
  }

  // Body bytes: one JSON object per line.
  void take(std::string_view bytes) {
    line.append(bytes);
    for (auto nl = line.find('\n'); nl != std::string::npos && *alive; nl = line.find('\n')) {
      const std::string one = line.substr(0, nl);
      line.erase(0, nl + 1);
      if (!one.empty()) message(one);
    }
  }

  void message(const std::string& text) {
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) return end(make_error(errc::protocol, "etcd watch sent what is not JSON"));
    if (j.contains("error")) return end(make_error(errc::refused, "etcd watch: " + j["error"].dump()));
    const json& r = j.contains("result") ? j["result"] : j;
    if (r.value("canceled", false) || i64(r, "compact_revision") != 0)
      return end(make_error(errc::unavailable,
                            "etcd watch canceled (" + r.value("cancel_reason", std::string("compacted")) + ")"));
    const auto revision = revision_of(r);
    std::vector<event> events;
    if (auto evs = r.find("events"); evs != r.end() && evs->is_array())
      for (const auto& e : *evs)
        events.push_back(event{e.value("type", std::string()) == "DELETE", kv_of(e.value("kv", json::object()))});
    if (!events.empty() && on_events) on_events(events, revision);
  }

  void end(const error& why) {
    if (!*alive || ended) return;
    ended = true;
    beast::error_code ec;
    stream.socket().close(ec);
    if (on_end) on_end(why);
  }

  asio::io_context& io_;
  std::shared_ptr<endpoints_state> eps;
  std::chrono::milliseconds timeout;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
  std::function<std::size_t(std::uint64_t, beast::string_view, boost::system::error_code&)> on_chunk;
  std::string create_body;
  std::string line;
  events_fn on_events;
  end_fn on_end;
  bool ended = false;
};

client::watch::~watch() {
  *s_->alive = false;
  beast::error_code ec;
  s_->stream.socket().close(ec);
}

std::unique_ptr<client::watch> client::watch_prefix(std::string prefix, std::int64_t start_revision,
                                                    events_fn on_events, end_fn on_end) {
  auto s = std::make_shared<watch::state>(impl_->io, impl_->eps, impl_->timeout);
  s->on_events = std::move(on_events);
  s->on_end = std::move(on_end);
  json create{{"key", b64(prefix)}, {"range_end", b64(prefix_end(prefix))}};
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  s->start(json{{"create_request", create}}.dump());
  return std::make_unique<watch>(s);
}

}  // namespace troupe::etcd
