// manifests/package_dir.hpp — opening a package laid out as a directory
// (manifest.yaml + its library + lib/ with private libraries), for
// development. Signed archives (`troupe pack`) will replace this loading path
// later, so every check of a package's files lives here. Safe from any thread.
#pragma once

#include "manifests/manifest.hpp"
#include "manifests/sha256.hpp"  // sha256_hex and friends, for reuse

#include <troupe/result.hpp>

#include <filesystem>
#include <string>

namespace troupe::manifests {

struct package_info {
  std::string id;  ///< hex SHA-256 of manifest bytes then library bytes
  manifest m;
  std::filesystem::path root;     ///< the package directory, canonical
  std::filesystem::path library;  ///< the library file, canonical (symlinks resolved)
  std::filesystem::path lib_dir;  ///< root/"lib": the package's private libraries
};

/// Reads dir/manifest.yaml, parses it and checks that the library it names is
/// a regular file that, symlinks resolved, stays inside dir. Errors:
/// not_found (dir, manifest.yaml or library missing, naming the path),
/// invalid_argument (manifest errors, see parse_manifest), refused (library
/// outside dir or not a regular file), io (read failures).
[[nodiscard]] result<package_info> open_package_dir(const std::filesystem::path& dir);

}  // namespace troupe::manifests
