#include "manifests/archive.hpp"

#include "manifests/sha256.hpp"
#include "manifests/wheel.hpp"

#include <archive.h>
#include <archive_entry.h>
#include "base/check.hpp"
#include "base/files.hpp"
#include "base/hex.hpp"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <system_error>
#include <unordered_map>

namespace troupe::manifests {

std::string quote_text(std::string_view s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 200; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > 200) out += "...";
  return out + "\"";
}

namespace {

namespace fs = std::filesystem;

constexpr std::string_view trailer_magic = "TPKGSIG1";
constexpr std::string_view statement_prefix{"troupe package v1\0", 18};
// Longer entry paths would make libarchive chdir() (process-wide) to reach
// them; no package needs them.
constexpr std::size_t max_entry_path_bytes = 1024;
constexpr int max_symlink_hops = 40;  // the kernel's own limit
constexpr std::uint64_t no_limit = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t max_entries_any = std::numeric_limits<std::uint32_t>::max();

[[noreturn]] void internal_failure(const char* what) { base::internal_error(std::string(what) + " failed"); }

error prefixed(const std::string& source, error e) {
  e.message = source + ": " + e.message;
  return e;
}

using base::errno_text;

// ---------------------------------------------------------------- digests

// SHA-256 with raw output and a copy, so one pass gives the payload digest and
// the file's id.
class md_ctx {
 public:
  md_ctx() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1)
      internal_failure("OpenSSL EVP_DigestInit_ex");
  }
  md_ctx(const md_ctx& other) : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_MD_CTX_copy_ex(ctx_, other.ctx_) != 1) internal_failure("OpenSSL EVP_MD_CTX_copy_ex");
  }
  md_ctx& operator=(const md_ctx&) = delete;
  ~md_ctx() { EVP_MD_CTX_free(ctx_); }

  void update(std::string_view bytes) {
    if (EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1) internal_failure("OpenSSL EVP_DigestUpdate");
  }
  /// The 32 raw digest bytes; call once, last.
  std::string finish() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> d{};
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(ctx_, d.data(), &size) != 1) internal_failure("OpenSSL EVP_DigestFinal_ex");
    return std::string(reinterpret_cast<const char*>(d.data()), size);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string sha256_raw(std::string_view bytes) {
  md_ctx h;
  h.update(bytes);
  return h.finish();
}

std::string to_hex(std::string_view raw) { return base::hex_encode(raw); }

void append_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::uint64_t read_be64(std::string_view b) {
  std::uint64_t v = 0;
  for (unsigned char c : b.substr(0, 8)) v = (v << 8) | c;
  return v;
}

// "troupe package v1" NUL || trailer bytes 8..80: what the key signs.
std::string signed_statement(std::string_view trailer) {
  return std::string(statement_prefix) + std::string(trailer.substr(8, 72));
}

// ---------------------------------------------------------------- paths

enum class path_check { ok, escapes, malformed };

// An entry path made canonical ("./a/b/" → "a/b"); refuses absolute paths,
// "..", and empty or "." components that would let one file have two names.
path_check normalise(std::string_view in, std::string& out) {
  if (in.starts_with('/')) return path_check::escapes;
  while (in.starts_with("./")) in.remove_prefix(2);
  while (in.ends_with('/')) in.remove_suffix(1);
  out.assign(in);
  if (in.empty()) return path_check::malformed;
  bool malformed = false;
  while (true) {
    const auto slash = in.find('/');
    const std::string_view part = in.substr(0, slash);
    if (part == "..") return path_check::escapes;
    if (part.empty() || part == ".") malformed = true;
    if (slash == std::string_view::npos) break;
    in.remove_prefix(slash + 1);
  }
  return malformed ? path_check::malformed : path_check::ok;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// ---------------------------------------------------------------- the entry namespace

using entry_index = std::unordered_map<std::string, std::size_t>;

entry_index index_of(const std::vector<archive_entry_info>& entries) {
  entry_index index;
  for (std::size_t i = 0; i < entries.size(); ++i) index.emplace(entries[i].path, i);
  return index;
}

enum class resolution { inside, escapes, too_many_links };

// Walks target from directory `at` the way the kernel would once extracted,
// following the archive's own symlinks, so that a link through another link
// ("d" -> ".", "e" -> "d/..") cannot climb out where a purely textual check
// would not notice. Names not in the archive are taken as plain directories.
resolution resolve(const std::vector<archive_entry_info>& entries, const entry_index& index, std::string at,
                   std::string_view target, std::string& out) {
  std::vector<std::string> todo;  // components still to walk, next at the back
  auto push = [&todo](std::string_view t) {
    std::vector<std::string> parts;
    while (true) {
      const auto slash = t.find('/');
      parts.emplace_back(t.substr(0, slash));
      if (slash == std::string_view::npos) break;
      t.remove_prefix(slash + 1);
    }
    todo.insert(todo.end(), parts.rbegin(), parts.rend());
  };
  if (target.starts_with('/')) return resolution::escapes;
  push(target);
  int hops = 0;
  while (!todo.empty()) {
    const std::string part = std::move(todo.back());
    todo.pop_back();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (at.empty()) return resolution::escapes;
      at = parent_of(at);
      continue;
    }
    std::string next = at.empty() ? part : at + "/" + part;
    const auto it = index.find(next);
    if (it != index.end() && entries[it->second].kind == entry_kind::symlink) {
      if (++hops > max_symlink_hops) return resolution::too_many_links;
      const std::string& link = entries[it->second].link_target;
      if (link.starts_with('/')) return resolution::escapes;
      push(link);
      continue;  // `at` stays the link's directory
    }
    at = std::move(next);
  }
  out = std::move(at);
  return resolution::inside;
}

// The index of the regular file path names, through symlinks; nullopt if none.
std::optional<std::size_t> find_file(const std::vector<archive_entry_info>& entries, const entry_index& index,
                                     std::string_view path) {
  std::string at;
  if (resolve(entries, index, "", path, at) != resolution::inside) return std::nullopt;
  const auto it = index.find(at);
  if (it == index.end() || entries[it->second].kind != entry_kind::file) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------- reading tar

struct read_free {
  void operator()(archive* a) const { archive_read_free(a); }
};
using reader = std::unique_ptr<archive, read_free>;

struct write_free {
  void operator()(archive* a) const { archive_write_free(a); }
};
using writer = std::unique_ptr<archive, write_free>;

error corrupt(archive* a) {
  const char* why = archive_error_string(a);
  return make_error(errc::invalid_argument, std::string("corrupt archive: ") + (why != nullptr ? why : "unreadable"));
}

// Plain tar only: no compression filters, no other formats. Opening already
// reads the first header, so bytes that are no tar fail here.
result<reader> open_reader(const std::string& payload) {
  reader r(archive_read_new());
  if (!r || archive_read_support_format_tar(r.get()) != ARCHIVE_OK) internal_failure("libarchive archive_read_new");
  if (archive_read_open_memory(r.get(), payload.data(), payload.size()) != ARCHIVE_OK) return corrupt(r.get());
  return r;
}

// Warnings (a pax attribute ignored, a name not convertible to the locale)
// leave a usable header, read the same way every time.
bool header_read(int rc) { return rc == ARCHIVE_OK || rc == ARCHIVE_WARN; }

const char* first_of(const char* a, const char* b) { return a != nullptr ? a : b; }

// One tar header as an archive_entry_info; refuses what a package may not hold.
result<archive_entry_info> describe(archive_entry* e) {
  const char* raw = first_of(archive_entry_pathname_utf8(e), archive_entry_pathname(e));
  if (raw == nullptr) return make_error(errc::refused, "an entry has no readable path");
  const std::string_view original(raw);
  if (original.size() > max_entry_path_bytes)
    return make_error(errc::refused, "entry " + quote_text(original) + " has a path over " +
                                         std::to_string(max_entry_path_bytes) + " bytes");
  archive_entry_info info;
  switch (normalise(original, info.path)) {
    case path_check::ok:
      break;
    case path_check::escapes:
      return make_error(errc::refused, "entry " + quote_text(original) + " escapes the package");
    case path_check::malformed:
      return make_error(errc::refused, "entry " + quote_text(original) + " is not a plain relative path");
  }
  const std::string name = quote_text(info.path);
  if (archive_entry_hardlink(e) != nullptr || archive_entry_hardlink_utf8(e) != nullptr)
    return make_error(errc::refused, "entry " + name + " is a hardlink");
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      info.kind = entry_kind::file;
      break;
    case AE_IFDIR:
      info.kind = entry_kind::directory;
      break;
    case AE_IFLNK:
      info.kind = entry_kind::symlink;
      break;
    default:
      return make_error(errc::refused, "entry " + name + " is not a regular file, directory or symlink");
  }
  if (info.kind == entry_kind::file) {
    const auto size = archive_entry_size(e);
    if (size < 0) return make_error(errc::invalid_argument, "corrupt archive: entry " + name + " has a negative size");
    info.size = static_cast<std::uint64_t>(size);
    info.executable = (archive_entry_perm(e) & 0111) != 0;
  }
  if (info.kind == entry_kind::symlink) {
    const char* target = first_of(archive_entry_symlink_utf8(e), archive_entry_symlink(e));
    if (target == nullptr || *target == '\0') return make_error(errc::refused, "symlink " + name + " has no target");
    info.link_target = target;
    if (info.link_target.size() > max_entry_path_bytes)
      return make_error(errc::refused,
                        "symlink " + name + " has a target over " + std::to_string(max_entry_path_bytes) + " bytes");
  }
  return info;
}

// Checks that need every entry: nothing stored under a file or symlink, and
// every symlink resolving inside the package.
status check_tree(const std::vector<archive_entry_info>& entries, const entry_index& index) {
  for (const auto& e : entries) {
    for (auto slash = e.path.find('/'); slash != std::string::npos; slash = e.path.find('/', slash + 1)) {
      const auto it = index.find(e.path.substr(0, slash));
      if (it != index.end() && entries[it->second].kind != entry_kind::directory)
        return make_error(errc::refused, "entry " + quote_text(e.path) + " is under " +
                                             quote_text(entries[it->second].path) + ", which is not a directory");
    }
  }
  for (const auto& e : entries) {
    if (e.kind != entry_kind::symlink) continue;
    std::string ignored;
    switch (resolve(entries, index, parent_of(e.path), e.link_target, ignored)) {
      case resolution::inside:
        break;
      case resolution::escapes:
        return make_error(errc::refused, "symlink " + quote_text(e.path) + " -> " + quote_text(e.link_target) +
                                             " escapes the package");
      case resolution::too_many_links:
        return make_error(errc::refused, "symlink " + quote_text(e.path) + " -> " + quote_text(e.link_target) +
                                             " goes through more than " + std::to_string(max_symlink_hops) + " links");
    }
  }
  return ok_v;
}

result<std::vector<archive_entry_info>> list_entries(const std::string& payload, const archive_limits& limits) {
  auto opened = open_reader(payload);
  if (!opened) return opened.err();
  reader r = std::move(*opened);
  std::vector<archive_entry_info> entries;
  entry_index index;
  std::uint64_t total = 0;
  while (true) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (!header_read(rc)) return corrupt(r.get());
    if (entries.size() >= limits.max_entries)
      return make_error(errc::refused,
                        "holds more than " + std::to_string(limits.max_entries) + " entries (the limit)");
    auto info = describe(e);
    if (!info) return info.err();
    if (info->size > limits.max_extracted_bytes - total)
      return make_error(errc::refused,
                        "unpacks to more than " + std::to_string(limits.max_extracted_bytes) + " bytes (the limit)");
    total += info->size;
    if (!index.emplace(info->path, entries.size()).second)
      return make_error(errc::refused, "entry " + quote_text(info->path) + " appears twice");
    entries.push_back(std::move(*info));
  }
  if (auto s = check_tree(entries, index); !s) return s.err();
  return entries;
}

// The data of entry number `at`, whose header said `size` bytes.
result<std::string> entry_data(const std::string& payload, std::size_t at, std::uint64_t size) {
  auto opened = open_reader(payload);
  if (!opened) return opened.err();
  reader r = std::move(*opened);
  for (std::size_t i = 0;; ++i) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) return make_error(errc::internal, "internal error: entry vanished");
    if (!header_read(rc)) return corrupt(r.get());
    if (i < at) continue;
    std::string data(size, '\0');
    std::size_t got = 0;
    while (got < data.size()) {
      const la_ssize_t n = archive_read_data(r.get(), data.data() + got, data.size() - got);
      if (n < 0) return corrupt(r.get());
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got != data.size()) return make_error(errc::invalid_argument, "corrupt archive: an entry is truncated");
    return data;
  }
}

// Steps 7 and 8 of open_archive: the manifest and its library.
status check_contents(package_archive& a) {
  const entry_index index = index_of(a.entries);
  const auto it = index.find("manifest.yaml");
  if (it == index.end()) return prefixed(a.source, make_error(errc::refused, "no manifest.yaml in the archive"));
  const archive_entry_info& entry = a.entries[it->second];
  if (entry.kind != entry_kind::file)
    return prefixed(a.source, make_error(errc::refused, "manifest.yaml is not a regular file"));
  if (entry.size > max_manifest_bytes)
    return prefixed(a.source, make_error(errc::invalid_argument, "manifest.yaml: larger than 1 MiB"));
  auto text = entry_data(a.payload, it->second, entry.size);
  if (!text) return prefixed(a.source, text.err());
  auto m = parse_manifest(*text, a.source + ":manifest.yaml");
  if (!m) return m.err();
  a.m = std::move(*m);
  if (a.m.runtime == runtime_kind::python) {
    const auto files = module_files(a.m.module);
    for (const auto& file : files)
      if (find_file(a.entries, index, file)) return ok_v;
    return prefixed(a.source, make_error(errc::refused, "module " + quote_text(a.m.module) +
                                                            " named by the manifest is not in the archive (no " +
                                                            files[0] + " or " + files[1] + ")"));
  }
  if (!find_file(a.entries, index, a.m.library))
    return prefixed(a.source, make_error(errc::refused, "library " + quote_text(a.m.library) +
                                                            " named by the manifest is not in "
                                                            "the archive"));
  return ok_v;
}

// ---------------------------------------------------------------- files

// A whole file in one read, after checking its size; symlinks followed; a
// FIFO or device is refused without waiting on it.
struct file_bytes {
  std::string bytes;
  bool executable = false;
};

result<file_bytes> read_whole_file(const fs::path& file, std::uint64_t max_bytes) {
  auto r = base::read_regular_file(file, max_bytes);
  if (!r) return r.err();
  return file_bytes{std::move(r->bytes), (r->mode & 0111) != 0};
}

// ---------------------------------------------------------------- extraction

// A directory beneath the extraction root, never through a symlink or out
// of the root (openat2 RESOLVE_BENEATH; before Linux 5.6, O_NOFOLLOW on the
// last component only, which list_entries' checks make enough: no entry
// lies under a symlink). An O_PATH descriptor, for the *at calls.
int open_dir_beneath(int root, const std::string& rel) {
  const char* path = rel.empty() ? "." : rel.c_str();
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, root, path, &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
  return ::openat(root, path, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Writes the entries of payload, as listed (and checked) by list_entries,
// under the fresh private directory tmp, with their final modes (directories
// stay 0700 until finish_tree). libarchive reads the tar; the tree is written
// here with openat and O_EXCL, since every path was validated already
// (relative, no "..", nothing under a symlink, no duplicates) and the
// directory is new: libarchive's writer re-checks every component of every
// path with lstat, which cost more than the writing for small trees.
// A file of at least reuse_min_bytes equal to the same path in one of
// reuse_from (trees of earlier versions, already verified) is hard-linked
// from there instead of written: consecutive versions mostly carry the same
// private libraries, and writing megabytes into fresh page-cache pages is
// the slowest part of a load (docs/PERFORMANCE.md §3.3).
class tree_writer {
 public:
  tree_writer(const fs::path& tmp, const std::vector<fs::path>& reuse_from) : tmp_(tmp), reuse_from_(reuse_from) {}
  ~tree_writer() {
    if (root_ >= 0) ::close(root_);
  }

  status open() {
    root_ = ::open(tmp_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (root_ < 0) return fail(tmp_.string(), "cannot open");
    return ok_v;
  }

  status directory(const std::string& path) { return make_dir(path); }

  status symlink(const std::string& path, const std::string& target) {
    if (auto s = make_dir(parent_of(path)); !s) return s;
    fd_closer parent{open_dir_beneath(root_, parent_of(path))};
    if (parent.fd < 0 || ::symlinkat(target.c_str(), parent.fd, base_name(path).c_str()) != 0)
      return fail(path, "cannot create the symlink");
    return ok_v;
  }

  struct chunk {
    std::string_view data;
    std::uint64_t offset;
  };

  status file(const archive_entry_info& info, const std::vector<chunk>& chunks) {
    if (auto s = make_dir(parent_of(info.path)); !s) return s;
    fd_closer parent{open_dir_beneath(root_, parent_of(info.path))};
    if (parent.fd < 0) return fail(info.path, "cannot open its directory");
    const std::string name = base_name(info.path);
    if (info.size >= reuse_min_bytes && link_same(info, chunks, parent.fd, name)) return ok_v;
    fd_closer out{::openat(parent.fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           info.executable ? 0555 : 0444)};
    if (out.fd < 0) return fail(info.path, "cannot create");
    for (const auto& c : chunks) {
      std::size_t done = 0;
      while (done < c.data.size()) {
        const ssize_t n =
            ::pwrite(out.fd, c.data.data() + done, c.data.size() - done, static_cast<off_t>(c.offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail(info.path, "cannot write");
        done += static_cast<std::size_t>(n);
      }
    }
    // A sparse tail (offsets past the last block) still has the size the header says.
    if (::ftruncate(out.fd, static_cast<off_t>(info.size)) != 0) return fail(info.path, "cannot size");
    // Exactly these modes, whatever the umask.
    if (::fchmod(out.fd, info.executable ? 0555 : 0444) != 0) return fail(info.path, "cannot chmod");
    return ok_v;
  }

  // Directories read-only, deepest first (a parent made 0555 first would refuse its children's chmod).
  status finish() {
    std::vector<std::string> dirs(made_.begin(), made_.end());
    std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& d : dirs) {
      const fs::path p = tmp_ / d;
      if (::chmod(p.c_str(), 0555) != 0) return fail(d, "cannot chmod");
    }
    if (::chmod(tmp_.c_str(), 0555) != 0) return fail(tmp_.string(), "cannot chmod");
    return ok_v;
  }

  [[nodiscard]] std::size_t linked() const { return linked_; }

 private:
  static constexpr std::uint64_t reuse_min_bytes = 64 * 1024;

  static error fail(const std::string& path, const char* what) {
    return make_error(errc::io, "cannot extract " + quote_text(path) + ": " + what + " (" + errno_text(errno) + ")");
  }

  status make_dir(const std::string& path) {
    if (path.empty() || made_.count(path)) return ok_v;
    if (auto s = make_dir(parent_of(path)); !s) return s;
    fd_closer parent{open_dir_beneath(root_, parent_of(path))};
    if (parent.fd < 0 || ::mkdirat(parent.fd, base_name(path).c_str(), 0700) != 0)
      return fail(path, "cannot create the directory");
    made_.insert(path);
    return ok_v;
  }

  // Links the file of an earlier tree whose bytes equal chunks, if any.
  bool link_same(const archive_entry_info& info, const std::vector<chunk>& chunks, int parent,
                 const std::string& name) {
    for (const auto& root : reuse_from_) {
      const fs::path candidate = root / info.path;
      fd_closer in{::open(candidate.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)};
      if (in.fd < 0) continue;
      struct stat st {};
      if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) != info.size ||
          ((st.st_mode & 0100) != 0) != info.executable || (st.st_mode & 0222) != 0)
        continue;
      void* map = ::mmap(nullptr, info.size, PROT_READ, MAP_PRIVATE, in.fd, 0);
      if (map == MAP_FAILED) continue;
      const auto* bytes = static_cast<const char*>(map);
      std::uint64_t covered = 0;
      bool same = true;
      for (const auto& c : chunks) {
        // Holes between blocks read as zeros.
        for (; covered < c.offset && same; ++covered) same = bytes[covered] == '\0';
        same = same && c.offset + c.data.size() <= info.size &&
               std::memcmp(bytes + c.offset, c.data.data(), c.data.size()) == 0;
        covered = c.offset + c.data.size();
        if (!same) break;
      }
      for (; covered < info.size && same; ++covered) same = bytes[covered] == '\0';
      ::munmap(map, info.size);
      if (!same) continue;
      const std::string proc = "/proc/self/fd/" + std::to_string(in.fd);
      if (::linkat(AT_FDCWD, proc.c_str(), parent, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        ++linked_;
        return true;
      }
    }
    return false;
  }

  fs::path tmp_;
  const std::vector<fs::path>& reuse_from_;
  int root_ = -1;
  std::set<std::string> made_;
  std::size_t linked_ = 0;
};

status write_tree(const std::string& payload, const std::vector<archive_entry_info>& entries, const fs::path& tmp,
                  const std::vector<fs::path>& reuse_from) {
  tree_writer out(tmp, reuse_from);
  if (auto s = out.open(); !s) return s;
  auto opened = open_reader(payload);
  if (!opened) return opened.err();
  reader r = std::move(*opened);
  std::vector<tree_writer::chunk> chunks;
  std::vector<std::string> copies;  // blocks libarchive did not hand out from the payload itself
  for (std::size_t i = 0;; ++i) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (!header_read(rc)) return corrupt(r.get());
    if (i >= entries.size()) return make_error(errc::internal, "internal error: the archive reads differently twice");
    const archive_entry_info& info = entries[i];
    status s = ok_v;
    switch (info.kind) {
      case entry_kind::directory:
        s = out.directory(info.path);
        break;
      case entry_kind::symlink:
        s = out.symlink(info.path, info.link_target);
        break;
      case entry_kind::file: {
        chunks.clear();
        copies.clear();
        const void* buf = nullptr;
        std::size_t size = 0;
        la_int64_t offset = 0;
        int data_rc;
        while ((data_rc = archive_read_data_block(r.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
          if (offset < 0 || static_cast<std::uint64_t>(offset) + size > info.size)
            return make_error(errc::invalid_argument,
                              "corrupt archive: " + quote_text(info.path) + " runs past its size");
          std::string_view data(static_cast<const char*>(buf), size);
          // From a memory reader the blocks point into the payload; anything
          // else is copied, since libarchive may reuse its own buffer.
          if (data.data() < payload.data() || data.data() + data.size() > payload.data() + payload.size())
            data = copies.emplace_back(data);
          chunks.push_back({data, static_cast<std::uint64_t>(offset)});
        }
        if (data_rc != ARCHIVE_EOF) return corrupt(r.get());
        s = out.file(info, chunks);
        break;
      }
      default:
        return make_error(errc::internal, "internal error: entry " + quote_text(info.path) + " of an unexpected kind");
    }
    if (!s) return s;
  }
  return out.finish();
}

// Makes every file and directory of an extracted tree read-only (or, when
// writable is set, every directory writable again so the tree can go).
status set_tree_modes(const fs::path& root, bool writable) {
  auto chmod = [](const fs::path& p, mode_t mode) -> status {
    if (::chmod(p.c_str(), mode) != 0)
      return make_error(errc::io, p.string() + ": cannot chmod (" + errno_text(errno) + ")");
    return ok_v;
  };
  if (auto s = chmod(root, writable ? 0755 : 0555); !s) return s;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    status s = ok_v;
    if (S_ISDIR(st.st_mode))
      s = chmod(it->path(), writable ? 0755 : 0555);
    else if (S_ISREG(st.st_mode) && !writable)
      s = chmod(it->path(), (st.st_mode & 0100) != 0 ? 0555 : 0444);
    if (!s) return s;
  }
  if (ec) return make_error(errc::io, root.string() + ": cannot walk (" + ec.message() + ")");
  return ok_v;
}

bool is_hex_id(std::string_view id) {
  return id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// ---------------------------------------------------------------- packing

// yaml-cpp marks a scalar by where it starts; this finds where it ends.
std::size_t scalar_end(const std::string& text, std::size_t pos, bool flow) {
  const std::size_t n = text.size();
  if (text[pos] == '"') {
    for (std::size_t i = pos + 1; i < n; ++i) {
      if (text[i] == '\\')
        ++i;
      else if (text[i] == '"')
        return i + 1;
    }
    return std::string::npos;
  }
  if (text[pos] == '\'') {
    for (std::size_t i = pos + 1; i < n; ++i) {
      if (text[i] != '\'') continue;
      if (i + 1 < n && text[i + 1] == '\'')
        ++i;
      else
        return i + 1;
    }
    return std::string::npos;
  }
  std::size_t i = pos;
  while (i < n && text[i] != '\n' && text[i] != '\r' &&
         !(text[i] == '#' && i > pos && (text[i - 1] == ' ' || text[i - 1] == '\t')) &&
         !(flow && (text[i] == ',' || text[i] == '}' || text[i] == ']')))
    ++i;
  while (i > pos && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
  return i;
}

// The manifest text with the top-level version's scalar replaced by v, or a
// `version: v` line added; every other byte, comments included, stays.
// Unparsable text is returned as is for parse_manifest to report.
std::string with_version(std::string text, const std::string& v) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const std::exception&) {
    return text;
  }
  if (doc.IsMap()) {
    for (const auto& kv : doc) {
      if (!kv.first.IsScalar() || kv.first.Scalar() != "version") continue;
      if (!kv.second.IsScalar()) return text;
      const int pos = kv.second.Mark().pos;
      if (pos < 0 || static_cast<std::size_t>(pos) >= text.size()) return text;
      const auto start = static_cast<std::size_t>(pos);
      const auto end = scalar_end(text, start, doc.Style() == YAML::EmitterStyle::Flow);
      if (end == std::string::npos) return text;
      return text.replace(start, end - start, v);
    }
  }
  if (!text.empty() && text.back() != '\n') text.push_back('\n');
  return text + "version: " + v + "\n";
}

result<std::string> requested_version(const std::string& v) {
  std::string text = v;
  if (v == "date") {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char buf[16];
    if (::gmtime_r(&now, &utc) == nullptr || std::strftime(buf, sizeof buf, "%Y%m%d%H%M", &utc) == 0)
      internal_failure("gmtime_r");
    text = buf;
  }
  if (auto parsed = parse_version(text); !parsed)
    return make_error(errc::invalid_argument, "version: " + parsed.err().message);
  return text;
}

la_ssize_t append_to_string(archive*, void* out, const void* buf, std::size_t size) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), size);
  return static_cast<la_ssize_t>(size);
}

}  // namespace

const char* to_string(entry_kind k) {
  switch (k) {
    case entry_kind::file:
      return "file";
    case entry_kind::directory:
      return "directory";
    case entry_kind::symlink:
      return "symlink";
    case entry_kind::hardlink:
      return "hardlink";
    case entry_kind::other:
      return "other";
  }
  return "other";
}

result<std::string> read_archive_file(const fs::path& file, const archive_limits& limits) {
  auto bytes = read_whole_file(file, limits.max_archive_bytes);
  if (!bytes) return bytes.err();
  return std::move(bytes->bytes);
}

result<package_archive> open_archive(const fs::path& file, const key_ring& keys, const archive_limits& limits) {
  auto bytes = read_whole_file(file, limits.max_archive_bytes);
  if (!bytes) return bytes.err();
  return open_archive_bytes(std::move(bytes->bytes), file.string(), keys, limits);
}

result<package_archive> open_archive_bytes(std::string bytes, std::string source, const key_ring& keys,
                                           const archive_limits& limits) {
  auto refuse = [&](const std::string& what) { return make_error(errc::refused, source + ": " + what); };
  if (bytes.size() > limits.max_archive_bytes)
    return refuse("is " + std::to_string(bytes.size()) + " bytes, over the limit of " +
                  std::to_string(limits.max_archive_bytes));
  if (bytes.size() < signature_trailer_bytes ||
      std::string_view(bytes).substr(bytes.size() - signature_trailer_bytes, trailer_magic.size()) != trailer_magic)
    return refuse("not signed (no signature trailer), or truncated");
  const std::size_t payload_size = bytes.size() - signature_trailer_bytes;
  const std::string_view trailer = std::string_view(bytes).substr(payload_size);
  if (read_be64(trailer.substr(8, 8)) != payload_size) return refuse("truncated or extended after signing");

  md_ctx whole;
  whole.update(std::string_view(bytes).substr(0, payload_size));
  md_ctx payload_only(whole);
  if (payload_only.finish() != trailer.substr(16, 32)) return refuse("modified after signing");
  whole.update(trailer);
  std::string id = to_hex(whole.finish());

  const std::string fingerprint = to_hex(trailer.substr(48, 32));
  const public_key* signer = keys.find(fingerprint);
  if (signer == nullptr) {
    std::string trusted;
    for (const auto& k : keys.keys) trusted += (trusted.empty() ? "" : ", ") + k.name;
    // A key file that could not be read is the likely culprit: say so.
    std::string unreadable;
    for (const auto& why : keys.skipped) unreadable += "; unreadable: " + why;
    return refuse("signed by an unknown key " + fingerprint + " (trusted: " + (trusted.empty() ? "none" : trusted) +
                  unreadable + ")");
  }
  if (!verify_signature(*signer, signed_statement(trailer), trailer.substr(80, 64)))
    return refuse("signature does not verify with key " + signer->name);

  package_archive a;
  a.id = std::move(id);
  a.source = std::move(source);
  a.signer = *signer;
  a.trailer = std::string(trailer);
  bytes.resize(payload_size);
  a.payload = std::move(bytes);
  auto entries = list_entries(a.payload, limits);
  if (!entries) return prefixed(a.source, entries.err());
  a.entries = std::move(*entries);
  if (auto s = check_contents(a); !s) return s.err();
  return a;
}

result<std::string> read_entry(const package_archive& archive, std::string_view path) {
  const auto at = find_file(archive.entries, index_of(archive.entries), path);
  if (!at) return make_error(errc::not_found, archive.source + ": no file " + quote_text(path) + " in the archive");
  auto data = entry_data(archive.payload, *at, archive.entries[*at].size);
  if (!data) return prefixed(archive.source, data.err());
  return data;
}

result<fs::path> extract_archive(const package_archive& archive, const fs::path& cache_root,
                                 const std::vector<fs::path>& reuse_from) {
  if (!is_hex_id(archive.id))
    return make_error(errc::internal, "internal error: bad package id " + quote_text(archive.id));
  std::error_code ec;
  fs::create_directories(cache_root, ec);
  // SECURE_SYMLINKS refuses a symlink anywhere on the path, the cache's own included.
  const fs::path root = ec ? fs::path() : fs::canonical(cache_root, ec);
  if (ec) return make_error(errc::io, cache_root.string() + ": cannot create (" + ec.message() + ")");
  const fs::path target = root / archive.id;
  if (fs::is_directory(fs::symlink_status(target, ec))) return target;

  // Checked again from the payload itself, so that nothing reaches the disk
  // unchecked whoever filled in `archive`; open_archive applied the limits.
  auto entries = list_entries(archive.payload, {no_limit, no_limit, max_entries_any});
  if (!entries) return prefixed(archive.source, entries.err());

  const fs::path tmp = root / ("." + archive.id + ".tmp." + base::unique_suffix());
  if (::mkdir(tmp.c_str(), 0700) != 0)
    return make_error(errc::io, tmp.string() + ": cannot create (" + errno_text(errno) + ")");
  status s = write_tree(archive.payload, *entries, tmp, reuse_from);
  if (!s) {
    (void)remove_extracted(tmp);
    return prefixed(archive.source, s.err());
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int e = errno;
    (void)remove_extracted(tmp);
    // Another system extracted the same id first: theirs is as good as ours.
    if ((e == EEXIST || e == ENOTEMPTY) && fs::is_directory(fs::symlink_status(target, ec))) return target;
    return make_error(errc::io, target.string() + ": cannot rename into place (" + errno_text(e) + ")");
  }
  return target;
}

status remove_extracted(const fs::path& dir) {
  std::error_code ec;
  const auto st = fs::symlink_status(dir, ec);
  if (!fs::exists(st)) return ok_v;
  if (!fs::is_directory(st)) return make_error(errc::invalid_argument, dir.string() + ": not a directory");
  if (auto s = set_tree_modes(dir, true); !s) return s;
  fs::remove_all(dir, ec);
  if (ec) return make_error(errc::io, dir.string() + ": cannot remove (" + ec.message() + ")");
  return ok_v;
}

namespace {
enum class container { tar, zip };

// Entries as given and unchecked, into a tar (a package's payload: owner
// root, mtime 0, the entry kinds of a tar) or a zip (a wheel, for tests:
// mtime 1980, zip's epoch). An entry libarchive will not write is left out.
std::string write_entries(const std::vector<pack_entry>& entries, container c) {
  std::string out;
  writer w(archive_write_new());
  const bool opened =
      w &&
      (c == container::tar ? archive_write_set_format_pax_restricted(w.get()) == ARCHIVE_OK &&
                                 archive_write_add_filter_none(w.get()) == ARCHIVE_OK &&
                                 archive_write_set_bytes_per_block(w.get(), 512) == ARCHIVE_OK
                           : archive_write_set_format_zip(w.get()) == ARCHIVE_OK &&
                                 archive_write_set_bytes_in_last_block(w.get(), 1) == ARCHIVE_OK) &&  // no padding
      archive_write_open2(w.get(), &out, nullptr, append_to_string, nullptr, nullptr) == ARCHIVE_OK;
  if (!opened) internal_failure("libarchive archive_write_open2");
  for (const auto& p : entries) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), p.path.c_str());
    if (c == container::tar) {
      archive_entry_set_uid(e.get(), 0);
      archive_entry_set_gid(e.get(), 0);
      archive_entry_set_uname(e.get(), "");
      archive_entry_set_gname(e.get(), "");
      archive_entry_set_mtime(e.get(), 0, 0);
    } else {
      archive_entry_set_mtime(e.get(), 315532800, 0);  // 1980: zip's epoch
    }
    switch (p.kind) {
      case entry_kind::file:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), p.executable ? 0755 : 0644);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(p.content.size()));
        break;
      case entry_kind::directory:
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        archive_entry_set_perm(e.get(), 0755);
        break;
      case entry_kind::symlink:
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_perm(e.get(), 0777);
        archive_entry_set_symlink(e.get(), p.link_target.c_str());
        break;
      case entry_kind::hardlink:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_perm(e.get(), 0644);
        archive_entry_set_hardlink(e.get(), p.link_target.c_str());
        break;
      case entry_kind::other:
        archive_entry_set_filetype(e.get(), AE_IFIFO);
        archive_entry_set_perm(e.get(), 0644);
        break;
    }
    const int rc = archive_write_header(w.get(), e.get());
    if (rc == ARCHIVE_FATAL) internal_failure("libarchive archive_write_header");
    if (rc >= ARCHIVE_WARN && p.kind == entry_kind::file && !p.content.empty())
      (void)archive_write_data(w.get(), p.content.data(), p.content.size());
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) internal_failure("libarchive archive_write_close");
  return out;
}
}  // namespace

std::string write_tar(const std::vector<pack_entry>& entries) { return write_entries(entries, container::tar); }
std::string write_zip(const std::vector<pack_entry>& entries) { return write_entries(entries, container::zip); }

std::string sign_payload(std::string payload, const signing_key& key) {
  std::string trailer(trailer_magic);
  append_be64(trailer, payload.size());
  trailer += sha256_raw(payload);
  trailer += sha256_raw(key.pub().raw);  // the key's fingerprint, raw
  trailer += key.sign(signed_statement(trailer));
  payload += trailer;
  return payload;
}

namespace {

// A native package's files: its library, and its private libraries under lib/.
status add_native_files(const pack_request& request, const fs::path& manifest_file, const manifest& m,
                        std::vector<pack_entry>& entries) {
  std::string library_path;
  if (normalise(m.library, library_path) != path_check::ok)
    return make_error(errc::invalid_argument,
                      manifest_file.string() + ": library: " + quote_text(m.library) + " is not a plain relative path");
  const fs::path library_file = manifest_file.parent_path() / m.library;
  auto library = read_whole_file(library_file, no_limit);
  if (!library) return library.err();
  entries.push_back({library_path, entry_kind::file, std::move(library->bytes), "", library->executable});

  for (const auto& lib : request.private_libraries) {
    if (lib.filename().empty()) return make_error(errc::invalid_argument, lib.string() + ": not a file name");
    const std::string stored = "lib/" + lib.filename().string();
    for (std::size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].path != stored) continue;
      return make_error(errc::refused,
                        lib.string() + ": would be stored as " + quote_text(stored) + ", which is " +
                            (i == 1 ? std::string("the package's library")
                                    : "also where " + request.private_libraries[i - 2].string() + " goes"));
    }
    auto bytes = read_whole_file(lib, no_limit);
    if (!bytes) return bytes.err();
    entries.push_back({stored, entry_kind::file, std::move(bytes->bytes), "", bytes->executable});
  }
  return ok_v;
}

// A python package's files: the module's top-level package (or file) and
// site-packages/, as they are beside the manifest; no byte code.
status add_python_files(const fs::path& manifest_file, const manifest& m, std::vector<pack_entry>& entries) {
  const fs::path root = manifest_file.parent_path().empty() ? fs::path(".") : manifest_file.parent_path();
  const std::string top = m.module.substr(0, m.module.find('.'));
  const auto candidates = module_files(m.module);
  bool found = false;
  for (const auto& file : candidates) found = found || fs::is_regular_file(root / file);
  if (!found)
    return make_error(errc::not_found, manifest_file.string() + ": module: " + quote_text(m.module) +
                                           " not found (no " + (root / candidates[0]).string() + " or " +
                                           (root / candidates[1]).string() + ")");
  auto add_file = [&](const fs::path& file, const std::string& stored) -> status {
    auto bytes = read_whole_file(file, no_limit);
    if (!bytes) return bytes.err();
    entries.push_back({stored, entry_kind::file, std::move(bytes->bytes), "", false});
    return ok_v;
  };
  auto add_tree = [&](const std::string& name) -> status {
    std::error_code ec;
    std::vector<fs::path> found_paths;
    for (auto it = fs::recursive_directory_iterator(root / name, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      const auto fname = it->path().filename().string();
      if (fname == "__pycache__" || fname.ends_with(".pyc")) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      found_paths.push_back(it->path());
    }
    if (ec) return make_error(errc::io, (root / name).string() + ": cannot list (" + ec.message() + ")");
    std::sort(found_paths.begin(), found_paths.end());  // equal trees give equal archives
    entries.push_back({name, entry_kind::directory, "", "", false});
    for (const auto& f : found_paths) {
      const std::string stored = name + "/" + fs::relative(f, root / name).generic_string();
      if (fs::is_directory(f))
        entries.push_back({stored, entry_kind::directory, "", "", false});
      else if (auto s = add_file(f, stored); !s)
        return s;
    }
    return ok_v;
  };
  std::error_code ec;
  if (fs::is_directory(root / top, ec)) {
    if (auto s = add_tree(top); !s) return s;
  } else if (auto s = add_file(root / (top + ".py"), top + ".py"); !s) {
    return s;
  }
  if (fs::is_directory(root / "site-packages", ec))
    if (auto s = add_tree("site-packages"); !s) return s;
  return ok_v;
}

// Each wheel's files under site-packages/ (manifests/wheel.hpp), sorted, with
// their directories. A path that two wheels, or a wheel and site-packages/
// beside the manifest, would both fill is refused naming both, as is a second
// copy of one distribution. The whole package stays within the default
// archive_limits, which every system applies at load.
status add_wheels(const fs::path& manifest_file, const std::vector<fs::path>& wheels,
                  std::vector<pack_entry>& entries) {
  if (wheels.empty()) return ok_v;
  const fs::path root = manifest_file.parent_path().empty() ? fs::path(".") : manifest_file.parent_path();
  const std::string beside = (root / "site-packages").string() + " (beside the manifest)";
  struct origin {
    bool directory;
    std::string from;
  };
  std::map<std::string, origin> at;          // stored path -> what is there and where it came from
  std::map<std::string, std::string> dists;  // canonical distribution name -> where it came from
  std::uint64_t total = 0;
  for (const auto& e : entries) {
    total += e.content.size();
    at.emplace(e.path, origin{e.kind == entry_kind::directory, beside});
    constexpr std::string_view site = "site-packages/";
    if (e.kind == entry_kind::directory && e.path.starts_with(site) && e.path.ends_with(".dist-info") &&
        e.path.find('/', site.size()) == std::string::npos) {
      const std::string stem = e.path.substr(site.size());
      dists.emplace(canonical_distribution(stem.substr(0, stem.find('-'))), (root / e.path).string());
    }
  }
  const archive_limits defaults;
  std::map<std::string, pack_entry> added;
  for (const auto& wheel : wheels) {
    archive_limits left = defaults;
    left.max_extracted_bytes = total < defaults.max_extracted_bytes ? defaults.max_extracted_bytes - total : 0;
    const std::size_t used = entries.size() + added.size();
    left.max_entries = used < defaults.max_entries ? static_cast<std::uint32_t>(defaults.max_entries - used) : 0;
    auto contents = read_wheel(wheel, left);
    if (!contents) return contents.err();
    const std::string w = wheel.string();
    if (const auto [it, fresh] = dists.emplace(contents->canonical, w); !fresh)
      return make_error(errc::refused, w + ": distribution " + contents->distribution + " is also in " + it->second);
    for (auto& f : contents->files) {
      const std::string stored = "site-packages/" + f.path;
      for (auto slash = stored.find('/'); slash != std::string::npos; slash = stored.find('/', slash + 1)) {
        const std::string dir = stored.substr(0, slash);
        const auto [it, fresh] = at.emplace(dir, origin{true, w});
        if (!it->second.directory)
          return make_error(errc::refused, w + ": has files under " + dir + ", which is a file in " + it->second.from);
        if (fresh) added.emplace(dir, pack_entry{dir, entry_kind::directory, "", "", false});
      }
      const auto [it, fresh] = at.emplace(stored, origin{false, w});
      if (!fresh && it->second.directory)
        return make_error(errc::refused, w + ": " + stored + " is a file here and a directory in " + it->second.from);
      if (!fresh) return make_error(errc::refused, w + ": " + stored + " is also in " + it->second.from);
      added.emplace(stored, pack_entry{stored, entry_kind::file, std::move(f.content), "", false});
    }
    total += contents->bytes;
  }
  if (entries.size() + added.size() > defaults.max_entries)
    return make_error(errc::refused, manifest_file.string() + ": with its wheels the package holds more than " +
                                         std::to_string(defaults.max_entries) + " entries (the limit)");
  for (auto& [path, entry] : added) entries.push_back(std::move(entry));
  return ok_v;
}

}  // namespace

result<pack_result> pack_package(const pack_request& request, const signing_key& key) {
  const fs::path& manifest_file = request.manifest;
  auto source = read_whole_file(manifest_file, max_manifest_bytes);
  if (!source) return source.err();
  std::string text = std::move(source->bytes);
  std::string wanted;
  if (request.version) {
    auto v = requested_version(*request.version);
    if (!v) return v.err();
    wanted = std::move(*v);
    text = with_version(std::move(text), wanted);
  }
  auto m = parse_manifest(text, manifest_file.string());
  if (!m) return m.err();
  if (request.version && m->version.text != wanted)
    return make_error(errc::invalid_argument, manifest_file.string() + ": version: cannot be replaced in place");

  std::vector<pack_entry> entries;
  entries.push_back({"manifest.yaml", entry_kind::file, text, "", false});
  if (m->runtime == runtime_kind::python) {
    if (!request.private_libraries.empty())
      return make_error(errc::invalid_argument, manifest_file.string() +
                                                    ": private libraries (--dep, --deps) are for native packages; a "
                                                    "python package vendors its dependencies in site-packages/");
    if (auto s = add_python_files(manifest_file, *m, entries); !s) return s.err();
    if (auto s = add_wheels(manifest_file, request.wheels, entries); !s) return s.err();
  } else if (!request.wheels.empty()) {
    return make_error(errc::invalid_argument, manifest_file.string() +
                                                  ": wheels (--wheel) are for runtime: python packages; a native "
                                                  "package ships its private libraries with --dep");
  } else if (auto s = add_native_files(request, manifest_file, *m, entries); !s) {
    return s.err();
  }

  fs::path out = request.output;
  if (out.empty()) return make_error(errc::invalid_argument, "no output file given");
  std::error_code ec;
  if (fs::is_directory(out, ec)) out /= m->package + "-" + m->version.text + ".tpkg";

  std::string signed_bytes = sign_payload(write_tar(entries), key);
  // Never write an archive this code would refuse to open.
  key_ring self{{}, {key.pub()}, {}};
  auto check = open_archive_bytes(signed_bytes, out.string(), self, {no_limit, no_limit, max_entries_any});
  if (!check) return check.err();
  if (auto s = base::write_file_atomically(out, signed_bytes, 0644); !s) return s.err();
  return pack_result{check->id, out, std::move(*m)};
}

result<std::vector<fs::path>> read_deps_file(const fs::path& file) {
  auto content = read_whole_file(file, max_manifest_bytes);
  if (!content) return content.err();
  std::vector<fs::path> out;
  std::string_view rest = content->bytes;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    const fs::path p(line);
    out.push_back(p.is_absolute() ? p : file.parent_path() / p);
  }
  return out;
}

}  // namespace troupe::manifests
