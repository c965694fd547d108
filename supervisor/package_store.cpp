#include "supervisor/package_store.hpp"

#include "base/files.hpp"
#include "manifests/sha256.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
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
  // <group>-<version>-<id prefix>, when a name was already taken.
  if (auto dash = stem.rfind('-'); dash != std::string::npos && stem.size() - dash == 13 &&
                                   stem.find_first_not_of("0123456789abcdef", dash + 1) == std::string::npos)
    stem.resize(dash);
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

result<manifests::package_archive> verify_and_keep(const package_store& store, const fs::path& file, bool* copied) {
  if (copied != nullptr) *copied = false;
  if (same_dir(file.parent_path(), store.packages)) return verify(store, file);
  // Kept by a hard link where the file system allows (nothing to write),
  // else by a copy of the bytes read. Either way what is loaded is the bytes
  // verified here, from memory; a kept archive is verified again whenever it
  // is loaded, so a later change to the operator's file cannot sneak in.
  auto bytes = manifests::read_archive_file(file, store.limits);
  if (!bytes) return bytes.err();
  // Verified first, from memory: nothing of a file that is not a package
  // signed by a trusted key is ever written here (a daemon run as root must
  // not copy a file its client could not read into a place it can).
  auto archive =
      manifests::open_archive_bytes(*bytes, file.string(), manifests::read_key_ring(store.keys), store.limits);
  if (!archive) return archive.err();
  std::error_code ec;
  const std::string base = archive->m.package + "-" + archive->m.version.text;
  fs::path target = store.packages / (base + archive_suffix);
  if (fs::exists(target, ec)) {
    auto existing = manifests::sha256_file_hex(target);
    if (!existing || *existing != archive->id)
      target = store.packages / (base + "-" + archive->id.substr(0, 12) + archive_suffix);
  }
  if (!fs::exists(target, ec)) {  // else the same archive is already kept
    // A private temporary file, synced, renamed: never a partial archive.
    if (auto s = base::write_file_atomically(target, *bytes, 0600); !s)
      return make_error(errc::io, "cannot store " + target.string() + ": " + s.err().message);
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

std::vector<fs::path> archives_of(const package_store& store, const std::string& group) {
  std::vector<std::pair<manifests::version, fs::path>> mine;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store.packages, ec)) {
    if (!is_archive_name(e.path())) continue;
    auto [g, v] = split_file_name(e.path());
    auto parsed = manifests::parse_version(v);
    if (g == group && parsed) mine.emplace_back(std::move(*parsed), e.path());
  }
  std::sort(mine.begin(), mine.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second > b.second; });
  std::vector<fs::path> files;
  for (auto& [_, f] : mine) files.push_back(std::move(f));
  return files;
}

result<fs::path> newest_of(const package_store& store, const std::string& group) {
  auto files = archives_of(store, group);
  if (files.empty())
    return make_error(errc::not_found, "no archive of group '" + group + "' in " + store.packages.string());
  return files.front();
}

std::vector<fs::path> prune(const package_store& store, const std::string& group, std::uint32_t keep,
                            const std::set<fs::path>& spare) {
  // By file name: no archive is read, so a load does not pay for every
  // archive kept.
  std::vector<fs::path> deleted;
  std::uint32_t kept = 0;
  std::error_code ec;
  for (const auto& file : archives_of(store, group)) {
    if (kept < keep || spare.count(file)) {
      ++kept;
      continue;
    }
    if (fs::remove(file, ec)) deleted.push_back(file);
  }
  return deleted;
}

}  // namespace troupe::supervisor
