#include "supervisor/membership.hpp"

#include "base/hex.hpp"

#include "supervisor/capabilities.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace troupe::supervisor {
namespace {

using json = nlohmann::json;

error bad(const std::string& what) { return make_error(errc::invalid_argument, "member: " + what); }

// Quoted and escaped, so a name with a newline or invalid UTF-8 still gives a
// one-line message and dump() cannot throw.
std::string quoted(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

// An integer in [lo, hi]; floats (even 80.0) are refused, as are values that
// do not fit, whether JSON stored them signed or unsigned.
bool integer_in(const json& v, std::uint64_t lo, std::uint64_t hi, std::uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<std::uint64_t>();
  } else if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i < 0) return false;
    out = static_cast<std::uint64_t>(i);
  } else {
    return false;
  }
  return out >= lo && out <= hi;
}

// 1 to 8 hex digits, not all zero: 0 is no system.
bool parse_system_id(const std::string& s, std::uint32_t& out) {
  if (s.empty() || s.size() > 8) return false;
  std::uint32_t id = 0;
  for (char c : s) {
    int d = 0;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return false;
    id = id * 16 + static_cast<std::uint32_t>(d);
  }
  out = id;
  return id != 0;
}

// Direct mapping, not parse_capability_value: the string "16" must stay a
// string, or the JSON form would not round-trip.
bool capability_from_json(const json& v, manifests::capability_value& out) {
  if (v.is_boolean()) {
    out = v.get<bool>();
  } else if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      out = static_cast<std::int64_t>(u);
    else
      out = static_cast<double>(u);  // above int64: kept as a number, not refused
  } else if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) return false;  // would be written back as null
    out = d;
  } else if (v.is_string()) {
    out = v.get<std::string>();
  } else {
    return false;
  }
  return true;
}

const json* field(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

std::string missing(const char* name) { return std::string("\"") + name + "\" is missing"; }

// Capability names and values come from other systems: keep the placement
// error on one line whatever they hold.
std::string one_line(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s;
}

}  // namespace

const char* to_string(member_state s) {
  switch (s) {
    case member_state::up:
      return "up";
    case member_state::down:
      return "down";
  }
  return "down";
}

json to_json(const member_info& m) {
  return json{{"system", base::hex32(m.system_id)},
              {"host", m.host},
              {"port", m.port},
              {"peer", m.peer_endpoint},
              {"key", m.public_key},
              {"capabilities", to_json(m.caps)},
              {"actors", m.actors},
              {"leader", m.leader},
              {"state", to_string(m.state)}};
}

result<member_info> member_from_json(const json& j) {
  if (!j.is_object()) return bad("must be a JSON object");
  member_info m;
  std::uint64_t n = 0;

  const json* v = field(j, "system");
  if (v == nullptr) return bad(missing("system"));
  if (!v->is_string() || !parse_system_id(v->get<std::string>(), m.system_id))
    return bad("\"system\" must be 1 to 8 hex digits, not all zero");

  v = field(j, "host");
  if (v == nullptr) return bad(missing("host"));
  if (!v->is_string() || v->get<std::string>().empty()) return bad("\"host\" must be a non-empty string");
  m.host = v->get<std::string>();

  v = field(j, "port");
  if (v == nullptr) return bad(missing("port"));
  if (!integer_in(*v, 1, 65535, n)) return bad("\"port\" must be an integer from 1 to 65535");
  m.port = static_cast<std::uint16_t>(n);

  v = field(j, "peer");
  if (v == nullptr) return bad(missing("peer"));
  if (!v->is_string() || v->get<std::string>().rfind("tcp://", 0) != 0)
    return bad("\"peer\" must be a string starting with tcp://");
  m.peer_endpoint = v->get<std::string>();

  v = field(j, "key");
  if (v == nullptr) return bad(missing("key"));
  if (!v->is_string() || v->get<std::string>().size() != 40)
    return bad("\"key\" must be a Z85 string of 40 characters");
  m.public_key = v->get<std::string>();

  v = field(j, "capabilities");
  if (v == nullptr) return bad(missing("capabilities"));
  if (!v->is_object()) return bad("\"capabilities\" must be an object");
  for (const auto& [name, value] : v->items()) {
    if (name.empty()) return bad("\"capabilities\" has an empty name");
    if (!capability_from_json(value, m.caps[name]))
      return bad("capability " + quoted(name) + " must be a bool, a finite number or a string");
  }

  v = field(j, "actors");
  if (v == nullptr) return bad(missing("actors"));
  if (!integer_in(*v, 0, std::numeric_limits<std::uint32_t>::max(), n))
    return bad("\"actors\" must be an integer from 0 to 4294967295");
  m.actors = static_cast<std::uint32_t>(n);

  v = field(j, "leader");
  if (v == nullptr) return bad(missing("leader"));
  if (!v->is_boolean()) return bad("\"leader\" must be true or false");
  m.leader = v->get<bool>();

  v = field(j, "state");  // optional: a member that is listed is taken to be up
  if (v != nullptr) {
    if (v->is_string() && v->get<std::string>() == "up")
      m.state = member_state::up;
    else if (v->is_string() && v->get<std::string>() == "down")
      m.state = member_state::down;
    else
      return bad("\"state\" must be \"up\" or \"down\"");
  }
  return m;
}

bool membership::upsert(member_info m, convention_clock::time_point now) {
  m.state = member_state::up;
  m.last_heard = now;
  auto it = members_.find(m.system_id);
  if (it == members_.end()) {
    members_.emplace(m.system_id, std::move(m));
    return true;
  }
  const member_info& old = it->second;
  // last_heard and actors move with every heartbeat: not news to pass on.
  const bool changed = old.host != m.host || old.port != m.port || old.peer_endpoint != m.peer_endpoint ||
                       old.public_key != m.public_key || old.caps != m.caps || old.leader != m.leader ||
                       old.state != m.state;
  it->second = std::move(m);
  return changed;
}

bool membership::heard(std::uint32_t id, convention_clock::time_point now, std::uint32_t actors) {
  auto it = members_.find(id);
  if (it == members_.end()) return false;
  it->second.state = member_state::up;
  it->second.last_heard = now;
  it->second.actors = actors;
  return true;
}

std::vector<std::uint32_t> membership::expire(convention_clock::time_point now, std::chrono::milliseconds timeout,
                                              std::uint32_t except) {
  std::vector<std::uint32_t> out;
  for (const member_info* m : all()) {
    if (m->system_id == except || m->state != member_state::up || now - m->last_heard <= timeout) continue;
    out.push_back(m->system_id);
  }
  for (auto id : out) members_.at(id).state = member_state::down;
  return out;
}

bool membership::mark_down(std::uint32_t id) {
  auto it = members_.find(id);
  if (it == members_.end()) return false;
  it->second.state = member_state::down;
  return true;
}

void membership::remove(std::uint32_t id) { members_.erase(id); }

bool membership::set_caps(std::uint32_t id, manifests::capabilities caps) {
  auto it = members_.find(id);
  if (it == members_.end()) return false;
  it->second.caps = std::move(caps);
  return true;
}

bool membership::add_load(std::uint32_t id, int delta) {
  auto it = members_.find(id);
  if (it == members_.end()) return false;
  // A stop counted twice must not wrap the load round to four billion.
  const std::int64_t load = std::int64_t{it->second.actors} + delta;
  it->second.actors =
      static_cast<std::uint32_t>(std::clamp<std::int64_t>(load, 0, std::numeric_limits<std::uint32_t>::max()));
  return true;
}

const member_info* membership::find(std::uint32_t id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

const member_info* membership::find_port(std::uint16_t port) const {
  for (const auto& [_, m] : members_)  // members_ is ordered by id
    if (m.port == port) return &m;
  return nullptr;
}

std::vector<const member_info*> membership::all() const {
  std::vector<const member_info*> out;
  out.reserve(members_.size());
  for (const auto& [_, m] : members_) out.push_back(&m);
  std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->port < b->port; });
  return out;
}

result<std::uint32_t> choose_system(const membership& members, std::uint32_t local_id,
                                    const std::vector<manifests::requirement>& reqs,
                                    const std::vector<std::uint32_t>& exclude, std::string_view type) {
  auto fits = [&](const member_info& m) {
    return m.state == member_state::up && std::find(exclude.begin(), exclude.end(), m.system_id) == exclude.end() &&
           !manifests::unmet(m.caps, reqs);
  };
  // Local first: no hop across the network for the actor's messages.
  if (const auto* local = members.find(local_id); local != nullptr && fits(*local)) return local_id;

  const auto ordered = members.all();  // port, then id: the first of equals wins the tie
  const member_info* best = nullptr;
  for (const member_info* m : ordered)
    if (fits(*m) && (best == nullptr || m->actors < best->actors)) best = m;
  if (best != nullptr) return best->system_id;

  std::string why;
  for (const member_info* m : ordered) {
    if (m->state != member_state::up) continue;
    // An excluded member that meets every requirement was passed over only
    // because it refused the actor; otherwise its unmet requirement is the reason.
    auto miss = manifests::unmet(m->caps, reqs);
    why += (why.empty() ? "" : "; ") + std::to_string(m->port) + ": " + (miss ? *miss : "refused it");
  }
  if (why.empty()) why = "no system is up";
  return make_error(errc::unavailable, one_line("no system can host " + std::string(type) + ": " + why));
}

}  // namespace troupe::supervisor
