#include "supervisor/packages.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

namespace troupe::supervisor {

namespace {

constexpr std::size_t min_prefix = 6;

// Higher version first; for one version, the later load first.
bool newer(const package_entry& a, const package_entry& b) {
  return std::tie(a.m.version, a.load_seq) > std::tie(b.m.version, b.load_seq);
}

}  // namespace

const char* to_string(package_phase p) {
  switch (p) {
    case package_phase::loading:
      return "loading";
    case package_phase::loaded:
      return "loaded";
    case package_phase::unloading:
      return "unloading";
  }
  return "loaded";
}

bool is_hex_id_prefix(std::string_view s) {
  return !s.empty() && s.size() <= 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

package_entry& package_set::add(package_entry e) {
  e.phase = package_phase::loading;
  e.active = false;
  e.load_seq = next_seq_++;
  e.type_refs.clear();
  for (const auto& a : e.m.actors) e.type_refs.emplace(a.type, a.type);
  const std::string id = e.id;
  return packages_.insert_or_assign(id, std::move(e)).first->second;
}

void package_set::erase(std::string_view id) {
  if (auto it = packages_.find(id); it != packages_.end()) packages_.erase(it);
}

package_entry* package_set::find(std::string_view id) {
  auto it = packages_.find(id);
  return it == packages_.end() ? nullptr : &it->second;
}

const package_entry* package_set::find(std::string_view id) const {
  auto it = packages_.find(id);
  return it == packages_.end() ? nullptr : &it->second;
}

result<std::string> package_set::choose(const std::string& type, const std::string& spec) {
  if (!spec.empty()) {
    auto p = resolve(spec);
    if (!p) return p.err();
    if ((*p)->m.find_actor(type) == nullptr)
      return make_error(errc::not_found, "unknown actor type '" + type + "' (not in package " + (*p)->m.package + " " +
                                             (*p)->m.version.text + ")");
    return (*p)->id.str();
  }
  std::vector<const package_entry*> with_type;
  for (const auto* p : std::as_const(*this).all())
    if (p->active && p->m.find_actor(type) != nullptr) with_type.push_back(p);
  if (with_type.empty())
    return make_error(errc::not_found, "unknown actor type '" + type + "' (not in any loaded package)");
  if (with_type.size() > 1) {
    std::string groups;
    for (const auto* p : with_type) groups += (groups.empty() ? "" : ", ") + p->m.package;
    return make_error(errc::invalid_argument,
                      "actor type '" + type + "' is in several packages (" + groups + "): pass --package");
  }
  return with_type.front()->id.str();
}

result<package_entry*> package_set::resolve(std::string_view spec) {
  if (spec.empty()) return make_error(errc::invalid_argument, "no package given");
  auto serving = [](const package_entry& p) { return p.phase == package_phase::loaded; };
  if (auto* p = find(spec); p != nullptr && serving(*p)) return p;
  // A group name before a prefix: "cafe" is a fine group name.
  bool group_known = false;
  for (auto& [_, p] : packages_) {
    if (p.m.package != spec || !serving(p)) continue;
    group_known = true;
    if (p.active) return &p;
  }
  if (group_known)
    return make_error(errc::not_found, "package group '" + std::string(spec) + "' has no active version");
  if (is_hex_id_prefix(spec) && spec.size() >= min_prefix) {
    std::vector<package_entry*> hits;
    for (auto it = packages_.lower_bound(spec); it != packages_.end() && it->first.starts_with(spec); ++it)
      if (serving(it->second)) hits.push_back(&it->second);
    if (hits.size() == 1) return hits.front();
    if (hits.size() > 1)
      return make_error(errc::invalid_argument, "package id prefix " + std::string(spec) + " is ambiguous (" +
                                                    std::to_string(hits.size()) + " packages); give more digits");
    return make_error(errc::not_found, "package " + std::string(spec) + " is not loaded on this system");
  }
  return make_error(errc::not_found, "no package '" + std::string(spec) + "' is loaded");
}

activation package_set::update_active(std::string_view group) {
  activation change;
  package_entry* best = nullptr;
  for (auto& [id, p] : packages_) {
    if (p.m.package != group) continue;
    if (p.active) change.deactivated = id;
    p.active = false;
    if (p.phase == package_phase::loaded && (best == nullptr || newer(p, *best))) best = &p;
  }
  if (best != nullptr) {
    best->active = true;
    change.activated = best->id;
  }
  return change;
}

result<address> package_set::role(std::string_view name, std::string_view group) const {
  const package_entry* best = nullptr;
  std::vector<std::string> groups;
  for (const auto& [_, p] : packages_) {
    if (p.phase != package_phase::loaded || !p.roles.count(std::string(name))) continue;
    if (!group.empty() && p.m.package != group) continue;
    if (std::find(groups.begin(), groups.end(), p.m.package) == groups.end()) groups.push_back(p.m.package);
    if (best == nullptr || (p.active && !best->active) || (p.active == best->active && newer(p, *best))) best = &p;
  }
  if (best == nullptr) {
    std::string where = group.empty() ? "" : " in group '" + std::string(group) + "'";
    return make_error(errc::not_found, "no loaded package has role '" + std::string(name) + "'" + where);
  }
  if (groups.size() > 1) {
    std::string list;
    for (const auto& g : groups) list += (list.empty() ? "" : ", ") + g;
    return make_error(errc::invalid_argument,
                      "role '" + std::string(name) + "' is in several groups (" + list + "): pass --group");
  }
  return best->roles.at(std::string(name));
}

std::vector<const package_entry*> package_set::all() const {
  std::vector<const package_entry*> out;
  for (const auto& [_, p] : packages_) out.push_back(&p);
  std::sort(out.begin(), out.end(), [](const package_entry* a, const package_entry* b) {
    if (a->m.package != b->m.package) return a->m.package < b->m.package;
    return newer(*a, *b);
  });
  return out;
}

std::vector<package_entry*> package_set::all() {
  std::vector<package_entry*> out;
  for (const auto* p : std::as_const(*this).all()) out.push_back(const_cast<package_entry*>(p));
  return out;
}

}  // namespace troupe::supervisor
