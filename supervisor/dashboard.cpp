#include "supervisor/dashboard.hpp"

#include "base/files.hpp"
#include "base/hex.hpp"
#include "ipc/commands.hpp"
#include "ipc/json_limits.hpp"
#include "ipc/log.hpp"
#include "supervisor/dashboard_assets.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>

#include <sys/random.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace troupe::supervisor {

namespace cmd = ipc::cmd;
using ipc::log_line;
using header_list = std::vector<std::pair<std::string, std::string>>;

namespace {

// Nothing on the page comes from elsewhere, and nothing may frame it.
const char* const page_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

header_list page_headers() {
  return {{"Cache-Control", "no-cache"},  // a new build's page at once; the assets are small
          {"Content-Security-Policy", page_policy},
          {"X-Content-Type-Options", "nosniff"},
          {"X-Frame-Options", "DENY"},
          {"Referrer-Policy", "no-referrer"}};
}

header_list api_headers() {
  return {{"Cache-Control", "no-store"},
          {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
          {"X-Content-Type-Options", "nosniff"},
          {"Referrer-Policy", "no-referrer"}};
}

unsigned http_status_of(const std::string& code) {
  if (code == "invalid_argument" || code == "protocol") return 400;
  if (code == "not_found") return 404;
  if (code == "refused") return 403;
  if (code == "limit") return 429;
  if (code == "timeout") return 504;
  if (code == "unavailable") return 503;
  if (code == "unknown") return 502;
  return 500;
}

// "%41b+c" → "Ab c"; nothing for a broken escape.
std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      unsigned v = 0;
      if (i + 2 >= s.size()) return std::nullopt;
      auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (r.ec != std::errc{} || r.ptr != s.data() + i + 3) return std::nullopt;
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The query's NAME=VALUE pairs, decoded; nothing when one is malformed.
std::optional<std::vector<std::pair<std::string, std::string>>> query_pairs(const std::string& q) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at < q.size()) {
    auto end = q.find('&', at);
    if (end == std::string::npos) end = q.size();
    const std::string_view part(q.data() + at, end - at);
    at = end + 1;
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto k = url_decode(part.substr(0, eq));
    auto v = url_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    if (!k || !v) return std::nullopt;
    out.emplace_back(std::move(*k), std::move(*v));
  }
  return out;
}

std::optional<std::uint64_t> parse_u64(const std::string& s) {
  std::uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string sse_event(const event& e) {
  return "id: " + std::to_string(e.seq) + "\ndata: " + to_json(e).dump(-1, ' ', false, json::error_handler_t::replace) +
         "\n\n";
}

}  // namespace

dashboard::dashboard(system_context& ctx, http_server& http, client_port& port, event_ring& ring, reach r)
    : ctx_(ctx), http_(http), port_(port), ring_(ring), reach_(std::move(r)), keepalive_(ctx.io) {}

dashboard::~dashboard() { *alive_ = false; }

status dashboard::setup() {
  unsigned char raw[32];
  std::size_t got = 0;
  while (got < sizeof raw) {
    const auto n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(errc::io, std::string("cannot draw the dashboard token: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  token_ = base::hex_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  const auto file = token_file(ctx_.dir);
  if (auto s = base::write_file_atomically(file, token_ + "\n", 0600); !s)
    return make_error(errc::io, "cannot write the dashboard token " + file.string() + ": " + s.err().message);
  auto where = http_server::parse_where(ctx_.opts.http);
  http_port_ = where ? where->second : 0;
  add_routes();
  ring_.on_record([this, alive = alive_](const event&) {
    if (*alive && !streams_.empty()) schedule_flush();
  });
  arm_keepalive();
  return ok_v;
}

void dashboard::stop() {
  for (auto& s : streams_) {
    s.out->write("event: end\ndata: {\"end\": \"the system is stopping\"}\n\n");
    s.out->end();
  }
  streams_.clear();
  keepalive_.cancel();
  std::error_code ec;
  std::filesystem::remove(token_file(ctx_.dir), ec);
}

std::string dashboard::url_of(const std::string& http) {
  auto where = http_server::parse_where(http);
  if (!where) return {};
  const bool v6 = where->first.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + where->first + "]" : where->first) + ":" + std::to_string(where->second) + "/";
}

bool dashboard::same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]));
  return diff == 0;
}

bool dashboard::host_allowed(const std::string& host, std::uint16_t port) {
  // HOST:PORT with HOST an IP address (IPv6 in brackets) or localhost: a
  // name an attacker's DNS could point here (rebinding) is never one of them.
  const auto colon = host.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  if (host.substr(colon + 1) != std::to_string(port)) return false;
  std::string name = host.substr(0, colon);
  if (name == "localhost") return true;
  if (name.front() == '[') {
    if (name.back() != ']' || name.size() < 3) return false;
    name = name.substr(1, name.size() - 2);
  } else if (name.find(':') != std::string::npos) {
    return false;  // IPv6 without brackets
  }
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(name, ec);
  return !ec;
}

// ---------------------------------------------------------------- answers

void dashboard::refuse(const exchange_ptr& ex, unsigned status, const std::string& code, const std::string& error,
                       header_list headers) {
  auto h = api_headers();
  h.insert(h.end(), headers.begin(), headers.end());
  ex->reply(
      {status, "application/json",
       json{{"ok", false}, {"code", code}, {"error", error}}.dump(-1, ' ', false, json::error_handler_t::replace) +
           "\n",
       std::move(h)});
}

void dashboard::answer(const exchange_ptr& ex, const json& reply) {
  const bool ok = reply.value("ok", false);
  const unsigned status = ok ? 200 : http_status_of(reply.value("code", std::string()));
  ex->reply(
      {status, "application/json", reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", api_headers()});
}

bool dashboard::admitted(const exchange_ptr& ex, bool api) {
  const auto& rq = ex->req();
  if (!host_allowed(rq.host, http_port_)) {
    refuse(ex, 421, "refused",
           "Host '" + rq.host.substr(0, 100) +
               "' is not this dashboard's address: use an IP address or localhost, port " + std::to_string(http_port_));
    return false;
  }
  if (!api) return true;
  const std::string bearer = "Bearer ";
  const bool has = rq.authorization.size() > bearer.size() && rq.authorization.compare(0, bearer.size(), bearer) == 0;
  if (!has || !same_secret(rq.authorization.substr(bearer.size()), token_)) {
    log_line(TROUPE_LOG_WARN, {},
             "dashboard: refused " + rq.method + " " + rq.path + ": " + (has ? "wrong token" : "no token"));
    refuse(ex, 401, "refused",
           has ? "wrong dashboard token (it changes at every start: `troupe dashboard` prints the current one)"
               : "the dashboard's API needs its token: Authorization: Bearer TOKEN (`troupe dashboard` prints it)",
           {{"WWW-Authenticate", "Bearer realm=\"troupe\""}});
    return false;
  }
  if (rq.method == "POST" && !rq.origin.empty() && rq.origin != "http://" + rq.host) {
    log_line(TROUPE_LOG_WARN, {}, "dashboard: refused a POST from origin '" + rq.origin.substr(0, 100) + "'");
    refuse(ex, 403, "refused", "origin '" + rq.origin.substr(0, 100) + "' is not this dashboard's");
    return false;
  }
  return true;
}

std::optional<json> dashboard::body_of(const exchange_ptr& ex) {
  const auto& rq = ex->req();
  const std::string type = rq.content_type.substr(0, rq.content_type.find(';'));
  if (type != "application/json") {
    refuse(ex, 415, "invalid_argument", "the body must be JSON (Content-Type: application/json)");
    return std::nullopt;
  }
  auto j = ipc::parse_json(rq.body, ctx_.opts.max_json_depth);
  if (!j) {
    refuse(ex, 400, "invalid_argument", "the body is not JSON: " + j.err().message);
    return std::nullopt;
  }
  if (!j->is_object()) {
    refuse(ex, 400, "invalid_argument", "the body must be a JSON object");
    return std::nullopt;
  }
  return *j;
}

void dashboard::run(const exchange_ptr& ex, const std::string& command, const json& body) {
  if (waiting_ >= max_waiting)
    return refuse(ex, 503, "limit",
                  "dashboard: " + std::to_string(waiting_) + " requests wait for their answer already; try again");
  ++waiting_;
  port_.call(command, body, [this, alive = alive_, ex](json reply) {
    if (!*alive) return;
    --waiting_;
    answer(ex, reply);
  });
}

// ---------------------------------------------------------------- routes

void dashboard::add_routes() {
  for (const auto& a : dashboard_assets()) {
    auto serve = [this, &a](const exchange_ptr& ex) {
      if (!admitted(ex, false)) return;
      ex->reply({200, a.content_type, std::string(a.bytes), page_headers()});
    };
    http_.route(a.path, {"GET"}, serve);
    if (std::string_view(a.path) == "/index.html") http_.route("/", {"GET"}, serve);
  }
  auto plain = [this](const std::string& command) {
    return [this, command](const exchange_ptr& ex) {
      if (admitted(ex, true)) run(ex, command, json::object());
    };
  };
  http_.route("/api/status", {"GET"}, plain(std::string(cmd::client::status)));
  http_.route("/api/systems", {"GET"}, plain(std::string(cmd::client::systems)));
  http_.route("/api/packages", {"GET"}, plain(std::string(cmd::client::list)));
  http_.route("/api/actors", {"GET"}, [this](const exchange_ptr& ex) {
    if (admitted(ex, true)) api_actors(ex);
  });
  http_.route("/api/events", {"GET"}, [this](const exchange_ptr& ex) {
    if (admitted(ex, true)) api_events(ex);
  });
  http_.route("/api/ask", {"POST"}, [this](const exchange_ptr& ex) {
    if (admitted(ex, true)) api_send(ex, true);
  });
  http_.route("/api/tell", {"POST"}, [this](const exchange_ptr& ex) {
    if (admitted(ex, true)) api_send(ex, false);
  });
  http_.route("/api/chgcap", {"POST"}, [this](const exchange_ptr& ex) {
    if (admitted(ex, true)) api_chgcap(ex);
  });
}

void dashboard::api_actors(const exchange_ptr& ex) {
  auto pairs = query_pairs(ex->req().query);
  if (!pairs) return refuse(ex, 400, "invalid_argument", "a malformed query string");
  json body{{"limit", default_actors_page}};
  for (const auto& [k, v] : *pairs) {
    if (k == "limit") {
      auto n = parse_u64(v);
      if (!n || *n < 1 || *n > max_actors_page)
        return refuse(ex, 400, "invalid_argument",
                      "actors: limit must be an integer from 1 to " + std::to_string(max_actors_page));
      body["limit"] = *n;
    } else if (k == "after" || k == "package" || k == "state" || k == "system") {
      body[k] = v;  // checked by the command, as a client's
    } else {
      return refuse(ex, 400, "invalid_argument",
                    "actors: unknown parameter '" + k.substr(0, 64) + "' (limit, after, package, state, system)");
    }
  }
  run(ex, std::string(cmd::client::actors), body);
}

void dashboard::api_send(const exchange_ptr& ex, bool ask) {
  auto b = body_of(ex);
  if (!b) return;
  // Only the fields a client sends (the command checks their values).
  json body = json::object();
  for (const char* k : {"target", "payload", "type", "timeout_ms"})
    if (b->contains(k)) body[k] = (*b)[k];
  if (body.contains("timeout_ms")) {
    const auto& t = body["timeout_ms"];
    if (!t.is_number_integer() || t.get<std::int64_t>() < 1 || t.get<std::int64_t>() > max_timeout_ms)
      return refuse(ex, 400, "invalid_argument",
                    "timeout_ms must be an integer from 1 to " + std::to_string(max_timeout_ms));
  }
  run(ex, std::string(ask ? cmd::client::ask : cmd::client::tell), body);
}

void dashboard::api_chgcap(const exchange_ptr& ex) {
  auto b = body_of(ex);
  if (!b) return;
  json body = json::object();
  for (const char* k : {"op", "name", "value"})
    if (b->contains(k)) body[k] = (*b)[k];
  std::uint16_t port = ctx_.opts.port;
  if (b->contains("system")) {
    const auto& s = (*b)["system"];
    if (!s.is_number_integer() || s.get<std::int64_t>() < 1 || s.get<std::int64_t>() > 65535)
      return refuse(ex, 400, "invalid_argument", "chgcap: system must be a port from 1 to 65535");
    port = static_cast<std::uint16_t>(s.get<std::int64_t>());
  }
  if (port == ctx_.opts.port) return run(ex, std::string(cmd::client::chgcap), body);
  // Another system of the convention: forwarded to it over the peer link,
  // where the same handler runs it (docs/PROTOCOL.md §5.8).
  const std::uint32_t to = reach_.system_on_port ? reach_.system_on_port(port) : 0;
  if (to == 0 || to == ctx_.id)
    return refuse(ex, 404, "not_found", "no system on port " + std::to_string(port) + " in the convention");
  if (waiting_ >= max_waiting)
    return refuse(ex, 503, "limit",
                  "dashboard: " + std::to_string(waiting_) + " requests wait for their answer already; try again");
  ++waiting_;
  const client_ref c = port_.expect([this, alive = alive_, ex](json reply) {
    if (!*alive) return;
    --waiting_;
    answer(ex, reply);
  });
  reach_.forward(c, to, std::string(cmd::client::chgcap), body, std::chrono::seconds(5));
}

// ---------------------------------------------------------------- events

void dashboard::api_events(const exchange_ptr& ex) {
  const auto& rq = ex->req();
  std::uint64_t since = 0;
  auto pairs = query_pairs(rq.query);
  if (!pairs) return refuse(ex, 400, "invalid_argument", "a malformed query string");
  std::optional<std::uint64_t> tail;
  for (const auto& [k, v] : *pairs) {
    auto n = parse_u64(v);
    if (k == "since" && n)
      since = *n;
    else if (k == "tail" && n)
      tail = *n;
    else
      return refuse(ex, 400, "invalid_argument", "events: since=SEQ or tail=N, each a non-negative integer");
  }
  if (tail) since = ring_.last_seq() > *tail ? ring_.last_seq() - *tail : 0;
  // A browser that reconnects says where it was (EventSource does it itself).
  if (!rq.last_event_id.empty()) {
    auto n = parse_u64(rq.last_event_id);
    if (!n) return refuse(ex, 400, "invalid_argument", "Last-Event-ID must be an event's seq");
    since = *n;
  }
  // A number of an earlier run of the daemon: from the start of this one.
  if (since > ring_.last_seq()) since = 0;
  std::erase_if(streams_, [](const subscriber& s) { return !s.out->open(); });
  if (streams_.size() >= max_streams)
    return refuse(
        ex, 503, "limit",
        "dashboard: " + std::to_string(streams_.size()) + " event streams are open already, the most it serves");
  auto h = api_headers();
  h.emplace_back("X-Accel-Buffering", "no");
  auto out = ex->open_stream({200, "text/event-stream; charset=utf-8", "", h});
  if (!out) return;
  const json hello{{"system", base::hex32(ctx_.id)},
                   {"port", ctx_.opts.port},
                   {"first_seq", ring_.first_seq()},
                   {"last_seq", ring_.last_seq()},
                   {"since", since}};
  out->write("retry: 2000\nevent: hello\ndata: " + hello.dump() + "\n\n");
  out->on_drain([this, alive = alive_] {
    if (*alive) schedule_flush();
  });
  streams_.push_back({out, since, std::chrono::steady_clock::now()});
  schedule_flush();
}

void dashboard::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  boost::asio::post(ctx_.io, [this, alive = alive_] {
    if (!*alive) return;
    flush_scheduled_ = false;
    flush();
  });
}

void dashboard::flush() {
  for (auto& s : streams_) {
    if (!s.out->open() || s.out->queued() >= stream_low_water) continue;
    auto slice = ring_.since(s.sent_up_to, stream_batch);
    if (slice.events.empty() && slice.missed == 0) continue;
    std::string text;
    if (slice.missed > 0) text += "event: missed\ndata: {\"missed\": " + std::to_string(slice.missed) + "}\n\n";
    for (const auto& e : slice.events) text += sse_event(e);
    s.sent_up_to = slice.events.empty() ? ring_.last_seq() : slice.events.back().seq;
    s.last_write = std::chrono::steady_clock::now();
    s.out->write(std::move(text));  // cut off when it does not keep up (http_server)
  }
  std::erase_if(streams_, [](const subscriber& s) { return !s.out->open(); });
}

void dashboard::arm_keepalive() {
  keepalive_.expires_after(keepalive);
  keepalive_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& s : streams_)
      if (s.out->open() && now - s.last_write >= keepalive) {
        s.last_write = now;
        s.out->write(": keepalive\n\n");
      }
    std::erase_if(streams_, [](const subscriber& s) { return !s.out->open(); });
    arm_keepalive();
  });
}

}  // namespace troupe::supervisor
