#include "supervisor/desired_state.hpp"

#include "base/files.hpp"
#include "base/hex.hpp"
#include "ipc/json_limits.hpp"
#include "ipc/log.hpp"
#include "ipc/protocol.hpp"

#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
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

json actor_json(const saved_actor& a) {
  json j{{"address", a.addr.to_string()}, {"type", a.type},       {"package_id", a.package_id}, {"group", a.group},
         {"version", a.version},          {"restart", a.restart}, {"restarts", a.restarts}};
  if (!a.name.empty()) j["name"] = a.name;
  if (a.pending) j["pending"] = true;
  return j;
}

result<saved_actor> actor_from_json(const json& e, std::uint32_t system_id, std::uint32_t serials_below,
                                    const std::string& at) {
  auto bad = [&](const std::string& why) { return make_error(errc::invalid_argument, at + ": " + why); };
  if (!e.is_object()) return bad("not an object");
  auto text = [&](const char* key, bool required, std::string& out) {
    if (!e.contains(key)) return !required;
    if (!e[key].is_string()) return false;
    out = e[key].get<std::string>();
    return !required || !out.empty();
  };
  saved_actor a;
  std::string addr;
  if (!text("address", true, addr)) return bad("address missing");
  const auto parsed_addr = address::parse(addr);
  if (!parsed_addr) return bad("'" + addr + "' is not an address");
  a.addr = *parsed_addr;
  if (a.addr.system() != system_id || a.addr.serial() < ipc::first_actor_serial || a.addr.serial() >= serials_below)
    return bad(addr + " is not an address this system handed out");
  if (!text("type", true, a.type)) return bad("type missing");
  if (!text("package_id", true, a.package_id) || a.package_id.size() != 64 ||
      a.package_id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return bad("package_id is not 64 hex digits");
  if (!text("group", false, a.group) || !text("version", false, a.version) || !text("name", false, a.name) ||
      !text("restart", false, a.restart))
    return bad("group, version, name and restart must be strings");
  if (std::find(std::begin(policies), std::end(policies), a.restart) == std::end(policies))
    return bad("restart '" + a.restart + "' is not a policy");
  if (!a.name.empty() && a.name.front() == '@') return bad("name '" + a.name + "' is not a global name");
  if (e.contains("restarts")) {
    if (!e["restarts"].is_number_unsigned() || e["restarts"].get<std::uint64_t>() > 0xffffffffu)
      return bad("restarts is not a count");
    a.restarts = e["restarts"].get<std::uint32_t>();
  }
  if (e.contains("pending")) {
    if (!e["pending"].is_boolean()) return bad("pending is not a boolean");
    a.pending = e["pending"].get<bool>();
  }
  return a;
}

result<std::uint32_t> serials_from_json(const json& below, std::uint32_t at_least, const std::string& at) {
  if (!below.is_number_unsigned() || below.get<std::uint64_t>() > 0xffffffffu || below.get<std::uint64_t>() < at_least)
    return make_error(errc::invalid_argument, at + "serials_below: not a serial bound");
  return below.get<std::uint32_t>();
}

}  // namespace

// The keys in the order json::dump writes an object's (sorted): the line is
// what dumping the whole object would give, built without holding it.
snapshot_encoder::snapshot_encoder() : out_("{\"actors\":[") {}

void snapshot_encoder::add(const saved_actor& a) {
  if (!first_) out_ += ',';
  first_ = false;
  out_ += actor_json(a).dump();
}

std::string snapshot_encoder::finish(std::uint32_t system_id, std::uint32_t serials_below) && {
  out_ += "],\"format\":" + std::to_string(format_version) + ",\"serials_below\":" + std::to_string(serials_below) +
          ",\"system\":\"" + base::hex32(system_id) + "\"}\n";
  return std::move(out_);
}

std::string encode_state(const saved_state& s) {
  snapshot_encoder e;
  for (const auto& a : s.actors) e.add(a);
  return std::move(e).finish(s.system_id, s.serials_below);
}

std::string encode_put(const saved_actor& a) { return json{{"put", actor_json(a)}}.dump() + "\n"; }
std::string encode_erase(address a) { return json{{"erase", a.to_string()}}.dump() + "\n"; }
std::string encode_serials(std::uint32_t serials_below) { return json{{"serials_below", serials_below}}.dump() + "\n"; }

result<saved_state> decode_state(std::string_view bytes) {
  auto bad = [](const std::string& why) { return make_error(errc::invalid_argument, why); };
  const auto first_end = bytes.find('\n');
  if (first_end == std::string_view::npos) return bad("no complete first line (the snapshot)");
  auto parsed = ipc::parse_json(bytes.substr(0, first_end), 8);  // the format nests 3 levels
  if (!parsed) return bad(parsed.err().message);
  const json& j = *parsed;
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("format") || j["format"] != format_version)
    return bad("format is not " + std::to_string(format_version));
  saved_state s;
  const auto& sys = j.contains("system") ? j["system"] : json();
  if (!sys.is_string() || sys.get<std::string>().size() != 8) return bad("system: not 8 hex digits");
  s.system_id = base::parse_hex32(sys.get<std::string>());
  if (s.system_id == 0 || base::hex32(s.system_id) != sys.get<std::string>()) return bad("system: not 8 hex digits");
  auto below =
      serials_from_json(j.contains("serials_below") ? j["serials_below"] : json(), ipc::first_actor_serial, "");
  if (!below) return below.err();
  s.serials_below = *below;
  const auto& actors = j.contains("actors") ? j["actors"] : json();
  if (!actors.is_array()) return bad("actors: not an array");
  std::map<address, saved_actor> table;
  for (const auto& e : actors) {
    auto a = actor_from_json(e, s.system_id, s.serials_below, "actors[" + std::to_string(table.size()) + "]");
    if (!a) return a.err();
    const std::string text = a->addr.to_string();
    if (!table.emplace(a->addr, std::move(*a)).second) return bad("actors: " + text + " listed twice");
  }
  // The journal: each complete line a change, in order. A last line without
  // its newline was cut short by a crash: it never happened.
  std::size_t pos = first_end + 1;
  for (std::size_t line = 2; pos < bytes.size(); ++line) {
    const auto end = bytes.find('\n', pos);
    if (end == std::string_view::npos) break;
    const std::string at = "line " + std::to_string(line) + ": ";
    auto rec = ipc::parse_json(bytes.substr(pos, end - pos), 8);
    pos = end + 1;
    if (!rec) return bad(at + rec.err().message);
    if (!rec->is_object() || rec->size() != 1) return bad(at + "not a change");
    if (rec->contains("put")) {
      auto a = actor_from_json((*rec)["put"], s.system_id, s.serials_below, at + "put");
      if (!a) return a.err();
      table[a->addr] = std::move(*a);
    } else if (rec->contains("erase")) {
      const auto& e = (*rec)["erase"];
      const auto a = e.is_string() ? address::parse(e.get<std::string>()) : std::nullopt;
      if (!a) return bad(at + "erase: not an address");
      table.erase(*a);
    } else if (rec->contains("serials_below")) {
      auto b = serials_from_json((*rec)["serials_below"], s.serials_below, at);
      if (!b) return b.err();
      s.serials_below = *b;
    } else {
      return bad(at + "not a change");
    }
  }
  std::set<std::string> names;
  for (auto& [addr, a] : table) {
    if (!a.name.empty() && !names.insert(a.name).second)
      return bad("global name '" + a.name + "' is held twice (" + addr.to_string() + ")");
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

desired_state::~desired_state() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
std::uint64_t fingerprint(const saved_actor& a) {
  // A 64-bit mix of the hashes of every field a line holds. Two versions of
  // one actor that differ yet mix alike (improbable, not impossible) would
  // lose the second's line until the next change or snapshot.
  std::uint64_t h = std::hash<std::uint64_t>{}(a.addr.value());
  auto mix = [&h](std::uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  for (const std::string* f : {&a.type, &a.package_id, &a.group, &a.version, &a.name, &a.restart})
    mix(std::hash<std::string>{}(*f));
  mix(a.restarts);
  mix(a.pending ? 1 : 2);
  return h;
}
}  // namespace

status desired_state::begin(std::uint32_t system_id, std::uint32_t serials_below, std::vector<saved_actor> actors) {
  system_id_ = system_id;
  serials_below_ = serials_below;
  active_ = true;
  return write_snapshot(
      [&actors](const actor_visitor& visit) {
        for (const auto& a : actors) visit(a);
      },
      base::sync_to_disk::yes);
}

status desired_state::write_snapshot(base::sync_to_disk sync) {
  if (!source) return make_error(errc::internal, "no source for a snapshot of the desired state");
  return write_snapshot(source, sync);
}

status desired_state::write_snapshot(const std::function<void(const actor_visitor&)>& actors, base::sync_to_disk sync) {
  // One actor at a time: a snapshot of 100,000 actors must not hold them
  // all as JSON at once (a transient peak the allocator keeps).
  kept_.clear();
  snapshot_encoder e;
  actors([&](const saved_actor& a) {
    kept_[a.addr] = fingerprint(a);
    e.add(a);
  });
  const std::string bytes = std::move(e).finish(system_id_, serials_below_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (auto st = base::write_file_atomically(file_, bytes, 0600, sync); !st) return st;
  fd_ = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) return make_error(errc::io, file_.string() + ": cannot open (" + base::errno_text(errno) + ")");
  snapshot_bytes_ = bytes.size();
  journal_bytes_ = 0;
  pending_.clear();
  ++writes_;
  return ok_v;
}

void desired_state::reserve(std::uint32_t serials_below) {
  serials_below_ = serials_below;
  if (!active_) return;
  pending_ += encode_serials(serials_below);
  // Before the serials leave: an address is never handed out twice, not even
  // after a crash of the host. Those waiting for the write are run by the
  // flush already posted (if any), not from inside an allocation.
  write_out(base::sync_to_disk::yes);
}

void desired_state::set(address a, std::optional<saved_actor> s) {
  if (!active_) return;
  auto it = kept_.find(a);
  if (!s) {
    if (it == kept_.end()) return;
    kept_.erase(it);
    pending_ += encode_erase(a);
  } else {
    const std::uint64_t f = fingerprint(*s);
    if (it != kept_.end() && it->second == f) return;
    pending_ += encode_put(*s);
    kept_[a] = f;
  }
  post_flush();
}

void desired_state::when_durable(std::function<void()> f) {
  if (pending_.empty()) return f();
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
  if (active_ && !pending_.empty()) write_out(base::sync_to_disk::no);
  for (auto& f : std::exchange(after_write_, {})) f();
}

void desired_state::write_out(base::sync_to_disk sync) {
  // Compacted once the journal outgrows the snapshot: replaying stays
  // linear in the actors kept, and a write costs O(1) amortized.
  if (fd_ < 0 || journal_bytes_ + pending_.size() > 2 * snapshot_bytes_ + (64 << 10)) {
    if (auto st = write_snapshot(base::sync_to_disk::yes); !st) return failed(st.err().message);
    unsynced_ = false;
    sync_timer_.cancel();
    write_failed_logged_ = false;
    return;
  }
  std::size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (done != pending_.size()) {
    // A line cut short would hide every later one: write a whole snapshot
    // instead, at the next change.
    ::close(fd_);
    fd_ = -1;
    return failed(file_.string() + ": cannot append (" + base::errno_text(errno) + ")");
  }
  journal_bytes_ += done;
  pending_.clear();
  ++writes_;
  write_failed_logged_ = false;
  if (sync == base::sync_to_disk::yes) {
    (void)::fdatasync(fd_);
    unsynced_ = false;
    sync_timer_.cancel();
    return;
  }
  unsynced_ = true;
  arm_sync();
}

void desired_state::arm_sync() {
  if (sync_timer_.expiry() > std::chrono::steady_clock::now()) return;  // armed already
  // Once per period at most: an fsync costs milliseconds, a spawn should not.
  sync_timer_.expires_after(sync_period);
  sync_timer_.async_wait([this](const boost::system::error_code& e) {
    if (e || !active_ || !unsynced_ || fd_ < 0) return;
    (void)::fdatasync(fd_);
    unsynced_ = false;
  });
}

void desired_state::failed(const std::string& why) {
  // Served on: a full disk must not stop the system, but a crash now would
  // lose what changed since the last write. Retried at the next change.
  if (!write_failed_logged_) log_line(TROUPE_LOG_ERROR, {}, "cannot keep the desired state: " + why);
  write_failed_logged_ = true;
}

void desired_state::forget() {
  active_ = false;
  sync_timer_.cancel();
  pending_.clear();
  for (auto& f : std::exchange(after_write_, {})) f();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::remove(file_, ec);
}

}  // namespace troupe::supervisor
