#include "supervisor/event_ring.hpp"

#include <algorithm>
#include <array>
#include <chrono>

namespace troupe::supervisor {

using json = nlohmann::json;

namespace {

constexpr std::array<std::pair<event_kind, std::string_view>, 14> kind_names{{
    {event_kind::actor_started, "actor_started"},
    {event_kind::actor_restarted, "actor_restarted"},
    {event_kind::actor_failed, "actor_failed"},
    {event_kind::actor_stopped, "actor_stopped"},
    {event_kind::actor_moved, "actor_moved"},
    {event_kind::actor_pending, "actor_pending"},
    {event_kind::worker_exited, "worker_exited"},
    {event_kind::package_loaded, "package_loaded"},
    {event_kind::package_unloaded, "package_unloaded"},
    {event_kind::package_refused, "package_refused"},
    {event_kind::system_joined, "system_joined"},
    {event_kind::system_lost, "system_lost"},
    {event_kind::system_fenced, "system_fenced"},
    {event_kind::leader_changed, "leader_changed"},
}};

}  // namespace

std::string_view to_string(event_kind k) {
  for (const auto& [kind, name] : kind_names)
    if (kind == k) return name;
  return "unknown";
}

std::optional<event_kind> event_kind_from_string(std::string_view s) {
  for (const auto& [kind, name] : kind_names)
    if (name == s) return kind;
  return std::nullopt;
}

const std::vector<event_kind>& all_event_kinds() {
  static const std::vector<event_kind> all = [] {
    std::vector<event_kind> v;
    for (const auto& [kind, _] : kind_names) v.push_back(kind);
    return v;
  }();
  return all;
}

event actor_event(event_kind kind, address a, std::string reason) {
  event e;
  e.kind = kind;
  e.addr = a;
  e.reason = std::move(reason);
  return e;
}

event package_event(event_kind kind, std::string package, std::string version, std::string id, std::string reason) {
  event e;
  e.kind = kind;
  e.package = std::move(package);
  e.version = std::move(version);
  e.package_id = std::move(id);
  e.reason = std::move(reason);
  return e;
}

json to_json(const event& e) {
  json j{{"seq", e.seq}, {"time_ms", e.time_ms}, {"kind", to_string(e.kind)}};
  if (e.addr.valid()) j["address"] = e.addr.to_string();
  if (!e.name.empty()) j["name"] = e.name;
  if (!e.type.empty()) j["type"] = e.type;
  if (!e.package.empty()) j["package"] = e.package;
  if (!e.version.empty()) j["version"] = e.version;
  if (!e.package_id.empty()) j["package_id"] = e.package_id;
  if (e.port != 0) j["port"] = e.port;
  if (e.worker != 0) j["worker"] = e.worker;
  if (e.kind == event_kind::worker_exited) {
    if (e.pid != 0) j["pid"] = e.pid;
    if (e.signal != 0) j["signal"] = e.signal;
    if (e.exit_code >= 0) j["exit_code"] = e.exit_code;
    j["expected"] = e.expected;
  }
  if (!e.reason.empty()) j["reason"] = e.reason;
  return j;
}

std::optional<event> event_from_json(const json& j) {
  if (!j.is_object() || !j.contains("seq") || !j.contains("kind")) return std::nullopt;
  try {
    event e;
    auto kind = event_kind_from_string(j.at("kind").get<std::string>());
    if (!kind) return std::nullopt;
    e.kind = *kind;
    e.seq = j.at("seq").get<std::uint64_t>();
    e.time_ms = j.value("time_ms", std::int64_t{0});
    if (auto a = address::parse(j.value("address", std::string()))) e.addr = *a;
    e.name = j.value("name", std::string());
    e.type = j.value("type", std::string());
    e.package = j.value("package", std::string());
    e.version = j.value("version", std::string());
    e.package_id = j.value("package_id", std::string());
    e.port = j.value("port", std::uint16_t{0});
    e.worker = j.value("worker", std::uint32_t{0});
    e.pid = j.value("pid", 0);
    e.signal = j.value("signal", 0);
    e.exit_code = j.value("exit_code", -1);
    e.expected = j.value("expected", false);
    e.reason = j.value("reason", std::string());
    return e;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::string describe(const event& e) {
  std::string line(to_string(e.kind));
  if (e.addr.valid()) line += " " + e.addr.to_string();
  if (!e.name.empty()) line += " '" + e.name + "'";
  if (!e.type.empty()) line += " " + e.type;
  if (e.worker != 0) line += " w" + std::to_string(e.worker);
  if (e.pid != 0) line += " pid " + std::to_string(e.pid);
  if (!e.package.empty()) line += " (" + e.package + (e.version.empty() ? "" : " " + e.version) + ")";
  if (e.port != 0) line += (e.kind == event_kind::actor_moved ? " to system " : " system ") + std::to_string(e.port);
  if (!e.reason.empty()) line += ": " + e.reason;
  return line;
}

std::int64_t event_ring::system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

event_ring::event_ring(std::size_t capacity, clock now)
    : slots_(std::max<std::size_t>(capacity, 1)), now_(std::move(now)) {}

const event& event_ring::record(event e) {
  e.seq = next_seq_++;
  e.time_ms = now_();
  event& slot = slots_[(e.seq - 1) % slots_.size()];
  slot = std::move(e);
  kept_ = std::min(kept_ + 1, slots_.size());
  for (const auto& f : observers_) f(slot);
  return slot;
}

event_ring::slice event_ring::since(std::uint64_t after, std::size_t max) const {
  slice out;
  const std::uint64_t first = first_seq();
  std::uint64_t from = after + 1;
  if (from < first) {
    out.missed = first - from;
    from = first;
  }
  for (std::uint64_t s = from; s < next_seq_ && out.events.size() < max; ++s)
    out.events.push_back(slots_[(s - 1) % slots_.size()]);
  return out;
}

}  // namespace troupe::supervisor
