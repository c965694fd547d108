#include "supervisor/desired_state.hpp"

#include "base/files.hpp"
#include "base/hex.hpp"
#include "ipc/json_limits.hpp"
#include "ipc/log.hpp"
#include "ipc/protocol.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <set>

namespace troupe::supervisor {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ipc::log_line;

namespace {

constexpr int format_version = 1;
// A file this big is not one a system wrote (a million actors take ~300 MB).
constexpr std::uint64_t max_state_bytes = std::uint64_t{1} << 30;

const char* const policies[] = {"permanent", "transient", "temporary", ""};

}  // namespace

std::string encode_state(const saved_state& s) {
  json actors = json::array();
  for (const auto& a : s.actors) {
    json j{{"address", a.addr.to_string()}, {"type", a.type},       {"package_id", a.package_id}, {"group", a.group},
           {"version", a.version},          {"restart", a.restart}, {"restarts", a.restarts}};
    if (!a.name.empty()) j["name"] = a.name;
    if (a.pending) j["pending"] = true;
    actors.push_back(std::move(j));
  }
  return json{{"format", format_version},
              {"system", base::hex32(s.system_id)},
              {"serials_below", s.serials_below},
              {"actors", std::move(actors)}}
             .dump() +
         "\n";
}

result<saved_state> decode_state(std::string_view bytes) {
  auto parsed = ipc::parse_json(bytes, 8);  // the format nests 3 levels
  if (!parsed) return make_error(errc::invalid_argument, parsed.err().message);
  const json& j = *parsed;
  auto bad = [](const std::string& why) { return make_error(errc::invalid_argument, why); };
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("format") || j["format"] != format_version)
    return bad("format is not " + std::to_string(format_version));
  saved_state s;
  const auto& sys = j.contains("system") ? j["system"] : json();
  if (!sys.is_string() || sys.get<std::string>().size() != 8) return bad("system: not 8 hex digits");
  s.system_id = base::parse_hex32(sys.get<std::string>());
  if (s.system_id == 0 || base::hex32(s.system_id) != sys.get<std::string>()) return bad("system: not 8 hex digits");
  const auto& below = j.contains("serials_below") ? j["serials_below"] : json();
  if (!below.is_number_unsigned() || below.get<std::uint64_t>() > 0xffffffffu ||
      below.get<std::uint64_t>() < ipc::first_actor_serial)
    return bad("serials_below: not a serial");
  s.serials_below = below.get<std::uint32_t>();
  const auto& actors = j.contains("actors") ? j["actors"] : json();
  if (!actors.is_array()) return bad("actors: not an array");
  std::set<address> seen;
  std::set<std::string> names;
  for (const auto& e : actors) {
    const std::string at = "actors[" + std::to_string(s.actors.size()) + "]";
    if (!e.is_object()) return bad(at + ": not an object");
    auto text = [&](const char* key, bool required, std::string& out) {
      if (!e.contains(key)) return !required;
      if (!e[key].is_string()) return false;
      out = e[key].get<std::string>();
      return !required || !out.empty();
    };
    saved_actor a;
    std::string addr;
    if (!text("address", true, addr)) return bad(at + ": address missing");
    const auto parsed_addr = address::parse(addr);
    if (!parsed_addr) return bad(at + ": '" + addr + "' is not an address");
    a.addr = *parsed_addr;
    if (a.addr.system() != s.system_id || a.addr.serial() < ipc::first_actor_serial ||
        a.addr.serial() >= s.serials_below)
      return bad(at + ": " + addr + " is not an address this system handed out");
    if (!seen.insert(a.addr).second) return bad(at + ": " + addr + " listed twice");
    if (!text("type", true, a.type)) return bad(at + ": type missing");
    if (!text("package_id", true, a.package_id) || a.package_id.size() != 64 ||
        a.package_id.find_first_not_of("0123456789abcdef") != std::string::npos)
      return bad(at + ": package_id is not 64 hex digits");
    if (!text("group", false, a.group) || !text("version", false, a.version) || !text("name", false, a.name) ||
        !text("restart", false, a.restart))
      return bad(at + ": group, version, name and restart must be strings");
    if (std::find(std::begin(policies), std::end(policies), a.restart) == std::end(policies))
      return bad(at + ": restart '" + a.restart + "' is not a policy");
    if (!a.name.empty() && (a.name.front() == '@' || !names.insert(a.name).second))
      return bad(at + ": name '" + a.name + "' is not a free global name");
    if (e.contains("restarts")) {
      if (!e["restarts"].is_number_unsigned() || e["restarts"].get<std::uint64_t>() > 0xffffffffu)
        return bad(at + ": restarts is not a count");
      a.restarts = e["restarts"].get<std::uint32_t>();
    }
    if (e.contains("pending")) {
      if (!e["pending"].is_boolean()) return bad(at + ": pending is not a boolean");
      a.pending = e["pending"].get<bool>();
    }
    s.actors.push_back(std::move(a));
  }
  return s;
}

recovered_state read_state_file(const fs::path& file) {
  recovered_state out;
  auto bytes = base::read_regular_file(file, max_state_bytes);
  if (!bytes) {
    if (bytes.err().code != errc::not_found) out.problem = bytes.err().message;  // absent: a clean stop
    return out;
  }
  auto s = decode_state(bytes->bytes);
  if (!s) {
    out.problem = file.string() + ": " + s.err().message;
    return out;
  }
  out.state = std::move(*s);
  return out;
}

status desired_state::begin(std::uint32_t system_id, std::uint32_t serials_below, std::vector<saved_actor> actors) {
  base_.system_id = system_id;
  base_.serials_below = serials_below;
  base_.actors = std::move(actors);
  active_ = true;
  if (auto s = base::write_file_atomically(file_, encode_state(base_), 0600); !s) return s;
  ++writes_;
  return ok_v;
}

void desired_state::reserve(std::uint32_t serials_below) {
  base_.serials_below = serials_below;
  if (!active_) return;
  // Before the serials leave: an address is never handed out twice. Those
  // waiting for the write are run by the flush already posted (if any), not
  // from inside an allocation.
  write();
}

void desired_state::changed() {
  if (!active_) return;
  dirty_ = true;
  post_flush();
}

void desired_state::when_durable(std::function<void()> f) {
  if (!dirty_) return f();
  after_write_.push_back(std::move(f));
  post_flush();
}

void desired_state::post_flush() {
  if (posted_) return;
  posted_ = true;
  // After the handlers of this turn: a burst of spawns costs one write.
  boost::asio::post(io_, [this] { flush(); });
}

void desired_state::flush() {
  posted_ = false;
  if (active_ && dirty_) write();
  for (auto& f : std::exchange(after_write_, {})) f();
}

void desired_state::write() {
  dirty_ = false;
  base_.actors = snapshot ? snapshot() : std::vector<saved_actor>{};
  if (auto s = base::write_file_atomically(file_, encode_state(base_), 0600); !s) {
    // Served on: a full disk must not stop the system, but a crash now
    // would lose what changed since the last write.
    if (!write_failed_logged_) log_line(TROUPE_LOG_ERROR, {}, "cannot keep the desired state: " + s.err().message);
    write_failed_logged_ = true;
    return;
  }
  write_failed_logged_ = false;
  ++writes_;
}

void desired_state::forget() {
  active_ = false;
  dirty_ = false;
  for (auto& f : std::exchange(after_write_, {})) f();
  std::error_code ec;
  fs::remove(file_, ec);
}

}  // namespace troupe::supervisor
