// manifests/archive.hpp — signed package archives (.tpkg): packing,
// verification, listing and extraction.
//
// A .tpkg file is an uncompressed POSIX (pax) tar archive written by
// libarchive, followed by a 144-byte signature trailer (`tar tf` still lists
// it):
//
//   offset size  field
//   0      8     magic "TPKGSIG1"
//   8      8     payload length in bytes, big-endian (the tar part; always
//                file size - 144)
//   16     32    SHA-256 of the payload
//   48     32    fingerprint of the signing key: SHA-256 of its raw public key
//   80     64    Ed25519 signature of the signed statement:
//                "troupe package v1" NUL || bytes 8..80 of this trailer
//
// Signing the payload's digest rather than the payload keeps verification
// of a large archive at one SHA-256 pass plus one Ed25519 check. The package
// id is the SHA-256 of the whole file (`sha256sum pkg.tpkg` prints it).
//
// The tar holds manifest.yaml at its root, the library the manifest names,
// and private libraries under lib/ (a python package: its module and
// site-packages/, wheels unpacked there). Entries are regular files, directories
// and symlinks whose target stays inside the package; nothing else.
//
// Every function is safe from any thread (no shared state).
#pragma once

#include "manifests/manifest.hpp"
#include "manifests/signing.hpp"

#include <troupe/result.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::manifests {

inline constexpr std::size_t signature_trailer_bytes = 144;

/// Ceilings on what a system accepts; an archive over one is refused before
/// anything is written to disk.
struct archive_limits {
  std::uint64_t max_archive_bytes = 256ull << 20;  ///< the .tpkg file
  std::uint64_t max_extracted_bytes = 1ull << 30;  ///< sum of entry sizes
  std::uint32_t max_entries = 10000;
};

enum class entry_kind { file, directory, symlink, hardlink, other };

[[nodiscard]] const char* to_string(entry_kind k);

struct archive_entry_info {
  std::string path;  ///< normalised: no leading "./", no trailing "/"
  entry_kind kind = entry_kind::file;
  std::uint64_t size = 0;
  bool executable = false;
  std::string link_target;  ///< symlinks only
};

/// A verified archive, held in memory.
/// A path, name or other untrusted text in double quotes for a one-line
/// message: control characters escaped, cut after 200 bytes.
[[nodiscard]] std::string quote_text(std::string_view s);

struct package_archive {
  std::string id;      ///< hex SHA-256 of the whole file
  std::string source;  ///< file path or other name, prefixes errors
  public_key signer;
  manifest m;
  std::vector<archive_entry_info> entries;  ///< in archive order
  std::string payload;                      ///< the tar bytes, trailer stripped
  std::string trailer;                      ///< the signature trailer (payload + trailer = the file)
};

/// Reads and verifies an archive. Checks, in order, each failure a one-line
/// error prefixed with the file's path:
///  1. size within limits (refused: "is N bytes, over the limit of M");
///  2. a signature trailer (refused: "not signed (no signature trailer), or truncated");
///     a payload length that matches the file (refused: "truncated or extended after signing");
///  3. the payload's SHA-256 equals the trailer's (refused: "modified after signing");
///  4. the signing key is in keys (refused: "signed by an unknown key FINGERPRINT (trusted: a, b)");
///  5. the signature verifies (refused: "signature does not verify with key NAME");
///  6. the tar reads (invalid_argument: "corrupt archive: <libarchive's message>"), every entry
///     path is relative with no ".." (refused: "entry "../x" escapes the package"), only files,
///     directories and symlinks staying inside (refused: "entry "x" is a hardlink",
///     "symlink "lib/x" -> "/etc/passwd" escapes the package"), no path twice, entry count
///     and total size within limits;
///  7. manifest.yaml is present and parses (the parse error, source "FILE:manifest.yaml");
///  8. the manifest's library is a regular file in the archive, directly or through a symlink
///     (refused: "library "lib/x.so" named by the manifest is not in the archive").
[[nodiscard]] result<package_archive> open_archive(const std::filesystem::path& file, const key_ring& keys,
                                                   const archive_limits& limits = {});

/// The bytes of an archive file in one read, refused (as open_archive does)
/// when it is not a regular file or over limits.max_archive_bytes.
[[nodiscard]] result<std::string> read_archive_file(const std::filesystem::path& file,
                                                    const archive_limits& limits = {});

/// The same checks on bytes already in memory (a package fetched from a peer).
[[nodiscard]] result<package_archive> open_archive_bytes(std::string bytes, std::string source, const key_ring& keys,
                                                         const archive_limits& limits = {});

/// The contents of one entry (a regular file); not_found naming the path.
[[nodiscard]] result<std::string> read_entry(const package_archive& archive, std::string_view path);

/// Extracts archive into cache_root/ID/ once per id and returns that
/// directory. Files are made read-only (0444, or 0555 when executable),
/// directories 0555. Extraction goes to a temporary sibling renamed into
/// place, so concurrent extractions of one id by several systems are safe and
/// a crash never leaves a half-written package under its id. An existing
/// cache_root/ID/ is reused as is. reuse_from: extracted trees of other
/// versions (trusted: written by this function); a large file whose bytes
/// equal the same path's there is hard-linked instead of written again.
[[nodiscard]] result<std::filesystem::path> extract_archive(const package_archive& archive,
                                                            const std::filesystem::path& cache_root,
                                                            const std::vector<std::filesystem::path>& reuse_from = {});

/// Removes a tree written by extract_archive (making it writable first).
[[nodiscard]] status remove_extracted(const std::filesystem::path& dir);

// ---------------------------------------------------------------- writing

struct pack_entry {
  std::string path;
  entry_kind kind = entry_kind::file;
  std::string content;      ///< files
  std::string link_target;  ///< symlinks and hardlinks
  bool executable = false;
};

/// The tar bytes of entries, as given and unchecked, with fixed owners and
/// timestamps so equal inputs give equal bytes. Tests use this to craft bad
/// archives.
[[nodiscard]] std::string write_tar(const std::vector<pack_entry>& entries);
/// The same as a zip (deflated, mtime 1980): tests use it to craft wheels,
/// good and bad (manifests/wheel.hpp).
[[nodiscard]] std::string write_zip(const std::vector<pack_entry>& entries);

/// payload followed by its signature trailer made with key.
[[nodiscard]] std::string sign_payload(std::string payload, const signing_key& key);

struct pack_request {
  std::filesystem::path manifest;  ///< manifest.yaml; its `library` is relative to its directory
  /// Replaces the manifest's version: "1.4.2", or "date" for the current UTC
  /// time as YYYYMMDDHHMM. Without it the manifest must have one.
  std::optional<std::string> version;
  /// Private libraries, stored as lib/<file name> with symlinks followed
  /// (list "libcodec.so.1" to store the soname a library is loaded by).
  std::vector<std::filesystem::path> private_libraries;
  /// The output file, or an existing directory to receive
  /// <package>-<version>.tpkg. Written to a temporary file, then renamed.
  std::filesystem::path output;
  /// runtime python only: pure-Python wheels unpacked into site-packages/
  /// (manifests/wheel.hpp), beside any site-packages/ of the manifest's
  /// directory; a path two of them (or one and that directory) hold is refused.
  std::vector<std::filesystem::path> wheels;
};

struct pack_result {
  std::string id;
  std::filesystem::path file;
  manifest m;
};

/// Builds and signs a package. The archived manifest.yaml is the source text
/// with only the version replaced (or added), and is validated before
/// anything is written. Errors name the file at fault.
[[nodiscard]] result<pack_result> pack_package(const pack_request& request, const signing_key& key);

/// Reads a deps file: one library path per line, blank lines and #
/// comments ignored, relative paths taken from the file's directory.
[[nodiscard]] result<std::vector<std::filesystem::path>> read_deps_file(const std::filesystem::path& file);

}  // namespace troupe::manifests
