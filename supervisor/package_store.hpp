// supervisor/package_store.hpp — the package files of a TROUPE_HOME
// (docs/OPERATIONS.md §5): archives in packages/, trusted keys in keys/
// (re-read at every verification), extracted packages in cache/<id>/.
// Filesystem only; safe from any thread as long as two threads do not
// prune one group at once.
#pragma once

#include "manifests/archive.hpp"

#include <troupe/result.hpp>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace troupe::supervisor {

struct package_store {
  std::filesystem::path packages;  ///< HOME/packages: <group>-<version>.tpkg
  std::filesystem::path keys;      ///< HOME/keys: trusted *.pub
  std::filesystem::path cache;     ///< HOME/cache: <id>/ extracted, read-only
  manifests::archive_limits limits;
};

[[nodiscard]] package_store store_in(const std::filesystem::path& home, const manifests::archive_limits& limits = {});

/// Creates the store's directories (cache/ 0700: its contents are trusted).
[[nodiscard]] status prepare(const package_store& store);

/// Verifies file against the trusted keys as they are now.
[[nodiscard]] result<manifests::package_archive> verify(const package_store& store, const std::filesystem::path& file);

/// Verifies file and makes sure the package directory holds it: a file
/// elsewhere is read once and verified from memory, and those bytes are what
/// is loaded; it is kept only once verified. It is stored as <group>-<version>.tpkg
/// (<group>-<version>-<id prefix>.tpkg when that name holds another
/// archive). archive.source is the stored path.
/// copied (optional) tells whether a new file was added to the directory.
/// The file is kept by a hard link to the inode read where the file system
/// allows, else by a synced copy of the bytes verified. buffer (optional):
/// memory to read into, its capacity reused (touching megabytes of fresh
/// memory costs more than the read, docs/PERFORMANCE.md §3.3); it is moved
/// into the archive's payload, and the caller may move that back.
[[nodiscard]] result<manifests::package_archive> verify_and_keep(const package_store& store,
                                                                 const std::filesystem::path& file,
                                                                 bool* copied = nullptr, std::string* buffer = nullptr);

/// One archive of the package directory, as `troupe avail` shows it.
struct available_archive {
  std::filesystem::path file;
  std::string id;     ///< empty when the file could not be read
  std::string group;  ///< from the manifest; from the file name when it does not verify
  std::string version;
  manifests::version order;  ///< for sorting
  std::string signer;        ///< trusted key name; empty when it does not verify
  std::string error;         ///< why it would be refused; empty when it verifies
};

/// Every *.tpkg of the package directory, verified: by group, newest first.
[[nodiscard]] std::vector<available_archive> scan(const package_store& store);

/// The archives of group, newest first, by their file names
/// (<group>-<version>[-<id prefix>].tpkg, the names a load gives them),
/// without reading them; a file whose name carries no version is left out.
[[nodiscard]] std::vector<std::filesystem::path> archives_of(const package_store& store, const std::string& group);

/// The newest of archives_of (not verified: loading it verifies it, and an
/// older archive is never taken in its place, the operator asked for the
/// newest); not_found naming the group when it has none.
[[nodiscard]] result<std::filesystem::path> newest_of(const package_store& store, const std::string& group);

/// Deletes the oldest archives of group beyond keep (archives_of), never one in spare (the
/// archives of loaded packages). Returns the deleted files.
std::vector<std::filesystem::path> prune(const package_store& store, const std::string& group, std::uint32_t keep,
                                         const std::set<std::filesystem::path>& spare);

}  // namespace troupe::supervisor
