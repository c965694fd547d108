#include "supervisor/package_store.hpp"

#include "base/files.hpp"
#include "manifests/sha256.hpp"

#include <fcntl.h>
#include <sys/stat.h>
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

namespace {

// The archive file, open, checked and read whole into buffer (its capacity
// reused); the descriptor stays open so that the inode read is the one kept.
struct opened_archive {
  int fd = -1;
  ~opened_archive() {
    if (fd >= 0) ::close(fd);
  }
};

status read_archive_into(const fs::path& file, std::uint64_t max_bytes, opened_archive& f, std::string& buffer) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  f.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (f.fd < 0) {
    const int e = errno;
    return make_error(e == ENOENT ? errc::not_found : errc::io,
                      file.string() + ": cannot open (" + base::errno_text(e) + ")");
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0)
    return make_error(errc::io, file.string() + ": cannot stat (" + base::errno_text(errno) + ")");
  if (!S_ISREG(st.st_mode)) return make_error(errc::refused, file.string() + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return make_error(errc::refused, file.string() + ": is " + std::to_string(st.st_size) +
                                         " bytes, over the limit of " + std::to_string(max_bytes));
  buffer.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < buffer.size()) {  // one read in practice; loops only if interrupted
    const ssize_t n = ::pread(f.fd, buffer.data() + got, buffer.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got != buffer.size()) return make_error(errc::io, file.string() + ": read failed (changed while reading?)");
  return ok_v;
}

// A hard link to the inode open as fd, made under a temporary name and
// renamed to target: metadata only, where a copy writes (and syncs) every
// byte again. False when the file system or the kernel's link protections
// refuse it (another file system, a file another user owns).
bool link_open_file(int fd, const fs::path& target) {
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".link." + base::unique_suffix());
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) return false;
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace

result<manifests::package_archive> verify_and_keep(const package_store& store, const fs::path& file, bool* copied,
                                                   std::string* buffer) {
  if (copied != nullptr) *copied = false;
  if (same_dir(file.parent_path(), store.packages)) return verify(store, file);
  // What is loaded is the bytes verified here, from memory; a kept archive is
  // verified again whenever it is loaded, so a later change to the
  // operator's file (the kept one may be the same inode) cannot sneak in.
  std::string local;
  std::string& bytes = buffer != nullptr ? *buffer : local;
  opened_archive f;
  if (auto s = read_archive_into(file, store.limits.max_archive_bytes, f, bytes); !s) return s.err();
  // Verified first, from memory: nothing of a file that is not a package
  // signed by a trusted key is ever kept here (a daemon run as root must
  // not copy a file its client could not read into a place it can).
  auto archive = manifests::open_archive_bytes(std::move(bytes), file.string(), manifests::read_key_ring(store.keys),
                                               store.limits);
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
    // Never a partial archive: a link of the file read, or a private
    // temporary copy of the bytes verified, synced and renamed.
    if (!link_open_file(f.fd, target)) {
      const std::string whole = archive->payload + archive->trailer;
      if (auto s = base::write_file_atomically(target, whole, 0600); !s)
        return make_error(errc::io, "cannot store " + target.string() + ": " + s.err().message);
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
