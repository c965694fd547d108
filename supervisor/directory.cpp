#include "supervisor/directory.hpp"

#include "ipc/protocol.hpp"

#include <algorithm>

namespace troupe::supervisor {

const char* to_string(actor_state s) {
  switch (s) {
    case actor_state::starting:
      return "starting";
    case actor_state::running:
      return "running";
    case actor_state::stopping:
      return "stopping";
    case actor_state::failed:
      return "failed";
  }
  return "failed";
}

bool valid_global_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '@') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

directory::directory(std::uint32_t system_id) : system_id_(system_id), next_serial_(ipc::first_actor_serial) {}

namespace {
std::uint32_t clamp_serial(std::uint64_t s) {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(s, 0xffffffffu));
}
}  // namespace

void directory::skip_serials_below(std::uint32_t below) {
  next_serial_ = std::max(next_serial_, below);
  reserved_below_ = std::max(reserved_below_, next_serial_);
}

std::uint32_t directory::reserve_ahead() {
  reserved_below_ = clamp_serial(std::uint64_t{next_serial_} + reserve_chunk);
  return reserved_below_;
}

void directory::reserve_for(std::uint32_t count) {
  if (!on_reserve || std::uint64_t{next_serial_} + count <= reserved_below_) return;
  reserved_below_ = clamp_serial(std::uint64_t{next_serial_} + count + reserve_chunk);
  on_reserve(reserved_below_);
}

address directory::allocate() {
  reserve_for(1);
  return address(system_id_, next_serial_++);
}

serial_block directory::allocate_block(std::uint32_t count) {
  reserve_for(count);
  serial_block b{next_serial_, count};
  next_serial_ += count;
  return b;
}

bool directory::allocated(address a) const {
  return a.system() == system_id_ && a.serial() >= ipc::first_actor_serial && a.serial() < next_serial_;
}

status directory::add(actor_record rec) {
  if (!rec.addr.valid()) return make_error(errc::invalid_argument, "invalid address");
  if (actors_.count(rec.addr))
    return make_error(errc::invalid_argument, "address " + rec.addr.to_string() + " is already in use");
  if (!rec.name.empty()) {
    if (auto s = check_name(rec.name); !s) return s;
    names_.emplace(rec.name, rec.addr);
  }
  const address a = rec.addr;
  ++by_state_[index(rec.state)];
  actors_.emplace(a, std::move(rec));
  return ok_v;
}

status directory::check_name(std::string_view name) const {
  const std::string n(name);
  if (!valid_global_name(n))
    return make_error(errc::invalid_argument,
                      "global name '" + n + "' is invalid (1-128 printable characters, not starting with '@')");
  if (auto it = names_.find(n); it != names_.end())
    return make_error(errc::invalid_argument, "global name '" + n + "' is already taken by " + it->second.to_string());
  return ok_v;
}

void directory::remove(address a) {
  auto it = actors_.find(a);
  if (it == actors_.end()) return;
  if (!it->second.name.empty()) names_.erase(it->second.name);
  --by_state_[index(it->second.state)];
  actors_.erase(it);
}

void directory::set_state(actor_record& rec, actor_state s) {
  --by_state_[index(rec.state)];
  ++by_state_[index(s)];
  rec.state.s_ = s;
}

status directory::bind_name(address a, std::string_view name) {
  auto* rec = find(a);
  if (rec == nullptr) return make_error(errc::not_found, "no actor at " + a.to_string());
  if (rec->name == name) return ok_v;
  if (auto s = check_name(name); !s) return s;
  unbind_name(a);
  rec->name = std::string(name);
  names_.emplace(rec->name, a);
  return ok_v;
}

void directory::unbind_name(address a) {
  auto* rec = find(a);
  if (rec == nullptr || rec->name.empty()) return;
  names_.erase(rec->name);
  rec->name.clear();
}

actor_record* directory::find(address a) {
  auto it = actors_.find(a);
  return it == actors_.end() ? nullptr : &it->second;
}

const actor_record* directory::find(address a) const {
  auto it = actors_.find(a);
  return it == actors_.end() ? nullptr : &it->second;
}

actor_record* directory::find_name(std::string_view name) {
  auto it = names_.find(std::string(name));
  return it == names_.end() ? nullptr : find(it->second);
}

actor_record* directory::find_target(std::string_view target) {
  if (!target.empty() && target.front() == '@') {
    auto a = address::parse(target);
    return a ? find(*a) : nullptr;
  }
  return find_name(target);
}

std::vector<actor_record*> directory::on_worker(std::uint32_t worker) {
  std::vector<actor_record*> out;
  for (auto& [_, rec] : actors_)
    if (rec.worker == worker) out.push_back(&rec);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->addr < b->addr; });
  return out;
}

std::vector<const actor_record*> directory::all() const {
  std::vector<const actor_record*> out;
  out.reserve(actors_.size());
  for (const auto& [_, rec] : actors_) out.push_back(&rec);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->addr < b->addr; });
  return out;
}

}  // namespace troupe::supervisor
