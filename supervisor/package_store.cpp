#include "supervisor/package_store.hpp"

#include "manifests/sha256.hpp"

#include <unistd.h>

#include <algorithm>
#include <random>
#include <system_error>

namespace troupe::supervisor {

namespace fs = std::filesystem;

namespace {

constexpr const char* archive_suffix = ".tpkg";

bool is_archive_name(const fs::path& p) {
  const auto name = p.filename().string();
  return name.size() > 5 && name.ends_with(archive_suffix) && name.front() != '.';
}

/// "<group>-<version>.tpkg" -> {group, version}; the version is the last
/// dash-separated part that parses as one.
std::pair<std::string, std::string> split_file_name(const fs::path& p) {
  std::string stem = p.filename().string();
  stem.resize(stem.size() - 5);
  for (auto dash = stem.rfind('-'); dash != std::string::npos && dash > 0; dash = stem.rfind('-', dash - 1)) {
    auto v = stem.substr(dash + 1);
    if (manifests::parse_version(v)) return {stem.substr(0, dash), v};
  }
  return {stem, ""};
}

bool same_dir(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec);
}

std::string temp_suffix() {
  std::random_device rd;
  return std::to_string(::getpid()) + "." + std::to_string(rd());
}

available_archive describe(const package_store& store, const fs::path& file) {
  available_archive a;
  a.file = file;
  auto v = verify(store, file);
  if (v) {
    a.id = v->id;
    a.group = v->m.package;
    a.version = v->m.version.text;
    a.order = v->m.version;
    a.signer = v->signer.name;
    return a;
  }
  a.error = v.err().message;
  std::tie(a.group, a.version) = split_file_name(file);
  if (auto parsed = manifests::parse_version(a.version)) a.order = *parsed;
  if (auto id = manifests::sha256_file_hex(file)) a.id = *id;
  return a;
}

}  // namespace

package_store store_in(const fs::path& home, const manifests::archive_limits& limits) {
  return package_store{home / "packages", home / "keys", home / "cache", limits};
}

status prepare(const package_store& store) {
  for (const auto& dir : {store.packages, store.keys, store.cache}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return make_error(errc::io, "cannot create " + dir.string() + ": " + ec.message());
  }
  std::error_code ec;
  fs::permissions(store.cache, fs::perms::owner_all, fs::perm_options::replace, ec);
  return ok_v;
}

result<manifests::package_archive> verify(const package_store& store, const fs::path& file) {
  return manifests::open_archive(file, manifests::read_key_ring(store.keys), store.limits);
}

result<manifests::package_archive> verify_and_keep(const package_store& store, const fs::path& file,
                                                   bool* copied) {
  if (copied != nullptr) *copied = false;
  if (same_dir(file.parent_path(), store.packages)) return verify(store, file);
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return make_error(errc::not_found, file.string() + ": no such package archive");
  const fs::path incoming = store.packages / (".incoming." + temp_suffix() + archive_suffix);
  fs::copy_file(file, incoming, ec);
  if (ec) return make_error(errc::io, "cannot copy " + file.string() + " into " + store.packages.string() + ": " + ec.message());
  auto archive = verify(store, incoming);
  if (!archive) {
    fs::remove(incoming, ec);
    // Name the operator's file, not our temporary copy.
    auto msg = archive.err().message;
    if (msg.starts_with(incoming.string())) msg = file.string() + msg.substr(incoming.string().size());
    return make_error(archive.err().code, msg);
  }
  const std::string base = archive->m.package + "-" + archive->m.version.text;
  fs::path target = store.packages / (base + archive_suffix);
  if (fs::exists(target, ec)) {
    auto existing = manifests::sha256_file_hex(target);
    if (!existing || *existing != archive->id) target = store.packages / (base + "-" + archive->id.substr(0, 12) + archive_suffix);
  }
  if (fs::exists(target, ec)) {
    fs::remove(incoming, ec);  // the same archive is already kept
  } else {
    fs::rename(incoming, target, ec);
    if (ec) {
      fs::remove(incoming, ec);
      return make_error(errc::io, "cannot store " + target.string() + ": " + ec.message());
    }
    if (copied != nullptr) *copied = true;
  }
  archive->source = target.string();
  return archive;
}

std::vector<available_archive> scan(const package_store& store) {
  std::vector<available_archive> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store.packages, ec))
    if (is_archive_name(e.path()) && e.is_regular_file(ec)) out.push_back(describe(store, e.path()));
  std::sort(out.begin(), out.end(), [](const available_archive& a, const available_archive& b) {
    if (a.group != b.group) return a.group < b.group;
    if (a.order != b.order) return a.order > b.order;
    return a.file > b.file;
  });
  return out;
}

result<available_archive> newest_of(const package_store& store, const std::string& group) {
  for (auto& a : scan(store)) {
    if (a.group != group) continue;
    if (!a.error.empty()) return make_error(errc::refused, a.error);
    return a;
  }
  return make_error(errc::not_found, "no archive of group '" + group + "' in " + store.packages.string());
}

std::vector<fs::path> prune(const package_store& store, const std::string& group, std::uint32_t keep,
                            const std::set<std::string>& spare) {
  std::vector<fs::path> deleted;
  std::uint32_t kept = 0;
  for (const auto& a : scan(store)) {
    if (a.group != group || !a.error.empty()) continue;
    if (kept < keep || spare.count(a.id)) {
      ++kept;
      continue;
    }
    std::error_code ec;
    if (fs::remove(a.file, ec)) deleted.push_back(a.file);
  }
  return deleted;
}

}  // namespace troupe::supervisor
