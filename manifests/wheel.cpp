#include "manifests/wheel.hpp"

#include "manifests/archive.hpp"

#include "base/check.hpp"
#include "base/files.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace troupe::manifests {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t max_path_bytes = 1024;  // as archive.cpp's entries
constexpr std::size_t max_metadata_bytes = 16u << 20;

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return parts;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A path a wheel may hold: relative, '/'-separated, no "", "." or ".."
// component, no backslash (a Windows separator some unpackers honour), no NUL.
bool plain_relative(std::string_view p) {
  if (p.empty() || p.size() > max_path_bytes || p.front() == '/') return false;
  if (p.find('\\') != std::string_view::npos || p.find('\0') != std::string_view::npos) return false;
  for (const auto part : split(p, '/'))
    if (part.empty() || part == "." || part == "..") return false;
  return true;
}

// One python tag of a compressed tag set ("py2.py3") that runs on any
// CPython 3: py3, or py3N for a minor version.
bool py3_tag(std::string_view t) {
  if (!t.starts_with("py3")) return false;
  return std::all_of(t.begin() + 3, t.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "PY-ABI-PLATFORM" with no ABI and any platform: pure Python of some version.
bool none_any(std::string_view tag) {
  const auto parts = split(tag, '-');
  return parts.size() == 3 && parts[1] == "none" && parts[2] == "any";
}

// "PY-ABI-PLATFORM" (each possibly a compressed set) names pure Python 3.
bool pure_tag(std::string_view tag) {
  if (!none_any(tag)) return false;
  const auto pys = split(split(tag, '-')[0], '.');
  return std::any_of(pys.begin(), pys.end(), py3_tag);
}

std::string base64url(std::string_view raw) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < raw.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(raw[i]) << 16) | (static_cast<unsigned char>(raw[i + 1]) << 8) |
                       static_cast<unsigned char>(raw[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(alphabet[(v >> shift) & 63]);
  }
  if (i + 1 == raw.size()) {
    const unsigned v = static_cast<unsigned char>(raw[i]) << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
  } else if (i + 2 == raw.size()) {
    const unsigned v = (static_cast<unsigned char>(raw[i]) << 16) | (static_cast<unsigned char>(raw[i + 1]) << 8);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
  }
  return out;
}

// "ALGO=<urlsafe base64>" of bytes for sha256/384/512; nullopt for any other
// algorithm (md5 and sha1 are not allowed in RECORD).
std::optional<std::string> hash_with(std::string_view algo, std::string_view bytes) {
  const EVP_MD* md = algo == "sha256"   ? EVP_sha256()
                     : algo == "sha384" ? EVP_sha384()
                     : algo == "sha512" ? EVP_sha512()
                                        : nullptr;
  if (md == nullptr) return std::nullopt;
  std::array<unsigned char, EVP_MAX_MD_SIZE> d{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), d.data(), &size, md, nullptr) != 1)
    base::internal_error("OpenSSL EVP_Digest failed");
  return std::string(algo) + "=" + base64url(std::string_view(reinterpret_cast<const char*>(d.data()), size));
}

// One CSV row of RECORD (Python's csv module: "," separated, fields with
// "," or '"' quoted, '"' doubled inside quotes).
std::vector<std::string> csv_row(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back().push_back(c);
    }
  }
  return fields;
}

std::string csv_field(const std::string& f) {
  if (f.find_first_of(",\"\r\n") == std::string::npos) return f;
  std::string out = "\"";
  for (char c : f) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

struct read_free {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct zip_file {
  std::string path;
  std::string bytes;
};

}  // namespace

std::string canonical_distribution(std::string_view name) {
  std::string out;
  for (char c : lower(name)) {
    const bool sep = c == '-' || c == '_' || c == '.';
    if (!sep)
      out.push_back(c);
    else if (out.empty() || out.back() != '-')
      out.push_back('-');
  }
  return out;
}

std::string record_hash(std::string_view bytes) { return *hash_with("sha256", bytes); }

result<wheel_contents> read_wheel(const fs::path& wheel, const archive_limits& limits) {
  const std::string src = wheel.string();
  auto refuse = [&src](const std::string& why) { return make_error(errc::refused, src + ": " + why); };
  auto bad = [&src](const std::string& why) { return make_error(errc::invalid_argument, src + ": " + why); };

  // 1. The file name: NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl, pure Python 3.
  const std::string file_name = wheel.filename().string();
  if (!file_name.ends_with(".whl")) return bad("not a wheel (the file name does not end in .whl)");
  const auto parts = split(std::string_view(file_name).substr(0, file_name.size() - 4), '-');
  if (parts.size() != 5 && parts.size() != 6)
    return bad("not a wheel file name (NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl)");
  for (const auto part : parts)
    if (part.empty()) return bad("not a wheel file name (NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl)");
  wheel_contents out;
  out.distribution = std::string(parts[0]);
  out.canonical = canonical_distribution(parts[0]);
  out.version = std::string(parts[1]);
  const std::string tag = std::string(parts[parts.size() - 3]) + "-" + std::string(parts[parts.size() - 2]) + "-" +
                          std::string(parts[parts.size() - 1]);
  if (!pure_tag(tag))
    return refuse("tag " + tag +
                  " is not pure Python 3 (troupe packs only py3-none-any wheels; a platform wheel needs "
                  "the interpreter and system it was built for)");

  // 2. The zip, read through its central directory (what pip and Python's
  // zipfile read), every entry a regular file at a plain relative path.
  auto file = base::read_regular_file(wheel, limits.max_archive_bytes);
  if (!file) return file.err();
  std::unique_ptr<archive, read_free> r(archive_read_new());
  if (!r || archive_read_support_format_zip_seekable(r.get()) != ARCHIVE_OK)
    base::internal_error("libarchive archive_read_new failed");
  auto corrupt = [&](archive* a) {
    const char* why = archive_error_string(a);
    return bad(std::string("not a readable zip (") + (why != nullptr ? why : "unreadable") + ")");
  };
  if (archive_read_open_memory(r.get(), file->bytes.data(), file->bytes.size()) != ARCHIVE_OK) return corrupt(r.get());
  std::vector<zip_file> files;
  std::set<std::string> seen;
  std::uint64_t total = 0;
  std::uint32_t count = 0;
  while (true) {
    archive_entry* e = nullptr;
    const int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return corrupt(r.get());
    if (++count > limits.max_entries)
      return refuse("holds more than " + std::to_string(limits.max_entries) + " entries (the limit)");
    const char* raw = archive_entry_pathname_utf8(e);
    if (raw == nullptr) raw = archive_entry_pathname(e);
    if (raw == nullptr) return refuse("an entry has no readable path");
    std::string path(raw);
    const bool dir_name = path.ends_with('/');
    if (dir_name) path.pop_back();
    if (!plain_relative(path))
      return refuse("entry " + quote_text(raw) + " is not a plain relative path (absolute, .., or empty components)");
    const auto type = archive_entry_filetype(e);
    if (type == AE_IFDIR || (dir_name && type == AE_IFREG && archive_entry_size(e) == 0)) continue;
    if (type == AE_IFLNK)
      return refuse("entry " + quote_text(path) + " is a symlink (a wheel holds regular files only)");
    if (type != AE_IFREG) return refuse("entry " + quote_text(path) + " is not a regular file");
    if (!seen.insert(path).second) return refuse("entry " + quote_text(path) + " appears twice");
    std::string data;
    std::array<char, 64 * 1024> buf{};
    while (true) {
      const la_ssize_t n = archive_read_data(r.get(), buf.data(), buf.size());
      if (n < 0) return corrupt(r.get());
      if (n == 0) break;
      if (static_cast<std::uint64_t>(n) > limits.max_extracted_bytes - total)
        return refuse("unpacks to more than " + std::to_string(limits.max_extracted_bytes) + " bytes (the limit)");
      total += static_cast<std::uint64_t>(n);
      data.append(buf.data(), static_cast<std::size_t>(n));
    }
    files.push_back({std::move(path), std::move(data)});
  }
  out.bytes = total;

  // 3. One NAME-VERSION.dist-info at the top, naming the file's distribution.
  std::string dist_info;
  for (const auto& f : files) {
    const std::string top = f.path.substr(0, f.path.find('/'));
    if (!top.ends_with(".dist-info") || top == f.path || top == dist_info) continue;
    if (!dist_info.empty()) return refuse("has two .dist-info directories, " + dist_info + " and " + top);
    dist_info = top;
  }
  if (dist_info.empty()) return refuse("has no NAME-VERSION.dist-info directory");
  const std::string stem = dist_info.substr(0, dist_info.size() - std::string_view(".dist-info").size());
  const auto dash = stem.find('-');
  if (dash == std::string::npos || canonical_distribution(stem.substr(0, dash)) != out.canonical ||
      lower(stem.substr(dash + 1)) != lower(out.version))
    return refuse(dist_info + " does not match the file name's " + out.distribution + " " + out.version);
  auto find = [&files](const std::string& path) -> const zip_file* {
    for (const auto& f : files)
      if (f.path == path) return &f;
    return nullptr;
  };
  for (const char* required : {"WHEEL", "METADATA", "RECORD"})
    if (find(dist_info + "/" + required) == nullptr) return refuse("has no " + dist_info + "/" + required);

  // 4. WHEEL: version 1.x, purelib at the root, only pure tags.
  const std::string& wheel_meta = find(dist_info + "/WHEEL")->bytes;
  if (wheel_meta.size() > max_metadata_bytes) return refuse(dist_info + "/WHEEL is over 16 MiB");
  std::optional<std::string> wheel_version, purelib;
  bool tags = false, py3 = false;  // a py2.py3 wheel lists Tag: py2-none-any and Tag: py3-none-any
  for (const auto line : split(wheel_meta, '\n')) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string key = lower(trim(line.substr(0, colon)));
    const std::string value(trim(line.substr(colon + 1)));
    if (key == "wheel-version") wheel_version = value;
    if (key == "root-is-purelib") purelib = lower(value);
    if (key != "tag") continue;
    if (!none_any(value))
      return refuse(dist_info + "/WHEEL has Tag: " + value + ", which is not pure Python (PY-none-any)");
    tags = true;
    py3 = py3 || pure_tag(value);
  }
  if (tags && !py3) return refuse(dist_info + "/WHEEL has no Tag for Python 3 (py3-none-any)");
  if (!wheel_version || !wheel_version->starts_with("1."))
    return refuse(dist_info + "/WHEEL: Wheel-Version " + (wheel_version ? *wheel_version : "missing") +
                  " (troupe reads wheel format 1.x)");
  if (purelib != "true")
    return refuse(dist_info + "/WHEEL: Root-Is-Purelib is " + (purelib ? *purelib : "missing") +
                  ", not true (a platform wheel)");

  // 5. RECORD: every file listed with a sha256 (or stronger) hash it matches.
  const std::string record_path = dist_info + "/RECORD";
  const std::string& record = find(record_path)->bytes;
  if (record.size() > max_metadata_bytes) return refuse(record_path + " is over 16 MiB");
  std::map<std::string, std::pair<std::string, std::string>> rows;  // path -> hash, size
  for (const auto line : split(record, '\n')) {
    if (trim(line).empty()) continue;
    auto fields = csv_row(trim(line));
    if (fields.size() < 3) return refuse(record_path + ": row " + quote_text(line) + " is not PATH,HASH,SIZE");
    rows[fields[0]] = {fields[1], fields[2]};
  }
  for (const auto& f : files) {
    if (f.path == record_path || f.path == record_path + ".jws" || f.path == record_path + ".p7s") continue;
    const auto it = rows.find(f.path);
    if (it == rows.end() || it->second.first.empty())
      return refuse(quote_text(f.path) + " is not hashed in " + record_path);
    std::string want = it->second.first;
    while (want.ends_with('=')) want.pop_back();  // PEP 376 says unpadded; some tools pad
    const auto eq = want.find('=');
    const auto got = hash_with(want.substr(0, eq == std::string::npos ? 0 : eq), f.bytes);
    if (!got)
      return refuse(record_path + " hashes " + quote_text(f.path) + " with " + quote_text(want.substr(0, eq)) +
                    " (sha256, sha384 or sha512 required)");
    if (*got != want)
      return refuse(quote_text(f.path) + " does not match its hash in " + record_path + " (corrupt wheel)");
    if (!it->second.second.empty() && it->second.second != std::to_string(f.bytes.size()))
      return refuse(quote_text(f.path) + " does not match its size in " + record_path + " (corrupt wheel)");
  }

  // 6. Where each file goes: NAME-VERSION.data/purelib/ to the root, as an
  // installer does; other .data schemes have no place in a package.
  const std::string data_dir = stem + ".data";
  const std::string purelib_prefix = data_dir + "/purelib/";
  std::map<std::string, std::string> placed;  // site-packages path -> wheel path
  for (auto& f : files) {
    const std::string top = f.path.substr(0, f.path.find('/'));
    std::string dest = f.path;
    if (top == data_dir && top != f.path) {
      if (!f.path.starts_with(purelib_prefix)) {
        const auto scheme = split(f.path, '/')[1];
        return refuse("entry " + quote_text(f.path) + ": " + data_dir + "/" + std::string(scheme) +
                      " cannot go into a package (troupe installs .data/purelib only)");
      }
      dest = f.path.substr(purelib_prefix.size());
    } else if (top.ends_with(".data") && top != f.path) {
      return refuse("entry " + quote_text(f.path) + ": " + top + " is not this wheel's " + data_dir);
    }
    const auto base = dest.substr(dest.rfind('/') + 1);
    if (dest.find("__pycache__/") != std::string::npos || base.ends_with(".pyc")) continue;  // no byte code
    if (const auto [it, fresh] = placed.emplace(dest, f.path); !fresh)
      return refuse("entries " + quote_text(it->second) + " and " + quote_text(f.path) + " both install " +
                    quote_text(dest));
    if (f.path == record_path) {
      // RECORD names installed paths: rewrite those moved out of .data/purelib.
      std::string rewritten;
      for (const auto line : split(f.bytes, '\n')) {
        if (trim(line).empty()) continue;
        auto fields = csv_row(trim(line));
        if (fields[0].starts_with(purelib_prefix)) fields[0] = fields[0].substr(purelib_prefix.size());
        for (std::size_t i = 0; i < fields.size(); ++i) rewritten += (i ? "," : "") + csv_field(fields[i]);
        rewritten += "\n";
      }
      f.bytes = std::move(rewritten);
    }
    out.files.push_back({std::move(dest), entry_kind::file, std::move(f.bytes), "", false});
  }
  std::sort(out.files.begin(), out.files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return out;
}

}  // namespace troupe::manifests
