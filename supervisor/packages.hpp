// supervisor/packages.hpp — the packages loaded in one system and the
// version rules between them (docs/OPERATIONS.md §5): which version of a
// group is active, how an operator names a package (hash, hash prefix or
// group), and the roles that on_load gave to actors. Pure bookkeeping, no
// I/O, so it is unit-tested on its own.
// Not thread-safe; owned by the supervisor's loop thread.
#pragma once

#include "base/shared_string.hpp"
#include "manifests/manifest.hpp"

#include <troupe/address.hpp>
#include <troupe/result.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::supervisor {

enum class package_phase {
  loading,    ///< verified and extracted; its worker has not registered yet
  loaded,     ///< serving; may be the active version of its group
  unloading,  ///< its actors are being stopped, then its worker
};

[[nodiscard]] const char* to_string(package_phase p);

struct package_entry {
  /// Hex SHA-256 of the archive (of manifest + library for a directory).
  /// Every actor's records share this copy, as they share type_ref's.
  base::shared_string id;
  manifests::manifest m;
  std::filesystem::path root;     ///< extracted files (or the package directory)
  std::filesystem::path library;  ///< root / m.library
  std::filesystem::path lib_dir;  ///< root / "lib": its private libraries
  std::string source;             ///< the archive in the package directory, or the directory
  std::string signer;             ///< the trusted key's name; empty for --unsigned
  package_phase phase = package_phase::loading;
  bool active = false;
  std::uint64_t load_seq = 0;              ///< order of loading, breaks version ties
  std::string broken;                      ///< why its worker can no longer start; empty when fine
  std::uint32_t worker = 0;                ///< its shared worker, 0 when none
  std::map<std::string, address> roles;    ///< on_load role -> actor
  std::map<std::string, address> on_load;  ///< actor type -> the actor on_load created
  bool adopted = false;                    ///< this load copied its archive into the package directory
  std::map<std::string, base::shared_string, std::less<>> type_refs;  ///< its manifest's type names (set by add)

  /// The copy of a type name records share: its manifest's, else a new one.
  [[nodiscard]] base::shared_string type_ref(std::string_view type) const {
    auto it = type_refs.find(type);
    return it != type_refs.end() ? it->second : base::shared_string(type);
  }
};

/// A change of a group's active version: ids, empty for none.
struct activation {
  std::string deactivated;
  std::string activated;
  [[nodiscard]] bool changed() const { return deactivated != activated; }
};

class package_set {
 public:
  /// Adds a package in phase loading (not yet a candidate for activation).
  package_entry& add(package_entry e);
  void erase(std::string_view id);

  [[nodiscard]] package_entry* find(std::string_view id);
  [[nodiscard]] const package_entry* find(std::string_view id) const;

  /// The loaded package an operator means by spec: a full id, a unique id
  /// prefix of at least 6 hex digits, or a group name (its active version).
  /// Errors (not_found) name what was asked: "package 3f2a... is not loaded",
  /// "no package 'foo' is loaded"; invalid_argument for an ambiguous prefix.
  [[nodiscard]] result<package_entry*> resolve(std::string_view spec);

  /// The package a new actor of type comes from: the one spec names (as
  /// resolve), which must have the type, else the active version of the one
  /// group that has it. Errors: not_found "unknown actor type 'T' (not in any
  /// loaded package)" or "(not in package G V)"; invalid_argument when several
  /// groups have it ("... is in several packages (A, B): pass --package").
  [[nodiscard]] result<std::string> choose(const std::string& type, const std::string& spec);

  /// Makes the highest loaded version of group active (ties: the later
  /// load) and reports the change.
  activation update_active(std::string_view group);

  /// The actor holding role name: in group when given, else in any group
  /// (ambiguous when two groups have it). The active version's holder wins,
  /// then the highest version's. Errors name the role.
  [[nodiscard]] result<address> role(std::string_view name, std::string_view group) const;

  /// All packages, by group then version (newest first).
  [[nodiscard]] std::vector<package_entry*> all();
  [[nodiscard]] std::vector<const package_entry*> all() const;
  [[nodiscard]] std::size_t size() const { return packages_.size(); }

 private:
  std::map<std::string, package_entry, std::less<>> packages_;  // by id
  std::uint64_t next_seq_ = 1;
};

/// Whether s looks like a package id or a prefix of one (hex digits only).
[[nodiscard]] bool is_hex_id_prefix(std::string_view s);

}  // namespace troupe::supervisor
